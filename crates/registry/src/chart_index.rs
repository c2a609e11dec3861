//! The Helm chart repository index (`index.yaml`): model, parsing, adding packaged charts,
//! merging, version look-up and writing.
//!
//! The rules follow helm's `pkg/repo` (index.go): an index has `apiVersion: v1`, a `generated`
//! timestamp and `entries` mapping each chart name to its versions, newest first by semantic
//! version (versions that are not semver sort last). A chart version carries the chart's
//! `Chart.yaml` metadata plus `urls`, `created` and `digest` (sha256 of the chart archive).
//! Fields this model does not know (Harbor's and ChartMuseum's `serverInfo`, labels, ...) are
//! kept and written back unchanged.
//!
//! ```
//! use kantup_registry::chart_index::IndexFile;
//!
//! let index = IndexFile::from_yaml(
//!     "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.2.0\n    urls: [web-1.2.0.tgz]\n  - name: web\n    version: 1.10.0-rc.1\n    urls: [web-1.10.0-rc.1.tgz]\n",
//! )
//! .unwrap();
//! assert_eq!(index.latest("web", false).unwrap().metadata.version, "1.2.0");
//! assert_eq!(index.latest("web", true).unwrap().metadata.version, "1.10.0-rc.1");
//! ```

pub mod http;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// The only index `apiVersion` helm writes and reads.
pub const API_VERSION_V1: &str = "v1";

/// Errors reading, building or writing a chart repository index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index is not valid YAML or does not have the index shape.
    #[error("{source_name}: not a chart repository index: {source}")]
    Parse {
        source_name: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// The index has no `apiVersion` (helm refuses such an index too).
    #[error("{0}: no apiVersion in the chart repository index")]
    NoApiVersion(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A chart archive has no `Chart.yaml` in its top directory.
    #[error("{0}: not a chart archive (no <chart>/Chart.yaml inside)")]
    NotAChart(PathBuf),
    /// `Chart.yaml` inside a chart archive is not valid.
    #[error("{path}: invalid Chart.yaml: {reason}")]
    InvalidChart { path: PathBuf, reason: String },
    /// Serialising the index failed.
    #[error("cannot write the chart repository index: {0}")]
    Write(#[source] serde_yaml::Error),
}

/// A chart repository index (`index.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Always `v1` for indexes helm writes.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// Chart name to its versions, newest first.
    #[serde(default, deserialize_with = "entries_skip_null")]
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
    /// When the index was generated (RFC 3339), kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    /// Provenance public keys, if the repository publishes any.
    #[serde(rename = "publicKeys", default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    /// Index-level annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this model does not know (`serverInfo` from ChartMuseum and Harbor, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml::Value>,
}

/// One version of one chart in an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartVersion {
    /// The chart's `Chart.yaml` fields.
    #[serde(flatten)]
    pub metadata: ChartMetadata,
    /// Where the chart archive can be downloaded; relative URLs are relative to the index.
    /// helm writes `urls: null` for a version without any.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub urls: Vec<String>,
    /// When this version was added to the index (RFC 3339), kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Whether the version was removed from the repository.
    #[serde(default, skip_serializing_if = "is_false")]
    pub removed: bool,
    /// sha256 of the chart archive, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Fields this model does not know (kept as they were).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml::Value>,
}

/// The `Chart.yaml` metadata helm copies into an index entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChartMetadata {
    /// Chart API version: `v1` (helm 2) or `v2` (helm 3).
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: String,
    #[serde(
        rename = "appVersion",
        default,
        deserialize_with = "opt_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_version: Option<String>,
    #[serde(
        rename = "kubeVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub chart_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<serde_yaml::Value>,
}

/// A chart maintainer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Maintainer {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Versions like `1.0` or `2` are YAML numbers when unquoted; helm reads them as text.
fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(opt_string_or_number(deserializer)?.unwrap_or_default())
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_yaml::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(serde_yaml::Value::String(text)) => Ok(Some(text)),
        Some(serde_yaml::Value::Number(number)) => Ok(Some(number.to_string())),
        Some(serde_yaml::Value::Bool(flag)) => Ok(Some(flag.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string, found {other:?}"
        ))),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Helm drops `null` items from an entry's version list when loading.
fn entries_skip_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<ChartVersion>>, D::Error> {
    let raw =
        Option::<BTreeMap<String, Option<Vec<Option<ChartVersion>>>>>::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(name, versions)| {
            (
                name,
                versions.unwrap_or_default().into_iter().flatten().collect(),
            )
        })
        .collect())
}

