//! Reading CRD manifests from a `crds/` directory or from in-memory chart files.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";
const CRD_KIND: &str = "CustomResourceDefinition";

/// One CRD read from a file, with where it came from.
#[derive(Debug, Clone)]
pub struct CrdDocument {
    /// The file name, relative to the directory or as given by the caller.
    pub file: String,
    /// Zero-based index of the YAML document inside the file (empty documents count).
    pub index: usize,
    /// `metadata.name` (`<plural>.<group>`).
    pub name: String,
    /// The manifest exactly as written (what gets applied).
    pub manifest: Value,
    /// The same manifest, typed.
    pub crd: CustomResourceDefinition,
}

impl CrdDocument {
    /// `file#index`, for messages.
    pub fn origin(&self) -> String {
        format!("{}#{}", self.file, self.index)
    }
}

/// Whether Helm treats this file as a manifest in `crds/` (`.yaml`, `.yml`, `.json`).
fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Loads every CRD below `dir` (recursively), in Helm's order: files sorted by their path
/// relative to `dir`; only `.yaml`, `.yml` and `.json` files are read.
///
/// ```no_run
/// let crds = kantup_k8s_apply::crd::load_crd_dir("chart/crds".as_ref())?;
/// for crd in &crds { println!("{} from {}", crd.name, crd.origin()); }
/// # Ok::<(), kantup_k8s_apply::Error>(())
/// ```
pub fn load_crd_dir(dir: &Path) -> Result<Vec<CrdDocument>> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    let mut documents = Vec::with_capacity(files.len());
    for (relative, path) in files {
        let bytes = std::fs::read(&path).map_err(|source| {
            Error::Io(kantup_bundle::FileError {
                action: "read",
                path: path.clone(),
                source,
            })
        })?;
        documents.push((relative, bytes));
    }
    load_crd_documents(documents)
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, std::path::PathBuf)>,
) -> Result<()> {
    let io = |source| {
        Error::Io(kantup_bundle::FileError {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io)?;
        if file_type.is_dir() {
            collect_files(root, &path, out)?;
        } else if file_type.is_file() {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if is_manifest(&relative) {
                out.push((relative, path));
            }
        }
    }
    Ok(())
}

/// The CRDs Helm installs with `chart`: the chart's own `crds/`, then those of every subchart
/// in `enabled_subcharts` (paths of chart names from the top chart, as
/// `kantup_helm_values::deps::enabled_subcharts` computes them from the values), depth first,
/// named `charts/<subchart>/crds/<file>`.
///
/// ```
/// # let root = kantup_test_support::workspace_root();
/// let bundle = kantup_bundle::Bundle::open(root.join("examples/bundles/testchart.bundle.tar"))?;
/// let crds = kantup_k8s_apply::crd::chart_crds(&bundle.chart()?, &[])?;
/// assert!(crds.is_empty(), "the example chart has no CRDs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn chart_crds(
    chart: &kantup_bundle::chart::Chart,
    enabled_subcharts: &[Vec<String>],
) -> Result<Vec<CrdDocument>> {
    let files = chart.crd_files(&|path: &[&str]| enabled_subcharts.iter().any(|e| e == path));
    load_crd_documents(files)
}

/// Loads CRDs from in-memory files `(name, bytes)` (e.g. a chart's `crds/...` entries).
/// Files that are not `.yaml`/`.yml`/`.json` are ignored; the rest are read in name order, each
/// as multi-document YAML; empty documents are skipped; any other document is an error naming
/// its file and index.
pub fn load_crd_documents<I, N, B>(files: I) -> Result<Vec<CrdDocument>>
where
    I: IntoIterator<Item = (N, B)>,
    N: Into<String>,
    B: AsRef<[u8]>,
{
    let mut files: Vec<(String, B)> = files
        .into_iter()
        .map(|(name, bytes)| (name.into(), bytes))
        .filter(|(name, _)| is_manifest(name))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let mut crds: Vec<CrdDocument> = Vec::new();
    for (file, bytes) in files {
        for (index, document) in serde_yaml::Deserializer::from_slice(bytes.as_ref()).enumerate() {
            let value = Value::deserialize(document).map_err(|source| Error::CrdSyntax {
                file: file.clone(),
                index,
                source,
            })?;
            if value.is_null() {
                continue;
            }
            let crd = parse_crd(&file, index, value)?;
            if let Some(first) = crds.iter().find(|c| c.name == crd.name) {
                return Err(Error::DuplicateCrd {
                    name: crd.name.clone(),
                    first: first.origin(),
                    second: crd.origin(),
                });
            }
            crds.push(crd);
        }
    }
    Ok(crds)
}

fn parse_crd(file: &str, index: usize, manifest: Value) -> Result<CrdDocument> {
    let field = |name: &str| {
        manifest
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != CRD_API_VERSION || kind != CRD_KIND {
        return Err(Error::NotACrd {
            file: file.to_string(),
            index,
            api_version,
            kind,
        });
    }
    let invalid = |reason: String| Error::InvalidCrd {
        file: file.to_string(),
        index,
        reason,
    };
    let crd: CustomResourceDefinition =
        serde_json::from_value(manifest.clone()).map_err(|e| invalid(e.to_string()))?;
    let name = crd
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("metadata.name is missing".to_string()))?;
    // The API server insists on this; saying so before any request names the file.
    let expected = format!("{}.{}", crd.spec.names.plural, crd.spec.group);
    if name != expected {
        return Err(invalid(format!(
            "metadata.name {name:?} must be spec.names.plural + \".\" + spec.group = {expected:?}"
        )));
    }
    if crd.spec.versions.is_empty() {
        return Err(invalid(format!("{name}: spec.versions is empty")));
    }
    let storage = crd.spec.versions.iter().filter(|v| v.storage).count();
    if storage != 1 {
        return Err(invalid(format!(
            "{name}: exactly one version must have storage: true, found {storage}"
        )));
    }
    Ok(CrdDocument {
        file: file.to_string(),
        index,
        name,
        manifest,
        crd,
    })
}
