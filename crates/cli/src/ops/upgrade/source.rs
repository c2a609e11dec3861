//! Where the chart of an upgrade comes from: a bundle (verified, its chart written to a scratch
//! directory for helm), a chart directory or a chart archive (loaded, and so validated, then
//! handed to helm as it is), or a chart repository (pulled and digest-checked as
//! `kantup repo pull` does, then handed to helm as the archive).

use std::path::{Path, PathBuf};

use kantup_bundle::VerifyOptions;
use kantup_bundle::chart::Chart;
use kantup_bundle::chart_file::ChartFile;
use kantup_registry::chart_repo::ChartRepository;
use kantup_registry::credentials::CredentialResolver;
use kantup_registry::location::ChartLocation;
use kantup_registry::net::HttpOptions;

use super::UpgradeError;
use crate::ops::progress::Progress;

/// Where the chart of an upgrade comes from.
#[derive(Debug, Clone)]
pub enum ChartSource {
    /// A bundle (plain, gzip or zstd), a chart directory or a chart `.tgz`.
    Path(PathBuf),
    /// A chart in a repository (the seed's "upgrade via Helm repo").
    Repository(Box<RepositoryChart>),
}

impl From<PathBuf> for ChartSource {
    fn from(path: PathBuf) -> Self {
        ChartSource::Path(path)
    }
}

impl From<&str> for ChartSource {
    fn from(path: &str) -> Self {
        ChartSource::Path(PathBuf::from(path))
    }
}

impl From<&String> for ChartSource {
    fn from(path: &String) -> Self {
        ChartSource::Path(PathBuf::from(path))
    }
}

impl From<String> for ChartSource {
    fn from(path: String) -> Self {
        ChartSource::Path(PathBuf::from(path))
    }
}

impl std::fmt::Display for ChartSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChartSource::Path(path) => write!(f, "{}", path.display()),
            ChartSource::Repository(r) => write!(
                f,
                "{} chart {} {}",
                r.location,
                r.chart,
                r.version.as_deref().unwrap_or("(newest stable)")
            ),
        }
    }
}

impl ChartSource {
    /// Which chart of a repository SOURCE names, as `kantup upgrade SOURCE [--chart NAME]`
    /// reads it: `None` when SOURCE is a path (no `chart` and not an `oci://`, `http://` or
    /// `https://` URL); else the chart, `chart` or, for `oci://host/path/CHART`, the last
    /// path segment.
    ///
    /// ```
    /// use kantup::ops::upgrade::ChartSource;
    /// assert_eq!(ChartSource::repository_chart("kant.bundle.tar", None).unwrap(), None);
    /// assert_eq!(
    ///     ChartSource::repository_chart("oci://reg:5000/charts/kant", None).unwrap().as_deref(),
    ///     Some("kant")
    /// );
    /// assert!(ChartSource::repository_chart("https://harbor/chartrepo/kant", None).is_err());
    /// ```
    pub fn repository_chart(
        source: &str,
        chart: Option<&str>,
    ) -> Result<Option<String>, UpgradeError> {
        let location = ChartLocation::parse(source);
        if chart.is_none() && location.is_directory() {
            return Ok(None);
        }
        match (chart, location) {
            (Some(chart), _) => Ok(Some(chart.to_string())),
            (None, ChartLocation::Oci(reference)) => reference
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|name| !name.contains(':') && reference.contains('/'))
                .map(|name| Some(name.to_string()))
                .ok_or_else(|| UpgradeError::OciChartNotNamed(source.to_string())),
            (None, _) => Err(UpgradeError::RepositoryChartNotNamed(source.to_string())),
        }
    }
}

/// A chart in a repository: Harbor (`https://host/chartrepo/<project>`), ChartMuseum, any HTTP
/// server with an `index.yaml`, a directory, or an OCI registry (`oci://host/path`).
#[derive(Debug, Clone)]
pub struct RepositoryChart {
    /// The repository location.
    pub location: String,
    /// The chart name.
    pub chart: String,
    /// The exact version; the newest stable one when `None`.
    pub version: Option<String>,
    /// TLS and proxy settings.
    pub http: HttpOptions,
    /// Credentials, sent only to the repository's own host.
    pub credentials: CredentialResolver,
}

/// Resolves any source.
pub(crate) async fn resolve(
    options: &super::UpgradeOptions,
    progress: &dyn Progress,
) -> Result<ResolvedChart, UpgradeError> {
    match &options.source {
        ChartSource::Path(path) => resolve_path(path, options, progress),
        ChartSource::Repository(_) if !options.image_keys.is_empty() => Err(
            UpgradeError::ImageKeyNeedsBundle(options.source.to_string()),
        ),
        ChartSource::Repository(repository) => resolve_repository(repository).await,
    }
}

