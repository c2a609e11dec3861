//! The offline verifier on OCI layouts holding what the real cosign made (the `signed_images`
//! fixture): every image and every platform manifest verifies with cosign's key in every form
//! cosign wrote (classic `.sig`, `.att` attestations, Sigstore bundle referrers); another key
//! verifies none; `cosign save` of an index keeps only the index's own signatures, so its
//! platform manifests are unsigned; a payload or signature edited in the layout is named as
//! tampered.

use std::path::Path;

use kantup_bundle::Digest;
use kantup_bundle::archive::ImageArchive;
use kantup_bundle::archive::attachment::Link;
use kantup_bundle::image_signature::{
    ImageVerdict, Outcome, Refusal, SignatureForm, verify_archive,
};
use kantup_bundle::signature::VerifyingKey;
use kantup_test_support::signed_images::SignedImages;

fn verdict_of<'a>(verdicts: &'a [ImageVerdict], digest: &str) -> &'a ImageVerdict {
    verdicts
        .iter()
        .find(|v| v.image.to_string() == digest)
        .unwrap_or_else(|| panic!("no verdict for {digest}: {verdicts:#?}"))
}

fn forms(verdict: &ImageVerdict) -> Vec<(SignatureForm, bool)> {
    let mut forms: Vec<(SignatureForm, bool)> = verdict
        .checks
        .iter()
        .map(|c| {
            (
                c.form.expect("a known form"),
                matches!(c.outcome, Outcome::Verified { .. }),
            )
        })
        .collect();
    forms.sort_by_key(|(f, v)| (format!("{f:?}"), *v));
    forms
}

/// Copies a directory tree (an OCI layout).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn cosign_made_layouts_verify_image_by_image_and_platform_by_platform() {
    let fixture = SignedImages::create();
    let key = VerifyingKey::read(&fixture.public_key).unwrap();
    let other = VerifyingKey::read(&fixture.other_public_key).unwrap();

    // The layout with every attachment: the single image and both platform manifests.
    let archive = ImageArchive::open(&fixture.layout).unwrap();
    let verdicts = verify_archive(&archive, std::slice::from_ref(&key));
    assert_eq!(verdicts.len(), 3, "{verdicts:#?}");
    for verdict in &verdicts {
        assert!(
            verdict.is_verified(),
            "{}: {}",
            verdict.name,
            verdict.summary()
        );
    }
    let single = verdict_of(&verdicts, &fixture.single.digest);
    assert_eq!(
        forms(single),
        [
            (SignatureForm::DsseAttestation, true),
            (SignatureForm::DsseAttestation, true),
            (SignatureForm::SigstoreBundle, true),
            (SignatureForm::SigstoreBundle, true),
            (SignatureForm::SimpleSigning, true),
        ]
    );
    let mut sboms: Vec<(String, bool)> = single
        .sboms
        .iter()
        .map(|s| (s.format.clone(), s.verified))
        .collect();
    sboms.sort();
    // SPDX and CycloneDX attestations, the SPDX bundle attestation (verified) and the unsigned
    // `.sbom` attachment.
    assert_eq!(
        sboms,
        [
            ("cyclonedx".to_string(), true),
            ("spdx".to_string(), false),
            ("spdx".to_string(), true),
            ("spdx".to_string(), true),
        ]
    );
    for platform in &fixture.index.platforms {
        let verdict = verdict_of(&verdicts, &platform.digest);
        assert_eq!(
            forms(verdict),
            [
                (SignatureForm::DsseAttestation, true),
                (SignatureForm::SigstoreBundle, true),
                (SignatureForm::SimpleSigning, true),
            ],
            "{}",
            platform.platform
        );
        // Unnamed in the layout, a platform manifest is named by its index and platform.
        assert_eq!(
            verdict.name,
            format!("{} ({})", fixture.index.reference, platform.platform)
        );
    }

    // Another key verifies nothing, and says so for each signature.
    for verdict in verify_archive(&archive, std::slice::from_ref(&other)) {
        assert!(!verdict.is_verified(), "{}", verdict.name);
        assert!(
            verdict
                .refusals()
                .all(|r| matches!(r, Refusal::WrongKey { .. })),
            "{}: {}",
            verdict.name,
            verdict.summary()
        );
    }

    // `cosign save` of each image: the single image is signed; the index's platform manifests
    // carry none of their signatures there (only the index's own), so they are refused.
    let (_, single_saved) = &fixture.cosign_saved[0];
    let saved = ImageArchive::open(single_saved).unwrap();
    let verdicts = verify_archive(&saved, std::slice::from_ref(&key));
    assert_eq!(verdicts.len(), 1);
    assert!(verdicts[0].is_verified(), "{}", verdicts[0].summary());
    let (_, index_saved) = &fixture.cosign_saved[1];
    let saved = ImageArchive::open(index_saved).unwrap();
    let verdicts = verify_archive(&saved, std::slice::from_ref(&key));
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    for verdict in &verdicts {
        assert_eq!(
            verdict.refusals().collect::<Vec<_>>(),
            [&Refusal::Unsigned],
            "{}",
            verdict.name
        );
    }
}

