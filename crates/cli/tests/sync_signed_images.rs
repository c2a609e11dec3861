//! `kantup sync` of a bundle carrying cosign signatures, attestations, SBOMs and Sigstore
//! bundle referrers (the `signed_images` fixture: real cosign, a real docker-registry), into a
//! second real docker-registry under relocated names: every attachment lands next to its
//! image at the source's digest (read back with skopeo, byte for byte), cosign verifies what
//! kantup pushed, a dry run pushes nothing, and a second sync pushes nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_bundle::Bundle;
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::signed_images::{FixtureKind, SignedImages};
use kantup_test_support::skopeo;
use serde_json::Value;

use common::{kantup_isolated as kantup, text};

/// A relok8s-format bundle (hints, the chart as `original-chart/`, and `images.tar` holding the
/// fixture's OCI layout with every attachment) made with tar.
fn bundle_of(fixture: &SignedImages, dir: &Path) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(&fixture.inputs.hints, stage.join("hints.yaml")).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(&fixture.inputs.chart_dir)
        .arg(stage.join("original-chart"))
        .status()
        .unwrap();
    assert!(status.success());
    let members: Vec<String> = std::fs::read_dir(&fixture.layout)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let status = Command::new("tar")
        .arg("-C")
        .arg(&fixture.layout)
        .arg("-cf")
        .arg(stage.join("images.tar"))
        .args(&members)
        .status()
        .unwrap();
    assert!(status.success());
    let bundles = dir.join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let bundle = bundles.join("signed.bundle.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .arg("-cf")
        .arg(&bundle)
        .args(["hints.yaml", "original-chart", "images.tar"])
        .status()
        .unwrap();
    assert!(status.success());
    bundle
}

fn config(dir: &Path, bundles: &Path, host: &str) -> PathBuf {
    let config = dir.join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\n\
             target:\n  containerRegistry: {host}\n  containerRepository: mirror/apps\n  repo:\n    \
             kind: LOCAL\n    path: {}\n",
            bundles.display(),
            dir.join("charts").display()
        ),
    )
    .unwrap();
    config
}

fn raw(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ])
}

