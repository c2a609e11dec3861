//! The OCI distribution HTTP client, one registry host per client:
//! - `transport`: scheme choice (HTTPS first, the plain-HTTP fallback for local addresses),
//!   sending with auth and retries, errors;
//! - `token`: `WWW-Authenticate` challenges, basic auth and bearer tokens per scope;
//! - `blobs`: blob existence, download, upload sessions and mounts;
//! - [`upload`]: streamed, chunked uploads that continue where the registry stands;
//! - `manifests`: manifest HEAD/GET/PUT and tag listing;
//! - `referrers`: whether a registry has the OCI 1.1 referrers API.

mod blobs;
mod manifests;
mod referrers;
mod token;
mod transport;
pub mod upload;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kantup_bundle::Digest;

use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::net::HttpOptions;
use crate::scheme::Scheme;
use crate::upload_sessions::UploadSessions;

pub use manifests::manifest_accept;
pub use token::Challenge;

/// How often and how patiently to retry 5xx, 429 and dropped connections.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled each time up to `max_delay`.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Delay before attempt `attempt + 1`: what the server asked for (`Retry-After`), capped
    /// at [`RetryPolicy::MAX_RETRY_AFTER`], else [`RetryPolicy::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(Self::MAX_RETRY_AFTER),
            None => self.backoff(attempt),
        }
    }

    /// The longest `Retry-After` obeyed: a registry asking for an hour gets a minute, and the
    /// retry budget stays bounded.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
}

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TLS trust, plain HTTP, proxy, timeouts, user agent (shared with every other client).
    pub http: HttpOptions,
    /// Credentials for this registry host (basic auth, or for its token endpoint); `None` is
    /// anonymous. Sent to no other host.
    pub credentials: Option<Credentials>,
    /// How 5xx, 429 and dropped connections are retried.
    pub retry: RetryPolicy,
    /// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size (the
    /// most an interruption can cost; memory does not grow with it, bodies are streamed).
    pub chunk_size: usize,
    /// Where upload sessions are saved so an interrupted push continues on the next run;
    /// `None` keeps them in memory only (a failed attempt still continues in-process).
    pub upload_sessions: Option<UploadSessions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            http: HttpOptions::default(),
            credentials: None,
            retry: RetryPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            upload_sessions: None,
        }
    }
}

/// The default [`ClientOptions::chunk_size`].
pub const DEFAULT_CHUNK_SIZE: usize = 64 << 20;

/// What a manifest HEAD/GET told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The manifest's digest: the registry's `Docker-Content-Digest` header, or (for a GET)
    /// the digest of the bytes received; `None` when a HEAD answer did not name one.
    pub digest: Option<Digest>,
    /// The `Content-Type` the registry sent (a GET keeps only the media type, without
    /// parameters).
    pub media_type: String,
    /// The manifest's size in bytes: `Content-Length`, or (for a GET) the bytes received.
    pub size: u64,
    /// The `ETag` the registry sent, as sent (quotes included): what a conditional `PUT`
    /// names in `If-Match` so it replaces only the manifest that was read.
    pub etag: Option<String>,
}

/// A condition on a manifest `PUT` (the distribution spec lets clients send conditional
/// requests when they update the referrers fallback index; registries that do not implement
/// them ignore the headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No condition.
    None,
    /// `If-Match: <etag>`: only if the manifest is still the one read.
    IfMatch(String),
    /// `If-None-Match: *`: only if nothing is there yet.
    IfAbsent,
}

/// What a manifest `PUT` was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPut {
    /// The digest the registry reports (`Docker-Content-Digest`), else the bytes' digest.
    pub digest: Digest,
    /// The `OCI-Subject` header: a registry with the OCI 1.1 referrers API names the pushed
    /// manifest's `subject` here, telling the client it lists the manifest as a referrer
    /// (and that no fallback index is needed).
    pub subject: Option<String>,
}

/// How a blob ended up in the target repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already there (HEAD said so).
    Existed,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded; bytes sent.
    Uploaded(u64),
    /// Uploaded by continuing a session an earlier, interrupted attempt left: `from` bytes
    /// were already in the registry, `sent` were sent now.
    Resumed {
        /// Bytes sent by this upload.
        sent: u64,
        /// Bytes the registry already held when it was continued.
        from: u64,
    },
}

/// A client for one registry host.
///
/// The scheme is settled on the first request: HTTPS, or plain HTTP with `--plain-http`, or
/// after a failed TLS handshake with a loopback or private address (see [`crate::scheme`]).
///
/// ```no_run
/// # async fn demo() -> kantup_registry::Result<()> {
/// use kantup_registry::{ClientOptions, RegistryClient};
/// let client = RegistryClient::new("127.0.0.1:5000", ClientOptions::default())?;
/// let tags = client.list_tags("library/busybox").await?;
/// # Ok(()) }
/// ```
pub struct RegistryClient {
    host: String,
    http: reqwest::Client,
    /// `--plain-http`: no TLS attempt at all.
    plain_http: bool,
    /// Decided on first use (see [`transport`]).
    scheme: tokio::sync::OnceCell<Scheme>,
    credentials: Option<Credentials>,
    /// Bearer tokens per scope string; never logged.
    tokens: Mutex<HashMap<String, String>>,
    /// The registry asked for basic auth.
    use_basic: AtomicBool,
    retry: RetryPolicy,
    chunk_size: usize,
    upload_sessions: Option<UploadSessions>,
    /// The registry refused a PATCH: every blob goes in one PUT.
    chunked_refused: AtomicBool,
    /// Saving a session failed once (warned once).
    session_save_warned: AtomicBool,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.host)
            .field("scheme", &self.scheme.get())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Scopes a request needs, e.g. `repository:a/b:pull,push`.
fn repo_scope(repo: &str, push: bool) -> String {
    if push {
        format!("repository:{repo}:pull,push")
    } else {
        format!("repository:{repo}:pull")
    }
}

impl RegistryClient {
    /// A client for `host` (`name[:port]`). Nothing is sent yet: the scheme and the auth the
    /// registry wants are settled by the first request.
    ///
    /// Errors: [`RegistryError::Invalid`] when `host` is empty or has a path, and the
    /// [`HttpOptions`] errors (an unreadable CA file, a bad proxy URL).
    pub fn new(host: &str, options: ClientOptions) -> Result<Self> {
        if host.is_empty() || host.contains('/') {
            return Err(RegistryError::Invalid(format!(
                "registry host {host:?} must be name[:port] without a path"
            )));
        }
        let http = options.http.client_for(host)?;
        Ok(Self {
            host: host.to_string(),
            http,
            plain_http: options.http.plain_http,
            scheme: tokio::sync::OnceCell::new(),
            credentials: options.credentials,
            tokens: Mutex::new(HashMap::new()),
            use_basic: AtomicBool::new(false),
            retry: options.retry,
            chunk_size: options.chunk_size.max(1024),
            upload_sessions: options.upload_sessions,
            chunked_refused: AtomicBool::new(false),
            session_save_warned: AtomicBool::new(false),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host`, settling the scheme first (see [`RegistryClient`]).
    pub async fn base_url(&self) -> Result<String> {
        Ok(format!("{}://{}", self.scheme().await?, self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let got: Vec<_> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            RetryPolicy::MAX_RETRY_AFTER
        );
        assert_eq!(p.delay(2, None), Duration::from_millis(200));
    }

    #[test]
    fn rejects_host_with_path() {
        let err = RegistryClient::new("reg.example/ns", ClientOptions::default()).unwrap_err();
        assert!(err.to_string().contains("reg.example/ns"), "{err}");
    }
}
