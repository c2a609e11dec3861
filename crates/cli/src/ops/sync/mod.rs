//! `kantup sync`: charts-syncer's job for offline bundles, as a library. For every bundle of a
//! charts-syncer config (`load-image.yaml`): push its images to their relocated names (or write
//! them into an OCI image layout), rewrite the chart's image values through the bundle's hints
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

pub mod config;
mod targets;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kantup_bundle::archive::ImageArchive;
use kantup_bundle::archive::oci_layout::LayoutAction;
use kantup_bundle::chart::Chart;
use kantup_bundle::{Bundle, BundleError};
use kantup_registry::bundle_source::{plan_archive, plan_indexes};
use kantup_registry::chart_target::{ChartAction, ChartResult, ChartTarget, PackagedChart};
use kantup_registry::net::HttpOptions;
use kantup_registry::{
    ImageAction, ImagePush, ImageResult, PushEvent, PushOptions, RegistryClient, RegistryError,
    RelocationRule, TagPolicy, push_images,
};
use serde::Serialize;

use crate::ops::progress::Progress;
use config::{ConfigError, SyncConfig};
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
        }
    }
}

/// Why a sync stopped. Images or charts that failed one by one do not stop it: they are in the
/// [`SyncReport`]. Every library error is kept as the source (never flattened into text), so a
/// caller can read it from the chain: a digest mismatch, incomplete credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The config file cannot be used.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A bundle's signature did not verify (or there is none); nothing was pushed.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// `signature` names one file but the source holds several bundles.
    #[error(
        "--signature names one signature file but {} holds {count} bundles; leave it out to use <bundle>.sig beside each",
        directory.display()
    )]
    OneSignatureManyBundles {
        /// The bundles' directory.
        directory: PathBuf,
        /// How many bundles it holds.
        count: usize,
    },
    /// The config names no bundles.
    #[error(
        "{}: source.intermediateBundlesPath is required (a bundle file or a directory of bundles)",
        config.display()
    )]
    MissingSource {
        /// The config file.
        config: PathBuf,
    },
    /// `source.intermediateBundlesPath` is not there.
    #[error("source.intermediateBundlesPath {} does not exist", .0.display())]
    SourceNotFound(PathBuf),
    /// The bundle directory could not be listed.
    #[error("reading {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Nothing to sync: no file there is a bundle.
    #[error("no bundles (tar files with a chart inside) in {}", .0.display())]
    NoBundles(PathBuf),
    /// A setting of the config's `target` is missing or wrong.
    #[error("{0}")]
    Target(String),
    /// Credentials could not be resolved (half a pair, an unreadable docker config, ...).
    #[error("{0}")]
    Credentials(#[from] kantup_registry::credentials::CredentialsError),
    /// The target registry cannot be reached or trusted.
    #[error("connecting to the registry {host}")]
    Connect {
        /// The registry.
        host: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A registry or chart repository error.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// One bundle could not be synced; bundles before it were.
    #[error("bundle {}", path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<SyncError>,
    },
    /// The bundle could not be read.
    #[error("{0}")]
    BundleFile(#[from] BundleError),
    /// The chart's images could not be listed, or its values not rewritten.
    #[error(transparent)]
    Images(#[from] crate::ops::images::ImagesError),
    /// The chart's image values could not be rewritten.
    #[error("relocating the image values of {chart}")]
    Relocate {
        /// `<name>-<version>`.
        chart: String,
        /// Why.
        #[source]
        source: kantup_helm_values::Error,
    },
    /// A differential bundle's left-out layers are not in the target registry; nothing was
    /// pushed.
    #[error(
        "{} is a differential bundle against {base}; {} of the layers it leaves out are not in {host}: {}. Sync the base bundle to this registry first, or use the full bundle. Nothing was pushed.",
        bundle.display(),
        missing.len(),
        missing.join("; ")
    )]
    BaseNotInRegistry {
        /// The differential bundle.
        bundle: PathBuf,
        /// Its base, as recorded in it.
        base: String,
        /// The target registry.
        host: String,
        /// `<image> needs <digest> in <repository>`, one per missing layer.
        missing: Vec<String>,
    },
    /// A differential bundle's left-out layers are not in the target OCI layout.
    #[error(
        "{} is a differential bundle: {} layer(s) it leaves out are not in the OCI layout {}: {}; write the base bundle's images there first, or use the full bundle",
        bundle.display(),
        missing.len(),
        layout.display(),
        missing.join(", ")
    )]
    BaseNotInLayout {
        /// The differential bundle.
        bundle: PathBuf,
        /// The OCI layout directory.
        layout: PathBuf,
        /// The missing layer digests.
        missing: Vec<String>,
    },
}