fn sync_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--config", config.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    let out = kantup(&args);
    assert!(out.status.success(), "kantup {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The repository name `sync` relocates `example.com/kantup/<name>` to.
fn relocated(host: &str, fixture_repository: &str) -> String {
    let name = fixture_repository.rsplit('/').next().unwrap();
    format!("{host}/mirror/apps/{name}")
}

#[test]
fn sync_pushes_every_attachment_next_to_its_image_and_cosign_verifies_them() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_of(&fixture, dir.path());
    let carried = {
        let bundle = Bundle::open(&bundle).unwrap();
        bundle.image_archive().unwrap().unwrap().attachments().len() as u64
    };
    assert_eq!(
        carried,
        fixture.attachments.len() as u64,
        "the bundle carries every attachment"
    );
    let target = RegistryServer::start();
    let host = target.host();
    let config = config(dir.path(), bundle.parent().unwrap(), &host);

    // A dry run plans every attachment and pushes nothing.
    let plan = sync_json(&config, &["--dry-run"]);
    assert_eq!(plan["attachments_pushed"], carried, "{plan}");
    assert_eq!(plan["fallback_indexes_written"], 0);
    let catalog = Command::new("curl")
        .args(["-sf", &format!("http://{host}/v2/_catalog")])
        .output()
        .unwrap();
    let catalog: Value = serde_json::from_slice(&catalog.stdout).unwrap();
    assert_eq!(
        catalog["repositories"],
        Value::Array(vec![]),
        "dry run pushed"
    );

    let report = sync_json(&config, &[]);
    eprintln!(
        "first sync: {} attachments pushed, {} fallback indexes written, {} images pushed",
        report["attachments_pushed"], report["fallback_indexes_written"], report["images_pushed"]
    );
    assert_eq!(report["attachments_pushed"], carried, "{report}");
    assert_eq!(report["attachments_failed"], 0, "{report}");
    let subjects_with_referrers: BTreeSet<&str> = fixture
        .attachments
        .iter()
        .filter(|a| a.kind == FixtureKind::Referrer)
        .map(|a| a.subject.as_str())
        .collect();
    assert_eq!(
        report["fallback_indexes_written"],
        subjects_with_referrers.len() as u64,
        "{report}"
    );

    // Every tag the fixture's registry holds for an attachment, at the same bytes; the
    // fallback indexes list the same referrers (plus the annotations the spec has the client
    // copy, which cosign leaves out).
    let mut tags_checked = BTreeMap::new();
    for a in &fixture.attachments {
        // The index's attachments and its platform manifests' are in the index's repository.
        let image = if a.subject == fixture.single.digest {
            &fixture.single
        } else {
            &fixture.index
        };
        let source = format!("{}:{}", image.pushed_repository, a.tag);
        let pushed = format!("{}:{}", relocated(&host, &image.pushed_repository), a.tag);
        let (source_bytes, pushed_bytes) = (raw(&source), raw(&pushed));
        if a.kind == FixtureKind::Referrer {
            let mut index: Value = serde_json::from_slice(&pushed_bytes).unwrap();
            for entry in index["manifests"].as_array_mut().unwrap() {
                entry.as_object_mut().unwrap().remove("annotations");
            }
            assert_eq!(
                serde_json::to_vec(&index).unwrap(),
                source_bytes,
                "{pushed}"
            );
            let by_digest = format!(
                "{}@{}",
                relocated(&host, &image.pushed_repository),
                a.digest
            );
            assert_eq!(
                raw(&by_digest),
                raw(&format!("{}@{}", image.pushed_repository, a.digest)),
                "{by_digest}"
            );
        } else {
            assert_eq!(pushed_bytes, source_bytes, "{pushed}");
        }
        tags_checked.insert(pushed, a.kind);
    }
    assert!(tags_checked.len() >= 8, "{tags_checked:?}");

    // cosign verifies what kantup pushed, at the bundle's digests, under the new names.
    let key = fixture.public_key.to_str().unwrap();
    let other = fixture.other_public_key.to_str().unwrap();
    let root = fixture.trusted_root.to_str().unwrap();
    let mut checked = Vec::new();
    for image in [&fixture.single, &fixture.index] {
        let repo = relocated(&host, &image.pushed_repository);
        let digests = std::iter::once(image.digest.clone())
            .chain(image.platforms.iter().map(|p| p.digest.clone()));
        for digest in digests {
            let reference = format!("{repo}@{digest}");
            for format in [&[][..], &["--new-bundle-format=false"][..]] {
                let verify = |key: &str| {
                    let mut args = vec![
                        "verify",
                        "--key",
                        key,
                        "--insecure-ignore-tlog=true",
                        "--trusted-root",
                        root,
                    ];
                    args.extend(format);
                    args.push(&reference);
                    fixture.cosign(&args)
                };
                let accepted = verify(key);
                assert!(
                    accepted.status.success(),
                    "cosign verify {format:?} {reference}: {}",
                    text(&accepted)
                );
                assert!(String::from_utf8_lossy(&accepted.stdout).contains(&digest));
                let refused = verify(other);
                assert!(
                    !refused.status.success(),
                    "another key accepted {reference}"
                );
                checked.push(reference.clone());
            }
        }
    }
    let single = format!(
        "{}@{}",
        relocated(&host, &fixture.single.pushed_repository),
        fixture.single.digest
    );
    for predicate in ["spdxjson", "cyclonedx"] {
        let attested = fixture.cosign(&[
            "verify-attestation",
            "--key",
            key,
            "--type",
            predicate,
            "--new-bundle-format=false",
            "--insecure-ignore-tlog=true",
            "--trusted-root",
            root,
            &single,
        ]);
        assert!(
            attested.status.success(),
            "verify-attestation {predicate}: {}",
            text(&attested)
        );
    }
    eprintln!(
        "cosign verified {} image/format pairs; {} attachment tags compared",
        checked.len(),
        tags_checked.len()
    );

    // A second sync pushes nothing.
    let again = sync_json(&config, &[]);
    assert_eq!(again["images_pushed"], 0, "{again}");
    assert_eq!(again["attachments_pushed"], 0, "{again}");
    assert_eq!(again["attachments_skipped"], carried, "{again}");
    assert_eq!(again["fallback_indexes_written"], 0, "{again}");
    assert_eq!(again["blobs_uploaded"], 0, "{again}");

    // The text report counts them.
    let out = kantup(&["sync", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains(&format!(
            "attachments (signatures, attestations, SBOMs, referrers) 0 pushed, {carried} skipped, 0 overwritten, 0 failed; fallback indexes 0 written"
        )),
        "{stdout}"
    );
}