#[test]
fn payloads_and_signatures_edited_in_a_layout_are_tampered() {
    let fixture = SignedImages::create();
    let key = VerifyingKey::read(&fixture.public_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    copy_dir(&fixture.layout, &layout);
    let single: Digest = fixture.single.digest.parse().unwrap();
    let archive = ImageArchive::open(&layout).unwrap();
    let sig = archive
        .attachments_of(&single)
        .find(|a| matches!(&a.link, Link::Tag(tag) if tag.ends_with(".sig")))
        .expect("the single image's .sig")
        .clone();
    let payload = sig.blobs.last().expect("a payload layer").digest;
    drop(archive);

    // The payload edited in place (its file keeps its digest name).
    let blob = |d: &Digest| layout.join("blobs/sha256").join(d.hex());
    let original = std::fs::read(blob(&payload)).unwrap();
    let edited = String::from_utf8(original.clone())
        .unwrap()
        .replace("gen-app-00", "gen-app-66");
    assert_ne!(edited.as_bytes(), &original[..]);
    std::fs::write(blob(&payload), edited).unwrap();
    let archive = ImageArchive::open(&layout).unwrap();
    let verdict = verify_archive(&archive, std::slice::from_ref(&key))
        .into_iter()
        .find(|v| v.image == single)
        .unwrap();
    let sig_check = verdict
        .checks
        .iter()
        .find(|c| c.attachment == sig.digest)
        .unwrap();
    assert!(
        matches!(
            sig_check.outcome,
            Outcome::Refused(Refusal::TamperedPayload { .. })
        ),
        "{sig_check:?}"
    );
    // Its other signatures still cover it.
    assert!(verdict.is_verified());
    std::fs::write(blob(&payload), &original).unwrap();

    // The signature annotation edited in the `.sig` manifest, stored under its old digest.
    let manifest = String::from_utf8(std::fs::read(blob(&sig.digest)).unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let signature = value["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    let mut flipped = signature.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    std::fs::write(blob(&sig.digest), manifest.replace(&signature, &flipped)).unwrap();
    match ImageArchive::open(&layout) {
        // A reader that checks manifest digests refuses the layout outright: also a refusal.
        Err(e) => assert!(e.to_string().contains("sha256"), "{e}"),
        Ok(archive) => {
            let verdict = verify_archive(&archive, std::slice::from_ref(&key))
                .into_iter()
                .find(|v| v.image == single)
                .unwrap();
            let sig_check = verdict
                .checks
                .iter()
                .find(|c| c.form == Some(SignatureForm::SimpleSigning))
                .unwrap();
            assert!(
                matches!(
                    sig_check.outcome,
                    Outcome::Refused(Refusal::TamperedSignature { .. })
                ),
                "{sig_check:?}"
            );
        }
    }
}
