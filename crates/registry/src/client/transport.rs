//! Sending requests to the registry: settling the scheme (HTTPS first; plain HTTP with
//! `--plain-http` or after a failed TLS handshake with a local address), attaching auth only to
//! the registry's own host, answering auth challenges, retrying, and turning failures into
//! errors that name the request (and, for TLS, the host and what to do).

use std::sync::atomic::Ordering;
use std::time::Duration;

use kantup_bundle::Digest;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::RegistryClient;
use crate::error::{RegistryError, Result};
use crate::net::{TlsError, TlsProblem, redact_url, same_host};
use crate::scheme::{Scheme, may_fall_back_to_http};

/// How long a local address gets to answer the TLS handshake before kantup tries plain HTTP
/// (Go's `TLSHandshakeTimeout`); a server that waits for an HTTP request head never answers.
const LOCAL_TLS_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl RegistryClient {
    /// The scheme of this registry, settled once per client.
    pub(super) async fn scheme(&self) -> Result<Scheme> {
        self.scheme
            .get_or_try_init(|| async {
                if self.plain_http {
                    self.probe_plain_http().await
                } else {
                    self.probe_scheme().await
                }
            })
            .await
            .copied()
    }

    /// `--plain-http`: `GET http://host/v2/` once (no credentials), so a registry that speaks
    /// only TLS is one clear error up front (its answer to a HEAD has no body to tell by).
    async fn probe_plain_http(&self) -> Result<Scheme> {
        let url = format!("http://{}/v2/", self.host);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.http.get(&url).send().await {
                Ok(response) if response.status() == StatusCode::BAD_REQUEST => {
                    return match status_error(&Method::GET, &url, response).await {
                        tls @ RegistryError::Tls(_) => Err(tls),
                        _ => Ok(Scheme::Http),
                    };
                }
                Ok(_) => return Ok(Scheme::Http),
                Err(source) => self.request_error(&Method::GET, &url, source),
            };
            if !error.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.backoff(attempt);
            tracing::debug!("retrying {url} in {delay:?}: {error}");
            tokio::time::sleep(delay).await;
        }
    }

    /// `GET https://host/v2/` (any HTTP answer, 401 included, means TLS works). A local
    /// address whose server does not speak TLS falls back to plain HTTP with a warning; an
    /// untrusted certificate is an error, never a fallback.
    async fn probe_scheme(&self) -> Result<Scheme> {
        let url = format!("https://{}/v2/", self.host);
        let local = may_fall_back_to_http(&self.host);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.http.get(&url).send();
            let sent = if local {
                match tokio::time::timeout(LOCAL_TLS_PROBE_TIMEOUT, request).await {
                    Ok(sent) => sent,
                    Err(_) => {
                        self.warn_plain_http("gave no TLS answer within 10s");
                        return Ok(Scheme::Http);
                    }
                }
            } else {
                request.await
            };
            let error = match sent {
                Ok(_) => return Ok(Scheme::Https),
                Err(error) => error,
            };
            match TlsError::from_request(&self.host, &error) {
                Some(TlsError {
                    problem: TlsProblem::NotTls,
                    ..
                }) if local => {
                    self.warn_plain_http("does not speak TLS");
                    return Ok(Scheme::Http);
                }
                Some(tls) => return Err(tls.into()),
                None => {}
            }
            let error = RegistryError::Transport {
                method: "GET".into(),
                url: url.clone(),
                source: error.without_url(),
            };
            if !error.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.backoff(attempt);
            tracing::debug!("retrying {url} in {delay:?}: {error}");
            tokio::time::sleep(delay).await;
        }
    }

    fn warn_plain_http(&self, why: &str) {
        tracing::warn!(
            "{} {why}; using plain HTTP because it is a loopback or private address (pass --plain-http to skip the TLS attempt, or give it TLS)",
            self.host
        );
    }

    /// `scheme://host` + `path`.
    pub(super) async fn url(&self, path: &str) -> Result<String> {
        Ok(format!("{}://{}{}", self.scheme().await?, self.host, path))
    }

    /// Whether `url` points at this registry's own host and port: only those requests get
    /// credentials or tokens.
    pub(super) fn is_own_host(&self, url: &str) -> bool {
        let own = self.scheme.get().copied().unwrap_or(if self.plain_http {
            Scheme::Http
        } else {
            Scheme::Https
        });
        match (
            Url::parse(url),
            Url::parse(&format!("{own}://{}/", self.host)),
        ) {
            (Ok(target), Ok(own)) => same_host(&target, &own),
            _ => false,
        }
    }

    pub(super) fn authorize(&self, rb: RequestBuilder, url: &str, scope: &str) -> RequestBuilder {
        if !self.is_own_host(url) {
            return rb;
        }
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

    /// A request that failed before an answer: a TLS error naming the host when that is what
    /// it was, else a transport error naming the request.
    pub(super) fn request_error(
        &self,
        method: &Method,
        url: &str,
        source: reqwest::Error,
    ) -> RegistryError {
        let host = Url::parse(url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| self.host.clone());
        match TlsError::from_request(&host, &source) {
            Some(tls) => tls.into(),
            // The URL is in the message once, redacted; reqwest's own copy is dropped.
            None => RegistryError::Transport {
                method: method.to_string(),
                url: redact_url(url),
                source: source.without_url(),
            },
        }
    }

    /// Sends once (plus one re-send after an auth challenge). No retry on 5xx.
    pub(super) async fn send_once(
        &self,
        method: &Method,
        url: &str,
        scope: &str,
        make: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut challenged = false;
        loop {
            let response = self
                .authorize(make(), url, scope)
                .send()
                .await
                .map_err(|source| self.request_error(method, url, source))?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                self.handle_challenge(&response, scope).await?;
                continue;
            }
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(RegistryError::Unauthorized {
                    registry: self.host.clone(),
                    reason: format!(
                        "credentials rejected: {method} {} answered 401",
                        redact_url(url)
                    ),
                });
            }
            return self.not_html(method, url, response);
        }
    }

    /// Sends with retries on transport errors, 5xx and 429 (honouring `Retry-After`).
    /// Only for idempotent requests.
    pub(super) async fn send_retrying(
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
            let delay = self.retry.delay(attempt, retry_after);
            tracing::debug!(
                "retrying {method} {} in {delay:?}: {error}",
                redact_url(url)
            );
            tokio::time::sleep(delay).await;
        }
    }
}

