//! The Helm chart model, and the only reader of chart files and archives in kantup:
//! `Chart.yaml`, `values.yaml`, `crds/`, subcharts (directories or `.tgz` under `charts/`, as
//! Helm's loader finds them), `.helmignore`; loading from a directory, a `.tgz` or bundle
//! members (size and path checks), writing a directory, and packaging a `helm
//! package`-compatible `.tgz` ([`Chart::package`]). Other crates build their views from it:
//! `kantup-helm-values` (values), `kantup-registry` (index entries, uploads).

mod helmignore;
mod load;
mod oci_tag;
mod package;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use helmignore::{HelmIgnore, HelmIgnoreError};
pub use oci_tag::{oci_tag, version_from_oci_tag};
pub use package::package;

use crate::error::BundleError;

/// Largest chart, uncompressed, kantup loads (Helm's own default limit).
pub const MAX_CHART_SIZE: u64 = 100 << 20;

/// `Chart.yaml`: the one model of it, for a loaded chart and for the entries of a chart
/// repository index (`kantup-registry`'s `chart_index`, which copies these fields).
///
/// `V` is how the version is held: a checked [`semver::Version`] in a chart (the default), the
/// text as written in an index entry (`ChartMetadata<String>`: helm's index keeps `v1.2` or
/// `1.0`, and sorts what is not SemVer last).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMetadata<V = semver::Version> {
    /// `v1` or `v2`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Chart name.
    pub name: String,
    /// Chart version (SemVer 2 in a chart).
    pub version: V,
    /// Version of the packaged application (free text; numbers are kept as written).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    pub app_version: Option<String>,
    /// One-line description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `application` or `library`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub chart_type: Option<String>,
    /// Kubernetes version constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    /// Dependencies (`requirements.yaml` for apiVersion v1 charts is merged in here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml::Value>,
}

impl<V> ChartMetadata<V> {
    /// The same fields with the version held another way, e.g. as the text an index entry
    /// keeps: `chart.metadata.clone().map_version(|v| v.to_string())`.
    pub fn map_version<W>(self, to: impl FnOnce(V) -> W) -> ChartMetadata<W> {
        ChartMetadata {
            api_version: self.api_version,
            name: self.name,
            version: to(self.version),
            app_version: self.app_version,
            description: self.description,
            chart_type: self.chart_type,
            kube_version: self.kube_version,
            dependencies: self.dependencies,
            extra: self.extra,
        }
    }
}

/// One entry of `dependencies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dependency {
    /// Chart name.
    pub name: String,
    /// Version constraint.
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: Option<String>,
    /// Repository URL or `@alias`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Values path enabling the dependency (`mariadb.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Tags enabling the dependency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Name the subchart is installed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Every other field (`import-values`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml::Value>,
}

impl Dependency {
    /// The key the subchart's values live under: the alias, else the name.
    pub fn values_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A `Chart.yaml` text field as Helm reads it, for `#[serde(deserialize_with)]`: versions such
/// as `1.0` or `2` are YAML numbers when unquoted (and `true` a boolean); helm keeps them as
/// the text written. `None` for a missing or `null` field. The one rule for `Chart.yaml` text
/// fields, in a chart and in the entries of a chart repository index.
pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_yaml::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_yaml::Value::Null) => None,
        Some(serde_yaml::Value::String(s)) => Some(s),
        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
        Some(serde_yaml::Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other:?}"
            )));
        }
    })
}

/// A loaded chart: its files (all of them, subcharts included, `/`-separated paths relative
/// to the chart root), the parsed metadata and values, and the parsed subcharts.
///
/// The files are the truth: [`Chart::from_files`] derives everything else from them, so a
/// changed chart is made by changing its files and reading them again.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml`.
    pub metadata: ChartMetadata,
    /// `values.yaml` (an empty mapping when absent).
    pub values: serde_yaml::Value,
    /// Every file of the chart tree, sorted by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subcharts found under `charts/` (archives first, then directories, each sorted by path),
    /// as Helm's loader finds them: entries whose name starts with `.` or `_` are not
    /// subcharts, nor are directories without a `Chart.yaml`.
    pub subcharts: Vec<Chart>,
    /// Where this chart sits in its parent (`None` for a top-level chart).
    pub path_in_parent: Option<SubchartPath>,
}

/// Where a subchart sits in its parent chart, relative to the parent's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubchartPath {
    /// A directory: `charts/<dir>`.
    Directory(String),
    /// A chart archive: `charts/<file>.tgz`.
    Archive(String),
}

