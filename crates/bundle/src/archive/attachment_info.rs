//! What an image's attachments say, read without verifying anything: who signed it (a key, by
//! its hint when a Sigstore bundle gives one, or a certificate's identity for keyless
//! signatures), which attestations it has (their in-toto predicate types), and the SBOMs it
//! carries, from SPDX / CycloneDX attestations or cosign's `.sbom` attachments.
//!
//! Nothing here checks a signature: that is the job of whoever holds the keys. Each entry
//! names the attachment it comes from ([`SbomDocument::attachment`] ...), so a verifier can
//! say which of them it verified.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::ImageArchive;
use super::attachment::{Attachment, COSIGN_SIGN_PREDICATE, Link};
use crate::digest::Digest;
use crate::error::BundleError;
use crate::media_types;

/// The annotation cosign puts on each `.att` layer: the predicate type of its statement.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// How a signature or attestation is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    /// cosign's classic layers (simple signing or DSSE, signature in annotations).
    Cosign,
    /// A Sigstore bundle (v0.3), as cosign 3 writes it.
    SigstoreBundle,
}

/// One signature of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureInfo {
    /// The attachment manifest it is in.
    pub attachment: Digest,
    /// How it is stored.
    pub format: SignatureFormat,
    /// Who signed, as far as the signature says: `key` (with the key's hint when a Sigstore
    /// bundle names one: `key <hint>`), or the identity of a keyless certificate (its e-mail
    /// or URI subject alternative name, else its subject).
    pub signer: String,
}

/// One attestation of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationInfo {
    /// The attachment manifest it is in.
    pub attachment: Digest,
    /// How it is stored.
    pub format: SignatureFormat,
    /// The in-toto predicate type (`https://spdx.dev/Document`, `https://slsa.dev/provenance/v1`).
    pub predicate_type: String,
}

/// The format of an SBOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SbomFormat {
    /// SPDX JSON.
    SpdxJson,
    /// SPDX tag-value text.
    Spdx,
    /// CycloneDX JSON.
    CyclonedxJson,
    /// CycloneDX XML.
    CyclonedxXml,
    /// Syft's own JSON.
    SyftJson,
}

impl SbomFormat {
    /// A file name extension for it (`spdx.json`, `cdx.json` ...).
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "spdx.json",
            SbomFormat::Spdx => "spdx",
            SbomFormat::CyclonedxJson => "cdx.json",
            SbomFormat::CyclonedxXml => "cdx.xml",
            SbomFormat::SyftJson => "syft.json",
        }
    }

    /// The format of an attestation's predicate type, if it is an SBOM.
    pub fn of_predicate(predicate_type: &str) -> Option<SbomFormat> {
        if predicate_type.starts_with("https://spdx.dev/Document") {
            Some(SbomFormat::SpdxJson)
        } else if predicate_type.starts_with("https://cyclonedx.org/bom") {
            Some(SbomFormat::CyclonedxJson)
        } else if predicate_type.starts_with("https://syft.dev/bom") {
            Some(SbomFormat::SyftJson)
        } else {
            None
        }
    }

    /// The format of a `.sbom` layer's media type (as `cosign attach sbom --type` sets it).
    pub fn of_media_type(media_type: &str) -> Option<SbomFormat> {
        match media_type {
            "text/spdx+json" | "application/spdx+json" => Some(SbomFormat::SpdxJson),
            "text/spdx" => Some(SbomFormat::Spdx),
            "application/vnd.cyclonedx+json" => Some(SbomFormat::CyclonedxJson),
            "application/vnd.cyclonedx+xml" | "application/vnd.cyclonedx" => {
                Some(SbomFormat::CyclonedxXml)
            }
            "application/vnd.syft+json" => Some(SbomFormat::SyftJson),
            _ => None,
        }
    }
}

/// Where an SBOM was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SbomSource {
    /// The predicate of a (signed) attestation.
    Attestation,
    /// cosign's deprecated, unsigned `.sbom` attachment.
    Attachment,
}

/// One SBOM an image carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomDocument {
    /// The image manifest or index it describes.
    pub subject: Digest,
    /// The attachment manifest it is in.
    pub attachment: Digest,
    /// Its format.
    pub format: SbomFormat,
    /// Where it was found.
    pub source: SbomSource,
    /// The document (an attestation's predicate as JSON, or the attached layer's bytes).
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// Everything attached to one image manifest or index.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttachedTo {
    /// Signatures.
    pub signatures: Vec<SignatureInfo>,
    /// Attestations (SBOM attestations included).
    pub attestations: Vec<AttestationInfo>,
    /// SBOMs, from attestations and `.sbom` attachments.
    pub sboms: Vec<SbomDocument>,
    /// Other referrers: their artifact types.
    pub referrers: Vec<String>,
}

