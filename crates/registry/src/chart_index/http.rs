//! Reading a chart repository (Harbor `chartrepo/<project>`, ChartMuseum, any static HTTP
//! server, or a local directory) and downloading chart archives verified against the index.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{ChartVersion, IndexError, IndexFile};

/// Username and password for a chart repository (HTTP basic auth, as `helm repo add
/// --username/--password`). The password never appears in `Debug` output or errors.
#[derive(Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Errors talking to a chart repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The repository location is neither a URL nor an existing directory.
    #[error("{0}: not an http(s) URL or a directory")]
    BadLocation(String),
    /// The HTTP request failed before a response arrived.
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    /// The index could not be read or parsed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The chart or version is not in the index.
    #[error("chart {chart:?} {version} not found in {repository}")]
    NotFound {
        chart: String,
        version: String,
        repository: String,
    },
    /// The index entry lists no download URL.
    #[error("chart {chart:?} {version}: the index lists no urls")]
    NoUrl { chart: String, version: String },
    /// The downloaded archive does not match the digest in the index; nothing was written.
    #[error(
        "{url}: sha256 mismatch: the index says {expected}, the download is {actual}; refusing to write it"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// Writing the archive failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `scheme://user:pass@host/...` with the user-info cut out, for messages about URLs that
/// did not even parse.
fn redact_userinfo(location: &str) -> String {
    match (location.find("://"), location.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!(
                "{}://<redacted>@{}",
                &location[..scheme_end],
                &location[at + 1..]
            )
        }
        _ => location.to_owned(),
    }
}

/// Where a chart repository lives.
#[derive(Debug, Clone)]
enum Location {
    Http(Url),
    Directory(PathBuf),
}

/// A chart repository to read an index from and download charts from.
///
/// ```no_run
/// # async fn demo() -> Result<(), kantup_registry::chart_index::http::RepoError> {
/// use kantup_registry::chart_index::http::ChartRepository;
///
/// let repo = ChartRepository::new("https://harbor.example/chartrepo/library", None)?;
/// let index = repo.fetch_index().await?;
/// let latest = index.latest("nginx", false).expect("nginx is in the repository");
/// let pulled = repo.pull(latest, std::path::Path::new("charts")).await?;
/// println!("{} ({})", pulled.path.display(), pulled.sha256);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChartRepository {
    location: Location,
    display: String,
    auth: Option<BasicAuth>,
    client: reqwest::Client,
}

/// A chart archive written by [`ChartRepository::pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledChart {
    /// Where the archive was written.
    pub path: PathBuf,
    /// The URL (or file) it came from.
    pub source: String,
    /// sha256 of the archive, lowercase hex.
    pub sha256: String,
    /// Whether the index had a digest and it matched (false only when the index has none).
    pub verified: bool,
}

impl ChartRepository {
    /// A repository at `location`: an `http(s)://` URL (the index is `<url>/index.yaml`, or
    /// the URL itself when it ends in `.yaml`) or a local directory.
    ///
    /// Credentials written into the URL (`https://user:pass@host/...`) are taken out of it and
    /// used as basic auth (unless `auth` is given), so they never show up in messages.
    pub fn new(location: &str, mut auth: Option<BasicAuth>) -> Result<Self, RepoError> {
        let mut display = location.to_owned();
        let parsed = if location.starts_with("http://") || location.starts_with("https://") {
            let mut url = Url::parse(location)
                .map_err(|_| RepoError::BadLocation(redact_userinfo(location)))?;
            if !url.username().is_empty() || url.password().is_some() {
                let from_url = BasicAuth {
                    username: url.username().to_owned(),
                    password: url.password().unwrap_or_default().to_owned(),
                };
                auth = auth.or(Some(from_url));
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
            Location::Http(url)
        } else if Path::new(location).is_dir() {
            Location::Directory(PathBuf::from(location))
        } else {
            return Err(RepoError::BadLocation(location.to_owned()));
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("kantup/", env!("CARGO_PKG_VERSION")))
            // A stalled server must not hang an install; a slow but moving download is fine.
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|source| RepoError::Http {
                url: display.clone(),
                source,
            })?;
        Ok(Self {
            location: parsed,
            display,
            auth,
            client,
        })
    }

    /// The location as given.
    pub fn location(&self) -> &str {
        &self.display
    }

