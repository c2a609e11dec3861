//! OCI image layout reading (`oci-layout`, `index.json`, `blobs/sha256/...`), as a directory or
//! a tar, including Docker 25+ `docker save` output and nested / multi-platform indexes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use super::docker::ManifestEntry;
use super::{
    ArchiveFormat, BlobInfo, Compression, ConfigSummary, Image, ImageArchive, ImageIndex,
    ImageName, MAX_JSON, MAX_MANIFEST, Platform, Store, media_types,
};
use crate::digest::Digest;
use crate::error::BundleError;

/// The annotation OCI layouts use to name a manifest.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and Docker 25+ use for the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    #[serde(default)]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// `blobs/sha256/<hex>`.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

struct Reader<'a> {
    store: &'a Store,
    label: String,
    images: Vec<Image>,
    indexes: Vec<ImageIndex>,
    blobs: HashMap<Digest, String>,
    /// config digest -> RepoTags from a Docker 25+ `manifest.json`.
    repo_tags: HashMap<Digest, Vec<String>>,
    /// Layers a differential bundle declares left out: absent is fine for these.
    may_omit: &'a HashSet<Digest>,
    /// Those of `may_omit` the images name and the layout does not hold.
    omitted: HashSet<Digest>,
}

fn names_from(annotations: &Option<BTreeMap<String, String>>) -> Vec<ImageName> {
    let Some(a) = annotations else {
        return Vec::new();
    };
    // Prefer the full name; a ref.name alone is often just a tag.
    if let Some(full) = a.get(CONTAINERD_NAME) {
        return vec![ImageName::new(full)];
    }
    a.get(REF_NAME)
        .map(|r| vec![ImageName::new(r)])
        .unwrap_or_default()
}

impl Reader<'_> {
    fn parse_digest(&self, s: &str, what: &str) -> Result<Digest, BundleError> {
        s.parse()
            .map_err(|e| BundleError::archive(&self.label, format!("{what}: {e}")))
    }

    fn read_manifest(&self, d: &Descriptor, what: &str) -> Result<(Digest, Vec<u8>), BundleError> {
        let digest = self.parse_digest(&d.digest, what)?;
        let path = blob_path(&digest);
        if !self.store.exists(&path) {
            return Err(BundleError::archive(
                &self.label,
                format!("{what}: blob {path:?} is missing"),
            ));
        }
        let bytes = self.store.read(&path, MAX_MANIFEST)?;
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(BundleError::DigestMismatch {
                what: format!("{}!{path} ({what})", self.label),
                expected: digest,
                actual,
            });
        }
        Ok((digest, bytes))
    }

    fn visit(
        &mut self,
        d: &Descriptor,
        inherited_names: Vec<ImageName>,
        depth: usize,
    ) -> Result<(), BundleError> {
        if depth > 8 {
            return Err(BundleError::archive(
                &self.label,
                "indexes nested more than 8 deep",
            ));
        }
        let mut names = names_from(&d.annotations);
        if names.is_empty() {
            names = inherited_names;
        }
        let what = format!("manifest {}", d.digest);
        let (digest, bytes) = self.read_manifest(d, &what)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| BundleError::json(format!("{}!{}", self.label, blob_path(&digest)), e))?;
        let own_type = value.get("mediaType").and_then(|m| m.as_str());
        if let Some(own) = own_type
            && !d.media_type.is_empty()
            && own != d.media_type
        {
            return Err(BundleError::archive(
                &self.label,
                format!(
                    "{what}: the descriptor says media type {:?} but the manifest says {own:?}",
                    d.media_type
                ),
            ));
        }
        let media_type = if d.media_type.is_empty() {
            own_type.unwrap_or(media_types::OCI_MANIFEST).to_string()
        } else {
            d.media_type.clone()
        };
        if !media_types::is_index(&media_type) && !media_types::is_manifest(&media_type) {
            return Err(BundleError::archive(
                &self.label,
                format!(
                    "{what}: media type {media_type:?} is not an image manifest or index (OCI or Docker schema 2)"
                ),
            ));
        }
        if media_types::is_index(&media_type) || value.get("manifests").is_some() {
            let index: IndexDoc = serde_json::from_value(value).map_err(|e| {
                BundleError::json(format!("{}!{}", self.label, blob_path(&digest)), e)
            })?;
            self.indexes.push(ImageIndex {
                references: names,
                manifest: bytes,
                media_type,
                digest,
            });
            for child in &index.manifests {
                // Children of an index are named through the index, not one by one.
                self.visit(child, Vec::new(), depth + 1)?;
            }
            return Ok(());
        }
        let doc: ManifestDoc = serde_json::from_value(value)
            .map_err(|e| BundleError::json(format!("{}!{}", self.label, blob_path(&digest)), e))?;
        let media_type = doc.media_type.clone().unwrap_or(media_type);
        let config_digest = self.parse_digest(&doc.config.digest, &format!("{what} config"))?;
        let config_path = blob_path(&config_digest);
        if !self.store.exists(&config_path) {
            return Err(BundleError::archive(
                &self.label,
                format!("{what}: config blob {config_path:?} is missing"),
            ));
        }
        let config_bytes = self.store.read(&config_path, MAX_JSON)?;
        let summary =
            ConfigSummary::parse(&config_bytes, &format!("{}!{config_path}", self.label))?;
        let diff_ids = summary.diff_ids(&format!("{}!{config_path}", self.label))?;
        self.blobs.insert(config_digest, config_path);
        let mut layers = Vec::new();
        for (i, l) in doc.layers.iter().flatten().enumerate() {
            let ld = self.parse_digest(&l.digest, &format!("{what} layer {}", i + 1))?;
            let path = blob_path(&ld);
            if self.may_omit.contains(&ld) && !self.store.exists(&path) {
                self.omitted.insert(ld);
                layers.push(BlobInfo {
                    digest: ld,
                    size: l.size,
                    media_type: l.media_type.clone(),
                    diff_id: diff_ids.get(i).copied(),
                    compression: Compression::from_media_type(&l.media_type),
                });
                continue;
            }
            if !self.store.exists(&path) {
                return Err(BundleError::archive(
                    &self.label,
                    format!("{what}: layer {} blob {path:?} is missing", i + 1),
                ));
            }
            let compression = match Compression::from_media_type(&l.media_type) {
                Compression::None => Compression::sniff(&self.store.head(&path)?),
                c => c,
            };
            self.blobs.insert(ld, path);
            layers.push(BlobInfo {
                digest: ld,
                size: l.size,
                media_type: l.media_type.clone(),
                diff_id: diff_ids.get(i).copied(),
                compression,
            });
        }
        if names.is_empty()
            && let Some(tags) = self.repo_tags.get(&config_digest)
        {
            names = tags.iter().map(|t| ImageName::new(t)).collect();
        }
        self.images.push(Image {
            references: names,
            manifest: bytes,
            manifest_media_type: media_type,
            manifest_digest: digest,
            config: BlobInfo {
                digest: config_digest,
                size: doc.config.size,
                media_type: doc.config.media_type.clone(),
                diff_id: None,
                compression: Compression::None,
            },
            layers,
            platform: d.platform.clone().or_else(|| summary.platform()),
        });
        Ok(())
    }
}

