//! A bundle's images written into an OCI image layout directory, for tools that read layouts
//! (skopeo, podman, crane) without a registry.

use std::path::PathBuf;

use kantup_bundle::Bundle;
use kantup_bundle::archive::{Image, oci_layout};
use kantup_bundle::reference::Reference;
use serde::Serialize;

use super::BundleOpError;
use crate::ops::progress::Progress;

/// What [`export_images`] writes, where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The bundle.
    pub bundle: PathBuf,
    /// The OCI image layout directory (created, or added to).
    pub oci_layout: PathBuf,
    /// Only the images with these references (as written, or normalized: `busybox:1` is
    /// `docker.io/library/busybox:1`); all when empty.
    pub images: Vec<String>,
    /// Rewrite Docker schema 2 manifests as OCI manifests (as `skopeo copy --format oci`):
    /// blobs stay, manifest digests change. By default manifests are kept byte for byte.
    pub oci_manifests: bool,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: kantup_bundle::OpenOptions,
}

/// What [`export_images`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedImages {
    /// How many images were exported.
    pub images: usize,
    /// The blobs written and the layout's index entries.
    pub report: oci_layout::LayoutReport,
}

/// Writes the chosen images of the bundle into the layout; progress counts their bytes.
pub fn export_images(
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportedImages, BundleOpError> {
    let bundle = Bundle::open_with(&options.bundle, &options.open)?;
    let archive = bundle
        .image_archive()?
        .ok_or_else(|| BundleOpError::NoImages(options.bundle.clone()))?;
    let mut chosen: Vec<&Image> = Vec::new();
    if options.images.is_empty() {
        chosen.extend(archive.images());
    } else {
        for wanted in &options.images {
            let normalized = wanted.parse::<Reference>().ok().map(|r| r.to_string());
            let found = archive.images().iter().find(|i| {
                i.references.iter().any(|r| {
                    let s = r.to_string();
                    s == *wanted || Some(&s) == normalized.as_ref()
                })
            });
            chosen.push(found.ok_or_else(|| BundleOpError::ImageNotFound {
                image: wanted.clone(),
                bundle: options.bundle.clone(),
            })?);
        }
    }
    let converted: Vec<Image>;
    if options.oci_manifests {
        converted = chosen.iter().map(|i| i.to_oci()).collect();
        chosen = converted.iter().collect();
    }
    let total = chosen.iter().map(|i| i.total_size()).sum();
    progress.start("exporting images", total);
    let result = oci_layout::write_images(&options.oci_layout, &archive, &chosen, |n| {
        progress.advance(n)
    });
    progress.finish();
    Ok(ExportedImages {
        images: chosen.len(),
        report: result?,
    })
}