/// What happened to one bundle.
#[derive(Debug, Serialize)]
pub struct BundleReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// `<name>-<version>` of its chart.
    pub chart: String,
    /// How the chart's image values were relocated (hints, or found without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<crate::ops::images::ValuesRelocation>,
    /// Every image: pushed, skipped, overwritten or failed (planned, with `dry_run`).
    pub images: Vec<ImageResult>,
    /// The chart upload, when there is a chart target and it did not fail.
    pub chart_upload: Option<ChartResult>,
    /// Why the chart was not uploaded.
    pub chart_error: Option<String>,
}

/// What a sync did (or, with `dry_run`, would do), with totals.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    /// Whether this is a plan.
    pub dry_run: bool,
    /// One entry per bundle, in path order.
    pub bundles: Vec<BundleReport>,
    /// Images pushed.
    pub images_pushed: u64,
    /// Images already in place.
    pub images_skipped: u64,
    /// Images whose tag pointed at another digest and now points at theirs.
    pub images_overwritten: u64,
    /// Images that failed.
    pub images_failed: u64,
    /// Charts uploaded.
    pub charts_uploaded: u64,
    /// Charts already in place.
    pub charts_skipped: u64,
    /// Charts not uploaded (an upload error, or one of their images failed).
    pub charts_failed: u64,
    /// Blobs whose bytes were sent.
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Blobs already there.
    pub blobs_skipped: u64,
    /// Bytes sent.
    pub bytes_uploaded: u64,
    /// Blob uploads continued where an interrupted run left them.
    pub blobs_resumed: u64,
    /// Bytes those continued uploads did not send again.
    pub bytes_resumed: u64,
}

impl SyncReport {
    /// Images and charts that failed.
    pub fn failed(&self) -> u64 {
        self.images_failed + self.charts_failed
    }

    /// Whether nothing new was (or would be) pushed or uploaded.
    pub fn nothing_new(&self) -> bool {
        self.images_pushed + self.images_overwritten + self.charts_uploaded == 0
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
    let bundles = find_bundles(&source)?;
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
fn find_bundles(source: &Path) -> Result<Vec<PathBuf>, SyncError> {
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
        match Bundle::open(&path).and_then(|b| b.chart().map(|_| ())) {
            Ok(()) => out.push(path),
            Err(e) => tracing::debug!("{} is not a bundle: {e}", path.display()),
        }
    }
    Ok(out)
}

/// One bundle's sync: what it needs from the whole run.
struct BundleSync<'a> {
    options: &'a SyncOptions,
    path: &'a Path,
    image_target: &'a ImageTarget,
    chart_target: Option<&'a ChartTarget>,
    push_options: &'a PushOptions,
    progress: &'a Arc<dyn Progress>,
}

