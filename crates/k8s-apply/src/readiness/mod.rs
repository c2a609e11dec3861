//! Is it ready? kstatus's answer for any Kubernetes object, and a waiter that watches a set of
//! objects until they are.
//!
//! [kstatus](https://github.com/kubernetes-sigs/cli-utils/tree/master/pkg/kstatus) is what
//! Helm 4, Flux and Zarf use to judge readiness. This module follows its rules (written here
//! afresh, checked against kstatus itself by `tests/kstatus_table.rs`):
//!
//! - an object with `metadata.deletionTimestamp` is [`Status::Terminating`];
//! - one whose `status.observedGeneration` differs from `metadata.generation` is
//!   [`Status::InProgress`]: its controller has not seen the latest spec;
//! - a `Reconciling=True` condition means InProgress and `Stalled=True` means
//!   [`Status::Failed`], on any kind;
//! - Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, PersistentVolumeClaim, Service
//!   of type LoadBalancer, PodDisruptionBudget and CustomResourceDefinition have rules of their
//!   own (replica counts, phases, conditions); Secret, ConfigMap and CronJob are always ready;
//! - any other kind is judged by a `Ready` condition when it has one, else [`Status::Current`].
//!
//! [`compute`] is pure (JSON in, [`Readiness`] out). [`explain`] says what is wrong under a
//! workload that is not ready (its pods' waiting reasons with the image, `Unschedulable`, a
//! condition's message). [`Waiter`] watches objects on a cluster until all are Current, those
//! that are not have Failed, or a timeout passes; [`Waiter::snapshot`] reads them once.
//!
//! ```
//! use kantup_k8s_apply::readiness::{compute, Status};
//! let custom = serde_json::json!({
//!     "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
//!     "status": {"conditions": [{"type": "Ready", "status": "False",
//!                                "reason": "NoBackend", "message": "backend db is down"}]},
//! });
//! let readiness = compute(&custom);
//! assert_eq!(readiness.status, Status::InProgress);
//! assert_eq!(readiness.to_string(), "InProgress: backend db is down");
//! ```

mod compute;
pub mod explain;
mod objects;
mod wait;

pub use compute::{Condition, SCHEDULE_WINDOW, compute, compute_at, conditions};
pub use objects::{ManifestError, ObjectRef, objects_of_manifest};
pub use wait::{ObjectReport, WaitOptions, WaitOutcome, Waiter};

use std::fmt;

/// kstatus's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Status {
    /// Not yet what its spec asks for; waiting may help.
    InProgress,
    /// Will not get there without a change (a stalled controller, a failed Job, a crash loop).
    Failed,
    /// Fully reconciled: what the spec asks for.
    Current,
    /// Being deleted.
    Terminating,
    /// Not on the cluster.
    NotFound,
    /// Could not be judged (an unreadable status, an API error).
    Unknown,
}

impl Status {
    /// kstatus's name for it (`Current`, `InProgress`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Current => "Current",
            Status::Terminating => "Terminating",
            Status::NotFound => "NotFound",
            Status::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The readiness of one object: a [`Status`] with kstatus's one-line message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// The status.
    pub status: Status,
    /// A CamelCase reason when the rule gives one (`LessReady`, `JobFailed`), else empty.
    pub reason: String,
    /// One line saying why (`Ready: 0/2`, a condition's message).
    pub message: String,
}

impl Readiness {
    /// A readiness from its parts.
    pub fn new(status: Status, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}
