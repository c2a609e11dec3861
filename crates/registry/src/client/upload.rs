//! Blob uploads that survive interruptions.
//!
//! A blob up to `chunk_size` goes up in one `PUT`; a larger one in `PATCH` chunks of
//! `chunk_size` (`Content-Range`, `Content-Length`), the last chunk riding on the closing
//! `PUT ...?digest=`. Bodies are streamed from the [`BlobSource`](crate::BlobSource) on a
//! blocking thread in pieces of [`PIECE`] bytes, hashed on the way: memory per transfer stays
//! a few MiB whatever the chunk size, and the last piece is only released once the whole blob
//! hashed to its digest, so a registry is never asked to commit bytes that do not match.
//!
//! After every chunk the registry accepts, the session (its URL and offset) is written to the
//! [`UploadSessions`](crate::UploadSessions) directory, when one is configured. A failed attempt
//! (dropped connection, 5xx, 429, an expired token) and the next run of kantup both continue
//! the session where the registry says it stands: `GET` on the session URL, whose `Range: 0-N`
//! answer is the offset. The source is read again up to that offset (hashed, not sent). A
//! session the registry no longer knows starts over.
//!
//! docker-registry (and registries built on it, such as Harbor) sign the offset into the
//! session URL (`_state`): a chunk that reached it only in part (a connection cut mid-body)
//! leaves a session whose size no longer matches any URL kantup holds, and the registry refuses
//! it (`BLOB_UPLOAD_INVALID`); that blob then starts over. Chunks it received whole, or not at
//! all, are never sent again.
//!
//! A registry that refuses `PATCH` (405, 501, `UNSUPPORTED`) gets every blob in one `PUT`
//! from then on.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use super::transport::{header_str, retry_after, status_error};
use super::{BlobOutcome, RegistryClient, repo_scope};
use crate::error::{RegistryError, Result};
use crate::net::redact_url;
use crate::upload_sessions::SavedSession;

/// Bytes read from the source and handed to the HTTP stack at a time.
pub const PIECE: usize = 1 << 20;

/// Pieces queued between the reading thread and the connection, per transfer.
const PIECES_IN_FLIGHT: usize = 4;

/// Opens a blob's bytes from their start.
pub type OpenBlob<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync);

/// An upload session: its URL and the bytes the registry holds.
#[derive(Clone)]
struct Session {
    location: String,
    offset: u64,
}

/// What the registry says about a session.
enum SessionStatus {
    At(Session),
    /// Unknown, expired or refused: start over.
    Gone(String),
}

/// Why an attempt failed and how to go on.
struct Failure {
    error: RegistryError,
    retry_after: Option<Duration>,
    /// The session may still be good: ask the registry where it stands before going on.
    keep_session: bool,
    /// The attempt did not fail as such (chunked uploads refused, a token to refresh): go on
    /// at once, without counting it.
    free: bool,
}

impl Failure {
    fn fatal(error: RegistryError) -> Self {
        Self {
            error,
            retry_after: None,
            keep_session: false,
            free: false,
        }
    }

    fn retry(error: RegistryError, keep_session: bool) -> Self {
        Self {
            error,
            retry_after: None,
            keep_session,
            free: false,
        }
    }
}

/// The bytes of a blob being read in order, hashed as they go.
struct SourceCursor {
    reader: Box<dyn Read + Send>,
    hasher: Sha256,
    position: u64,
}

/// The blob and where its bytes come from.
struct Blob<'a> {
    repo: &'a str,
    digest: &'a str,
    size: u64,
    open: OpenBlob<'a>,
    on_bytes: &'a (dyn Fn(u64) + Sync),
}

impl Blob<'_> {
    fn source_error(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Source {
            digest: self.digest.to_string(),
            source,
        }
    }
}

impl RegistryClient {
    /// Makes sure `repo` holds blob `digest` of `size` bytes: HEAD, else mount from
    /// `mount_from` when given, else upload from `open()` (see the [module docs](self)),
    /// continuing a session an earlier run left when one is saved.
    ///
    /// `on_bytes` is called with the byte count of each chunk the registry accepted (and, when
    /// a session is continued, with the bytes it already held).
    pub async fn ensure_blob(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        mount_from: Option<&str>,
        open: OpenBlob<'_>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<BlobOutcome> {
        if self.blob_exists_sized(repo, digest, size).await? {
            self.forget_session(repo, digest);
            return Ok(BlobOutcome::Existed);
        }
        let blob = Blob {
            repo,
            digest,
            size,
            open,
            on_bytes,
        };
        let mut session = self.saved_session(repo, digest, size);
        let mut from_earlier_run = session.is_some();
        let mut failures = 0;
        // The furthest the registry has confirmed; a failure after progress is not counted.
        let mut best = 0;
        loop {
            let result = self
                .upload_attempt(&blob, mount_from, session.take(), from_earlier_run)
                .await;
            from_earlier_run = false;
            let failure = match result {
                Ok(outcome) => {
                    self.forget_session(repo, digest);
                    return Ok(outcome);
                }
                Err((failure, last)) => {
                    if failure.keep_session {
                        session = last;
                    }
                    if let Some(s) = &session
                        && s.offset > best
                    {
                        best = s.offset;
                        failures = 0;
                    }
                    failure
                }
            };
            let retryable = failure.free || failure.error.is_retryable();
            if !retryable {
                return Err(failure.error);
            }
            if !failure.free {
                failures += 1;
                if failures >= self.retry.max_attempts {
                    return Err(RegistryError::RetriesExhausted {
                        attempts: failures,
                        last: Box::new(failure.error),
                    });
                }
                let delay = self.retry.delay(failures, failure.retry_after);
                tracing::debug!(
                    "upload of {digest} to {repo}: retrying in {delay:?}: {}",
                    failure.error
                );
                tokio::time::sleep(delay).await;
            }
            // A previous attempt may have completed server-side before its answer was lost.
            if self.blob_exists_sized(repo, digest, size).await? {
                self.forget_session(repo, digest);
                return Ok(BlobOutcome::Uploaded(size));
            }
        }
    }

