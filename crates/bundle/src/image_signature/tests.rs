//! The verifier on real cosign output (`testdata/`, see its README), and on the cases cosign
//! will not make, made with openssl: a payload changed after signing, a signature over
//! another digest, another key, DSSE envelopes and bundle message signatures.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::archive::attachment::fallback_tag;

const IMAGE: &str = "sha256:45a1eb88f71dbc0b668c94686705494fa097f344068af0cc438922d651c2a556";

fn testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/image_signature/testdata");
    std::fs::read(path.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn key(name: &str) -> VerifyingKey {
    VerifyingKey::from_pem(&String::from_utf8(testdata(name)).unwrap(), name).unwrap()
}

fn image() -> Digest {
    IMAGE.parse().unwrap()
}

/// Every blob of the fixtures, by digest.
fn cosign_blobs() -> BTreeMap<Digest, Vec<u8>> {
    [
        "cf35658581a6852a3c0741ba51369cd01406cfaf9e418ab25bd1e556a8d8a256",
        "537fa1b39efc6f5461e19d3a0ea7a4205c3e64771e97b4869f0c235b85075f81",
        "867dc013fb2e01903c9b38d00493e42847f384dcdfe41e25261c487037dfd938",
        "ed8ac8795ee4bf22610740bba229c137231757dc31a71a359d88e77681e01cf9",
    ]
    .into_iter()
    .map(|hex| {
        (
            format!("sha256:{hex}").parse().unwrap(),
            testdata(&format!("blob-{hex}")),
        )
    })
    .collect()
}

/// The four attachments cosign made: `.sig`, `.att`, and the two bundle referrers.
fn cosign_attachments(subject: &Digest) -> Vec<Attachment> {
    let tag = |kind| Link::Tag(cosign_tag(subject, kind).unwrap());
    vec![
        attachment_from_manifest(
            subject,
            AttachmentKind::Signature,
            tag(AttachmentKind::Signature),
            testdata("sig.manifest.json"),
        ),
        attachment_from_manifest(
            subject,
            AttachmentKind::Attestation,
            tag(AttachmentKind::Attestation),
            testdata("att.manifest.json"),
        ),
        attachment_from_manifest(
            subject,
            AttachmentKind::Referrer,
            Link::Subject,
            testdata("bundle-sign.manifest.json"),
        ),
        attachment_from_manifest(
            subject,
            AttachmentKind::Referrer,
            Link::Subject,
            testdata("bundle-attest.manifest.json"),
        ),
    ]
}

fn outcomes(verdict: &ImageVerdict) -> Vec<(Option<SignatureForm>, Outcome)> {
    verdict
        .checks
        .iter()
        .map(|c| (c.form, c.outcome.clone()))
        .collect()
}

fn verified(origin: &str) -> Outcome {
    Outcome::Verified {
        key: origin.to_string(),
    }
}

#[test]
fn cosign_signatures_attestations_and_bundles_verify_with_their_key() {
    let attachments = cosign_attachments(&image());
    let verdict = verify_image(
        &image(),
        "demo/app",
        &attachments,
        &cosign_blobs(),
        &[key("other.pub"), key("cosign.pub")],
    );
    assert_eq!(
        outcomes(&verdict),
        [
            (Some(SignatureForm::SimpleSigning), verified("cosign.pub")),
            (Some(SignatureForm::DsseAttestation), verified("cosign.pub")),
            (Some(SignatureForm::SigstoreBundle), verified("cosign.pub")),
            (Some(SignatureForm::SigstoreBundle), verified("cosign.pub")),
        ]
    );
    assert!(verdict.is_verified());
    assert_eq!(
        verdict
            .checks
            .iter()
            .map(|c| c.predicate_type.as_deref())
            .collect::<Vec<_>>(),
        [
            None,
            Some("https://spdx.dev/Document"),
            Some("https://sigstore.dev/cosign/sign/v1"),
            Some("https://spdx.dev/Document")
        ]
    );
    let sboms: Vec<(String, bool)> = verdict
        .sboms
        .iter()
        .map(|s| (s.format.clone(), s.verified))
        .collect();
    assert_eq!(sboms, [("spdx".into(), true), ("spdx".into(), true)]);
    assert!(verdict.summary().starts_with("verified by cosign.pub"));
}

#[test]
fn another_key_is_refused_and_a_bundle_says_which_key_signed_it() {
    let attachments = cosign_attachments(&image());
    let verdict = verify_image(
        &image(),
        "demo/app",
        &attachments,
        &cosign_blobs(),
        &[key("other.pub")],
    );
    let hint = key("cosign.pub").hint();
    assert_eq!(hint, "+/+kxjHDP6iGtPNs38sbn7B2cKXA6XoHwXGs34e6mH8=");
    let by_hint = Refusal::WrongKey {
        signer: Some(format!("the key with hint {hint}")),
    };
    assert_eq!(
        outcomes(&verdict)
            .into_iter()
            .map(|(_, o)| o)
            .collect::<Vec<_>>(),
        [
            Outcome::Refused(Refusal::WrongKey { signer: None }),
            Outcome::Refused(Refusal::WrongKey { signer: None }),
            Outcome::Refused(by_hint.clone()),
            Outcome::Refused(by_hint),
        ]
    );
    assert!(!verdict.is_verified());
    // Refused, the attestations still say what they claim to be, and their SBOMs are listed
    // as not verified.
    assert_eq!(
        verdict
            .checks
            .iter()
            .map(|c| c.predicate_type.as_deref())
            .collect::<Vec<_>>(),
        [
            None,
            Some("https://spdx.dev/Document"),
            Some("https://sigstore.dev/cosign/sign/v1"),
            Some("https://spdx.dev/Document")
        ]
    );
    let sboms: Vec<(String, bool)> = verdict
        .sboms
        .iter()
        .map(|s| (s.format.clone(), s.verified))
        .collect();
    assert_eq!(sboms, [("spdx".into(), false), ("spdx".into(), false)]);
    let err = require_verified(&[verdict]).unwrap_err().to_string();
    assert!(err.contains("demo/app"), "{err}");
    assert!(err.contains(IMAGE), "{err}");
    assert!(err.contains("wrong key"), "{err}");
}

#[test]
fn signatures_moved_to_another_image_are_for_another_digest() {
    // cosign's attachments of one image presented as another's (a `.sig` copied under the
    // other image's tag): each is validly signed, but about the first image.
    let other = Digest::of(b"another image manifest");
    let attachments = cosign_attachments(&other);
    let verdict = verify_image(
        &other,
        "demo/other",
        &attachments,
        &cosign_blobs(),
        &[key("cosign.pub")],
    );
    for check in &verdict.checks {
        assert_eq!(
            check.outcome,
            Outcome::Refused(Refusal::OtherDigest {
                signed: IMAGE.to_string()
            }),
            "{check:?}"
        );
    }
    assert_eq!(verdict.checks.len(), 4);
}

#[test]
fn payloads_changed_after_signing_are_tampered() {
    let attachments = cosign_attachments(&image());
    // Every stored blob edited in place (one byte of JSON whitespace or text changed): the
    // manifests still name the old digests.
    let blobs: BTreeMap<Digest, Vec<u8>> = cosign_blobs()
        .into_iter()
        .map(|(digest, bytes)| {
            let text = String::from_utf8(bytes).unwrap();
            let changed = if text.contains("docker-reference") {
                text.replace("demo/app", "demo/evil")
            } else {
                text.replacen("\"payload\"", " \"payload\"", 1)
            };
            assert_ne!(changed, text);
            (digest, changed.into_bytes())
        })
        .collect();
    let verdict = verify_image(
        &image(),
        "demo/app",
        &attachments,
        &blobs,
        &[key("cosign.pub")],
    );
    for check in &verdict.checks {
        assert!(
            matches!(
                check.outcome,
                Outcome::Refused(Refusal::TamperedPayload { .. })
            ),
            "{check:?}"
        );
    }
    assert_eq!(verdict.checks.len(), 4);
    assert!(!verdict.is_verified());
}

#[test]
fn a_signature_changed_in_its_manifest_is_tampered() {
    let mut sig = cosign_attachments(&image()).remove(0);
    let text = String::from_utf8(sig.manifest.clone()).unwrap();
    // One character of the base64 signature changed; the manifest keeps its stored digest.
    let changed = text.replacen("MEUCIQCh", "MEUCIQCi", 1);
    assert_ne!(changed, text);
    sig.manifest = changed.into_bytes();
    let verdict = verify_image(
        &image(),
        "demo/app",
        [&sig],
        &cosign_blobs(),
        &[key("cosign.pub")],
    );
    assert!(
        matches!(
            verdict.checks[0].outcome,
            Outcome::Refused(Refusal::TamperedSignature { .. })
        ),
        "{verdict:?}"
    );
}

#[test]
fn an_image_without_attachments_is_unsigned_and_an_sbom_alone_signs_nothing() {
    let verdict = verify_image(
        &image(),
        "demo/app",
        [],
        &cosign_blobs(),
        &[key("cosign.pub")],
    );
    assert!(!verdict.is_verified());
    assert_eq!(verdict.refusals().collect::<Vec<_>>(), [&Refusal::Unsigned]);
    assert_eq!(verdict.summary(), "unsigned: no signature");

    let sbom_layer = br#"{"spdxVersion":"SPDX-2.3"}"#;
    let sbom = attachment_from_manifest(
        &image(),
        AttachmentKind::Sbom,
        Link::Tag(cosign_tag(&image(), AttachmentKind::Sbom).unwrap()),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "layers": [{"mediaType": "text/spdx+json", "size": sbom_layer.len(),
                        "digest": Digest::of(sbom_layer).to_string()}]
        }))
        .unwrap(),
    );
    let verdict = verify_image(
        &image(),
        "demo/app",
        [&sbom],
        &cosign_blobs(),
        &[key("cosign.pub")],
    );
    assert!(!verdict.is_verified());
    assert_eq!(verdict.refusals().collect::<Vec<_>>(), [&Refusal::Unsigned]);
    assert_eq!(
        verdict.sboms,
        [SbomRef {
            attachment: sbom.digest,
            format: "spdx".into(),
            verified: false
        }]
    );
}

