//! Uploading a packaged Helm chart to its target: an OCI registry (Helm's media types), a
//! Harbor or ChartMuseum chart repository, or a local repository directory with `index.yaml`.
//! An upload that finds the same archive in place skips it; other content under the same name
//! and version is refused unless forced.
//!
//! ```
//! # let fixtures = kantup_test_support::relok8s_fixtures();
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use kantup_registry::chart_target::{ChartAction, ChartTarget, PackagedChart};
//! let chart = kantup_bundle::chart::Chart::load(fixtures.join("testchart"))?;
//! let packaged = PackagedChart::new(&chart)?;
//! let dir = tempfile::tempdir()?;
//! let target = ChartTarget::Local { dir: dir.path().join("charts") };
//! assert_eq!(target.plan(&packaged, false).await?, ChartAction::Upload);
//! let result = target.upload(&packaged, false).await?;
//! assert_eq!(result.digest, packaged.digest());
//! // The same archive again: nothing to do.
//! assert_eq!(target.upload(&packaged, false).await?.action, ChartAction::Skip);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use kantup_bundle::Digest;
use kantup_bundle::chart::oci_tag;

use crate::chart_http::ChartRepoClient;
use crate::chart_index::IndexFile;
use crate::client::RegistryClient;
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::net::HttpOptions;

mod http_repo;
mod local;
mod oci;
mod packaged;

pub use packaged::PackagedChart;

use http_repo::{harbor_api_url, post_multipart};
use local::write_local;
use oci::push_oci;

/// Where charts go.
#[derive(Clone)]
pub enum ChartTarget {
    /// `oci://host/prefix`: the chart lands at `host/prefix/<name>:<version with + as _>`.
    Oci {
        /// The registry client (its host is the target registry).
        client: Arc<RegistryClient>,
        /// The repository path under which charts go (`charts` puts `web` at `charts/web`).
        repository_prefix: String,
    },
    /// Harbor's ChartMuseum API: `url` is `https://harbor/chartrepo/<project>`.
    Harbor {
        /// `https://harbor/chartrepo/<project>`.
        url: String,
        /// The chart repository client (credentials only to `url`'s origin).
        client: ChartRepoClient,
    },
    /// ChartMuseum at `url`.
    ChartMuseum {
        /// The ChartMuseum base URL.
        url: String,
        /// The chart repository client (credentials only to `url`'s origin).
        client: ChartRepoClient,
    },
    /// A directory served as a chart repository (`index.yaml` beside the tgz files).
    Local {
        /// The repository directory (created when missing).
        dir: PathBuf,
    },
}

impl std::fmt::Debug for ChartTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What happens (or happened) to a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartAction {
    /// Not there yet: uploaded.
    Upload,
    /// The same content is already there.
    Skip,
    /// Other content with the same name and version is replaced (`force`).
    Overwrite,
}

impl std::fmt::Display for ChartAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChartAction::Upload => "upload",
            ChartAction::Skip => "skip",
            ChartAction::Overwrite => "overwrite",
        })
    }
}

/// The outcome of a chart upload.
#[derive(Debug, Clone, Serialize)]
pub struct ChartResult {
    /// `<name>-<version>`.
    pub chart: String,
    /// Where it is ([`ChartTarget::location`]).
    pub location: String,
    /// The sha256 digest of the archive.
    pub digest: Digest,
    /// What happened.
    pub action: ChartAction,
}

/// What the target holds under a chart's name and version.
enum Existing {
    Absent,
    Same,
    Different,
}

