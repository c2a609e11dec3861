//! What travels with an image besides its own manifest and blobs: its signatures, attestations,
//! SBOMs and other OCI 1.1 referrers ("attached artifacts", as cosign calls them).
//!
//! Each is a manifest of its own whose bytes must stay exactly as they are: a signature covers
//! the image's digest, and the registry finds the attachment from the image by one of two links
//! ([`Link`]):
//!
//! - cosign's tag scheme: the tag `sha256-<hex>.sig` (`.att`, `.sbom`) in the image's
//!   repository, where `<hex>` is the image manifest's digest;
//! - an OCI 1.1 referrer: the manifest's `subject` names the image; a registry with the
//!   referrers API lists it, one without is given the fallback index tagged `sha256-<hex>`
//!   (the distribution spec's "referrers tag schema").
//!
//! ```
//! use kantup_bundle::Digest;
//! use kantup_bundle::archive::attachment::{AttachmentKind, cosign_tag, parse_cosign_tag};
//! let image: Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
//!     .parse()?;
//! let tag = cosign_tag(&image, AttachmentKind::Signature).expect("signatures have a tag");
//! assert_eq!(tag, "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig");
//! assert_eq!(parse_cosign_tag(&tag), Some((image, Some(AttachmentKind::Signature))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::BlobInfo;
use crate::digest::Digest;

/// What an attachment is to its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachmentKind {
    /// A signature: cosign's simple-signing layers (`.sig`), or a Sigstore bundle whose message
    /// signature is over the image.
    Signature,
    /// An in-toto attestation in a DSSE envelope (`.att`, or a Sigstore bundle holding one):
    /// SBOMs, provenance, vulnerability reports ...
    Attestation,
    /// cosign's deprecated, unsigned SBOM attachment (`.sbom`).
    Sbom,
    /// Any other OCI 1.1 referrer (its `artifactType` says what it is).
    Referrer,
}

impl AttachmentKind {
    /// The suffix of cosign's tag for this kind (`sig`, `att`, `sbom`); referrers have none.
    pub fn cosign_suffix(self) -> Option<&'static str> {
        match self {
            AttachmentKind::Signature => Some("sig"),
            AttachmentKind::Attestation => Some("att"),
            AttachmentKind::Sbom => Some("sbom"),
            AttachmentKind::Referrer => None,
        }
    }
}

/// How a registry finds an attachment from its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// cosign's tag scheme: this tag (`sha256-<hex>.sig` ...) in the image's repository.
    Tag(String),
    /// An OCI 1.1 referrer: the manifest's `subject` names the image.
    Subject,
}

/// One attached manifest, with everything needed to push it digest-exact.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// What it is.
    pub kind: AttachmentKind,
    /// The manifest (platform manifest or index) it is about.
    pub subject: Digest,
    /// How the registry finds it.
    pub link: Link,
    /// Manifest bytes exactly as they are pushed.
    #[serde(skip)]
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub media_type: String,
    /// Digest of `manifest`.
    pub digest: Digest,
    /// The manifest's `artifactType` (or its config's media type when that says more), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob and the layers, as the manifest lists them; all are in the archive.
    pub blobs: Vec<BlobInfo>,
    /// The manifest's own annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl AttachmentKind {
    /// A word for messages: `signature`, `attestation`, `SBOM`, `referrer`.
    pub fn noun(self) -> &'static str {
        match self {
            AttachmentKind::Signature => "signature",
            AttachmentKind::Attestation => "attestation",
            AttachmentKind::Sbom => "SBOM",
            AttachmentKind::Referrer => "referrer",
        }
    }
}

impl Attachment {
    /// For messages: `signature sha256:... (tag sha256-<hex>.sig)` or `... (referrer)`.
    pub fn describe(&self) -> String {
        match &self.link {
            Link::Tag(tag) => format!("{} {} (tag {tag})", self.kind.noun(), self.digest),
            Link::Subject => format!("{} {} (referrer)", self.kind.noun(), self.digest),
        }
    }

    /// Its OCI descriptor as an index lists it (`mediaType`, `digest`, `size`, `artifactType`
    /// when it has one), to which a layout's index adds the name it is known by.
    pub fn descriptor(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.manifest.len(),
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = serde_json::json!(t);
        }
        d
    }
}

