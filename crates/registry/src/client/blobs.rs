//! Blobs: existence checks, downloads, opening upload sessions (or cross-repository mounts);
//! the uploads themselves are in [`super::upload`].

use std::io::Read;

use bytes::Bytes;
use kantup_bundle::Digest;
use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::{Method, Response, StatusCode};

use super::transport::{header_str, status_error};
use super::{BlobOutcome, RegistryClient, repo_scope};
use crate::error::{RegistryError, Result};

impl RegistryClient {
    /// Whether `repo` has blob `digest`.
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Ok(self.head_blob(repo, digest).await?.is_some())
    }

    /// Whether `repo` has blob `digest` of `size` bytes. A registry that says it holds the
    /// digest with another size ([`RegistryError::BadAnswer`]) is not believed: a blob push
    /// would skip a blob that is not there.
    pub async fn blob_exists_sized(&self, repo: &str, digest: &Digest, size: u64) -> Result<bool> {
        let Some(r) = self.head_blob(repo, digest).await? else {
            return Ok(false);
        };
        // The header itself: a HEAD answer has no body whose length could be asked.
        match header_str(r.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(claimed) if claimed != size => Err(RegistryError::BadAnswer {
                what: format!("blob {}/{repo}@{digest}", self.host),
                reason: format!(
                    "the registry says it holds {claimed} bytes, the image says {size}"
                ),
            }),
            _ => Ok(true),
        }
    }

    /// HEAD on blob `digest` of `repo`: the answer when the registry has it, `None` on 404.
    async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<Response>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::HEAD, &url, &scope, &|| self.http.head(&url))
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(r)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::HEAD, &url, r).await),
        }
    }

    /// GET on blob `digest` of `repo`, answered with success: the URL (for errors) and the
    /// answer, whose body is still to be read.
    async fn get_blob_response(&self, repo: &str, digest: &Digest) -> Result<(String, Response)> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}")).await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        Ok((url, r))
    }

    /// Fetches a (small) blob into memory, e.g. a config or a chart layer.
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Result<Bytes> {
        let (url, r) = self.get_blob_response(repo, digest).await?;
        r.bytes()
            .await
            .map_err(|source| self.request_error(&Method::GET, &url, source))
    }

    /// Fetches blob `digest` into memory, reading at most `limit + 1` bytes: a registry that
    /// sends more than the manifest said cannot make kantup hold more than that. The caller
    /// compares the size and digest of what came back.
    pub async fn get_blob_limited(&self, repo: &str, digest: &Digest, limit: u64) -> Result<Bytes> {
        let (url, mut r) = self.get_blob_response(repo, digest).await?;
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

    /// Starts an upload session, or mounts `digest` from `mount_from` when given. Returns
    /// `None` when the mount succeeded, else the session URL.
    pub(super) async fn start_upload(
        &self,
        repo: &str,
        digest: &Digest,
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
    ) -> Result<(Digest, BlobOutcome)> {
        let digest = Digest::of(&data);
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
