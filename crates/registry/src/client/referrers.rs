//! Whether a registry has the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`).
//!
//! The distribution spec gives a client two signs: a registry that processed a pushed
//! manifest's `subject` names it in the `OCI-Subject` header of the `PUT` answer (seen by
//! [`RegistryClient::put_manifest_if`]), and a registry without the API answers the referrers
//! endpoint with 404. Registries that list referrers without sending the header exist (the
//! go-containerregistry registry), so when the header is missing the endpoint is asked, as
//! go-containerregistry and oras ask it: an OCI index answered with 200 means the registry
//! lists referrers itself; 404, 400 or 406 (or a 200 that is no OCI index: a catch-all
//! route) means it does not, and the client keeps the fallback index.

use kantup_bundle::{Digest, media_types};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::transport::{header_str, status_error};
use super::{RegistryClient, repo_scope};
use crate::error::Result;

impl RegistryClient {
    /// Whether the registry lists the referrers of `subject` in `repo` through the referrers
    /// API. Ask after the subject is in `repo`: a registry answers 404 for a repository it
    /// does not know, API or not.
    pub async fn has_referrers_api(&self, repo: &str, subject: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/referrers/{subject}")).await?;
        let scope = repo_scope(repo, false);
        let r = self
            .send_retrying(Method::GET, &url, &scope, &|| {
                self.http.get(&url).header(ACCEPT, media_types::OCI_INDEX)
            })
            .await?;
        match r.status() {
            StatusCode::OK => Ok(
                header_str(r.headers(), CONTENT_TYPE.as_str()).is_some_and(|t| {
                    t.split(';').next().unwrap_or_default().trim() == media_types::OCI_INDEX
                }),
            ),
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::NOT_ACCEPTABLE => {
                Ok(false)
            }
            _ => Err(status_error(&Method::GET, &url, r).await),
        }
    }
}
