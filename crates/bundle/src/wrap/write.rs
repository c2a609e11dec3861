//! Writing a wrap (`helm dt wrap`'s layout): the chart with its `Images.lock`, and one
//! gzip-compressed OCI layout per platform manifest, appearing only when complete.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::archive::attachment::{Attachment, Link};
use crate::archive::oci::{REF_NAME, blob_path};
use crate::archive::oci_layout::{OCI_LAYOUT, check_copied_blob};
use crate::archive::{BlobInfo, Image, ImageArchive, media_types};
use crate::atomic::{Access, AtomicFile};
use crate::chart::Chart;
use crate::create::{LostAttachments, carried, describe};
use crate::digest::{Digest, DigestReader};
use crate::error::BundleError;
use crate::images_lock::IMAGES_LOCK_FILE;
use crate::write::CreateReport;
use crate::write::deterministic_header;

use super::artifacts::{Placement, WRAP_ARTIFACTS_IMAGES_DIR, place};
use super::{LAYOUT_SUFFIX, WRAP_CHART_DIR, WRAP_IMAGES_DIR, lock_for};

/// Inputs of [`create_wrap`].
#[derive(Debug, Clone)]
pub struct WrapOptions {
    /// The chart: a directory or a `.tgz`.
    pub chart: PathBuf,
    /// The images (any archive [`ImageArchive::open`] reads). Each must be named with the
    /// reference the chart's `Images.lock` or annotations list; `None` writes a wrap without
    /// images (as `helm dt wrap --skip-pull-images` does).
    pub images: Option<PathBuf>,
    /// The `.wrap.tgz` to write.
    pub output: PathBuf,
}

