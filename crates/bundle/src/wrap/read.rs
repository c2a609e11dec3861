//! Reading a wrap: its image layouts as one archive named through `Images.lock` (an image with several platforms also gets an image index).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::archive::attachment::{Attachment, AttachmentKind};
use crate::archive::oci::{self, check_subjects};
use crate::archive::{
    ArchiveFormat, Image, ImageArchive, ImageIndex, ImageName, MAX_MANIFEST, Store, media_types,
};
use crate::digest::Digest;
use crate::error::BundleError;
use crate::images_lock::{IMAGES_LOCK_FILE, ImagesLock, LockedDigest};
use crate::reference::Reference;
use crate::source::TarIndex;

use super::artifacts::{
    INDEX_SUFFIX, WRAP_ARTIFACTS_IMAGES_DIR, artifact_base, index_matches, kind_of_dir,
};
use super::{LAYOUT_SUFFIX, WRAP_CHART_DIR, WRAP_IMAGES_DIR};

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
    let mut attachments = read_attachments(index, root, &mut blobs)?;
    let mut indexes = Vec::new();
    let mut rebuilt = false;
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
            // The image's own index when the wrap keeps it, else one made from the lock.
            let kept = format!(
                "{root}/{WRAP_ARTIFACTS_IMAGES_DIR}/{}.{INDEX_SUFFIX}",
                artifact_base(entry, None)
            );
            let manifest = match index.get(&kept) {
                Some(_) => {
                    let bytes = index.read_member(&kept, MAX_MANIFEST)?;
                    if !index_matches(&bytes, entry) {
                        return Err(BundleError::archive(
                            format!("{}!{kept}", index.label),
                            format!(
                                "the index kept for image {:?} ({}) does not list the platform manifests {IMAGES_LOCK_FILE} gives it",
                                entry.name, entry.image
                            ),
                        ));
                    }
                    bytes
                }
                None => {
                    rebuilt = true;
                    platform_index(&images, &children, &entry.digests)
                }
            };
            indexes.push(ImageIndex {
                references: vec![ImageName::Parsed(reference)],
                digest: Digest::of(&manifest),
                manifest,
                media_type: media_types::OCI_INDEX.to_string(),
            });
        }
    }
    if rebuilt {
        // helm dt keeps no index, so a wrap it wrote holds a multi-platform image's index
        // signature (`<tag>.sig`) without the index it signed: no manifest here is what it is
        // about, and pushed anywhere it would verify nothing. It is left out; everything else
        // must still be about a manifest the wrap holds.
        attachments.retain(|a| {
            images.iter().any(|i| i.manifest_digest == a.subject)
                || indexes.iter().any(|i| i.digest == a.subject)
                || a.kind != AttachmentKind::Signature
        });
    }
    check_subjects(&label, &images, &indexes, &attachments)?;
    Ok(Some(ImageArchive {
        store: Store::Tar(index.relabeled(label)),
        format: ArchiveFormat::OciLayout,
        images,
        indexes,
        blobs,
        // A wrap always carries every blob.
        omitted: Default::default(),
        attachments,
    }))
}

/// The attachments in the layouts under `<root>/artifacts/images/` (see
/// [`super::artifacts`]), their blobs' members added to `blobs`. A layout there holding an
/// image rather than attachments is refused.
fn read_attachments(
    index: &TarIndex,
    root: &str,
    blobs: &mut HashMap<Digest, String>,
) -> Result<Vec<Attachment>, BundleError> {
    let prefix = format!("{root}/{WRAP_ARTIFACTS_IMAGES_DIR}/");
    let mut dirs: Vec<(String, Option<AttachmentKind>)> = index
        .entries
        .iter()
        .filter_map(|e| {
            let dir = e.name.strip_prefix(&prefix)?.strip_suffix("/index.json")?;
            let name = dir.rsplit('/').next()?;
            Some((format!("{prefix}{dir}"), kind_of_dir(name)?))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut attachments: Vec<Attachment> = Vec::new();
    for (dir, kind) in dirs {
        let label = format!("{}!{dir}", index.label);
        let sub = index.subtree(&dir, label.clone());
        let layout = oci::read_unchecked(Store::Tar(sub), &HashSet::new(), kind)?;
        if !layout.images.is_empty() || !layout.indexes.is_empty() {
            return Err(BundleError::archive(
                label,
                "a layout for signatures, attestations, SBOMs or referrers holds an image",
            ));
        }
        for (digest, member) in &layout.blobs {
            blobs.insert(*digest, format!("{dir}/{member}"));
        }
        for a in layout.attachments {
            if !attachments
                .iter()
                .any(|b| b.digest == a.digest && b.subject == a.subject && b.link == a.link)
            {
                attachments.push(a);
            }
        }
    }
    Ok(attachments)
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
