//! How kantup reaches a server over HTTP: one set of options ([`HttpOptions`]: CA file and the
//! system roots, skipping verification, plain HTTP, proxy, timeouts, user agent) and one function
//! building the HTTP client from them ([`HttpOptions::client_for`]), used by every client in
//! this crate: the registry, Harbor, ChartMuseum, and HTTP and OCI chart repositories.
//!
//! Also here: recognising TLS failures in a request error ([`TlsError::from_request`]), so a
//! wrong or missing CA is one clear error naming the host, and the rule for where credentials
//! may go ([`same_host`]).
//!
//! ```
//! use kantup_registry::net::HttpOptions;
//! let options = HttpOptions {
//!     ca_file: None,
//!     ..HttpOptions::default()
//! };
//! let client = options.client_for("registry.example:5000")?;
//! # drop(client);
//! # Ok::<(), kantup_registry::net::NetError>(())
//! ```

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// The HTTP settings every kantup client shares.
///
/// Certificate verification is on unless `insecure_skip_tls_verify`; the CA certificates in
/// `ca_file` are trusted in addition to the system store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// A PEM file of CA certificates to trust besides the system's (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (`--insecure-skip-tls-verify`); warned about once per
    /// client, naming the host.
    pub insecure_skip_tls_verify: bool,
    /// Talk plain HTTP to registries (`--plain-http`). Without it registries are tried over
    /// HTTPS first; only a loopback or private address that does not answer TLS falls back to
    /// plain HTTP (see [`crate::scheme`]).
    pub plain_http: bool,
    /// A proxy for every request (`http://proxy:3128`); `None` uses the `HTTPS_PROXY`,
    /// `HTTP_PROXY` and `NO_PROXY` environment variables as curl does.
    pub proxy: Option<String>,
    /// How long connecting (TCP and the TLS handshake) may take.
    pub connect_timeout: Duration,
    /// How long a response may stall between two reads; `None` waits as long as the
    /// connection lives.
    pub read_timeout: Option<Duration>,
    /// How long a whole request may take, body included; `None` for no limit (registry
    /// transfers of large blobs).
    pub timeout: Option<Duration>,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            insecure_skip_tls_verify: false,
            plain_http: false,
            proxy: None,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Some(Duration::from_secs(300)),
            timeout: None,
            user_agent: concat!("kantup/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The HTTP client could not be set up (before any request was sent).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The CA file could not be read.
    #[error("CA file {}: {source}", .path.display())]
    CaFileRead {
        /// The CA file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable PEM certificate.
    #[error("CA file {}: {reason}", .path.display())]
    CaFileInvalid {
        /// The CA file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The proxy URL is not usable (credentials in it are not shown).
    #[error("proxy {proxy}: {reason}")]
    Proxy {
        /// The proxy URL (credentials cut out).
        proxy: String,
        /// Why it is not usable.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("setting up the HTTP client for {host}: {source}")]
    Build {
        /// The host the client was for.
        host: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
}

/// Most redirects a request follows (reqwest's default).
const MAX_REDIRECTS: usize = 10;

impl HttpOptions {
    /// Options with `--ca-file`, `--insecure-skip-tls-verify` and `--plain-http` set, the rest
    /// default.
    pub fn with_tls(
        ca_file: Option<PathBuf>,
        insecure_skip_tls_verify: bool,
        plain_http: bool,
    ) -> Self {
        Self {
            ca_file,
            insecure_skip_tls_verify,
            plain_http,
            ..Self::default()
        }
    }

    /// Builds the HTTP client for requests to `host` (`name[:port]`, used in the warning and
    /// in errors).
    ///
    /// Redirects: up to 10 are followed; reqwest drops `Authorization`, `Cookie` and
    /// `Proxy-Authorization` when a redirect leaves the host or port (a blob redirected to
    /// object storage gets no credentials), and a redirect from HTTPS to plain HTTP on the same
    /// host and port is refused, so credentials never travel in clear text because of one.
    pub fn client_for(&self, host: &str) -> Result<reqwest::Client, NetError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .connect_timeout(self.connect_timeout)
            .redirect(redirect_policy())
            .dns_resolver(std::sync::Arc::new(crate::resolve::HostResolver::default()));
        if let Some(timeout) = self.read_timeout {
            builder = builder.read_timeout(timeout);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(path) = &self.ca_file {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if self.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS certificate verification is OFF for {host} (--insecure-skip-tls-verify): anyone on the network path can impersonate it"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(proxy) = &self.proxy {
            let shown = redact_url(proxy);
            let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|e| NetError::Proxy {
                proxy: shown,
                reason: e.without_url().to_string(),
            })?;
            builder = builder.proxy(proxy.no_proxy(reqwest::NoProxy::from_env()));
        }
        builder.build().map_err(|source| NetError::Build {
            host: host.to_owned(),
            source,
        })
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, NetError> {
    let pem = std::fs::read(path).map_err(|source| NetError::CaFileRead {
        path: path.to_owned(),
        source,
    })?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| NetError::CaFileInvalid {
            path: path.to_owned(),
            reason: format!("not a PEM certificate bundle: {e}"),
        })?;
    if certificates.is_empty() {
        return Err(NetError::CaFileInvalid {
            path: path.to_owned(),
            reason: "no PEM certificate in it".to_owned(),
        });
    }
    Ok(certificates)
}

fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let downgrade = attempt.previous().last().is_some_and(|previous| {
            previous.scheme() == "https"
                && attempt.url().scheme() == "http"
                && same_host(previous, attempt.url())
        });
        if downgrade {
            let to = redact_url(attempt.url().as_str());
            return attempt.error(format!(
                "refusing a redirect from https to plain http on the same host ({to})"
            ));
        }
        attempt.follow()
    })
}

/// Whether two URLs name the same host and port (ports defaulted by scheme): the only
/// requests a host's credentials are attached to.
///
/// ```
/// use kantup_registry::net::same_host;
/// let u = |s| url::Url::parse(s).unwrap();
/// assert!(same_host(&u("https://reg:5000/v2/"), &u("https://reg:5000/token")));
/// assert!(!same_host(&u("https://reg:5000/v2/"), &u("https://reg:5001/v2/")));
/// assert!(!same_host(&u("https://reg/v2/"), &u("https://storage.example/blob")));
/// ```
pub fn same_host(a: &Url, b: &Url) -> bool {
    a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether two URLs have the same origin: scheme, host and port (ports defaulted by scheme).
/// The rule for the credentials of a chart repository: they go only to its own origin, like
/// helm without `--pass-credentials`.
///
/// ```
/// use kantup_registry::net::same_origin;
/// let u = |s: &str| url::Url::parse(s).unwrap();
/// assert!(same_origin(&u("https://h/chartrepo/lib/index.yaml"), &u("https://H:443/charts/a.tgz")));
/// assert!(!same_origin(&u("https://h/index.yaml"), &u("http://h/a.tgz")));
/// ```
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && same_host(a, b)
}

/// Query parameters shown as they are in messages; every other parameter's value is a
/// possible secret (docker-registry's signed upload `_state`, presigned storage URLs).
const PUBLIC_QUERY_KEYS: &[&str] = &["digest", "mount", "from", "n", "last"];

/// `url` for messages: user-info replaced by `redacted`, and the value of every query
/// parameter but `digest`, `mount`, `from`, `n` and `last` replaced by `<redacted>`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_username("redacted");
                let _ = parsed.set_password(None);
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let shown = if PUBLIC_QUERY_KEYS.contains(&k.as_ref()) {
                            v.into_owned()
                        } else {
                            "<redacted>".to_owned()
                        };
                        (k.into_owned(), shown)
                    })
                    .collect();
                let mut query = String::new();
                for (k, v) in pairs {
                    if !query.is_empty() {
                        query.push('&');
                    }
                    query.push_str(&k);
                    query.push('=');
                    query.push_str(&v);
                }
                // Built by hand: `set_query` would percent-encode the marker.
                return format!("{}?{query}", &parsed[..url::Position::AfterPath]);
            }
            parsed.to_string()
        }
        Err(_) => {
            let url = url.split_once('?').map_or(url, |(base, _)| base);
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    format!("{}://redacted@{}", &url[..scheme_end], &url[at + 1..])
                }
                _ => url.to_owned(),
            }
        }
    }
}

