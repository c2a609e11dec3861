//! Differential test of the offline verifier against sigstore-js (the npm package `sigstore`,
//! its `@sigstore/verify`, run offline by `tests/sigstore-js-oracle/verify.js`): Sigstore
//! bundles v0.3 that sigstore-js accepts with a public key, kantup accepts; those it refuses,
//! kantup refuses. The bundles: the DSSE bundle the real cosign made (the verifier's
//! `testdata`) and its SPDX attestation bundle, each also with another key, the first with its
//! payload changed; and message-signature bundles over an image manifest made with openssl,
//! one signed over another message, one validly signed for another message's digest, one
//! checked with another key.
//!
//! sigstore-js checks a DSSE bundle's signature only: that the statement's subject is the image
//! is the caller's policy (kantup's, tested in the verifier's own tests), so no case here
//! presents a bundle for another image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kantup_bundle::Digest;
use kantup_bundle::archive::attachment::{AttachmentKind, Link};
use kantup_bundle::image_signature::{Outcome, attachment_from_manifest, verify_image};
use kantup_bundle::media_types;
use kantup_bundle::signature::VerifyingKey;
use kantup_test_support::workspace_root;

const COSIGN_IMAGE: &str =
    "sha256:45a1eb88f71dbc0b668c94686705494fa097f344068af0cc438922d651c2a556";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/image_signature/testdata")
        .join(name)
}

/// sigstore-js's verdict: `Ok(())` or its refusal.
fn sigstore_js(bundle: &Path, key: &Path, artifact: Option<&Path>) -> Result<(), String> {
    let modules = workspace_root().join(".tools/sigstore-js/node_modules");
    assert!(
        modules.join("@sigstore/verify").is_dir(),
        "no sigstore-js in {}: run scripts/install-test-tools.sh",
        modules.display()
    );
    let mut command = Command::new("node");
    command
        .arg(workspace_root().join("tests/sigstore-js-oracle/verify.js"))
        .arg(bundle)
        .arg(key)
        .env("NODE_PATH", &modules);
    if let Some(artifact) = artifact {
        command.arg(artifact);
    }
    let output = command.output().expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match (output.status.success(), stdout.as_str()) {
        (true, "verified") => Ok(()),
        (false, refused) if refused.starts_with("refused:") => Err(refused.to_string()),
        _ => panic!(
            "sigstore-js said neither: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// kantup's verdict on `bundle` as a referrer of `image`.
fn kantup(image: &Digest, bundle: &[u8], key: &Path) -> Result<(), String> {
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": media_types::SIGSTORE_BUNDLE_V03,
        "layers": [{"mediaType": media_types::SIGSTORE_BUNDLE_V03, "size": bundle.len(),
                    "digest": Digest::of(bundle).to_string()}],
    }))
    .unwrap();
    let attachment =
        attachment_from_manifest(image, AttachmentKind::Referrer, Link::Subject, manifest);
    let blobs: BTreeMap<Digest, Vec<u8>> = [(Digest::of(bundle), bundle.to_vec())].into();
    let key = VerifyingKey::read(key).unwrap();
    let verdict = verify_image(image, "image", [&attachment], &blobs, &[key]);
    match &verdict.checks[..] {
        [check] => match &check.outcome {
            Outcome::Verified { .. } => Ok(()),
            Outcome::Refused(refusal) => Err(refusal.to_string()),
        },
        checks => panic!("{checks:?}"),
    }
}

