//! Why a rollback cannot be planned or failed.

use std::path::PathBuf;

use crate::ops::helm::HelmError;

/// Why a rollback cannot be planned or failed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The Kubernetes API, a snapshot file or a CRD restore failed.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// helm could not be run, or failed.
    #[error("{0}")]
    Helm(#[from] HelmError),
    /// There is no earlier revision to return to.
    #[error(
        "release {release} in {namespace}: no earlier deployed revision to roll back to (revisions: {revisions})"
    )]
    NoTarget {
        /// The release.
        release: String,
        /// The namespace.
        namespace: String,
        /// The revisions present.
        revisions: String,
    },
    /// The asked-for revision is not earlier than the current one.
    #[error(
        "release {release}: revision {target} is not earlier than the current revision {current}"
    )]
    NotEarlier {
        /// The release.
        release: String,
        /// The revision asked for.
        target: u32,
        /// The current revision.
        current: u32,
    },
    /// The plan says the rollback must not go ahead.
    #[error("rollback of {release} refused; nothing was changed: {}", blockers.join("; "))]
    Refused {
        /// The release.
        release: String,
        /// Why.
        blockers: Vec<String>,
    },
    /// The backup directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// helm rolled back, but the release is not where it should be.
    #[error(
        "after helm rollback, release {release} is at revision {revision} ({status}, chart {chart_version}), expected a new deployed revision with chart {expected}"
    )]
    NotRolledBack {
        /// The release.
        release: String,
        /// Its latest revision.
        revision: u32,
        /// That revision's status.
        status: String,
        /// That revision's chart version.
        chart_version: String,
        /// The target's chart version.
        expected: String,
    },
    /// helm rolled back but restoring the CRDs failed.
    #[error("helm rolled {release} back to revision {revision}, but restoring CRDs from {} failed: {source}", snapshots.join(", "))]
    CrdsAfterHelm {
        /// The release.
        release: String,
        /// The new revision.
        revision: u32,
        /// The snapshot files used.
        snapshots: Vec<String>,
        /// Why.
        #[source]
        source: Box<kantup_k8s_apply::Error>,
    },
}