impl AttachedTo {
    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
            && self.attestations.is_empty()
            && self.sboms.is_empty()
            && self.referrers.is_empty()
    }
}

/// Reads what is attached to `subject` in `archive`. Content that says it is a simple-signing
/// payload, a DSSE envelope or a Sigstore bundle and cannot be read as one is an error naming
/// the attachment; layers of other types are passed over.
pub fn attached_to(archive: &ImageArchive, subject: &Digest) -> Result<AttachedTo, BundleError> {
    let mut out = AttachedTo::default();
    for a in archive.attachments_of(subject) {
        read_attachment(archive, a, &mut out)?;
    }
    Ok(out)
}

/// What is attached to one image manifest or index of an archive, with the names a user
/// knows it by.
#[derive(Debug, Clone, Serialize)]
pub struct ImageAttachments {
    /// The image's name (an unnamed platform manifest: its index's name and the platform).
    pub image: String,
    /// The manifest or index digest the attachments are about.
    pub digest: Digest,
    /// The platform, for a platform manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<super::Platform>,
    /// What is attached.
    #[serde(flatten)]
    pub attached: AttachedTo,
}

/// [`attached_to`] for every index and image of `archive` that has attachments: indexes
/// first, then images, each in archive order.
pub fn by_image(archive: &ImageArchive) -> Result<Vec<ImageAttachments>, BundleError> {
    let mut out = Vec::new();
    for index in archive.indexes() {
        let attached = attached_to(archive, &index.digest)?;
        if !attached.is_empty() {
            out.push(ImageAttachments {
                image: index.display_name(),
                digest: index.digest,
                platform: None,
                attached,
            });
        }
    }
    for image in archive.images() {
        let attached = attached_to(archive, &image.manifest_digest)?;
        if attached.is_empty() {
            continue;
        }
        let name = archive.name_of(image);
        out.push(ImageAttachments {
            image: name,
            digest: image.manifest_digest,
            platform: image.platform.clone(),
            attached,
        });
    }
    Ok(out)
}

fn bad(archive: &ImageArchive, a: &Attachment, reason: impl std::fmt::Display) -> BundleError {
    BundleError::archive(archive.label(), format!("{}: {reason}", a.describe()))
}

fn read_attachment(
    archive: &ImageArchive,
    a: &Attachment,
    out: &mut AttachedTo,
) -> Result<(), BundleError> {
    let layers: Vec<(&super::BlobInfo, BTreeMap<String, String>)> = layer_annotations(a)
        .into_iter()
        .zip(a.blobs.iter().skip(1))
        .map(|(ann, b)| (b, ann))
        .collect();
    let mut found = false;
    for (layer, annotations) in &layers {
        match layer.media_type.as_str() {
            media_types::COSIGN_SIMPLE_SIGNING => {
                found = true;
                let signer = match annotations.get(media_types::COSIGN_CERTIFICATE_ANNOTATION) {
                    Some(pem) => certificate_identity_pem(pem)
                        .map_err(|e| bad(archive, a, format!("certificate: {e}")))?,
                    None => "key".to_string(),
                };
                out.signatures.push(SignatureInfo {
                    attachment: a.digest,
                    format: SignatureFormat::Cosign,
                    signer,
                });
            }
            media_types::DSSE_ENVELOPE => {
                found = true;
                let bytes = archive.read_blob(&layer.digest)?;
                let envelope: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(archive, a, format!("DSSE envelope: {e}")))?;
                let statement = dsse_statement(&envelope)
                    .ok_or_else(|| bad(archive, a, "DSSE envelope without an in-toto statement"))?;
                record_statement(a, SignatureFormat::Cosign, &statement, out);
            }
            media_types::SIGSTORE_BUNDLE_V03 => {
                found = true;
                let bytes = archive.read_blob(&layer.digest)?;
                let bundle: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(archive, a, format!("Sigstore bundle: {e}")))?;
                let signer = bundle_signer(&bundle)
                    .map_err(|e| bad(archive, a, format!("Sigstore bundle certificate: {e}")))?;
                // cosign 3 signs an image as a DSSE statement of its own predicate type;
                // any other statement is an attestation.
                match dsse_statement(&bundle["dsseEnvelope"]) {
                    Some(statement)
                        if statement["predicateType"].as_str() != Some(COSIGN_SIGN_PREDICATE) =>
                    {
                        record_statement(a, SignatureFormat::SigstoreBundle, &statement, out);
                    }
                    _ => out.signatures.push(SignatureInfo {
                        attachment: a.digest,
                        format: SignatureFormat::SigstoreBundle,
                        signer,
                    }),
                }
            }
            other => {
                if let Some(format) = SbomFormat::of_media_type(other) {
                    found = true;
                    out.sboms.push(SbomDocument {
                        subject: a.subject,
                        attachment: a.digest,
                        format,
                        source: SbomSource::Attachment,
                        bytes: archive.read_blob(&layer.digest)?,
                    });
                }
            }
        }
    }
    if !found && a.link == Link::Subject {
        out.referrers.push(
            a.artifact_type
                .clone()
                .unwrap_or_else(|| a.media_type.clone()),
        );
    }
    Ok(())
}

