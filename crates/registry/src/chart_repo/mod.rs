//! Chart repositories to read from, behind one API: HTTP(S) repositories with an `index.yaml`
//! (Harbor's `chartrepo/<project>`, ChartMuseum, any static server), local directories, and
//! `oci://` registries. List a chart's versions newest first (what `helm search repo
//! --versions` shows) and pull a version, verified against the index's digest or the OCI
//! layer's digest and size before any byte is handed out.
//!
//! Every client is built from the shared [`HttpOptions`] (CA file, insecure mode, plain HTTP,
//! proxy, timeouts); credentials come from a [`CredentialResolver`] and go only to the
//! repository's own host.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kantup_registry::chart_repo::RepoError> {
//! use kantup_registry::chart_repo::ChartRepository;
//! use kantup_registry::credentials::{CredentialResolver, EnvPair};
//! use kantup_registry::net::HttpOptions;
//!
//! let http = HttpOptions::with_tls(Some("ca.pem".into()), false, false);
//! let credentials = CredentialResolver::new().env(EnvPair::KANTUP_REPO).docker_config();
//! let repo = ChartRepository::open("oci://reg.local:5000/charts", &http, &credentials)?;
//! for version in repo.versions("kant").await? {
//!     println!("{} {}", version.name, version.version);
//! }
//! let chart = repo.pull("kant", None).await?; // the newest stable version
//! println!("{} {} {} ({} bytes)", chart.name, chart.version, chart.digest, chart.bytes.len());
//! chart.write_to(std::path::Path::new("charts"))?;
//! # Ok(()) }
//! ```

mod index_repo;
mod oci;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kantup_bundle::Digest;
use serde::Serialize;

use crate::chart_index::{IndexError, parse_version};
use crate::credentials::{CredentialResolver, CredentialsError};
use crate::error::RegistryError;
use crate::location::ChartLocation;
use crate::net::{HttpOptions, NetError, TlsError};

pub use index_repo::IndexRepository;
pub use oci::OciRepository;

/// Everything that can go wrong reading a chart repository. Messages name the repository,
/// URL, chart or file, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// An `oci://` pull asked for a version that is not SemVer: OCI chart tags are versions,
    /// as helm pushes them.
    #[error(
        "version {version:?} is not a semantic version (helm charts in OCI registries are tagged by their semver version)"
    )]
    NotSemver {
        /// The version as given.
        version: String,
    },
    /// The location is not an http(s) URL, an `oci://` reference or a directory.
    #[error("{0}: not an http(s) URL, an oci://registry/repository reference or a directory")]
    BadLocation(String),
    /// Credentials could not be resolved.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The HTTP client could not be set up (CA file, proxy).
    #[error(transparent)]
    Net(#[from] NetError),
    /// TLS failed (untrusted certificate, plain HTTP on one side), naming the host.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP request failed before an answer arrived.
    #[error("{url}: {source}")]
    Http {
        /// The URL (credentials cut out).
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        /// The URL (credentials cut out).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// What to check, for the statuses that have an obvious cause (401, 403, 404).
        hint: &'static str,
    },
    /// The OCI registry failed.
    #[error(transparent)]
    Registry(RegistryError),
    /// The index could not be read or parsed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The chart, or the asked-for version of it, is not in the repository.
    #[error("chart {chart:?} {version} not found in {repository}{}", available_suffix(.available))]
    NotFound {
        /// The chart name.
        chart: String,
        /// The asked-for version, or `(latest)`.
        version: String,
        /// The repository (credentials cut out).
        repository: String,
        /// Some versions that are there (newest first), to help pick one.
        available: Vec<String>,
    },
    /// The index entry lists no download URL.
    #[error("chart {chart:?} {version}: the index lists no urls")]
    NoUrl {
        /// The chart name.
        chart: String,
        /// The version.
        version: String,
    },
    /// What the repository holds under this name is not a usable Helm chart.
    #[error("{reference}: {reason}")]
    NotAChart {
        /// The URL or `oci://` reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The content does not match the digest (or size) it was published with; nothing was
    /// handed out or written.
    #[error(
        "{source_name}: sha256 mismatch: {what} says {expected}, the download is {actual}; nothing written"
    )]
    DigestMismatch {
        /// The URL or reference downloaded.
        source_name: String,
        /// What published the expectation (`the index`, `the manifest`).
        what: &'static str,
        /// The digest (and size) published.
        expected: String,
        /// The digest (and size) of what was downloaded.
        actual: String,
    },
    /// An OCI tag holds another chart version than the one it names.
    #[error("{reference} holds chart version {actual:?}, not {expected:?}; nothing written")]
    VersionMismatch {
        /// `oci://host/repository:tag`.
        reference: String,
        /// The version the tag names.
        expected: String,
        /// The version in the chart's config.
        actual: String,
    },
    /// A file could not be written whole; nothing partial is left.
    #[error(transparent)]
    WriteFile(#[from] kantup_bundle::atomic::WriteError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn available_suffix(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!("; versions there: {}", available.join(", "))
    }
}