/// openssl in a scratch directory.
struct Openssl {
    dir: tempfile::TempDir,
}

impl Openssl {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// A P-256 key pair (`NAME.pem`, `NAME.pub.pem` as `openssl ec -pubout` writes it).
    fn key_pair(&self, name: &str) -> VerifyingKey {
        let private = format!("{name}.pem");
        let public = format!("{name}.pub.pem");
        self.run(&[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            &private,
        ]);
        self.run(&["ec", "-in", &private, "-pubout", "-out", &public]);
        VerifyingKey::read(&self.dir.path().join(public)).unwrap()
    }

    /// `openssl dgst -sha256 -sign NAME.pem` over `message`: the DER signature.
    fn sign(&self, name: &str, message: &[u8]) -> Vec<u8> {
        std::fs::write(self.dir.path().join("message"), message).unwrap();
        self.run(&[
            "dgst",
            "-sha256",
            "-sign",
            &format!("{name}.pem"),
            "message",
        ])
    }
}

fn simple_payload(image: &Digest) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.local/kant/app"}},"image":{{"docker-manifest-digest":"{image}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

fn blobs_of(items: &[&[u8]]) -> BTreeMap<Digest, Vec<u8>> {
    items.iter().map(|b| (Digest::of(b), b.to_vec())).collect()
}

