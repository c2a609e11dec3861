//! The crate's typed errors. Every variant names the file, object or release it is about.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in `kantup-k8s-apply`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("read", "write", "list").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A document in a CRD file is not valid YAML/JSON.
    #[error("{file}: document {index}: not valid YAML: {source}")]
    CrdSyntax {
        /// The file name the document came from.
        file: String,
        /// Zero-based index of the document in the file.
        index: usize,
        /// The parser's error.
        #[source]
        source: serde_yaml::Error,
    },

    /// A document is not an `apiextensions.k8s.io/v1` CustomResourceDefinition.
    #[error(
        "{file}: document {index}: expected apiextensions.k8s.io/v1 CustomResourceDefinition, found {api_version} {kind}"
    )]
    NotACrd {
        /// The file name the document came from.
        file: String,
        /// Zero-based index of the document in the file.
        index: usize,
        /// The document's `apiVersion` (or `<none>`).
        api_version: String,
        /// The document's `kind` (or `<none>`).
        kind: String,
    },

    /// A CRD document is structurally invalid (for example it has no `metadata.name`).
    #[error("{file}: document {index}: invalid CustomResourceDefinition: {reason}")]
    InvalidCrd {
        /// The file name the document came from.
        file: String,
        /// Zero-based index of the document in the file.
        index: usize,
        /// What is wrong.
        reason: String,
    },

    /// The same CRD name appears twice in the input.
    #[error("CustomResourceDefinition {name} is defined twice: in {first} and in {second}")]
    DuplicateCrd {
        /// The CRD name.
        name: String,
        /// `file#index` of the first definition.
        first: String,
        /// `file#index` of the second definition.
        second: String,
    },

    /// The API server refused or failed a request.
    #[error("{action}: {}", describe_kube_error(source))]
    Api {
        /// What we asked, naming the object (e.g. `apply CustomResourceDefinition foos.example.com`).
        action: String,
        /// The client error, carrying the server's Status when there is one.
        #[source]
        source: kube::Error,
    },

    /// A CRD did not become `Established` and `NamesAccepted` in time.
    #[error(
        "CustomResourceDefinition {name} is not ready after {timeout:?}: condition {condition} is {status}{detail}"
    )]
    CrdNotReady {
        /// The CRD name.
        name: String,
        /// The condition we waited for (`Established` or `NamesAccepted`).
        condition: String,
        /// The condition's last status (`False`, `Unknown`, or `missing`).
        status: String,
        /// ` (reason: message)` from the server, or empty.
        detail: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// Applying would drop versions that objects may still be stored in.
    #[error(
        "CustomResourceDefinition {name}: refusing to remove version(s) {} still listed in status.storedVersions; migrate stored objects first or pass --allow-version-removal",
        versions.join(", ")
    )]
    StoredVersionRemoval {
        /// The CRD name.
        name: String,
        /// The versions that would be removed but are still stored.
        versions: Vec<String>,
    },

    /// No Helm release record exists for this name.
    #[error(
        "release {name} not found in namespace {namespace} (no {driver} labelled owner=helm,name={name})"
    )]
    ReleaseNotFound {
        /// The release name.
        name: String,
        /// The namespace searched.
        namespace: String,
        /// The storage driver searched (`Secret` or `ConfigMap`).
        driver: String,
    },

    /// The release exists but not the asked revision.
    #[error(
        "release {name} in namespace {namespace} has no revision {revision} (latest is {latest})"
    )]
    RevisionNotFound {
        /// The release name.
        name: String,
        /// The namespace.
        namespace: String,
        /// The revision asked for.
        revision: u32,
        /// The latest revision present.
        latest: u32,
    },

    /// A release record could not be decoded.
    #[error("{object}: cannot decode Helm release record: {reason}")]
    ReleaseDecode {
        /// The storage object (`Secret kant-system/sh.helm.release.v1.kant.v3`).
        object: String,
        /// What failed.
        reason: String,
    },

    /// `HELM_DRIVER` names a storage backend we cannot read.
    #[error(
        "unsupported Helm storage driver {0:?}: kantup reads the secret (default) and configmap drivers"
    )]
    UnsupportedDriver(String),

    /// The chart version given is not semver.
    #[error("chart version {version:?} is not a semantic version: {source}")]
    BadVersion {
        /// The text given.
        version: String,
        /// The parser's error.
        #[source]
        source: semver::Error,
    },

    /// Cluster access could not be configured from kubeconfig / in-cluster settings.
    #[error("cannot load cluster configuration{}: {reason}", from.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default())]
    Config {
        /// The kubeconfig file, when one was named.
        from: Option<PathBuf>,
        /// What failed (kube's error text).
        reason: String,
    },

    /// Values could not be rendered as YAML.
    #[error("cannot render values of release {release} as YAML: {source}")]
    ValuesYaml {
        /// The release name.
        release: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml::Error,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            action: action.into(),
            source,
        }
    }

    /// The HTTP status code of the server's answer, when this is an API error with one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// Renders a kube error the way a user needs it: the server's message, code and reason.
fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let mut text = if status.message.is_empty() {
                "the server gave no message".to_string()
            } else {
                status.message.clone()
            };
            if status.code != 0 || !status.reason.is_empty() {
                text.push_str(&format!(" ({} {})", status.code, status.reason));
            }
            text
        }
        other => other.to_string(),
    }
}

pub(crate) fn detail_suffix(reason: &Option<String>, message: &Option<String>) -> String {
    match (reason, message) {
        (Some(r), Some(m)) => format!(" ({r}: {m})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    }
}
