//! The Helm chart model: `Chart.yaml`, `values.yaml`, `crds/`, subcharts (directories or
//! `.tgz` under `charts/`), `.helmignore`; loading from a directory, a `.tgz` or bundle
//! members, writing a directory, and packaging a `helm package`-compatible `.tgz`.

mod helmignore;
mod oci_tag;
mod package;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

pub use helmignore::HelmIgnore;
pub use oci_tag::{oci_tag, version_from_oci_tag};
pub use package::package;

use crate::error::BundleError;

/// Largest chart, uncompressed, kantup loads (Helm's own default limit).
pub const MAX_CHART_SIZE: u64 = 100 << 20;

/// `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMetadata {
    /// `v1` or `v2`.
    pub api_version: String,
    /// Chart name.
    pub name: String,
    /// Chart version (SemVer 2).
    pub version: semver::Version,
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

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_yaml::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_yaml::Value::Null) => None,
        Some(serde_yaml::Value::String(s)) => Some(s),
        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
        Some(serde_yaml::Value::Bool(b)) => Some(b.to_string()),
        Some(_) => return Err(serde::de::Error::custom("expected a string")),
    })
}

/// A loaded chart: its files (all of them, subcharts included, `/`-separated paths relative
/// to the chart root), the parsed metadata and values, and the parsed subcharts.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml`.
    pub metadata: ChartMetadata,
    /// `values.yaml` (an empty mapping when absent).
    pub values: serde_yaml::Value,
    /// Every file of the chart tree, sorted by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subcharts found under `charts/` (directories and `.tgz`), sorted by path.
    pub subcharts: Vec<Chart>,
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
                let parsed: serde_yaml::Value = serde_yaml::from_slice(v)
                    .map_err(|e| chart_err(label, format!("values.yaml: {e}")))?;
                match parsed {
                    serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
                    m @ serde_yaml::Value::Mapping(_) => m,
                    _ => return Err(chart_err(label, "values.yaml: top level is not a mapping")),
                }
            }
            None => serde_yaml::Value::Mapping(Default::default()),
        };
        // Subcharts: `charts/<dir>/...` and `charts/<file>.tgz`.
        let mut dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut subcharts = Vec::new();
        for (path, bytes) in &files {
            let Some(rest) = path.strip_prefix("charts/") else {
                continue;
            };
            match rest.split_once('/') {
                Some((dir, inner)) => {
                    dirs.entry(dir.to_string())
                        .or_default()
                        .insert(inner.to_string(), bytes.clone());
                }
                None if rest.ends_with(".tgz") => {
                    let sub_label = format!("{label}/charts/{rest}");
                    subcharts.push(Chart::load_tgz_bytes(&sub_label, bytes)?);
                }
                None => {}
            }
        }
        for (dir, sub_files) in dirs {
            if sub_files.contains_key("Chart.yaml") {
                subcharts.push(Chart::from_files(
                    &format!("{label}/charts/{dir}"),
                    sub_files,
                )?);
            }
        }
        Ok(Chart {
            metadata,
            values,
            files,
            subcharts,
        })
    }

    /// The chart name.
    pub fn name(&self) -> &str {
        &self.metadata.name
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

    /// Loads a chart directory, applying `.helmignore` as `helm package` does.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Chart, BundleError> {
        let dir = dir.as_ref();
        let label = dir.display().to_string();
        let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
            Ok(text) => HelmIgnore::parse(&text)
                .map_err(|e| chart_err(&label, format!(".helmignore: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HelmIgnore::defaults(),
            Err(e) => return Err(BundleError::io(dir.join(".helmignore"), e)),
        };
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        walk(dir, dir, &ignore, &mut files, &mut total, &label)?;
        Chart::from_files(&label, files)
    }

    /// Loads a chart archive (`.tgz`) from a file.
    pub fn load_tgz(path: impl AsRef<Path>) -> Result<Chart, BundleError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| BundleError::io(path, e))?;
        Chart::load_tgz_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads a chart archive from memory. Entries must sit under one top directory, which is
    /// stripped; unsafe paths and links are refused.
    pub fn load_tgz_bytes(label: &str, bytes: &[u8]) -> Result<Chart, BundleError> {
        let gz = flate2::read::GzDecoder::new(bytes);
        let mut archive = tar::Archive::new(gz);
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        let entries = archive
            .entries()
            .map_err(|e| chart_err(label, format!("not a gzip tar: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| chart_err(label, format!("not a valid gzip tar: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let name = std::str::from_utf8(&raw).map_err(|_| {
                chart_err(
                    label,
                    format!("non-UTF-8 member name {:?}", String::from_utf8_lossy(&raw)),
                )
            })?;
            let ty = entry.header().entry_type();
            if ty.is_dir() || ty.is_pax_global_extensions() {
                continue;
            }
            if !ty.is_file() {
                return Err(chart_err(
                    label,
                    format!("member {name:?} is not a regular file"),
                ));
            }
            let clean = clean_relative(name).map_err(|e| chart_err(label, e))?;
            let Some(clean) = clean else { continue };
            // Strip the chart's top directory.
            let Some((_, inner)) = clean.split_once('/') else {
                return Err(chart_err(
                    label,
                    format!("member {name:?} is not inside the chart's directory"),
                ));
            };
            total += entry.size();
            if total > MAX_CHART_SIZE {
                return Err(chart_err(
                    label,
                    format!("chart is larger than {MAX_CHART_SIZE} bytes uncompressed"),
                ));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| chart_err(label, format!("{name}: {e}")))?;
            if files.insert(inner.to_string(), data).is_some() {
                return Err(chart_err(label, format!("duplicate member {name:?}")));
            }
        }
        Chart::from_files(label, files)
    }

    /// Writes the chart's files under `dir` (created if needed).
    pub fn write_dir(&self, dir: impl AsRef<Path>) -> Result<(), BundleError> {
        let dir = dir.as_ref();
        for (path, bytes) in &self.files {
            let clean = clean_relative(path)
                .map_err(|e| chart_err(self.name(), e))?
                .ok_or_else(|| chart_err(self.name(), "empty file path"))?;
            let target = dir.join(&clean);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
            }
            std::fs::write(&target, bytes).map_err(|e| BundleError::io(&target, e))?;
        }
        Ok(())
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &HelmIgnore,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
    label: &str,
) -> Result<(), BundleError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| BundleError::io(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| BundleError::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_str()
            .ok_or_else(|| chart_err(label, format!("non-UTF-8 file name {}", path.display())))?
            .replace('\\', "/");
        // Follow symlinks as Helm does, but only to files and directories.
        let meta = std::fs::metadata(&path).map_err(|e| BundleError::io(&path, e))?;
        if ignore.ignored(&rel, meta.is_dir()) {
            continue;
        }
        if meta.is_dir() {
            walk(root, &path, ignore, files, total, label)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > MAX_CHART_SIZE {
                return Err(chart_err(
                    label,
                    format!("chart is larger than {MAX_CHART_SIZE} bytes"),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| BundleError::io(&path, e))?;
            files.insert(rel, bytes);
        } else {
            return Err(chart_err(
                label,
                format!("{rel}: not a regular file or directory"),
            ));
        }
    }
    Ok(())
}
