//! Which objects to judge: references, and the objects of a rendered manifest.

use std::fmt;

/// One object on a cluster: its `apiVersion`, `kind`, namespace (for namespaced kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, `example.com/v1alpha1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The namespace; `None` for a cluster-scoped object (or one whose scope the cluster
    /// decides: a namespaced kind without one is looked up in the default namespace given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Deployment/web` (kubectl's short form; the namespace is in the report's context).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A manifest document that is not a Kubernetes object.
#[derive(Debug, thiserror::Error)]
#[error("manifest document {index}: {problem}")]
pub struct ManifestError {
    /// 1-based position of the document in the manifest.
    pub index: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// The objects of a multi-document YAML manifest (what `helm get manifest` prints), in order,
/// each without a namespace given `default_namespace` (Helm installs them there; for a
/// cluster-scoped kind the waiter drops it). Empty documents are skipped; `kind: List` items
/// are expanded.
///
/// ```
/// let manifest = "---\n# Source: web/templates/svc.yaml\napiVersion: v1\nkind: Service\n\
///                 metadata:\n  name: web\n---\napiVersion: apps/v1\nkind: Deployment\n\
///                 metadata:\n  name: web\n  namespace: other\n";
/// let objects = kantup_k8s_apply::readiness::objects_of_manifest(manifest, "shop").unwrap();
/// assert_eq!(objects[0].to_string(), "Service/web");
/// assert_eq!(objects[0].namespace.as_deref(), Some("shop"));
/// assert_eq!(objects[1].namespace.as_deref(), Some("other"));
/// ```
pub fn objects_of_manifest(
    manifest: &str,
    default_namespace: &str,
) -> Result<Vec<ObjectRef>, ManifestError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(manifest).enumerate() {
        let index = i + 1;
        let value = serde_yaml::Value::deserialize(document).map_err(|e| ManifestError {
            index,
            problem: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let value: serde_json::Value = serde_json::to_value(&value).map_err(|e| ManifestError {
            index,
            problem: e.to_string(),
        })?;
        push_object(&value, default_namespace, index, &mut out)?;
    }
    Ok(out)
}

fn push_object(
    value: &serde_json::Value,
    default_namespace: &str,
    index: usize,
    out: &mut Vec<ObjectRef>,
) -> Result<(), ManifestError> {
    let text = |pointer: &str| value.pointer(pointer).and_then(|v| v.as_str());
    let problem = |what: &str| ManifestError {
        index,
        problem: format!("no {what}"),
    };
    let kind = text("/kind").ok_or_else(|| problem("kind"))?;
    if kind.ends_with("List")
        && let Some(items) = value.get("items").and_then(|i| i.as_array())
    {
        for item in items {
            push_object(item, default_namespace, index, out)?;
        }
        return Ok(());
    }
    let api_version = text("/apiVersion").ok_or_else(|| problem("apiVersion"))?;
    let name = text("/metadata/name").ok_or_else(|| problem("metadata.name"))?;
    let namespace = text("/metadata/namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or(default_namespace);
    out.push(ObjectRef::new(api_version, kind, Some(namespace), name));
    Ok(())
}