/// Pulls the chart (digest-checked against the index or the OCI manifest), writes the archive
/// to a scratch directory for helm and loads it.
async fn resolve_repository(source: &RepositoryChart) -> Result<ResolvedChart, UpgradeError> {
    let repository = ChartRepository::open(&source.location, &source.http, &source.credentials)?;
    let pulled = repository
        .pull(&source.chart, source.version.as_deref())
        .await?;
    let scratch = scratch_dir()?;
    let archive = pulled.write_to(scratch.path())?;
    let chart = Chart::load_tgz_bytes(&pulled.source, &pulled.bytes)?;
    tracing::info!(source = %pulled.source, digest = %pulled.digest, "chart pulled");
    Ok(ResolvedChart {
        chart,
        helm_path: archive,
        kind: "chart repository",
        pulled_from: Some(format!("{} ({})", pulled.source, pulled.digest)),
        _scratch: Some(scratch),
        images: Vec::new(),
    })
}

/// The chart an upgrade installs, and the path helm gets.
pub(crate) struct ResolvedChart {
    pub chart: Chart,
    /// A chart directory or `.tgz` for `helm upgrade`.
    pub helm_path: PathBuf,
    /// What the source was, for the plan.
    pub kind: &'static str,
    /// For a pulled chart: where from, and its digest.
    pub pulled_from: Option<String>,
    /// Keeps a bundle's chart directory alive until helm has run.
    pub _scratch: Option<tempfile::TempDir>,
    /// A bundle's images: digest, signature verdict (with `--image-key`), SBOMs.
    pub images: Vec<crate::ops::image_keys::DeployedImage>,
}

/// Opens and checks `path`: a bundle is verified (unless `skip_verify`; that it carries the
/// images its chart needs is checked even then) and its chart written to a scratch
/// directory; a chart directory or archive is loaded as it is.
fn resolve_path(
    path: &Path,
    options: &super::UpgradeOptions,
    progress: &dyn Progress,
) -> Result<ResolvedChart, UpgradeError> {
    let allow_missing_images = options.allow_missing_images;
    let needs_bundle = || {
        if options.image_keys.is_empty() {
            Ok(())
        } else {
            Err(UpgradeError::ImageKeyNeedsBundle(
                path.display().to_string(),
            ))
        }
    };
    if path.is_dir() {
        needs_bundle()?;
        let chart = Chart::load_dir(path)?;
        return Ok(ResolvedChart {
            chart,
            helm_path: path.to_path_buf(),
            kind: "chart directory",
            pulled_from: None,
            _scratch: None,
            images: Vec::new(),
        });
    }
    if !path.is_file() {
        return Err(UpgradeError::NoSource(path.to_path_buf()));
    }
    let file =
        ChartFile::open_with(path, &options.open).map_err(|source| UpgradeError::NotAChart {
            path: path.to_path_buf(),
            source,
        })?;
    match file {
        ChartFile::Bundle(bundle) => {
            let verify_error = |source| UpgradeError::Verify {
                path: path.to_path_buf(),
                source,
            };
            if options.skip_verify {
                bundle
                    .check_images()
                    .and_then(|c| c.require(&path.display().to_string(), allow_missing_images))
                    .map_err(verify_error)?;
            } else {
                progress.start("verifying bundle", bundle.tar_size());
                let verified = bundle.verify(
                    VerifyOptions {
                        allow_missing_images,
                        ..VerifyOptions::default()
                    },
                    &mut |n| progress.advance(n),
                );
                progress.finish();
                verified.map_err(verify_error)?;
            }
            // Signed by a given key, before anything changes; recorded beside the backup.
            let images = crate::ops::image_keys::deployed_images(&bundle, &options.image_keys)?;
            let chart = bundle.chart()?;
            let scratch = scratch_dir()?;
            let dir = scratch.path().join(chart.name());
            chart.write_dir(&dir)?;
            Ok(ResolvedChart {
                chart,
                helm_path: dir,
                kind: "bundle",
                pulled_from: None,
                _scratch: Some(scratch),
                images,
            })
        }
        ChartFile::Archive(chart) => {
            needs_bundle()?;
            Ok(ResolvedChart {
                chart: *chart,
                helm_path: path.to_path_buf(),
                kind: "chart archive",
                pulled_from: None,
                _scratch: None,
                images: Vec::new(),
            })
        }
    }
}

/// A scratch directory for the upgrade's temporary files (a pulled archive, a bundle's
/// chart, the backup helm reads), removed when dropped.
pub(super) fn scratch_dir() -> Result<tempfile::TempDir, UpgradeError> {
    tempfile::tempdir().map_err(|source| {
        UpgradeError::io(
            "create a scratch directory in",
            std::env::temp_dir(),
            source,
        )
    })
}