/// What went wrong with TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The server's certificate is not trusted (unknown CA, wrong name, expired, ...).
    Untrusted(String),
    /// The server answered the TLS handshake with something that is not TLS (plain HTTP).
    NotTls,
    /// A plain HTTP request reached a server that only speaks TLS.
    ServerRequiresTls,
    /// The handshake failed for another reason.
    Handshake(String),
}

/// A TLS failure talking to `host`, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host}: {}", describe(.problem))]
pub struct TlsError {
    /// `name[:port]`.
    pub host: String,
    /// What went wrong with TLS.
    pub problem: TlsProblem,
}

fn describe(problem: &TlsProblem) -> String {
    match problem {
        TlsProblem::Untrusted(reason) => format!(
            "the server's TLS certificate is not trusted ({reason}); pass the CA certificate that signed it with --ca-file (or skip verification with --insecure-skip-tls-verify)"
        ),
        TlsProblem::NotTls => "the server does not speak TLS (it answered the handshake in plain HTTP); use --plain-http (or an http:// URL) if it has no TLS".to_owned(),
        TlsProblem::ServerRequiresTls => "the server speaks only TLS but was sent plain HTTP; drop --plain-http (or use an https:// URL), and pass its CA with --ca-file if it is private".to_owned(),
        TlsProblem::Handshake(reason) => format!("TLS handshake failed: {reason}"),
    }
}