impl BundleSync<'_> {
    async fn run(&self, summary: &mut SyncReport) -> Result<BundleReport, SyncError> {
        let (path, dry_run) = (self.path, self.options.dry_run);
        let bundle = Bundle::open(path)?;
        let mut chart = bundle.chart()?;
        let chart_name = format!("{}-{}", chart.metadata.name, chart.metadata.version);
        let mut out = BundleReport {
            bundle: path.to_path_buf(),
            chart: chart_name.clone(),
            values: None,
            images: Vec::new(),
            chart_upload: None,
            chart_error: None,
        };
        let archive = bundle.image_archive()?.map(Arc::new);

        // The chart is prepared before any image moves, so a bad chart fails the bundle early.
        let packaged = match self.chart_target {
            None => None,
            Some(_) => {
                if let ImageTarget::Registry(_, rule) = self.image_target {
                    out.values = Some(relocate_values(
                        &bundle,
                        &mut chart,
                        rule,
                        archive.as_deref(),
                        self.options.helm.as_deref(),
                    )?);
                }
                chart.detach_dependencies()?;
                Some(PackagedChart::new(&chart)?)
            }
        };

        // 1. Images.
        match (self.image_target, &archive) {
            (_, None) => {}
            (ImageTarget::Registry(client, rule), Some(archive)) => {
                let pushes = plan_archive(archive.clone(), rule)?;
                if let Some(record) = bundle.base()? {
                    require_base_blobs(client, rule, &pushes, &record, path, dry_run).await?;
                }
                // Multi-platform images of a wrap: the index goes after its platform manifests.
                let index_pushes = plan_indexes(archive.clone(), rule);
                if dry_run {
                    let all: Vec<ImagePush> = pushes.iter().chain(&index_pushes).cloned().collect();
                    let actions = kantup_registry::plan(client, &all).await?;
                    for (push, action) in all.iter().zip(actions) {
                        count_action(summary, &action, false);
                        out.images.push(ImageResult {
                            source: push.source_name.clone(),
                            target: push.target_name(client.host()),
                            digest: push.manifest_digest.clone(),
                            action,
                            error: None,
                        });
                    }
                } else {
                    let mut report = self.push(client, &pushes, &chart_name).await;
                    if !index_pushes.is_empty() && report.images.iter().all(|i| i.error.is_none()) {
                        let indexes =
                            push_images(client, &index_pushes, self.push_options, None).await;
                        report.images.extend(indexes.images);
                    }
                    summary.blobs_uploaded += report.blobs_uploaded;
                    summary.blobs_mounted += report.blobs_mounted;
                    summary.blobs_skipped += report.blobs_skipped;
                    summary.bytes_uploaded += report.bytes_uploaded;
                    summary.blobs_resumed += report.blobs_resumed;
                    summary.bytes_resumed += report.bytes_resumed;
                    for image in &report.images {
                        count_action(summary, &image.action, image.error.is_some());
                    }
                    out.images = report.images;
                }
            }
            (ImageTarget::Layout(dir), Some(archive)) => {
                let missing: Vec<String> = kantup_bundle::archive::oci_layout::missing_blobs(
                    dir,
                    &archive.omitted_blobs(),
                )
                .iter()
                .map(ToString::to_string)
                .collect();
                if !missing.is_empty() {
                    return Err(SyncError::BaseNotInLayout {
                        bundle: path.to_path_buf(),
                        layout: dir.clone(),
                        missing,
                    });
                }
                let all: Vec<_> = archive.images().iter().collect();
                // What the layout already holds is reported `skip` and not written again.
                let plan = kantup_bundle::archive::oci_layout::plan_images(dir, &all)?;
                let mut images = Vec::new();
                for (image, planned) in all.iter().zip(plan) {
                    let action = match planned {
                        LayoutAction::Present => ImageAction::Skip,
                        LayoutAction::Add => ImageAction::Push,
                        LayoutAction::Replace { previous } => ImageAction::Overwrite { previous },
                    };
                    if action != ImageAction::Skip {
                        images.push(*image);
                    }
                    count_action(summary, &action, false);
                    out.images.push(ImageResult {
                        source: image.display_name(),
                        target: format!("oci-layout:{}", dir.display()),
                        digest: image.manifest_digest.to_string(),
                        action,
                        error: None,
                    });
                }
                if !dry_run && !images.is_empty() {
                    let total: u64 = images.iter().map(|i| i.total_size()).sum();
                    self.progress.start(&format!("{chart_name} images"), total);
                    let written = kantup_bundle::archive::oci_layout::write_images(
                        dir,
                        archive,
                        &images,
                        |n| self.progress.advance(n),
                    );
                    self.progress.finish();
                    let report = written?;
                    summary.blobs_uploaded += report.blobs_written as u64;
                    summary.blobs_skipped += report.blobs_present as u64;
                    summary.bytes_uploaded += report.bytes_written;
                }
            }
        }

        // 2. Chart.
        let (Some(chart_target), Some(packaged)) = (self.chart_target, packaged) else {
            return Ok(out);
        };
        let failed_images = out.images.iter().filter(|i| i.error.is_some()).count();
        if failed_images > 0 {
            // A chart whose images are not all in place would deploy broken references.
            summary.charts_failed += 1;
            out.chart_error = Some(format!(
                "not uploaded: {failed_images} of its image(s) failed"
            ));
            return Ok(out);
        }
        let force = self.options.force;
        let result = if dry_run {
            chart_target
                .plan(&packaged, force)
                .await
                .map(|action| ChartResult {
                    chart: chart_name.clone(),
                    location: chart_target.location(&packaged),
                    digest: packaged.digest(),
                    action,
                })
        } else {
            chart_target.upload(&packaged, force).await
        };
        match result {
            Ok(r) => {
                match r.action {
                    ChartAction::Skip => summary.charts_skipped += 1,
                    _ => summary.charts_uploaded += 1,
                }
                out.chart_upload = Some(r);
            }
            Err(e) => {
                summary.charts_failed += 1;
                out.chart_error = Some(format!("{e}"));
            }
        }
        Ok(out)
    }

    /// Pushes the images, reporting the bytes of every distinct blob as progress.
    async fn push(
        &self,
        client: &RegistryClient,
        pushes: &[ImagePush],
        label: &str,
    ) -> kantup_registry::PushReport {
        let mut seen = std::collections::HashSet::new();
        let total: u64 = pushes
            .iter()
            .flat_map(|p| p.blobs.iter())
            .filter(|b| seen.insert(b.digest.clone()))
            .map(|b| b.size)
            .sum();
        self.progress.start(&format!("{label} images"), total);
        let progress = self.progress.clone();
        let observer: kantup_registry::Observer = Arc::new(move |event| {
            if let PushEvent::Bytes(n) = event {
                progress.advance(n);
            }
        });
        let report = push_images(client, pushes, self.push_options, Some(observer)).await;
        self.progress.finish();
        report
    }
}

