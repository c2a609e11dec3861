//! Reading Helm chart repositories (Harbor `https://host/chartrepo/<project>`, ChartMuseum, any
//! HTTP server with an `index.yaml`, a local directory, `oci://` registries) through
//! [`kantup_registry::chart_repo::ChartRepository`]: the versions `helm search repo --versions`
//! shows, and a digest-checked pull written to a directory.
//!
//! ```no_run
//! use kantup::ops::repo::{VersionsOptions, versions};
//! # async fn demo() -> Result<(), kantup::ops::repo::RepoOpError> {
//! let rows = versions(&VersionsOptions {
//!     chart: Some("nginx".into()),
//!     ..VersionsOptions::new("https://charts.example")
//! })
//! .await?;
//! for row in rows {
//!     println!("{} {}", row.name, row.version);
//! }
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use kantup_registry::chart_repo::{ChartRepository, ChartVersionInfo, RepoError};
use kantup_registry::credentials::CredentialResolver;
use kantup_registry::net::HttpOptions;
use serde::Serialize;

/// Why listing or pulling failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoOpError {
    /// The repository holds no version the listing would show.
    #[error("{} in {location}{}", match chart {
        Some(chart) => format!("no versions of chart {chart:?}"),
        None => "no chart versions".to_owned(),
    }, if *devel { "" } else { " (pre-releases need --devel)" })]
    NoVersions {
        /// The chart asked for, or `None` for every chart.
        chart: Option<String>,
        /// The repository, credentials cut out.
        location: String,
        /// Whether pre-releases were included.
        devel: bool,
    },
    /// The repository could not be read, the chart or version is not there, or the archive
    /// does not match its published digest.
    #[error("{0}")]
    Repository(#[from] RepoError),
}

/// Which versions to list (`kantup repo versions`).
#[derive(Debug, Clone)]
pub struct VersionsOptions {
    /// `http(s)://` URL (the index is `URL/index.yaml`), a directory, or
    /// `oci://registry/repository/chart`.
    pub repository: String,
    /// Only this chart; every chart of the index when `None`.
    pub chart: Option<String>,
    /// Only the newest version of each chart.
    pub latest: bool,
    /// Include pre-release versions, like helm's `--devel`.
    pub devel: bool,
    /// TLS, plain HTTP, proxy and timeouts.
    pub http: HttpOptions,
    /// Where credentials come from; sent only to the repository's own host.
    pub credentials: CredentialResolver,
}

impl VersionsOptions {
    /// Every stable version of every chart in `repository`, no credentials.
    pub fn new(repository: impl Into<String>) -> Self {
        Self {
            repository: repository.into(),
            chart: None,
            latest: false,
            devel: false,
            http: HttpOptions::default(),
            credentials: CredentialResolver::new(),
        }
    }
}

/// The chart versions a repository offers, newest first within each chart: SemVer releases,
/// and pre-releases too with `devel` (helm's search filter). No version at all is
/// [`RepoOpError::NoVersions`].
pub async fn versions(options: &VersionsOptions) -> Result<Vec<ChartVersionInfo>, RepoOpError> {
    let repo = ChartRepository::open(&options.repository, &options.http, &options.credentials)?;
    let charts = match &options.chart {
        Some(chart) => vec![chart.clone()],
        None => repo.chart_names().await?,
    };
    let mut rows = Vec::new();
    for chart in &charts {
        let shown = repo
            .versions(chart)
            .await?
            .into_iter()
            .filter(|v| options.devel || v.is_stable());
        if options.latest {
            rows.extend(shown.take(1));
        } else {
            rows.extend(shown);
        }
    }
    if rows.is_empty() {
        return Err(RepoOpError::NoVersions {
            chart: options.chart.clone(),
            location: repo.location(),
            devel: options.devel,
        });
    }
    Ok(rows)
}

