//! The changing half of an upgrade: the values backup first, then the CRDs (after a snapshot
//! of the live ones they change), then `helm upgrade`, then the check that the new revision is
//! deployed.

use std::path::Path;

use kantup_bundle::BundleError;
use kantup_bundle::atomic::{Access, write_with};
use kantup_k8s_apply::crd::{AppliedCrd, CrdSnapshot, check_plans};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus};
use serde::Serialize;

use super::plan::failed_checks;
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
        let failed: Vec<String> = failed_checks(&plan.preflight).collect();
        return Err(UpgradeError::PreflightFailed {
            release: plan.release.name,
            namespace: plan.release.namespace,
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
            installed: false,
            previous_revision: Some(current.revision),
            revision: current.revision,
            status: current.release.status().to_string(),
            chart: plan.chart,
            chart_version: plan.chart_version,
            files: UpgradeFiles::default(),
            crds: unchanged_crds(),
            way_back: "nothing was changed".to_string(),
            helm_reasons: Vec::new(),
        });
    }

    // 1. The backup, before anything in the cluster changes.
    std::fs::create_dir_all(&options.backup_dir)
        .map_err(|source| UpgradeError::io("create", &options.backup_dir, source))?;
    write_with(
        &plan.files.backup_file,
        backup_yaml.as_bytes(),
        Access::Private,
    )
    .map_err(BundleError::from)?;
    write_with(
        &plan.files.values_file,
        values_yaml.as_bytes(),
        Access::Private,
    )
    .map_err(BundleError::from)?;
    if let Some(images_file) = &plan.files.images_file {
        let record = serde_json::to_vec_pretty(&serde_json::json!({
            "release": plan.release,
            "chart": plan.chart,
            "chartVersion": plan.chart_version,
            "images": chart.images,
        }))
        .expect("the record serializes");
        write_with(images_file, &record, Access::Private).map_err(BundleError::from)?;
    }
    tracing::info!(backup = %plan.files.backup_file.display(), "values backed up");
    let way_back = way_back(
        &helm,
        &plan,
        current.as_ref(),
        rollback_revision,
        &options.backup_dir,
    );

    // 2. CRDs (helm never upgrades them, and installs them only once), after saving the live
    // ones they change, so `kantup rollback` can put them back.
    if let Some(file) = &plan.files.crd_snapshot_file {
        let snapshot = CrdSnapshot::take(
            &client,
            &plan.crds,
            &plan.release.name,
            &plan.release.namespace,
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
                backup: plan.files.backup_file.clone(),
                source: Box::new(source),
            })?
    };

    // 3. helm upgrade (--install) with the one computed values file.
    let verb = if plan.install { "install" } else { "upgrade" };
    helm.run(&helm_command)
        .map_err(|source| UpgradeError::HelmFailed {
            verb,
            backup: plan.files.backup_file.clone(),
            way_back: way_back.clone(),
            source,
        })?;
    drop(chart);

    // 4. The new revision must be deployed.
    let latest = store.latest(&plan.release.name).await?;
    let status = latest.release.status();
    let previous = current.as_ref().map(|c| c.revision);
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

/// The command that returns to the state before the upgrade: uninstall a new release; else
/// roll back to the last deployed revision, through `kantup rollback` when CRDs change (helm
/// rollback leaves CRDs as the upgrade made them).
fn way_back(
    helm: &Helm,
    plan: &UpgradePlan,
    current: Option<&ReleaseRecord>,
    rollback_revision: Option<u32>,
    backup_dir: &Path,
) -> String {
    match (current, rollback_revision) {
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
