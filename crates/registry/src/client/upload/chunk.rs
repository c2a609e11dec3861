//! Sending one chunk of a blob (a `PATCH`, or the closing `PUT ...?digest=`) and what a
//! refused chunk means for the upload: retry, ask where the session stands, start over, or
//! send every blob in one `PUT` from then on.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use super::Blob;
use super::body::{SourceCursor, stream_body};
use super::session::{Session, error_code, resolve_location, with_digest};
use crate::client::RegistryClient;
use crate::client::transport::{header_str, retry_after, status_error};
use crate::error::RegistryError;
use crate::net::redact_url;

/// Why an attempt failed and how to go on.
pub(super) struct Failure {
    pub(super) error: RegistryError,
    pub(super) retry_after: Option<Duration>,
    /// The session may still be good: ask the registry where it stands before going on.
    pub(super) keep_session: bool,
    /// The attempt did not fail as such (chunked uploads refused, a token to refresh): go on
    /// at once, without counting it.
    pub(super) free: bool,
}

impl Failure {
    pub(super) fn fatal(error: RegistryError) -> Self {
        Self {
            error,
            retry_after: None,
            keep_session: false,
            free: false,
        }
    }

    pub(super) fn retry(error: RegistryError, keep_session: bool) -> Self {
        Self {
            error,
            retry_after: None,
            keep_session,
            free: false,
        }
    }
}

impl Failure {
    /// Marks a failure that is not retryable by its status (404, 416) as one to try again.
    fn retryable(self) -> Self {
        Self {
            error: RegistryError::UploadSessionLost(Box::new(self.error)),
            ..self
        }
    }
}

impl RegistryClient {
    /// Sends `len` bytes from `cursor` as a `PATCH` (or, when `last`, with the closing `PUT`).
    /// Returns the cursor for the next chunk and the session URL the registry gave.
    pub(super) async fn send_chunk(
        &self,
        blob: &Blob<'_>,
        scope: &str,
        session: &Session,
        cursor: SourceCursor,
        len: u64,
        last: bool,
    ) -> std::result::Result<(Option<SourceCursor>, Option<String>), Failure> {
        let (method, url) = if last {
            (Method::PUT, with_digest(&session.location, blob.digest))
        } else {
            (Method::PATCH, session.location.clone())
        };
        let expected = last.then_some((*blob.digest, blob.size));
        let (body, reading) = stream_body(cursor, len, expected);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body);
        if method == Method::PATCH && len > 0 {
            request = request.header(
                "Content-Range",
                format!("{}-{}", session.offset, session.offset + len - 1),
            );
        }
        let sent = self.authorize(request, &url, scope).send().await;
        // The reader's own failure (a short or changed source) says more than the aborted
        // request it caused.
        let read = reading
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        let response = match sent {
            Ok(r) => r,
            Err(source) => {
                return Err(match read {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        Failure::fatal(blob.source_error(e))
                    }
                    _ => Failure::retry(self.request_error(&method, &url, source), true),
                });
            }
        };
        let cursor = match read {
            Ok(c) => c,
            Err(e) => return Err(Failure::fatal(blob.source_error(e))),
        };
        let status = response.status();
        let accepted = if last {
            status.is_success()
        } else {
            status == StatusCode::ACCEPTED
        };
        if accepted {
            let location = header_str(response.headers(), LOCATION.as_str())
                .map(|l| resolve_location(&url, &l));
            return Ok((Some(cursor), location));
        }
        Err(self.chunk_failure(&method, &url, scope, response).await)
    }

    /// What a refused chunk means for the upload.
    async fn chunk_failure(
        &self,
        method: &Method,
        url: &str,
        scope: &str,
        response: Response,
    ) -> Failure {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        if status == StatusCode::UNAUTHORIZED {
            // A token that expired during a long upload: fetch a new one and go on where
            // the registry stands (the body cannot be sent twice).
            return match self.handle_challenge(&response, scope).await {
                Ok(()) => Failure {
                    error: RegistryError::Unauthorized {
                        registry: self.host.clone(),
                        reason: format!("{method} {} answered 401", redact_url(url)),
                    },
                    retry_after: None,
                    keep_session: true,
                    free: false,
                },
                Err(error) => Failure::fatal(error),
            };
        }
        let error = status_error(method, url, response).await;
        let body = match &error {
            RegistryError::Status { body, .. } => body.as_str(),
            _ => "",
        };
        let refuses_chunks = *method == Method::PATCH
            && (matches!(status.as_u16(), 405 | 415 | 501)
                || error_code(body).as_deref() == Some("UNSUPPORTED"));
        if refuses_chunks {
            if !self.chunked_refused.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} refuses chunked uploads (PATCH answered {status}); sending every blob in one PUT (an interrupted blob starts over)",
                    self.host
                );
            }
            return Failure {
                error,
                retry_after: None,
                keep_session: false,
                free: true,
            };
        }
        if matches!(status.as_u16(), 404 | 416) {
            // The session is unknown or at another offset: ask, or start over.
            return Failure {
                error,
                retry_after: None,
                keep_session: status.as_u16() == 416,
                free: false,
            }
            .retryable();
        }
        Failure {
            keep_session: error.is_retryable(),
            error,
            retry_after,
            free: false,
        }
    }
}