    /// Reads the index. For a directory: `DIR/index.yaml`, or when there is none, an index
    /// built from the `*.tgz` in it (like `helm repo index`, without writing it).
    pub async fn fetch_index(&self) -> Result<IndexFile, RepoError> {
        match &self.location {
            Location::Http(url) => {
                let bytes =
                    self.get(url)
                        .await?
                        .bytes()
                        .await
                        .map_err(|source| RepoError::Http {
                            url: url.to_string(),
                            source,
                        })?;
                let text = String::from_utf8_lossy(&bytes);
                Ok(IndexFile::from_yaml_named(&text, url.as_str())?)
            }
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

    /// Finds `chart` at `version` in the index and downloads it into `dest_dir` (see
    /// [`ChartRepository::pull`]).
    pub async fn pull_version(
        &self,
        index: &IndexFile,
        chart: &str,
        version: &str,
        dest_dir: &Path,
    ) -> Result<PulledChart, RepoError> {
        let entry = index
            .get(chart, version)
            .ok_or_else(|| RepoError::NotFound {
                chart: chart.to_owned(),
                version: version.to_owned(),
                repository: self.display.clone(),
            })?;
        self.pull(entry, dest_dir).await
    }

    /// Downloads a chart version's archive from its first URL (relative URLs resolve against
    /// the index location) into `dest_dir/<file name>`, hashing while it streams. When the index
    /// has a digest and the archive does not match it, nothing is written and the error names
    /// both digests. The file appears atomically (temporary file renamed into place).
    pub async fn pull(
        &self,
        entry: &ChartVersion,
        dest_dir: &Path,
    ) -> Result<PulledChart, RepoError> {
        let raw_url = entry.urls.first().ok_or_else(|| RepoError::NoUrl {
            chart: entry.metadata.name.clone(),
            version: entry.metadata.version.clone(),
        })?;
        let file_name = raw_url
            .split(['?', '#'])
            .next()
            .and_then(|path| path.rsplit('/').next())
            .filter(|name| !name.is_empty() && *name != ".." && *name != ".")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{}.tgz", entry.metadata.name, entry.metadata.version));
        let dest = dest_dir.join(&file_name);
        let temp = dest_dir.join(format!(".{file_name}.kantup-{}.part", std::process::id()));
        let io_dest = |source| RepoError::Io {
            path: temp.clone(),
            source,
        };
        tokio::fs::create_dir_all(dest_dir)
            .await
            .map_err(|source| RepoError::Io {
                path: dest_dir.to_owned(),
                source,
            })?;
        let mut out = tokio::fs::File::create(&temp).await.map_err(io_dest)?;
        let mut hasher = Sha256::new();
        let result: Result<String, RepoError> = async {
            let source = match &self.location {
                Location::Http(index_url) => {
                    let url = index_url
                        .join(raw_url)
                        .map_err(|_| RepoError::BadLocation(raw_url.clone()))?;
                    let response = self.get(&url).await?;
                    let mut body = response.bytes_stream();
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|source| RepoError::Http {
                            url: url.to_string(),
                            source,
                        })?;
                        hasher.update(&chunk);
                        out.write_all(&chunk).await.map_err(io_dest)?;
                    }
                    url.to_string()
                }
                Location::Directory(dir) => {
                    let path = dir.join(raw_url);
                    let bytes = tokio::fs::read(&path)
                        .await
                        .map_err(|source| RepoError::Io {
                            path: path.clone(),
                            source,
                        })?;
                    hasher.update(&bytes);
                    out.write_all(&bytes).await.map_err(io_dest)?;
                    path.display().to_string()
                }
            };
            out.sync_all().await.map_err(io_dest)?;
            Ok(source)
        }
        .await;
        drop(out);
        let outcome = result.and_then(|source| {
            let actual = hex::encode(hasher.finalize());
            match entry.digest.as_deref().filter(|d| !d.is_empty()) {
                Some(expected)
                    if !expected
                        .trim_start_matches("sha256:")
                        .eq_ignore_ascii_case(&actual) =>
                {
                    Err(RepoError::DigestMismatch {
                        url: source,
                        expected: expected.to_owned(),
                        actual,
                    })
                }
                Some(_) => Ok((source, actual, true)),
                None => {
                    tracing::warn!(
                        "{source}: the index has no digest for {} {}; not verified",
                        entry.metadata.name,
                        entry.metadata.version
                    );
                    Ok((source, actual, false))
                }
            }
        });
        match outcome {
            Ok((source, sha256, verified)) => {
                tokio::fs::rename(&temp, &dest)
                    .await
                    .map_err(|source| RepoError::Io {
                        path: dest.clone(),
                        source,
                    })?;
                Ok(PulledChart {
                    path: dest,
                    source,
                    sha256,
                    verified,
                })
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(error)
            }
        }
    }

    /// GET with basic auth, sent only to the repository's own origin (like helm without
    /// `--pass-credentials`).
    async fn get(&self, url: &Url) -> Result<reqwest::Response, RepoError> {
        let mut request = self.client.get(url.clone());
        if let (Some(auth), Location::Http(base)) = (&self.auth, &self.location)
            && base.origin() == url.origin()
        {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let response = request.send().await.map_err(|source| RepoError::Http {
            url: url.to_string(),
            source: source.without_url(),
        })?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => " (check --username/--password)",
                404 => " (not found; is this a chart repository URL?)",
                _ => "",
            };
            return Err(RepoError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                hint,
            });
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_display() {
        let repo = ChartRepository::new("https://admin:hunter2@charts.example/chartrepo/lib", None)
            .unwrap();
        assert_eq!(repo.location(), "https://charts.example/chartrepo/lib");
        let auth = repo.auth.clone().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("admin", "hunter2")
        );
        assert!(!format!("{repo:?}").contains("hunter2"));
        match &repo.location {
            Location::Http(url) => {
                assert_eq!(
                    url.as_str(),
                    "https://charts.example/chartrepo/lib/index.yaml"
                )
            }
            Location::Directory(_) => panic!("an http location"),
        }
        // Explicit credentials win over the URL's.
        let explicit = BasicAuth {
            username: "u".into(),
            password: "p".into(),
        };
        let repo = ChartRepository::new("https://a:b@h/x", Some(explicit)).unwrap();
        assert_eq!(repo.auth.unwrap().username, "u");
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
            match ChartRepository::new(given, None).unwrap().location {
                Location::Http(url) => assert_eq!(url.as_str(), index, "{given}"),
                Location::Directory(_) => panic!("{given}"),
            }
        }
        let error = ChartRepository::new("https://u:secret@[bad", None).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(ChartRepository::new("/no/such/dir/kantup", None).is_err());
    }
}
