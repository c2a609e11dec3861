//! Index-based chart repositories: Harbor `https://host/chartrepo/<project>`, ChartMuseum, any
//! static HTTP(S) server with an `index.yaml`, or a local directory (its `index.yaml`, or an
//! index built from the `*.tgz` in it like `helm repo index`).

use std::path::PathBuf;

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::chart::MAX_CHART_SIZE;
use url::Url;

use super::{ChartVersionInfo, PulledChart, RepoError, is_safe_file_name, newest_first};
use crate::chart_http::{ChartHttpError, ChartRepoClient};
use crate::chart_index::{ChartVersion, IndexFile};
use crate::credentials::{CredentialResolver, Credentials};
use crate::location::{ChartLocation, authority};
use crate::net::{HttpOptions, redact_url};

#[derive(Debug, Clone)]
enum Location {
    /// The index URL, and the client that reads it and the archives it lists.
    Http(Url, Box<ChartRepoClient>),
    Directory(PathBuf),
}

/// A repository read through its `index.yaml`.
#[derive(Debug)]
pub struct IndexRepository {
    location: Location,
    /// The location as given, without credentials.
    display: String,
    index: tokio::sync::OnceCell<IndexFile>,
}

impl IndexRepository {
    /// See [`super::ChartRepository::open`]: an `http(s)://` location or a directory (an
    /// `oci://` one is refused as no directory).
    pub fn open(
        location: ChartLocation<'_>,
        http: &HttpOptions,
        credentials: &CredentialResolver,
    ) -> Result<Self, RepoError> {
        let location = match location {
            ChartLocation::Http(url) => url,
            ChartLocation::Directory(dir) if dir.is_dir() => {
                return Ok(Self {
                    location: Location::Directory(dir.to_owned()),
                    display: dir.display().to_string(),
                    index: tokio::sync::OnceCell::new(),
                });
            }
            ChartLocation::Directory(dir) => {
                return Err(RepoError::BadLocation(dir.display().to_string()));
            }
            ChartLocation::Oci(reference) => {
                return Err(RepoError::BadLocation(format!("oci://{reference}")));
            }
        };
        let mut url =
            Url::parse(location).map_err(|_| RepoError::BadLocation(redact_url(location)))?;
        let mut resolver = credentials.clone().without_docker_config();
        let mut display = location.to_owned();
        if !url.username().is_empty() || url.password().is_some() {
            let from_url = Credentials::new(url.username(), url.password().unwrap_or_default());
            resolver = resolver.given_credentials("the URL's user-info", Some(from_url));
            let _ = url.set_username("");
            let _ = url.set_password(None);
            display = url.to_string();
        }
        if !url.path().ends_with(".yaml") && !url.path().ends_with(".yml") {
            // Make the URL a "directory" so relative chart URLs resolve under it.
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            url = url
                .join("index.yaml")
                .map_err(|_| RepoError::BadLocation(display.clone()))?;
        }
        let credentials = resolver.resolve(&authority(&url))?;
        let client = Box::new(ChartRepoClient::new(url.clone(), http, credentials)?);
        Ok(Self {
            location: Location::Http(url, client),
            display,
            index: tokio::sync::OnceCell::new(),
        })
    }

    /// The location as given, credentials cut out.
    pub fn location(&self) -> &str {
        &self.display
    }

    /// The index, fetched once.
    pub async fn index(&self) -> Result<&IndexFile, RepoError> {
        self.index.get_or_try_init(|| self.fetch_index()).await
    }

    async fn fetch_index(&self) -> Result<IndexFile, RepoError> {
        match &self.location {
            Location::Http(url, client) => Ok(client.index(url).await.map_err(repo_error)?),
            Location::Directory(dir) => {
                let index_path = dir.join("index.yaml");
                if index_path.is_file() {
                    Ok(IndexFile::load(&index_path)?)
                } else {
                    Ok(IndexFile::index_directory(dir, None)?)
                }
            }
        }
    }

    /// Every chart name in the index.
    pub async fn chart_names(&self) -> Result<Vec<String>, RepoError> {
        Ok(self.index().await?.entries.keys().cloned().collect())
    }

    /// See [`super::ChartRepository::versions`].
    pub async fn versions(&self, chart: &str) -> Result<Vec<ChartVersionInfo>, RepoError> {
        let index = self.index().await?;
        Ok(newest_first(
            index.versions(chart).iter().map(version_info).collect(),
        ))
    }

    /// See [`super::ChartRepository::pull`].
    pub async fn pull(&self, chart: &str, version: Option<&str>) -> Result<PulledChart, RepoError> {
        let index = self.index().await?;
        let entry = match version {
            Some(version) => index.get(chart, version),
            None => index.latest(chart, false),
        };
        let Some(entry) = entry else {
            return Err(RepoError::NotFound {
                chart: chart.to_owned(),
                version: version.unwrap_or("(latest stable)").to_owned(),
                repository: self.display.clone(),
                available: index
                    .versions(chart)
                    .iter()
                    .take(10)
                    .map(|v| v.metadata.version.clone())
                    .collect(),
            });
        };
        self.pull_entry(entry).await
    }

