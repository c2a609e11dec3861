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
}
