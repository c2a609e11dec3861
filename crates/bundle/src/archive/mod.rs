//! Image archives, one model for every layout kantup reads:
//!
//! * docker-archive as go-containerregistry writes it (relok8s's `images.tar`: gzip layers
//!   `<hex>.tar.gz`, configs `sha256:<hex>`, `manifest.json`);
//! * classic `docker save` (`<id>/layer.tar`, `<id>.json`, `repositories`);
//! * `podman save` (also `--multi-image-archive`, with linked shared layers);
//! * Docker 25+ (an OCI layout plus `manifest.json`);
//! * OCI image layouts, as a tar or a directory (`index.json`, nested indexes, multi-arch,
//!   `org.opencontainers.image.ref.name` annotations).
//!
//! Each [`Image`] has its manifest bytes (the archive's own when it has them; for
//! docker-archives rebuilt exactly as go-containerregistry serializes them, so digests match
//! what relok8s and charts-syncer push), its config and layers, and every blob can be read with
//! [`ImageArchive::open_blob`].

pub mod attachment;
pub mod attachment_info;
mod docker;
pub(crate) mod oci;
pub mod oci_layout;
mod store;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::BundleError;
use crate::reference::Reference;
pub(crate) use store::Store;

/// Media types used in manifests (kept in [`crate::media_types`], the one place for all of them).
pub use crate::media_types;

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Detects compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// From a layer media type (`+gzip`, `.tar.gzip`, `+zstd`).
    pub fn from_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `linux`, `windows`, ...
    pub os: String,
    /// `v8`, `v7`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobInfo {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// Size of the stored bytes.
    pub size: u64,
    /// Media type as written in the manifest.
    pub media_type: String,
    /// For layers: digest of the uncompressed tar (from the config's `rootfs.diff_ids`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// How the stored bytes are compressed.
    pub compression: Compression,
}

/// A reference as found in an archive: parsed when it follows the grammar, else kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum ImageName {
    /// A valid, normalized reference.
    Parsed(Reference),
    /// Text that is not a valid reference (e.g. a bare OCI ref.name tag like `v1`).
    Raw(String),
}

impl ImageName {
    /// Parses `text`, falling back to keeping it raw.
    pub fn new(text: &str) -> ImageName {
        match text.parse() {
            Ok(r) => ImageName::Parsed(r),
            Err(_) => ImageName::Raw(text.to_string()),
        }
    }

    /// The parsed reference, if any.
    pub fn reference(&self) -> Option<&Reference> {
        match self {
            ImageName::Parsed(r) => Some(r),
            ImageName::Raw(_) => None,
        }
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageName::Parsed(r) => r.fmt(f),
            ImageName::Raw(s) => f.write_str(s),
        }
    }
}

/// One image (one platform-specific manifest) in an archive.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// Names the archive gives the image (`RepoTags`, ref.name annotations).
    pub references: Vec<ImageName>,
    /// Manifest bytes exactly as they are pushed.
    #[serde(skip)]
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// Digest of `manifest`.
    pub manifest_digest: Digest,
    /// The config blob.
    pub config: BlobInfo,
    /// Layers, base first.
    pub layers: Vec<BlobInfo>,
    /// Platform, from the index or the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Image {
    /// A short human name: the first reference, else the manifest digest.
    pub fn display_name(&self) -> String {
        self.references
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| self.manifest_digest.to_string())
    }

    /// The same image with an OCI manifest (`skopeo copy --format oci` does the same): media
    /// types mapped from Docker schema 2 to OCI, blobs unchanged, so only the manifest digest
    /// changes. Tools built on containers/image (skopeo, podman) only address OCI-typed
    /// manifests by name in an OCI layout. Images that already are OCI are returned as they are.
    pub fn to_oci(&self) -> Image {
        if self.manifest_media_type != media_types::DOCKER_MANIFEST {
            return self.clone();
        }
        let map_layer = |b: &BlobInfo| BlobInfo {
            media_type: match b.compression {
                Compression::None => media_types::OCI_LAYER,
                Compression::Gzip => media_types::OCI_LAYER_GZIP,
                Compression::Zstd => media_types::OCI_LAYER_ZSTD,
            }
            .to_string(),
            ..b.clone()
        };
        let config = BlobInfo {
            media_type: media_types::OCI_CONFIG.to_string(),
            ..self.config.clone()
        };
        let layers: Vec<BlobInfo> = self.layers.iter().map(map_layer).collect();
        let descriptor = |b: &BlobInfo| serde_json::json!({"mediaType": b.media_type, "digest": b.digest.to_string(), "size": b.size});
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
        }))
        .expect("manifest serializes");
        Image {
            references: self.references.clone(),
            manifest_digest: Digest::of(&manifest),
            manifest,
            manifest_media_type: media_types::OCI_MANIFEST.to_string(),
            config,
            layers,
            platform: self.platform.clone(),
        }
    }

    /// Sum of config and layer sizes.
    pub fn total_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// An index (multi-platform image) an OCI layout holds, kept so writers can reproduce it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageIndex {
    /// Names of the index.
    pub references: Vec<ImageName>,
    /// The index bytes.
    #[serde(skip)]
    pub manifest: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
}