/// A signature, attestation or SBOM an archive holds as a plain image, having lost what made it
/// one (see [`ImageArchive::lost_attachments`](super::ImageArchive::lost_attachments)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostAttachment {
    /// The name it has in the archive (`<repository>:sha256-<hex>.sig`).
    pub name: String,
    /// Its (rebuilt) manifest digest in the archive.
    pub image: Digest,
    /// What its tag says it is; `None` for the referrers fallback tag.
    pub kind: Option<AttachmentKind>,
    /// The image it was attached to.
    pub subject: Digest,
}

impl LostAttachment {
    /// For messages: `signature <name> (of sha256:...)`.
    pub fn describe(&self) -> String {
        let noun = self.kind.map_or("referrers index", AttachmentKind::noun);
        format!("{noun} {} (of {})", self.name, self.subject)
    }
}

/// cosign's tag for an attachment of `kind` to the image `subject`: `sha256-<hex>.<suffix>`;
/// `None` for [`AttachmentKind::Referrer`].
pub fn cosign_tag(subject: &Digest, kind: AttachmentKind) -> Option<String> {
    kind.cosign_suffix()
        .map(|suffix| format!("{}.{suffix}", fallback_tag(subject)))
}

/// The referrers fallback tag of an image: `sha256-<hex>` (the tag of the index that lists its
/// referrers where a registry has no referrers API).
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// Reads a tag of cosign's scheme or the referrers fallback tag: the image digest, and the kind
/// for `.sig` / `.att` / `.sbom` (`None` for the bare fallback tag). Other tags give `None`.
pub fn parse_cosign_tag(tag: &str) -> Option<(Digest, Option<AttachmentKind>)> {
    let (stem, kind) = match tag.rsplit_once('.') {
        Some((stem, "sig")) => (stem, Some(AttachmentKind::Signature)),
        Some((stem, "att")) => (stem, Some(AttachmentKind::Attestation)),
        Some((stem, "sbom")) => (stem, Some(AttachmentKind::Sbom)),
        Some(_) => return None,
        None => (tag, None),
    };
    let (algorithm, hex) = stem.split_once('-')?;
    let digest: Digest = format!("{algorithm}:{hex}").parse().ok()?;
    Some((digest, kind))
}

/// The `index.json` `kind` annotation values of `cosign save` (cosign's `pkg/oci/layout`): what
/// an entry is. cosign 3 writes one image per layout and names none of the entries.
pub mod cosign_kind {
    /// The saved image (a platform manifest).
    pub const IMAGE: &str = "dev.cosignproject.cosign/image";
    /// The saved index.
    pub const IMAGE_INDEX: &str = "dev.cosignproject.cosign/imageIndex";
    /// Its `.sig` manifest.
    pub const SIGS: &str = "dev.cosignproject.cosign/sigs";
    /// Its `.att` manifest.
    pub const ATTS: &str = "dev.cosignproject.cosign/atts";
    /// Its `.sbom` manifest.
    pub const SBOMS: &str = "dev.cosignproject.cosign/sboms";
    /// The prefix of referrers' kinds (`.../referrers/<hex>`, as Hauler keeps them).
    pub const REFERRERS_PREFIX: &str = "dev.cosignproject.cosign/referrers/";

    /// The attachment kind of a `kind` value; `None` for images, indexes and other values.
    pub fn attachment_kind(kind: &str) -> Option<super::AttachmentKind> {
        use super::AttachmentKind;
        match kind {
            SIGS => Some(AttachmentKind::Signature),
            ATTS => Some(AttachmentKind::Attestation),
            SBOMS => Some(AttachmentKind::Sbom),
            k if k.starts_with(REFERRERS_PREFIX) => Some(AttachmentKind::Referrer),
            _ => None,
        }
    }
}

