//! `kantup status`: the readiness of a release as it is now, and the wait that `upgrade` and
//! `rollback` run after helm. Both judge the objects of one revision's manifest (helm's release
//! record) with kstatus's rules ([`kantup_k8s_apply::readiness`]); `status` changes nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kantup::ops::status::StatusError> {
//! use kantup::ops::status::{self, StatusOptions};
//! let report = status::status(&StatusOptions::new("kant", "kant-system")).await?;
//! for object in report.objects.iter().filter(|o| !o.is_current()) {
//!     println!("{} {}: {:?}", object.object, object.readiness, object.details);
//! }
//! # Ok(()) }
//! ```

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::readiness::{
    ManifestError, ObjectRef, ObjectReport, WaitOptions, WaitOutcome, Waiter, objects_of_manifest,
};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore, StorageDriver};
use serde::Serialize;

use crate::ops::release::ReleaseId;

/// Which release to report on.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// The release.
    pub release: ReleaseId,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// Helm's storage driver.
    pub driver: StorageDriver,
}

impl StatusOptions {
    /// The release `name` in `namespace`, kubectl's cluster resolution, Secret storage.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            release: ReleaseId::new(name, namespace),
            cluster: ClusterAccess::default(),
            driver: StorageDriver::Secret,
        }
    }
}

/// The readiness of every object of one revision.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReadiness {
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseId,
    /// The revision whose manifest was judged.
    pub revision: u32,
    /// Its chart version.
    pub chart_version: String,
    /// Helm's status of the revision (`deployed`, `failed`, ...).
    pub helm_status: String,
    /// Every object of the manifest (and the CRDs given), in manifest order.
    pub objects: Vec<ObjectReport>,
    /// Whether every object is Current.
    pub ready: bool,
    /// Whether a wait ran out of time (always false for `status`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl ReleaseReadiness {
    /// The objects that are not Current.
    pub fn not_ready(&self) -> impl Iterator<Item = &ObjectReport> {
        self.objects.iter().filter(|o| !o.is_current())
    }

    fn new(release: &ReleaseId, record: &ReleaseRecord, objects: Vec<ObjectReport>) -> Self {
        Self {
            release: release.clone(),
            revision: record.revision,
            chart_version: record
                .release
                .chart_metadata()
                .map(|m| m.version.clone())
                .unwrap_or_default(),
            helm_status: record.release.status().as_str().to_string(),
            ready: objects.iter().all(ObjectReport::is_current),
            objects,
            timed_out: false,
        }
    }
}

/// Why the readiness of a release could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The cluster or the release records could not be read.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// There is no such release.
    #[error("release {0}: not found (no helm release records)")]
    NoRelease(ReleaseId),
    /// The revision's manifest does not parse.
    #[error("release {release} revision {revision}: {source}")]
    Manifest {
        /// The release.
        release: ReleaseId,
        /// The revision.
        revision: u32,
        /// What is wrong.
        source: ManifestError,
    },
}

/// The revision `status` reports on: the newest deployed one, else the newest of all.
fn reported_revision(history: Vec<ReleaseRecord>) -> Option<ReleaseRecord> {
    let deployed = history
        .iter()
        .rposition(|r| r.release.status() == ReleaseStatus::Deployed);
    let mut history = history;
    match deployed {
        Some(i) => Some(history.swap_remove(i)),
        None => history.pop(),
    }
}

/// The objects of `record`'s manifest, namespaced in the release's namespace by default.
pub fn revision_objects(
    release: &ReleaseId,
    record: &ReleaseRecord,
) -> Result<Vec<ObjectRef>, StatusError> {
    objects_of_manifest(&record.release.manifest, &release.namespace).map_err(|source| {
        StatusError::Manifest {
            release: release.clone(),
            revision: record.revision,
            source,
        }
    })
}

/// The CRDs named, as references for the waiter.
pub fn crd_objects<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<ObjectRef> {
    names
        .into_iter()
        .map(|name| {
            ObjectRef::new(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                name,
            )
        })
        .collect()
}

/// The readiness of the release's deployed revision as it is now. Changes nothing.
pub async fn status(options: &StatusOptions) -> Result<ReleaseReadiness, StatusError> {
    let client = options.cluster.client().await?;
    let store = ReleaseStore::new(client.clone(), &options.release.namespace, options.driver);
    let record = reported_revision(store.history(&options.release.name).await?)
        .ok_or_else(|| StatusError::NoRelease(options.release.clone()))?;
    let objects = revision_objects(&options.release, &record)?;
    let reports = Waiter::new(client).snapshot(&objects).await;
    Ok(ReleaseReadiness::new(&options.release, &record, reports))
}

/// Waits until every object of `revision` of the release (and the `crds` named) is Current, or
/// the ones that are not have failed, or `wait.timeout` passes; `on_change` hears each
/// object's changes as they come.
pub async fn wait_for_revision(
    cluster: &ClusterAccess,
    release: &ReleaseId,
    driver: StorageDriver,
    revision: u32,
    crds: &[String],
    wait: &WaitOptions,
    on_change: impl FnMut(&ObjectReport),
) -> Result<ReleaseReadiness, StatusError> {
    let client = cluster.client().await?;
    let store = ReleaseStore::new(client.clone(), &release.namespace, driver);
    let record = store.revision(&release.name, revision).await?;
    let mut objects = crd_objects(crds);
    objects.extend(revision_objects(release, &record)?);
    let WaitOutcome {
        objects: reports,
        timed_out,
    } = Waiter::new(client).wait(&objects, wait, on_change).await;
    let mut readiness = ReleaseReadiness::new(release, &record, reports);
    readiness.timed_out = timed_out;
    Ok(readiness)
}