/// Which layout an archive used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    /// `manifest.json` only (docker save, podman, go-containerregistry).
    DockerArchive,
    /// `index.json` + `oci-layout` (with or without `manifest.json`).
    OciLayout,
}

/// An opened image archive. Blobs are read lazily; `ImageArchive` is `Send + Sync`, and each
/// [`open_blob`](Self::open_blob) call gets an independent reader (positioned reads on a
/// shared handle), so blobs can be streamed from several threads.
#[derive(Debug)]
pub struct ImageArchive {
    pub(crate) store: Store,
    pub(crate) format: ArchiveFormat,
    pub(crate) images: Vec<Image>,
    pub(crate) indexes: Vec<ImageIndex>,
    /// Where each blob lives (member name in the store).
    pub(crate) blobs: HashMap<Digest, String>,
    /// Layer blobs a differential bundle left out (see [`crate::differential`]).
    pub(crate) omitted: HashSet<Digest>,
    /// Signatures, attestations, SBOMs and referrers of the images and indexes.
    pub(crate) attachments: Vec<attachment::Attachment>,
}

/// Largest JSON document (config, `index.json`, `manifest.json`) read into memory.
pub(crate) const MAX_JSON: u64 = 64 << 20;

/// Largest image manifest or index: what the distribution registry accepts
/// (`maxManifestBodySize`, 4 MiB), so a bigger one could never be pushed anyway.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The digests an index's bytes list (none when they are not an index).
pub(crate) fn children_of(index: &[u8]) -> Vec<Digest> {
    serde_json::from_slice::<serde_json::Value>(index)
        .ok()
        .and_then(|v| v["manifests"].as_array().cloned())
        .into_iter()
        .flatten()
        .filter_map(|c| c["digest"].as_str()?.parse().ok())
        .collect()
}

impl ImageIndex {
    /// The digests of the manifests it lists (none when its bytes are not an index).
    pub fn children(&self) -> Vec<Digest> {
        children_of(&self.manifest)
    }

    /// Its first name, or its digest when it has none.
    pub fn display_name(&self) -> String {
        self.references
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| self.digest.to_string())
    }
}

impl ImageArchive {
    /// A name for `image` in messages: a name of its own by tag, else the name of a named
    /// index that lists it (a platform manifest is usually known only through its index),
    /// else [`Image::display_name`].
    pub fn name_of(&self, image: &Image) -> String {
        if let Some(own) = image
            .references
            .iter()
            .find(|r| r.reference().is_some_and(|r| r.digest.is_none()))
        {
            return own.to_string();
        }
        self.indexes()
            .iter()
            .find(|i| !i.references.is_empty() && i.children().contains(&image.manifest_digest))
            .map(ImageIndex::display_name)
            .unwrap_or_else(|| image.display_name())
    }

    /// Opens an archive file (tar) or an OCI layout directory.
    pub fn open(path: impl AsRef<Path>) -> Result<ImageArchive, BundleError> {
        let path = path.as_ref();
        let store = if path.is_dir() {
            Store::Dir(path.to_path_buf())
        } else {
            Store::open_tar(path)?
        };
        Self::from_store(store)
    }

    pub(crate) fn from_store(store: Store) -> Result<ImageArchive, BundleError> {
        Self::from_store_omitting(store, &HashSet::new())
    }

    /// Like [`from_store`](Self::from_store) for a differential bundle's archive: layer blobs
    /// in `omitted` may be absent (OCI layouts only: kantup writes differential archives as
    /// OCI layouts).
    pub(crate) fn from_store_omitting(
        store: Store,
        omitted: &HashSet<Digest>,
    ) -> Result<ImageArchive, BundleError> {
        if store.exists("index.json") {
            oci::read(store, omitted)
        } else if store.exists("manifest.json") {
            docker::read(store)
        } else {
            // A member that is there but cannot be read (a link loop, a dangling link) says
            // more than "not an image archive".
            store.check_readable("index.json")?;
            store.check_readable("manifest.json")?;
            Err(BundleError::archive(
                store.label(),
                "not an image archive: neither index.json (OCI layout) nor manifest.json (docker archive)",
            ))
        }
    }

    /// The images, in archive order.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// Multi-platform indexes the archive holds (OCI layouts only).
    pub fn indexes(&self) -> &[ImageIndex] {
        &self.indexes
    }

    /// The layout the archive used.
    pub fn format(&self) -> ArchiveFormat {
        self.format
    }

    /// Where the archive is (for messages).
    pub fn label(&self) -> String {
        self.store.label()
    }

    /// Signatures, attestations, SBOMs and other referrers the archive carries for its images
    /// and indexes, each kept byte-exact (see [`attachment`]).
    pub fn attachments(&self) -> &[attachment::Attachment] {
        &self.attachments
    }

