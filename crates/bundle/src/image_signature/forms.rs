//! The three signature forms: each layer of an attachment manifest checked by its media type.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::dsse::{Envelope, decode_base64};
use super::{BlobSource, Outcome, Refusal, SbomRef, SignatureCheck, SignatureForm};
use crate::archive::attachment::{Attachment, AttachmentKind};
use crate::digest::Digest;
use crate::media_types;
use crate::signature::VerifyingKey;

/// The media type a Sigstore bundle v0.3 names itself with inside (both spellings exist).
const BUNDLE_V03_NAMES: [&str; 2] = [
    media_types::SIGSTORE_BUNDLE_V03,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
];

/// One layer as the attachment manifest lists it.
struct Layer {
    media_type: String,
    digest: Option<Digest>,
    annotations: Value,
}

fn layers(manifest: &Value) -> Vec<Layer> {
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| Layer {
            media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
            digest: l["digest"].as_str().and_then(|d| d.parse().ok()),
            annotations: l["annotations"].clone(),
        })
        .collect()
}

/// Every signature in `attachment` checked against `image` (one per signature layer; an
/// attachment that should hold a signature and holds none gives one refusal).
pub(super) fn check_attachment(
    image: &Digest,
    attachment: &Attachment,
    blobs: &dyn BlobSource,
    keys: &[VerifyingKey],
) -> Vec<SignatureCheck> {
    let check = |form, predicate_type, outcome| SignatureCheck {
        attachment: attachment.digest,
        kind: attachment.kind,
        form,
        predicate_type,
        outcome,
    };
    let manifest: Value = match serde_json::from_slice(&attachment.manifest) {
        Ok(v) => v,
        Err(e) => {
            return vec![check(
                None,
                None,
                Outcome::Refused(Refusal::malformed(format!(
                    "the attachment manifest is not JSON: {e}"
                ))),
            )];
        }
    };
    // The signature of a `.sig` lives in the manifest: bytes that no longer match the digest
    // they are stored under mean it was edited.
    let manifest_changed = Digest::of(&attachment.manifest) != attachment.digest;
    let mut checks = Vec::new();
    for layer in layers(&manifest) {
        let form = match layer.media_type.as_str() {
            media_types::COSIGN_SIMPLE_SIGNING => SignatureForm::SimpleSigning,
            media_types::DSSE_ENVELOPE => SignatureForm::DsseAttestation,
            media_types::SIGSTORE_BUNDLE_V03 => SignatureForm::SigstoreBundle,
            _ => continue,
        };
        let (predicate_type, outcome) = match read_layer(&layer, blobs) {
            Err(refusal) => (None, Err(refusal)),
            Ok((bytes, payload_changed)) => {
                let input = LayerInput {
                    image,
                    bytes: &bytes,
                    payload_changed,
                    manifest_changed,
                    annotations: &layer.annotations,
                    keys,
                };
                match form {
                    SignatureForm::SimpleSigning => (None, simple_signing(&input)),
                    SignatureForm::DsseAttestation => split(dsse_layer(&input)),
                    SignatureForm::SigstoreBundle => split(sigstore_bundle(&input)),
                }
            }
        };
        let outcome = match outcome {
            Ok(key) => Outcome::Verified {
                key: key.origin().to_string(),
            },
            Err(refusal) => Outcome::Refused(refusal),
        };
        checks.push(check(Some(form), predicate_type, outcome));
    }
    let should_sign = matches!(
        attachment.kind,
        AttachmentKind::Signature | AttachmentKind::Attestation
    );
    if checks.is_empty() && should_sign {
        checks.push(check(None, None, Outcome::Refused(Refusal::Unsigned)));
    }
    checks
}

/// A verified key with the predicate type, or a refusal with what the predicate type was.
type Checked<'k> = Result<(&'k VerifyingKey, Option<String>), (Option<String>, Refusal)>;

fn split(checked: Checked<'_>) -> (Option<String>, Result<&VerifyingKey, Refusal>) {
    match checked {
        Ok((key, predicate)) => (predicate, Ok(key)),
        Err((predicate, refusal)) => (predicate, Err(refusal)),
    }
}

/// The layer's bytes and whether they no longer match the digest the manifest gives them.
fn read_layer(layer: &Layer, blobs: &dyn BlobSource) -> Result<(Vec<u8>, bool), Refusal> {
    let digest = layer
        .digest
        .ok_or_else(|| Refusal::malformed("a signature layer has no valid digest"))?;
    let bytes = blobs
        .blob(&digest)
        .map_err(|e| Refusal::malformed(format!("cannot read the signature layer: {e}")))?;
    let changed = Digest::of(&bytes) != digest;
    Ok((bytes, changed))
}