/// Parses a version the way helm's semver library (Masterminds `NewVersion`) does: a leading
/// `v` is allowed and missing minor/patch numbers count as 0 (`v1.2` is 1.2.0).
pub fn parse_version(text: &str) -> Option<semver::Version> {
    let trimmed = text.strip_prefix('v').unwrap_or(text);
    if let Ok(version) = semver::Version::parse(trimmed) {
        return Some(version);
    }
    // Split off pre-release/build, pad the core to three numbers, parse again.
    let core_end = trimmed.find(['-', '+']).unwrap_or(trimmed.len());
    let (core, rest) = trimmed.split_at(core_end);
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.is_empty()
        || numbers.len() > 3
        || numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded: Vec<String> = numbers
        .iter()
        .map(|n| n.parse::<u64>().map(|v| v.to_string()))
        .collect::<Result<_, _>>()
        .ok()?;
    while padded.len() < 3 {
        padded.push("0".to_owned());
    }
    semver::Version::parse(&format!("{}{rest}", padded.join("."))).ok()
}

/// Orders newest first; versions that do not parse go last (helm's `SortEntries`).
fn newest_first(a: &ChartVersion, b: &ChartVersion) -> Ordering {
    match (
        parse_version(&a.metadata.version),
        parse_version(&b.metadata.version),
    ) {
        (Some(x), Some(y)) => y.cmp_precedence(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl Default for IndexFile {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexFile {
    /// An empty `v1` index generated now.
    pub fn new() -> Self {
        Self {
            api_version: API_VERSION_V1.to_owned(),
            entries: BTreeMap::new(),
            generated: Some(now_rfc3339()),
            public_keys: Vec::new(),
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Parses an index (like helm's `loadIndex`): requires `apiVersion`, fills a missing chart
    /// `apiVersion` with `v1`, drops versions with no name or version, sorts newest first.
    pub fn from_yaml(text: &str) -> Result<Self, IndexError> {
        Self::from_yaml_named(text, "index.yaml")
    }

    /// Like [`IndexFile::from_yaml`], naming `source_name` (a path or URL) in errors.
    pub fn from_yaml_named(text: &str, source_name: &str) -> Result<Self, IndexError> {
        let mut index: IndexFile =
            serde_yaml::from_str(text).map_err(|source| IndexError::Parse {
                source_name: source_name.to_owned(),
                source,
            })?;
        if index.api_version.is_empty() {
            return Err(IndexError::NoApiVersion(source_name.to_owned()));
        }
        for (name, versions) in index.entries.iter_mut() {
            versions.retain(|version| {
                let valid =
                    !version.metadata.name.is_empty() && !version.metadata.version.is_empty();
                if !valid {
                    tracing::warn!(
                        "{source_name}: skipping an invalid entry for chart {name:?} (no name or version)"
                    );
                    return false;
                }
                // helm's loadIndex skips a version that is not semver, too.
                let semver = parse_version(&version.metadata.version).is_some();
                if !semver {
                    tracing::warn!(
                        "{source_name}: skipping chart {name:?} version {:?}: not a semantic version",
                        version.metadata.version
                    );
                }
                semver
            });
            for version in versions.iter_mut() {
                if version.metadata.api_version.is_empty() {
                    version.metadata.api_version = "v1".to_owned();
                }
            }
        }
        index.sort_entries();
        Ok(index)
    }

    /// Reads and parses an index file.
    pub fn load(path: &Path) -> Result<Self, IndexError> {
        let text = std::fs::read_to_string(path).map_err(|source| IndexError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_named(&text, &path.display().to_string())
    }

    /// The index as YAML that `helm repo add` and `helm repo index --merge` accept.
    pub fn to_yaml(&self) -> Result<String, IndexError> {
        serde_yaml::to_string(self).map_err(IndexError::Write)
    }

    /// Writes the index to `path` atomically (a temporary file in the same directory, renamed).
    pub fn write(&self, path: &Path) -> Result<(), IndexError> {
        let text = self.to_yaml()?;
        write_atomically(path, text.as_bytes()).map_err(|source| IndexError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Sorts every entry newest first; non-semver versions last.
    pub fn sort_entries(&mut self) {
        for versions in self.entries.values_mut() {
            versions.sort_by(newest_first);
        }
    }

    /// Whether `name` at exactly `version` is in the index.
    pub fn has(&self, name: &str, version: &str) -> bool {
        self.get(name, version).is_some()
    }

    /// The entry for `name` at exactly `version`.
    pub fn get(&self, name: &str, version: &str) -> Option<&ChartVersion> {
        self.entries
            .get(name)?
            .iter()
            .find(|entry| entry.metadata.version == version)
    }

    /// All versions of `name`, newest first (as sorted by [`IndexFile::sort_entries`]).
    pub fn versions(&self, name: &str) -> &[ChartVersion] {
        self.entries.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The newest version of `name`: the highest valid semver, skipping pre-releases unless
    /// `include_prerelease` (helm's `Get(name, "")` uses the constraint `*`, which skips them).
    pub fn latest(&self, name: &str, include_prerelease: bool) -> Option<&ChartVersion> {
        self.entries
            .get(name)?
            .iter()
            .filter_map(|entry| parse_version(&entry.metadata.version).map(|v| (v, entry)))
            .filter(|(version, _)| include_prerelease || version.pre.is_empty())
            .max_by(|(a, _), (b, _)| a.cmp_precedence(b))
            .map(|(_, entry)| entry)
    }

    /// Adds a version (helm's `MustAdd`): fills a missing chart `apiVersion` with `v1`, sets
    /// `urls` to `filename` (joined onto `base_url` when given), `digest` and `created` now.
    pub fn add(
        &mut self,
        mut metadata: ChartMetadata,
        filename: &str,
        base_url: Option<&str>,
        digest: &str,
    ) {
        if metadata.api_version.is_empty() {
            metadata.api_version = "v1".to_owned();
        }
        let url = match base_url.filter(|base| !base.is_empty()) {
            Some(base) => {
                let file = filename.rsplit('/').next().unwrap_or(filename);
                join_url(base, file)
            }
            None => filename.to_owned(),
        };
        let version = ChartVersion {
            metadata,
            urls: vec![url],
            created: Some(now_rfc3339()),
            removed: false,
            digest: Some(digest.to_owned()),
            extra: BTreeMap::new(),
        };
        self.entries
            .entry(version.metadata.name.clone())
            .or_default()
            .push(version);
    }

    /// Adds a packaged chart (`.tgz`): reads its `Chart.yaml`, digests the archive, and records
    /// `url` (relative to the index, e.g. `web-1.0.0.tgz`) joined onto `base_url` when given.
    pub fn add_chart_archive(
        &mut self,
        archive: &Path,
        url: &str,
        base_url: Option<&str>,
    ) -> Result<(), IndexError> {
        let metadata = read_chart_metadata(archive)?;
        let digest = sha256_file(archive)?;
        self.add(metadata, url, base_url, &digest);
        Ok(())
    }

    /// Indexes a directory like `helm repo index DIR [--url URL]`: every `*.tgz` in `dir` and
    /// one level below; archives that are not charts are skipped; entries sorted.
    pub fn index_directory(dir: &Path, base_url: Option<&str>) -> Result<Self, IndexError> {
        let mut index = Self::new();
        let io = |source| IndexError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut top = Vec::new();
        let mut nested = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            if path.is_dir() {
                let Ok(children) = std::fs::read_dir(&path) else {
                    continue;
                };
                for child in children.flatten() {
                    let child = child.path();
                    if is_tgz(&child) {
                        nested.push(child);
                    }
                }
            } else if is_tgz(&path) {
                top.push(path);
            }
        }
        top.sort();
        nested.sort();
        for archive in top.into_iter().chain(nested) {
            let relative = archive.strip_prefix(dir).unwrap_or(&archive);
            let parent = relative
                .parent()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let file = relative
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent_url = match (base_url.filter(|b| !b.is_empty()), parent.is_empty()) {
                (Some(base), true) => Some(base.to_owned()),
                (Some(base), false) => Some(join_url(base, &parent)),
                (None, true) => None,
                (None, false) => Some(parent),
            };
            let metadata = match read_chart_metadata(&archive) {
                Ok(metadata) => metadata,
                Err(error) => {
                    // helm: "Assume this is not a chart."
                    tracing::debug!("skipping {}: {error}", archive.display());
                    continue;
                }
            };
            let digest = sha256_file(&archive)?;
            index.add(metadata, &file, parent_url.as_deref(), &digest);
        }
        index.sort_entries();
        Ok(index)
    }

    /// Merges `other` into this index like helm's `IndexFile.Merge`: versions this index already
    /// has (same name and version) are kept as they are; the others are added. Sorts entries.
    ///
    /// `helm repo index --merge OLD DIR` merges OLD into the index built from DIR, so the freshly
    /// indexed archives win over OLD's entries for the same name and version.
    pub fn merge(&mut self, other: &IndexFile) {
        for versions in other.entries.values() {
            for version in versions {
                if !self.has(&version.metadata.name, &version.metadata.version) {
                    self.entries
                        .entry(version.metadata.name.clone())
                        .or_default()
                        .push(version.clone());
                }
            }
        }
        self.sort_entries();
    }
}

fn is_tgz(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|ext| ext == "tgz")
}

/// Joins a path onto a URL the way helm's `urlutil.URLJoin` does for simple cases: one slash
/// between the parts, query and fragment of the base dropped into place after the path.
pub fn join_url(base: &str, path: &str) -> String {
    let (base_no_query, query) = match base.find(['?', '#']) {
        Some(at) => base.split_at(at),
        None => (base, ""),
    };
    let path = path.trim_start_matches("./");
    if base_no_query.is_empty() {
        return format!("{path}{query}");
    }
    format!(
        "{}/{}{query}",
        base_no_query.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Current time as RFC 3339 with nanoseconds, UTC (what helm writes for `created`/`generated`).
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// Lowercase hex sha256 of a file's bytes (helm's `provenance.DigestFile`).
pub fn sha256_file(path: &Path) -> Result<String, IndexError> {
    let io = |source| IndexError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Reads `<top>/Chart.yaml` from a packaged chart and checks what helm checks before indexing
/// (a name, and a version that is semver).
pub fn read_chart_metadata(archive: &Path) -> Result<ChartMetadata, IndexError> {
    let io = |source| IndexError::Io {
        path: archive.to_owned(),
        source,
    };
    let file = std::fs::File::open(archive).map_err(io)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut chart_yaml = None;
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "Chart.yaml" {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(io)?;
            chart_yaml = Some(text);
            break;
        }
    }
    let text = chart_yaml.ok_or_else(|| IndexError::NotAChart(archive.to_owned()))?;
    let metadata: ChartMetadata =
        serde_yaml::from_str(&text).map_err(|error| IndexError::InvalidChart {
            path: archive.to_owned(),
            reason: error.to_string(),
        })?;
    if metadata.name.is_empty() {
        return Err(IndexError::InvalidChart {
            path: archive.to_owned(),
            reason: "name is required".to_owned(),
        });
    }
    if parse_version(&metadata.version).is_none() {
        return Err(IndexError::InvalidChart {
            path: archive.to_owned(),
            reason: format!("version {:?} is not a semantic version", metadata.version),
        });
    }
    Ok(metadata)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it into place, so
/// readers never see a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.kantup-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str) -> ChartVersion {
        ChartVersion {
            metadata: ChartMetadata {
                name: "web".into(),
                version: version.into(),
                ..Default::default()
            },
            urls: vec![format!("web-{version}.tgz")],
            created: None,
            removed: false,
            digest: None,
            extra: BTreeMap::new(),
        }
    }

    fn index_of(versions: &[&str]) -> IndexFile {
        let mut index = IndexFile::new();
        index
            .entries
            .insert("web".into(), versions.iter().map(|v| entry(v)).collect());
        index.sort_entries();
        index
    }

    fn order(index: &IndexFile) -> Vec<&str> {
        index
            .versions("web")
            .iter()
            .map(|e| e.metadata.version.as_str())
            .collect()
    }

    #[test]
    fn parse_version_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1.2.3", Some("1.2.3")),
            ("v1.2.3", Some("1.2.3")),
            ("1.2", Some("1.2.0")),
            ("v2", Some("2.0.0")),
            ("1.2-rc.1", Some("1.2.0-rc.1")),
            ("1.0.0+build.5", Some("1.0.0+build.5")),
            ("1.0.0-alpha.1", Some("1.0.0-alpha.1")),
            ("latest", None),
            ("", None),
            ("1.2.3.4", None),
            ("1..2", None),
            ("x1.2.3", None),
        ];
        for (input, expected) in cases {
            let got = parse_version(input).map(|v| v.to_string());
            assert_eq!(got.as_deref(), *expected, "parse_version({input:?})");
        }
    }

    #[test]
    fn sort_table() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["1.0.0", "1.10.0", "1.2.0"], &["1.10.0", "1.2.0", "1.0.0"]),
            (
                &["1.0.0-rc.1", "1.0.0", "0.9.0"],
                &["1.0.0", "1.0.0-rc.1", "0.9.0"],
            ),
            (&["banana", "0.1.0", "v0.2"], &["v0.2", "0.1.0", "banana"]),
            (&["2", "10", "1.5"], &["10", "2", "1.5"]),
        ];
        for (input, expected) in cases {
            assert_eq!(order(&index_of(input)), *expected, "sorting {input:?}");
        }
    }

    #[test]
    fn latest_table() {
        let cases: &[(&[&str], bool, Option<&str>)] = &[
            (&["1.0.0", "2.0.0-beta.1"], false, Some("1.0.0")),
            (&["1.0.0", "2.0.0-beta.1"], true, Some("2.0.0-beta.1")),
            (&["2.0.0-beta.1"], false, None),
            (&["not-semver", "0.0.1"], false, Some("0.0.1")),
            (&["not-semver"], true, None),
            (&[], false, None),
        ];
        for (versions, pre, expected) in cases {
            let index = index_of(versions);
            let got = index
                .latest("web", *pre)
                .map(|e| e.metadata.version.as_str());
            assert_eq!(got, *expected, "latest of {versions:?} (prerelease {pre})");
        }
    }

    #[test]
    fn merge_keeps_existing_and_adds_missing() {
        let mut ours = index_of(&["1.0.0", "1.1.0"]);
        ours.entries.get_mut("web").unwrap()[0].digest = Some("ours".into());
        let mut theirs = index_of(&["1.1.0", "0.9.0"]);
        for e in theirs.entries.get_mut("web").unwrap() {
            e.digest = Some("theirs".into());
        }
        let mut other_chart = entry("3.0.0");
        other_chart.metadata.name = "db".into();
        theirs.entries.insert("db".into(), vec![other_chart]);
        ours.merge(&theirs);
        assert_eq!(order(&ours), ["1.1.0", "1.0.0", "0.9.0"]);
        assert_eq!(
            ours.get("web", "1.1.0").unwrap().digest.as_deref(),
            Some("ours")
        );
        assert_eq!(
            ours.get("web", "0.9.0").unwrap().digest.as_deref(),
            Some("theirs")
        );
        assert!(ours.has("db", "3.0.0"));
    }

    #[test]
    fn join_url_table() {
        let cases = [
            ("", "a-1.0.0.tgz", "a-1.0.0.tgz"),
            ("https://h/charts", "a.tgz", "https://h/charts/a.tgz"),
            ("https://h/charts/", "a.tgz", "https://h/charts/a.tgz"),
            ("https://h/c?x=1", "a.tgz", "https://h/c/a.tgz?x=1"),
            ("sub", "a.tgz", "sub/a.tgz"),
        ];
        for (base, path, expected) in cases {
            assert_eq!(
                join_url(base, path),
                expected,
                "join_url({base:?}, {path:?})"
            );
        }
    }

    #[test]
    fn parses_harbor_and_chartmuseum_indexes() {
        // Shapes as Harbor's chartrepo and ChartMuseum serve them: serverInfo, labels, numbers
        // for versions, null entries.
        let text = r#"
apiVersion: v1
serverInfo:
  contextPath: /chartrepo/library
entries:
  nginx:
  - name: nginx
    version: 1.0
    appVersion: 1.19
    urls: [charts/nginx-1.0.tgz]
    digest: abc
    created: "2021-01-01T00:00:00Z"
    labels: [{name: prod}]
    engine: gotpl
  - null
  empty: null
generated: "2021-01-02T00:00:00Z"
"#;
        let index = IndexFile::from_yaml(text).unwrap();
        let nginx = index.get("nginx", "1.0").unwrap();
        assert_eq!(nginx.metadata.app_version.as_deref(), Some("1.19"));
        assert_eq!(nginx.metadata.api_version, "v1");
        assert!(nginx.extra.contains_key("labels"));
        assert!(index.extra.contains_key("serverInfo"));
        assert!(index.versions("empty").is_empty());
        let round = IndexFile::from_yaml(&index.to_yaml().unwrap()).unwrap();
        assert_eq!(round, index);
    }

    #[test]
    fn rejects_bad_indexes_with_names() {
        let cases = [
            ("entries: {}\n", "no apiVersion"),
            (
                "apiVersion: v1\nentries: [1, 2]\n",
                "not a chart repository index",
            ),
            ("<html>nope</html>", "not a chart repository index"),
        ];
        for (text, expected) in cases {
            let error = IndexFile::from_yaml_named(text, "https://h/index.yaml")
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.contains("https://h/index.yaml"), "{error}");
        }
    }

    #[test]
    fn drops_entries_without_version() {
        let text = "apiVersion: v1\nentries:\n  a:\n  - name: a\n    urls: [a.tgz]\n  - name: a\n    version: 1.0.0\n";
        let index = IndexFile::from_yaml(text).unwrap();
        assert_eq!(index.versions("a").len(), 1);
    }
}
