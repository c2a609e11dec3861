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

mod source;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{
    AppliedCrd, ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, CrdPlan, CrdSnapshot,
    PlanAction, chart_crds, check_plans,
};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightOptions, PreflightReport, preflight};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore, StorageDriver};
use serde::Serialize;
use serde_json::{Map, Value};

pub use source::{ChartSource, RepositoryChart};
pub use values::{ValueChange, ValueInputs, compute_values, diff_values, looks_secret};

use crate::ops::helm::{Helm, HelmCommand, HelmError, UpgradeRequest};
use crate::ops::progress::Progress;

/// Everything that can stop an upgrade.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The source path does not exist.
    #[error("{}: no such bundle, chart directory or chart archive", .0.display())]
    NoSource(PathBuf),
    /// The source is a file that is neither a bundle nor a chart archive.
    #[error("{} is neither a bundle nor a chart archive: {source}", path.display())]
    NotAChart {
        /// The file.
        path: PathBuf,
        /// Why it is not a chart archive.
        #[source]
        source: kantup_bundle::BundleError,
    },
    /// The bundle failed verification.
    #[error("verifying {}: {source}", path.display())]
    Verify {
        /// The bundle.
        path: PathBuf,
        /// What did not match.
        #[source]
        source: kantup_bundle::BundleError,
    },
    /// Reading the chart failed.
    #[error("{0}")]
    Bundle(#[from] kantup_bundle::BundleError),
    /// Computing values failed.
    #[error("{0}")]
    Values(#[from] kantup_helm_values::Error),
    /// A Kubernetes API request, the kubeconfig, or a CRD apply failed.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// `--image-registry` is not a host.
    #[error("--image-registry {0:?} is not a registry host")]
    BadImageRegistry(String),
    /// A file could not be written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The source's signature did not verify (or there is none); nothing was changed.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// Pulling the chart from its repository failed (not found, digest mismatch, ...).
    #[error("{0}")]
    Repository(#[from] kantup_registry::chart_repo::RepoError),
    /// A signature was asked for a source that is not one file.
    #[error(
        "{0}: --verify-key needs a bundle or chart archive file (not a directory or repository)"
    )]
    SignatureNeedsFile(String),
    /// helm could not be run (before anything changed).
    #[error("{0}")]
    Helm(#[from] HelmError),
    /// A pre-flight check failed; nothing was changed.
    #[error(
        "pre-flight failed for release {release} in namespace {namespace}: {failed}; nothing was changed"
    )]
    PreflightFailed {
        /// The release.
        release: String,
        /// The namespace.
        namespace: String,
        /// The failed checks, one line.
        failed: String,
    },
    /// Applying CRDs failed after the backup was written.
    #[error("applying CRDs failed (values backup kept at {}): {source}", backup.display())]
    Crds {
        /// The values backup.
        backup: PathBuf,
        /// What failed.
        #[source]
        source: Box<kantup_k8s_apply::Error>,
    },
    /// helm failed.
    #[error("helm {verb} failed; values backup kept at {}; {way_back}: {source}", backup.display())]
    HelmFailed {
        /// `upgrade` or `install`.
        verb: &'static str,
        /// The values backup.
        backup: PathBuf,
        /// The command that returns to the last good state.
        way_back: String,
        /// helm's failure.
        #[source]
        source: HelmError,
    },
    /// helm succeeded but the release is not at a new deployed revision.
    #[error(
        "after helm, release {release} is at revision {revision} with status {status} (expected a \
         new deployed revision); values backup kept at {}; {way_back}",
        backup.display()
    )]
    NotDeployed {
        /// The release.
        release: String,
        /// Its latest revision.
        revision: u32,
        /// That revision's status.
        status: String,
        /// The values backup.
        backup: PathBuf,
        /// The command that returns to the last good state.
        way_back: String,
    },
}

/// What to install or upgrade, and how. [`UpgradeOptions::new`] gives the defaults of
/// `kantup upgrade`.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// A bundle, a chart directory, a chart `.tgz`, or a chart in a repository.
    pub source: ChartSource,
    /// The release.
    pub release: String,
    /// The release's namespace.
    pub namespace: String,
    /// Sets `global.imageRegistry` (as a string) after every other value.
    pub image_registry: Option<String>,
    /// Values on top of the backed-up ones.
    pub values: ValueInputs,
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
            release: release.into(),
            namespace: namespace.into(),
            image_registry: None,
            values: ValueInputs::default(),
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
        }
    }
}