/// Both verdicts, which must agree; returns whether both accepted.
fn agree(what: &str, image: &Digest, bundle: &Path, key: &Path, artifact: Option<&Path>) -> bool {
    let js = sigstore_js(bundle, key, artifact);
    let ours = kantup(image, &std::fs::read(bundle).unwrap(), key);
    assert_eq!(
        js.is_ok(),
        ours.is_ok(),
        "{what}: sigstore-js {js:?}, kantup {ours:?}"
    );
    eprintln!("{what}: sigstore-js {js:?}; kantup {ours:?}");
    js.is_ok()
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn sigstore_js_and_kantup_agree_on_v03_bundles() {
    let image: Digest = COSIGN_IMAGE.parse().unwrap();
    let cosign_bundle =
        testdata("blob-867dc013fb2e01903c9b38d00493e42847f384dcdfe41e25261c487037dfd938");
    let cosign_key = testdata("cosign.pub");
    let other_key = testdata("other.pub");
    assert!(agree(
        "cosign's DSSE bundle, its key",
        &image,
        &cosign_bundle,
        &cosign_key,
        None
    ));
    assert!(!agree(
        "cosign's DSSE bundle, another key",
        &image,
        &cosign_bundle,
        &other_key,
        None
    ));
    // cosign's SPDX attestation as a Sigstore bundle.
    let cosign_attestation =
        testdata("blob-ed8ac8795ee4bf22610740bba229c137231757dc31a71a359d88e77681e01cf9");
    assert!(agree(
        "cosign's SPDX attestation bundle, its key",
        &image,
        &cosign_attestation,
        &cosign_key,
        None
    ));
    assert!(!agree(
        "cosign's SPDX attestation bundle, another key",
        &image,
        &cosign_attestation,
        &other_key,
        None
    ));
    let dir = tempfile::tempdir().unwrap();
    let tampered = dir.path().join("tampered.json");
    let text = std::fs::read_to_string(&cosign_bundle).unwrap();
    // The statement's first byte changed (`{"_` -> `{"` + 0x60): the payload no longer matches
    // the signature.
    let changed = text.replacen("\"payload\":\"eyJf", "\"payload\":\"eyJg", 1);
    assert_ne!(changed, text);
    std::fs::write(&tampered, changed).unwrap();
    assert!(!agree(
        "cosign's DSSE bundle, payload changed",
        &image,
        &tampered,
        &cosign_key,
        None
    ));

    // Message signatures over an image manifest, made with openssl.
    let d = dir.path();
    openssl(
        d,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "k.pem",
        ],
    );
    openssl(d, &["ec", "-in", "k.pem", "-pubout", "-out", "k.pub"]);
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    std::fs::write(d.join("manifest.json"), manifest).unwrap();
    std::fs::write(d.join("other.json"), b"another message").unwrap();
    let image = Digest::of(manifest);
    let key = VerifyingKey::read(&d.join("k.pub")).unwrap();
    // `digest_of` names the message the bundle claims, `signed` the one openssl signs.
    let message_bundle = |name: &str, digest_of: &str, signed: &str| {
        let signature = openssl(d, &["dgst", "-sha256", "-sign", "k.pem", signed]);
        let claimed = Digest::of(&std::fs::read(d.join(digest_of)).unwrap());
        let bundle = serde_json::to_vec(&serde_json::json!({
            "mediaType": media_types::SIGSTORE_BUNDLE_V03,
            "verificationMaterial": {"publicKey": {"hint": key.hint()}},
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256",
                                  "digest": STANDARD.encode(hex::decode(claimed.hex()).unwrap())},
                "signature": STANDARD.encode(signature)
            }
        }))
        .unwrap();
        let path = d.join(name);
        std::fs::write(&path, bundle).unwrap();
        path
    };
    let good = message_bundle("good.json", "manifest.json", "manifest.json");
    let artifact = d.join("manifest.json");
    assert!(agree(
        "message signature over the manifest",
        &image,
        &good,
        &d.join("k.pub"),
        Some(&artifact)
    ));
    let forged = message_bundle("forged.json", "manifest.json", "other.json");
    assert!(!agree(
        "message signature over another message",
        &image,
        &forged,
        &d.join("k.pub"),
        Some(&artifact)
    ));
    // A valid signature, but over another message than this image's manifest.
    let elsewhere = message_bundle("elsewhere.json", "other.json", "other.json");
    assert!(!agree(
        "message signature over another message's digest",
        &image,
        &elsewhere,
        &d.join("k.pub"),
        Some(&artifact)
    ));
    assert!(!agree(
        "message signature, another key",
        &image,
        &good,
        &other_key,
        Some(&artifact)
    ));
}