/// Which chart to pull, and where to (`kantup repo pull`).
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `http(s)://` URL, a directory, or `oci://registry/repository` (the chart is then
    /// `oci://registry/repository/CHART`).
    pub repository: String,
    /// Chart name.
    pub chart: String,
    /// The exact version; the newest stable one when `None`.
    pub version: Option<String>,
    /// With no `version`: the newest version, pre-releases included.
    pub devel: bool,
    /// Directory the archive is written into (created when missing).
    pub destination: PathBuf,
    /// TLS, plain HTTP, proxy and timeouts.
    pub http: HttpOptions,
    /// Where credentials come from; sent only to the repository's own host.
    pub credentials: CredentialResolver,
}

/// What [`pull`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub version: String,
    /// The archive written.
    pub path: PathBuf,
    /// Where it came from (URL, file, or `oci://host/repo@<manifest digest>`).
    pub source: String,
    /// The archive's sha256, hex.
    pub sha256: String,
    /// Whether a published digest was checked (false only for an index entry without one).
    pub verified: bool,
}

impl PullReport {
    /// What the archive's sha256 was checked against: the OCI layer digest (a pull from an
    /// `oci://` registry), the repository index, or nothing (an index entry without a digest).
    pub fn checked_against(&self) -> Option<&'static str> {
        if self.source.starts_with("oci://") {
            Some("the OCI layer digest")
        } else if self.verified {
            Some("the index")
        } else {
            None
        }
    }
}

/// Pulls a chart archive, checks it against the index's sha256 or the OCI layer digest, and
/// writes it atomically into `destination`. A mismatch writes nothing.
pub async fn pull(options: &PullOptions) -> Result<PullReport, RepoOpError> {
    let repo = ChartRepository::open(&options.repository, &options.http, &options.credentials)?;
    let version = match (&options.version, options.devel) {
        (Some(version), _) => Some(version.clone()),
        (None, true) => Some(repo.latest(&options.chart, true).await?.version),
        (None, false) => None,
    };
    let pulled = repo.pull(&options.chart, version.as_deref()).await?;
    let path = pulled.write_to(&options.destination)?;
    Ok(PullReport {
        sha256: pulled.digest.hex(),
        chart: pulled.name,
        version: pulled.version,
        path,
        source: pulled.source,
        verified: pulled.verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory repository whose only version of `kant` is a pre-release.
    fn prerelease_only() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.yaml"),
            "apiVersion: v1\nentries:\n  kant:\n  - name: kant\n    version: 0.5.0-rc.1\n    \
             urls: [kant-0.5.0-rc.1.tgz]\n",
        )
        .unwrap();
        dir
    }

    #[tokio::test]
    async fn pre_releases_are_listed_only_with_devel() {
        let dir = prerelease_only();
        let mut options = VersionsOptions {
            chart: Some("kant".into()),
            ..VersionsOptions::new(dir.path().to_str().unwrap())
        };
        let error = versions(&options).await.unwrap_err();
        assert!(
            matches!(&error, RepoOpError::NoVersions { devel: false, .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("no versions of chart \"kant\" in "),
            "{error}"
        );
        assert!(
            error.to_string().ends_with(" (pre-releases need --devel)"),
            "{error}"
        );

        options.devel = true;
        let rows = versions(&options).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(),
            ["0.5.0-rc.1"]
        );
    }

    #[tokio::test]
    async fn an_oci_version_must_be_semver_before_anything_is_asked() {
        let options = PullOptions {
            repository: "oci://127.0.0.1:1/charts".into(),
            chart: "kant".into(),
            version: Some("latest".into()),
            devel: false,
            destination: PathBuf::from("unused"),
            http: HttpOptions::default(),
            credentials: CredentialResolver::new(),
        };
        let error = pull(&options).await.unwrap_err();
        assert!(
            matches!(
                &error,
                RepoOpError::Repository(kantup_registry::chart_repo::RepoError::NotSemver { version })
                    if version == "latest"
            ),
            "{error:?}"
        );
    }
}
