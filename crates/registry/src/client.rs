//! The OCI distribution HTTP client: scheme and TLS choice, auth (anonymous, basic, bearer
//! tokens per scope), retries, blob and manifest endpoints.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::auth::{Challenge, Credentials};
use crate::error::{RegistryError, Result};
use crate::scheme::default_scheme;

/// Manifest media types kantup asks for and understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// How often and how patiently to retry 5xx, 429 and dropped connections.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled each time up to `max_delay`.
    pub base_delay: Duration,
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
}

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `Some(true)` forces http, `Some(false)` forces https; `None` decides by host
    /// ([`default_scheme`]).
    pub plain_http: Option<bool>,
    /// A PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (explicit opt-in only).
    pub insecure_skip_verify: bool,
    /// Credentials for basic auth or for the token endpoint; `None` is anonymous.
    pub credentials: Option<Credentials>,
    pub retry: RetryPolicy,
    /// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
    pub chunk_size: usize,
    /// Timeout for connecting (not for whole transfers, which may be long).
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            plain_http: None,
            ca_file: None,
            insecure_skip_verify: false,
            credentials: None,
            retry: RetryPolicy::default(),
            chunk_size: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// What a manifest HEAD/GET told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
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
}

/// A client for one registry host.
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
    base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// Bearer tokens per scope string; never logged.
    tokens: Mutex<HashMap<String, String>>,
    /// The registry asked for basic auth.
    use_basic: AtomicBool,
    retry: RetryPolicy,
    chunk_size: usize,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
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
    /// A client for `host` (`name[:port]`).
    pub fn new(host: &str, options: ClientOptions) -> Result<Self> {
        if host.is_empty() || host.contains('/') {
            return Err(RegistryError::Invalid(format!(
                "registry host {host:?} must be name[:port] without a path"
            )));
        }
        let scheme = match options.plain_http {
            Some(true) => "http",
            Some(false) => "https",
            None => default_scheme(host),
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("kantup/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5));
        if let Some(ca) = &options.ca_file {
            let pem = std::fs::read(ca).map_err(|source| RegistryError::File {
                path: ca.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Invalid(format!("{}: not a PEM CA bundle: {e}", ca.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if options.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Invalid(format!("building HTTP client: {e}")))?;
        Ok(Self {
            host: host.to_string(),
            base: format!("{scheme}://{host}"),
            http,
            credentials: options.credentials,
            tokens: Mutex::new(HashMap::new()),
            use_basic: AtomicBool::new(false),
            retry: options.retry,
            chunk_size: options.chunk_size.max(1024),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn authorize(&self, rb: RequestBuilder, scope: &str) -> RequestBuilder {
        if let Some(token) = self.tokens.lock().expect("token cache").get(scope) {
            return rb.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if self.use_basic.load(Ordering::Relaxed)
            && let Some(c) = &self.credentials
        {
            return rb.header(AUTHORIZATION, c.basic_header());
        }
        rb
    }

    /// Answers a 401: fetches a token for `scope` or switches to basic auth.
    async fn handle_challenge(&self, response: &Response, scope: &str) -> Result<()> {
        let header = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match Challenge::parse(&header) {
            Some(Challenge::Basic) => {
                if self.credentials.is_none() {
                    return Err(RegistryError::Unauthorized {
                        registry: self.host.clone(),
                        reason: "basic auth required and no credentials configured".into(),
                    });
                }
                // Concurrent requests may all see this challenge; the caller re-sends once
                // and treats a second 401 as rejected credentials.
                self.use_basic.store(true, Ordering::Relaxed);
                Ok(())
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope.to_string(), token);
                Ok(())
            }
            None => Err(RegistryError::BadChallenge {
                registry: self.host.clone(),
                reason: format!("unsupported WWW-Authenticate {header:?}"),
            }),
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut url = url::Url::parse(realm).map_err(|e| RegistryError::BadChallenge {
            registry: self.host.clone(),
            reason: format!("realm {realm:?}: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for part in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", part);
            }
        }
        let mut rb = self.http.get(url.clone());
        if let Some(c) = &self.credentials {
            rb = rb.header(AUTHORIZATION, c.basic_header());
        }
        let response = rb.send().await.map_err(|source| RegistryError::Transport {
            method: "GET".into(),
            url: realm.to_string(),
            source,
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: self.host.clone(),
                reason: format!("token endpoint {realm} answered {status}"),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url: realm.to_string(),
                status: status.as_u16(),
                body: String::new(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer =
            response
                .json()
                .await
                .map_err(|e| RegistryError::BadChallenge {
                    registry: self.host.clone(),
                    reason: format!("token answer from {realm}: {e}"),
                })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::BadChallenge {
                registry: self.host.clone(),
                reason: format!("token answer from {realm} has no token"),
            })
    }

    /// Sends once (plus one re-send after an auth challenge). No retry on 5xx.
    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        scope: &str,
        make: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut challenged = false;
        loop {
            let response = self
                .authorize(make(), scope)
                .send()
                .await
                .map_err(|source| RegistryError::Transport {
                    method: method.to_string(),
                    url: url.to_string(),
                    source,
                })?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                self.handle_challenge(&response, scope).await?;
                continue;
            }
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(RegistryError::Unauthorized {
                    registry: self.host.clone(),
                    reason: format!("credentials rejected: {method} {url} answered 401"),
                });
            }
            return Ok(response);
        }
    }

    /// Sends with retries on transport errors, 5xx and 429 (honouring `Retry-After`).
    /// Only for idempotent requests.
    async fn send_retrying(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        make: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(&method, url, scope, make).await;
            let (error, retry_after) = match result {
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    let retry_after = retry_after(r.headers());
                    (status_error(&method, url, r).await, retry_after)
                }
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() => (e, None),
                Err(e) => return Err(e),
            };
            if attempt >= self.retry.max_attempts {
                return Err(RegistryError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = retry_after
                .unwrap_or_else(|| self.retry.backoff(attempt))
                .min(self.retry.max_delay.max(Duration::from_secs(1)) * 6);
            tracing::debug!("retrying {method} {url} in {delay:?}: {error}");
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether `repo` has blob `digest`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::HEAD, &url, &scope, &|| self.http.head(&url))
            .await?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&Method::HEAD, &url, r).await),
        }
    }

    /// Fetches a (small) blob into memory, e.g. a config or a chart layer.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Bytes> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        r.bytes().await.map_err(|source| RegistryError::Transport {
            method: "GET".into(),
            url,
            source,
        })
    }

    /// Streams blob `digest` of `repo` into a new file at `path`, hashing as it goes, and
    /// returns the `sha256:<hex>` of the bytes received and their count. It does not compare
    /// that against `digest`: the caller decides what a mismatch means (and removes `path`).
    pub async fn download_blob(
        &self,
        repo: &str,
        digest: &str,
        path: &std::path::Path,
    ) -> Result<(String, u64)> {
        use tokio::io::AsyncWriteExt as _;
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let scope = repo_scope(repo, false);
        let mut r = self
            .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        let file_error = |source| RegistryError::File {
            path: path.to_owned(),
            source,
        };
        let mut out = tokio::fs::File::create(path).await.map_err(file_error)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = r.chunk().await.map_err(|source| RegistryError::Transport {
            method: "GET".into(),
            url: url.clone(),
            source,
        })? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(file_error)?;
        }
        out.sync_all().await.map_err(file_error)?;
        Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
    }

    /// HEADs a manifest by tag or digest; `None` when absent.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestInfo>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::HEAD, &url, &scope, &|| {
                self.http.head(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(manifest_info(r.headers(), None))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::HEAD, &url, r).await),
        }
    }

    /// GETs a manifest: its bytes exactly as stored, and what the headers say.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Bytes, ManifestInfo)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::GET, &url, &scope, &|| {
                self.http.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        let headers = r.headers().clone();
        let body = r.bytes().await.map_err(|source| RegistryError::Transport {
            method: "GET".into(),
            url: url.clone(),
            source,
        })?;
        let computed = sha256_digest(&body);
        let mut info = manifest_info(&headers, Some(&computed));
        info.size = body.len() as u64;
        Ok((body, info))
    }

    /// PUTs manifest bytes unchanged under `reference` (a tag or its digest); returns the
    /// digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: Bytes,
    ) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let scope = repo_scope(repo, true);
        let r = self
            .send_retrying(Method::PUT, &url, &scope, &|| {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(manifest.clone())
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::PUT, &url, r).await);
        }
        let computed = sha256_digest(&manifest);
        Ok(header_str(r.headers(), "docker-content-digest").unwrap_or(computed))
    }

    /// Lists the tags of `repo` (following `Link` pagination, bounded).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let scope = repo_scope(repo, false);
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list?n=1000"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 1000 {
                break;
            }
            let url = self.url(&path);
            let r = self
                .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
                .await?;
            if r.status() == StatusCode::NOT_FOUND {
                return Ok(Vec::new());
            }
            if !r.status().is_success() {
                return Err(status_error(&Method::GET, &url, r).await);
            }
            next = header_str(r.headers(), "link").and_then(|l| {
                let start = l.find('<')? + 1;
                let end = l.find('>')?;
                Some(l[start..end].to_string())
            });
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let list: TagList = r.json().await.map_err(|source| RegistryError::Transport {
                method: "GET".into(),
                url,
                source,
            })?;
            tags.extend(list.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// Starts an upload session, or mounts `digest` from `mount_from` when given. Returns
    /// `None` when the mount succeeded, else the session URL.
    async fn start_upload(
        &self,
        repo: &str,
        digest: &str,
        mount_from: Option<&str>,
    ) -> Result<Option<String>> {
        let mut path = format!("/v2/{repo}/blobs/uploads/");
        let mut scope = repo_scope(repo, true);
        if let Some(from) = mount_from {
            path.push_str(&format!("?mount={digest}&from={from}"));
            scope.push(' ');
            scope.push_str(&repo_scope(from, false));
        }
        let url = self.url(&path);
        let r = self
            .send_once(&Method::POST, &url, &scope, &|| {
                self.http.post(&url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match r.status() {
            StatusCode::CREATED if mount_from.is_some() => Ok(None),
            StatusCode::ACCEPTED => {
                let location = header_str(r.headers(), LOCATION.as_str()).ok_or_else(|| {
                    RegistryError::Invalid(format!("POST {url}: 202 without Location"))
                })?;
                Ok(Some(self.resolve(&location)))
            }
            _ => Err(status_error(&Method::POST, &url, r).await),
        }
    }

    fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// Makes sure `repo` holds blob `digest` of `size` bytes: HEAD, else mount from
    /// `mount_from` when given, else upload from `open()` (streamed in chunks of
    /// `chunk_size`; a failed upload restarts its session, with backoff).
    ///
    /// `on_bytes` is called with the byte count of each chunk the registry accepted.
    pub async fn ensure_blob(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        mount_from: Option<&str>,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<BlobOutcome> {
        if self.blob_exists(repo, digest).await? {
            return Ok(BlobOutcome::Existed);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .upload_session(repo, digest, size, mount_from, open, on_bytes)
                .await;
            match result {
                Ok(outcome) => return Ok(outcome),
                Err((error, retry_after)) if error.is_retryable() => {
                    if attempt >= self.retry.max_attempts {
                        return Err(RegistryError::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(error),
                        });
                    }
                    let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
                    tracing::debug!(
                        "restarting upload of {digest} to {repo} in {delay:?}: {error}"
                    );
                    tokio::time::sleep(delay).await;
                    // A previous attempt may have completed server-side before the
                    // connection dropped.
                    if self.blob_exists(repo, digest).await? {
                        return Ok(BlobOutcome::Uploaded(0));
                    }
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    async fn upload_session(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        mount_from: Option<&str>,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> std::result::Result<BlobOutcome, (RegistryError, Option<Duration>)> {
        let plain = |e: RegistryError| (e, None);
        let Some(mut location) = self
            .start_upload(repo, digest, mount_from)
            .await
            .map_err(plain)?
        else {
            return Ok(BlobOutcome::Mounted);
        };
        let scope = repo_scope(repo, true);
        let source_err = |source: std::io::Error| RegistryError::Source {
            digest: digest.to_string(),
            source,
        };
        let reader = open().map_err(|e| plain(source_err(e)))?;
        let mut reader = Some(reader);
        let mut hasher = Some(Sha256::new());
        let mut offset: u64 = 0;
        let chunk = self.chunk_size;
        let monolithic = size <= chunk as u64;
        loop {
            // Read the next chunk on a blocking thread; memory stays bounded by chunk_size.
            let r = reader.take().expect("reader present");
            let h = hasher.take().expect("hasher present");
            let (r, h, buf) = tokio::task::spawn_blocking(move || {
                let mut r = r;
                let mut h = h;
                let mut buf = Vec::with_capacity(chunk.min(size as usize + 1));
                let read = (&mut r).take(chunk as u64).read_to_end(&mut buf);
                read.map(|_| {
                    h.update(&buf);
                    (r, h, buf)
                })
            })
            .await
            .map_err(|e| plain(source_err(std::io::Error::other(e))))?
            .map_err(|e| plain(source_err(e)))?;
            reader = Some(r);
            hasher = Some(h);
            let len = buf.len() as u64;
            let body = Bytes::from(buf);
            let last = len < chunk as u64 || offset + len >= size;
            if monolithic || (last && len == 0) {
                // Whole blob (or the empty tail) goes with the closing PUT.
                let computed = format!(
                    "sha256:{}",
                    hex::encode(hasher.take().expect("hasher").finalize())
                );
                if computed != digest || offset + len != size {
                    return Err(plain(source_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: read {} bytes with digest {computed}, expected {size} bytes",
                            offset + len
                        ),
                    ))));
                }
                let url = with_digest(&location, digest);
                let r = self
                    .send_once(&Method::PUT, &url, &scope, &|| {
                        self.http
                            .put(&url)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, len)
                            .body(body.clone())
                    })
                    .await
                    .map_err(plain)?;
                if r.status() != StatusCode::CREATED && !r.status().is_success() {
                    let ra = retry_after(r.headers());
                    return Err((status_error(&Method::PUT, &url, r).await, ra));
                }
                on_bytes(len);
                return Ok(BlobOutcome::Uploaded(offset + len));
            }
            let url = location.clone();
            let range = format!("{}-{}", offset, offset + len - 1);
            let r = self
                .send_once(&Method::PATCH, &url, &scope, &|| {
                    self.http
                        .patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header("Content-Range", &range)
                        .header(CONTENT_LENGTH, len)
                        .body(body.clone())
                })
                .await
                .map_err(plain)?;
            if r.status() != StatusCode::ACCEPTED {
                let ra = retry_after(r.headers());
                return Err((status_error(&Method::PATCH, &url, r).await, ra));
            }
            if let Some(next) = header_str(r.headers(), LOCATION.as_str()) {
                location = self.resolve(&next);
            }
            offset += len;
            on_bytes(len);
            if last {
                // Close the session with an empty PUT carrying the digest.
                let computed = format!(
                    "sha256:{}",
                    hex::encode(hasher.take().expect("hasher").finalize())
                );
                if computed != digest || offset != size {
                    return Err(plain(source_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: read {offset} bytes with digest {computed}, expected {size} bytes"
                        ),
                    ))));
                }
                let url = with_digest(&location, digest);
                let r = self
                    .send_once(&Method::PUT, &url, &scope, &|| {
                        self.http.put(&url).header(CONTENT_LENGTH, 0)
                    })
                    .await
                    .map_err(plain)?;
                if !r.status().is_success() {
                    let ra = retry_after(r.headers());
                    return Err((status_error(&Method::PUT, &url, r).await, ra));
                }
                return Ok(BlobOutcome::Uploaded(offset));
            }
        }
    }

    /// Uploads a small in-memory blob (a chart layer or config) unless present.
    pub async fn ensure_blob_bytes(
        &self,
        repo: &str,
        data: Bytes,
    ) -> Result<(String, BlobOutcome)> {
        let digest = sha256_digest(&data);
        let size = data.len() as u64;
        let outcome = self
            .ensure_blob(
                repo,
                &digest,
                size,
                None,
                &|| Ok(Box::new(std::io::Cursor::new(data.clone())) as Box<dyn Read + Send>),
                &|_| {},
            )
            .await?;
        Ok((digest, outcome))
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn with_digest(location: &str, digest: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("digest", digest);
            u.to_string()
        }
        Err(_) => {
            let sep = if location.contains('?') { '&' } else { '?' };
            format!("{location}{sep}digest={digest}")
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn manifest_info(headers: &HeaderMap, computed: Option<&str>) -> ManifestInfo {
    ManifestInfo {
        digest: header_str(headers, "docker-content-digest")
            .or_else(|| computed.map(str::to_string))
            .unwrap_or_default(),
        media_type: header_str(headers, CONTENT_TYPE.as_str()).unwrap_or_default(),
        size: header_str(headers, CONTENT_LENGTH.as_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header_str(headers, "retry-after")?;
    // Seconds only; HTTP dates fall back to exponential backoff.
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn status_error(method: &Method, url: &str, response: Response) -> RegistryError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    RegistryError::Status {
        method: method.to_string(),
        url: url.to_string(),
        status,
        body,
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
    }

    #[test]
    fn digest_query_is_appended() {
        let cases = [
            (
                "http://h/v2/r/blobs/uploads/u1?_state=abc",
                "http://h/v2/r/blobs/uploads/u1?_state=abc&digest=sha256%3Aab",
            ),
            (
                "http://h/v2/r/blobs/uploads/u1",
                "http://h/v2/r/blobs/uploads/u1?digest=sha256%3Aab",
            ),
        ];
        for (loc, want) in cases {
            assert_eq!(with_digest(loc, "sha256:ab"), want);
        }
    }

    #[test]
    fn rejects_host_with_path() {
        let err = RegistryClient::new("reg.example/ns", ClientOptions::default()).unwrap_err();
        assert!(err.to_string().contains("reg.example/ns"), "{err}");
    }
}