impl TlsError {
    /// The TLS failure inside a request error, if that is what it is.
    pub fn from_request(host: &str, error: &reqwest::Error) -> Option<Self> {
        tls_problem(error).map(|problem| Self {
            host: host.to_owned(),
            problem,
        })
    }

    /// A TLS server's answer to a plain HTTP request: `400` with Go's body (docker-registry,
    /// Harbor's core) or nginx's (Harbor's front end, most reverse proxies).
    pub fn from_plain_http_answer(host: &str, status: u16, body: &str) -> Option<Self> {
        const ANSWERS: [&str; 2] = [
            "Client sent an HTTP request to an HTTPS server",
            "The plain HTTP request was sent to HTTPS port",
        ];
        (status == 400 && ANSWERS.iter().any(|answer| body.contains(answer))).then(|| Self {
            host: host.to_owned(),
            problem: TlsProblem::ServerRequiresTls,
        })
    }
}

/// Finds the TLS error in a request error's causes. rustls' error sits inside an
/// `io::Error` (hyper-util wraps that in another `io::Error`), and `io::Error::source()` skips
/// what it wraps, so each `io::Error` is opened with `get_ref` as well.
fn tls_problem(error: &reqwest::Error) -> Option<TlsProblem> {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![error];
    while let Some(current) = pending.pop() {
        if let Some(rustls_error) = current.downcast_ref::<rustls::Error>() {
            return Some(match rustls_error {
                rustls::Error::InvalidCertificate(reason) => {
                    TlsProblem::Untrusted(format!("{reason:?}"))
                }
                rustls::Error::InvalidMessage(_) => TlsProblem::NotTls,
                other => TlsProblem::Handshake(other.to_string()),
            });
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
        if let Some(source) = current.source() {
            pending.push(source);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_info() {
        let cases = [
            ("http://u:p@proxy:3128", "http://redacted@proxy:3128/"),
            ("http://proxy:3128", "http://proxy:3128/"),
            ("http://u:secret@[bad", "http://redacted@[bad"),
            (
                "https://reg/v2/a/blobs/uploads/u?_state=s3cr3t&digest=sha256:ab",
                "https://reg/v2/a/blobs/uploads/u?_state=<redacted>&digest=sha256:ab",
            ),
            (
                "https://store/b?X-Amz-Signature=s3cr3t",
                "https://store/b?X-Amz-Signature=<redacted>",
            ),
            (
                "https://reg/v2/a/tags/list?n=1000",
                "https://reg/v2/a/tags/list?n=1000",
            ),
        ];
        for (given, shown) in cases {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }

    #[test]
    fn missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = HttpOptions::with_tls(Some(missing.clone()), false, false)
            .client_for("h")
            .unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = HttpOptions::with_tls(Some(empty), false, false)
            .client_for("h")
            .unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    #[test]
    fn bad_proxy_hides_its_password() {
        let options = HttpOptions {
            proxy: Some("not a url at all://u:hunter2@x".into()),
            ..HttpOptions::default()
        };
        if let Err(err) = options.client_for("h") {
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn plain_http_answer_of_a_tls_server() {
        let body = "Client sent an HTTP request to an HTTPS server.\n";
        let err = TlsError::from_plain_http_answer("reg:5000", 400, body).unwrap();
        assert!(err.to_string().contains("reg:5000"), "{err}");
        assert!(err.to_string().contains("--plain-http"), "{err}");
        let nginx = "<html><center>The plain HTTP request was sent to HTTPS port</center></html>";
        assert!(TlsError::from_plain_http_answer("reg:5000", 400, nginx).is_some());
        assert!(TlsError::from_plain_http_answer("reg:5000", 400, "bad request").is_none());
    }
}