fn refusal(verdict: &ImageVerdict) -> Refusal {
    match &verdict.checks[..] {
        [only] => match &only.outcome {
            Outcome::Refused(r) => r.clone(),
            Outcome::Verified { key } => panic!("verified by {key}"),
        },
        checks => panic!("{} checks: {checks:?}", checks.len()),
    }
}

#[test]
fn openssl_simple_signing_cases() {
    let openssl = Openssl::new();
    let signer = openssl.key_pair("signer");
    let stranger = openssl.key_pair("stranger");
    let image = Digest::of(b"image manifest");
    let payload = simple_payload(&image);
    let signature = openssl.sign("signer", &payload);
    let attachment = simple_signing_attachment(&image, &payload, &signature);
    let check = |attachment: &Attachment, blobs: &BTreeMap<Digest, Vec<u8>>, key: &VerifyingKey| {
        verify_image(
            &image,
            "app",
            [attachment],
            blobs,
            std::slice::from_ref(key),
        )
    };

    // openssl's signature verifies.
    assert!(check(&attachment, &blobs_of(&[&payload]), &signer).is_verified());
    // Another key.
    assert_eq!(
        refusal(&check(&attachment, &blobs_of(&[&payload]), &stranger)),
        Refusal::WrongKey { signer: None }
    );
    // The payload changed after signing, stored under its old digest.
    let mut changed = payload.clone();
    changed.extend_from_slice(b" ");
    let tampered: BTreeMap<Digest, Vec<u8>> = [(Digest::of(&payload), changed)].into();
    assert!(matches!(
        refusal(&check(&attachment, &tampered, &signer)),
        Refusal::TamperedPayload { .. }
    ));
    // A valid signature by the right key over a payload for another digest.
    let elsewhere = Digest::of(b"another image manifest");
    let other_payload = simple_payload(&elsewhere);
    let other_signature = openssl.sign("signer", &other_payload);
    let moved = simple_signing_attachment(&image, &other_payload, &other_signature);
    assert_eq!(
        refusal(&check(&moved, &blobs_of(&[&other_payload]), &signer)),
        Refusal::OtherDigest {
            signed: elsewhere.to_string()
        }
    );
    // A signed payload that is not simple signing.
    let junk = b"not json".to_vec();
    let junk_attachment = simple_signing_attachment(&image, &junk, &openssl.sign("signer", &junk));
    assert!(matches!(
        refusal(&check(&junk_attachment, &blobs_of(&[&junk]), &signer)),
        Refusal::Malformed { .. }
    ));
    // A signature annotation that is not base64.
    let mut bad = attachment.clone();
    let text = String::from_utf8(bad.manifest.clone()).unwrap();
    let encoded = STANDARD.encode(&signature);
    bad.manifest = text.replace(&encoded, "!!!").into_bytes();
    bad.digest = Digest::of(&bad.manifest);
    assert!(matches!(
        refusal(&check(&bad, &blobs_of(&[&payload]), &signer)),
        Refusal::Malformed { .. }
    ));
    // Missing blob.
    assert!(matches!(
        refusal(&check(&attachment, &BTreeMap::new(), &signer)),
        Refusal::Malformed { .. }
    ));
}

