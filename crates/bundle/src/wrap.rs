//! Bitnami wrapped charts: what `helm dt wrap` (vmware-labs/distribution-tooling-for-helm)
//! writes and `helm dt unwrap` reads, a `<chart>-<version>.wrap.tgz`:
//!
//! ```text
//! <chart>-<version>/chart/                  the chart, as it was wrapped
//! <chart>-<version>/chart/Images.lock       every image, one digest per platform
//! <chart>-<version>/images/<hex>.layout/    one OCI image layout per platform manifest,
//!                                           named by the manifest digest's hex
//! <chart>-<version>/artifacts/...           signatures and metadata (optional, not read)
//! ```
//!
//! [`Bundle::open`](crate::Bundle::open) recognizes the layout, so everything that reads a
//! bundle reads a wrap: [`Bundle::chart`](crate::Bundle::chart) is `chart/`,
//! [`Bundle::image_archive`](crate::Bundle::image_archive) is every layout of `images/` as one
//! archive, each manifest named by the `Images.lock` entry that lists its digest. An image
//! with several platforms is also given an OCI image index (listing its platform manifests in
//! lock order), named by the lock's reference; each platform manifest is then named by digest.
//! [`create_wrap`] writes the same layout.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::archive::oci::blob_path;
use crate::archive::{
    ArchiveFormat, Image, ImageArchive, ImageIndex, ImageName, Store, media_types,
};
use crate::bundle::Layout;
use crate::chart::Chart;
use crate::create::CreateReport;
use crate::digest::{Digest, DigestReader};
use crate::error::BundleError;
use crate::images_lock::{
    IMAGES_LOCK_API_VERSION, IMAGES_LOCK_FILE, IMAGES_LOCK_KIND, ImagesLock, LockChart,
    LockedDigest, LockedImage,
};
use crate::reference::Reference;
use crate::source::TarIndex;
use crate::write::deterministic_header;

/// The chart directory inside a wrap's top directory.
pub const WRAP_CHART_DIR: &str = "chart";
/// The images directory inside a wrap's top directory.
pub const WRAP_IMAGES_DIR: &str = "images";
/// The suffix of each image's OCI layout directory.
pub const LAYOUT_SUFFIX: &str = ".layout";

/// A wrap is a tar whose members all sit under one top directory holding `chart/Chart.yaml`,
/// and which has none of the relok8s members.
pub(crate) fn detect(index: &TarIndex) -> Layout {
    if index.get(crate::HINTS_MEMBER).is_some()
        || index.get(crate::IMAGES_MEMBER).is_some()
        || index
            .entries
            .iter()
            .any(|e| e.name.starts_with(&format!("{}/", crate::CHART_DIR)))
    {
        return Layout::Relok8s;
    }
    for e in &index.entries {
        let parts: Vec<&str> = e.name.split('/').collect();
        if let [root, WRAP_CHART_DIR, "Chart.yaml"] = parts.as_slice() {
            return Layout::Wrap {
                root: (*root).to_string(),
            };
        }
    }
    Layout::Relok8s
}

