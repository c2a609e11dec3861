//! The changing half of an upgrade: the values backup first, then the CRDs (after a snapshot
//! of the live ones they change), then `helm upgrade`, then the check that the new revision is
//! deployed.

use std::path::Path;

use kantup_bundle::BundleError;
use kantup_bundle::atomic::{Access, write_with};
use kantup_k8s_apply::crd::{AppliedCrd, CrdSnapshot, check_plans};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus};
use serde::Serialize;

use super::plan::{CrdChanges, ReleaseState, UpgradeValues, failed_checks};
use super::{PreparedUpgrade, UpgradeError, UpgradeFiles, UpgradePlan};
use crate::ops::helm::Helm;
use crate::ops::release::ReleaseId;

/// What a finished upgrade reports.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeSummary {
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseId,
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
    /// The files the upgrade wrote.
    #[serde(flatten)]
    pub files: UpgradeFiles,
    /// Each CRD and what was done to it, with the fields taken from other managers.
    pub crds: Vec<AppliedCrd>,
    /// How to return to the state before.
    pub way_back: String,
    /// Why helm ran (empty when nothing was done).
    pub helm_reasons: Vec<super::HelmReason>,
}

/// Carries out a plan: refuses when the pre-flight failed; does nothing when the release is
/// up to date; else writes the values backup (mode 0600) before anything changes, applies the
/// CRDs, runs helm and checks that the new revision is deployed.
pub async fn execute(prepared: PreparedUpgrade) -> Result<UpgradeSummary, UpgradeError> {
    let PreparedUpgrade {
        plan,
        installation,
        values,
        release,
        crds,
    } = prepared;
    refuse_blocked(&plan, &crds)?;
    if plan.up_to_date
        && let Some(current) = &release.current
    {
        return Ok(nothing_to_do(plan, current));
    }

    // 1. The backup, before anything in the cluster changes.
    write_values(&values, &plan, &installation.chart.images)?;
    let way_back = way_back(&installation.helm, &plan, &release, &values.backup_dir);

    // 2. CRDs (helm never upgrades them, and installs them only once), after saving the live
    // ones they change, so `kantup rollback` can put them back.
    let applied = apply_crds(&crds, &plan, release.current.as_ref()).await?;

    // 3. helm upgrade (--install) with the one computed values file; the chart's scratch
    // directory goes with the installation once helm has run.
    let verb = if plan.install { "install" } else { "upgrade" };
    installation
        .helm
        .run(&installation.command)
        .map_err(|source| UpgradeError::HelmFailed {
            verb,
            backup: plan.files.backup_file.clone(),
            way_back: way_back.clone(),
            source,
        })?;
    drop(installation);

    // 4. The new revision must be deployed.
    let latest = release.store.latest(&plan.release.name).await?;
    let status = latest.release.status();
    let previous = release.current.as_ref().map(|c| c.revision);
    if previous.is_some_and(|p| latest.revision <= p) || status != ReleaseStatus::Deployed {
        return Err(UpgradeError::NotDeployed {
            release: plan.release.name,
            revision: latest.revision,
            status: status.to_string(),
            backup: plan.files.backup_file,
            way_back,
        });
    }
    Ok(UpgradeSummary {
        release: plan.release,
        installed: plan.install,
        previous_revision: previous,
        revision: latest.revision,
        status: status.to_string(),
        chart: plan.chart,
        chart_version: plan.chart_version,
        files: plan.files,
        crds: applied,
        way_back,
        helm_reasons: plan.helm_reasons,
    })
}

/// Refuses a plan whose pre-flight failed, or whose CRDs the apply would refuse, before the
/// backup or anything else.
fn refuse_blocked(plan: &UpgradePlan, crds: &CrdChanges) -> Result<(), UpgradeError> {
    if !plan.preflight.passed() {
        let failed: Vec<String> = failed_checks(&plan.preflight).collect();
        return Err(UpgradeError::PreflightFailed {
            release: plan.release.name.clone(),
            namespace: plan.release.namespace.clone(),
            failed: failed.join("; "),
        });
    }
    check_plans(&plan.crds, crds.applier.options())?;
    Ok(())
}

