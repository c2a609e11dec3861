//! The signed-images fixture makes what it says: cosign's attachments are in the registry, in
//! the combined layout (named by their tags, byte-exact) and in `cosign save`'s layouts (marked
//! by `kind`).

use std::path::Path;

use kantup_test_support::signed_images::{
    FixtureKind, KIND_ATTS, KIND_IMAGE, KIND_IMAGE_INDEX, KIND_SIGS, SignedImages,
};
use serde_json::Value;
use sha2::Digest as _;

fn index_json(layout: &Path) -> Vec<Value> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(actual, digest, "blob {digest} in {}", layout.display());
    bytes
}

#[test]
fn cosign_signs_attests_and_saves_both_images() {
    let fixture = SignedImages::create();
    let kinds = |subject: &str| {
        let mut v: Vec<FixtureKind> = fixture
            .attachments_of(subject)
            .iter()
            .map(|a| a.kind)
            .collect();
        v.sort();
        v
    };
    use FixtureKind::*;
    assert_eq!(
        kinds(&fixture.single.digest),
        [Signature, Attestation, Sbom, Referrer, Referrer],
        "{:#?}",
        fixture.attachments
    );
    let att = fixture
        .attachments_of(&fixture.single.digest)
        .into_iter()
        .find(|a| a.kind == Attestation)
        .unwrap();
    assert_eq!(
        att.detail,
        ["https://spdx.dev/Document", "https://cyclonedx.org/bom"]
    );
    assert_eq!(kinds(&fixture.index.digest), [Signature, Referrer]);
    assert_eq!(fixture.index.platforms.len(), 2);
    for p in &fixture.index.platforms {
        assert_eq!(
            kinds(&p.digest),
            [Signature, Attestation, Referrer],
            "{p:?}"
        );
    }

    // The combined layout names every classic attachment and fallback index by its tag, and
    // holds every manifest and blob byte-exact.
    let entries = index_json(&fixture.layout);
    let names: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    for a in &fixture.attachments {
        assert!(
            names.iter().any(|n| n.ends_with(&format!(":{}", a.tag))),
            "{} not named in {names:?}",
            a.tag
        );
        let manifest: Value = serde_json::from_slice(&blob(&fixture.layout, &a.digest)).unwrap();
        for layer in manifest["layers"].as_array().unwrap() {
            blob(&fixture.layout, layer["digest"].as_str().unwrap());
        }
        if a.kind == Referrer {
            assert_eq!(manifest["subject"]["digest"], a.subject.as_str());
        }
    }
    assert!(names.contains(&fixture.single.reference.as_str()));
    assert!(names.contains(&fixture.index.reference.as_str()));

    // cosign save: one image per directory, entries marked by `kind`.
    let saved_kinds = |n: usize| -> Vec<String> {
        index_json(&fixture.cosign_saved[n].1)
            .iter()
            .map(|e| e["annotations"]["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let single = saved_kinds(0);
    assert!(single.contains(&KIND_IMAGE.to_string()), "{single:?}");
    assert!(single.contains(&KIND_SIGS.to_string()), "{single:?}");
    assert!(single.contains(&KIND_ATTS.to_string()), "{single:?}");
    let index = saved_kinds(1);
    assert!(index.contains(&KIND_IMAGE_INDEX.to_string()), "{index:?}");
    assert!(index.contains(&KIND_SIGS.to_string()), "{index:?}");
    let saved_image = index_json(&fixture.cosign_saved[0].1)
        .into_iter()
        .find(|e| e["annotations"]["kind"] == KIND_IMAGE)
        .unwrap();
    assert_eq!(saved_image["digest"], fixture.single.digest.as_str());

    // cosign itself accepts the signatures with the fixture's key, and refuses the other key.
    for (key, ok) in [
        (&fixture.public_key, true),
        (&fixture.other_public_key, false),
    ] {
        let out = fixture.cosign(&[
            "verify",
            "--key",
            key.to_str().unwrap(),
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--trusted-root",
            fixture.trusted_root.to_str().unwrap(),
            &fixture.single.pushed_by_digest(),
        ]);
        assert_eq!(
            out.status.success(),
            ok,
            "cosign verify with {}: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
