//! Verifies image signatures offline with pinned public keys: whether at least one valid
//! signature by one of the keys covers an image (a manifest digest), and if not, why, per
//! attachment.
//!
//! Three forms are read, with the rules cosign and sigstore-go apply to a key (no transparency
//! log, no certificate, nothing fetched):
//!
//! - classic simple signing (`.sig`): each layer of type
//!   [`COSIGN_SIMPLE_SIGNING`](crate::media_types::COSIGN_SIMPLE_SIGNING) is the payload; the
//!   base64 DER ECDSA P-256 / SHA-256 signature over its exact bytes is the layer annotation
//!   [`COSIGN_SIGNATURE_ANNOTATION`](crate::media_types::COSIGN_SIGNATURE_ANNOTATION); the
//!   payload's `critical.image.docker-manifest-digest` must be the image's digest;
//! - a DSSE attestation (`.att`): the signature covers the PAE of the envelope's payload type
//!   and payload ([`dsse::pae`]); the payload is an in-toto statement one of whose subjects has
//!   the image's digest;
//! - a Sigstore bundle v0.3 (cosign 3's referrers): a DSSE envelope as above, or a message
//!   signature whose `messageDigest` is the image's digest and whose signature is over it; its
//!   key is a public key (a hint), not a certificate.
//!
//! A multi-platform image is verified platform by platform ([`verify_archive`] checks every
//! platform manifest; a signature on the index alone does not cover them).
//!
//! Why a signature is refused ([`Refusal`]) comes from what the bytes show: a payload whose
//! bytes no longer match the digest its manifest names was changed after signing; a signature
//! manifest whose bytes no longer match its digest had its signature changed; a bundle whose
//! key hint names another key was signed by another key. A signature that no key verifies and
//! whose bytes are all consistent is reported as signed by another key: ECDSA cannot tell that
//! apart from a payload changed and re-hashed on purpose.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kantup_bundle::Digest;
//! use kantup_bundle::archive::attachment::{Attachment, AttachmentKind, Link, cosign_tag};
//! use kantup_bundle::image_signature::{verify_image, Refusal};
//! use kantup_bundle::signature::SigningKey;
//!
//! let image = Digest::of(b"an image manifest");
//! let key = SigningKey::generate();
//! let payload = format!(
//!     r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{image}"}},"type":"cosign container image signature"}},"optional":null}}"#
//! ).into_bytes();
//! let attachment = kantup_bundle::image_signature::simple_signing_attachment(
//!     &image,
//!     &payload,
//!     &key.sign_message(&payload),
//! );
//! let blobs: BTreeMap<Digest, Vec<u8>> = [(Digest::of(&payload), payload.clone())].into();
//! let verdict = verify_image(&image, "r/app", [&attachment], &blobs, &[key.verifying_key()]);
//! assert!(verdict.is_verified());
//!
//! let other = SigningKey::generate().verifying_key();
//! let verdict = verify_image(&image, "r/app", [&attachment], &blobs, &[other]);
//! assert!(matches!(verdict.refusals().next(), Some(Refusal::WrongKey { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dsse;
mod forms;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::archive::ImageArchive;
use crate::archive::attachment::{Attachment, AttachmentKind, Link, cosign_tag};
use crate::digest::Digest;
use crate::media_types;
use crate::signature::VerifyingKey;

/// Where the verifier reads an attachment's blobs (payloads, envelopes, bundles).
pub trait BlobSource {
    /// The blob's stored bytes, or why they cannot be read.
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, String>;
}

impl BlobSource for ImageArchive {
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        self.read_blob(digest).map_err(|e| e.to_string())
    }
}

impl BlobSource for BTreeMap<Digest, Vec<u8>> {
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        self.get(digest)
            .cloned()
            .ok_or_else(|| format!("blob {digest} not found"))
    }
}

impl BlobSource for HashMap<Digest, Vec<u8>> {
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        self.get(digest)
            .cloned()
            .ok_or_else(|| format!("blob {digest} not found"))
    }
}

/// Which form a signature has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureForm {
    /// cosign's classic simple-signing layer (`.sig`).
    SimpleSigning,
    /// A DSSE envelope holding an in-toto statement (`.att`).
    DsseAttestation,
    /// A Sigstore bundle v0.3 (message signature or DSSE envelope).
    SigstoreBundle,
}

/// Why a signature does not cover the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Refusal {
    /// No signature at all: the image has no signature or attestation, or the attachment
    /// holds no signature.
    Unsigned,
    /// No given key verifies it: signed by another key (named by `signer` where the signature
    /// says which: a bundle's key hint, a certificate).
    WrongKey {
        /// The key or certificate the signature names, if it names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        signer: Option<String>,
    },
    /// Validly signed, but the payload is about other digests.
    OtherDigest {
        /// The digest(s) the signed payload names.
        signed: String,
    },
    /// The signed payload was changed after signing.
    TamperedPayload {
        /// What shows it.
        detail: String,
    },
    /// The signature was changed after signing.
    TamperedSignature {
        /// What shows it.
        detail: String,
    },
    /// Not a signature kantup can read (bad JSON, missing field, bad base64, unknown form).
    Malformed {
        /// What is wrong.
        detail: String,
    },
}