impl SubchartPath {
    /// The path, relative to the parent chart's root.
    pub fn as_str(&self) -> &str {
        match self {
            SubchartPath::Directory(p) | SubchartPath::Archive(p) => p,
        }
    }
}

fn chart_err(path: &str, reason: impl Into<String>) -> BundleError {
    BundleError::Chart {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Refuses absolute paths and `..`; `None` for the root itself.
pub(crate) fn clean_relative(path: &str) -> Result<Option<String>, String> {
    if path.starts_with('/') {
        return Err(format!("absolute path {path:?}"));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("path {path:?} contains `..`")),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Parses `values.yaml`. Helm reads a repeated key as the last one written, where serde_yaml
/// refuses it: a document serde_yaml refuses is read again with repeated keys allowed (last
/// one wins), so every chart Helm loads loads here too; other errors stay errors.
fn parse_values_yaml(bytes: &[u8]) -> Result<serde_yaml::Value, serde_yaml::Error> {
    serde_yaml::from_slice(bytes).or_else(|strict| {
        // serde_json's map keeps the last of repeated keys.
        let lenient: Result<serde_json::Value, _> = serde_yaml::from_slice(bytes);
        lenient
            .ok()
            .and_then(|json| serde_yaml::to_value(json).ok())
            .ok_or(strict)
    })
}

impl Chart {
    /// Builds a chart from its files. `label` names the source in errors.
    pub fn from_files(label: &str, files: BTreeMap<String, Vec<u8>>) -> Result<Chart, BundleError> {
        let chart_yaml = files
            .get("Chart.yaml")
            .ok_or_else(|| chart_err(label, "missing Chart.yaml"))?;
        let mut metadata: ChartMetadata = serde_yaml::from_slice(chart_yaml)
            .map_err(|e| chart_err(label, format!("Chart.yaml: {e}")))?;
        if metadata.name.trim().is_empty() {
            return Err(chart_err(label, "Chart.yaml: field `name` is empty"));
        }
        if metadata.name.contains('/') || metadata.name.contains("..") {
            return Err(chart_err(
                label,
                format!(
                    "Chart.yaml: field `name` {:?} is not a valid chart name",
                    metadata.name
                ),
            ));
        }
        match metadata.api_version.as_str() {
            "v1" | "v2" => {}
            other => {
                return Err(chart_err(
                    label,
                    format!("Chart.yaml: field `apiVersion` is {other:?}, expected v1 or v2"),
                ));
            }
        }
        if metadata.api_version == "v1"
            && metadata.dependencies.is_empty()
            && let Some(req) = files.get("requirements.yaml")
        {
            #[derive(Deserialize)]
            struct Requirements {
                #[serde(default)]
                dependencies: Vec<Dependency>,
            }
            let r: Requirements = serde_yaml::from_slice(req)
                .map_err(|e| chart_err(label, format!("requirements.yaml: {e}")))?;
            metadata.dependencies = r.dependencies;
        }
        let values = match files.get("values.yaml") {
            Some(v) => {
                let parsed = parse_values_yaml(v)
                    .map_err(|e| chart_err(label, format!("values.yaml: {e}")))?;
                match parsed {
                    serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
                    m @ serde_yaml::Value::Mapping(_) => m,
                    _ => return Err(chart_err(label, "values.yaml: top level is not a mapping")),
                }
            }
            None => serde_yaml::Value::Mapping(Default::default()),
        };
        // Subcharts: `charts/<file>.tgz` and `charts/<dir>/...` (Helm's loader: names starting
        // with `.` or `_` are not subcharts).
        let mut dirs: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut subcharts = Vec::new();
        for (path, bytes) in &files {
            let Some(rest) = path.strip_prefix("charts/") else {
                continue;
            };
            if rest.starts_with(['.', '_']) {
                continue;
            }
            match rest.split_once('/') {
                Some((dir, inner)) => {
                    dirs.entry(dir)
                        .or_default()
                        .insert(inner.to_string(), bytes.clone());
                }
                None if rest.ends_with(".tgz") => {
                    let mut sub = Chart::load_tgz_bytes(&format!("{label}/{path}"), bytes)?;
                    sub.path_in_parent = Some(SubchartPath::Archive(path.clone()));
                    subcharts.push(sub);
                }
                None => {}
            }
        }
        for (dir, sub_files) in dirs {
            if sub_files.contains_key("Chart.yaml") {
                let path = format!("charts/{dir}");
                let mut sub = Chart::from_files(&format!("{label}/{path}"), sub_files)?;
                sub.path_in_parent = Some(SubchartPath::Directory(path));
                subcharts.push(sub);
            }
        }
        Ok(Chart {
            metadata,
            values,
            files,
            subcharts,
            path_in_parent: None,
        })
    }

    /// This chart's default values with every subchart's defaults under its key (alias, else
    /// name), recursively; the parent's values win. Enough to render image hints the way
    /// relok8s does (every subchart counted, enabled or not); Helm's full coalescing rules
    /// live in kantup-helm-values.
    pub fn all_default_values(&self) -> serde_yaml::Value {
        let mut values = match &self.values {
            serde_yaml::Value::Mapping(m) => m.clone(),
            _ => serde_yaml::Mapping::new(),
        };
        for sub in &self.subcharts {
            let keys: Vec<&str> = {
                let named: Vec<&str> = self
                    .metadata
                    .dependencies
                    .iter()
                    .filter(|d| d.name == sub.name())
                    .map(Dependency::values_key)
                    .collect();
                if named.is_empty() {
                    vec![sub.name()]
                } else {
                    named
                }
            };
            for key in keys {
                let merged = merge_under(
                    values.get(key).cloned().unwrap_or(serde_yaml::Value::Null),
                    sub.all_default_values(),
                );
                values.insert(key.into(), merged);
            }
        }
        serde_yaml::Value::Mapping(values)
    }

    /// The chart name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The chart version (`version` of `Chart.yaml`).
    pub fn version(&self) -> &semver::Version {
        &self.metadata.version
    }

    /// `<name>-<version>.tgz`, the file name `helm package` gives the chart.
    pub fn archive_name(&self) -> String {
        format!("{}-{}.tgz", self.metadata.name, self.metadata.version)
    }

    /// The CRD manifests in `crds/` (this chart only), by path.
    pub fn crds(&self) -> Vec<(&str, &[u8])> {
        self.files
            .iter()
            .filter(|(p, _)| {
                p.starts_with("crds/")
                    && (p.ends_with(".yaml") || p.ends_with(".yml") || p.ends_with(".json"))
            })
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect()
    }

    /// The CRD manifests Helm installs with this chart (`CRDObjects`): this chart's `crds/`,
    /// then each subchart's, depth first, with paths relative to this chart
    /// (`charts/<subchart>/crds/...`). `include` decides which subcharts count, by their path
    /// of chart names from this chart (`["sub"]`, `["sub", "nested"]`): Helm leaves out the
    /// subcharts a `condition` or `tags` disabled.
    pub fn crd_files(&self, include: &dyn Fn(&[&str]) -> bool) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        self.collect_crd_files("", &mut Vec::new(), include, &mut out);
        out
    }

    fn collect_crd_files<'a>(
        &'a self,
        prefix: &str,
        path: &mut Vec<&'a str>,
        include: &dyn Fn(&[&str]) -> bool,
        out: &mut Vec<(String, &'a [u8])>,
    ) {
        out.extend(
            self.crds()
                .into_iter()
                .map(|(file, bytes)| (format!("{prefix}{file}"), bytes)),
        );
        for sub in &self.subcharts {
            path.push(sub.name());
            if include(path) {
                let sub_prefix = format!("{prefix}charts/{}/", sub.name());
                sub.collect_crd_files(&sub_prefix, path, include, out);
            }
            path.pop();
        }
    }
}

/// `top` over `defaults`: maps merge key by key, anything else in `top` wins.
fn merge_under(top: serde_yaml::Value, defaults: serde_yaml::Value) -> serde_yaml::Value {
    match (top, defaults) {
        (serde_yaml::Value::Null, d) => d,
        (serde_yaml::Value::Mapping(mut t), serde_yaml::Value::Mapping(d)) => {
            for (k, v) in d {
                let merged = merge_under(t.remove(&k).unwrap_or(serde_yaml::Value::Null), v);
                t.insert(k, merged);
            }
            serde_yaml::Value::Mapping(t)
        }
        (t, _) => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: &str) -> Result<Chart, BundleError> {
        let files = BTreeMap::from([
            (
                "Chart.yaml".to_string(),
                b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
            ),
            ("values.yaml".to_string(), values.as_bytes().to_vec()),
        ]);
        Chart::from_files("c", files)
    }

    #[test]
    fn repeated_values_keys_read_as_helm_reads_them() {
        let c = chart("a:\n  l: 1\n  l: 2\nb: x\n").unwrap();
        assert_eq!(c.values["a"]["l"].as_u64(), Some(2));
        assert_eq!(c.values["b"].as_str(), Some("x"));
    }

    #[test]
    fn values_that_are_not_yaml_are_refused() {
        let err = chart("a: [1\n").unwrap_err().to_string();
        assert!(err.contains("values.yaml"), "{err}");
    }
}
