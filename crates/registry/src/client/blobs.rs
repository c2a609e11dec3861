//! Blobs: existence checks, downloads, opening upload sessions (or cross-repository mounts);
//! the uploads themselves are in [`super::upload`].

use std::io::Read;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::transport::{header_str, status_error};
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

    /// Whether `repo` has blob `digest` of `size` bytes. A registry that says it holds the
    /// digest with another size ([`RegistryError::BadAnswer`]) is not believed: a blob push
    /// would skip a blob that is not there.
    pub async fn blob_exists_sized(&self, repo: &str, digest: &str, size: u64) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::HEAD, &url, &scope, &|| self.http.head(&url))
            .await?;
        match r.status() {
            // The header itself: a HEAD answer has no body whose length could be asked.
            s if s.is_success() => match header_str(r.headers(), "content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                Some(claimed) if claimed != size => Err(RegistryError::BadAnswer {
                    what: format!("blob {}/{repo}@{digest}", self.host),
                    reason: format!(
                        "the registry says it holds {claimed} bytes, the image says {size}"
                    ),
                }),
                _ => Ok(true),
            },
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
    pub(super) async fn start_upload(
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
                Ok(Some(super::upload::resolve_location(&url, &location)))
            }
            _ => Err(status_error(&Method::POST, &url, r).await),
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
