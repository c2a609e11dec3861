//! A new bundle from a chart, a hints file and an image archive: a relok8s intermediate bundle
//! (complete, or differential against an older bundle) or a wrapped chart.

use std::path::{Path, PathBuf};

use kantup_bundle::archive::{Compression, ImageArchive};
use kantup_bundle::create::{CreateReport, LostAttachments};

use super::BundleOpError;
use crate::ops::progress::Progress;

/// The kind of bundle to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BundleFormat {
    /// relok8s's intermediate bundle: `hints.yaml`, `original-chart/`, `images.tar`.
    #[default]
    Relok8s,
    /// Bitnami's wrapped chart (`*.wrap.tgz`, as `helm dt wrap` writes it).
    Wrap,
}

/// What [`create`] writes.
#[derive(Debug, Clone)]
pub struct CreateBundleOptions {
    /// The bundle file to write.
    pub output: PathBuf,
    /// The chart: a directory or a `.tgz`.
    pub chart: PathBuf,
    /// The relok8s hints file; without it the bundle carries an empty list and its images are
    /// found through the chart's `Images.lock` or `Chart.yaml` annotations. Not used by
    /// [`BundleFormat::Wrap`].
    pub hints: Option<PathBuf>,
    /// relok8s bundle or wrapped chart.
    pub format: BundleFormat,
    /// The image archive (docker-archive or OCI layout, tar or directory); `None` for a chart
    /// only.
    pub images: Option<PathBuf>,
    /// The outer compression; `None` chooses from the output's name ([`compression_for`]).
    pub compression: Option<Compression>,
    /// Leave out the layers this older bundle holds (a differential relok8s bundle).
    pub base: Option<PathBuf>,
    /// How the base bundle is opened.
    pub open: kantup_bundle::OpenOptions,
    /// Signatures, attestations and SBOMs the bundle cannot keep (held as images by a
    /// docker-archive): refused, or left out and listed in [`CreateReport::dropped`].
    pub lost_attachments: LostAttachments,
}

/// The compression a bundle named `output` gets when none is asked for: `.zst`/`.zstd` ->
/// zstd, `.gz`/`.tgz` -> gzip, else a plain tar.
pub fn compression_for(output: &Path) -> Compression {
    let name = output.to_string_lossy();
    if name.ends_with(".zst") || name.ends_with(".zstd") {
        Compression::Zstd
    } else if name.ends_with(".gz") || name.ends_with(".tgz") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Writes the bundle. Progress counts an estimate of the bytes to move (the images, read and
/// written). The report names the images the chart needs that the bundle does not carry (a
/// warning here, a refusal at `sync` and `upgrade`).
pub fn create(
    options: &CreateBundleOptions,
    progress: &dyn Progress,
) -> Result<CreateReport, BundleOpError> {
    let total = match &options.images {
        Some(p) => {
            ImageArchive::open(p)?
                .images()
                .iter()
                .map(|i| i.total_size())
                .sum::<u64>()
                * 2
        }
        None => 0,
    };
    progress.start("creating bundle", total);
    let result = write(options, progress);
    progress.finish();
    result
}

fn write(
    options: &CreateBundleOptions,
    progress: &dyn Progress,
) -> Result<CreateReport, BundleOpError> {
    let report = match options.format {
        BundleFormat::Wrap => {
            if options.base.is_some() {
                return Err(BundleOpError::WrapWithBase);
            }
            kantup_bundle::wrap::create_wrap_carrying(
                &kantup_bundle::wrap::WrapOptions {
                    chart: options.chart.clone(),
                    images: options.images.clone(),
                    output: options.output.clone(),
                },
                options.lost_attachments,
                &mut |n| progress.advance(n),
            )?
        }
        BundleFormat::Relok8s => {
            // Without hints, an empty list: the images are then found as a chart without
            // hints's are.
            let empty_hints;
            let hints = match &options.hints {
                Some(h) => h.clone(),
                None => {
                    empty_hints = tempfile::NamedTempFile::new().map_err(|source| {
                        BundleOpError::Scratch {
                            action: "creating an empty hints file",
                            source,
                        }
                    })?;
                    std::fs::write(empty_hints.path(), "[]\n").map_err(|source| {
                        BundleOpError::Scratch {
                            action: "writing an empty hints file",
                            source,
                        }
                    })?;
                    empty_hints.path().to_path_buf()
                }
            };
            kantup_bundle::create::create_carrying(
                &kantup_bundle::create::CreateOptions {
                    chart: options.chart.clone(),
                    hints,
                    images: options.images.clone(),
                    output: options.output.clone(),
                    compression: options
                        .compression
                        .unwrap_or_else(|| compression_for(&options.output)),
                    base: options.base.clone(),
                },
                &options.open,
                options.lost_attachments,
                &mut |n| progress.advance(n),
            )?
        }
    };
    Ok(report)
}