pub(crate) fn read(store: Store, may_omit: &HashSet<Digest>) -> Result<ImageArchive, BundleError> {
    let label = store.label();
    let raw = store.read("index.json", MAX_JSON)?;
    let index: IndexDoc = serde_json::from_slice(&raw)
        .map_err(|e| BundleError::json(format!("{label}!index.json"), e))?;
    let mut repo_tags = HashMap::new();
    if store.exists("manifest.json") {
        let raw = store.read("manifest.json", MAX_JSON)?;
        let entries: Vec<ManifestEntry> = serde_json::from_slice(&raw)
            .map_err(|e| BundleError::json(format!("{label}!manifest.json"), e))?;
        for e in entries {
            if let (Some(d), Some(tags)) = (super::docker::hex_in_name(&e.config), e.repo_tags) {
                repo_tags.insert(d, tags);
            }
        }
    }
    let mut reader = Reader {
        store: &store,
        label: label.clone(),
        images: Vec::new(),
        indexes: Vec::new(),
        blobs: HashMap::new(),
        repo_tags,
        may_omit,
        omitted: HashSet::new(),
    };
    for d in &index.manifests {
        reader.visit(d, Vec::new(), 0)?;
    }
    // The same manifest listed twice (two tags) is one image with two names.
    let mut images: Vec<Image> = Vec::new();
    for image in reader.images {
        if let Some(existing) = images
            .iter_mut()
            .find(|i| i.manifest_digest == image.manifest_digest)
        {
            for r in image.references {
                if !existing.references.contains(&r) {
                    existing.references.push(r);
                }
            }
        } else {
            images.push(image);
        }
    }
    let (indexes, blobs, omitted) = (reader.indexes, reader.blobs, reader.omitted);
    Ok(ImageArchive {
        store,
        format: ArchiveFormat::OciLayout,
        images,
        indexes,
        blobs,
        omitted,
        attachments: Vec::new(),
    })
}
