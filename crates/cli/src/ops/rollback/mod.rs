//! A CRD-safe rollback: `helm rollback`, then the CRDs put back as they were when the target
//! revision ran (helm never rolls CRDs back), from the snapshots `kantup upgrade` writes
//! beside its values backups.
//!
//! For every CRD, the snapshot of the earliest upgrade made from the target revision or later
//! that touched it gives its state at the target revision. A changed CRD is restored with a
//! server-side apply (asked of the server first as a dry-run); a CRD those upgrades created is
//! deleted only when no custom object of it exists (deleting a CRD deletes its objects), else
//! left in place and reported. A restore that would remove a version still listed in the CRD's
//! `status.storedVersions` is refused before anything changes: objects stored in that version
//! could no longer be read.
//!
//! The order is the upgrade's, reversed: helm first (the new chart's objects, possibly of the
//! new CRD versions, are replaced by the old chart's), then the CRDs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::rollback::{self, RollbackOptions};
//! let options = RollbackOptions::new("kant", "kant-system");
//! let prepared = rollback::plan(&options).await?;
//! if prepared.plan().blockers.is_empty() {
//!     let done = rollback::execute(prepared).await?;
//!     println!("revision {} runs chart {}", done.revision, done.chart_version);
//! }
//! # Ok(()) }
//! ```

mod error;
mod execute;
mod plan;
mod snapshots;

use std::path::PathBuf;
use std::time::Duration;

use crate::ops::release::ReleaseId;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::release::{ReleaseRecord, StorageDriver};

pub use error::RollbackError;
pub use execute::{RollbackSummary, execute};
pub use plan::{AddedCrd, PreparedRollback, RollbackPlan, plan};

/// What to roll back, and how.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The release.
    pub release: ReleaseId,
    /// The revision to return to; default: the newest earlier revision that was deployed.
    pub to_revision: Option<u32>,
    /// Where `kantup upgrade` wrote its backups and CRD snapshots.
    pub backup_dir: PathBuf,
    /// The helm binary.
    pub helm: PathBuf,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// Helm's storage driver.
    pub driver: StorageDriver,
    /// helm's `--timeout`, and how long to wait for restored CRDs.
    pub timeout: Duration,
    /// helm's `--wait`.
    pub wait: bool,
    /// Leave CRDs as they are (what `helm rollback` alone does).
    pub skip_crds: bool,
}

impl RollbackOptions {
    /// Options with `kantup rollback`'s defaults: the previous deployed revision, backups in
    /// the current directory, `helm` from `PATH`, kubectl's cluster resolution.
    pub fn new(release: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            release: ReleaseId::new(release, namespace),
            to_revision: None,
            backup_dir: PathBuf::from("."),
            helm: PathBuf::from("helm"),
            cluster: ClusterAccess::default(),
            driver: StorageDriver::Secret,
            timeout: Duration::from_secs(300),
            wait: false,
            skip_crds: false,
        }
    }
}

/// The chart version a revision runs (empty when its record names no chart).
fn chart_version(record: &ReleaseRecord) -> String {
    record
        .release
        .chart_metadata()
        .map(|m| m.version.clone())
        .unwrap_or_default()
}
