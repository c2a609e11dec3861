//! The release a workflow acts on.

use kantup_helm_values::release::StoredValues;
use kantup_k8s_apply::release::Release;
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

/// The values `release`'s record stores, to be read by the rules of the Helm that wrote it
/// (`helm get values` of that Helm).
pub fn stored_values(release: &Release) -> StoredValues<'_> {
    StoredValues::of_record(
        release.chart_values(),
        release.config.as_ref(),
        release.written_by_helm4(),
    )
}