/// A differential bundle is pushed only when the target registry already holds every layer
/// it leaves out (mounting from the base's repositories where needed); checked before any
/// push, so a refusal changes nothing.
async fn require_base_blobs(
    client: &RegistryClient,
    rule: &RelocationRule,
    pushes: &[ImagePush],
    record: &kantup_bundle::differential::BaseRecord,
    path: &Path,
    dry_run: bool,
) -> Result<(), SyncError> {
    use kantup_registry::base_blobs::{base_repositories, ensure_base_blobs};
    let omitted: std::collections::HashSet<String> = record
        .omitted
        .iter()
        .map(|b| b.digest.to_string())
        .collect();
    let from = base_repositories(record, rule);
    let check = ensure_base_blobs(client, pushes, &omitted, &from, !dry_run).await?;
    if check.missing.is_empty() {
        tracing::info!(
            "{}: differential bundle; {} left-out layer(s) already in {}, {} mounted from the base's repositories",
            path.display(),
            check.present,
            client.host(),
            check.mounted
        );
        return Ok(());
    }
    Err(SyncError::BaseNotInRegistry {
        bundle: path.to_path_buf(),
        base: record.base.to_string(),
        host: client.host().to_string(),
        missing: check
            .missing
            .iter()
            .map(|m| format!("{} needs {} in {}", m.image, m.digest, m.repository))
            .collect(),
    })
}

fn count_action(summary: &mut SyncReport, action: &ImageAction, failed: bool) {
    if failed {
        summary.images_failed += 1;
        return;
    }
    match action {
        ImageAction::Push => summary.images_pushed += 1,
        ImageAction::Skip => summary.images_skipped += 1,
        ImageAction::Overwrite { .. } => summary.images_overwritten += 1,
    }
}

/// Rewrites the chart's image values to the relocated names, in memory: through the bundle's
/// hints, or, without hints, wherever the values name an image the chart lists (`Images.lock`,
/// annotations, or the chart rendered by `helm`). Hints without a tag are pinned to the
/// digest of the bundle's image. Images no value names are warned about.
fn relocate_values(
    bundle: &Bundle,
    chart: &mut Chart,
    rule: &RelocationRule,
    archive: Option<&ImageArchive>,
    helm: Option<&Path>,
) -> Result<crate::ops::images::ValuesRelocation, SyncError> {
    let mut digests = HashMap::new();
    for image in archive.map(|a| a.images()).unwrap_or_default() {
        for reference in image.references.iter().filter_map(|r| r.reference()) {
            digests.insert(reference.clone(), image.manifest_digest);
        }
    }
    let relocation =
        crate::ops::images::relocate_values(bundle, chart, &rule.into(), &digests, helm)?;
    for image in &relocation.report.images {
        tracing::info!("values: {} -> {}", image.original, image.relocated);
    }
    for image in &relocation.unmapped {
        tracing::warn!(
            "{}: no value names {image}; it keeps its original registry",
            chart.name()
        );
    }
    Ok(relocation)
}
