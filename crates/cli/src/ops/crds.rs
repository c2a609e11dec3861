//! `kantup crds apply` as a library: read the CustomResourceDefinitions of a chart, a bundle or
//! a `crds/` directory, ask the API server what applying them would do (server-side dry-run),
//! then apply them and wait until each is served.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::crds::{self, CrdsApplyOptions};
//! let prepared = crds::plan(&CrdsApplyOptions::new("kant-0.5.0.tgz")).await?;
//! if prepared.refusal().is_none() {
//!     let applied = crds::execute(prepared).await?;
//!     println!("{} CRD(s)", applied.len());
//! }
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use kantup_bundle::BundleError;
use kantup_bundle::chart::Chart;
use kantup_bundle::chart_file::ChartFile;
use kantup_helm_values::deps::enabled_subcharts;
use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{
    AppliedCrd, ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, CrdPlan, chart_crds,
    check_plans, load_crd_dir,
};

/// Why the CRDs could not be read, planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum CrdsError {
    /// A chart directory or archive could not be read.
    #[error("load chart {}", path.display())]
    Chart {
        /// The chart.
        path: PathBuf,
        /// Why.
        #[source]
        source: BundleError,
    },
    /// A bundle or its chart could not be read.
    #[error("load the chart of bundle {}", path.display())]
    Bundle {
        /// The bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: BundleError,
    },
    /// The source holds no CRD.
    #[error("no CustomResourceDefinitions found in {}", .0.display())]
    NoCrds(PathBuf),
    /// Reading CRD files, the kubeconfig, or the API server failed, or the apply was refused.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// Which subcharts (and so which of their CRDs) are enabled could not be worked out.
    #[error("{0}")]
    Values(#[from] kantup_helm_values::Error),
}

/// What to apply, and how.
#[derive(Debug, Clone)]
pub struct CrdsApplyOptions {
    /// A chart directory, a `crds/` directory, a chart `.tgz`, or a bundle.
    pub path: PathBuf,
    /// Fields other field managers own: taken over (default) or refused.
    pub conflicts: ConflictPolicy,
    /// Allow removing versions still listed in `status.storedVersions`.
    pub allow_version_removal: bool,
    /// How long to wait for each CRD to be established.
    pub timeout: Duration,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// How a bundle is opened.
    pub open: kantup_bundle::OpenOptions,
}

impl CrdsApplyOptions {
    /// The defaults of `kantup crds apply PATH`: conflicts taken over, stored versions kept,
    /// a 60 second wait, kubectl's cluster resolution.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            conflicts: ConflictPolicy::TakeOver,
            allow_version_removal: false,
            timeout: Duration::from_secs(60),
            cluster: ClusterAccess::default(),
            open: kantup_bundle::OpenOptions::default(),
        }
    }
}

/// Planned CRDs: what the server said applying each would do.
pub struct PreparedCrds {
    plans: Vec<CrdPlan>,
    crds: Vec<CrdDocument>,
    applier: CrdApplier,
}

impl PreparedCrds {
    /// What applying each CRD would do.
    pub fn plans(&self) -> &[CrdPlan] {
        &self.plans
    }

    /// Why [`execute`] would refuse these plans before changing anything (a CRD the server
    /// rejects, a stored version removed, a refused field conflict); `None` when it would go
    /// ahead.
    pub fn refusal(&self) -> Option<kantup_k8s_apply::Error> {
        check_plans(&self.plans, self.applier.options()).err()
    }
}

/// Reads the CRDs of whatever `path` is, before any cluster access, so bad input fails fast.
/// A chart gives its own `crds/` and those of the subcharts its default values enable, as
/// Helm installs them; a directory without `Chart.yaml` is a directory of CRD files.
pub fn read_crds(
    path: &Path,
    open: &kantup_bundle::OpenOptions,
) -> Result<Vec<CrdDocument>, CrdsError> {
    let chart = if path.is_dir() {
        if !path.join("Chart.yaml").is_file() {
            return Ok(load_crd_dir(path)?);
        }
        Chart::load_dir(path).map_err(|source| CrdsError::Chart {
            path: path.to_path_buf(),
            source,
        })?
    } else {
        let file = ChartFile::open_with(path, open).map_err(|source| CrdsError::Chart {
            path: path.to_path_buf(),
            source,
        })?;
        match file {
            ChartFile::Bundle(bundle) => bundle.chart().map_err(|source| CrdsError::Bundle {
                path: path.to_path_buf(),
                source,
            })?,
            ChartFile::Archive(chart) => *chart,
        }
    };
    let enabled = enabled_subcharts(&chart, &Default::default(), HelmVersion::V3)?;
    Ok(chart_crds(&chart, &enabled)?)
}

/// Reads the CRDs and asks the server what applying them would do. Changes nothing.
pub async fn plan(options: &CrdsApplyOptions) -> Result<PreparedCrds, CrdsError> {
    let crds = read_crds(&options.path, &options.open)?;
    if crds.is_empty() {
        return Err(CrdsError::NoCrds(options.path.clone()));
    }
    let client = options.cluster.client().await?;
    let applier = CrdApplier::new(
        client,
        ApplyOptions {
            conflicts: options.conflicts,
            allow_version_removal: options.allow_version_removal,
            timeout: options.timeout,
        },
    );
    let plans = applier.plan(&crds).await?;
    Ok(PreparedCrds {
        plans,
        crds,
        applier,
    })
}

/// Applies the planned CRDs (refusing first, as [`PreparedCrds::refusal`] says) and waits
/// until each is established.
pub async fn execute(prepared: PreparedCrds) -> Result<Vec<AppliedCrd>, CrdsError> {
    let PreparedCrds {
        plans,
        crds,
        applier,
    } = prepared;
    Ok(applier.apply_planned(&crds, plans).await?)
}
