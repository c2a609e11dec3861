//! The changing half of a rollback: `helm rollback`, the check that the target's chart runs
//! again, then the CRDs restored and the ones created since deleted when no object uses them.

use kantup_k8s_apply::crd::{custom_objects_exist, delete_crd};
use kantup_k8s_apply::release::ReleaseStatus;
use serde::Serialize;

use super::{PreparedRollback, RollbackError, chart_version};
use crate::ops::release::ReleaseId;

/// What a finished rollback reports.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackSummary {
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseId,
    /// The revision helm wrote for the rollback.
    pub revision: u32,
    /// The revision rolled back to.
    pub target_revision: u32,
    /// The chart version now running.
    pub chart_version: String,
    /// CRDs restored from the snapshots.
    pub crds_restored: Vec<String>,
    /// CRDs deleted (created since the target revision, without objects).
    pub crds_deleted: Vec<String>,
    /// CRDs left in place (created since the target revision, with objects).
    pub crds_kept: Vec<String>,
}

/// Carries out the plan: refuses when it has blockers; else `helm rollback`, a check that the
/// new revision is deployed with the target's chart, then the CRDs restored and the created
/// ones without objects deleted.
pub async fn execute(prepared: PreparedRollback) -> Result<RollbackSummary, RollbackError> {
    let PreparedRollback {
        plan,
        client,
        helm,
        helm_command,
        applier,
        documents,
        store,
    } = prepared;
    if !plan.blockers.is_empty() {
        return Err(RollbackError::Refused {
            release: plan.release.name,
            blockers: plan.blockers,
        });
    }
    helm.run(&helm_command)?;
    let latest = store.latest(&plan.release.name).await?;
    let status = latest.release.status();
    let chart_version = chart_version(&latest);
    if latest.revision <= plan.current_revision
        || status != ReleaseStatus::Deployed
        || chart_version != plan.target_chart_version
    {
        return Err(RollbackError::NotRolledBack {
            release: plan.release.name,
            revision: latest.revision,
            status: status.to_string(),
            chart_version,
            expected: plan.target_chart_version,
        });
    }
    let crd_failure = |source: kantup_k8s_apply::Error| RollbackError::CrdsAfterHelm {
        release: plan.release.name.clone(),
        revision: latest.revision,
        snapshots: plan
            .snapshots
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        source: Box::new(source),
    };
    let restored = applier
        .apply_planned(&documents, plan.crds.clone())
        .await
        .map_err(crd_failure)?;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for added in &plan.added_crds {
        match added.action {
            "delete" => {
                // Objects may have appeared since the plan: look again right before deleting.
                match custom_objects_exist(&client, &added.name)
                    .await
                    .map_err(crd_failure)?
                {
                    Some(false) => {
                        delete_crd(&client, &added.name)
                            .await
                            .map_err(crd_failure)?;
                        deleted.push(added.name.clone());
                    }
                    Some(true) => kept.push(added.name.clone()),
                    None => {}
                }
            }
            "keep" => kept.push(added.name.clone()),
            _ => {}
        }
    }
    Ok(RollbackSummary {
        release: plan.release,
        revision: latest.revision,
        target_revision: plan.target_revision,
        chart_version,
        crds_restored: restored
            .into_iter()
            .filter(|c| c.resource_version.is_some())
            .map(|c| c.name)
            .collect(),
        crds_deleted: deleted,
        crds_kept: kept,
    })
}
