//! What a runtime is fed: the input file itself (an image archive), a bundle's `images.tar`
//! streamed out of it, or a wrapped chart's images spooled into one archive.

use std::path::{Path, PathBuf};

use kantup_bundle::archive::{ImageArchive, ImageName};
use kantup_bundle::{Bundle, IMAGES_MEMBER};

use super::LoadError;

/// What to feed the runtime: the whole input file, or the bundle's `images.tar` member.
pub(super) enum Feed {
    File(PathBuf),
    BundleMember {
        bundle: Bundle,
        size: u64,
    },
    /// A wrapped chart's images, written as one archive the runtimes load (a wrap keeps one OCI
    /// layout per image, which no runtime CLI reads).
    Spooled(tempfile::NamedTempFile),
}

/// Opens a bundle or an image archive; returns what to feed the runtime and the image names.
/// A bundle (not a bare image archive) must carry every image its chart needs unless
/// `allow_missing_images`, and name them validly.
pub(super) fn open_input(
    path: &Path,
    open: &kantup_bundle::OpenOptions,
    image_keys: &[std::path::PathBuf],
    allow_missing_images: bool,
) -> Result<(Feed, Vec<ImageName>), LoadError> {
    let open_error = |source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    };
    let bundle = Bundle::open_with(path, open).map_err(open_error)?;
    // Signed by one of the keys (when given) before anything else is asked of the bundle.
    crate::ops::image_keys::require_signed(&bundle, image_keys)?;
    require_bundle_images(&bundle, path, allow_missing_images)?;
    if let Some(record) = bundle.base().map_err(open_error)? {
        return Err(LoadError::Differential {
            path: path.to_path_buf(),
            base: record.base.to_string(),
            omitted: record.omitted.len(),
        });
    }
    if let kantup_bundle::Layout::Wrap { .. } = bundle.layout() {
        let archive = bundle
            .image_archive()
            .map_err(open_error)?
            .ok_or_else(|| LoadError::NoImages(path.to_path_buf()))?;
        if let Some(index) = archive.indexes().first() {
            return Err(LoadError::MultiPlatform {
                path: path.to_path_buf(),
                image: index
                    .references
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| index.digest.to_string()),
            });
        }
        let images: Vec<_> = archive.images().iter().collect();
        let spool = tempfile::Builder::new()
            .prefix(".kantup-load-")
            .suffix(".tar")
            .tempfile()
            .map_err(|e| {
                open_error(kantup_bundle::BundleError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })
            })?;
        let out = std::io::BufWriter::new(spool.reopen().map_err(|e| {
            open_error(kantup_bundle::BundleError::Io {
                path: spool.path().to_path_buf(),
                source: e,
            })
        })?);
        let out =
            kantup_bundle::archive::oci_layout::write_archive_tar(out, &archive, &images, |_| {})
                .map_err(open_error)?;
        out.into_inner().map_err(|e| {
            open_error(kantup_bundle::BundleError::Io {
                path: spool.path().to_path_buf(),
                source: e.into_error(),
            })
        })?;
        return Ok((Feed::Spooled(spool), image_names(&archive)));
    }
    if bundle.has_member(IMAGES_MEMBER) {
        let archive = bundle
            .image_archive()
            .map_err(open_error)?
            .ok_or_else(|| LoadError::NotAnArchive(path.to_path_buf()))?;
        let names = image_names(&archive);
        let size = bundle
            .members()
            .into_iter()
            .find(|m| m.name == IMAGES_MEMBER)
            .map(|m| m.size)
            .unwrap_or(0);
        return Ok((Feed::BundleMember { bundle, size }, names));
    }
    if bundle.has_member("manifest.json") || bundle.has_member("index.json") {
        let archive = ImageArchive::open(path).map_err(open_error)?;
        return Ok((Feed::File(path.to_owned()), image_names(&archive)));
    }
    Err(LoadError::NotAnArchive(path.to_path_buf()))
}

fn image_names(archive: &ImageArchive) -> Vec<ImageName> {
    archive
        .images()
        .iter()
        .flat_map(|image| image.references.iter().cloned())
        .collect()
}

/// A bundle (not a bare image archive) must carry every image its chart needs, unless
/// `allow_missing_images`, and name them validly: checked before any runtime or node is
/// touched.
pub(super) fn require_bundle_images(
    bundle: &Bundle,
    path: &Path,
    allow_missing_images: bool,
) -> Result<(), LoadError> {
    if !bundle.is_bundle() {
        return Ok(());
    }
    bundle
        .check_images()
        .and_then(|check| check.require(&path.display().to_string(), allow_missing_images))
        .map_err(|source| LoadError::Images {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
}
