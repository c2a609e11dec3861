//! Reading release records from the cluster.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::codec::decode_release;
use super::model::Release;
use crate::error::{Error, Result};

/// The Secret type Helm gives release records.
pub const RELEASE_SECRET_TYPE: &str = "helm.sh/release.v1";

/// Where Helm keeps release records (`HELM_DRIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum StorageDriver {
    /// Secrets (Helm's default; `HELM_DRIVER` unset, `secret` or `secrets`).
    #[default]
    Secret,
    /// ConfigMaps (`HELM_DRIVER=configmap` or `configmaps`).
    ConfigMap,
}

impl StorageDriver {
    /// Maps a `HELM_DRIVER` value the way Helm does. `sql` and `memory` are refused: their
    /// records are not in the cluster's API.
    pub fn from_helm_driver(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("") {
            "" | "secret" | "secrets" => Ok(StorageDriver::Secret),
            "configmap" | "configmaps" => Ok(StorageDriver::ConfigMap),
            other => Err(Error::UnsupportedDriver(other.to_string())),
        }
    }

    /// The Kubernetes kind (`Secret` / `ConfigMap`).
    pub fn kind(&self) -> &'static str {
        match self {
            StorageDriver::Secret => "Secret",
            StorageDriver::ConfigMap => "ConfigMap",
        }
    }

    /// The API resource (`secrets` / `configmaps`), for access reviews.
    pub fn resource(&self) -> &'static str {
        match self {
            StorageDriver::Secret => "secrets",
            StorageDriver::ConfigMap => "configmaps",
        }
    }
}

/// One decoded revision with the object it came from.
#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    /// `sh.helm.release.v1.<name>.v<revision>`.
    pub object_name: String,
    /// The revision (the record's `version`).
    pub revision: u32,
    /// The decoded release.
    pub release: Release,
}

/// Reads release records from one namespace.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> kantup_k8s_apply::Result<()> {
/// use kantup_k8s_apply::release::{ReleaseStore, StorageDriver};
/// let store = ReleaseStore::new(client, "kant-system", StorageDriver::Secret);
/// let latest = store.latest("kant").await?;
/// println!("revision {} is {}", latest.revision, latest.release.status());
/// # Ok(()) }
/// ```
pub struct ReleaseStore {
    client: kube::Client,
    namespace: String,
    driver: StorageDriver,
    page_size: u32,
}

/// Bounds the paging loop; 10 000 pages of 100 is far beyond Helm's history limit.
const MAX_PAGES: usize = 10_000;

impl ReleaseStore {
    /// A store for `namespace` using `driver`.
    pub fn new(client: kube::Client, namespace: impl Into<String>, driver: StorageDriver) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            driver,
            page_size: 100,
        }
    }

    /// Sets the list page size (`limit`); default 100.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The storage driver.
    pub fn driver(&self) -> StorageDriver {
        self.driver
    }

    /// Every revision of `name`, oldest first. Empty when the release does not exist.
    pub async fn history(&self, name: &str) -> Result<Vec<ReleaseRecord>> {
        let selector = format!("owner=helm,name={name}");
        let mut records = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = ListParams::default()
                .labels(&selector)
                .limit(self.page_size);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let (items, next) = self.list_page(&params).await?;
            for (object_name, data) in items {
                let object = format!("{} {}/{}", self.driver.kind(), self.namespace, object_name);
                let release = decode_release(&data)
                    .map_err(|source| Error::ReleaseDecode { object, source })?;
                records.push(ReleaseRecord {
                    object_name,
                    revision: release.version,
                    release,
                });
            }
            token = next.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        records.sort_by_key(|r| r.revision);
        Ok(records)
    }

    async fn list_page(
        &self,
        params: &ListParams,
    ) -> Result<(Vec<(String, Vec<u8>)>, Option<String>)> {
        match self.driver {
            StorageDriver::Secret => {
                self.list_records(params, |s: Secret| {
                    if s.type_.as_deref() != Some(RELEASE_SECRET_TYPE) {
                        return None;
                    }
                    let name = s.metadata.name?;
                    let data = s.data?.remove("release")?.0;
                    Some((name, data))
                })
                .await
            }
            StorageDriver::ConfigMap => {
                self.list_records(params, |c: ConfigMap| {
                    let name = c.metadata.name?;
                    let data = c.data?.remove("release")?.into_bytes();
                    Some((name, data))
                })
                .await
            }
        }
    }

    /// One page of the driver's objects, each turned into (object name, `release` data) by
    /// `record` (`None` skips it), and the token of the next page.
    async fn list_records<K>(
        &self,
        params: &ListParams,
        record: impl Fn(K) -> Option<(String, Vec<u8>)>,
    ) -> Result<(Vec<(String, Vec<u8>)>, Option<String>)>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = api.list(params).await.map_err(|e| {
            let action = format!(
                "list {}s labelled {} in namespace {}",
                self.driver.kind(),
                params.label_selector.as_deref().unwrap_or(""),
                self.namespace
            );
            Error::api(action, e)
        })?;
        let items = list.items.into_iter().filter_map(record).collect();
        Ok((items, list.metadata.continue_))
    }

    /// The newest revision of `name`.
    pub async fn latest(&self, name: &str) -> Result<ReleaseRecord> {
        self.history(name)
            .await?
            .pop()
            .ok_or_else(|| self.not_found(name))
    }

    /// Revision `revision` of `name`.
    pub async fn revision(&self, name: &str, revision: u32) -> Result<ReleaseRecord> {
        let history = self.history(name).await?;
        let latest = history
            .last()
            .map(|r| r.revision)
            .ok_or_else(|| self.not_found(name))?;
        history
            .into_iter()
            .find(|r| r.revision == revision)
            .ok_or_else(|| Error::RevisionNotFound {
                name: name.to_string(),
                namespace: self.namespace.clone(),
                revision,
                latest,
            })
    }

    fn not_found(&self, name: &str) -> Error {
        Error::ReleaseNotFound {
            name: name.to_string(),
            namespace: self.namespace.clone(),
            driver: format!("{}s", self.driver.kind()),
        }
    }
}