/// Everything the upgrade will do, shown by `--plan` and before confirmation.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradePlan {
    /// The release.
    pub release: String,
    /// The namespace.
    pub namespace: String,
    /// The source as given.
    pub source: String,
    /// `bundle`, `chart directory` or `chart archive`.
    pub source_kind: String,
    /// The chart name.
    pub chart: String,
    /// The chart version to install.
    pub chart_version: String,
    /// The release does not exist and will be installed.
    pub install: bool,
    /// The latest revision, when the release exists.
    pub deployed_revision: Option<u32>,
    /// Its chart version.
    pub deployed_chart_version: Option<String>,
    /// The pre-flight checks.
    pub preflight: PreflightReport,
    /// What applying each CRD would do, as the API server answered a dry-run.
    pub crds: Vec<CrdPlan>,
    /// False when the CRDs were not planned because the pre-flight failed.
    pub crds_planned: bool,
    /// Changes of the user-supplied values (credentials redacted).
    pub values_changes: Vec<ValueChange>,
    /// The helm command that will run.
    pub helm_command: String,
    /// The values backup that will be written (before any change).
    pub backup_file: PathBuf,
    /// The computed values file helm gets.
    pub values_file: PathBuf,
    /// Where the live CRDs the upgrade changes are saved before it changes them (for
    /// `kantup rollback`); `None` when no CRD changes.
    pub crd_snapshot_file: Option<PathBuf>,
    /// The release already runs this chart version with these values and every CRD is
    /// unchanged: nothing would be done.
    pub up_to_date: bool,
}

/// A planned upgrade: the plan, and what [`execute`] needs to carry it out.
pub struct PreparedUpgrade {
    plan: UpgradePlan,
    client: kantup_k8s_apply::kube::Client,
    options: UpgradeOptions,
    chart: source::ResolvedChart,
    helm: Helm,
    helm_command: HelmCommand,
    applier: CrdApplier,
    crds: Vec<CrdDocument>,
    store: ReleaseStore,
    current: Option<ReleaseRecord>,
    rollback_revision: Option<u32>,
    backup_yaml: String,
    values_yaml: String,
}

impl PreparedUpgrade {
    /// What would be done.
    pub fn plan(&self) -> &UpgradePlan {
        &self.plan
    }

    /// Why [`execute`] would refuse this plan before changing anything (failed pre-flight
    /// checks, CRDs the server rejects, stored versions removed, refused field conflicts);
    /// empty when it would go ahead.
    pub fn blockers(&self) -> Vec<String> {
        let mut blockers: Vec<String> = self
            .plan
            .preflight
            .checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Fail)
            .map(|c| format!("pre-flight {}: {}", c.name, c.detail))
            .collect();
        if let Err(refused) = check_plans(&self.plan.crds, self.applier.options()) {
            blockers.push(refused.to_string());
        }
        blockers
    }
}

/// What a finished upgrade reports.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeSummary {
    /// The release.
    pub release: String,
    /// The namespace.
    pub namespace: String,
    /// The release was installed (it did not exist).
    pub installed: bool,
    /// The revision before, when there was one.
    pub previous_revision: Option<u32>,
    /// The new revision.
    pub revision: u32,
    /// Its status (`deployed`).
    pub status: String,
    /// The chart.
    pub chart: String,
    /// The chart version.
    pub chart_version: String,
    /// The values backup (written before any change).
    pub backup_file: PathBuf,
    /// The values helm got.
    pub values_file: PathBuf,
    /// The CRDs as they were before, for `kantup rollback`.
    pub crd_snapshot_file: Option<PathBuf>,
    /// Each CRD and what was done to it, with the fields taken from other managers.
    pub crds: Vec<AppliedCrd>,
    /// How to return to the state before.
    pub way_back: String,
}

