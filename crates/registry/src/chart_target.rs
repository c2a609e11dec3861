//! Uploading a packaged Helm chart to its target: an OCI registry (Helm's media types), a
//! Harbor or ChartMuseum chart repository, or a local repository directory with `index.yaml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use kantup_bundle::Digest;
use kantup_bundle::chart::{Chart, oci_tag};
use kantup_bundle::media_types;

use crate::chart_index::{ChartMetadata, IndexFile, chart_metadata, sha256_file};
use crate::client::RegistryClient;
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::net::{HttpOptions, TlsError, same_host};

/// A packaged chart (`<name>-<version>.tgz` bytes) and its `Chart.yaml`, made from a
/// [`Chart`] in memory: the archive is built once and never read back.
#[derive(Debug, Clone)]
pub struct PackagedChart {
    /// The chart name.
    pub name: String,
    /// The chart version.
    pub version: String,
    /// Chart.yaml as JSON (the OCI config blob).
    pub metadata: serde_json::Value,
    /// The archive.
    pub tgz: Bytes,
    digest: Digest,
    index_metadata: ChartMetadata,
}

impl PackagedChart {
    /// Packages `chart` ([`Chart::package`]).
    ///
    /// ```
    /// # let fixtures = kantup_test_support::relok8s_fixtures();
    /// use kantup_registry::chart_target::PackagedChart;
    /// let chart = kantup_bundle::chart::Chart::load(fixtures.join("testchart"))?;
    /// let packaged = PackagedChart::new(&chart)?;
    /// assert_eq!(packaged.file_name(), "testchart-0.1.0.tgz");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(chart: &Chart) -> Result<Self> {
        let tgz = chart.package().map_err(invalid_chart)?;
        Self::of(chart, Bytes::from(tgz))
    }

    /// A chart archive made elsewhere, read (and checked) as a [`Chart`].
    pub fn from_tgz(tgz: impl Into<Bytes>) -> Result<Self> {
        let tgz = tgz.into();
        let chart = Chart::load_tgz_bytes("chart package", &tgz).map_err(invalid_chart)?;
        Self::of(&chart, tgz)
    }

    fn of(chart: &Chart, tgz: Bytes) -> Result<Self> {
        let bad = |reason: String| {
            RegistryError::Invalid(format!("chart {}: Chart.yaml: {reason}", chart.name()))
        };
        let raw = chart
            .files
            .get("Chart.yaml")
            .ok_or_else(|| bad("missing".into()))?;
        let yaml: serde_yaml::Value =
            serde_yaml::from_slice(raw).map_err(|e| bad(e.to_string()))?;
        let metadata = serde_json::to_value(&yaml).map_err(|e| bad(e.to_string()))?;
        let index_metadata =
            chart_metadata(chart).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        Ok(Self {
            name: chart.name().to_owned(),
            version: chart.version().to_string(),
            metadata,
            digest: Digest::of(&tgz),
            tgz,
            index_metadata,
        })
    }

    /// `<name>-<version>.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }

    /// The sha256 digest of the archive.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

fn invalid_chart(error: kantup_bundle::BundleError) -> RegistryError {
    RegistryError::Invalid(error.to_string())
}

