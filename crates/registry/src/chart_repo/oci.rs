//! Charts in an OCI registry, laid out as helm pushes them: repository
//! `<registry>/<path>/<chart>`, one tag per version (`+` stored as `_`), an OCI image manifest
//! whose config is `Chart.yaml` as JSON and whose one layer is the chart archive.

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::chart::{MAX_CHART_SIZE, oci_tag, version_from_oci_tag};
use kantup_bundle::media_types;
use serde::Deserialize;

use super::{ChartVersionInfo, PulledChart, RepoError, is_safe_file_name, newest_first};
use crate::chart_index::parse_version;
use crate::client::{ClientOptions, RegistryClient};
use crate::credentials::CredentialResolver;
use crate::error::RegistryError;
use crate::location::split_reference;
use crate::net::HttpOptions;

/// How many versions get their app version and description read from their chart config
/// (two small requests each) when listing.
const METADATA_LIMIT: usize = 100;

/// Largest chart config blob read (it is `Chart.yaml` as JSON).
const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// An `oci://registry/path` chart repository.
#[derive(Debug)]
pub struct OciRepository {
    client: RegistryClient,
    host: String,
    /// The path after the host, without slashes around it.
    base: String,
}

/// One descriptor of an OCI manifest. The digest stays text until a pull checks it, so that a
/// digest kantup cannot verify is named as such.
#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// The parts of an OCI image manifest a chart pull reads.
#[derive(Debug, Deserialize)]
struct ChartManifest {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The registry repository of `chart` below `base`: helm's form names the chart in the URL
/// (`oci://host/charts/web`), kantup's also takes it as its own argument
/// (`oci://host/charts` + `web`); both are accepted.
pub(crate) fn chart_repository(base: &str, chart: &str) -> String {
    if base.rsplit('/').next() == Some(chart) {
        base.to_owned()
    } else {
        format!("{base}/{chart}")
    }
}

impl OciRepository {
    /// `reference` is what follows `oci://`.
    pub fn open(
        reference: &str,
        http: &HttpOptions,
        credentials: &CredentialResolver,
    ) -> Result<Self, RepoError> {
        let (host, base) = split_reference(reference).ok_or_else(|| {
            RepoError::BadLocation(format!(
                "oci://{reference} (expected oci://registry/repository)"
            ))
        })?;
        let options = ClientOptions {
            http: http.clone(),
            credentials: credentials.resolve(host)?,
            ..ClientOptions::default()
        };
        Ok(Self {
            client: RegistryClient::new(host, options)?,
            host: host.to_owned(),
            base: base.to_owned(),
        })
    }

    /// `oci://host/path`.
    pub fn location(&self) -> String {
        format!("oci://{}/{}", self.host, self.base)
    }

    /// The chart the reference names: its last path segment.
    pub fn default_chart(&self) -> &str {
        self.base.rsplit('/').next().unwrap_or(&self.base)
    }

    /// The registry client (for callers that need more than charts).
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    fn display(&self, repository: &str) -> String {
        format!("oci://{}/{repository}", self.host)
    }

    /// The SemVer versions among the tags of `repository`, newest first.
    async fn tag_versions(&self, repository: &str) -> Result<Vec<String>, RepoError> {
        let tags = self.client.list_tags(repository).await?;
        let infos = tags
            .into_iter()
            .map(|tag| ChartVersionInfo {
                name: String::new(),
                version: version_from_oci_tag(&tag),
                app_version: String::new(),
                description: String::new(),
                urls: Vec::new(),
                digest: None,
                created: None,
            })
            .collect();
        Ok(newest_first(infos).into_iter().map(|v| v.version).collect())
    }

