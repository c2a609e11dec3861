//! `kantup sync`: charts-syncer's job for offline bundles, as a library. For every bundle of a
//! charts-syncer config (`load-image.yaml`): push its images to their relocated names, with
//! their signatures, attestations, SBOMs and referrers next to them, digest-exact (or write
//! the images into an OCI image layout), rewrite the chart's image values through the bundle's hints
//! in memory, and upload the repackaged chart to the chart target.
//!
//! ```no_run
//! # async fn run() -> Result<(), kantup::ops::sync::SyncError> {
//! use std::sync::Arc;
//! use kantup::ops::{progress::Silent, sync};
//! let options = sync::SyncOptions {
//!     dry_run: true,
//!     ..sync::SyncOptions::new("load-image.yaml")
//! };
//! let report = sync::sync(&options, Arc::new(Silent)).await?;
//! println!("{} image(s) to push", report.images_pushed);
//! # Ok(()) }
//! ```

mod attachments;
mod bundle;
pub mod config;
mod differential;
mod error;
mod report;
mod targets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kantup_bundle::Bundle;
use kantup_registry::net::HttpOptions;
use kantup_registry::{PushOptions, TagPolicy};

pub use error::SyncError;
pub use report::{BundleReport, SyncReport};

use crate::ops::progress::Progress;
use bundle::BundleSync;
use config::SyncConfig;
use targets::ImageTarget;

/// What to sync and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// charts-syncer v1 config (`source.intermediateBundlesPath`, `target.containerRegistry`,
    /// `target.containerRepository`, `target.repo`, `target.containers.auth`); relative paths
    /// in it are relative to its directory.
    pub config: PathBuf,
    /// Plan only: find what would be pushed, skipped or overwritten and change nothing.
    pub dry_run: bool,
    /// Write the images into this OCI image layout directory instead of a registry.
    pub to_oci_layout: Option<PathBuf>,
    /// TLS, plain HTTP, proxy and timeouts for every registry and chart repository.
    pub http: HttpOptions,
    /// Fail an image whose target tag already points at another digest (else overwrite it
    /// and report it).
    pub no_overwrite: bool,
    /// Replace a chart with the same name and version but other content.
    pub force: bool,
    /// Blob transfers in flight at once (at least 1).
    pub concurrency: usize,
    /// Where half-done blob uploads are remembered, so an interrupted sync continues where the
    /// registry stands (`None`: `$XDG_CACHE_HOME/kantup/uploads`).
    pub upload_cache: Option<PathBuf>,
    /// Refuse every bundle whose detached signature does not verify with this public key
    /// (PEM); all are checked before anything is pushed.
    pub verify_key: Option<PathBuf>,
    /// The signature file when the source is one bundle (default: `<bundle>.sig` beside each).
    pub signature: Option<PathBuf>,
    /// A helm binary to render a chart with its default values when neither hints,
    /// `Images.lock` nor `Chart.yaml` annotations list its images (the last resort of image
    /// discovery: every `image:` of the manifests).
    pub helm: Option<PathBuf>,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: kantup_bundle::OpenOptions,
    /// Accept a bundle that lacks images its chart needs (a chart that pulls them from
    /// elsewhere on purpose). Without it such a bundle stops the sync before anything is
    /// pushed; invalid image names always do.
    pub allow_missing_images: bool,
    /// Every image of every bundle must be signed by one of these public keys
    /// (`--image-key`); all are checked before anything is pushed.
    pub image_keys: Vec<PathBuf>,
}

impl SyncOptions {
    /// The defaults of `kantup sync --config CONFIG`.
    pub fn new(config: impl Into<PathBuf>) -> Self {
        Self {
            config: config.into(),
            dry_run: false,
            to_oci_layout: None,
            http: HttpOptions::default(),
            no_overwrite: false,
            force: false,
            concurrency: 4,
            upload_cache: None,
            verify_key: None,
            signature: None,
            helm: None,
            open: kantup_bundle::OpenOptions::default(),
            allow_missing_images: false,
            image_keys: Vec::new(),
        }
    }
}

