//! Upload sessions as the registry sees them: where a session stands (`GET` on its URL, the
//! `Range` answer), its `Location`s, and the URL that closes it with the blob's digest.

use kantup_bundle::Digest;
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};

use crate::client::RegistryClient;
use crate::client::transport::{header_str, status_error};
use crate::error::Result;

/// An upload session: its URL and the bytes the registry holds.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) location: String,
    pub(super) offset: u64,
}

/// What the registry says about a session.
pub(super) enum SessionStatus {
    At(Session),
    /// Unknown, expired or refused: start over.
    Gone(String),
}

impl RegistryClient {
    /// `GET` on a session URL: where the registry stands.
    pub(super) async fn session_status(
        &self,
        location: &str,
        scope: &str,
    ) -> Result<SessionStatus> {
        let r = self
            .send_retrying(Method::GET, location, scope, &|| self.http.get(location))
            .await?;
        let status = r.status();
        if status == StatusCode::NO_CONTENT || status == StatusCode::OK {
            let Some(offset) = header_str(r.headers(), "range").and_then(|r| range_end(&r)) else {
                return Ok(SessionStatus::Gone(format!(
                    "GET answered {status} without a Range header"
                )));
            };
            let location = header_str(r.headers(), LOCATION.as_str())
                .map(|l| resolve_location(location, &l))
                .unwrap_or_else(|| location.to_string());
            return Ok(SessionStatus::At(Session { location, offset }));
        }
        if status.is_client_error() {
            let body = r.text().await.unwrap_or_default();
            let code = error_code(&body).unwrap_or_default();
            return Ok(SessionStatus::Gone(format!("GET answered {status} {code}")));
        }
        Err(status_error(&Method::GET, location, r).await)
    }
}

/// The offset a `Range: 0-N` (or `bytes=0-N`) header means: `N + 1`, and `0-0` as nothing
/// (docker-registry answers `0-0` for an empty session).
pub(super) fn range_end(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (start, end) = range.split_once('-')?;
    let (start, end) = (
        start.trim().parse::<u64>().ok()?,
        end.trim().parse::<u64>().ok()?,
    );
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

/// The first `code` of an OCI error body (`{"errors":[{"code":"..."}]}`).
pub(super) fn error_code(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["errors"][0]["code"].as_str().map(str::to_owned)
}

/// An upload `Location` (absolute, or relative to the request that returned it).
pub(in crate::client) fn resolve_location(request_url: &str, location: &str) -> String {
    match url::Url::parse(request_url).and_then(|base| base.join(location)) {
        Ok(resolved) => resolved.to_string(),
        Err(_) => location.to_string(),
    }
}

pub(super) fn with_digest(location: &str, digest: &Digest) -> String {
    match url::Url::parse(location) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            u.to_string()
        }
        Err(_) => {
            let sep = if location.contains('?') { '&' } else { '?' };
            format!("{location}{sep}digest={digest}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let digest = Digest::of(b"");
        for (loc, want) in cases {
            let want = want.replace("sha256%3Aab", &format!("sha256%3A{}", digest.hex()));
            assert_eq!(with_digest(loc, &digest), want);
        }
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let cases = [
            (
                "https://h:5000/v2/r/blobs/uploads/",
                "/v2/r/blobs/uploads/u1?_state=x",
                "https://h:5000/v2/r/blobs/uploads/u1?_state=x",
            ),
            (
                "https://h:5000/v2/r/blobs/uploads/",
                "https://other:9000/up/u1",
                "https://other:9000/up/u1",
            ),
        ];
        for (request, location, want) in cases {
            assert_eq!(resolve_location(request, location), want);
        }
    }

    #[test]
    fn ranges() {
        let cases = [
            ("0-0", Some(0)),
            ("0-1048575", Some(1 << 20)),
            ("bytes=0-99", Some(100)),
            (" 0-9 ", Some(10)),
            ("5-9", None),
            ("junk", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(range_end(header), want, "{header:?}");
        }
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            error_code(r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"x"}]}"#).as_deref(),
            Some("BLOB_UPLOAD_INVALID")
        );
        assert_eq!(error_code("<html>"), None);
    }
}