impl From<RegistryError> for RepoError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Tls(tls) => RepoError::Tls(tls),
            RegistryError::Credentials(credentials) => RepoError::Credentials(credentials),
            RegistryError::Net(net) => RepoError::Net(net),
            other => RepoError::Registry(other),
        }
    }
}

impl RepoError {
    /// Content did not match what it was published with (exit code 3 in the CLI).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            RepoError::DigestMismatch { .. } | RepoError::VersionMismatch { .. }
        )
    }

    /// The chart or version is not there (exit code 4 in the CLI).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RepoError::NotFound { .. })
    }

    /// The request itself is wrong, whatever the repository holds (a version that is not
    /// semver for an `oci://` chart): a usage error (exit code 2 in the CLI).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, RepoError::NotSemver { .. })
    }
}

/// One version of a chart in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartVersionInfo {
    /// The chart name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The `appVersion` (empty when not given).
    pub app_version: String,
    /// The description (empty when not given).
    pub description: String,
    /// Download URLs (index repositories).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// The published sha256 of the archive (index repositories), as the index writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the version was added (index repositories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl ChartVersionInfo {
    /// Whether the version is a SemVer release (no pre-release part).
    pub fn is_stable(&self) -> bool {
        parse_version(&self.version).is_some_and(|v| v.pre.is_empty())
    }
}

/// A chart archive pulled from a repository, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledChart {
    /// The chart name (from the index entry or the OCI chart config).
    pub name: String,
    /// The version.
    pub version: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The chart archive (`.tgz`).
    pub bytes: Bytes,
    /// The file name the repository gives it (`<name>-<version>.tgz` for OCI, the URL's last
    /// segment for index repositories); safe to join onto a directory.
    pub file_name: String,
    /// Where it came from (URL, file, or `oci://host/repo@<manifest digest>`).
    pub source: String,
    /// Whether a published digest was checked (false only for an index entry without one).
    pub verified: bool,
}

impl PulledChart {
    /// Writes the archive as `dir/<file_name>` atomically (a temporary file renamed into
    /// place), creating `dir`. Returns the path.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, RepoError> {
        std::fs::create_dir_all(dir).map_err(|source| RepoError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(&self.file_name);
        kantup_bundle::atomic::write(&path, &self.bytes)?;
        Ok(path)
    }
}

/// A chart repository: index-based (HTTP(S) or a directory) or an OCI registry.
#[derive(Debug)]
pub enum ChartRepository {
    /// A repository with an `index.yaml` (HTTP(S) or a directory).
    Index(IndexRepository),
    /// An `oci://` registry repository.
    Oci(OciRepository),
}

impl ChartRepository {
    /// Opens `location`: `oci://registry/repository` (the charts are
    /// `registry/repository/<chart>`; `oci://registry/repository/<chart>` works too), an
    /// `http(s)://` URL (the index is `URL/index.yaml`, or the URL itself when it ends in
    /// `.yaml`; user-info in it is used as credentials and cut from messages), or a directory.
    ///
    /// Nothing is fetched yet. Credentials are resolved for the repository's host; HTTP
    /// repositories do not read docker's `config.json` even when `credentials` would.
    ///
    /// Errors: [`RepoError::BadLocation`] for a location that is none of these (or an
    /// `oci://` reference without a repository), [`RepoError::Credentials`] when credentials
    /// cannot be resolved, [`RepoError::Net`] when the HTTP client cannot be built (CA file,
    /// proxy).
    pub fn open(
        location: &str,
        http: &HttpOptions,
        credentials: &CredentialResolver,
    ) -> Result<Self, RepoError> {
        Ok(match ChartLocation::parse(location) {
            ChartLocation::Oci(reference) => {
                ChartRepository::Oci(OciRepository::open(reference, http, credentials)?)
            }
            other => ChartRepository::Index(IndexRepository::open(other, http, credentials)?),
        })
    }

