//! DSSE (Dead Simple Signing Envelope): the pre-authentication encoding a signature covers,
//! the envelope, and the in-toto statement inside it (whose subject names the image).

use base64::Engine;
use serde_json::Value;

use super::Refusal;
use crate::digest::Digest;
use crate::signature::VerifyingKey;

/// The payload type of an in-toto statement, the only one an image attestation may carry.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The pre-authentication encoding DSSE signs:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal bytes.
///
/// ```
/// use kantup_bundle::image_signature::dsse::pae;
/// assert_eq!(
///     pae("http://example.com/HelloWorld", b"hello world"),
///     b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
/// );
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Base64 as DSSE allows it: standard or URL-safe, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text.trim()).ok())
}

/// A decoded DSSE envelope.
pub struct Envelope {
    /// `payloadType`.
    pub payload_type: String,
    /// The decoded payload (the serialized body).
    pub payload: Vec<u8>,
    /// The decoded signatures.
    pub signatures: Vec<Vec<u8>>,
}

impl Envelope {
    /// Reads an envelope's JSON value; a missing field or bad base64 is [`Refusal::Malformed`].
    pub fn parse(value: &Value) -> Result<Envelope, Refusal> {
        let field = |name: &str| {
            value[name]
                .as_str()
                .ok_or_else(|| Refusal::malformed(format!("the DSSE envelope has no `{name}`")))
        };
        let payload_type = field("payloadType")?.to_string();
        let payload = decode_base64(field("payload")?)
            .ok_or_else(|| Refusal::malformed("the DSSE payload is not base64"))?;
        let signatures = value["signatures"]
            .as_array()
            .ok_or_else(|| Refusal::malformed("the DSSE envelope has no `signatures`"))?
            .iter()
            .map(|s| {
                s["sig"]
                    .as_str()
                    .and_then(decode_base64)
                    .ok_or_else(|| Refusal::malformed("a DSSE signature is missing or not base64"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Envelope {
            payload_type,
            payload,
            signatures,
        })
    }

    /// The first key that signed the envelope (any of its signatures over the PAE).
    pub fn signed_by<'k>(&self, keys: &'k [VerifyingKey]) -> Option<&'k VerifyingKey> {
        let message = pae(&self.payload_type, &self.payload);
        keys.iter().find(|key| {
            self.signatures
                .iter()
                .any(|signature| key.verifies_message(&message, signature))
        })
    }

    /// The predicate type the payload claims, read without verifying anything (to say which
    /// attestation a refusal is about); `None` when the payload is no readable statement.
    pub fn claimed_predicate_type(&self) -> Option<String> {
        let statement: Value = serde_json::from_slice(&self.payload).ok()?;
        statement["predicateType"].as_str().map(str::to_string)
    }

    /// The in-toto statement a verified envelope carries, checked to be about `image`: its
    /// predicate type. Another payload type or an unreadable statement is
    /// [`Refusal::Malformed`]; a statement about other digests is [`Refusal::OtherDigest`].
    pub fn statement_about(&self, image: &Digest) -> Result<String, Refusal> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(Refusal::malformed(format!(
                "the DSSE payload type is {:?}, not an in-toto statement ({IN_TOTO_PAYLOAD_TYPE})",
                self.payload_type
            )));
        }
        let statement: Value = serde_json::from_slice(&self.payload)
            .map_err(|e| Refusal::malformed(format!("the in-toto statement is not JSON: {e}")))?;
        let subjects = statement["subject"]
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Refusal::malformed("the in-toto statement has no subject"))?;
        let digests: Vec<String> = subjects
            .iter()
            .filter_map(|s| s["digest"][image.algorithm()].as_str())
            .map(|hex| format!("{}:{hex}", image.algorithm()))
            .collect();
        if !digests.iter().any(|d| *d == image.to_string()) {
            return Err(Refusal::OtherDigest {
                signed: digests.join(", "),
            });
        }
        Ok(statement["predicateType"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the DSSE protocol document (secure-systems-lab/dsse, protocol.md):
    /// its PAE bytes, and its P-256 signature (RFC 6979, raw `r || s`) over them, checked with
    /// its public key (X, Y as there, here in SEC1 hex).
    #[test]
    fn the_protocol_documents_test_vector() {
        let envelope: Value = serde_json::from_str(
            r#"{"payload": "aGVsbG8gd29ybGQ=",
                "payloadType": "http://example.com/HelloWorld",
                "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#,
        )
        .unwrap();
        let envelope = Envelope::parse(&envelope).unwrap();
        assert_eq!(
            pae(&envelope.payload_type, &envelope.payload),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        let key = VerifyingKey::from_sec1(
            &hex::decode(
                "0467cd390f77aa359cb08c2235f652270493a9ed832b0abcc01f70954c0390d238\
                 0c782bd54e269125a44f4433aff1432ce94e12bca73aa67ac80cea12608ddf74",
            )
            .unwrap(),
            "dsse-vector",
        )
        .unwrap();
        let keys = [key];
        assert!(envelope.signed_by(&keys).is_some());
        // One byte of the body changed: the signature no longer covers it.
        let changed = Envelope {
            payload: b"hello worle".to_vec(),
            ..envelope
        };
        assert!(changed.signed_by(&keys).is_none());
        // Not an in-toto statement, so not about any image.
        let image = Digest::of(b"image");
        assert!(matches!(
            changed.statement_about(&image),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_accepted() {
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_base64("not base64!").is_none());
    }
}