/// The summary of an upgrade that had nothing to do: the current revision, every CRD
/// unchanged, no file written.
fn nothing_to_do(plan: UpgradePlan, current: &ReleaseRecord) -> UpgradeSummary {
    let crds = plan
        .crds
        .iter()
        .map(|p| AppliedCrd {
            name: p.name.clone(),
            action: p.action.clone(),
            resource_version: None,
            taken_over: Vec::new(),
        })
        .collect();
    UpgradeSummary {
        release: plan.release,
        installed: false,
        previous_revision: Some(current.revision),
        revision: current.revision,
        status: current.release.status().to_string(),
        chart: plan.chart,
        chart_version: plan.chart_version,
        files: UpgradeFiles::default(),
        crds,
        way_back: "nothing was changed".to_string(),
        helm_reasons: Vec::new(),
    }
}

/// Writes the values backup, the computed values and (for a bundle) the record of its images,
/// all mode 0600, before anything in the cluster changes.
fn write_values(
    values: &UpgradeValues,
    plan: &UpgradePlan,
    images: &[crate::ops::image_keys::DeployedImage],
) -> Result<(), UpgradeError> {
    let files = &plan.files;
    std::fs::create_dir_all(&values.backup_dir)
        .map_err(|source| UpgradeError::io("create", &values.backup_dir, source))?;
    write_with(
        &files.backup_file,
        values.backup_yaml.as_bytes(),
        Access::Private,
    )
    .map_err(BundleError::from)?;
    write_with(
        &files.values_file,
        values.values_yaml.as_bytes(),
        Access::Private,
    )
    .map_err(BundleError::from)?;
    if let Some(images_file) = &files.images_file {
        let record = serde_json::to_vec_pretty(&serde_json::json!({
            "release": plan.release,
            "chart": plan.chart,
            "chartVersion": plan.chart_version,
            "images": images,
        }))
        .expect("the record serializes");
        write_with(images_file, &record, Access::Private).map_err(BundleError::from)?;
    }
    tracing::info!(backup = %files.backup_file.display(), "values backed up");
    Ok(())
}

/// Saves the live CRDs the plan changes (when it changes any), then applies the chart's.
async fn apply_crds(
    crds: &CrdChanges,
    plan: &UpgradePlan,
    current: Option<&ReleaseRecord>,
) -> Result<Vec<AppliedCrd>, UpgradeError> {
    if let Some(file) = &plan.files.crd_snapshot_file {
        let snapshot = CrdSnapshot::take(
            &crds.client,
            &plan.crds,
            &plan.release.name,
            &plan.release.namespace,
            current.map_or(0, |c| c.revision),
            plan.deployed_chart_version.clone(),
        )
        .await?;
        snapshot.write(file)?;
        tracing::info!(snapshot = %file.display(), "CRDs saved");
    }
    if crds.documents.is_empty() {
        return Ok(Vec::new());
    }
    crds.applier
        .apply_planned(&crds.documents, plan.crds.clone())
        .await
        .map_err(|source| UpgradeError::Crds {
            backup: plan.files.backup_file.clone(),
            source: Box::new(source),
        })
}

/// The command that returns to the state before the upgrade: uninstall a new release; else
/// roll back to the last deployed revision, through `kantup rollback` when CRDs change (helm
/// rollback leaves CRDs as the upgrade made them).
fn way_back(helm: &Helm, plan: &UpgradePlan, release: &ReleaseState, backup_dir: &Path) -> String {
    match (&release.current, release.rollback_revision) {
        (None, _) => format!(
            "to remove the new release: {}",
            helm.uninstall_command(&plan.release.name, &plan.release.namespace)
        ),
        (Some(current), revision) => {
            let revision = revision.unwrap_or(current.revision);
            match &plan.files.crd_snapshot_file {
                // helm rollback leaves CRDs as the upgrade made them; kantup rollback does not.
                Some(_) => format!(
                    "to return to revision {revision} with its CRDs: kantup rollback --release {} \
                     -n {} --to-revision {revision} --backup-dir {} (helm alone: {})",
                    plan.release.name,
                    plan.release.namespace,
                    backup_dir.display(),
                    helm.rollback_command(&plan.release.name, revision, &plan.release.namespace)
                ),
                None => format!(
                    "to return to revision {revision}: {}",
                    helm.rollback_command(&plan.release.name, revision, &plan.release.namespace)
                ),
            }
        }
    }
}
