//! The read-only half of an upgrade: resolve and verify the source, pre-flight, read the
//! release and its history, compute the values, and ask the API server what the CRD apply
//! would do. Changes nothing, writes no file.

use std::path::PathBuf;

use kantup_helm_values::deps::enabled_subcharts;
use kantup_k8s_apply::crd::{
    ApplyOptions, CrdApplier, CrdDocument, CrdPlan, PlanAction, chart_crds, check_plans,
};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightOptions, PreflightReport, preflight};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore};
use serde::Serialize;
use serde_json::Value;

use super::source::{self, ChartSource};
use super::up_to_date::{HelmReason, helm_reasons};
use super::values::{ValueChange, compute_values, diff_values};
use super::{UpgradeError, UpgradeOptions};
use crate::ops::backup_files::{BackupFiles, timestamp};
use crate::ops::helm::{Helm, HelmCommand, UpgradeRequest};
use crate::ops::progress::Progress;
use crate::ops::release::{ReleaseId, stored_values};

/// Everything the upgrade will do, shown by `--plan` and before confirmation.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradePlan {
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseId,
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
    /// The files the upgrade writes.
    #[serde(flatten)]
    pub files: UpgradeFiles,
    /// The release already runs this chart version with these defaults and values, and every
    /// CRD is unchanged: nothing would be done.
    pub up_to_date: bool,
    /// Why helm will run (empty exactly when [`up_to_date`](Self::up_to_date)).
    pub helm_reasons: Vec<HelmReason>,
}

/// The files an upgrade writes into its backup directory (none when it has nothing to do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpgradeFiles {
    /// The values backup, written before any change (mode 0600).
    pub backup_file: PathBuf,
    /// The computed values file helm gets.
    pub values_file: PathBuf,
    /// The live CRDs the upgrade changes, saved before it changes them (for
    /// `kantup rollback`); `None` when no CRD changes.
    pub crd_snapshot_file: Option<PathBuf>,
    /// The record of the bundle's images (digest, signature verdict, SBOMs), written beside
    /// the values backup; `None` when the source carries no images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_file: Option<PathBuf>,
}

/// A planned upgrade: the plan, and what [`execute`] needs to carry it out, in four parts.
pub struct PreparedUpgrade {
    pub(super) plan: UpgradePlan,
    pub(super) installation: Installation,
    pub(super) values: UpgradeValues,
    pub(super) release: ReleaseState,
    pub(super) crds: CrdChanges,
}

/// What will be installed, and how: the chart, the helm binary and the one command it runs.
pub(super) struct Installation {
    /// Held until helm has run: a pulled or unpacked chart lives in its scratch directory.
    pub chart: source::ResolvedChart,
    pub helm: Helm,
    pub command: HelmCommand,
}

/// The values: the backup of the current revision's and the computed ones helm gets, both
/// YAML, to be written (mode 0600) into `backup_dir` before anything changes.
pub(super) struct UpgradeValues {
    pub backup_dir: PathBuf,
    pub backup_yaml: String,
    pub values_yaml: String,
}

/// The release as the cluster holds it: where its records are, the latest one, and the
/// revision a rollback returns to (the last deployed, not a failed attempt).
pub(super) struct ReleaseState {
    pub store: ReleaseStore,
    pub current: Option<ReleaseRecord>,
    pub rollback_revision: Option<u32>,
}

/// The cluster-side CRD plan: the chart's CRDs and the applier that planned them (its
/// client also takes the snapshot of the live ones they change).
pub(super) struct CrdChanges {
    pub client: kantup_k8s_apply::kube::Client,
    pub applier: CrdApplier,
    pub documents: Vec<CrdDocument>,
}

impl PreparedUpgrade {
    /// What would be done.
    pub fn plan(&self) -> &UpgradePlan {
        &self.plan
    }

    /// What `helm template` needs to render what the upgrade would install: the helm binary,
    /// the chart path helm gets and the computed values (YAML).
    pub fn render_inputs(&self) -> (&Helm, &std::path::Path, &str) {
        (
            &self.installation.helm,
            &self.installation.chart.helm_path,
            &self.values.values_yaml,
        )
    }

