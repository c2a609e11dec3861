//! OCI image layout reading (`oci-layout`, `index.json`, `blobs/sha256/...`), as a directory or
//! a tar, including Docker 25+ `docker save` output and nested / multi-platform indexes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use super::attachment::{
    Attachment, AttachmentKind, Link, cosign_kind, cosign_tag, parse_cosign_tag, referrer_kind,
    signed_subject, tag_of_name,
};
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
struct AttachmentDoc {
    config: Descriptor,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
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
    /// The one image or index `cosign save` wrote, when the layout is its output.
    sole_subject: Option<Digest>,
    /// Signatures, attestations, SBOMs and referrers found so far.
    attachments: Vec<Attachment>,
}

/// What a top-level `index.json` entry is.
enum Role {
    /// An image or an index of images.
    Image,
    /// A cosign attachment: by its tag (`sha256-<hex>.sig`), or by `cosign save`'s `kind`
    /// (subject `None`: the layout's one image, else read from the signed payload).
    Cosign {
        kind: AttachmentKind,
        subject: Option<Digest>,
    },
    /// The referrers fallback index tagged `sha256-<hex>`: each manifest it lists is a
    /// referrer of that image.
    Referrers(Digest),
}

fn role_of(d: &Descriptor) -> Role {
    let Some(annotations) = &d.annotations else {
        return Role::Image;
    };
    if let Some(kind) = annotations
        .get(media_types::COSIGN_KIND_ANNOTATION)
        .and_then(|k| cosign_kind::attachment_kind(k))
    {
        return Role::Cosign {
            kind,
            subject: None,
        };
    }
    for name in [annotations.get(REF_NAME), annotations.get(CONTAINERD_NAME)]
        .into_iter()
        .flatten()
    {
        match parse_cosign_tag(tag_of_name(name)) {
            Some((subject, Some(kind))) => {
                return Role::Cosign {
                    kind,
                    subject: Some(subject),
                };
            }
            Some((subject, None)) if media_types::is_index(&d.media_type) => {
                return Role::Referrers(subject);
            }
            _ => {}
        }
    }
    Role::Image
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
    /// Reads an attachment manifest (`bytes`, already checked against `d`): its config and
    /// layers must be in the layout. `kind` `None` means a referrer, told apart by its
    /// content; `subject` `None` means: from the manifest's `subject`, else from the signed
    /// payload, else the layout's only image (`cosign save`).
    #[allow(clippy::too_many_arguments)]
    fn attachment(
        &mut self,
        d: &Descriptor,
        digest: Digest,
        bytes: Vec<u8>,
        value: serde_json::Value,
        kind: Option<AttachmentKind>,
        subject: Option<Digest>,
        link: Link,
    ) -> Result<(), BundleError> {
        let what = format!("attachment {digest}");
        let media_type = value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or(&d.media_type)
            .to_string();
        if !media_types::is_manifest(&media_type) {
            return Err(BundleError::archive(
                &self.label,
                format!("{what}: media type {media_type:?} is not an image manifest"),
            ));
        }
        let doc: AttachmentDoc = serde_json::from_value(value)
            .map_err(|e| BundleError::json(format!("{}!{}", self.label, blob_path(&digest)), e))?;
        let mut blobs = Vec::new();
        for (n, b) in std::iter::once(&doc.config)
            .chain(doc.layers.iter().flatten())
            .enumerate()
        {
            let part = if n == 0 {
                "config".to_string()
            } else {
                format!("layer {n}")
            };
            let bd = self.parse_digest(&b.digest, &format!("{what} {part}"))?;
            let path = blob_path(&bd);
            if !self.store.exists(&path) {
                return Err(BundleError::archive(
                    &self.label,
                    format!("{what}: {part} blob {path:?} is missing"),
                ));
            }
            self.blobs.insert(bd, path);
            blobs.push(BlobInfo {
                digest: bd,
                size: b.size,
                media_type: b.media_type.clone(),
                diff_id: None,
                compression: Compression::None,
            });
        }
        let named_subject = match &doc.subject {
            Some(s) => Some(self.parse_digest(&s.digest, &format!("{what} subject"))?),
            None => None,
        };
        let subject = match (subject, named_subject) {
            (Some(given), Some(named)) if given != named => {
                return Err(BundleError::archive(
                    &self.label,
                    format!(
                        "{what}: it is listed for {given} but its manifest's subject is {named}"
                    ),
                ));
            }
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => self.payload_subject(&what, &blobs)?,
        };
        let artifact_type = doc.artifact_type.clone().or_else(|| {
            (doc.config.media_type != media_types::OCI_CONFIG
                && doc.config.media_type != media_types::OCI_EMPTY
                && !doc.config.media_type.is_empty())
            .then(|| doc.config.media_type.clone())
        });
        let annotations = doc.annotations.clone().unwrap_or_default();
        let kind = kind.unwrap_or_else(|| referrer_kind(artifact_type.as_deref(), &annotations));
        let link = match link {
            // `cosign save` names nothing: the tag is the one cosign reads it from.
            Link::Tag(t) if t.is_empty() => {
                Link::Tag(cosign_tag(&subject, kind).unwrap_or_default())
            }
            other => other,
        };
        if link == Link::Subject && doc.subject.is_none() {
            return Err(BundleError::archive(
                &self.label,
                format!("{what}: a referrer of {subject} without a `subject` field"),
            ));
        }
        if !self
            .attachments
            .iter()
            .any(|a| a.digest == digest && a.subject == subject && a.link == link)
        {
            self.attachments.push(Attachment {
                kind,
                subject,
                link,
                manifest: bytes,
                media_type,
                digest,
                artifact_type,
                blobs,
                annotations,
            });
        }
        Ok(())
    }

    /// The image a classic attachment's first signed layer is about (see [`signed_subject`]),
    /// or the layout's only image.
    fn payload_subject(&self, what: &str, blobs: &[BlobInfo]) -> Result<Digest, BundleError> {
        for layer in blobs.iter().skip(1) {
            if layer.media_type != media_types::COSIGN_SIMPLE_SIGNING
                && layer.media_type != media_types::DSSE_ENVELOPE
            {
                continue;
            }
            let bytes = self.store.read(&blob_path(&layer.digest), MAX_JSON)?;
            return signed_subject(&layer.media_type, &bytes).ok_or_else(|| {
                BundleError::archive(
                    &self.label,
                    format!(
                        "{what}: layer {} ({}) names no image digest",
                        layer.digest, layer.media_type
                    ),
                )
            });
        }
        match self.sole_subject {
            Some(d) => Ok(d),
            None => Err(BundleError::archive(
                &self.label,
                format!(
                    "{what}: nothing says which image it belongs to (no tag, no subject, no signed payload, and the layout holds several images)"
                ),
            )),
        }
    }

    /// The referrers fallback index tagged `sha256-<hex>`: every manifest it lists is a
    /// referrer of `subject`. The index itself is not kept: it is rebuilt where it is pushed.
    fn referrers(&mut self, d: &Descriptor, subject: Digest) -> Result<(), BundleError> {
        let what = format!(
            "referrers index {} (tag sha256-{})",
            d.digest,
            subject.hex()
        );
        let (_, bytes) = self.read_manifest(d, &what)?;
        let index: IndexDoc = serde_json::from_slice(&bytes)
            .map_err(|e| BundleError::json(format!("{}!{}", self.label, d.digest), e))?;
        for child in &index.manifests {
            let (digest, child_bytes) =
                self.read_manifest(child, &format!("{what}: manifest {}", child.digest))?;
            let value: serde_json::Value = serde_json::from_slice(&child_bytes).map_err(|e| {
                BundleError::json(format!("{}!{}", self.label, blob_path(&digest)), e)
            })?;
            self.attachment(
                child,
                digest,
                child_bytes,
                value,
                None,
                Some(subject),
                Link::Subject,
            )?;
        }
        Ok(())
    }

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
        if depth == 0 && value.get("subject").is_some() && media_types::is_manifest(&media_type) {
            // An OCI 1.1 referrer listed on its own (as `oras copy -r` leaves them).
            return self.attachment(d, digest, bytes, value, None, None, Link::Subject);
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
    let archive = read_unchecked(store, may_omit, None)?;
    check_subjects(
        &archive.label(),
        &archive.images,
        &archive.indexes,
        &archive.attachments,
    )?;
    Ok(archive)
}

/// [`read`] without checking that each attachment's image is in the layout (the caller checks
/// once it has gathered the images from elsewhere: a wrap keeps them in other layouts).
/// `unnamed`: what an unnamed manifest entry is, when the layout is known to hold attachments
/// of one kind (`helm dt` saves a signature as a layout of its own, naming nothing).
pub(crate) fn read_unchecked(
    store: Store,
    may_omit: &HashSet<Digest>,
    unnamed: Option<AttachmentKind>,
) -> Result<ImageArchive, BundleError> {
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
        attachments: Vec::new(),
        sole_subject: None,
    };
    // `cosign save` names nothing: its signatures belong to the one image it saved.
    let saved: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(media_types::COSIGN_KIND_ANNOTATION))
                .is_some_and(|k| k == cosign_kind::IMAGE || k == cosign_kind::IMAGE_INDEX)
        })
        .collect();
    if let [only] = saved.as_slice() {
        reader.sole_subject = Some(reader.parse_digest(&only.digest, "index.json")?);
    }
    for d in &index.manifests {
        let role = match (role_of(d), unnamed) {
            (Role::Image, Some(kind)) if !media_types::is_index(&d.media_type) => Role::Cosign {
                kind,
                subject: None,
            },
            (role, _) => role,
        };
        match role {
            Role::Image => reader.visit(d, Vec::new(), 0)?,
            Role::Cosign { kind, subject } => {
                let (digest, bytes) =
                    reader.read_manifest(d, &format!("attachment {}", d.digest))?;
                let value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| BundleError::json(format!("{label}!{}", blob_path(&digest)), e))?;
                let link = match (kind, subject) {
                    (AttachmentKind::Referrer, _) => Link::Subject,
                    (_, Some(s)) => Link::Tag(cosign_tag(&s, kind).unwrap_or_default()),
                    // Filled in once the subject is known.
                    (_, None) => Link::Tag(String::new()),
                };
                reader.attachment(d, digest, bytes, value, Some(kind), subject, link)?;
            }
            Role::Referrers(subject) => reader.referrers(d, subject)?,
        }
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
    let (indexes, blobs, omitted, attachments) = (
        reader.indexes,
        reader.blobs,
        reader.omitted,
        reader.attachments,
    );
    Ok(ImageArchive {
        store,
        format: ArchiveFormat::OciLayout,
        images,
        indexes,
        blobs,
        omitted,
        attachments,
    })
}

/// Every attachment must be about a manifest the archive holds. One that is not is refused,
/// not carried: pushed, it would be a signature for nothing the bundle installs, and it is
/// almost always a sign of a mistake upstream (the image was rebuilt or re-pushed after it was
/// signed, or `cosign save` and the image layout came from different runs), which the user
/// must see now, not discover as a failed verification inside the air gap.
pub(crate) fn check_subjects(
    label: &str,
    images: &[Image],
    indexes: &[ImageIndex],
    attachments: &[Attachment],
) -> Result<(), BundleError> {
    for a in attachments {
        let held = images.iter().any(|i| i.manifest_digest == a.subject)
            || indexes.iter().any(|i| i.digest == a.subject);
        if !held {
            return Err(BundleError::AttachmentWithoutSubject {
                path: label.to_string(),
                attachment: a.describe(),
                subject: a.subject,
            });
        }
    }
    Ok(())
}