impl RegistryClient {
    /// A successful answer of the registry's own host that is an HTML page is no registry API
    /// answer (a web server or login page answering 200 to everything would otherwise look like
    /// "blob present", "manifest stored"). Blob bytes that storage elsewhere serves are not
    /// judged (they are checked by digest).
    pub(super) fn not_html(
        &self,
        method: &Method,
        url: &str,
        response: Response,
    ) -> Result<Response> {
        if response.status().is_success()
            && is_html(response.headers())
            && self.is_own_host(response.url().as_str())
        {
            return Err(RegistryError::NotARegistry {
                method: method.to_string(),
                url: redact_url(url),
                status: response.status().as_u16(),
            });
        }
        Ok(response)
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    header_str(headers, "content-type").is_some_and(|t| {
        let t = t.trim().to_ascii_lowercase();
        t.starts_with("text/html") || t.starts_with("application/xhtml")
    })
}

/// ` ("Title")` of an HTML page, or nothing.
fn html_title(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let Some(start) = lower.find("<title>").map(|i| i + "<title>".len()) else {
        return String::new();
    };
    let end = lower[start..]
        .find("</title>")
        .map_or(body.len(), |i| start + i);
    let title: String = body[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if title.is_empty() {
        String::new()
    } else {
        format!(" ({:?})", title.chars().take(120).collect::<String>())
    }
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The digest a header names (`Docker-Content-Digest`), parsed; `None` when the header is
/// absent, [`RegistryError::BadDigest`] naming the header and request when it is no digest.
pub(super) fn header_digest(
    headers: &HeaderMap,
    name: &str,
    method: &Method,
    url: &str,
) -> Result<Option<Digest>> {
    header_str(headers, name)
        .map(|value| {
            value
                .trim()
                .parse()
                .map_err(|source| RegistryError::BadDigest {
                    origin: format!("{name} header of {method} {}", redact_url(url)),
                    source,
                })
        })
        .transpose()
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date (IMF-fixdate, RFC 2822 form)
/// measured from now.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(&header_str(headers, "retry-after")?, jiff::Timestamp::now())
}

fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The error for an answer the operation cannot accept. A TLS-only server's answer to plain
/// HTTP (`--plain-http` against a TLS registry) becomes the TLS error that says so.
pub(super) async fn status_error(method: &Method, url: &str, response: Response) -> RegistryError {
    let status = response.status().as_u16();
    let host = response
        .url()
        .host_str()
        .map(|h| match response.url().port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_owned(),
        })
        .unwrap_or_default();
    let html = is_html(response.headers());
    let mut body = response.text().await.unwrap_or_default();
    if let Some(tls) = TlsError::from_plain_http_answer(&host, status, &body) {
        return tls.into();
    }
    if html {
        // An error page (a proxy's 502, a login page): its title says more than its markup.
        body = format!(
            "an HTML page{}, not a registry API answer",
            html_title(&body)
        );
    }
    RegistryError::Status {
        method: method.to_string(),
        url: redact_url(url),
        status,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_titles() {
        assert_eq!(
            html_title("<html><head><TITLE>502 Bad\n Gateway</TITLE></head>"),
            " (\"502 Bad Gateway\")"
        );
        assert_eq!(html_title("<html><body>hi</body></html>"), "");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let cases = [
            ("3", Some(Duration::from_secs(3))),
            (" 0 ", Some(Duration::ZERO)),
            (
                "Fri, 02 Jan 2026 03:04:15 GMT",
                Some(Duration::from_secs(10)),
            ),
            ("Fri, 02 Jan 2026 03:00:00 GMT", Some(Duration::ZERO)),
            ("soon", None),
            ("-1", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want, "{value:?}");
        }
    }
}