/// The manifest annotation cosign 3 puts on a Sigstore bundle referrer: the in-toto predicate
/// type it holds (`https://sigstore.dev/cosign/sign/v1` for an image signature).
pub const SIGSTORE_BUNDLE_PREDICATE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The manifest annotation saying what a Sigstore bundle referrer holds (`dsse-envelope`,
/// `message-signature`).
pub const SIGSTORE_BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// The predicate type of cosign 3's image signatures (a DSSE envelope in a Sigstore bundle).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// What a referrer is, from its `artifactType` and manifest annotations: a Sigstore bundle
/// holding cosign's signature predicate or a message signature is a signature, one holding
/// another predicate an attestation; anything else stays a plain referrer.
pub fn referrer_kind(
    artifact_type: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> AttachmentKind {
    if artifact_type != Some(crate::media_types::SIGSTORE_BUNDLE_V03) {
        return AttachmentKind::Referrer;
    }
    match (
        annotations
            .get(SIGSTORE_BUNDLE_PREDICATE_ANNOTATION)
            .map(String::as_str),
        annotations
            .get(SIGSTORE_BUNDLE_CONTENT_ANNOTATION)
            .map(String::as_str),
    ) {
        (Some(COSIGN_SIGN_PREDICATE), _) | (_, Some("message-signature")) => {
            AttachmentKind::Signature
        }
        (Some(_), _) | (_, Some("dsse-envelope")) => AttachmentKind::Attestation,
        _ => AttachmentKind::Signature,
    }
}

/// The image digest a classic cosign layer is about: a simple-signing payload's
/// `critical.image.docker-manifest-digest`, or the `sha256` subject of the in-toto statement in
/// a DSSE envelope. `None` for other layers or unreadable content (the caller names the file).
pub fn signed_subject(layer_media_type: &str, bytes: &[u8]) -> Option<Digest> {
    use base64::Engine;
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match layer_media_type {
        crate::media_types::COSIGN_SIMPLE_SIGNING => {
            value["critical"]["image"]["docker-manifest-digest"]
                .as_str()?
                .parse()
                .ok()
        }
        crate::media_types::DSSE_ENVELOPE => {
            let payload = base64::engine::general_purpose::STANDARD
                .decode(value["payload"].as_str()?)
                .ok()?;
            let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
            let hex = statement["subject"]
                .as_array()?
                .iter()
                .find_map(|s| s["digest"]["sha256"].as_str())?;
            format!("sha256:{hex}").parse().ok()
        }
        _ => None,
    }
}

/// The image tag in a reference as `index.json` names it (`host:5000/repo:sha256-<hex>.sig`
/// or the bare tag `sha256-<hex>.sig`): what follows the last `:` unless that is a port.
pub fn tag_of_name(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags_round_trip_and_reject_others() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        for kind in [
            AttachmentKind::Signature,
            AttachmentKind::Attestation,
            AttachmentKind::Sbom,
        ] {
            let tag = cosign_tag(&d, kind).unwrap();
            assert_eq!(parse_cosign_tag(&tag), Some((d, Some(kind))));
        }
        assert_eq!(cosign_tag(&d, AttachmentKind::Referrer), None);
        assert_eq!(parse_cosign_tag(&fallback_tag(&d)), Some((d, None)));
        assert_eq!(parse_cosign_tag("v1.2.3"), None);
        assert_eq!(parse_cosign_tag(&format!("sha256-{HEX}.txt")), None);
        assert_eq!(parse_cosign_tag("sha256-short.sig"), None);
        assert_eq!(parse_cosign_tag("latest"), None);
    }

    #[test]
    fn names_give_their_tags() {
        let tag = format!("sha256-{HEX}.sig");
        assert_eq!(tag_of_name(&tag), tag);
        assert_eq!(tag_of_name(&format!("127.0.0.1:5000/a/b:{tag}")), tag);
        assert_eq!(tag_of_name("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
        assert_eq!(tag_of_name("example.com/a:v1"), "v1");
    }

    #[test]
    fn referrers_are_told_apart_by_their_bundle_annotations() {
        let bundle = Some(crate::media_types::SIGSTORE_BUNDLE_V03);
        let with = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(
            referrer_kind(
                bundle,
                &with(SIGSTORE_BUNDLE_PREDICATE_ANNOTATION, COSIGN_SIGN_PREDICATE)
            ),
            AttachmentKind::Signature
        );
        assert_eq!(
            referrer_kind(
                bundle,
                &with(
                    SIGSTORE_BUNDLE_PREDICATE_ANNOTATION,
                    "https://spdx.dev/Document"
                )
            ),
            AttachmentKind::Attestation
        );
        assert_eq!(
            referrer_kind(Some("application/spdx+json"), &BTreeMap::new()),
            AttachmentKind::Referrer
        );
    }
}
