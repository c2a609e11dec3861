//! Harbor and ChartMuseum chart repositories over HTTP: their `index.yaml`, and uploads through
//! their multipart APIs, credentials sent only to the repository's own host.

use super::PackagedChart;
use crate::chart_index::IndexFile;
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::location::authority;
use crate::net::{TlsError, same_origin};

/// Attaches the repository's credentials when `request_url` is on the repository's own host.
fn with_credentials(
    rb: reqwest::RequestBuilder,
    repo_url: &str,
    request_url: &str,
    credentials: Option<&Credentials>,
) -> reqwest::RequestBuilder {
    let own = match (url::Url::parse(repo_url), url::Url::parse(request_url)) {
        (Ok(repo), Ok(request)) => same_origin(&repo, &request),
        _ => false,
    };
    match credentials {
        Some(c) if own => rb.header(reqwest::header::AUTHORIZATION, c.basic_header()),
        _ => rb,
    }
}

/// A request error: the TLS error naming the host when that is what it was.
fn request_error(method: &str, url: &str, source: reqwest::Error) -> RegistryError {
    let host = url::Url::parse(url)
        .map(|u| authority(&u))
        .unwrap_or_default();
    match TlsError::from_request(&host, &source) {
        Some(tls) => tls.into(),
        None => RegistryError::Transport {
            method: method.into(),
            url: url.to_string(),
            source,
        },
    }
}

/// `https://harbor/chartrepo/<project>` -> `https://harbor/api/chartrepo/<project>/charts`.
pub(super) fn harbor_api_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| RegistryError::Invalid(format!("harbor url {url:?}: {e}")))?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let project = match segments.as_slice() {
        ["chartrepo", project] => *project,
        [project] => *project,
        _ => {
            return Err(RegistryError::Invalid(format!(
                "harbor url {url:?} must end in /chartrepo/<project>"
            )));
        }
    };
    let origin = parsed.origin().ascii_serialization();
    Ok(format!("{origin}/api/chartrepo/{project}/charts"))
}

pub(super) async fn post_multipart(
    http: &reqwest::Client,
    repo_url: &str,
    api: &str,
    credentials: Option<&Credentials>,
    chart: &PackagedChart,
    force: bool,
) -> Result<()> {
    let part = reqwest::multipart::Part::bytes(chart.tgz.to_vec())
        .file_name(chart.file_name())
        .mime_str("application/gzip")
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let form = reqwest::multipart::Form::new().part("chart", part);
    let url = if force {
        format!("{api}?force=true")
    } else {
        api.to_string()
    };
    let rb = with_credentials(http.post(&url).multipart(form), repo_url, &url, credentials);
    let r = rb
        .send()
        .await
        .map_err(|source| request_error("POST", &url, source))?;
    if !r.status().is_success() {
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        return Err(RegistryError::Status {
            method: "POST".into(),
            url,
            status,
            body,
        });
    }
    Ok(())
}

/// The `index.yaml` of a Harbor or ChartMuseum repository at `url`; `None` when it has none
/// yet (404).
pub(super) async fn fetch_index(
    http: &reqwest::Client,
    url: &str,
    credentials: Option<&Credentials>,
) -> Result<Option<IndexFile>> {
    let index_url = format!("{url}/index.yaml");
    let rb = with_credentials(http.get(&index_url), url, &index_url, credentials);
    let r = rb
        .send()
        .await
        .map_err(|source| request_error("GET", &index_url, source))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !r.status().is_success() {
        return Err(RegistryError::Status {
            method: "GET".into(),
            url: index_url,
            status: r.status().as_u16(),
            body: String::new(),
        });
    }
    let text = r
        .text()
        .await
        .map_err(|source| request_error("GET", &index_url, source))?;
    IndexFile::from_yaml_named(&text, &index_url)
        .map(Some)
        .map_err(|e| RegistryError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_urls() {
        let cases = [
            (
                "https://h.example/chartrepo/lib",
                Some("https://h.example/api/chartrepo/lib/charts"),
            ),
            (
                "http://127.0.0.1:8080/chartrepo/p/",
                Some("http://127.0.0.1:8080/api/chartrepo/p/charts"),
            ),
            ("https://h.example/a/b/c", None),
        ];
        for (url, want) in cases {
            assert_eq!(harbor_api_url(url).ok().as_deref(), want, "{url}");
        }
    }
}