    /// The location as given, credentials cut out.
    pub fn location(&self) -> String {
        match self {
            ChartRepository::Index(repo) => repo.location().to_owned(),
            ChartRepository::Oci(repo) => repo.location(),
        }
    }

    /// The chart names the repository lists: every entry of an index; for `oci://`, the last
    /// segment of the reference (one OCI repository holds one chart).
    pub async fn chart_names(&self) -> Result<Vec<String>, RepoError> {
        match self {
            ChartRepository::Index(repo) => repo.chart_names().await,
            ChartRepository::Oci(repo) => Ok(vec![repo.default_chart().to_owned()]),
        }
    }

    /// The versions of `chart` that are SemVer (as helm's search shows them), newest first,
    /// pre-releases included (see [`ChartVersionInfo::is_stable`]). Empty when the chart is not
    /// there.
    pub async fn versions(&self, chart: &str) -> Result<Vec<ChartVersionInfo>, RepoError> {
        match self {
            ChartRepository::Index(repo) => repo.versions(chart).await,
            ChartRepository::Oci(repo) => repo.versions(chart).await,
        }
    }

    /// The newest version of `chart`: the newest stable one, or with `include_prerelease` the
    /// newest of all.
    pub async fn latest(
        &self,
        chart: &str,
        include_prerelease: bool,
    ) -> Result<ChartVersionInfo, RepoError> {
        let versions = self.versions(chart).await?;
        let available: Vec<String> = versions
            .iter()
            .take(10)
            .map(|v| v.version.clone())
            .collect();
        versions
            .into_iter()
            .find(|v| include_prerelease || v.is_stable())
            .ok_or_else(|| RepoError::NotFound {
                chart: chart.to_owned(),
                version: if include_prerelease {
                    "(latest)".to_owned()
                } else {
                    "(latest stable; pre-releases need --devel)".to_owned()
                },
                repository: self.location(),
                available,
            })
    }

    /// Pulls `chart` at `version` (exactly), or the newest stable version when `None`, and
    /// verifies it: against the index's sha256, or the OCI layer's digest and size (and the
    /// chart config's version against the tag). Nothing is returned unless it matches.
    pub async fn pull(&self, chart: &str, version: Option<&str>) -> Result<PulledChart, RepoError> {
        match self {
            ChartRepository::Index(repo) => repo.pull(chart, version).await,
            ChartRepository::Oci(repo) => repo.pull(chart, version).await,
        }
    }
}

/// `name` is usable before `-<version>.tgz` or as a file name inside a destination
/// directory: not empty, not hidden, no path separators.
pub(crate) fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// Sorts SemVer versions newest first, dropping the ones that are not SemVer.
pub(crate) fn newest_first(mut versions: Vec<ChartVersionInfo>) -> Vec<ChartVersionInfo> {
    versions.retain(|v| parse_version(&v.version).is_some());
    versions.sort_by(|a, b| {
        let (a, b) = (parse_version(&a.version), parse_version(&b.version));
        b.expect("kept only semver")
            .cmp_precedence(&a.expect("kept only semver"))
    });
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_usable_in_file_names() {
        let cases = [
            ("web", true),
            ("my-chart_2", true),
            ("", false),
            (".hidden", false),
            ("..", false),
            ("../evil", false),
            ("a/b", false),
            ("a\\b", false),
            ("nul\0", false),
        ];
        for (name, usable) in cases {
            assert_eq!(is_safe_file_name(name), usable, "{name:?}");
        }
    }

    #[test]
    fn error_kinds() {
        let mismatch = RepoError::DigestMismatch {
            source_name: "http://h/c.tgz".into(),
            what: "the index",
            expected: "a".into(),
            actual: "b".into(),
        };
        assert!(mismatch.is_verification_failure() && !mismatch.is_not_found());
        let missing = RepoError::NotFound {
            chart: "web".into(),
            version: "9.9.9".into(),
            repository: "http://h".into(),
            available: vec!["1.0.0".into()],
        };
        assert!(missing.is_not_found());
        assert!(
            missing.to_string().contains("versions there: 1.0.0"),
            "{missing}"
        );
    }

    #[test]
    fn bad_locations_are_named_without_secrets() {
        let http = HttpOptions::default();
        let none = CredentialResolver::new();
        let error = ChartRepository::open("https://u:secret@[bad", &http, &none).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(ChartRepository::open("/no/such/dir/kantup", &http, &none).is_err());
        let error = ChartRepository::open("oci://reg-only", &http, &none).unwrap_err();
        assert!(error.to_string().contains("oci://reg-only"), "{error}");
    }
}