    /// The attachments whose subject is `digest` (an image manifest or an index).
    pub fn attachments_of<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> impl Iterator<Item = &'a attachment::Attachment> + 'a {
        self.attachments
            .iter()
            .filter(move |a| a.subject == *digest)
    }

    /// Signatures, attestations and SBOMs the archive holds only as plain images: entries of a
    /// docker-archive named with cosign's tags (`<repository>:sha256-<hex>.sig`, `.att`,
    /// `.sbom`, or the referrers fallback tag `sha256-<hex>`). A docker-archive keeps no registry
    /// manifest, so theirs were rebuilt and the layer annotations holding cosign's signatures
    /// are gone: they cannot be carried or pushed as what they were. Empty for OCI layouts,
    /// whose attachments are read as such ([`attachments`](Self::attachments)).
    pub fn lost_attachments(&self) -> Vec<attachment::LostAttachment> {
        if self.format != ArchiveFormat::DockerArchive {
            return Vec::new();
        }
        let mut lost = Vec::new();
        for image in &self.images {
            for name in &image.references {
                let name = name.to_string();
                if let Some((subject, kind)) =
                    attachment::parse_cosign_tag(attachment::tag_of_name(&name))
                {
                    lost.push(attachment::LostAttachment {
                        name,
                        image: image.manifest_digest,
                        kind,
                        subject,
                    });
                }
            }
        }
        lost
    }

    /// Whether the archive holds a blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest)
    }

    /// Layer blobs the images name that this archive does not hold because it belongs to a
    /// differential bundle (empty otherwise), sorted. They must already be where the images go.
    pub fn omitted_blobs(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self.omitted.iter().copied().collect();
        v.sort();
        v
    }

    /// Whether `digest` is a blob left out of this (differential) archive.
    pub fn is_omitted(&self, digest: &Digest) -> bool {
        self.omitted.contains(digest)
    }

    /// Every blob digest the archive holds, config and layers (not manifests), sorted.
    pub fn blob_digests(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self.blobs.keys().copied().collect();
        v.sort();
        v
    }

    /// Opens a blob's raw stored bytes (exactly those the manifest names; for a manifest or
    /// index digest, the manifest bytes).
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, BundleError> {
        if let Some(member) = self.blobs.get(digest) {
            return self.store.open(member);
        }
        if let Some(image) = self.images.iter().find(|i| &i.manifest_digest == digest) {
            return Ok(Box::new(std::io::Cursor::new(image.manifest.clone())));
        }
        if let Some(index) = self.indexes.iter().find(|i| &i.digest == digest) {
            return Ok(Box::new(std::io::Cursor::new(index.manifest.clone())));
        }
        if let Some(a) = self.attachments.iter().find(|a| &a.digest == digest) {
            return Ok(Box::new(std::io::Cursor::new(a.manifest.clone())));
        }
        if self.omitted.contains(digest) {
            return Err(BundleError::BlobOmitted {
                path: self.store.label(),
                digest: *digest,
            });
        }
        Err(BundleError::BlobNotFound {
            path: self.store.label(),
            digest: *digest,
        })
    }

    /// Reads a small blob (config) into memory.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, BundleError> {
        let mut buf = Vec::new();
        self.open_blob(digest)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut buf)
            .map_err(|e| BundleError::io(self.store.label(), e))?;
        if buf.len() as u64 > MAX_JSON {
            return Err(BundleError::TooLarge {
                path: self.store.label(),
                member: digest.to_string(),
                size: buf.len() as u64,
                limit: MAX_JSON,
            });
        }
        Ok(buf)
    }
}

/// The parts of an image config kantup reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigSummary {
    #[serde(default)]
    pub(crate) architecture: Option<String>,
    #[serde(default)]
    pub(crate) os: Option<String>,
    #[serde(default)]
    pub(crate) variant: Option<String>,
    #[serde(default)]
    pub(crate) rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub(crate) diff_ids: Option<Vec<String>>,
}

impl ConfigSummary {
    pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<ConfigSummary, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::json(what, e))
    }

    pub(crate) fn platform(&self) -> Option<Platform> {
        match (&self.architecture, &self.os) {
            (Some(a), Some(o)) if !a.is_empty() && !o.is_empty() => Some(Platform {
                architecture: a.clone(),
                os: o.clone(),
                variant: self.variant.clone().filter(|v| !v.is_empty()),
            }),
            _ => None,
        }
    }

    pub(crate) fn diff_ids(&self, what: &str) -> Result<Vec<Digest>, BundleError> {
        let Some(ids) = self.rootfs.as_ref().and_then(|r| r.diff_ids.as_ref()) else {
            return Ok(Vec::new());
        };
        ids.iter()
            .map(|s| {
                s.parse::<Digest>()
                    .map_err(|e| BundleError::archive(what, format!("config rootfs.diff_ids: {e}")))
            })
            .collect()
    }
}
