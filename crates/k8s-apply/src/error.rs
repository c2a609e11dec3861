//! The crate's typed errors. Every variant names the file, object or release it is about.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in `kantup-k8s-apply`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, written or listed.
    #[error(transparent)]
    Io(kantup_bundle::FileError),

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

    /// The API server refused or failed a request, or could not be reached.
    #[error("{0}")]
    Api(Box<ApiError>),

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

    /// A deleted CRD was still there (terminating) when the wait ended.
    #[error(
        "CustomResourceDefinition {name} is still terminating {timeout:?} after its deletion (finalizers: {finalizers})"
    )]
    CrdNotDeleted {
        /// The CRD name.
        name: String,
        /// Its finalizers at the end of the wait.
        finalizers: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// The API server would refuse CRDs (its answer to a dry-run apply); nothing was applied.
    #[error(
        "the API server refuses {} CustomResourceDefinition(s); nothing was applied: {}",
        .0.len(),
        .0.iter().map(|(_, reason)| reason.as_str()).collect::<Vec<_>>().join("; ")
    )]
    CrdsRejected(Vec<(String, String)>),

    /// A CRD's fields are owned by other field managers and taking them over was refused.
    #[error(
        "CustomResourceDefinition {name}: fields owned by other field managers: {}; nothing was \
         applied (the chart's CRDs belong to the chart: drop --refuse-conflicts to take them over)",
        crate::conflicts::describe_conflicts(conflicts)
    )]
    CrdConflicts {
        /// The CRD name.
        name: String,
        /// The managers and their fields.
        conflicts: Vec<crate::conflicts::FieldConflict>,
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
    #[error("{object}: cannot decode Helm release record: {source}")]
    ReleaseDecode {
        /// The storage object (`Secret kant-system/sh.helm.release.v1.kant.v3`).
        object: String,
        /// What failed.
        source: CodecError,
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

    /// A CRD snapshot file could not be written or read.
    #[error("CRD snapshot {}: {reason}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Api(Box::new(ApiError::new(action, source)))
    }

    /// The HTTP status code of the server's answer, when this is an API error with one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api(api) => api.code,
            _ => None,
        }
    }
}

/// One failed Kubernetes API request, printed as one line: what was asked (verb and object),
/// the HTTP code and reason, the server's message and causes, and a hint where there is one.
///
/// ```
/// use kantup_k8s_apply::ApiError;
/// let error = ApiError {
///     action: "apply CustomResourceDefinition widgets.example.com".into(),
///     code: Some(422),
///     reason: "Invalid".into(),
///     message: "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid".into(),
///     causes: vec![kantup_k8s_apply::ApiCause {
///         field: "spec.versions".into(),
///         message: "Invalid value: must have exactly one version marked as storage version".into(),
///     }],
///     hint: None,
/// };
/// assert_eq!(
///     error.to_string(),
///     "apply CustomResourceDefinition widgets.example.com: 422 Invalid: \
///      CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid \
///      (spec.versions: Invalid value: must have exactly one version marked as storage version)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiError {
    /// The verb and object (`apply CustomResourceDefinition foos.example.com from crds/a.yaml#0`).
    pub action: String,
    /// The HTTP status code; `None` when no answer came (connection refused, TLS, timeout).
    pub code: Option<u16>,
    /// The server's reason (`Conflict`, `Invalid`, `Forbidden`), or empty.
    pub reason: String,
    /// The server's message, or what went wrong on the way to it.
    pub message: String,
    /// The server's `details.causes` that its message does not already say.
    pub causes: Vec<ApiCause>,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