    /// Downloads an entry's archive from its first URL (relative URLs resolve against the
    /// index), and checks it against the index's digest.
    async fn pull_entry(&self, entry: &ChartVersion) -> Result<PulledChart, RepoError> {
        let raw_url = entry.urls.first().ok_or_else(|| RepoError::NoUrl {
            chart: entry.metadata.name.clone(),
            version: entry.metadata.version.clone(),
        })?;
        let file_name = raw_url
            .split(['?', '#'])
            .next()
            .and_then(|path| path.rsplit('/').next())
            .filter(|name| is_safe_file_name(name))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{}.tgz", entry.metadata.name, entry.metadata.version));
        let (source, bytes) = match &self.location {
            Location::Http(index_url, client) => {
                let url = index_url
                    .join(raw_url)
                    .map_err(|_| RepoError::BadLocation(redact_url(raw_url)))?;
                let bytes = client.get(&url, MAX_CHART_SIZE).await.map_err(repo_error)?;
                (redact_url(url.as_str()), bytes)
            }
            Location::Directory(dir) => {
                let path = dir.join(raw_url);
                let bytes = std::fs::read(&path).map_err(|source| RepoError::Io {
                    path: path.clone(),
                    source,
                })?;
                (path.display().to_string(), Bytes::from(bytes))
            }
        };
        let actual = Digest::of(&bytes);
        let verified = match entry.digest.as_deref().filter(|d| !d.is_empty()) {
            Some(expected)
                if !expected
                    .trim_start_matches("sha256:")
                    .eq_ignore_ascii_case(&actual.hex()) =>
            {
                return Err(RepoError::DigestMismatch {
                    source_name: source,
                    what: "the index",
                    expected: expected.to_owned(),
                    actual: actual.hex(),
                });
            }
            Some(_) => true,
            None => {
                tracing::warn!(
                    "{source}: the index has no digest for {} {}; not verified",
                    entry.metadata.name,
                    entry.metadata.version
                );
                false
            }
        };
        Ok(PulledChart {
            name: entry.metadata.name.clone(),
            version: entry.metadata.version.clone(),
            digest: actual,
            bytes,
            file_name,
            source,
            verified,
        })
    }
}

/// A failed request as a reader says it: what to check for the statuses with an obvious cause.
fn repo_error(error: ChartHttpError) -> RepoError {
    match error {
        ChartHttpError::Tls(tls) => RepoError::Tls(tls),
        ChartHttpError::Send { url, source, .. } => RepoError::Http { url, source },
        ChartHttpError::Status { url, status, .. } => RepoError::Status {
            url,
            status,
            hint: match status {
                401 | 403 => " (check --username/--password)",
                404 => " (not found; is this a chart repository URL?)",
                _ => "",
            },
        },
        ChartHttpError::TooLarge { url, limit } => RepoError::NotAChart {
            reference: url,
            reason: format!("larger than {limit} bytes; refusing to read on"),
        },
        ChartHttpError::Index(index) => RepoError::Index(index),
    }
}

fn version_info(entry: &ChartVersion) -> ChartVersionInfo {
    ChartVersionInfo {
        name: entry.metadata.name.clone(),
        version: entry.metadata.version.clone(),
        app_version: entry.metadata.app_version.clone().unwrap_or_default(),
        description: entry.metadata.description.clone().unwrap_or_default(),
        urls: entry.urls.clone(),
        digest: entry.digest.clone(),
        created: entry.created.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(location: &str, credentials: &CredentialResolver) -> IndexRepository {
        IndexRepository::open(
            ChartLocation::parse(location),
            &HttpOptions::default(),
            credentials,
        )
        .unwrap()
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_display() {
        let none = CredentialResolver::new();
        let repo = open("https://admin:hunter2@charts.example/chartrepo/lib", &none);
        assert_eq!(repo.location(), "https://charts.example/chartrepo/lib");
        let Location::Http(_, client) = &repo.location else {
            panic!("an http location")
        };
        let auth = client.credentials().cloned().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("admin", "hunter2")
        );
        assert!(!format!("{repo:?}").contains("hunter2"));
        match &repo.location {
            Location::Http(url, _) => {
                assert_eq!(
                    url.as_str(),
                    "https://charts.example/chartrepo/lib/index.yaml"
                )
            }
            Location::Directory(_) => panic!("an http location"),
        }
        // Given credentials win over the URL's.
        let given = CredentialResolver::new()
            .given("--username/--password", Some("u".into()), Some("p".into()))
            .unwrap();
        let repo = open("https://a:b@h/x", &given);
        let Location::Http(_, client) = &repo.location else {
            panic!("an http location")
        };
        assert_eq!(client.credentials().unwrap().username, "u");
    }

    #[test]
    fn location_table() {
        let cases = [
            ("https://h/chartrepo/p", "https://h/chartrepo/p/index.yaml"),
            ("https://h/chartrepo/p/", "https://h/chartrepo/p/index.yaml"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/index.yaml"),
            ("https://h/some/index.yaml", "https://h/some/index.yaml"),
        ];
        for (given, index) in cases {
            match open(given, &CredentialResolver::new()).location {
                Location::Http(url, _) => assert_eq!(url.as_str(), index, "{given}"),
                Location::Directory(_) => panic!("{given}"),
            }
        }
    }
}