/// An `.att` attachment holding `envelope` (JSON).
fn attestation(image: &Digest, envelope: &[u8]) -> Attachment {
    attachment_from_manifest(
        image,
        AttachmentKind::Attestation,
        Link::Tag(cosign_tag(image, AttachmentKind::Attestation).unwrap()),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "layers": [{"mediaType": media_types::DSSE_ENVELOPE, "size": envelope.len(),
                        "digest": Digest::of(envelope).to_string(),
                        "annotations": {"predicateType": "https://cyclonedx.org/bom"}}]
        }))
        .unwrap(),
    )
}

fn statement(subject: &Digest) -> Vec<u8> {
    format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"app","digest":{{"sha256":"{}"}}}}],"predicateType":"https://cyclonedx.org/bom","predicate":{{"bomFormat":"CycloneDX"}}}}"#,
        subject.hex()
    )
    .into_bytes()
}

fn envelope(openssl: &Openssl, signer: &str, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let signature = openssl.sign(signer, &dsse::pae(payload_type, payload));
    serde_json::to_vec(&serde_json::json!({
        "payloadType": payload_type,
        "payload": STANDARD.encode(payload),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(signature)}]
    }))
    .unwrap()
}

#[test]
fn openssl_dsse_attestation_cases() {
    let openssl = Openssl::new();
    let signer = openssl.key_pair("signer");
    let stranger = openssl.key_pair("stranger");
    let image = Digest::of(b"image manifest");
    let check = |envelope: &[u8], blobs: &BTreeMap<Digest, Vec<u8>>, key: &VerifyingKey| {
        verify_image(
            &image,
            "app",
            [&attestation(&image, envelope)],
            blobs,
            std::slice::from_ref(key),
        )
    };
    let good = envelope(
        &openssl,
        "signer",
        dsse::IN_TOTO_PAYLOAD_TYPE,
        &statement(&image),
    );
    let verdict = check(&good, &blobs_of(&[&good]), &signer);
    assert!(verdict.is_verified(), "{verdict:?}");
    assert_eq!(verdict.sboms.len(), 1);
    assert_eq!(verdict.sboms[0].format, "cyclonedx");
    assert!(verdict.sboms[0].verified);

    assert_eq!(
        refusal(&check(&good, &blobs_of(&[&good]), &stranger)),
        Refusal::WrongKey { signer: None }
    );
    // The statement about another image, validly signed.
    let elsewhere = Digest::of(b"another image manifest");
    let moved = envelope(
        &openssl,
        "signer",
        dsse::IN_TOTO_PAYLOAD_TYPE,
        &statement(&elsewhere),
    );
    assert_eq!(
        refusal(&check(&moved, &blobs_of(&[&moved]), &signer)),
        Refusal::OtherDigest {
            signed: elsewhere.to_string()
        }
    );
    // The signature covers the PAE, not the bare payload: a payload type changed after signing
    // breaks it.
    let retyped: Vec<u8> = String::from_utf8(good.clone())
        .unwrap()
        .replace(dsse::IN_TOTO_PAYLOAD_TYPE, "application/json")
        .into_bytes();
    let tampered: BTreeMap<Digest, Vec<u8>> = [(Digest::of(&good), retyped.clone())].into();
    assert!(matches!(
        refusal(&check(&good, &tampered, &signer)),
        Refusal::TamperedPayload { .. }
    ));
    // Re-stored under its new digest, it is no longer verified by the key.
    assert_eq!(
        refusal(&check(&retyped, &blobs_of(&[&retyped]), &signer)),
        Refusal::WrongKey { signer: None }
    );
    // Signed, but not an in-toto statement.
    let other_type = envelope(&openssl, "signer", "text/plain", b"hello");
    assert!(matches!(
        refusal(&check(&other_type, &blobs_of(&[&other_type]), &signer)),
        Refusal::Malformed { .. }
    ));
    // No signatures.
    let empty =
        br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#;
    assert_eq!(
        refusal(&check(empty, &blobs_of(&[empty]), &signer)),
        Refusal::Unsigned
    );
}