    fn saved_session(&self, repo: &str, digest: &str, size: u64) -> Option<Session> {
        let saved = self
            .upload_sessions
            .as_ref()?
            .load(&self.host, repo, digest, size)?;
        Some(Session {
            location: saved.location,
            offset: saved.offset,
        })
    }

    fn save_session(&self, blob: &Blob<'_>, session: &Session) {
        let Some(store) = &self.upload_sessions else {
            return;
        };
        let saved = SavedSession {
            registry: self.host.clone(),
            repository: blob.repo.to_string(),
            digest: blob.digest.to_string(),
            size: blob.size,
            location: session.location.clone(),
            offset: session.offset,
        };
        if let Err(e) = store.save(&saved)
            && !self.session_save_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "cannot save upload sessions in {} ({e}); an interrupted push will send its blobs again",
                store.dir().display()
            );
        }
    }

    fn forget_session(&self, repo: &str, digest: &str) {
        if let Some(store) = &self.upload_sessions {
            store.remove(&self.host, repo, digest);
        }
    }

    /// One try: find or open a session, send what the registry lacks, close it.
    async fn upload_attempt(
        &self,
        blob: &Blob<'_>,
        mount_from: Option<&str>,
        resume: Option<Session>,
        from_earlier_run: bool,
    ) -> std::result::Result<BlobOutcome, (Failure, Option<Session>)> {
        let scope = repo_scope(blob.repo, true);
        let mut session = match resume {
            Some(s) => match self.session_status(&s.location, &scope).await {
                Ok(SessionStatus::At(now)) if now.offset <= blob.size => {
                    if now.offset > 0 {
                        tracing::info!(
                            "{}: continuing the upload of {} at {} of {} bytes{}",
                            blob.repo,
                            blob.digest,
                            now.offset,
                            blob.size,
                            if from_earlier_run {
                                " (left by an earlier run)"
                            } else {
                                ""
                            }
                        );
                    }
                    Some(now)
                }
                Ok(SessionStatus::At(now)) => {
                    tracing::debug!(
                        "{}: the registry holds {} bytes of the {}-byte {}; starting over",
                        blob.repo,
                        now.offset,
                        blob.size,
                        blob.digest
                    );
                    None
                }
                Ok(SessionStatus::Gone(why)) => {
                    tracing::debug!(
                        "{}: upload session of {} is gone ({why}); starting over",
                        blob.repo,
                        blob.digest
                    );
                    self.forget_session(blob.repo, blob.digest);
                    None
                }
                Err(error) => return Err((Failure::retry(error, true), Some(s))),
            },
            None => None,
        };
        let resumed_from = session.as_ref().map_or(0, |s| s.offset);
        if session.is_none() {
            match self.start_upload(blob.repo, blob.digest, mount_from).await {
                Ok(None) => return Ok(BlobOutcome::Mounted),
                Ok(Some(location)) => {
                    session = Some(Session {
                        location,
                        offset: 0,
                    })
                }
                Err(error) => {
                    let failure = Failure {
                        retry_after: None,
                        keep_session: false,
                        free: false,
                        error,
                    };
                    return Err((failure, None));
                }
            }
        }
        let mut session = session.expect("session opened");
        if from_earlier_run && session.offset > 0 {
            // Progress counts what an earlier run left, once.
            (blob.on_bytes)(session.offset);
        }
        let mut cursor = match self.source_at(blob, session.offset).await {
            Ok(c) => c,
            Err(error) => return Err((Failure::fatal(error), None)),
        };
        loop {
            let chunked =
                blob.size > self.chunk_size as u64 && !self.chunked_refused.load(Ordering::Relaxed);
            let remaining = blob.size - session.offset;
            let last = !chunked || remaining <= self.chunk_size as u64;
            let len = if last {
                remaining
            } else {
                self.chunk_size as u64
            };
            let sent = self
                .send_chunk(blob, &scope, &session, cursor, len, last)
                .await;
            match sent {
                Ok((next, location)) => {
                    session.offset += len;
                    (blob.on_bytes)(len);
                    if last {
                        let sent = blob.size - resumed_from;
                        return Ok(if resumed_from > 0 {
                            BlobOutcome::Resumed {
                                sent,
                                from: resumed_from,
                            }
                        } else {
                            BlobOutcome::Uploaded(sent)
                        });
                    }
                    if let Some(location) = location {
                        session.location = location;
                    }
                    self.save_session(blob, &session);
                    cursor = next.expect("cursor returned after a chunk");
                }
                Err(failure) => {
                    let keep = failure.keep_session.then_some(session);
                    return Err((failure, keep));
                }
            }
        }
    }

    /// `GET` on a session URL: where the registry stands.
    async fn session_status(&self, location: &str, scope: &str) -> Result<SessionStatus> {
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

    /// Opens the source and reads (hashing, not sending) its first `offset` bytes.
    async fn source_at(
        &self,
        blob: &Blob<'_>,
        offset: u64,
    ) -> std::result::Result<SourceCursor, RegistryError> {
        let reader = (blob.open)().map_err(|e| blob.source_error(e))?;
        let mut cursor = SourceCursor {
            reader,
            hasher: Sha256::new(),
            position: 0,
        };
        if offset == 0 {
            return Ok(cursor);
        }
        let skipped = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; PIECE];
            while cursor.position < offset {
                let n = (offset - cursor.position).min(PIECE as u64) as usize;
                cursor.reader.read_exact(&mut buf[..n])?;
                cursor.hasher.update(&buf[..n]);
                cursor.position += n as u64;
            }
            Ok::<_, std::io::Error>(cursor)
        })
        .await
        .map_err(|e| blob.source_error(std::io::Error::other(e)))?;
        skipped.map_err(|e| blob.source_error(e))
    }

    /// Sends `len` bytes from `cursor` as a `PATCH` (or, when `last`, with the closing `PUT`).
    /// Returns the cursor for the next chunk and the session URL the registry gave.
    async fn send_chunk(
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
        let expected = last.then(|| (blob.digest.to_string(), blob.size));
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

impl Failure {
    /// Marks a failure that is not retryable by its status (404, 416) as one to try again.
    fn retryable(self) -> Self {
        Self {
            error: RegistryError::UploadSessionLost(Box::new(self.error)),
            ..self
        }
    }
}

/// A request body streaming `len` bytes of `cursor`, read on a blocking thread. When
/// `expected` (digest, size) is given, the last piece is held back unless the whole blob
/// hashed to that digest, which fails the request instead.
fn stream_body(
    mut cursor: SourceCursor,
    len: u64,
    expected: Option<(String, u64)>,
) -> (
    reqwest::Body,
    tokio::task::JoinHandle<std::io::Result<SourceCursor>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(PIECES_IN_FLIGHT);
    let reading = tokio::task::spawn_blocking(move || {
        let mut left = len;
        loop {
            let n = left.min(PIECE as u64) as usize;
            let mut piece = BytesMut::zeroed(n);
            if let Err(e) = cursor.reader.read_exact(&mut piece) {
                let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: it ends before byte {}",
                            cursor.position + n as u64
                        ),
                    )
                } else {
                    e
                };
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
            cursor.hasher.update(&piece);
            cursor.position += n as u64;
            left -= n as u64;
            if left == 0
                && let Some((digest, size)) = &expected
            {
                let computed = format!("sha256:{}", hex::encode(cursor.hasher.clone().finalize()));
                let mut extra = [0u8; 1];
                let longer = matches!(cursor.reader.read(&mut extra), Ok(1));
                if &computed != digest || cursor.position != *size || longer {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: {} bytes with digest {computed}, expected {size} bytes with {digest}",
                            if longer {
                                format!("more than {}", cursor.position)
                            } else {
                                cursor.position.to_string()
                            }
                        ),
                    );
                    let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
            if n > 0 && tx.blocking_send(Ok(piece.freeze())).is_err() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the request ended before its body was sent",
                ));
            }
            if left == 0 {
                return Ok(cursor);
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (reqwest::Body::wrap_stream(stream), reading)
}

/// The offset a `Range: 0-N` (or `bytes=0-N`) header means: `N + 1`, and `0-0` as nothing
/// (docker-registry answers `0-0` for an empty session).
fn range_end(range: &str) -> Option<u64> {
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
fn error_code(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["errors"][0]["code"].as_str().map(str::to_owned)
}

/// An upload `Location` (absolute, or relative to the request that returned it).
pub(super) fn resolve_location(request_url: &str, location: &str) -> String {
    match url::Url::parse(request_url).and_then(|base| base.join(location)) {
        Ok(resolved) => resolved.to_string(),
        Err(_) => location.to_string(),
    }
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
        for (loc, want) in cases {
            assert_eq!(with_digest(loc, "sha256:ab"), want);
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