/// The layouts under `<root>/images/`, sorted.
fn layout_dirs(index: &TarIndex, root: &str) -> Vec<String> {
    let prefix = format!("{root}/{WRAP_IMAGES_DIR}/");
    let mut dirs: Vec<String> = index
        .entries
        .iter()
        .filter_map(|e| {
            let rest = e.name.strip_prefix(&prefix)?;
            let dir = rest.split('/').next()?;
            dir.ends_with(LAYOUT_SUFFIX)
                .then(|| format!("{prefix}{dir}"))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every image layout of the wrap as one archive, named through `lock`; `None` for a wrap
/// without images (`helm dt wrap --skip-pull-images`).
pub(crate) fn image_archive(
    index: &TarIndex,
    root: &str,
    lock: Option<&ImagesLock>,
) -> Result<Option<ImageArchive>, BundleError> {
    let dirs = layout_dirs(index, root);
    if dirs.is_empty() {
        return Ok(None);
    }
    let label = format!("{}!{root}/{WRAP_IMAGES_DIR}", index.label);
    let mut images: Vec<Image> = Vec::new();
    let mut blobs: HashMap<Digest, String> = HashMap::new();
    for dir in &dirs {
        let sub = index.subtree(dir, format!("{}!{dir}", index.label));
        let layout = ImageArchive::from_store(Store::Tar(sub))?;
        let hex = dir
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(LAYOUT_SUFFIX))
            .unwrap_or_default();
        if !layout.images.iter().any(|i| i.manifest_digest.hex() == hex) {
            return Err(BundleError::archive(
                format!("{}!{dir}", index.label),
                format!(
                    "the layout is named for manifest sha256:{hex} but holds {}",
                    layout
                        .images
                        .iter()
                        .map(|i| i.manifest_digest.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (digest, member) in &layout.blobs {
            blobs.insert(*digest, format!("{dir}/{member}"));
        }
        for mut image in layout.images {
            // crane names nothing in these layouts; names come from the lock.
            image.references.clear();
            if !images
                .iter()
                .any(|i| i.manifest_digest == image.manifest_digest)
            {
                images.push(image);
            }
        }
    }
    let mut indexes = Vec::new();
    if let Some(lock) = lock {
        // Lock order, not the layouts' (digest) order; images the lock does not list last.
        let rank = |d: &Digest| {
            lock.images
                .iter()
                .flat_map(|e| &e.digests)
                .position(|l| &l.digest == d)
                .unwrap_or(usize::MAX)
        };
        images.sort_by_key(|i| rank(&i.manifest_digest));
        let lock_path = format!("{}!{root}/{WRAP_CHART_DIR}/{IMAGES_LOCK_FILE}", index.label);
        for entry in &lock.images {
            let reference = entry.reference().expect("checked when the lock was parsed");
            let mut children = Vec::new();
            for d in &entry.digests {
                let Some(pos) = images.iter().position(|i| i.manifest_digest == d.digest) else {
                    return Err(BundleError::archive(
                        &lock_path,
                        format!(
                            "image {:?} ({}) for {}: the wrap has no {root}/{WRAP_IMAGES_DIR}/{}{LAYOUT_SUFFIX}",
                            entry.name,
                            entry.image,
                            d.arch,
                            d.digest.hex()
                        ),
                    ));
                };
                children.push(pos);
            }
            if let [only] = children.as_slice() {
                push_name(&mut images[*only], ImageName::Parsed(reference));
                continue;
            }
            for (&pos, d) in children.iter().zip(&entry.digests) {
                let pinned = Reference {
                    tag: None,
                    digest: Some(d.digest),
                    ..reference.clone()
                };
                push_name(&mut images[pos], ImageName::Parsed(pinned));
            }
            let manifest = platform_index(&images, &children, &entry.digests);
            indexes.push(ImageIndex {
                references: vec![ImageName::Parsed(reference)],
                digest: Digest::of(&manifest),
                manifest,
                media_type: media_types::OCI_INDEX.to_string(),
            });
        }
    }
    Ok(Some(ImageArchive {
        store: Store::Tar(index.relabeled(label)),
        format: ArchiveFormat::OciLayout,
        images,
        indexes,
        blobs,
        // A wrap always carries every blob.
        omitted: Default::default(),
    }))
}

fn push_name(image: &mut Image, name: ImageName) {
    if !image.references.contains(&name) {
        image.references.push(name);
    }
}

/// An OCI image index over the platform manifests `children` (positions in `images`), in lock
/// order, with each platform from the lock's `os/arch`.
fn platform_index(images: &[Image], children: &[usize], digests: &[LockedDigest]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = children
        .iter()
        .zip(digests)
        .map(|(&pos, d)| {
            let image = &images[pos];
            let mut parts = d.arch.splitn(3, '/');
            let os = parts.next().unwrap_or_default();
            let architecture = parts.next().unwrap_or_default();
            let mut platform = json!({"architecture": architecture, "os": os});
            if let Some(variant) = parts.next() {
                platform["variant"] = json!(variant);
            }
            json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest.to_string(),
                "size": image.manifest.len(),
                "platform": platform,
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("an index serializes")
}

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

/// The `Images.lock` for `chart` and the images of `archive`: the chart's own lock when it has
/// one (every digest must be in the archive), else one entry per image the chart's annotations
/// list (each must be in the archive, matched by reference) followed by the archive's other
/// named images. `generated_at` goes to `metadata.generatedAt`.
pub fn lock_for(
    chart: &Chart,
    archive: Option<&ImageArchive>,
    generated_at: &str,
) -> Result<ImagesLock, BundleError> {
    let images: &[Image] = archive.map(|a| a.images()).unwrap_or_default();
    let label = archive
        .map(|a| a.label())
        .unwrap_or_else(|| "no images".into());
    if let Some(lock) = crate::discovery::images_lock(chart)? {
        if archive.is_some() {
            for entry in &lock.images {
                for d in &entry.digests {
                    if !images.iter().any(|i| i.manifest_digest == d.digest) {
                        return Err(BundleError::archive(
                            &label,
                            format!(
                                "{}/{IMAGES_LOCK_FILE} lists {} ({}) {} for {}, which the images do not hold",
                                chart.name(),
                                entry.name,
                                entry.image,
                                d.digest,
                                d.arch
                            ),
                        ));
                    }
                }
            }
        }
        return Ok(lock);
    }
    let annotated = crate::discovery::from_annotations(chart)?;
    let mut entries: Vec<LockedImage> = Vec::new();
    let mut add = |name: String, chart_name: String, reference: &Reference, image: &Image| {
        let arch = image
            .platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_else(|| "linux/amd64".into());
        let image_text = reference.to_string();
        match entries.iter_mut().find(|e| e.image == image_text) {
            Some(e) if !e.digests.iter().any(|d| d.digest == image.manifest_digest) => {
                e.digests.push(LockedDigest {
                    digest: image.manifest_digest,
                    arch,
                })
            }
            Some(_) => {}
            None => entries.push(LockedImage {
                name,
                image: image_text,
                chart: chart_name,
                digests: vec![LockedDigest {
                    digest: image.manifest_digest,
                    arch,
                }],
            }),
        }
    };
    let named = |image: &Image, wanted: &Reference| {
        image
            .references
            .iter()
            .filter_map(ImageName::reference)
            .any(|r| r.name() == wanted.name() && r.tag == wanted.tag)
    };
    for want in &annotated {
        let found: Vec<&Image> = images
            .iter()
            .filter(|i| named(i, &want.reference))
            .collect();
        if found.is_empty() && archive.is_some() {
            return Err(BundleError::archive(
                &label,
                format!(
                    "chart {} lists image {} ({}) in its annotations, but the images do not hold it",
                    want.chart, want.name, want.reference
                ),
            ));
        }
        for image in found {
            add(
                want.name.clone(),
                want.chart.clone(),
                &want.reference,
                image,
            );
        }
    }
    for image in images {
        for reference in image.references.iter().filter_map(ImageName::reference) {
            let name = reference
                .repository
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            add(name, chart.name().to_string(), reference, image);
        }
    }
    Ok(ImagesLock {
        api_version: IMAGES_LOCK_API_VERSION.into(),
        kind: IMAGES_LOCK_KIND.into(),
        metadata: BTreeMap::from([
            ("generatedAt".to_string(), generated_at.to_string()),
            ("generatedBy".to_string(), "kantup".to_string()),
        ]),
        chart: LockChart {
            name: chart.name().to_string(),
            version: chart.metadata.version.to_string(),
            app_version: chart.metadata.app_version.clone().unwrap_or_default(),
        },
        images: entries,
    })
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
    // Fixed, like every other timestamp kantup writes: same inputs, same bytes.
    let lock = lock_for(&chart, archive.as_ref(), "2000-01-01T00:00:00Z")?;
    let root = format!("{}-{}", chart.name(), chart.metadata.version);
    let parent = match options.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let out = tempfile::Builder::new()
        .prefix(".kantup-wrap-")
        .tempfile_in(&parent)
        .map_err(|e| BundleError::io(&parent, e))?;
    let label = options.output.display().to_string();
    let io_err = |e: io::Error| BundleError::io(&label, e);
    let gz = flate2::write::GzEncoder::new(
        io::BufWriter::new(out.as_file()),
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
                write_layout(&mut tar, &root, archive, image, progress).map_err(|e| match e {
                    WriteError::Io(e) => io_err(e),
                    WriteError::Bundle(e) => e,
                })?;
                written.push(d.digest);
                images += 1;
            }
        }
    }
    let gz = tar.into_inner().map_err(io_err)?;
    gz.finish().map_err(io_err)?.flush().map_err(io_err)?;
    let (digest, size) = {
        let file = fs::File::open(out.path()).map_err(io_err)?;
        let mut r = DigestReader::new(file);
        io::copy(&mut r, &mut io::sink()).map_err(io_err)?;
        r.finish()
    };
    out.persist(&options.output)
        .map_err(|e| BundleError::io(&options.output, e.error))?;
    Ok(CreateReport {
        output: options.output.clone(),
        chart: chart.name().to_string(),
        hints: 0,
        images,
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
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{
            "mediaType": image.manifest_media_type,
            "size": image.manifest.len(),
            "digest": image.manifest_digest.to_string(),
        }],
    }))
    .expect("an index serializes");
    let small: [(&str, &[u8]); 2] = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", &index),
    ];
    for (name, bytes) in small {
        let mut h = deterministic_header(bytes.len() as u64, 0o644);
        tar.append_data(&mut h, format!("{dir}/{name}"), bytes)?;
    }
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
        let reader = archive.open_blob(&blob.digest)?;
        let mut r = DigestReader::new(reader.take(blob.size));
        let mut h = deterministic_header(blob.size, 0o644);
        tar.append_data(&mut h, format!("{dir}/{}", blob_path(&blob.digest)), &mut r)?;
        let (digest, size) = r.finish();
        if digest != blob.digest || size != blob.size {
            return Err(BundleError::DigestMismatch {
                what: format!(
                    "{}: blob of image {}",
                    archive.label(),
                    image.display_name()
                ),
                expected: blob.digest,
                actual: digest,
            }
            .into());
        }
        progress(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_index_lists_children_in_lock_order_with_platforms() {
        let image = |byte: u8| Image {
            references: Vec::new(),
            manifest: vec![byte],
            manifest_media_type: media_types::OCI_MANIFEST.into(),
            manifest_digest: Digest::of(&[byte]),
            config: crate::archive::BlobInfo {
                digest: Digest::of(b"c"),
                size: 1,
                media_type: media_types::OCI_CONFIG.into(),
                diff_id: None,
                compression: crate::archive::Compression::None,
            },
            layers: Vec::new(),
            platform: None,
        };
        let images = vec![image(1), image(2)];
        let digests = vec![
            LockedDigest {
                digest: images[1].manifest_digest,
                arch: "linux/arm64/v8".into(),
            },
            LockedDigest {
                digest: images[0].manifest_digest,
                arch: "linux/amd64".into(),
            },
        ];
        let bytes = platform_index(&images, &[1, 0], &digests);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["manifests"][0]["digest"],
            images[1].manifest_digest.to_string()
        );
        assert_eq!(v["manifests"][0]["platform"]["variant"], "v8");
        assert_eq!(v["manifests"][1]["platform"]["architecture"], "amd64");
    }
}