/// Where charts go.
#[derive(Clone)]
pub enum ChartTarget {
    /// `oci://host/prefix`: the chart lands at `host/prefix/<name>:<version with + as _>`.
    Oci {
        client: Arc<RegistryClient>,
        repository_prefix: String,
    },
    /// Harbor's ChartMuseum API: `url` is `https://harbor/chartrepo/<project>`.
    Harbor {
        url: String,
        credentials: Option<Credentials>,
        http: reqwest::Client,
    },
    /// ChartMuseum at `url`.
    ChartMuseum {
        url: String,
        credentials: Option<Credentials>,
        http: reqwest::Client,
    },
    /// A directory served as a chart repository (`index.yaml` beside the tgz files).
    Local { dir: PathBuf },
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

enum Existing {
    Absent,
    Same,
    Different,
}

impl ChartTarget {
    /// A Harbor or ChartMuseum target at `url`, its HTTP client built from `http`;
    /// `credentials` go only to `url`'s host.
    pub fn http_repo(
        kind_harbor: bool,
        url: &str,
        http: &HttpOptions,
        credentials: Option<Credentials>,
    ) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&url)
            .map_err(|e| RegistryError::Invalid(format!("chart repository url {url:?}: {e}")))?;
        let http = http.client_for(&authority(&parsed))?;
        Ok(if kind_harbor {
            ChartTarget::Harbor {
                url,
                credentials,
                http,
            }
        } else {
            ChartTarget::ChartMuseum {
                url,
                credentials,
                http,
            }
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
    /// version is an error unless `force`.
    pub async fn upload(&self, chart: &PackagedChart, force: bool) -> Result<ChartResult> {
        let existing = self.existing(chart).await?;
        let action = decide(self, chart, existing, force)?;
        if action != ChartAction::Skip {
            match self {
                ChartTarget::Oci {
                    client,
                    repository_prefix,
                } => push_oci(client, &self.oci_repo(repository_prefix, chart), chart).await?,
                ChartTarget::Harbor {
                    url,
                    credentials,
                    http,
                } => {
                    let api = harbor_api_url(url)?;
                    post_multipart(http, url, &api, credentials.as_ref(), chart, false).await?
                }
                ChartTarget::ChartMuseum {
                    url,
                    credentials,
                    http,
                } => {
                    let api = format!("{url}/api/charts");
                    post_multipart(http, url, &api, credentials.as_ref(), chart, force).await?
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
        let want = chart.digest().to_string();
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
                let layer = parsed["layers"]
                    .as_array()
                    .and_then(|l| {
                        l.iter()
                            .find(|d| d["mediaType"] == media_types::HELM_CHART_CONTENT)
                    })
                    .and_then(|d| d["digest"].as_str());
                Ok(if layer == Some(want.as_str()) {
                    Existing::Same
                } else {
                    Existing::Different
                })
            }
            ChartTarget::Harbor {
                url,
                credentials,
                http,
            }
            | ChartTarget::ChartMuseum {
                url,
                credentials,
                http,
            } => {
                let index_url = format!("{url}/index.yaml");
                let rb =
                    with_credentials(http.get(&index_url), url, &index_url, credentials.as_ref());
                let r = rb
                    .send()
                    .await
                    .map_err(|source| request_error("GET", &index_url, source))?;
                if r.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Existing::Absent);
                }
                if !r.status().is_success() {
                    return Err(RegistryError::Status {
                        method: "GET".into(),
                        url: index_url,
                        status: r.status().as_u16(),
                        body: String::new(),
                    });
                }
                let text = r
                    .text()
                    .await
                    .map_err(|source| request_error("GET", &index_url, source))?;
                let index = IndexFile::from_yaml_named(&text, &index_url)
                    .map_err(|e| RegistryError::Invalid(e.to_string()))?;
                Ok(index_state(&index, chart, &want))
            }
            ChartTarget::Local { dir } => {
                let file = dir.join(chart.file_name());
                if !file.exists() {
                    return Ok(Existing::Absent);
                }
                let have = sha256_file(&file).map_err(|e| RegistryError::Invalid(e.to_string()))?;
                Ok(if format!("sha256:{have}") == want {
                    // The tgz is in place; the index may still lack it (an interrupted run).
                    let index_path = dir.join("index.yaml");
                    let listed = index_path.is_file()
                        && IndexFile::load(&index_path)
                            .map(|i| i.has(&chart.name, &chart.version))
                            .unwrap_or(false);
                    if listed {
                        Existing::Same
                    } else {
                        Existing::Absent
                    }
                } else {
                    Existing::Different
                })
            }
        }
    }
}

fn index_state(index: &IndexFile, chart: &PackagedChart, want: &str) -> Existing {
    match index.get(&chart.name, &chart.version) {
        None => Existing::Absent,
        Some(v) => match &v.digest {
            Some(d) if format!("sha256:{}", d.trim_start_matches("sha256:")) == want => {
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

fn authority(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

/// Attaches the repository's credentials when `request_url` is on the repository's own host.
fn with_credentials(
    rb: reqwest::RequestBuilder,
    repo_url: &str,
    request_url: &str,
    credentials: Option<&Credentials>,
) -> reqwest::RequestBuilder {
    let own = match (url::Url::parse(repo_url), url::Url::parse(request_url)) {
        (Ok(repo), Ok(request)) => same_host(&repo, &request) && repo.scheme() == request.scheme(),
        _ => false,
    };
    match credentials {
        Some(c) if own => rb.header(reqwest::header::AUTHORIZATION, c.basic_header()),
        _ => rb,
    }
}

/// A request error: the TLS error naming the host when that is what it was.
fn request_error(method: &str, url: &str, source: reqwest::Error) -> RegistryError {
    let host = url::Url::parse(url)
        .map(|u| authority(&u))
        .unwrap_or_default();
    match TlsError::from_request(&host, &source) {
        Some(tls) => tls.into(),
        None => RegistryError::Transport {
            method: method.into(),
            url: url.to_string(),
            source,
        },
    }
}

/// `https://harbor/chartrepo/<project>` -> `https://harbor/api/chartrepo/<project>/charts`.
fn harbor_api_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| RegistryError::Invalid(format!("harbor url {url:?}: {e}")))?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let project = match segments.as_slice() {
        ["chartrepo", project] => *project,
        [project] => *project,
        _ => {
            return Err(RegistryError::Invalid(format!(
                "harbor url {url:?} must end in /chartrepo/<project>"
            )));
        }
    };
    let origin = parsed.origin().ascii_serialization();
    Ok(format!("{origin}/api/chartrepo/{project}/charts"))
}

async fn post_multipart(
    http: &reqwest::Client,
    repo_url: &str,
    api: &str,
    credentials: Option<&Credentials>,
    chart: &PackagedChart,
    force: bool,
) -> Result<()> {
    let part = reqwest::multipart::Part::bytes(chart.tgz.to_vec())
        .file_name(chart.file_name())
        .mime_str("application/gzip")
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let form = reqwest::multipart::Form::new().part("chart", part);
    let url = if force {
        format!("{api}?force=true")
    } else {
        api.to_string()
    };
    let rb = with_credentials(http.post(&url).multipart(form), repo_url, &url, credentials);
    let r = rb
        .send()
        .await
        .map_err(|source| request_error("POST", &url, source))?;
    if !r.status().is_success() {
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        return Err(RegistryError::Status {
            method: "POST".into(),
            url,
            status,
            body,
        });
    }
    Ok(())
}

async fn push_oci(client: &RegistryClient, repo: &str, chart: &PackagedChart) -> Result<()> {
    let config = Bytes::from(
        serde_json::to_vec(&chart.metadata)
            .map_err(|e| RegistryError::Invalid(format!("chart metadata: {e}")))?,
    );
    let config_size = config.len();
    let (config_digest, _) = client.ensure_blob_bytes(repo, config).await?;
    let layer_size = chart.tgz.len();
    let (layer_digest, _) = client.ensure_blob_bytes(repo, chart.tgz.clone()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {
            "mediaType": media_types::HELM_CONFIG,
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": media_types::HELM_CHART_CONTENT,
            "digest": layer_digest,
            "size": layer_size,
        }],
        "annotations": {
            "org.opencontainers.image.title": chart.name,
            "org.opencontainers.image.version": chart.version,
        }
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("json value serializes"));
    client
        .put_manifest(
            repo,
            &oci_tag(&chart.version),
            media_types::OCI_MANIFEST,
            bytes,
        )
        .await?;
    Ok(())
}

fn write_local(dir: &Path, chart: &PackagedChart) -> Result<()> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistryError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let file = dir.join(chart.file_name());
    kantup_bundle::atomic::write(&file, &chart.tgz).map_err(|e| RegistryError::File {
        path: e.path,
        source: e.source,
    })?;
    let index_path = dir.join("index.yaml");
    let mut index = if index_path.is_file() {
        IndexFile::load(&index_path).map_err(|e| RegistryError::Invalid(e.to_string()))?
    } else {
        IndexFile::new()
    };
    // Replace this version's entry (a forced overwrite) and keep all others, like
    // `helm repo index --merge` with the fresh archive winning.
    if let Some(versions) = index.entries.get_mut(&chart.name) {
        versions.retain(|v| v.metadata.version != chart.version);
    }
    index.add(
        chart.index_metadata.clone(),
        &chart.file_name(),
        None,
        &chart.digest.hex(),
    );
    index.sort_entries();
    index
        .write(&index_path)
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_urls() {
        let cases = [
            (
                "https://h.example/chartrepo/lib",
                Some("https://h.example/api/chartrepo/lib/charts"),
            ),
            (
                "http://127.0.0.1:8080/chartrepo/p/",
                Some("http://127.0.0.1:8080/api/chartrepo/p/charts"),
            ),
            ("https://h.example/a/b/c", None),
        ];
        for (url, want) in cases {
            assert_eq!(harbor_api_url(url).ok().as_deref(), want, "{url}");
        }
    }
}
