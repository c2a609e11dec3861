//! Which clusters a fleet upgrade reaches: contexts of one kubeconfig (`--context A --context
//! B`), or a fleet file (YAML) filtered by `--selector k=v`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kantup_k8s_apply::ClusterAccess;
use serde::Deserialize;

/// One cluster of the fleet: its name (in lines and reports), how to reach it, and the
/// namespace of the release there when it differs from `-n`.
#[derive(Debug, Clone)]
pub struct FleetCluster {
    /// The name kantup reports the cluster by.
    pub name: String,
    /// Kubeconfig and context.
    pub access: ClusterAccess,
    /// The release's namespace in this cluster (default: `-n`).
    pub namespace: Option<String>,
    /// The labels `--selector` matches.
    pub labels: BTreeMap<String, String>,
}

impl FleetCluster {
    /// The cluster reached through `context` of `kubeconfig` (kubectl's resolution when
    /// `None`), named after the context.
    pub fn from_context(kubeconfig: Option<PathBuf>, context: &str) -> Self {
        Self {
            name: context.to_string(),
            access: ClusterAccess {
                kubeconfig,
                context: Some(context.to_string()),
            },
            namespace: None,
            labels: BTreeMap::new(),
        }
    }
}

/// A bad fleet file or selector, naming the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum FleetFileError {
    /// The file cannot be read.
    #[error("reading the fleet file {}: {source}", path.display())]
    Read {
        /// The fleet file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not the fleet file's YAML (the field is named).
    #[error("the fleet file {} is not valid: {source}", path.display())]
    Parse {
        /// The fleet file.
        path: PathBuf,
        /// What serde_yaml said, with the line.
        source: serde_yaml::Error,
    },
    /// An entry is wrong (named by its index and name).
    #[error("the fleet file {}: {reason}", path.display())]
    Invalid {
        /// The fleet file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `--selector` that is not `KEY=VALUE`.
    #[error("--selector {0:?}: expected KEY=VALUE")]
    Selector(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    clusters: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads a fleet file:
///
/// ```yaml
/// clusters:
///   - name: edge-a
///     kubeconfig: /etc/kantup/edge-a.yaml   # relative paths are from the file's directory
///     labels: {site: north, tier: canary}
///   - name: edge-b
///     context: edge-b                         # in $KUBECONFIG when no kubeconfig is given
///     namespace: kant                         # this cluster's namespace (default: -n)
/// ```
pub fn read_fleet_file(path: &Path) -> Result<Vec<FleetCluster>, FleetFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FleetFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: FleetFile = serde_yaml::from_str(&text).map_err(|source| FleetFileError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| FleetFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut clusters: Vec<FleetCluster> = Vec::new();
    for (index, entry) in file.clusters.into_iter().enumerate() {
        if entry.name.trim().is_empty() {
            return Err(invalid(format!("clusters[{index}].name is empty")));
        }
        if clusters.iter().any(|c| c.name == entry.name) {
            return Err(invalid(format!(
                "clusters[{index}].name {:?} is given twice",
                entry.name
            )));
        }
        if entry.kubeconfig.is_none() && entry.context.is_none() {
            return Err(invalid(format!(
                "clusters[{index}] ({}): give a kubeconfig, a context, or both",
                entry.name
            )));
        }
        clusters.push(FleetCluster {
            name: entry.name,
            access: ClusterAccess {
                kubeconfig: entry.kubeconfig.map(|k| base.join(k)),
                context: entry.context,
            },
            namespace: entry.namespace,
            labels: entry.labels,
        });
    }
    if clusters.is_empty() {
        return Err(invalid("no clusters listed".into()));
    }
    Ok(clusters)
}

/// The clusters whose labels carry every `KEY=VALUE` of `selectors`.
pub fn select(
    clusters: Vec<FleetCluster>,
    selectors: &[String],
) -> Result<Vec<FleetCluster>, FleetFileError> {
    let mut wanted = Vec::new();
    for selector in selectors {
        for pair in selector.split(',') {
            let (key, value) = pair
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| FleetFileError::Selector(selector.clone()))?;
            wanted.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(clusters
        .into_iter()
        .filter(|c| wanted.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_file_is_read_and_selected_by_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yaml");
        std::fs::write(
            &path,
            "clusters:\n  - name: a\n    kubeconfig: a.yaml\n    labels: {site: north}\n  - name: b\n    context: b\n    namespace: kant\n    labels: {site: south}\n",
        )
        .unwrap();
        let clusters = read_fleet_file(&path).unwrap();
        assert_eq!(
            clusters[0].access.kubeconfig,
            Some(dir.path().join("a.yaml"))
        );
        assert_eq!(clusters[1].namespace.as_deref(), Some("kant"));
        let north = select(clusters, &["site=north".into()]).unwrap();
        assert_eq!(north.len(), 1);
        assert_eq!(north[0].name, "a");
    }

    #[test]
    fn a_bad_entry_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, "clusters:\n  - name: a\n").unwrap();
        let error = read_fleet_file(&path).unwrap_err().to_string();
        assert!(error.contains("clusters[0] (a)"), "{error}");
        assert!(select(Vec::new(), &["nokey".into()]).is_err());
    }
}