impl Refusal {
    pub(crate) fn malformed(detail: impl Into<String>) -> Refusal {
        Refusal::Malformed {
            detail: detail.into(),
        }
    }

    /// The reason's short name: `unsigned`, `wrong-key`, `other-digest`, `tampered-payload`,
    /// `tampered-signature`, `malformed`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::WrongKey { .. } => "wrong-key",
            Refusal::OtherDigest { .. } => "other-digest",
            Refusal::TamperedPayload { .. } => "tampered-payload",
            Refusal::TamperedSignature { .. } => "tampered-signature",
            Refusal::Malformed { .. } => "malformed",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("unsigned: no signature"),
            Refusal::WrongKey { signer: None } => f.write_str(
                "wrong key: none of the given keys verifies the signature (signed by another key)",
            ),
            Refusal::WrongKey {
                signer: Some(signer),
            } => write!(
                f,
                "wrong key: signed by {signer}, which is none of the given keys"
            ),
            Refusal::OtherDigest { signed } => write!(
                f,
                "signed payload for another digest: it names {signed}, not this image"
            ),
            Refusal::TamperedPayload { detail } => write!(f, "tampered payload: {detail}"),
            Refusal::TamperedSignature { detail } => write!(f, "tampered signature: {detail}"),
            Refusal::Malformed { detail } => write!(f, "malformed signature: {detail}"),
        }
    }
}

/// What one signature came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Valid, about the image, by this key (its file).
    Verified {
        /// The key's origin (its file).
        key: String,
    },
    /// Refused.
    Refused(Refusal),
}

/// One signature (one layer of an attachment) checked.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The attachment manifest holding it.
    pub attachment: Digest,
    /// What the attachment is.
    pub kind: AttachmentKind,
    /// Its form, when recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<SignatureForm>,
    /// The in-toto predicate type of an attestation (`https://spdx.dev/Document` ...); for a
    /// refused one, what its (unverified) payload claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The verdict.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// An SBOM an image carries (an attestation with an SPDX or CycloneDX predicate, or cosign's
/// unsigned `.sbom` attachment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomRef {
    /// The attachment holding it.
    pub attachment: Digest,
    /// `spdx` or `cyclonedx` (or the media type of an `.sbom` layer).
    pub format: String,
    /// Whether a given key verified the attestation holding it.
    pub verified: bool,
}

/// The verdict on one image (one platform manifest).
#[derive(Debug, Clone, Serialize)]
pub struct ImageVerdict {
    /// The manifest digest.
    pub image: Digest,
    /// A name for messages (reference and platform).
    pub name: String,
    /// Every signature checked, in attachment order.
    pub checks: Vec<SignatureCheck>,
    /// The SBOMs the image carries.
    pub sboms: Vec<SbomRef>,
}

impl ImageVerdict {
    /// The first signature a key verified, if any.
    pub fn verified_by(&self) -> Option<&SignatureCheck> {
        self.checks
            .iter()
            .find(|c| matches!(c.outcome, Outcome::Verified { .. }))
    }

    /// Whether at least one signature by a given key covers the image.
    pub fn is_verified(&self) -> bool {
        self.verified_by().is_some()
    }

    /// Why each signature was refused (just [`Refusal::Unsigned`] when there is none).
    pub fn refusals(&self) -> impl Iterator<Item = &Refusal> {
        static UNSIGNED: Refusal = Refusal::Unsigned;
        let none = self.checks.is_empty().then_some(&UNSIGNED);
        none.into_iter()
            .chain(self.checks.iter().filter_map(|c| match &c.outcome {
                Outcome::Refused(r) => Some(r),
                Outcome::Verified { .. } => None,
            }))
    }

    /// One line: `verified by KEY` or every refusal with its attachment.
    pub fn summary(&self) -> String {
        if let Some(check) = self.verified_by() {
            let Outcome::Verified { key } = &check.outcome else {
                unreachable!("verified_by returns a verified check")
            };
            return format!("verified by {key} (attachment {})", check.attachment);
        }
        if self.checks.is_empty() {
            return Refusal::Unsigned.to_string();
        }
        self.checks
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Refused(r) => Some(format!("{r} (attachment {})", c.attachment)),
                Outcome::Verified { .. } => None,
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Checks every signature among `attachments` (those about `image`; others are skipped)
/// with `keys`, reading their blobs from `blobs`. Nothing is fetched.
pub fn verify_image<'a>(
    image: &Digest,
    name: &str,
    attachments: impl IntoIterator<Item = &'a Attachment>,
    blobs: &dyn BlobSource,
    keys: &[VerifyingKey],
) -> ImageVerdict {
    let mut checks = Vec::new();
    let mut sboms = Vec::new();
    for attachment in attachments {
        if attachment.subject != *image {
            continue;
        }
        if attachment.kind == AttachmentKind::Sbom {
            sboms.extend(forms::sbom_layers(attachment));
            continue;
        }
        let found = forms::check_attachment(image, attachment, blobs, keys);
        for check in &found {
            if let Some(format) = check.predicate_type.as_deref().and_then(sbom_format) {
                sboms.push(SbomRef {
                    attachment: check.attachment,
                    format: format.to_string(),
                    verified: matches!(check.outcome, Outcome::Verified { .. }),
                });
            }
        }
        checks.extend(found);
    }
    ImageVerdict {
        image: *image,
        name: name.to_string(),
        checks,
        sboms,
    }
}

/// `spdx` or `cyclonedx` for an in-toto predicate type that is an SBOM.
pub fn sbom_format(predicate_type: &str) -> Option<&'static str> {
    if predicate_type.starts_with("https://spdx.dev/Document") {
        Some("spdx")
    } else if predicate_type.starts_with("https://cyclonedx.org/bom") {
        Some("cyclonedx")
    } else {
        None
    }
}