struct LayerInput<'a, 'k> {
    image: &'a Digest,
    bytes: &'a [u8],
    payload_changed: bool,
    manifest_changed: bool,
    annotations: &'a Value,
    keys: &'k [VerifyingKey],
}

const PAYLOAD_CHANGED: &str =
    "its bytes no longer match the digest its signature manifest gives them";

fn simple_signing<'k>(input: &LayerInput<'_, 'k>) -> Result<&'k VerifyingKey, Refusal> {
    if input.payload_changed {
        return Err(Refusal::TamperedPayload {
            detail: format!("the simple-signing payload was changed: {PAYLOAD_CHANGED}"),
        });
    }
    let encoded = input.annotations[media_types::COSIGN_SIGNATURE_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    if encoded.is_empty() {
        return Err(Refusal::Unsigned);
    }
    let signature = decode_base64(encoded).ok_or_else(|| {
        if input.manifest_changed {
            tampered_signature()
        } else {
            Refusal::malformed(format!(
                "the {} annotation is not base64",
                media_types::COSIGN_SIGNATURE_ANNOTATION
            ))
        }
    })?;
    let prehash: [u8; 32] = Sha256::digest(input.bytes).into();
    let Some(key) = input
        .keys
        .iter()
        .find(|k| k.verifies_prehash(&prehash, &signature))
    else {
        if input.manifest_changed {
            return Err(tampered_signature());
        }
        let keyless = input.annotations[media_types::COSIGN_CERTIFICATE_ANNOTATION].is_string();
        return Err(Refusal::WrongKey {
            signer: keyless.then(|| "a certificate (keyless signature)".to_string()),
        });
    };
    let payload: Value = serde_json::from_slice(input.bytes)
        .map_err(|e| Refusal::malformed(format!("the simple-signing payload is not JSON: {e}")))?;
    let signed = payload["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .ok_or_else(|| {
            Refusal::malformed("the payload has no critical.image.docker-manifest-digest")
        })?;
    if signed != input.image.to_string() {
        return Err(Refusal::OtherDigest {
            signed: signed.to_string(),
        });
    }
    Ok(key)
}

fn tampered_signature() -> Refusal {
    Refusal::TamperedSignature {
        detail: "the signature manifest, which holds the signature, no longer matches its digest"
            .to_string(),
    }
}

fn dsse_layer<'k>(input: &LayerInput<'_, 'k>) -> Checked<'k> {
    let value: Value = serde_json::from_slice(input.bytes).map_err(|e| {
        (
            None,
            changed_or(
                input,
                Refusal::malformed(format!("the DSSE envelope is not JSON: {e}")),
            ),
        )
    })?;
    check_envelope(input, &value, None)
}

/// A refusal, unless the bytes were changed after signing: then that is the reason.
fn changed_or(input: &LayerInput<'_, '_>, refusal: Refusal) -> Refusal {
    if input.payload_changed {
        Refusal::TamperedPayload {
            detail: format!("the signed envelope was changed: {PAYLOAD_CHANGED}"),
        }
    } else {
        refusal
    }
}

/// The envelope checked: signed by a key, about the image. `hint` is a bundle's key hint.
fn check_envelope<'k>(
    input: &LayerInput<'_, 'k>,
    value: &Value,
    hint: Option<&str>,
) -> Checked<'k> {
    let envelope = Envelope::parse(value).map_err(|r| (None, changed_or(input, r)))?;
    // A refusal still says which attestation it is about, as the payload claims it.
    let claimed = envelope.claimed_predicate_type();
    if envelope.signatures.is_empty() {
        return Err((claimed, changed_or(input, Refusal::Unsigned)));
    }
    let Some(key) = envelope.signed_by(input.keys) else {
        return Err((
            claimed,
            unverified(input, hint, "envelope's payload or signature"),
        ));
    };
    if input.payload_changed {
        return Err((claimed, changed_or(input, Refusal::Unsigned)));
    }
    match envelope.statement_about(input.image) {
        Ok(predicate) => Ok((key, Some(predicate))),
        Err(refusal) => Err((claimed, refusal)),
    }
}

/// Why no key verified a signature, from what the bytes and the key hint show.
fn unverified(input: &LayerInput<'_, '_>, hint: Option<&str>, what: &str) -> Refusal {
    if input.payload_changed {
        return changed_or(input, Refusal::Unsigned);
    }
    match hint {
        Some(hint) if input.keys.iter().any(|k| k.hint() == hint) => Refusal::TamperedPayload {
            detail: format!(
                "the bundle names one of the given keys, which does not verify it: the {what} was changed after signing"
            ),
        },
        Some(hint) => Refusal::WrongKey {
            signer: Some(format!("the key with hint {hint}")),
        },
        None => Refusal::WrongKey { signer: None },
    }
}