/// The layers' own annotations, in manifest order.
fn layer_annotations(a: &Attachment) -> Vec<BTreeMap<String, String>> {
    let manifest: Value = serde_json::from_slice(&a.manifest).unwrap_or_default();
    manifest["layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .map(|l| serde_json::from_value(l["annotations"].clone()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// The in-toto statement a DSSE envelope carries (`payload`, base64).
fn dsse_statement(envelope: &Value) -> Option<Value> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str()?)
        .ok()?;
    serde_json::from_slice(&payload).ok()
}

fn record_statement(
    a: &Attachment,
    format: SignatureFormat,
    statement: &Value,
    out: &mut AttachedTo,
) {
    let predicate_type = statement["predicateType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(sbom) = SbomFormat::of_predicate(&predicate_type) {
        let predicate = &statement["predicate"];
        let bytes = match predicate.as_str() {
            // Older cosign kept a non-JSON predicate as a string.
            Some(text) => text.as_bytes().to_vec(),
            None => serde_json::to_vec_pretty(predicate).expect("JSON serializes"),
        };
        out.sboms.push(SbomDocument {
            subject: a.subject,
            attachment: a.digest,
            format: sbom,
            source: SbomSource::Attestation,
            bytes,
        });
    }
    out.attestations.push(AttestationInfo {
        attachment: a.digest,
        format,
        predicate_type,
    });
}

/// Who signed a Sigstore bundle: its public key's hint, or its certificate's identity.
fn bundle_signer(bundle: &Value) -> Result<String, String> {
    let material = &bundle["verificationMaterial"];
    let raw = material["certificate"]["rawBytes"]
        .as_str()
        .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str());
    if let Some(raw) = raw {
        let der = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| e.to_string())?;
        return certificate_identity_der(&der);
    }
    Ok(match material["publicKey"]["hint"].as_str() {
        Some(hint) if !hint.is_empty() => format!("key {hint}"),
        _ => "key".to_string(),
    })
}

fn certificate_identity_pem(pem: &str) -> Result<String, String> {
    use x509_cert::der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    Ok(certificate_identity(&cert))
}

fn certificate_identity_der(der: &[u8]) -> Result<String, String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(certificate_identity(&cert))
}

/// A keyless (Fulcio) certificate names its signer in the subject alternative name (an e-mail
/// or a workflow URI), and has an empty subject; other certificates in their subject.
fn certificate_identity(cert: &x509_cert::Certificate) -> String {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    const SAN: &str = "2.5.29.17";
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id.to_string() != SAN {
            continue;
        }
        let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
            continue;
        };
        for name in &san.0 {
            match name {
                GeneralName::Rfc822Name(email) => return email.to_string(),
                GeneralName::UniformResourceIdentifier(uri) => return uri.to_string(),
                _ => {}
            }
        }
    }
    cert.tbs_certificate.subject.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_formats_from_predicates_and_media_types() {
        assert_eq!(
            SbomFormat::of_predicate("https://spdx.dev/Document"),
            Some(SbomFormat::SpdxJson)
        );
        assert_eq!(
            SbomFormat::of_predicate("https://cyclonedx.org/bom/v1.5"),
            Some(SbomFormat::CyclonedxJson)
        );
        assert_eq!(
            SbomFormat::of_predicate("https://slsa.dev/provenance/v1"),
            None
        );
        assert_eq!(
            SbomFormat::of_media_type("text/spdx+json"),
            Some(SbomFormat::SpdxJson)
        );
        assert_eq!(SbomFormat::of_media_type("application/octet-stream"), None);
    }

    #[test]
    fn a_bundle_without_certificate_names_its_key_hint() {
        let bundle = serde_json::json!({"verificationMaterial": {"publicKey": {"hint": "abc="}}});
        assert_eq!(bundle_signer(&bundle).unwrap(), "key abc=");
        let bare = serde_json::json!({"verificationMaterial": {"publicKey": {}}});
        assert_eq!(bundle_signer(&bare).unwrap(), "key");
    }
}
