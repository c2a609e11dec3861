//! The parts of a Helm chart that values depend on: name, version, default values,
//! `dependencies` metadata and subcharts. Loads a chart directory or a `.tgz` archive.
//!
//! Kept in one module so it can later be backed by `kantup_bundle::chart::Chart`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::value::Values;
use crate::yaml::parse_values;
use crate::{Error, Result};

/// A chart as values computation sees it.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// `name` from Chart.yaml (replaced by the alias for an aliased dependency).
    pub name: String,
    /// `version` from Chart.yaml.
    pub version: String,
    /// The chart's `values.yaml`, read as Helm reads it.
    pub values: Values,
    /// `dependencies:` from Chart.yaml.
    pub metadata_dependencies: Vec<Dependency>,
    /// Subcharts found in `charts/` (directories and archives).
    pub dependencies: Vec<Chart>,
}

/// One entry of Chart.yaml `dependencies:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependency {
    /// Chart name.
    pub name: String,
    /// Version constraint.
    pub version: String,
    /// Alias: the name the subchart's values live under.
    pub alias: Option<String>,
    /// Comma-separated value paths whose first boolean enables the dependency.
    pub condition: Option<String>,
    /// Tags: the dependency is disabled when one is false under `tags` and none is true.
    pub tags: Vec<String>,
    /// `import-values` entries: a string (child path under `exports.`) or a child/parent map.
    pub import_values: Vec<Value>,
    /// Computed: whether conditions and tags enable it.
    pub enabled: bool,
}

impl Chart {
    /// Loads a chart directory, or a `.tgz` chart archive.
    ///
    /// ```no_run
    /// let chart = kantup_helm_values::chart::Chart::load("charts/wordpress").unwrap();
    /// println!("{} has {} subcharts", chart.name, chart.dependencies.len());
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Chart> {
        let path = path.as_ref();
        if path.is_dir() {
            let files = read_dir_files(path)?;
            Chart::from_files(&files, &path.display().to_string())
        } else {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Chart::from_archive(&bytes, &path.display().to_string())
        }
    }

    /// Loads a chart from a gzipped tar archive (`helm package` output).
    pub fn from_archive(bytes: &[u8], origin: &str) -> Result<Chart> {
        let chart_err = |message: String| Error::Chart {
            chart: origin.to_string(),
            message,
        };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut files = BTreeMap::new();
        let entries = archive.entries().map_err(|e| chart_err(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| chart_err(e.to_string()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(|e| chart_err(e.to_string()))?;
            let path = path.to_string_lossy().replace('\\', "/");
            // Drop the top-level "<chart>/" directory.
            let Some((_, rest)) = path.split_once('/') else {
                continue;
            };
            let rest = rest.to_string();
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| chart_err(format!("{rest}: {e}")))?;
            files.insert(rest, data);
        }
        Chart::from_files(&files, origin)
    }

    /// Loads a chart from its files (paths relative to the chart root, `/`-separated).
    pub fn from_files(files: &BTreeMap<String, Vec<u8>>, origin: &str) -> Result<Chart> {
        let chart_err = |message: String| Error::Chart {
            chart: origin.to_string(),
            message,
        };
        let text = |name: &str| -> Result<Option<String>> {
            match files.get(name) {
                None => Ok(None),
                Some(b) => String::from_utf8(b.clone())
                    .map(Some)
                    .map_err(|_| chart_err(format!("{name} is not UTF-8"))),
            }
        };
        let meta_text =
            text("Chart.yaml")?.ok_or_else(|| chart_err("Chart.yaml file is missing".into()))?;
        let meta = parse_values(&meta_text, &format!("{origin}/Chart.yaml"))?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| chart_err("Chart.yaml: field `name` is required".into()))?
            .to_string();
        let version = match meta.get("version") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => crate::value::go_number(n),
            _ => String::new(),
        };
        let mut metadata_dependencies = Vec::new();
        if let Some(Value::Array(deps)) = meta.get("dependencies") {
            for (i, d) in deps.iter().enumerate() {
                let Value::Object(d) = d else {
                    return Err(chart_err(format!(
                        "Chart.yaml: dependencies[{i}] is not a map"
                    )));
                };
                let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                metadata_dependencies.push(Dependency {
                    name: s("name").ok_or_else(|| {
                        chart_err(format!("Chart.yaml: dependencies[{i}].name is required"))
                    })?,
                    version: s("version").unwrap_or_default(),
                    alias: s("alias").filter(|a| !a.is_empty()),
                    condition: s("condition"),
                    tags: match d.get("tags") {
                        Some(Value::Array(t)) => t
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        _ => Vec::new(),
                    },
                    import_values: match d.get("import-values") {
                        Some(Value::Array(v)) => v.clone(),
                        _ => Vec::new(),
                    },
                    enabled: true,
                });
            }
        }
        let values = match text("values.yaml")? {
            Some(t) => parse_values(&t, &format!("{origin}/values.yaml"))?,
            None => Values::new(),
        };
        // Subcharts: charts/<dir>/... and charts/<file>.tgz, skipping names starting . or _.
        let mut sub_dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut dependencies = Vec::new();
        for (path, data) in files {
            let Some(rest) = path.strip_prefix("charts/") else {
                continue;
            };
            if rest.starts_with(['.', '_']) {
                continue;
            }
            match rest.split_once('/') {
                Some((dir, inner)) => {
                    sub_dirs
                        .entry(dir.to_string())
                        .or_default()
                        .insert(inner.to_string(), data.clone());
                }
                None if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") => {
                    dependencies.push(Chart::from_archive(
                        data,
                        &format!("{origin}/charts/{rest}"),
                    )?);
                }
                None => {}
            }
        }
        for (dir, sub_files) in sub_dirs {
            if !sub_files.contains_key("Chart.yaml") {
                continue;
            }
            dependencies.push(Chart::from_files(
                &sub_files,
                &format!("{origin}/charts/{dir}"),
            )?);
        }
        Ok(Chart {
            name,
            version,
            values,
            metadata_dependencies,
            dependencies,
        })
    }
}

fn read_dir_files(root: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            // Only what values need: metadata, values and subcharts.
            let wanted = rel == "Chart.yaml"
                || rel == "values.yaml"
                || rel == "charts"
                || rel.starts_with("charts/");
            if !wanted {
                continue;
            }
            let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && is_values_relevant(&rel) {
                let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                out.insert(rel, data);
            }
        }
    }
    Ok(out)
}

fn is_values_relevant(rel: &str) -> bool {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    matches!(file, "Chart.yaml" | "values.yaml")
        || file.ends_with(".tgz")
        || file.ends_with(".tar.gz")
}