/// Verifies every image (every platform manifest) of `archive` with `keys`, from the
/// attachments it carries. A platform manifest without a name of its own is named by its
/// index's name (and its platform).
pub fn verify_archive(archive: &ImageArchive, keys: &[VerifyingKey]) -> Vec<ImageVerdict> {
    archive
        .images()
        .iter()
        .map(|image| {
            let mut name = archive.name_of(image);
            if let Some(platform) = &image.platform {
                name = format!("{name} ({platform})");
            }
            verify_image(
                &image.manifest_digest,
                &name,
                archive.attachments_of(&image.manifest_digest),
                archive,
                keys,
            )
        })
        .collect()
}

/// The images some given key did not verify, as an error naming each and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", refused_message(.refused))]
pub struct ImagesNotVerified {
    /// The refused images' verdicts.
    pub refused: Vec<ImageVerdict>,
}

fn refused_message(refused: &[ImageVerdict]) -> String {
    let lines: Vec<String> = refused
        .iter()
        .map(|v| format!("  {} {}: {}", v.name, v.image, v.summary()))
        .collect();
    format!(
        "{} image(s) not signed by any --image-key:\n{}",
        refused.len(),
        lines.join("\n")
    )
}

/// `Ok` when every verdict is verified, else the refused ones.
pub fn require_verified(verdicts: &[ImageVerdict]) -> Result<(), ImagesNotVerified> {
    let refused: Vec<ImageVerdict> = verdicts
        .iter()
        .filter(|v| !v.is_verified())
        .cloned()
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ImagesNotVerified { refused })
    }
}

/// A `.sig` attachment as cosign writes it for one simple-signing `payload` and its DER
/// `signature` (for examples and tests; the payload blob is `Digest::of(payload)`).
pub fn simple_signing_attachment(image: &Digest, payload: &[u8], signature: &[u8]) -> Attachment {
    use base64::Engine;
    let config = b"{}";
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": media_types::OCI_CONFIG, "size": config.len(), "digest": Digest::of(config).to_string()},
        "layers": [{
            "mediaType": media_types::COSIGN_SIMPLE_SIGNING,
            "size": payload.len(),
            "digest": Digest::of(payload).to_string(),
            "annotations": {
                media_types::COSIGN_SIGNATURE_ANNOTATION:
                    base64::engine::general_purpose::STANDARD.encode(signature)
            }
        }]
    }))
    .expect("manifest serializes");
    attachment_from_manifest(
        image,
        AttachmentKind::Signature,
        Link::Tag(cosign_tag(image, AttachmentKind::Signature).expect("signatures have a tag")),
        manifest,
    )
}

/// An [`Attachment`] from a manifest's exact bytes (as fetched from a registry or read from a
/// layout): its digest, media type, artifact type, blobs and annotations read from the bytes.
pub fn attachment_from_manifest(
    subject: &Digest,
    kind: AttachmentKind,
    link: Link,
    manifest: Vec<u8>,
) -> Attachment {
    use crate::archive::{BlobInfo, Compression};
    let value: Value = serde_json::from_slice(&manifest).unwrap_or(Value::Null);
    let blob = |d: &Value| {
        Some(BlobInfo {
            digest: d["digest"].as_str()?.parse().ok()?,
            size: d["size"].as_u64()?,
            media_type: d["mediaType"].as_str()?.to_string(),
            diff_id: None,
            compression: Compression::None,
        })
    };
    let blobs = std::iter::once(&value["config"])
        .chain(value["layers"].as_array().into_iter().flatten())
        .filter_map(blob)
        .collect();
    let annotations = value["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Attachment {
        kind,
        subject: *subject,
        link,
        digest: Digest::of(&manifest),
        media_type: value["mediaType"]
            .as_str()
            .unwrap_or(media_types::OCI_MANIFEST)
            .to_string(),
        artifact_type: value["artifactType"].as_str().map(str::to_string),
        blobs,
        annotations,
        manifest,
    }
}

#[cfg(test)]
mod tests;
