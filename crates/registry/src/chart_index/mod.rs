//! The Helm chart repository index (`index.yaml`): the model, parsing, version look-up and
//! writing; building an index from chart archives (like `helm repo index`) is in `build`.
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

mod build;

pub use build::{chart_metadata, join_url, read_chart_metadata, sha256_file};

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kantup_bundle::chart::{ChartMetadata, string_or_number};
use serde::{Deserialize, Deserializer, Serialize};

/// The only index `apiVersion` helm writes and reads.
pub const API_VERSION_V1: &str = "v1";

/// Errors reading, building or writing a chart repository index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index is not valid YAML or does not have the index shape.
    #[error("{source_name}: not a chart repository index: {source}")]
    Parse {
        /// The index file or URL.
        source_name: String,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The index has no `apiVersion` (helm refuses such an index too).
    #[error("{0}: no apiVersion in the chart repository index")]
    NoApiVersion(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A chart archive could not be read as a chart (not a gzip tar, no `Chart.yaml`, an
    /// unsafe path, ...).
    #[error("{}: not a chart archive: {source}", path.display())]
    Chart {
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<kantup_bundle::BundleError>,
    },
    /// A file could not be written whole.
    #[error(transparent)]
    WriteFile(#[from] kantup_bundle::atomic::WriteError),
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

/// One version of one chart in an index: the chart's `Chart.yaml` fields in the chart
/// model's [`ChartMetadata`] (the version as the text written; fields that model does not name,
/// Harbor's `labels` among them, kept in its `extra` and written back unchanged), and what the
/// index adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartVersion {
    /// The chart's `Chart.yaml` fields.
    #[serde(flatten)]
    pub metadata: ChartMetadata<String>,
    /// Where the chart archive can be downloaded; relative URLs are relative to the index.
    /// helm writes `urls: null` for a version without any.
    pub urls: Vec<String>,
    /// When this version was added to the index (RFC 3339), kept as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Whether the version was removed from the repository.
    #[serde(skip_serializing_if = "is_false")]
    pub removed: bool,
    /// sha256 of the chart archive, lowercase hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Read as helm's `loadIndex` reads an entry: the index's own fields taken out, and
/// `apiVersion`, `name` and `version` read by the chart model's text rule
/// ([`kantup_bundle::chart::string_or_number`]: `version: 1.0` is the text `1.0`), empty when
/// missing (`IndexFile::from_yaml` drops an entry without name or version, and fills the
/// `apiVersion`); the rest is the chart model's.
impl<'de> Deserialize<'de> for ChartVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        fn take<T: serde::de::DeserializeOwned>(
            fields: &mut serde_yaml::Mapping,
            key: &str,
        ) -> Result<Option<T>, serde_yaml::Error> {
            match fields.remove(key) {
                None | Some(serde_yaml::Value::Null) => Ok(None),
                Some(value) => serde_yaml::from_value(value).map(Some),
            }
        }
        let read = |fields: &mut serde_yaml::Mapping| -> Result<Self, serde_yaml::Error> {
            let urls = take(fields, "urls")?.unwrap_or_default();
            let created = take(fields, "created")?;
            let removed = take(fields, "removed")?.unwrap_or(false);
            let digest = take(fields, "digest")?;
            for key in ["apiVersion", "name", "version"] {
                let value = fields.remove(key).unwrap_or(serde_yaml::Value::Null);
                let text = string_or_number(value)?.unwrap_or_default();
                fields.insert(key.into(), text.into());
            }
            let metadata =
                serde_yaml::from_value(serde_yaml::Value::Mapping(std::mem::take(fields)))?;
            Ok(ChartVersion {
                metadata,
                urls,
                created,
                removed,
                digest,
            })
        };
        let mut fields = serde_yaml::Mapping::deserialize(deserializer)?;
        read(&mut fields).map_err(D::Error::custom)
    }
}

fn is_false(value: &bool) -> bool {
    !*value
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
        Ok(kantup_bundle::atomic::write(path, text.as_bytes())?)
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
}

/// Current time as RFC 3339 with nanoseconds, UTC (what helm writes for `created`/`generated`).
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(version: &str) -> ChartVersion {
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
        }
    }

    pub(crate) fn index_of(versions: &[&str]) -> IndexFile {
        let mut index = IndexFile::new();
        index
            .entries
            .insert("web".into(), versions.iter().map(|v| entry(v)).collect());
        index.sort_entries();
        index
    }

    pub(crate) fn order(index: &IndexFile) -> Vec<&str> {
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
        assert!(nginx.metadata.extra.contains_key("labels"));
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
