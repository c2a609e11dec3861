//! CRD snapshots: the live CRDs an upgrade is about to change, kept in a file beside the
//! values backup, so that a rollback can put them back. Helm never upgrades or rolls back
//! CRDs, so `helm rollback` alone leaves an upgrade's CRDs in place.
//!
//! A snapshot belongs to the release revision that was live when it was taken: restoring it
//! returns the CRDs to what that revision ran with. It holds each changed CRD as it was (without
//! server bookkeeping: no `status`, `managedFields`, `resourceVersion`, `uid`, timestamps) and
//! the names of the CRDs the upgrade created.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::load::{CrdDocument, load_crd_documents};
use super::plan::{CrdPlan, PlanAction};
use crate::error::{Error, Result};

/// The `kind` of a snapshot file.
pub const SNAPSHOT_KIND: &str = "CrdSnapshot";
/// The `apiVersion` of a snapshot file.
pub const SNAPSHOT_API_VERSION: &str = "kantup.dev/v1";

/// The CRDs of a release as they were before an upgrade changed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrdSnapshot {
    /// [`SNAPSHOT_API_VERSION`].
    pub api_version: String,
    /// [`SNAPSHOT_KIND`].
    pub kind: String,
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// The revision that was live when the snapshot was taken (0: none, a first install).
    pub revision: u32,
    /// The chart version of that revision, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    /// Each CRD the upgrade changed, as it was before.
    pub crds: Vec<Value>,
    /// The CRDs the upgrade created (they did not exist before).
    pub added: Vec<String>,
}

impl CrdSnapshot {
    /// Reads the live state of every CRD `plans` change or create.
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client, plans: Vec<kantup_k8s_apply::crd::CrdPlan>)
    /// # -> kantup_k8s_apply::Result<()> {
    /// use kantup_k8s_apply::crd::CrdSnapshot;
    /// let snapshot = CrdSnapshot::take(&client, &plans, "kant", "kant-system", 3, None).await?;
    /// snapshot.write("kant-kant-system-rev3.crds.yaml".as_ref())?;
    /// # Ok(()) }
    /// ```
    pub async fn take(
        client: &kube::Client,
        plans: &[CrdPlan],
        release: &str,
        namespace: &str,
        revision: u32,
        chart_version: Option<String>,
    ) -> Result<Self> {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        let mut crds = Vec::new();
        let mut added = Vec::new();
        for plan in plans {
            match plan.action {
                PlanAction::Unchanged => {}
                PlanAction::New => added.push(plan.name.clone()),
                PlanAction::Changed => {
                    let live = api.get(&plan.name).await.map_err(|e| {
                        Error::api(format!("get CustomResourceDefinition {}", plan.name), e)
                    })?;
                    crds.push(clean(serde_json::to_value(&live).unwrap_or_default()));
                }
            }
        }
        Ok(Self {
            api_version: SNAPSHOT_API_VERSION.to_string(),
            kind: SNAPSHOT_KIND.to_string(),
            release: release.to_string(),
            namespace: namespace.to_string(),
            revision,
            chart_version,
            crds,
            added,
        })
    }

    /// Whether there is anything to restore.
    pub fn is_empty(&self) -> bool {
        self.crds.is_empty() && self.added.is_empty()
    }

    /// Writes the snapshot as YAML, atomically, mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        let yaml = serde_yaml::to_string(self).map_err(|source| Error::Snapshot {
            path: path.to_path_buf(),
            reason: source.to_string(),
        })?;
        kantup_bundle::atomic::write_with(
            path,
            yaml.as_bytes(),
            kantup_bundle::atomic::Access::Private,
        )
        .map_err(Error::Io)
    }

    /// Reads a snapshot file, checking its kind.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| {
            Error::Io(kantup_bundle::FileError {
                action: "read",
                path: path.to_path_buf(),
                source,
            })
        })?;
        let snapshot: CrdSnapshot =
            serde_yaml::from_slice(&bytes).map_err(|source| Error::Snapshot {
                path: path.to_path_buf(),
                reason: source.to_string(),
            })?;
        if snapshot.kind != SNAPSHOT_KIND || snapshot.api_version != SNAPSHOT_API_VERSION {
            return Err(Error::Snapshot {
                path: path.to_path_buf(),
                reason: format!(
                    "expected {SNAPSHOT_API_VERSION} {SNAPSHOT_KIND}, found {} {}",
                    snapshot.api_version, snapshot.kind
                ),
            });
        }
        Ok(snapshot)
    }

    /// The snapshot's CRDs as documents to apply (origin `<file>#<index>`).
    pub fn documents(&self, file: &str) -> Result<Vec<CrdDocument>> {
        let bytes: Vec<Vec<u8>> = self
            .crds
            .iter()
            .map(|crd| serde_json::to_vec(crd).unwrap_or_default())
            .collect();
        let mut documents = Vec::with_capacity(bytes.len());
        for (index, crd) in bytes.iter().enumerate() {
            let mut one = load_crd_documents([(format!("{file}#{index}.json"), crd)])?;
            documents.append(&mut one);
        }
        Ok(documents)
    }
}

/// Removes what the server owns from a live object, leaving what an apply would set.
fn clean(mut crd: Value) -> Value {
    if let Some(object) = crd.as_object_mut() {
        object.remove("status");
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            for field in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "selfLink",
            ] {
                meta.remove(field);
            }
            if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    crd
}

/// Whether any custom object of the CRD `name` exists, in any namespace (one list request
/// with `limit=1` of a served version); `None` when the CRD itself does not exist.
pub async fn custom_objects_exist(client: &kube::Client, name: &str) -> Result<Option<bool>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let Some(crd) = crds
        .get_opt(name)
        .await
        .map_err(|e| Error::api(format!("get CustomResourceDefinition {name}"), e))?
    else {
        return Ok(None);
    };
    let Some(version) = crd
        .spec
        .versions
        .iter()
        .find(|v| v.served)
        .map(|v| v.name.clone())
    else {
        return Ok(Some(false));
    };
    let resource = ApiResource {
        group: crd.spec.group.clone(),
        version: version.clone(),
        api_version: format!("{}/{version}", crd.spec.group),
        kind: crd.spec.names.kind.clone(),
        plural: crd.spec.names.plural.clone(),
    };
    let objects: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let page = objects
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|e| Error::api(format!("list {} objects", crd.spec.names.kind), e))?;
    Ok(Some(!page.items.is_empty()))
}

/// How long [`delete_crd`] waits for a deleted CRD to be gone.
pub const CRD_DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes the CRD `name` (and with it every object of it: callers check
/// [`custom_objects_exist`] first) and waits until it is gone, as `kubectl delete` does: the
/// server only removes it once its cleanup finalizer has run, so without the wait the caller
/// would return while the CRD is still listed (terminating).
pub async fn delete_crd(client: &kube::Client, name: &str) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| Error::api(format!("delete CustomResourceDefinition {name}"), e))?;
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(50);
    loop {
        let Some(crd) = crds
            .get_opt(name)
            .await
            .map_err(|e| Error::api(format!("get CustomResourceDefinition {name}"), e))?
        else {
            return Ok(());
        };
        if started.elapsed() >= CRD_DELETE_TIMEOUT {
            return Err(Error::CrdNotDeleted {
                name: name.to_string(),
                finalizers: crd.metadata.finalizers.unwrap_or_default().join(", "),
                timeout: CRD_DELETE_TIMEOUT,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(1));
    }
}