/// Writes a wrapped chart in the `helm dt wrap` layout: the chart under
/// `<name>-<version>/chart/` with its `Images.lock` (the chart's own, else made by
/// [`lock_for`]), and each platform manifest of the lock as an OCI layout
/// `<name>-<version>/images/<hex>.layout/`, gzip-compressed. Blobs are hashed as they are
/// copied; the output appears only when complete, and the same inputs give the same bytes.
///
/// ```no_run
/// use kantup_bundle::wrap::{create_wrap, WrapOptions};
/// let report = create_wrap(&WrapOptions {
///     chart: "web".into(),
///     images: Some("images.tar".into()),
///     output: "web-1.0.0.wrap.tgz".into(),
/// }, &mut |_| {})?;
/// println!("{} images, {} bytes", report.images, report.size);
/// # Ok::<(), kantup_bundle::BundleError>(())
/// ```
pub fn create_wrap(
    options: &WrapOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<CreateReport, BundleError> {
    create_wrap_carrying(options, LostAttachments::Refuse, progress)
}

/// [`create_wrap`], doing with signatures, attestations and SBOMs the wrap cannot keep what
/// `lost` says (see [`carried`]).
pub fn create_wrap_carrying(
    options: &WrapOptions,
    lost: LostAttachments,
    progress: &mut dyn FnMut(u64),
) -> Result<CreateReport, BundleError> {
    let chart = if options.chart.is_dir() {
        Chart::load_dir(&options.chart)?
    } else {
        Chart::load_tgz(&options.chart)?
    };
    let archive = options
        .images
        .as_ref()
        .map(ImageArchive::open)
        .transpose()?;
    let carry = archive.as_ref().map(|a| carried(a, lost)).transpose()?;
    // Fixed, like every other timestamp kantup writes: same inputs, same bytes.
    let lock = lock_for(&chart, archive.as_ref(), "2000-01-01T00:00:00Z")?;
    let mut dropped = carry
        .as_ref()
        .map(|c| c.dropped.clone())
        .unwrap_or_default();
    let placement = match (&archive, &carry) {
        (Some(a), Some(c)) => place(&lock, a, &c.attachments),
        _ => Placement::default(),
    };
    if !placement.unplaced.is_empty() {
        let lost_here: Vec<String> = placement
            .unplaced
            .iter()
            .filter_map(|a| archive.as_ref().map(|archive| describe(archive, a)))
            .collect();
        match lost {
            LostAttachments::Refuse => {
                return Err(BundleError::AttachmentsNotKept {
                    archive: archive.as_ref().map(|a| a.label()).unwrap_or_default(),
                    reason: format!(
                        "a wrap keeps signatures beside the images its {IMAGES_LOCK_FILE} lists, and the chart's {IMAGES_LOCK_FILE} lists none they belong to"
                    ),
                    lost: lost_here,
                });
            }
            LostAttachments::Drop => dropped.extend(lost_here),
        }
    }
    let root = format!("{}-{}", chart.name(), chart.metadata.version);
    let out = AtomicFile::create(&options.output, Access::Normal)?;
    let label = options.output.display().to_string();
    let io_err = |e: io::Error| BundleError::io(&label, e);
    let gz = flate2::write::GzEncoder::new(
        io::BufWriter::new(out.file()),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut files = chart.files.clone();
    files.insert(IMAGES_LOCK_FILE.to_string(), lock.to_yaml().into_bytes());
    for (name, bytes) in &files {
        let mut h = deterministic_header(bytes.len() as u64, 0o644);
        tar.append_data(
            &mut h,
            format!("{root}/{WRAP_CHART_DIR}/{name}"),
            bytes.as_slice(),
        )
        .map_err(io_err)?;
    }
    let mut images = 0usize;
    let mut attachments = 0usize;
    let to_bundle = |e| match e {
        WriteError::Io(e) => io_err(e),
        WriteError::Bundle(e) => e,
    };
    if let Some(archive) = &archive {
        let mut written: Vec<Digest> = Vec::new();
        for entry in &lock.images {
            for d in &entry.digests {
                if written.contains(&d.digest) {
                    continue;
                }
                let image = archive
                    .images()
                    .iter()
                    .find(|i| i.manifest_digest == d.digest)
                    .expect("lock_for checked every digest");
                write_layout(&mut tar, &root, archive, image, progress).map_err(to_bundle)?;
                written.push(d.digest);
                images += 1;
            }
        }
        for (name, index) in &placement.indexes {
            let mut h = deterministic_header(index.manifest.len() as u64, 0o644);
            tar.append_data(
                &mut h,
                format!("{root}/{WRAP_ARTIFACTS_IMAGES_DIR}/{name}"),
                index.manifest.as_slice(),
            )
            .map_err(io_err)?;
        }
        for (dir, carried) in &placement.layouts {
            let dir = format!("{root}/{WRAP_ARTIFACTS_IMAGES_DIR}/{dir}");
            write_attachment_layout(&mut tar, &dir, archive, carried).map_err(to_bundle)?;
            attachments += carried.len();
        }
    }
    let gz = tar.into_inner().map_err(io_err)?;
    gz.finish().map_err(io_err)?.flush().map_err(io_err)?;
    let (digest, size) = {
        let file = fs::File::open(out.temp_path()).map_err(io_err)?;
        let mut r = DigestReader::new(file);
        io::copy(&mut r, &mut io::sink()).map_err(io_err)?;
        r.finish()
    };
    out.commit()?;
    Ok(CreateReport {
        output: options.output.clone(),
        chart: chart.name().to_string(),
        hints: 0,
        images,
        attachments,
        dropped,
        // A wrap names its images by the Images.lock that `lock_for` built from the archive (or
        // checked against it): none it needs can be missing.
        missing_images: Vec::new(),
        size,
        digest,
        base: None,
    })
}

enum WriteError {
    Io(io::Error),
    Bundle(BundleError),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

impl From<BundleError> for WriteError {
    fn from(e: BundleError) -> Self {
        WriteError::Bundle(e)
    }
}

/// An OCI layout of attachments at `dir` (see [`super::artifacts`]): `oci-layout`,
/// `index.json` listing each manifest (a cosign-tagged one named by its tag, as
/// `sha256-<hex>.sig`), the manifests byte for byte and their blobs, hashed as they are copied.
fn write_attachment_layout<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &str,
    archive: &ImageArchive,
    attachments: &[&Attachment],
) -> Result<(), WriteError> {
    let entries: Vec<serde_json::Value> = attachments
        .iter()
        .map(|a| {
            let mut d = a.descriptor();
            if let Link::Tag(tag) = &a.link {
                d["annotations"] = json!({ REF_NAME: tag });
            }
            d
        })
        .collect();
    write_layout_head(tar, dir, entries)?;
    let mut seen: Vec<Digest> = Vec::new();
    for a in attachments {
        if !seen.contains(&a.digest) {
            seen.push(a.digest);
            let mut h = deterministic_header(a.manifest.len() as u64, 0o644);
            tar.append_data(
                &mut h,
                format!("{dir}/{}", blob_path(&a.digest)),
                a.manifest.as_slice(),
            )?;
        }
        for blob in &a.blobs {
            if seen.contains(&blob.digest) {
                continue;
            }
            seen.push(blob.digest);
            copy_blob(tar, dir, archive, blob, || a.describe())?;
        }
    }
    Ok(())
}

/// `<root>/images/<hex>.layout/`: `oci-layout`, `index.json` naming the one manifest (as crane
/// writes it, without a name), the manifest, config and layers.
fn write_layout<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &str,
    archive: &ImageArchive,
    image: &Image,
    progress: &mut dyn FnMut(u64),
) -> Result<(), WriteError> {
    let dir = format!(
        "{root}/{WRAP_IMAGES_DIR}/{}{LAYOUT_SUFFIX}",
        image.manifest_digest.hex()
    );
    write_layout_head(
        tar,
        &dir,
        vec![json!({
            "mediaType": image.manifest_media_type,
            "size": image.manifest.len(),
            "digest": image.manifest_digest.to_string(),
        })],
    )?;
    let mut h = deterministic_header(image.manifest.len() as u64, 0o644);
    tar.append_data(
        &mut h,
        format!("{dir}/{}", blob_path(&image.manifest_digest)),
        image.manifest.as_slice(),
    )?;
    let mut seen = Vec::new();
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        if seen.contains(&blob.digest) {
            continue;
        }
        seen.push(blob.digest);
        let size = copy_blob(tar, &dir, archive, blob, || {
            format!("image {}", image.display_name())
        })?;
        progress(size);
    }
    Ok(())
}