/// A referrer holding one Sigstore bundle.
fn bundle_referrer(image: &Digest, bundle: &[u8]) -> Attachment {
    attachment_from_manifest(
        image,
        AttachmentKind::Referrer,
        Link::Subject,
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "artifactType": media_types::SIGSTORE_BUNDLE_V03,
            "layers": [{"mediaType": media_types::SIGSTORE_BUNDLE_V03, "size": bundle.len(),
                        "digest": Digest::of(bundle).to_string()}],
            "subject": {"mediaType": media_types::OCI_MANIFEST, "digest": image.to_string(), "size": 1}
        }))
        .unwrap(),
    )
}

fn message_bundle(hint: &str, digest: &[u8], signature: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mediaType": media_types::SIGSTORE_BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": STANDARD.encode(signature)
        }
    }))
    .unwrap()
}

#[test]
fn openssl_bundle_message_signature_cases() {
    let openssl = Openssl::new();
    let signer = openssl.key_pair("signer");
    let stranger = openssl.key_pair("stranger");
    // The signed message is the image manifest itself.
    let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
    let image = Digest::of(manifest);
    let digest = hex::decode(image.hex()).unwrap();
    let signature = openssl.sign("signer", manifest);
    let bundle = message_bundle(&signer.hint(), &digest, &signature);
    let check = |bundle: &[u8], key: &VerifyingKey| {
        verify_image(
            &image,
            "app",
            [&bundle_referrer(&image, bundle)],
            &blobs_of(&[bundle]),
            std::slice::from_ref(key),
        )
    };
    assert!(check(&bundle, &signer).is_verified());
    assert_eq!(
        refusal(&check(&bundle, &stranger)),
        Refusal::WrongKey {
            signer: Some(format!("the key with hint {}", signer.hint()))
        }
    );
    // The right key's hint and this image's digest, but a signature that is not over it: the
    // signature was changed.
    let forged = message_bundle(&signer.hint(), &digest, &openssl.sign("signer", b"other"));
    assert!(matches!(
        refusal(&check(&forged, &signer)),
        Refusal::TamperedSignature { .. }
    ));
    // A message signature over another manifest.
    let other_manifest = br#"{"schemaVersion":2,"layers":[{}]}"#;
    let other = Digest::of(other_manifest);
    let moved = message_bundle(
        &signer.hint(),
        &hex::decode(other.hex()).unwrap(),
        &openssl.sign("signer", other_manifest),
    );
    assert_eq!(
        refusal(&check(&moved, &signer)),
        Refusal::OtherDigest {
            signed: other.to_string()
        }
    );
    // Not v0.3.
    let old = String::from_utf8(bundle.clone())
        .unwrap()
        .replace("bundle.v0.3+json", "bundle+json;version=0.1")
        .into_bytes();
    assert!(matches!(
        refusal(&check(&old, &signer)),
        Refusal::Malformed { .. }
    ));
    // Keyless (a certificate): not verifiable with a key.
    let keyless = serde_json::to_vec(&serde_json::json!({
        "mediaType": media_types::SIGSTORE_BUNDLE_V03,
        "verificationMaterial": {"certificate": {"rawBytes": "MAA="}},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(&digest)},
                             "signature": STANDARD.encode(&signature)}
    }))
    .unwrap();
    assert!(matches!(
        refusal(&check(&keyless, &signer)),
        Refusal::WrongKey { signer: Some(s) } if s.contains("certificate")
    ));
    // The fallback tag is how such a referrer travels without a referrers API.
    assert_eq!(fallback_tag(&image), format!("sha256-{}", image.hex()));
}