/// Syncs every bundle the config names. Stops at the first bundle that cannot be read or
/// whose chart cannot be prepared ([`SyncError::Bundle`]); images and charts that fail one by
/// one are reported in the [`SyncReport`] and the sync goes on.
pub async fn sync(
    options: &SyncOptions,
    progress: Arc<dyn Progress>,
) -> Result<SyncReport, SyncError> {
    let config = SyncConfig::load(&options.config)?;
    for key in config.ignored_keys() {
        tracing::warn!(
            "{}: {key} is a charts-syncer setting kantup does not use; ignored",
            options.config.display()
        );
    }
    let base = options.config.parent().unwrap_or(Path::new("."));
    let source = config
        .source
        .intermediate_bundles_path
        .as_ref()
        .map(|p| base.join(p))
        .ok_or_else(|| SyncError::MissingSource {
            config: options.config.clone(),
        })?;
    let bundles = find_bundles(&source, &options.open)?;
    if bundles.is_empty() {
        return Err(SyncError::NoBundles(source));
    }
    if let Some(key) = &options.verify_key {
        if options.signature.is_some() && bundles.len() > 1 {
            return Err(SyncError::OneSignatureManyBundles {
                directory: source,
                count: bundles.len(),
            });
        }
        // Every bundle before any push: a bad one stops the sync with nothing changed.
        for bundle in &bundles {
            kantup_bundle::signature::verify_bundle_file(
                bundle,
                key,
                options.signature.as_deref(),
            )?;
            tracing::info!(bundle = %bundle.display(), key = %key.display(), "signature verified");
        }
    }

    // Every bundle carries the images its chart needs, under valid names, before any push.
    for path in &bundles {
        let bundle = Bundle::open(path)?;
        crate::ops::images::require_images(
            &bundle,
            options.helm.as_deref(),
            options.allow_missing_images,
        )
        .map_err(|source| SyncError::Bundle {
            path: path.clone(),
            source: Box::new(source.into()),
        })?;
        // Every image signed by a given key, before any push (no network: the bundle carries
        // the signatures).
        crate::ops::image_keys::require_signed(&bundle, &options.image_keys)?;
    }

    let image_target = targets::image_target(&config.target, options, base)?;
    if let ImageTarget::Registry(client, _) = &image_target {
        // Settle the scheme and TLS trust once, up front: an untrusted certificate or a
        // registry that is not there is one clear error, not one per image.
        client
            .base_url()
            .await
            .map_err(|source| SyncError::Connect {
                host: client.host().to_string(),
                source,
            })?;
    }
    let chart_target = targets::chart_target(&config.target, options, base, &image_target)?;
    let push_options = PushOptions {
        blob_concurrency: options.concurrency.max(1),
        image_concurrency: 3,
        tag_policy: if options.no_overwrite {
            TagPolicy::Refuse
        } else {
            TagPolicy::Overwrite
        },
    };

    let mut report = SyncReport {
        dry_run: options.dry_run,
        ..SyncReport::default()
    };
    for path in &bundles {
        let bundle = BundleSync {
            options,
            path,
            image_target: &image_target,
            chart_target: chart_target.as_ref(),
            push_options: &push_options,
            progress: &progress,
        };
        let result = bundle
            .run(&mut report)
            .await
            .map_err(|source| SyncError::Bundle {
                path: path.clone(),
                source: Box::new(source),
            })?;
        report.bundles.push(result);
    }
    Ok(report)
}

/// A bundle file, or every file in a directory that is a bundle (a tar with a chart inside),
/// whatever its name; sorted by path.
fn find_bundles(
    source: &Path,
    open: &kantup_bundle::OpenOptions,
) -> Result<Vec<PathBuf>, SyncError> {
    if source.is_file() {
        return Ok(vec![source.to_path_buf()]);
    }
    if !source.is_dir() {
        return Err(SyncError::SourceNotFound(source.to_path_buf()));
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(source)
        .map_err(|e| SyncError::ReadDir {
            path: source.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        match Bundle::open_with(&path, open).and_then(|b| b.chart().map(|_| ())) {
            Ok(()) => out.push(path),
            Err(e) => tracing::debug!("{} is not a bundle: {e}", path.display()),
        }
    }
    Ok(out)
}