fn sigstore_bundle<'k>(input: &LayerInput<'_, 'k>) -> Checked<'k> {
    let bundle: Value = serde_json::from_slice(input.bytes).map_err(|e| {
        (
            None,
            changed_or(
                input,
                Refusal::malformed(format!("the Sigstore bundle is not JSON: {e}")),
            ),
        )
    })?;
    let media_type = bundle["mediaType"].as_str().unwrap_or_default();
    if !BUNDLE_V03_NAMES.contains(&media_type) {
        return Err((
            None,
            changed_or(
                input,
                Refusal::malformed(format!(
                    "not a Sigstore bundle v0.3 (mediaType {media_type:?})"
                )),
            ),
        ));
    }
    let material = &bundle["verificationMaterial"];
    let hint = material["publicKey"]["hint"].as_str();
    if material["publicKey"].is_null() {
        let keyless =
            !material["certificate"].is_null() || !material["x509CertificateChain"].is_null();
        let refusal = if keyless {
            Refusal::WrongKey {
                signer: Some("a certificate (keyless signature)".to_string()),
            }
        } else {
            Refusal::malformed("the bundle names no public key")
        };
        return Err((None, changed_or(input, refusal)));
    }
    if bundle["dsseEnvelope"].is_object() {
        return check_envelope(input, &bundle["dsseEnvelope"], hint);
    }
    let message = &bundle["messageSignature"];
    if !message.is_object() {
        return Err((
            None,
            changed_or(
                input,
                Refusal::malformed(
                    "the bundle holds neither a DSSE envelope nor a message signature",
                ),
            ),
        ));
    }
    message_signature(input, message, hint)
        .map(|key| (key, None))
        .map_err(|r| (None, r))
}

/// A bundle's message signature over an image: the signed message is the image manifest,
/// so `messageDigest` must be the image's digest and the signature verify over it.
fn message_signature<'k>(
    input: &LayerInput<'_, 'k>,
    message: &Value,
    hint: Option<&str>,
) -> Result<&'k VerifyingKey, Refusal> {
    let algorithm = message["messageDigest"]["algorithm"]
        .as_str()
        .unwrap_or_default();
    if algorithm != "SHA2_256" {
        return Err(changed_or(
            input,
            Refusal::malformed(format!(
                "the message digest's algorithm is {algorithm:?}, not SHA2_256"
            )),
        ));
    }
    let digest: [u8; 32] = message["messageDigest"]["digest"]
        .as_str()
        .and_then(decode_base64)
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| {
            changed_or(
                input,
                Refusal::malformed("the message digest is not 32 bytes of base64"),
            )
        })?;
    let signature = message["signature"]
        .as_str()
        .and_then(decode_base64)
        .ok_or_else(|| {
            changed_or(
                input,
                Refusal::malformed("the message signature is not base64"),
            )
        })?;
    let signed = format!("sha256:{}", hex::encode(digest));
    let Some(key) = input
        .keys
        .iter()
        .find(|k| k.verifies_prehash(&digest, &signature))
    else {
        // One of our keys, this image's digest, a signature that does not verify over it:
        // the signature is what changed.
        return Err(
            match unverified(input, hint, "message digest or signature") {
                Refusal::TamperedPayload { .. } if signed == input.image.to_string() => {
                    Refusal::TamperedSignature {
                        detail: "the bundle names one of the given keys and this image's digest, \
                             but its signature does not verify over it"
                            .to_string(),
                    }
                }
                other => other,
            },
        );
    };
    if input.payload_changed {
        return Err(changed_or(input, Refusal::Unsigned));
    }
    if signed != input.image.to_string() {
        return Err(Refusal::OtherDigest { signed });
    }
    Ok(key)
}

/// cosign's deprecated unsigned `.sbom` attachment: each layer is an SBOM.
pub(super) fn sbom_layers(attachment: &Attachment) -> Vec<SbomRef> {
    let manifest: Value = serde_json::from_slice(&attachment.manifest).unwrap_or(Value::Null);
    layers(&manifest)
        .into_iter()
        .map(|layer| SbomRef {
            attachment: attachment.digest,
            format: if layer.media_type.contains("spdx") {
                "spdx".to_string()
            } else if layer.media_type.contains("cyclonedx") {
                "cyclonedx".to_string()
            } else {
                layer.media_type
            },
            verified: false,
        })
        .collect()
}