    /// Why [`execute`] would refuse this plan before changing anything (failed pre-flight
    /// checks, CRDs the server rejects, stored versions removed, refused field conflicts);
    /// empty when it would go ahead.
    pub fn blockers(&self) -> Vec<String> {
        let mut blockers: Vec<String> = failed_checks(&self.plan.preflight)
            .map(|failed| format!("pre-flight {failed}"))
            .collect();
        if let Err(refused) = check_plans(&self.plan.crds, self.crds.applier.options()) {
            blockers.push(refused.to_string());
        }
        blockers
    }
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
    let chart = source::resolve(options, progress).await?;
    let client = options.cluster.client().await?;
    let helm = Helm::detect(&options.helm, &options.cluster, options.driver)?;

    // Pre-flight. A `failed` latest revision is a previous attempt that helm can continue
    // from (helm upgrades a failed release against its last deployed one), so it only warns.
    let mut report = preflight(
        &client,
        &PreflightOptions {
            release: options.release.name.clone(),
            namespace: options.release.namespace.clone(),
            chart_version: Some(chart.chart.metadata.version.to_string()),
            allow_downgrade: options.allow_downgrade,
            driver: options.driver,
            install: options.install,
            create_namespace: options.create_namespace,
        },
    )
    .await?;
    allow_continuing_failed(&mut report);

    let store = ReleaseStore::new(
        client.clone(),
        options.release.namespace.clone(),
        options.driver,
    );
    let history = if report.revision.is_some() {
        store.history(&options.release.name).await?
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
        Some(record) => stored_values(&record.release).to_yaml(&record.release.name, false)?,
        None => String::new(),
    };
    let files = BackupFiles::new(
        &options.backup_dir,
        &options.release.name,
        &options.release.namespace,
    );
    let stamp = timestamp();
    let backup_file = files.values_backup(report.revision.unwrap_or(0), &stamp);
    let values_file = files.computed_values(&stamp);
    let images_file = (!chart.images.is_empty()).then(|| files.deployed_images(&stamp));
    // Values are computed from the backup exactly as `helm upgrade -f bak.yaml` would read it,
    // in memory.
    let merged = compute_values(
        &options.values,
        options.image_registry.as_deref(),
        &backup_yaml,
        &backup_file,
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
        let enabled = enabled_subcharts(&chart.chart, &merged, helm.version())?;
        chart_crds(&chart.chart, &enabled)?
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
        release: &options.release.name,
        namespace: &options.release.namespace,
        chart: &chart.helm_path,
        values_file: &values_file,
        timeout: options.timeout,
        wait: options.wait,
        install,
        create_namespace: options.create_namespace,
        // kantup applies them (or was told not to): helm must not try again.
        skip_crds: true,
    });
    let helm_reasons = helm_reasons(
        current.as_ref(),
        &chart.chart,
        &merged,
        &crd_plans,
        helm.version(),
    );
    let up_to_date = helm_reasons.is_empty();
    let crd_snapshot_file = crd_plans
        .iter()
        .any(|p| p.action != PlanAction::Unchanged)
        .then(|| files.crd_snapshot(report.revision.unwrap_or(0), &stamp));
    let plan = UpgradePlan {
        release: options.release.clone(),
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
        files: UpgradeFiles {
            backup_file,
            values_file,
            crd_snapshot_file,
            images_file,
        },
        up_to_date,
        helm_reasons,
    };
    Ok(PreparedUpgrade {
        plan,
        installation: Installation {
            chart,
            helm,
            command: helm_command,
        },
        values: UpgradeValues {
            backup_dir: options.backup_dir.clone(),
            backup_yaml,
            values_yaml,
        },
        release: ReleaseState {
            store,
            current,
            rollback_revision,
        },
        crds: CrdChanges {
            client,
            applier,
            documents: crds,
        },
    })
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

/// The pre-flight checks that failed, each as `name: detail`.
pub(super) fn failed_checks(report: &PreflightReport) -> impl Iterator<Item = String> + '_ {
    report
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
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
