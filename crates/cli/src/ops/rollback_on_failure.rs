//! `--rollback-on-failure` (Helm 4's name for `--atomic`): when helm fails or the new revision
//! does not become ready, roll back as `kantup rollback` does (helm rollback to the revision
//! before the upgrade, CRDs back from the snapshot), then wait for the rolled-back revision to
//! be ready too. The outcome reports each step; the upgrade still counts as failed.

use kantup_k8s_apply::readiness::{ObjectReport, WaitOptions};
use serde::Serialize;

use crate::ops::rollback::{self, RollbackOptions, RollbackSummary};
use crate::ops::status::{ReleaseReadiness, wait_for_revision};

/// What the rollback after a failed upgrade did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    /// The revision rolled back to.
    pub target_revision: u32,
    /// The finished rollback; `None` when it was refused or failed (see `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSummary>,
    /// The readiness of the rolled-back revision, when waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReleaseReadiness>,
    /// Why the rollback, or the wait after it, did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RollbackOutcome {
    /// Whether the rollback ran and its revision is ready (or was not waited for).
    pub fn restored(&self) -> bool {
        self.rollback.is_some()
            && self.error.is_none()
            && self.readiness.as_ref().is_none_or(|r| r.ready)
    }
}

/// Rolls the release back to `options.to_revision` (the revision before the failed upgrade),
/// then, with `wait`, waits for the rolled-back revision and the CRDs it restored. Never fails:
/// every failure is in the outcome, so the caller reports it beside the upgrade's own.
pub async fn roll_back(
    options: &RollbackOptions,
    wait: Option<&WaitOptions>,
    on_change: impl FnMut(&ObjectReport),
) -> RollbackOutcome {
    let mut outcome = RollbackOutcome {
        target_revision: options.to_revision.unwrap_or_default(),
        rollback: None,
        readiness: None,
        error: None,
    };
    let prepared = match rollback::plan(options).await {
        Ok(prepared) => prepared,
        Err(error) => {
            outcome.error = Some(format!("planning the rollback: {error}"));
            return outcome;
        }
    };
    outcome.target_revision = prepared.plan().target_revision;
    let summary = match rollback::execute(prepared).await {
        Ok(summary) => summary,
        Err(error) => {
            outcome.error = Some(format!("rolling back: {error}"));
            return outcome;
        }
    };
    if let Some(wait) = wait {
        match wait_for_revision(
            &options.cluster,
            &summary.release,
            options.driver,
            summary.revision,
            &summary.crds_restored,
            wait,
            on_change,
        )
        .await
        {
            Ok(readiness) => outcome.readiness = Some(readiness),
            Err(error) => outcome.error = Some(format!("waiting after the rollback: {error}")),
        }
    }
    outcome.rollback = Some(summary);
    outcome
}
