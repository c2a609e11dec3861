//! Pushing images out of a bundle's image archive: [`BlobSource`] for
//! [`ImageArchive`], and [`ImagePush`] plans built with a [`RelocationRule`].

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::archive::{Image, ImageArchive};
use kantup_bundle::reference::Reference;

use crate::error::{RegistryError, Result};
use crate::push::{BlobRef, BlobSource, ImagePush};
use crate::relocate::RelocationRule;

impl BlobSource for ImageArchive {
    fn open_blob(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>> {
        ImageArchive::open_blob(self, digest).map_err(std::io::Error::other)
    }
}

/// The [`ImagePush`] plans for every image of `archive`: one per parsed reference (an image
/// with two names goes to both targets). A platform manifest an OCI layout names only through
/// its index goes by digest into the repository of each of the index's names. Images without
/// a usable name are an error naming the image.
pub fn plan_archive(archive: Arc<ImageArchive>, rule: &RelocationRule) -> Result<Vec<ImagePush>> {
    let parents = index_names_of_children(&archive);
    let mut out = Vec::new();
    for image in archive.images() {
        let refs: Vec<_> = image
            .references
            .iter()
            .filter_map(|r| r.reference())
            .collect();
        if refs.is_empty()
            && let Some(names) = parents.get(&image.manifest_digest)
        {
            for reference in names {
                out.push(image_push(
                    archive.clone(),
                    image,
                    &reference.repository,
                    None,
                    format!("{}@{}", reference.repository, image.manifest_digest),
                    rule,
                ));
            }
            continue;
        }
        if refs.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "{}: image {} has no image reference to relocate (names: {:?})",
                archive.label(),
                image.manifest_digest,
                image
                    .references
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            )));
        }
        for reference in refs {
            out.push(image_push(
                archive.clone(),
                image,
                &reference.repository,
                reference.tag.clone(),
                reference.to_string(),
                rule,
            ));
        }
    }
    Ok(out)
}

/// The names of the indexes that list each platform manifest (by its digest).
fn index_names_of_children(archive: &ImageArchive) -> HashMap<Digest, Vec<Reference>> {
    let mut out: HashMap<Digest, Vec<Reference>> = HashMap::new();
    for index in archive.indexes() {
        for child in index.children() {
            let names = out.entry(child).or_default();
            for reference in index.references.iter().filter_map(|r| r.reference()) {
                if !names.contains(reference) {
                    names.push(reference.clone());
                }
            }
        }
    }
    out
}

/// The [`ImagePush`] plans for the multi-platform indexes of `archive` (a wrapped chart's images
/// with several platforms): the index manifest, with no blobs of its own, to its relocated
/// name. Push them after [`plan_archive`]'s images: a registry accepts an index only once the
/// platform manifests it lists are there.
pub fn plan_indexes(archive: Arc<ImageArchive>, rule: &RelocationRule) -> Vec<ImagePush> {
    let mut out = Vec::new();
    for index in archive.indexes() {
        for reference in index.references.iter().filter_map(|r| r.reference()) {
            out.push(ImagePush {
                source_name: reference.to_string(),
                repository: rule.repository_for(&reference.repository),
                tag: reference.tag.clone(),
                manifest: Bytes::from(index.manifest.clone()),
                manifest_media_type: index.media_type.clone(),
                manifest_digest: index.digest,
                blobs: Vec::new(),
                source: archive.clone(),
            });
        }
    }
    out
}

/// One [`ImagePush`]: `image` of `archive` to where `rule` sends `source_repository`.
pub fn image_push(
    archive: Arc<ImageArchive>,
    image: &Image,
    source_repository: &str,
    tag: Option<String>,
    source_name: String,
    rule: &RelocationRule,
) -> ImagePush {
    let mut blobs = vec![BlobRef {
        digest: image.config.digest,
        size: image.config.size,
    }];
    for layer in &image.layers {
        let blob = BlobRef {
            digest: layer.digest,
            size: layer.size,
        };
        if !blobs.contains(&blob) {
            blobs.push(blob);
        }
    }
    ImagePush {
        source_name,
        repository: rule.repository_for(source_repository),
        tag,
        manifest: Bytes::from(image.manifest.clone()),
        manifest_media_type: image.manifest_media_type.clone(),
        manifest_digest: image.manifest_digest,
        blobs,
        source: archive,
    }
}
