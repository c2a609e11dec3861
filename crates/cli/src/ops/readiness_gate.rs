//! The gate after helm, for one cluster: wait until the new revision (and the CRDs it applied)
//! is ready; when it is not, when the wait itself fails, or when the upgrade failed after helm
//! changed the release, roll back to the revision before when asked (`--rollback-on-failure`)
//! and wait for that one. `kantup upgrade` passes its cluster through it, [`crate::ops::fleet`]
//! each cluster of a wave; the rule lives here once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::progress::Silent;
//! use kantup::ops::readiness_gate::{self, GateOptions};
//! use kantup::ops::upgrade::{self, UpgradeOptions};
//! let options = UpgradeOptions::new("kant.bundle.tar", "kant", "kant-system");
//! let prepared = upgrade::plan(&options, &Silent).await?;
//! let mut gate = GateOptions::new(&options, prepared.plan().deployed_revision);
//! gate.rollback_on_failure = true;
//! let outcome = readiness_gate::pass(upgrade::execute(prepared).await, &gate, &mut ()).await;
//! if let Some(failure) = outcome.failure() {
//!     println!("failed: {failure}");
//! }
//! # Ok(()) }
//! ```

use kantup_k8s_apply::readiness::{ObjectReport, WaitOptions};

use crate::ops::rollback::RollbackOptions;
use crate::ops::rollback_on_failure::{self, RollbackOutcome};
use crate::ops::status::{ReleaseReadiness, StatusError, wait_for_revision};
use crate::ops::upgrade::{UpgradeError, UpgradeOptions, UpgradeSummary};

/// What the gate waits for and what it does on failure.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Wait for readiness, up to its timeout; `None` trusts helm (`--no-wait`).
    pub wait: Option<WaitOptions>,
    /// Roll back when the upgrade failed after helm changed the release, or its revision is
    /// not ready.
    pub rollback_on_failure: bool,
    /// How to reach the release and roll it back; its `to_revision` is the revision before the
    /// upgrade (`None` after an install: there is nothing to roll back to).
    pub rollback: RollbackOptions,
}

impl GateOptions {
    /// The gate for an upgrade run with `upgrade`, whose release was at `deployed_revision`
    /// before: wait up to the upgrade's timeout, no rollback.
    pub fn new(upgrade: &UpgradeOptions, deployed_revision: Option<u32>) -> Self {
        let mut rollback = RollbackOptions::new(&upgrade.release.name, &upgrade.release.namespace);
        rollback.to_revision = deployed_revision;
        rollback.backup_dir = upgrade.backup_dir.clone();
        rollback.helm = upgrade.helm.clone();
        rollback.cluster = upgrade.cluster.clone();
        rollback.driver = upgrade.driver;
        rollback.timeout = upgrade.timeout;
        Self {
            wait: Some(WaitOptions {
                timeout: upgrade.timeout,
            }),
            rollback_on_failure: false,
            rollback,
        }
    }
}

/// Hears the gate's steps as they happen (each method does nothing by default; `()` hears
/// nothing).
pub trait GateObserver {
    /// An object's readiness changed, during either wait.
    fn object(&mut self, report: &ObjectReport) {
        let _ = report;
    }
    /// The new revision was judged not ready (before any rollback).
    fn not_ready(&mut self, summary: &UpgradeSummary, readiness: &ReleaseReadiness) {
        let _ = (summary, readiness);
    }
    /// A rollback to `target` starts; `None`: there is no revision to roll back to (the
    /// outcome says so).
    fn rolling_back(&mut self, target: Option<u32>) {
        let _ = target;
    }
}

impl GateObserver for () {}

/// What passed the gate, and what did not.
#[derive(Debug)]
pub struct GateOutcome {
    /// The upgrade's own result.
    pub upgrade: Result<UpgradeSummary, UpgradeError>,
    /// The new revision's readiness, when it was waited for.
    pub readiness: Option<ReleaseReadiness>,
    /// Why the wait could not judge the new revision.
    pub wait_error: Option<StatusError>,
    /// The rollback, when one was asked for and due (also when there was nothing to roll back
    /// to: its `error` says so).
    pub rollback: Option<RollbackOutcome>,
    /// How long the wait was allowed.
    timeout: Option<std::time::Duration>,
}

impl GateOutcome {
    /// Whether the upgrade succeeded and its revision is ready (or was not waited for).
    pub fn passed(&self) -> bool {
        self.failure().is_none()
    }

    /// Why the gate did not pass, in one line; `None` when it did.
    pub fn failure(&self) -> Option<String> {
        let summary = match &self.upgrade {
            Err(error) => return Some(error.to_string()),
            Ok(summary) => summary,
        };
        if let Some(error) = &self.wait_error {
            return Some(format!("waiting for readiness: {error}"));
        }
        let readiness = self.readiness.as_ref().filter(|r| !r.ready)?;
        let objects: Vec<String> = readiness
            .not_ready()
            .map(|o| format!("{} {}", o.object, o.readiness))
            .collect();
        Some(format!(
            "revision {} is not ready{}: {}",
            summary.revision,
            match self.timeout.filter(|_| readiness.timed_out) {
                Some(timeout) => format!(" after {}", humantime::format_duration(timeout)),
                None => String::new(),
            },
            objects.join(", ")
        ))
    }
}

/// Whether a failed upgrade may have changed the release, so that a rollback is due: helm ran
/// and failed, or its revision is not deployed. Errors before helm changed nothing.
pub fn helm_changed_release(error: &UpgradeError) -> bool {
    matches!(
        error,
        UpgradeError::HelmFailed { .. } | UpgradeError::NotDeployed { .. }
    )
}

/// Passes the upgrade's `result` through the gate: the wait (unless `options.wait` is `None`),
/// then the rollback when due. Never fails: every failure is in the outcome.
pub async fn pass(
    result: Result<UpgradeSummary, UpgradeError>,
    options: &GateOptions,
    observer: &mut impl GateObserver,
) -> GateOutcome {
    let mut outcome = GateOutcome {
        upgrade: result,
        readiness: None,
        wait_error: None,
        rollback: None,
        timeout: options.wait.as_ref().map(|w| w.timeout),
    };
    let due = match &outcome.upgrade {
        Err(error) => helm_changed_release(error),
        Ok(summary) => {
            if let Some(wait) = &options.wait {
                let crds: Vec<String> = summary.crds.iter().map(|c| c.name.clone()).collect();
                match wait_for_revision(
                    &options.rollback.cluster,
                    &summary.release,
                    options.rollback.driver,
                    summary.revision,
                    &crds,
                    wait,
                    |report| observer.object(report),
                )
                .await
                {
                    Ok(readiness) => {
                        if !readiness.ready {
                            observer.not_ready(summary, &readiness);
                        }
                        outcome.readiness = Some(readiness);
                    }
                    Err(error) => outcome.wait_error = Some(error),
                }
            }
            !outcome.passed()
        }
    };
    if due && options.rollback_on_failure {
        outcome.rollback = Some(roll_back(options, observer).await);
    }
    outcome
}

async fn roll_back(options: &GateOptions, observer: &mut impl GateObserver) -> RollbackOutcome {
    observer.rolling_back(options.rollback.to_revision);
    if options.rollback.to_revision.is_none() {
        return RollbackOutcome {
            target_revision: 0,
            rollback: None,
            readiness: None,
            error: Some(
                "the release was installed by this run: there is no revision to roll back to"
                    .into(),
            ),
        };
    }
    rollback_on_failure::roll_back(&options.rollback, options.wait.as_ref(), |report| {
        observer.object(report)
    })
    .await
}