impl ChartTarget {
    /// A Harbor or ChartMuseum target at `url`, its [`ChartRepoClient`] built from `http`;
    /// `credentials` go only to `url`'s origin.
    pub fn http_repo(
        kind_harbor: bool,
        url: &str,
        http: &HttpOptions,
        credentials: Option<Credentials>,
    ) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&url)
            .map_err(|e| RegistryError::Invalid(format!("chart repository url {url:?}: {e}")))?;
        let client = ChartRepoClient::new(parsed, http, credentials)?;
        Ok(if kind_harbor {
            ChartTarget::Harbor { url, client }
        } else {
            ChartTarget::ChartMuseum { url, client }
        })
    }

    /// A readable name of the target.
    pub fn describe(&self) -> String {
        match self {
            ChartTarget::Oci {
                client,
                repository_prefix,
            } => format!("oci://{}/{}", client.host(), repository_prefix),
            ChartTarget::Harbor { url, .. } => format!("harbor {url}"),
            ChartTarget::ChartMuseum { url, .. } => format!("chartmuseum {url}"),
            ChartTarget::Local { dir } => format!("local {}", dir.display()),
        }
    }

    /// Where `chart` lands in this target.
    pub fn location(&self, chart: &PackagedChart) -> String {
        match self {
            ChartTarget::Oci {
                client,
                repository_prefix,
            } => format!(
                "oci://{}/{}:{}",
                client.host(),
                self.oci_repo(repository_prefix, chart),
                oci_tag(&chart.version)
            ),
            ChartTarget::Harbor { url, .. } | ChartTarget::ChartMuseum { url, .. } => {
                format!("{url}/charts/{}", chart.file_name())
            }
            ChartTarget::Local { dir } => dir.join(chart.file_name()).display().to_string(),
        }
    }

    fn oci_repo(&self, prefix: &str, chart: &PackagedChart) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            chart.name.clone()
        } else {
            format!("{prefix}/{}", chart.name)
        }
    }

    /// What uploading would do, touching nothing.
    pub async fn plan(&self, chart: &PackagedChart, force: bool) -> Result<ChartAction> {
        let existing = self.existing(chart).await?;
        decide(self, chart, existing, force)
    }

    /// Uploads `chart` unless the same content is there. Other content under the same name and
    /// version is an error ([`RegistryError::ChartConflict`]) unless `force`; the target's own
    /// failures (HTTP status, TLS, a registry error, a file that cannot be written) are returned
    /// as they are, and nothing is half-written (archives and indexes are written atomically,
    /// OCI manifests only after their blobs).
    pub async fn upload(&self, chart: &PackagedChart, force: bool) -> Result<ChartResult> {
        let existing = self.existing(chart).await?;
        let action = decide(self, chart, existing, force)?;
        if action != ChartAction::Skip {
            match self {
                ChartTarget::Oci {
                    client,
                    repository_prefix,
                } => push_oci(client, &self.oci_repo(repository_prefix, chart), chart).await?,
                ChartTarget::Harbor { url, client } => {
                    post_multipart(client, &harbor_api_url(url)?, chart, false).await?
                }
                ChartTarget::ChartMuseum { url, client } => {
                    post_multipart(client, &format!("{url}/api/charts"), chart, force).await?
                }
                ChartTarget::Local { dir } => write_local(dir, chart)?,
            }
        }
        Ok(ChartResult {
            chart: format!("{}-{}", chart.name, chart.version),
            location: self.location(chart),
            digest: chart.digest(),
            action,
        })
    }

    async fn existing(&self, chart: &PackagedChart) -> Result<Existing> {
        let want = chart.digest();
        match self {
            ChartTarget::Oci {
                client,
                repository_prefix,
            } => {
                let repo = self.oci_repo(repository_prefix, chart);
                let Some(_) = client
                    .head_manifest(&repo, &oci_tag(&chart.version))
                    .await?
                else {
                    return Ok(Existing::Absent);
                };
                let (manifest, _) = client.get_manifest(&repo, &oci_tag(&chart.version)).await?;
                let parsed: serde_json::Value = serde_json::from_slice(&manifest)
                    .map_err(|e| RegistryError::Invalid(format!("{repo}: manifest: {e}")))?;
                Ok(if oci::chart_layer_digest(&parsed) == Some(want) {
                    Existing::Same
                } else {
                    Existing::Different
                })
            }
            ChartTarget::Harbor { url, client } | ChartTarget::ChartMuseum { url, client } => {
                Ok(match http_repo::fetch_index(client, url).await? {
                    None => Existing::Absent,
                    Some(index) => index_state(&index, chart, want),
                })
            }
            ChartTarget::Local { dir } => local::existing(dir, chart),
        }
    }
}

/// Whether the index holds this chart version, and with the same archive. The index writes
/// the digest as helm does (bare hex, or with `sha256:`); one that is no digest is other content.
fn index_state(index: &IndexFile, chart: &PackagedChart, want: Digest) -> Existing {
    match index.get(&chart.name, &chart.version) {
        None => Existing::Absent,
        Some(v) => match &v.digest {
            Some(d) if Digest::from_hex(d.trim_start_matches("sha256:")).ok() == Some(want) => {
                Existing::Same
            }
            _ => Existing::Different,
        },
    }
}

fn decide(
    target: &ChartTarget,
    chart: &PackagedChart,
    existing: Existing,
    force: bool,
) -> Result<ChartAction> {
    match existing {
        Existing::Absent => Ok(ChartAction::Upload),
        Existing::Same => Ok(ChartAction::Skip),
        Existing::Different if force => Ok(ChartAction::Overwrite),
        Existing::Different => Err(RegistryError::ChartConflict {
            name: chart.name.clone(),
            version: chart.version.clone(),
            target: target.describe(),
        }),
    }
}
