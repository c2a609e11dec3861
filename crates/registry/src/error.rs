//! Typed errors of the registry client.

use std::path::PathBuf;

use kantup_bundle::{Digest, DigestParseError};

use crate::credentials::CredentialsError;
use crate::net::{NetError, TlsError};

/// Everything that can go wrong talking to a registry or a chart repository.
///
/// Messages name the registry, repository, digest or file involved and never carry a
/// credential (auth headers and tokens are not part of any variant).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The HTTP layer failed (connection refused or dropped, TLS, timeout).
    #[error("{method} {url}: {source}")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's URL (query secrets redacted).
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status the operation cannot accept.
    #[error("{method} {url}: HTTP {status}{}", body_suffix(.body))]
    Status {
        /// The request's method.
        method: String,
        /// The request's URL (query secrets redacted).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body (the message shows its first 300 characters).
        body: String,
    },
    /// The registry asked for credentials and none (or wrong ones) were configured.
    #[error("{registry}: authentication failed ({reason})")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// What failed (which request, what the registry said).
        reason: String,
    },
    /// A `WWW-Authenticate` challenge or token answer could not be understood.
    #[error("{registry}: bad auth challenge or token response: {reason}")]
    BadChallenge {
        /// The registry host.
        registry: String,
        /// What could not be understood.
        reason: String,
    },
    /// Reading a blob from its source failed.
    #[error("reading blob {digest}: {source}")]
    Source {
        /// The blob being read.
        digest: Digest,
        /// The source's error (a short or changed source says so here).
        #[source]
        source: std::io::Error,
    },
    /// A file (chart tgz, index.yaml) could not be read or written.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Bad configuration or input (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// A tag already points at another manifest and overwriting was refused.
    #[error(
        "{reference} already exists with digest {}, refusing to overwrite with {new}",
        DigestOrUnknown(.existing.as_ref())
    )]
    TagConflict {
        /// The target (`host/repository:tag`).
        reference: String,
        /// What the tag points at (`None`: the registry did not say).
        existing: Option<Digest>,
        /// The manifest that was to be pushed.
        new: Digest,
    },
    /// A chart with the same name and version but other content is already in the target.
    #[error(
        "chart {name}-{version} already exists in {target} with other content (use force to overwrite)"
    )]
    ChartConflict {
        /// The chart name.
        name: String,
        /// The chart version.
        version: String,
        /// The target ([`ChartTarget::describe`](crate::chart_target::ChartTarget::describe)).
        target: String,
    },
    /// Credentials could not be resolved (docker config, credential helper, a half pair).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The HTTP client could not be set up (CA file, proxy).
    #[error(transparent)]
    Net(#[from] NetError),
    /// TLS failed: an untrusted certificate, or one side speaking plain HTTP.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The registry lost or moved an upload session (404, 416 on a chunk): the upload goes on
    /// from where the registry stands, or starts over.
    #[error("upload session lost: {0}")]
    UploadSessionLost(Box<RegistryError>),
    /// The server answered an API request with an HTML page: a web server, login page or
    /// proxy, not the registry API.
    #[error(
        "{method} {url}: HTTP {status} with an HTML page, not a registry API answer (is this a registry, or a login page or proxy in front of it?)"
    )]
    NotARegistry {
        /// The request's method.
        method: String,
        /// The request's URL (query secrets redacted).
        url: String,
        /// The (successful) HTTP status it came with.
        status: u16,
    },
    /// The registry's answer contradicts itself or the request (a size, digest or media type
    /// that is not what it says or what was asked for); nothing was used.
    #[error("{what}: {reason}")]
    BadAnswer {
        /// What was asked for (`manifest host/repo:tag`, `blob host/repo@digest`).
        what: String,
        /// How the answer contradicts itself or the request.
        reason: String,
    },
    /// A digest that came from outside (a registry's header or manifest, a saved file) is not
    /// `sha256:<64 lowercase hex>`; `origin` names where it came from. Nothing was used.
    #[error("{origin}: {source}")]
    BadDigest {
        /// Where the digest came from, e.g.
        /// `docker-content-digest header of HEAD https://reg/v2/a/manifests/1.0`.
        origin: String,
        /// What is wrong with it.
        #[source]
        source: DigestParseError,
    },
    /// Not attempted: the registry had stopped answering earlier in the same run.
    #[error("not attempted: {registry} stopped answering ({reason})")]
    NotAttempted {
        /// The registry host.
        registry: String,
        /// The error that made the run give up on it.
        reason: String,
    },
    /// The retry budget ran out; the last error is attached.
    #[error("giving up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<RegistryError>,
    },
}

fn body_suffix(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        let short: String = body.chars().take(300).collect();
        format!(": {short}")
    }
}

impl RegistryError {
    /// Whether trying again may help (5xx, 429, dropped connections).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body()
                    || source.is_decode()
            }
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            RegistryError::UploadSessionLost(_) => true,
            _ => false,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A digest that may be unknown, shown as `unknown` then.
pub(crate) struct DigestOrUnknown<'a>(pub(crate) Option<&'a Digest>);

impl std::fmt::Display for DigestOrUnknown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(digest) => digest.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}
