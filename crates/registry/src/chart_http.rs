//! The one HTTP client of chart repositories (a static server with an `index.yaml`, Harbor,
//! ChartMuseum), for reading (`index.yaml`, chart archives: [`crate::chart_repo`]) and for
//! writing (multipart uploads: [`crate::chart_target`]).
//!
//! Its reqwest client is built by [`HttpOptions::client_for`]; its one rule for credentials:
//! they go to the repository's own origin only ([`same_origin`]: scheme, host and port, like
//! helm without `--pass-credentials`), whatever URL the index or the API points at.
//!
//! ```
//! use kantup_registry::chart_http::ChartRepoClient;
//! use kantup_registry::credentials::Credentials;
//! use kantup_registry::net::HttpOptions;
//! let base = url::Url::parse("https://charts.example/chartrepo/lib").unwrap();
//! let client = ChartRepoClient::new(
//!     base,
//!     &HttpOptions::default(),
//!     Some(Credentials::new("admin", "secret")),
//! )?;
//! assert_eq!(client.host(), "charts.example");
//! assert!(!format!("{client:?}").contains("secret"));
//! # Ok::<(), kantup_registry::net::NetError>(())
//! ```

use bytes::Bytes;
use url::Url;

use crate::chart_index::{IndexError, IndexFile};
use crate::credentials::Credentials;
use crate::location::authority;
use crate::net::{HttpOptions, NetError, TlsError, redact_url, same_origin};

/// Largest `index.yaml` read (big public repositories have indexes of tens of MiB).
pub const MAX_INDEX_SIZE: u64 = 256 << 20;

/// A request to a chart repository that did not give what was asked. Readers and writers turn
/// it into their own errors ([`crate::chart_repo::RepoError`], [`crate::error::RegistryError`]).
#[derive(Debug, thiserror::Error)]
pub enum ChartHttpError {
    /// TLS failed (an untrusted certificate, plain HTTP on one side), naming the host.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The request failed before an answer arrived.
    #[error("{method} {url}: {source}")]
    Send {
        /// The request's method.
        method: &'static str,
        /// The URL (credentials cut out).
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{method} {url}: HTTP {status}")]
    Status {
        /// The request's method.
        method: &'static str,
        /// The URL (credentials cut out).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body.
        body: String,
    },
    /// The answer is larger than the caller reads.
    #[error("{url}: larger than {limit} bytes; refusing to read on")]
    TooLarge {
        /// The URL (credentials cut out).
        url: String,
        /// How many bytes the caller reads at most.
        limit: u64,
    },
    /// The `index.yaml` is not a chart repository index.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// An HTTP(S) chart repository as a client sees it: the URL it was given (its origin is where
/// credentials may go), the HTTP client, and the credentials.
#[derive(Clone)]
pub struct ChartRepoClient {
    base: Url,
    host: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for ChartRepoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartRepoClient")
            .field("base", &redact_url(self.base.as_str()))
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl ChartRepoClient {
    /// The client of the repository at `base`, its HTTP client built from `http` for `base`'s
    /// host; `credentials` go only to `base`'s origin.
    pub fn new(
        base: Url,
        http: &HttpOptions,
        credentials: Option<Credentials>,
    ) -> Result<Self, NetError> {
        let host = authority(&base);
        let http = http.client_for(&host)?;
        Ok(Self {
            base,
            host,
            http,
            credentials,
        })
    }

    /// `host[:port]` of the repository.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The credentials sent to the repository's own origin.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// A request with basic auth when `url` is on the repository's own origin.
    fn request(&self, method: reqwest::Method, url: &Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url.clone());
        match &self.credentials {
            Some(credentials) if same_origin(&self.base, url) => {
                request.basic_auth(&credentials.username, Some(&credentials.password))
            }
            _ => request,
        }
    }

    /// Sends `request`; an answer that is not a success is [`ChartHttpError::Status`] (or the
    /// TLS error a plain HTTP answer to HTTPS is).
    async fn send(
        &self,
        method: &'static str,
        url: &Url,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ChartHttpError> {
        let response = request
            .send()
            .await
            .map_err(|source| self.send_error(method, url, source))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        if let Some(tls) = TlsError::from_plain_http_answer(&self.host, status.as_u16(), &body) {
            return Err(tls.into());
        }
        Err(ChartHttpError::Status {
            method,
            url: redact_url(url.as_str()),
            status: status.as_u16(),
            body,
        })
    }

    fn send_error(
        &self,
        method: &'static str,
        url: &Url,
        source: reqwest::Error,
    ) -> ChartHttpError {
        match TlsError::from_request(&authority(url), &source) {
            Some(tls) => tls.into(),
            None => ChartHttpError::Send {
                method,
                url: redact_url(url.as_str()),
                source: source.without_url(),
            },
        }
    }

    /// GETs `url`, reading at most `limit` bytes.
    pub async fn get(&self, url: &Url, limit: u64) -> Result<Bytes, ChartHttpError> {
        let request = self.request(reqwest::Method::GET, url);
        let mut response = self.send("GET", url, request).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| self.send_error("GET", url, source))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > limit {
                return Err(ChartHttpError::TooLarge {
                    url: redact_url(url.as_str()),
                    limit,
                });
            }
        }
        Ok(Bytes::from(body))
    }

    /// GETs and parses the `index.yaml` at `url` (at most [`MAX_INDEX_SIZE`] bytes).
    pub async fn index(&self, url: &Url) -> Result<IndexFile, ChartHttpError> {
        let bytes = self.get(url, MAX_INDEX_SIZE).await?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(IndexFile::from_yaml_named(
            &text,
            &redact_url(url.as_str()),
        )?)
    }

    /// POSTs `form` to `url` (a multipart upload).
    pub async fn post_multipart(
        &self,
        url: &Url,
        form: reqwest::multipart::Form,
    ) -> Result<(), ChartHttpError> {
        let request = self.request(reqwest::Method::POST, url).multipart(form);
        self.send("POST", url, request).await?;
        Ok(())
    }
}
