//! The `Images.lock` a wrap carries: the chart's own, or one made from the chart's image
//! annotations and the archive's images.

use std::collections::BTreeMap;

use crate::archive::{Image, ImageArchive, ImageName};
use crate::chart::Chart;
use crate::digest::Digest;
use crate::error::BundleError;
use crate::images_lock::{
    IMAGES_LOCK_API_VERSION, IMAGES_LOCK_FILE, IMAGES_LOCK_KIND, ImagesLock, LockChart,
    LockedDigest, LockedImage,
};
use crate::reference::Reference;

/// The `Images.lock` for `chart` and the images of `archive`: the chart's own lock when it has
/// one (every digest must be in the archive), else one entry per image the chart's annotations
/// list (each must be in the archive, matched by reference) followed by the archive's other
/// named images. `generated_at` goes to `metadata.generatedAt`.
pub fn lock_for(
    chart: &Chart,
    archive: Option<&ImageArchive>,
    generated_at: &str,
) -> Result<ImagesLock, BundleError> {
    // Signatures a docker-archive holds as images are no images of the chart.
    let lost: Vec<Digest> = archive
        .map(|a| a.lost_attachments().into_iter().map(|l| l.image).collect())
        .unwrap_or_default();
    let images: Vec<&Image> = archive
        .map(|a| a.images())
        .unwrap_or_default()
        .iter()
        .filter(|i| !lost.contains(&i.manifest_digest))
        .collect();
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
    // Every (name, platform manifest): an image's own names, and an index's names for each
    // manifest it lists (a multi-platform image's platforms are named through its index).
    let mut candidates: Vec<(&Reference, &Image)> = Vec::new();
    for image in images.iter().copied() {
        for reference in image.references.iter().filter_map(ImageName::reference) {
            candidates.push((reference, image));
        }
    }
    for index in archive.map(|a| a.indexes()).unwrap_or_default() {
        let children = index.children();
        for reference in index.references.iter().filter_map(ImageName::reference) {
            for child in &children {
                if let Some(image) = images.iter().copied().find(|i| &i.manifest_digest == child) {
                    candidates.push((reference, image));
                }
            }
        }
    }
    let named = |reference: &Reference, wanted: &Reference| {
        reference.name() == wanted.name() && reference.tag == wanted.tag
    };
    for want in &annotated {
        let found: Vec<&Image> = candidates
            .iter()
            .filter(|(r, _)| named(r, &want.reference))
            .map(|(_, i)| *i)
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
    for (reference, image) in candidates {
        let name = reference
            .repository
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        add(name, chart.name().to_string(), reference, image);
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