/// One entry of a Status's `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiCause {
    /// The field at fault (`.spec.versions`), or empty.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ApiError {
    /// Describes `source`, the answer to `action`. A Status answer gives code, reason, message
    /// and causes; any other failure gives the chain of its causes in one line.
    pub fn new(action: impl Into<String>, source: kube::Error) -> Self {
        let action = action.into();
        match source {
            kube::Error::Api(status) => {
                let message = if status.message.is_empty() {
                    "the server gave no message".to_string()
                } else {
                    status.message.clone()
                };
                let causes = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.as_slice())
                    .unwrap_or(&[])
                    .iter()
                    .map(|c| ApiCause {
                        field: c.field.clone(),
                        message: c.message.clone(),
                    })
                    // The server usually repeats its causes in the message already.
                    .filter(|c| !(message.contains(&c.message) && message.contains(&c.field)))
                    .collect();
                let code = (status.code != 0).then_some(status.code);
                let mut error = ApiError {
                    action,
                    code,
                    reason: status.reason.clone(),
                    message,
                    causes,
                    hint: None,
                };
                error.hint = default_hint(&error);
                error
            }
            other => {
                let mut message = other.to_string();
                let mut cause = std::error::Error::source(&other);
                while let Some(inner) = cause {
                    let text = inner.to_string();
                    if !message.contains(&text) {
                        message.push_str(": ");
                        message.push_str(&text);
                    }
                    cause = inner.source();
                }
                ApiError {
                    action,
                    code: None,
                    reason: String::new(),
                    message,
                    causes: Vec::new(),
                    hint: Some(
                        "check that the API server in the kubeconfig is reachable".to_string(),
                    ),
                }
            }
        }
    }

    /// The conflicts of a `409 Conflict` answer to a server-side apply: one entry per field,
    /// with the field manager that owns it.
    pub fn field_conflicts(&self) -> Vec<(String, String)> {
        if self.code != Some(409) {
            return Vec::new();
        }
        // The Status carries them as causes `conflict with "helm" using apiextensions.k8s.io/v1`
        // / `.spec.versions`; the filter in `new` may have dropped them from `causes`, so
        // they are read back from the message when needed.
        let mut found = Vec::new();
        for cause in &self.causes {
            if let Some(manager) = conflict_manager(&cause.message) {
                found.push((manager, cause.field.clone()));
            }
        }
        if found.is_empty() {
            // "Apply failed with N conflicts: conflict with \"helm\" using v1: .spec.a\n..."
            for part in self.message.split(['\n', ';']) {
                let part = part.trim();
                let part = part
                    .split_once("conflicts: ")
                    .map_or(part, |(_, rest)| rest);
                let part = part.split_once("conflict: ").map_or(part, |(_, rest)| rest);
                if let Some((head, field)) = part.rsplit_once(": ")
                    && let Some(manager) = conflict_manager(head)
                {
                    found.push((manager, field.trim().to_string()));
                }
            }
        }
        found
    }
}

/// `conflict with "helm" using apiextensions.k8s.io/v1` -> `helm`.
fn conflict_manager(text: &str) -> Option<String> {
    let rest = text.split_once("conflict with \"")?.1;
    let (manager, _) = rest.split_once('"')?;
    Some(manager.to_string())
}

fn default_hint(error: &ApiError) -> Option<String> {
    match error.code {
        Some(401) => Some("the kubeconfig's credentials were not accepted".to_string()),
        Some(403) => Some(
            "the user lacks this permission; `kantup preflight` lists what an upgrade needs"
                .to_string(),
        ),
        Some(413) => Some("the object is larger than the API server accepts".to_string()),
        _ => None,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.action)?;
        match self.code {
            Some(code) if self.reason.is_empty() => write!(f, "{code}: ")?,
            Some(code) => write!(f, "{code} {}: ", self.reason)?,
            None => {}
        }
        // One line: the server's messages may hold newlines (one conflict per line).
        let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        f.write_str(&one_line(&self.message))?;
        if !self.causes.is_empty() {
            let causes: Vec<String> = self
                .causes
                .iter()
                .map(|c| {
                    if c.field.is_empty() {
                        one_line(&c.message)
                    } else {
                        format!("{}: {}", c.field, one_line(&c.message))
                    }
                })
                .collect();
            write!(f, " ({})", causes.join("; "))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Why a release record could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The data is not base64.
    #[error("release data is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The data has the gzip magic but is not valid gzip (or could not be compressed).
    #[error("release data is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// The data inflates past the bound.
    #[error("release data inflates past {0} bytes")]
    TooLarge(u64),
    /// The JSON does not parse as (or could not be written from) a release.
    #[error("release JSON does not parse: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn detail_suffix(reason: &Option<String>, message: &Option<String>) -> String {
    match (reason, message) {
        (Some(r), Some(m)) => format!(" ({r}: {m})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    }
}