/// `<dir>/oci-layout` and `<dir>/index.json` listing `manifests` (descriptors).
fn write_layout_head<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &str,
    manifests: Vec<serde_json::Value>,
) -> Result<(), WriteError> {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("an index serializes");
    let small: [(&str, &[u8]); 2] = [("oci-layout", OCI_LAYOUT), ("index.json", &index)];
    for (name, bytes) in small {
        let mut h = deterministic_header(bytes.len() as u64, 0o644);
        tar.append_data(&mut h, format!("{dir}/{name}"), bytes)?;
    }
    Ok(())
}

/// Copies `blob` from `archive` to `<dir>/blobs/sha256/<hex>`, hashing it on the way: bytes
/// that are not what the manifest names are refused (`whose` says whose blob, for the error).
/// Returns its size.
fn copy_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &str,
    archive: &ImageArchive,
    blob: &BlobInfo,
    whose: impl Fn() -> String,
) -> Result<u64, WriteError> {
    let reader = archive.open_blob(&blob.digest)?;
    let mut r = DigestReader::new(reader.take(blob.size));
    let mut h = deterministic_header(blob.size, 0o644);
    tar.append_data(&mut h, format!("{dir}/{}", blob_path(&blob.digest)), &mut r)?;
    let (digest, size) = r.finish();
    check_copied_blob(archive, blob, digest, size, whose)?;
    Ok(size)
}