/// Runs every read-only step and returns the plan. Changes nothing, writes no file.
pub async fn plan(
    options: &UpgradeOptions,
    progress: &dyn Progress,
) -> Result<PreparedUpgrade, UpgradeError> {
    if let Some(key) = &options.verify_key {
        let ChartSource::Path(path) = &options.source else {
            return Err(UpgradeError::SignatureNeedsFile(options.source.to_string()));
        };
        if path.is_dir() {
            return Err(UpgradeError::SignatureNeedsFile(path.display().to_string()));
        }
        kantup_bundle::signature::verify_bundle_file(path, key, options.signature.as_deref())?;
    }
    let chart = source::resolve(&options.source, options.skip_verify, progress).await?;
    let client = options.cluster.client().await?;
    let helm = Helm::detect(&options.helm, &options.cluster, options.driver)?;

    // Pre-flight. A `failed` latest revision is a previous attempt that helm can continue
    // from (helm upgrades a failed release against its last deployed one), so it only warns.
    let mut report = preflight(
        &client,
        &PreflightOptions {
            release: options.release.clone(),
            namespace: options.namespace.clone(),
            chart_version: Some(chart.chart.metadata.version.to_string()),
            allow_downgrade: options.allow_downgrade,
            driver: options.driver,
            install: options.install,
            create_namespace: options.create_namespace,
        },
    )
    .await?;
    allow_continuing_failed(&mut report);

    let store = ReleaseStore::new(client.clone(), options.namespace.clone(), options.driver);
    let history = if report.revision.is_some() {
        store.history(&options.release).await?
    } else {
        Vec::new()
    };
    let current = history.last().cloned();
    let install = current.is_none();
    // After a failed attempt the latest revision is the failed one; rolling back must go to
    // the revision that was last deployed, not to the failure.
    let rollback_revision = last_deployed_revision(&history);

    // The backup is what `helm get values -o yaml` prints for the current revision.
    let backup_yaml = match &current {
        Some(record) => kantup_k8s_apply::values_yaml(&record.release, false)?,
        None => String::new(),
    };
    let stamp = timestamp();
    let backup_file = unused_path(options.backup_dir.join(format!(
        "{}-{}-rev{}-{stamp}.backup.yaml",
        options.release,
        options.namespace,
        report.revision.unwrap_or(0)
    )));
    let values_file = unused_path(options.backup_dir.join(format!(
        "{}-{}-{stamp}.values.yaml",
        options.release, options.namespace
    )));
    // Values are computed from the backup exactly as `helm upgrade -f bak.yaml` would read it.
    let scratch = tempfile::tempdir().map_err(|source| UpgradeError::Io {
        action: "create a scratch directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let backup_for_merge = scratch.path().join("backup.yaml");
    std::fs::write(&backup_for_merge, &backup_yaml).map_err(|source| UpgradeError::Io {
        action: "write",
        path: backup_for_merge.clone(),
        source,
    })?;
    let merged = compute_values(
        &options.values,
        options.image_registry.as_deref(),
        &backup_for_merge,
        helm.version(),
    )?;
    let values_yaml = kantup_helm_values::yaml::to_yaml(&Value::Object(merged.clone()));
    let previous_user = current
        .as_ref()
        .and_then(|r| r.release.config.clone())
        .unwrap_or_default();
    let values_changes = diff_values(&previous_user, &merged);

    let crds = if options.skip_crds {
        Vec::new()
    } else {
        chart_crds(&chart.chart, &merged, helm.version())?
    };
    let applier = CrdApplier::new(
        client.clone(),
        ApplyOptions {
            conflicts: options.crd_conflicts,
            allow_version_removal: options.allow_version_removal,
            timeout: options.timeout,
        },
    );
    // A failed pre-flight (missing permissions above all) makes asking about CRDs pointless,
    // and the questions could fail on the very permissions it reports.
    let report_passed = report.passed();
    let crd_plans = if report_passed {
        applier.plan(&crds).await?
    } else {
        Vec::new()
    };

    let helm_command = helm.upgrade_command(&UpgradeRequest {
        release: &options.release,
        namespace: &options.namespace,
        chart: &chart.helm_path,
        values_file: &values_file,
        timeout: options.timeout,
        wait: options.wait,
        install,
        create_namespace: options.create_namespace,
        // kantup applies them (or was told not to): helm must not try again.
        skip_crds: true,
    });
    let up_to_date = is_up_to_date(current.as_ref(), &chart.chart, &merged, &crd_plans);
    let crd_snapshot_file = crd_plans
        .iter()
        .any(|p| p.action != PlanAction::Unchanged)
        .then(|| {
            unused_path(options.backup_dir.join(format!(
                "{}-{}-rev{}-{stamp}.crds.yaml",
                options.release,
                options.namespace,
                report.revision.unwrap_or(0)
            )))
        });
    let plan = UpgradePlan {
        release: options.release.clone(),
        namespace: options.namespace.clone(),
        source: chart
            .pulled_from
            .clone()
            .unwrap_or_else(|| options.source.to_string()),
        source_kind: chart.kind.to_string(),
        chart: chart.chart.name().to_string(),
        chart_version: chart.chart.metadata.version.to_string(),
        install,
        deployed_revision: report.revision,
        deployed_chart_version: report.deployed_chart_version.clone(),
        preflight: report,
        crds: crd_plans,
        crds_planned: crds.is_empty() || report_passed,
        values_changes,
        helm_command: helm_command.to_string(),
        backup_file,
        values_file,
        crd_snapshot_file,
        up_to_date,
    };
    Ok(PreparedUpgrade {
        plan,
        client,
        options: options.clone(),
        chart,
        helm,
        helm_command,
        applier,
        crds,
        store,
        current,
        rollback_revision,
        backup_yaml,
        values_yaml,
    })
}

/// Carries out a plan: refuses when the pre-flight failed; does nothing when the release is
/// up to date; else writes the values backup (mode 0600) before anything changes, applies the
/// CRDs, runs helm and checks that the new revision is deployed.
pub async fn execute(prepared: PreparedUpgrade) -> Result<UpgradeSummary, UpgradeError> {
    let PreparedUpgrade {
        plan,
        client,
        options,
        chart,
        helm,
        helm_command,
        applier,
        crds,
        store,
        current,
        rollback_revision,
        backup_yaml,
        values_yaml,
    } = prepared;
    if !plan.preflight.passed() {
        let failed: Vec<String> = plan
            .preflight
            .checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Fail)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        return Err(UpgradeError::PreflightFailed {
            release: plan.release,
            namespace: plan.namespace,
            failed: failed.join("; "),
        });
    }
    // CRDs the apply would refuse stop the upgrade before the backup or anything else.
    check_plans(&plan.crds, applier.options())?;
    let unchanged_crds = || {
        plan.crds
            .iter()
            .map(|p| AppliedCrd {
                name: p.name.clone(),
                action: p.action.clone(),
                resource_version: None,
                taken_over: Vec::new(),
            })
            .collect()
    };
    if plan.up_to_date
        && let Some(current) = &current
    {
        return Ok(UpgradeSummary {
            release: plan.release,
            namespace: plan.namespace,
            installed: false,
            previous_revision: Some(current.revision),
            revision: current.revision,
            status: current.release.status().to_string(),
            chart: plan.chart,
            chart_version: plan.chart_version,
            backup_file: PathBuf::new(),
            values_file: PathBuf::new(),
            crd_snapshot_file: None,
            crds: unchanged_crds(),
            way_back: "nothing was changed".to_string(),
        });
    }

    // 1. The backup, before anything in the cluster changes.
    std::fs::create_dir_all(&options.backup_dir).map_err(|source| UpgradeError::Io {
        action: "create",
        path: options.backup_dir.clone(),
        source,
    })?;
    kantup_k8s_apply::write_private_file(&plan.backup_file, backup_yaml.as_bytes())?;
    kantup_k8s_apply::write_private_file(&plan.values_file, values_yaml.as_bytes())?;
    tracing::info!(backup = %plan.backup_file.display(), "values backed up");
    let way_back = match (&current, rollback_revision) {
        (None, _) => format!(
            "to remove the new release: {}",
            helm.uninstall_command(&plan.release, &plan.namespace)
        ),
        (Some(current), revision) => {
            let revision = revision.unwrap_or(current.revision);
            match &plan.crd_snapshot_file {
                // helm rollback leaves CRDs as the upgrade made them; kantup rollback does not.
                Some(_) => format!(
                    "to return to revision {revision} with its CRDs: kantup rollback --release {} \
                     -n {} --to-revision {revision} --backup-dir {} (helm alone: {})",
                    plan.release,
                    plan.namespace,
                    options.backup_dir.display(),
                    helm.rollback_command(&plan.release, revision, &plan.namespace)
                ),
                None => format!(
                    "to return to revision {revision}: {}",
                    helm.rollback_command(&plan.release, revision, &plan.namespace)
                ),
            }
        }
    };

    // 2. CRDs (helm never upgrades them, and installs them only once), after saving the live
    // ones they change, so `kantup rollback` can put them back.
    if let Some(file) = &plan.crd_snapshot_file {
        let snapshot = CrdSnapshot::take(
            &client,
            &plan.crds,
            &plan.release,
            &plan.namespace,
            current.as_ref().map_or(0, |c| c.revision),
            plan.deployed_chart_version.clone(),
        )
        .await?;
        snapshot.write(file)?;
        tracing::info!(snapshot = %file.display(), "CRDs saved");
    }
    let applied = if crds.is_empty() {
        Vec::new()
    } else {
        applier
            .apply_planned(&crds, plan.crds.clone())
            .await
            .map_err(|source| UpgradeError::Crds {
                backup: plan.backup_file.clone(),
                source: Box::new(source),
            })?
    };

    // 3. helm upgrade (--install) with the one computed values file.
    let verb = if plan.install { "install" } else { "upgrade" };
    helm.run(&helm_command)
        .map_err(|source| UpgradeError::HelmFailed {
            verb,
            backup: plan.backup_file.clone(),
            way_back: way_back.clone(),
            source,
        })?;
    drop(chart);

    // 4. The new revision must be deployed.
    let latest = store.latest(&plan.release).await?;
    let status = latest.release.status();
    let previous = current.as_ref().map(|c| c.revision);
    if previous.is_some_and(|p| latest.revision <= p) || status != ReleaseStatus::Deployed {
        return Err(UpgradeError::NotDeployed {
            release: plan.release,
            revision: latest.revision,
            status: status.to_string(),
            backup: plan.backup_file,
            way_back,
        });
    }
    Ok(UpgradeSummary {
        release: plan.release,
        namespace: plan.namespace,
        installed: plan.install,
        previous_revision: previous,
        revision: latest.revision,
        status: status.to_string(),
        chart: plan.chart,
        chart_version: plan.chart_version,
        backup_file: plan.backup_file,
        values_file: plan.values_file,
        crd_snapshot_file: plan.crd_snapshot_file,
        crds: applied,
        way_back,
    })
}

fn is_up_to_date(
    current: Option<&ReleaseRecord>,
    chart: &kantup_bundle::chart::Chart,
    merged: &Map<String, Value>,
    crds: &[CrdPlan],
) -> bool {
    let Some(current) = current else {
        return false;
    };
    let deployed = current.release.status() == ReleaseStatus::Deployed;
    let same_chart = current
        .release
        .chart_metadata()
        .is_some_and(|m| m.name == chart.name() && m.version == chart.metadata.version.to_string());
    let same_values =
        values::same_values(&current.release.config.clone().unwrap_or_default(), merged);
    // The same version can carry other defaults (a chart relocated by `sync` keeps its
    // version): compare what Helm stored of the deployed chart's values.yaml with this one's.
    let deployed_defaults = current
        .release
        .chart
        .as_ref()
        .and_then(|c| c.values.clone());
    let same_defaults = match kantup_helm_values::chart::Chart::from_chart(chart) {
        Ok(new) => values::same_values(&deployed_defaults.unwrap_or_default(), &new.values),
        Err(_) => false,
    };
    let crds_unchanged = crds
        .iter()
        .all(|p| p.action == PlanAction::Unchanged && p.rejected.is_none());
    deployed && same_chart && same_defaults && same_values && crds_unchanged
}

/// The newest revision whose status is `deployed` (Helm leaves the previous revision deployed
/// when an upgrade fails), if any.
fn last_deployed_revision(history: &[ReleaseRecord]) -> Option<u32> {
    history
        .iter()
        .filter(|r| r.release.status() == ReleaseStatus::Deployed)
        .map(|r| r.revision)
        .max()
}

fn allow_continuing_failed(report: &mut PreflightReport) {
    if report.status.as_deref() != Some("failed") {
        return;
    }
    for check in &mut report.checks {
        if check.name == "release-status" && check.outcome == CheckOutcome::Fail {
            check.outcome = CheckOutcome::Warn;
            check.detail = format!(
                "{}; continuing: helm upgrades a failed release against its last deployed \
                 revision",
                check.detail
            );
        }
    }
}

/// UTC `YYYYMMDDTHHMMSSZ`, so backups sort by time and never overwrite each other.
fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

/// `path`, or `path` with `-1`, `-2`, ... before its extension when taken: a backup never
/// replaces another one, even for two runs in the same second.
fn unused_path(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extension) = match name.split_once('.') {
        Some((stem, extension)) => (stem.to_string(), format!(".{extension}")),
        None => (name.clone(), String::new()),
    };
    (1..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{extension}")))
        .find(|candidate| !candidate.exists())
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_file_name_safe() {
        let stamp = timestamp();
        assert_eq!(stamp.len(), "20261125T144500Z".len(), "{stamp}");
        assert!(stamp.chars().all(|c| c.is_ascii_alphanumeric()), "{stamp}");
    }
}
