//! Harbor and ChartMuseum chart repositories over HTTP: their `index.yaml`, and uploads through
//! their multipart APIs, credentials sent only to the repository's own host.

use super::PackagedChart;
use crate::chart_http::{ChartHttpError, ChartRepoClient};
use crate::chart_index::IndexFile;
use crate::error::{RegistryError, Result};

/// A failed request as a writer says it.
fn registry_error(error: ChartHttpError) -> RegistryError {
    match error {
        ChartHttpError::Tls(tls) => tls.into(),
        ChartHttpError::Send {
            method,
            url,
            source,
        } => RegistryError::Transport {
            method: method.into(),
            url,
            source,
        },
        ChartHttpError::Status {
            method,
            url,
            status,
            body,
        } => RegistryError::Status {
            method: method.into(),
            url,
            status,
            body,
        },
        other => RegistryError::Invalid(other.to_string()),
    }
}

fn parse_url(url: &str) -> Result<url::Url> {
    url::Url::parse(url)
        .map_err(|e| RegistryError::Invalid(format!("chart repository url {url:?}: {e}")))
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

/// Uploads `chart` to the repository's multipart API at `api`.
pub(super) async fn post_multipart(
    client: &ChartRepoClient,
    api: &str,
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
    client
        .post_multipart(&parse_url(&url)?, form)
        .await
        .map_err(registry_error)
}

/// The `index.yaml` of a Harbor or ChartMuseum repository at `url`; `None` when it has none
/// yet (404).
pub(super) async fn fetch_index(client: &ChartRepoClient, url: &str) -> Result<Option<IndexFile>> {
    match client
        .index(&parse_url(&format!("{url}/index.yaml"))?)
        .await
    {
        Ok(index) => Ok(Some(index)),
        Err(ChartHttpError::Status { status: 404, .. }) => Ok(None),
        Err(error) => Err(registry_error(error)),
    }
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
