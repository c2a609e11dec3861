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

mod body;
mod chunk;
mod session;

use std::io::Read;
use std::sync::atomic::Ordering;

use kantup_bundle::Digest;

use super::{BlobOutcome, RegistryClient, repo_scope};
use crate::error::{RegistryError, Result};
use crate::upload_sessions::SavedSession;
use chunk::Failure;
use session::{Session, SessionStatus};

pub(super) use session::resolve_location;

/// Bytes read from the source and handed to the HTTP stack at a time.
pub const PIECE: usize = 1 << 20;

/// Opens a blob's bytes from their start.
pub type OpenBlob<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync);

/// The blob and where its bytes come from.
struct Blob<'a> {
    repo: &'a str,
    digest: &'a Digest,
    size: u64,
    open: OpenBlob<'a>,
    on_bytes: &'a (dyn Fn(u64) + Sync),
}

impl Blob<'_> {
    fn source_error(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Source {
            digest: *self.digest,
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
        digest: &Digest,
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

    fn saved_session(&self, repo: &str, digest: &Digest, size: u64) -> Option<Session> {
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
            digest: *blob.digest,
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

    fn forget_session(&self, repo: &str, digest: &Digest) {
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
}
