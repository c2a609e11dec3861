//! docker-archive (`manifest.json`) reading: go-containerregistry tarballs, `docker save`
//! (classic and 25+ without an OCI index), `podman save`.

use std::collections::HashMap;
use std::io::Write;

use serde::Deserialize;

use super::{
    ArchiveFormat, BlobInfo, Compression, ConfigSummary, Image, ImageArchive, ImageName, MAX_JSON,
    MAX_MANIFEST, Store, media_types,
};
use crate::digest::Digest;
use crate::error::BundleError;

/// One entry of `manifest.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct ManifestEntry {
    #[serde(rename = "Config")]
    pub(crate) config: String,
    #[serde(rename = "RepoTags", default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub(crate) layers: Vec<String>,
}

/// The 64-hex digest a member name embeds (`sha256:<hex>`, `<hex>.tar.gz`, `<hex>.json`,
/// `blobs/sha256/<hex>`), if any.
pub(crate) fn hex_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_prefix("sha256:").unwrap_or(base);
    let hex = base.split('.').next().unwrap_or(base);
    let digest = Digest::from_hex(hex).ok()?;
    // `blobs/sha256/<hex>` and `<hex>.tar.gz` name the stored bytes; `<id>/layer.tar` does not.
    Some(digest)
}

pub(crate) fn read(store: Store) -> Result<ImageArchive, BundleError> {
    let label = store.label();
    let raw = store.read("manifest.json", MAX_JSON)?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&raw)
        .map_err(|e| BundleError::json(format!("{label}!manifest.json"), e))?;
    let mut images = Vec::new();
    let mut blobs: HashMap<Digest, String> = HashMap::new();
    // A layer member shared by several images is hashed once.
    let mut layer_cache: HashMap<String, (Digest, u64, Compression)> = HashMap::new();
    for (n, entry) in entries.iter().enumerate() {
        let image_label = entry
            .repo_tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| format!("image #{}", n + 1));
        let what = format!("{label}!manifest.json: {image_label}");
        let config_bytes = store.read(&entry.config, MAX_JSON).map_err(|e| match e {
            BundleError::MissingMember { member, .. } => {
                BundleError::archive(&what, format!("config member {member:?} is missing"))
            }
            other => other,
        })?;
        let config_digest = Digest::of(&config_bytes);
        let config_what = format!("{label}!{}", entry.config);
        let summary = ConfigSummary::parse(&config_bytes, &config_what)?;
        let diff_ids = summary.diff_ids(&config_what)?;
        if !diff_ids.is_empty() && diff_ids.len() != entry.layers.len() {
            return Err(BundleError::archive(
                &what,
                format!(
                    "manifest.json lists {} layers but config rootfs.diff_ids has {}",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        blobs.insert(config_digest, entry.config.clone());
        let mut layers = Vec::new();
        for (i, member) in entry.layers.iter().enumerate() {
            if !store.exists(member) {
                return Err(BundleError::archive(
                    &what,
                    format!("layer member {member:?} is missing"),
                ));
            }
            let diff_id = diff_ids.get(i).copied();
            let (digest, size, compression) = match layer_cache.get(member) {
                Some(v) => *v,
                None => {
                    let size = store.size(member)?;
                    let compression = Compression::sniff(&store.head(member)?);
                    let digest = match (compression, diff_id, hex_in_name(member)) {
                        // An uncompressed layer's digest is its diff ID.
                        (Compression::None, Some(d), _) => d,
                        // go-containerregistry and Docker 25+ name members by digest.
                        (_, _, Some(d)) if !member.ends_with("/layer.tar") => d,
                        _ => {
                            let (d, _) = Digest::of_reader(store.open(member)?)
                                .map_err(|e| BundleError::io(format!("{label}!{member}"), e))?;
                            d
                        }
                    };
                    layer_cache.insert(member.clone(), (digest, size, compression));
                    (digest, size, compression)
                }
            };
            blobs.entry(digest).or_insert_with(|| member.clone());
            let media_type = match compression {
                Compression::Gzip => media_types::DOCKER_LAYER_GZIP,
                Compression::None => media_types::DOCKER_LAYER,
                Compression::Zstd => media_types::OCI_LAYER_ZSTD,
            };
            layers.push(BlobInfo {
                digest,
                size,
                media_type: media_type.to_string(),
                diff_id: diff_id.or((compression == Compression::None).then_some(digest)),
                compression,
            });
        }
        let config = BlobInfo {
            digest: config_digest,
            size: config_bytes.len() as u64,
            media_type: media_types::DOCKER_CONFIG.to_string(),
            diff_id: None,
            compression: Compression::None,
        };
        let manifest = ggcr_manifest(&config, &layers);
        if manifest.len() as u64 > MAX_MANIFEST {
            return Err(BundleError::archive(
                &what,
                format!(
                    "its {} layers make a {} byte manifest, over the registry limit of {MAX_MANIFEST}",
                    layers.len(),
                    manifest.len()
                ),
            ));
        }
        images.push(Image {
            references: entry
                .repo_tags
                .iter()
                .flatten()
                .map(|t| ImageName::new(t))
                .collect(),
            manifest_digest: Digest::of(&manifest),
            manifest,
            manifest_media_type: media_types::DOCKER_MANIFEST.to_string(),
            config,
            layers,
            platform: summary.platform(),
        });
    }
    Ok(ImageArchive {
        store,
        format: ArchiveFormat::DockerArchive,
        images,
        indexes: Vec::new(),
        blobs,
        omitted: Default::default(),
        attachments: Vec::new(),
    })
}

/// Serializes a schema 2 manifest exactly as go-containerregistry's `tarball` image does:
/// compact JSON, fields in Go struct order, `"layers":null` when there are none.
pub(crate) fn ggcr_manifest(config: &BlobInfo, layers: &[BlobInfo]) -> Vec<u8> {
    fn descriptor(out: &mut Vec<u8>, b: &BlobInfo) {
        write!(
            out,
            r#"{{"mediaType":{},"size":{},"digest":"{}"}}"#,
            serde_json::to_string(&b.media_type).expect("string"),
            b.size,
            b.digest
        )
        .expect("write to Vec");
    }
    let mut out = Vec::with_capacity(256 + layers.len() * 160);
    write!(
        out,
        r#"{{"schemaVersion":2,"mediaType":"{}","config":"#,
        media_types::DOCKER_MANIFEST
    )
    .expect("write to Vec");
    descriptor(&mut out, config);
    out.extend_from_slice(br#","layers":"#);
    if layers.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'[');
        for (i, l) in layers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            descriptor(&mut out, l);
        }
        out.push(b']');
    }
    out.push(b'}');
    out
}