    /// See [`super::ChartRepository::versions`]: app version and description come from each
    /// version's chart config (for the newest 100).
    pub async fn versions(&self, chart: &str) -> Result<Vec<ChartVersionInfo>, RepoError> {
        let repository = chart_repository(&self.base, chart);
        let versions = self.tag_versions(&repository).await?;
        let mut out = Vec::with_capacity(versions.len());
        for (position, version) in versions.into_iter().enumerate() {
            let metadata = if position < METADATA_LIMIT {
                self.chart_metadata(&repository, &oci_tag(&version)).await
            } else {
                None
            };
            let text = |key: &str| {
                metadata
                    .as_ref()
                    .and_then(|m| m.get(key))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push(ChartVersionInfo {
                name: chart.to_owned(),
                app_version: text("appVersion"),
                description: text("description"),
                version,
                urls: Vec::new(),
                digest: None,
                created: None,
            });
        }
        Ok(out)
    }

    /// The chart's `Chart.yaml` fields from its config blob; `None` (columns left empty, a
    /// debug log) when the manifest or config cannot be read or is not a Helm chart.
    async fn chart_metadata(&self, repository: &str, tag: &str) -> Option<serde_json::Value> {
        let result: Result<serde_json::Value, String> = async {
            let (manifest, _) = self
                .client
                .get_manifest(repository, tag)
                .await
                .map_err(|e| e.to_string())?;
            let manifest: ChartManifest =
                serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
            if manifest.config.media_type != media_types::HELM_CONFIG {
                return Err(format!(
                    "not a Helm chart (config {})",
                    manifest.config.media_type
                ));
            }
            let config_digest: Digest = manifest
                .config
                .digest
                .parse()
                .map_err(|e| format!("config: {e}"))?;
            let blob = self
                .client
                .get_blob_limited(repository, &config_digest, MAX_CONFIG_SIZE)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_slice(&blob).map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(metadata) => Some(metadata),
            Err(error) => {
                tracing::debug!("{repository}:{tag}: no chart metadata: {error}");
                None
            }
        }
    }

    /// See [`super::ChartRepository::pull`]: the version's tag, its OCI manifest (media types
    /// checked), the chart config (digest checked; its version must be the tag's), then the
    /// chart layer, whose size and digest must match the manifest.
    pub async fn pull(&self, chart: &str, version: Option<&str>) -> Result<PulledChart, RepoError> {
        let repository = chart_repository(&self.base, chart);
        let display = self.display(&repository);
        let version = match version {
            Some(version) if parse_version(version).is_none() => {
                return Err(RepoError::NotSemver {
                    version: version.to_owned(),
                });
            }
            Some(version) => version.to_owned(),
            None => {
                let versions = self.tag_versions(&repository).await?;
                let available: Vec<String> = versions.iter().take(10).cloned().collect();
                versions
                    .into_iter()
                    .find(|v| parse_version(v).is_some_and(|p| p.pre.is_empty()))
                    .ok_or_else(|| RepoError::NotFound {
                        chart: chart.to_owned(),
                        version: "(latest stable)".to_owned(),
                        repository: display.clone(),
                        available,
                    })?
            }
        };
        let tag = oci_tag(&version);
        let reference = format!("{display}:{tag}");
        let (manifest_bytes, info) = match self.client.get_manifest(&repository, &tag).await {
            Ok(found) => found,
            Err(RegistryError::Status { status: 404, .. }) => {
                return Err(RepoError::NotFound {
                    chart: chart.to_owned(),
                    version: format!("{version} (no tag {tag})"),
                    repository: display,
                    available: Vec::new(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        let not_a_chart = |reason: String| RepoError::NotAChart {
            reference: reference.clone(),
            reason,
        };
        let manifest: ChartManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| not_a_chart(format!("the manifest is not an OCI image manifest: {e}")))?;
        let media_type = manifest.media_type.as_deref().unwrap_or(&info.media_type);
        if media_type != media_types::OCI_MANIFEST {
            return Err(not_a_chart(format!(
                "manifest media type {media_type:?}, expected {}",
                media_types::OCI_MANIFEST
            )));
        }
        if manifest.config.media_type != media_types::HELM_CONFIG {
            return Err(not_a_chart(format!(
                "not a Helm chart: config media type {:?}, expected {}",
                manifest.config.media_type,
                media_types::HELM_CONFIG
            )));
        }
        let layer = manifest
            .layers
            .iter()
            .find(|layer| layer.media_type == media_types::HELM_CHART_CONTENT)
            .or_else(|| {
                manifest
                    .layers
                    .iter()
                    .find(|layer| layer.media_type == media_types::HELM_CHART_CONTENT_LEGACY)
            })
            .ok_or_else(|| {
                not_a_chart(format!(
                    "the manifest has no {} layer",
                    media_types::HELM_CHART_CONTENT
                ))
            })?;
        let [config_digest, layer_digest] = [&manifest.config, layer].map(|descriptor| {
            if !descriptor.digest.starts_with("sha256:") {
                return Err(not_a_chart(format!(
                    "digest {:?} is not sha256, which kantup cannot verify",
                    descriptor.digest
                )));
            }
            descriptor
                .digest
                .parse::<Digest>()
                .map_err(|e| not_a_chart(format!("the manifest names a bad digest: {e}")))
        });
        let (config_digest, layer_digest) = (config_digest?, layer_digest?);
        if layer.size > MAX_CHART_SIZE {
            return Err(not_a_chart(format!(
                "the chart layer claims {} bytes, more than the {MAX_CHART_SIZE} kantup reads",
                layer.size
            )));
        }

        // The config names the chart and its version: the file name helm gives the archive.
        let config = self
            .client
            .get_blob_limited(&repository, &config_digest, MAX_CONFIG_SIZE)
            .await?;
        let actual = Digest::of(&config);
        if actual != config_digest {
            return Err(RepoError::DigestMismatch {
                source_name: format!("{reference} (chart config)"),
                what: "the manifest",
                expected: config_digest.to_string(),
                actual: actual.to_string(),
            });
        }
        #[derive(Deserialize)]
        struct ChartMeta {
            name: String,
            version: String,
        }
        let meta: ChartMeta = serde_json::from_slice(&config)
            .map_err(|e| not_a_chart(format!("the chart config has no name or version: {e}")))?;
        if parse_version(&meta.version).is_none() || !is_safe_file_name(&meta.name) {
            return Err(not_a_chart(format!(
                "the chart config names chart {:?} version {:?}, not usable as a file name",
                meta.name, meta.version
            )));
        }
        // A tag must hold the version it names (helm's push derives the tag from the version);
        // otherwise the file name and the report would lie about what was pulled.
        if parse_version(&meta.version) != parse_version(&version) {
            return Err(RepoError::VersionMismatch {
                reference,
                expected: version,
                actual: meta.version,
            });
        }

        let bytes: Bytes = self
            .client
            .get_blob_limited(&repository, &layer_digest, layer.size)
            .await?;
        let actual = Digest::of(&bytes);
        if actual != layer_digest || bytes.len() as u64 != layer.size {
            return Err(RepoError::DigestMismatch {
                source_name: format!("{reference} (chart layer)"),
                what: "the manifest",
                expected: format!("{layer_digest} ({} bytes)", layer.size),
                actual: format!("{actual} ({} bytes)", bytes.len()),
            });
        }
        Ok(PulledChart {
            file_name: format!("{}-{}.tgz", meta.name, meta.version),
            name: meta.name,
            version: meta.version,
            digest: actual,
            bytes,
            source: format!(
                "{display}@{}",
                info.digest.expect("a GET answer names its digest")
            ),
            verified: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let cases = [
            ("reg:5000/charts/web", Some(("reg:5000", "charts/web"))),
            ("reg:5000/charts/web/", Some(("reg:5000", "charts/web"))),
            ("reg/a/b/c", Some(("reg", "a/b/c"))),
            ("reg", None),
            ("reg/", None),
            ("/charts", None),
        ];
        for (reference, expected) in cases {
            assert_eq!(split_reference(reference), expected, "{reference}");
        }
    }

    #[test]
    fn chart_repositories() {
        let cases = [
            ("charts", "web", "charts/web"),
            ("charts/web", "web", "charts/web"),
            ("web", "web", "web"),
            ("team/charts", "web", "team/charts/web"),
            ("charts/webapp", "web", "charts/webapp/web"),
        ];
        for (base, chart, expected) in cases {
            assert_eq!(chart_repository(base, chart), expected, "{base} {chart}");
        }
    }
}
