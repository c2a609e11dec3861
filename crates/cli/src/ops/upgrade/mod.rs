//! The seed's install-or-upgrade procedure as one safe, repeatable workflow.
//!
//! The order is the seed's, with every manual step made checkable:
//! verify the source -> pre-flight -> back up the release's values -> apply the chart's CRDs
//! (its own and its enabled subcharts', as Helm installs them) -> compute the values (backup,
//! then `-f` files, then the `--set` family, then `global.imageRegistry`) -> `helm upgrade`
//! (`--install` when the release does not exist) with that one values file -> check the new
//! revision is `deployed`.
//!
//! [`plan`] runs every read-only step, asking the API server itself what the CRD apply would do
//! (dry-run), and returns a [`PreparedUpgrade`] whose [`UpgradePlan`] says what would change;
//! [`execute`] does it. Nothing in the cluster changes before the backup file is on disk, and
//! a failure after that names the backup file and the way back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::upgrade::{self, UpgradeOptions};
//! let mut options = UpgradeOptions::new("kant.bundle.tar", "kant", "kant-system");
//! options.image_registry = Some("10.16.10.111:5000".into());
//! let prepared = upgrade::plan(&options, &kantup::ops::progress::Silent).await?;
//! println!("{} CRD(s), {} value change(s)", prepared.plan().crds.len(),
//!     prepared.plan().values_changes.len());
//! if prepared.plan().preflight.passed() && !prepared.plan().up_to_date {
//!     let done = upgrade::execute(prepared).await?;
//!     println!("revision {}", done.revision);
//! }
//! # Ok(()) }
//! ```

mod error;
mod execute;
mod plan;
mod source;
mod up_to_date;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use crate::ops::release::ReleaseId;
use kantup_helm_values::merge::ValueOptions;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::ConflictPolicy;
use kantup_k8s_apply::release::StorageDriver;

pub use error::UpgradeError;
pub use execute::{UpgradeSummary, execute};
pub use plan::{PreparedUpgrade, UpgradeFiles, UpgradePlan, plan};
pub use source::{ChartSource, RepositoryChart};
pub use up_to_date::HelmReason;
pub use values::{ValueChange, compute_values, diff_values, looks_secret};

/// What to install or upgrade, and how. [`UpgradeOptions::new`] gives the defaults of
/// `kantup upgrade`.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// A bundle, a chart directory, a chart `.tgz`, or a chart in a repository.
    pub source: ChartSource,
    /// The release.
    pub release: ReleaseId,
    /// Sets `global.imageRegistry` (as a string) after every other value.
    pub image_registry: Option<String>,
    /// Values on top of the backed-up ones: `-f` files and the `--set` family, as helm takes
    /// them (their Helm version is the one the helm binary turns out to be).
    pub values: ValueOptions,
    /// The helm binary.
    pub helm: PathBuf,
    /// Where the values backup and the computed values file are written.
    pub backup_dir: PathBuf,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// Helm's storage driver.
    pub driver: StorageDriver,
    /// Accept a chart version lower than the deployed one.
    pub allow_downgrade: bool,
    /// Install the release when it does not exist (`helm upgrade --install`).
    pub install: bool,
    /// Create the namespace when it does not exist (with `install`).
    pub create_namespace: bool,
    /// Do not apply the chart's CRDs.
    pub skip_crds: bool,
    /// CRD fields other field managers own: taken over (default) or refused.
    pub crd_conflicts: ConflictPolicy,
    /// Allow removing CRD versions still listed in `status.storedVersions`.
    pub allow_version_removal: bool,
    /// helm's `--timeout`, and how long to wait for CRDs.
    pub timeout: Duration,
    /// helm's `--wait`.
    pub wait: bool,
    /// Skip bundle verification (not recommended).
    pub skip_verify: bool,
    /// Refuse the source unless its detached signature verifies with this public key.
    pub verify_key: Option<PathBuf>,
    /// The signature file (default `<source>.sig`).
    pub signature: Option<PathBuf>,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: kantup_bundle::OpenOptions,
    /// Accept a bundle that lacks images its chart needs (a chart that pulls them from
    /// elsewhere on purpose); without it such a bundle is refused before anything changes,
    /// even with `skip_verify`.
    pub allow_missing_images: bool,
    /// Every image of the bundle must be signed by one of these public keys (`--image-key`),
    /// checked before anything changes; the verdicts go into the deployed-images record.
    pub image_keys: Vec<PathBuf>,
}

impl UpgradeOptions {
    /// Options for `release` in `namespace` from `source`, with `kantup upgrade`'s defaults:
    /// `helm` from `PATH`, backups in the current directory, kubectl's cluster resolution,
    /// the secret driver, install when missing, CRD conflicts taken over, a 5 minute timeout.
    pub fn new(
        source: impl Into<ChartSource>,
        release: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            release: ReleaseId::new(release, namespace),
            image_registry: None,
            values: ValueOptions::default(),
            helm: PathBuf::from("helm"),
            backup_dir: PathBuf::from("."),
            cluster: ClusterAccess::default(),
            driver: StorageDriver::Secret,
            allow_downgrade: false,
            install: true,
            create_namespace: false,
            skip_crds: false,
            crd_conflicts: ConflictPolicy::TakeOver,
            allow_version_removal: false,
            timeout: Duration::from_secs(300),
            wait: false,
            skip_verify: false,
            verify_key: None,
            signature: None,
            open: kantup_bundle::OpenOptions::default(),
            allow_missing_images: false,
            image_keys: Vec::new(),
        }
    }
}
