//! Manifests: HEAD, GET (bytes exactly as stored) and PUT by tag or digest, and tag listing.

use std::sync::LazyLock;

use bytes::Bytes;
use kantup_bundle::archive::MAX_MANIFEST;
use kantup_bundle::media_types;
use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, IF_MATCH, IF_NONE_MATCH,
};
use reqwest::{Method, StatusCode};

use kantup_bundle::Digest;

use super::transport::{header_digest, header_str, status_error};
use super::{ManifestInfo, ManifestPut, Precondition, RegistryClient, repo_scope};
use crate::error::{RegistryError, Result};

/// The `Accept` header of manifest requests: every manifest media type kantup understands.
pub fn manifest_accept() -> &'static str {
    static ACCEPT_VALUE: LazyLock<String> = LazyLock::new(|| media_types::MANIFESTS.join(", "));
    &ACCEPT_VALUE
}

impl RegistryClient {
    /// HEADs a manifest by tag or digest; `None` when absent.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestInfo>> {
        let (url, r) = self.request_manifest(Method::HEAD, repo, reference).await?;
        match r.status() {
            s if s.is_success() => Ok(Some(manifest_info(r.headers(), &Method::HEAD, &url)?)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::HEAD, &url, r).await),
        }
    }

    /// GETs a manifest: its bytes exactly as stored, and what the headers say. The answer is
    /// refused ([`RegistryError::BadAnswer`]) when it is larger than
    /// [`MAX_MANIFEST`] (nothing past the limit is read),
    /// when its media type is not one of the manifest types asked for or disagrees with the
    /// manifest's own `mediaType`, or when the digest the registry names is not the bytes'.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Bytes, ManifestInfo)> {
        let (url, r) = self.request_manifest(Method::GET, repo, reference).await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::GET, &url, r).await);
        }
        let headers = r.headers().clone();
        let what = format!("manifest {}/{repo}:{reference}", self.host);
        let bad = |reason: String| RegistryError::BadAnswer {
            what: what.clone(),
            reason,
        };
        let limit = MAX_MANIFEST;
        if let Some(claimed) = r.content_length()
            && claimed > limit
        {
            return Err(bad(format!(
                "the registry sends {claimed} bytes, more than the {limit}-byte limit of a manifest"
            )));
        }
        let mut r = r;
        let mut body = Vec::new();
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|source| self.request_error(&Method::GET, &url, source))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(bad(format!(
                    "more than the {limit}-byte limit of a manifest"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let body = Bytes::from(body);
        let computed = Digest::of(&body);
        let mut info = manifest_info(&headers, &Method::GET, &url)?;
        info.size = body.len() as u64;
        match info.digest {
            Some(named) if named != computed => {
                return Err(bad(format!(
                    "the registry names digest {named}, the {} bytes it sent hash to {computed}",
                    info.size
                )));
            }
            _ => info.digest = Some(computed),
        }
        let media_type = info.media_type.split(';').next().unwrap_or_default().trim();
        if !media_types::MANIFESTS.contains(&media_type) {
            return Err(bad(format!(
                "media type {:?}, not one of the manifest types asked for ({})",
                info.media_type,
                manifest_accept()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Declared {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
        }
        if let Ok(Declared {
            media_type: Some(declared),
        }) = serde_json::from_slice::<Declared>(&body)
            && declared != media_type
        {
            return Err(bad(format!(
                "served as {media_type:?} but the manifest says mediaType {declared:?}"
            )));
        }
        info.media_type = media_type.to_string();
        Ok((body, info))
    }

    /// [`get_manifest`](Self::get_manifest), with `None` when the registry has no such
    /// manifest (404).
    pub async fn get_manifest_if_present(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Bytes, ManifestInfo)>> {
        match self.get_manifest(repo, reference).await {
            Ok(found) => Ok(Some(found)),
            Err(RegistryError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A HEAD or GET of a manifest, asking for every manifest type kantup understands: the
    /// URL (for errors) and the answer, whatever its status.
    async fn request_manifest(
        &self,
        method: Method,
        repo: &str,
        reference: &str,
    ) -> Result<(String, reqwest::Response)> {
        let url = self
            .url(&format!("/v2/{repo}/manifests/{reference}"))
            .await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(method.clone(), &url, &scope, &|| {
                self.http
                    .request(method.clone(), &url)
                    .header(ACCEPT, manifest_accept())
            })
            .await?;
        Ok((url, r))
    }

    /// PUTs manifest bytes unchanged under `reference` (a tag or its digest); returns the
    /// digest the registry reports (`Docker-Content-Digest`), else the digest of the bytes.
    /// A header that is no digest is [`RegistryError::BadDigest`].
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: Bytes,
    ) -> Result<Digest> {
        Ok(self
            .put_manifest_if(repo, reference, media_type, manifest, &Precondition::None)
            .await?
            .digest)
    }

    /// PUTs manifest bytes unchanged under `reference`, under a [`Precondition`]; a registry
    /// that refuses the condition answers 412 ([`RegistryError::Status`]). Returns the digest
    /// and the `OCI-Subject` header.
    pub async fn put_manifest_if(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: Bytes,
        precondition: &Precondition,
    ) -> Result<ManifestPut> {
        let url = self
            .url(&format!("/v2/{repo}/manifests/{reference}"))
            .await?;
        let scope = repo_scope(repo, true);
        let r = self
            .send_retrying(Method::PUT, &url, &scope, &|| {
                let request = self
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(manifest.clone());
                match precondition {
                    Precondition::None => request,
                    Precondition::IfMatch(etag) => request.header(IF_MATCH, etag.as_str()),
                    Precondition::IfAbsent => request.header(IF_NONE_MATCH, "*"),
                }
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error(&Method::PUT, &url, r).await);
        }
        Ok(ManifestPut {
            digest: header_digest(r.headers(), "docker-content-digest", &Method::PUT, &url)?
                .unwrap_or_else(|| Digest::of(&manifest)),
            subject: header_str(r.headers(), "oci-subject"),
        })
    }

    /// Lists the tags of `repo` (following `Link` pagination, bounded).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let scope = repo_scope(repo, false);
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list?n=1000"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 1000 {
                break;
            }
            let url = self.url(&path).await?;
            let r = self
                .send_retrying(Method::GET, &url, &scope, &|| self.http.get(&url))
                .await?;
            if r.status() == StatusCode::NOT_FOUND {
                return Ok(Vec::new());
            }
            if !r.status().is_success() {
                return Err(status_error(&Method::GET, &url, r).await);
            }
            next = header_str(r.headers(), "link").and_then(|l| {
                let start = l.find('<')? + 1;
                let end = l.find('>')?;
                Some(l[start..end].to_string())
            });
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let list: TagList = r
                .json()
                .await
                .map_err(|source| self.request_error(&Method::GET, &url, source))?;
            tags.extend(list.tags.unwrap_or_default());
        }
        Ok(tags)
    }
}

/// What a manifest answer's headers say; a `Docker-Content-Digest` that is no digest is
/// [`RegistryError::BadDigest`] naming the request.
fn manifest_info(headers: &HeaderMap, method: &Method, url: &str) -> Result<ManifestInfo> {
    Ok(ManifestInfo {
        digest: header_digest(headers, "docker-content-digest", method, url)?,
        media_type: header_str(headers, CONTENT_TYPE.as_str()).unwrap_or_default(),
        size: header_str(headers, CONTENT_LENGTH.as_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        etag: header_str(headers, ETAG.as_str()),
    })
}
