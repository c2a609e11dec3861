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

    /// What kept the release from being restored, in one line: the rollback's error, or the
    /// rolled-back revision's objects that are not ready; `None` when [`restored`](Self::restored).
    pub fn problem(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        let done = self.rollback.as_ref()?;
        let readiness = self.readiness.as_ref().filter(|r| !r.ready)?;
        let objects: Vec<String> = readiness
            .not_ready()
            .map(|o| format!("{} {}", o.object, o.readiness))
            .collect();
        Some(format!(
            "rolled back to revision {} (now revision {}), which is not ready either: {}",
            done.target_revision,
            done.revision,
            objects.join(", ")
        ))
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

#[cfg(test)]
mod tests {
    use kantup_k8s_apply::readiness::{ObjectRef, Readiness, Status};

    use super::*;
    use crate::ops::release::ReleaseId;

    fn outcome(ready: bool) -> RollbackOutcome {
        let release = ReleaseId {
            name: "kant".into(),
            namespace: "kant-system".into(),
        };
        let status = if ready {
            Status::Current
        } else {
            Status::InProgress
        };
        RollbackOutcome {
            target_revision: 1,
            rollback: Some(RollbackSummary {
                release: release.clone(),
                revision: 3,
                target_revision: 1,
                chart_version: "0.4.0".into(),
                crds_restored: Vec::new(),
                crds_deleted: Vec::new(),
                crds_kept: Vec::new(),
            }),
            readiness: Some(ReleaseReadiness {
                release,
                revision: 3,
                chart_version: "0.4.0".into(),
                helm_status: "deployed".into(),
                objects: vec![ObjectReport {
                    object: ObjectRef {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        namespace: Some("kant-system".into()),
                        name: "cloudcore".into(),
                    },
                    readiness: Readiness::new(status, "", "Ready: 0/2"),
                    details: Vec::new(),
                }],
                ready,
                timed_out: !ready,
            }),
            error: None,
        }
    }

    #[test]
    fn a_rollback_whose_revision_is_not_ready_says_so() {
        assert!(outcome(true).restored());
        assert_eq!(outcome(true).problem(), None);
        let stuck = outcome(false);
        assert!(!stuck.restored());
        let problem = stuck.problem().expect("a problem");
        assert!(
            problem.starts_with(
                "rolled back to revision 1 (now revision 3), which is not ready either: "
            ) && problem.contains("cloudcore"),
            "{problem}"
        );
        let failed = RollbackOutcome {
            error: Some("helm rollback failed".into()),
            ..outcome(true)
        };
        assert_eq!(failed.problem().as_deref(), Some("helm rollback failed"));
    }
}
