//! Blobs: existence checks, downloads, and uploads (HEAD first, cross-repository mount,
//! monolithic PUT or PATCH chunks streamed from a reader, with a restarted session on failure).

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::transport::{header_str, retry_after, status_error};
use super::{BlobOutcome, RegistryClient, repo_scope, sha256_digest};
use crate::error::{RegistryError, Result};

impl RegistryClient {
    /// Whether `repo` has blob `digest`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
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
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        r.bytes()
            .await
            .map_err(|source| self.request_error(&Method::GET, &url, source))
    }

    /// Fetches blob `digest` into memory, reading at most `limit + 1` bytes: a registry that
    /// sends more than the manifest said cannot make kantup hold more than that. The caller
    /// compares the size and digest of what came back.
    pub async fn get_blob_limited(&self, repo: &str, digest: &str, limit: u64) -> Result<Bytes> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
        let scope = repo_scope(repo, false);
        let mut r = self
            .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        let mut body = Vec::new();
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|source| self.request_error(&Method::GET, &url, source))?
        {
            let room = (limit + 1).saturating_sub(body.len() as u64) as usize;
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() as u64 > limit {
                break;
            }
        }
        Ok(Bytes::from(body))
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
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
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
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|source| self.request_error(&Method::GET, &url, source))?
        {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(file_error)?;
        }
        out.sync_all().await.map_err(file_error)?;
        Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
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
        let url = self.url(&path).await?;
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
                Ok(Some(resolve_location(&url, &location)))
            }
            _ => Err(status_error(&Method::POST, &url, r).await),
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
                location = resolve_location(&url, &next);
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

/// An upload `Location` (absolute, or relative to the request that returned it).
fn resolve_location(request_url: &str, location: &str) -> String {
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
}
