//! The release a workflow acts on.

use serde::Serialize;

/// A Helm release: its name and the namespace it lives in. Serialized as `release` and
/// `namespace` inside whatever holds it (plans and summaries flatten it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseId {
    /// The release name.
    #[serde(rename = "release")]
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

impl ReleaseId {
    /// The release `name` in `namespace`.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

impl std::fmt::Display for ReleaseId {
    /// `kant in kant-system`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.name, self.namespace)
    }
}
