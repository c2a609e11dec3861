//! `--image-key` end to end, on bundles whose `images.tar` is the OCI layout the real cosign
//! signed (the `signed_images` fixture: a single image and a two-platform index, signed,
//! attested and given Sigstore bundle referrers): `bundle verify`, `sync`, `load` and `upgrade`
//! pass with cosign's key and refuse another key or an unsigned bundle with exit 3, naming each
//! image and why, before anything changes: nothing pushed, the runtime never run, no release,
//! no backup. On the real API server, `upgrade` keeps beside the values backup a record of the
//! deployed images (digest, signature verdict, SBOMs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::signed_images::SignedImages;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(args: &[&str]) -> Output {
    common::kantup_isolated(args)
}

/// A relok8s bundle (hints, chart, `images.tar`) whose `images.tar` is `layout` as it is.
fn bundle_of(dir: &Path, name: &str, chart: &Path, hints: &Path, layout: &Path) -> PathBuf {
    let stage = dir.join(format!("{name}.stage"));
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(hints, stage.join("hints.yaml")).unwrap();
    let status = Command::new("cp")
        .args(["-r", s(chart), s(&stage.join("original-chart"))])
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("sh")
        .args([
            "-c",
            &format!(
                "cd '{}' && tar -cf '{}' $(ls -A)",
                layout.display(),
                stage.join("images.tar").display()
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let bundle = dir.join(format!("{name}.bundle.tar"));
    let status = Command::new("tar")
        .args([
            "-C",
            s(&stage),
            "-cf",
            s(&bundle),
            "hints.yaml",
            "original-chart",
            "images.tar",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    bundle
}

struct Bundles {
    fixture: SignedImages,
    dir: tempfile::TempDir,
    signed: PathBuf,
    unsigned: PathBuf,
}

fn bundles() -> Bundles {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let inputs = &fixture.inputs;
    let signed = bundle_of(
        dir.path(),
        "signed",
        &inputs.chart_dir,
        &inputs.hints,
        &fixture.layout,
    );
    let unsigned = bundle_of(
        dir.path(),
        "unsigned",
        &inputs.chart_dir,
        &inputs.hints,
        &inputs.layout,
    );
    Bundles {
        fixture,
        dir,
        signed,
        unsigned,
    }
}

/// Every image the fixture signed: the single image and both platform manifests.
fn image_digests(fixture: &SignedImages) -> Vec<String> {
    let mut digests = vec![fixture.single.digest.clone()];
    digests.extend(fixture.index.platforms.iter().map(|p| p.digest.clone()));
    digests
}

#[test]
fn bundle_verify_passes_with_cosigns_key_and_refuses_another_key_or_no_signature() {
    let b = bundles();
    let key = s(&b.fixture.public_key);
    let other = s(&b.fixture.other_public_key);

    let out = run(&["bundle", "verify", s(&b.signed), "--image-key", key]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for digest in image_digests(&b.fixture) {
        assert!(
            all.contains(&format!("{digest}: verified by {key}")),
            "{digest}: {all}"
        );
    }

    // Repeatable: one of the keys is enough.
    let out = run(&[
        "bundle",
        "verify",
        s(&b.signed),
        "--image-key",
        other,
        "--image-key",
        key,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let out = run(&["bundle", "verify", s(&b.signed), "--image-key", other]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("3 image(s) not signed by any --image-key"),
        "{all}"
    );
    for digest in image_digests(&b.fixture) {
        assert!(all.contains(&digest), "names {digest}: {all}");
    }
    assert!(all.contains("wrong key"), "{all}");
    assert!(all.contains("gen-app-00"), "{all}");

    let out = run(&["bundle", "verify", s(&b.unsigned), "--image-key", key]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("unsigned: no signature"), "{all}");

    // Output as JSON carries every verdict.
    let out = run(&[
        "-o",
        "json",
        "bundle",
        "verify",
        s(&b.signed),
        "--image-key",
        key,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["image_signatures"].as_array().unwrap().len(),
        3,
        "{json}"
    );
}

#[test]
fn sync_and_load_refuse_before_anything_changes() {
    let b = bundles();
    let key = s(&b.fixture.public_key);
    let other = s(&b.fixture.other_public_key);
    let dir = b.dir.path();

    // sync: a fresh registry stays empty on refusal.
    let registry = RegistryServer::start();
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(&b.signed, source.join("signed.bundle.tar")).unwrap();
    let config = dir.join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {}\n  containerRepository: kant/apps\n",
            source.display(),
            registry.host()
        ),
    )
    .unwrap();
    let sync = |key: &str| run(&["sync", "--config", s(&config), "--image-key", key]);
    let refused = sync(other);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{all}");
    assert!(
        all.contains("signed.bundle.tar: refused, nothing changed"),
        "{all}"
    );
    assert!(all.contains(&b.fixture.single.digest), "{all}");
    assert_eq!(registry.stored_blob_count(), 0, "nothing may be pushed");
    // cosign's key passes the check: the sync goes on to push (whether this bundle's unnamed
    // platform manifests push is the push's business, not the check's).
    let synced = sync(key);
    let all = text(&synced);
    assert!(!all.contains("--image-key"), "{all}");
    assert_ne!(synced.status.code(), Some(3), "{all}");

    // load: the container runtime is never run on refusal.
    let calls = dir.join("runtime-calls.log");
    let runtime = dir.join("fake-ctr");
    std::fs::write(
        &runtime,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncat > /dev/null\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (bundle, key) in [(&b.signed, other), (&b.unsigned, key)] {
        let load = run(&[
            "load",
            s(bundle),
            "--runtime",
            "containerd",
            "--runtime-bin",
            s(&runtime),
            "--image-key",
            key,
        ]);
        let all = text(&load);
        assert_eq!(load.status.code(), Some(3), "{all}");
        assert!(all.contains("not signed by any --image-key"), "{all}");
        assert!(!calls.exists(), "the runtime ran");
    }
    // Over ssh to nodes, the same check before any node is touched (the node does not exist).
    let load = run(&[
        "load",
        s(&b.signed),
        "--runtime",
        "containerd",
        "--node",
        "ssh://root@node.invalid",
        "--image-key",
        other,
    ]);
    let all = text(&load);
    assert_eq!(load.status.code(), Some(3), "{all}");
    assert!(!all.contains("node.invalid"), "no node was asked: {all}");
}

fn helm_releases(cluster: &kantup_test_support::kube_cluster::KubeCluster, ns: &str) -> String {
    cluster.kubectl(&["get", "secrets", "-n", ns, "-l", "owner=helm", "-o", "name"])
}

/// On the real API server: refused with another key (no release, no backup), installed with
/// cosign's key, with the deployed-images record beside the values backup.
#[test]
fn upgrade_refuses_before_any_change_and_records_the_deployed_images() {
    let Some(cluster) = kantup_test_support::kube_cluster::cluster_or_skip(
        "upgrade_refuses_before_any_change_and_records_the_deployed_images",
    ) else {
        return;
    };
    let b = bundles();
    let dir = b.dir.path();
    let ns = cluster.namespace("imagekeys");
    let helm = kantup_test_support::helm4();
    let backups = dir.join("backups");
    let upgrade = |key: &Path| {
        common::kantup(
            cluster.kubeconfig(),
            dir,
            &[
                "upgrade",
                s(&b.signed),
                "--release",
                "gen",
                "-n",
                &ns,
                "--yes",
                "--helm",
                s(&helm),
                "--image-key",
                s(key),
                "--backup-dir",
                s(&backups),
            ],
        )
    };
    let refused = upgrade(&b.fixture.other_public_key);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{all}");
    assert!(all.contains("wrong key"), "{all}");
    assert!(!backups.exists(), "no backup before a refusal");
    assert_eq!(
        helm_releases(cluster, &ns).trim(),
        "",
        "no release was made"
    );

    let installed = upgrade(&b.fixture.public_key);
    let all = common::ok(installed, "upgrade with --image-key");
    assert!(!helm_releases(cluster, &ns).trim().is_empty(), "{all}");
    let records: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).ends_with(".images.json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        s(&records[0]).contains(&format!("gen-{ns}-")),
        "beside the values backup, named like it: {records:?}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    let images = record["images"].as_array().unwrap();
    let mut digests: Vec<&str> = images
        .iter()
        .map(|i| i["digest"].as_str().unwrap())
        .collect();
    digests.sort();
    let mut expected = image_digests(&b.fixture);
    expected.sort();
    assert_eq!(digests, expected, "{record:#}");
    for image in images {
        assert_eq!(image["signature"]["verdict"], "verified", "{image:#}");
        assert_eq!(
            image["signature"]["key"].as_str(),
            Some(s(&b.fixture.public_key)),
            "{image:#}"
        );
    }
    let single = images
        .iter()
        .find(|i| i["digest"] == b.fixture.single.digest.as_str())
        .unwrap();
    let formats: Vec<&str> = single["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect();
    assert!(
        formats.contains(&"spdx") && formats.contains(&"cyclonedx"),
        "{single:#}"
    );
}

/// `bundle sbom --image-key` marks each SBOM: an attestation's SBOM verified by cosign's key,
/// the unsigned `.sbom` attachment not, every one not with another key, none checked without a
/// key; an attestation whose payload was edited in the layout is not verified while the others
/// still are. It refuses nothing.
#[test]
fn bundle_sbom_marks_the_sboms_an_image_key_verified() {
    let b = bundles();
    let key = s(&b.fixture.public_key);
    let other = s(&b.fixture.other_public_key);
    let sboms = |bundle: &Path, keys: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["-o", "json", "bundle", "sbom", s(bundle)];
        for k in keys {
            args.extend(["--image-key", k]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["sboms"].as_array().unwrap().clone()
    };
    let verdicts = |list: &[serde_json::Value]| -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> = list
            .iter()
            .map(|e| {
                (
                    e["source"].as_str().unwrap().to_string(),
                    e["format"].as_str().unwrap().to_string(),
                    e["verification"]["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let owned = |rows: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    };

    // The single image: SPDX and CycloneDX `.att`, an SPDX Sigstore bundle attestation and an
    // SPDX `.sbom` attachment; each platform manifest: an SPDX `.att`.
    let with_key = sboms(&b.signed, &[key]);
    assert_eq!(
        verdicts(&with_key),
        owned(&[
            ("attachment", "spdx-json", "not-verified"),
            ("attestation", "cyclonedx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
        ]),
        "{with_key:#?}"
    );
    for e in &with_key {
        match e["verification"]["verdict"].as_str().unwrap() {
            "verified" => assert_eq!(e["verification"]["key"], key, "{e:#}"),
            _ => assert_eq!(
                e["verification"]["reason"], "an .sbom attachment carries no signature",
                "{e:#}"
            ),
        }
    }
    // One of several keys is enough.
    assert_eq!(
        verdicts(&sboms(&b.signed, &[other, key])),
        verdicts(&with_key)
    );

    let with_other = sboms(&b.signed, &[other]);
    assert!(
        with_other
            .iter()
            .all(|e| e["verification"]["verdict"] == "not-verified"),
        "{with_other:#?}"
    );
    assert!(
        with_other
            .iter()
            .filter(|e| e["source"] == "attestation")
            .all(|e| e["verification"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("wrong key")),
        "{with_other:#?}"
    );
    let unchecked = sboms(&b.signed, &[]);
    assert_eq!(unchecked.len(), 6);
    assert!(
        unchecked
            .iter()
            .all(|e| e["verification"]["verdict"] == "not-checked"),
        "{unchecked:#?}"
    );

    // The text listing says it per SBOM.
    let out = run(&["bundle", "sbom", s(&b.signed), "--image-key", key]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    assert_eq!(
        listing.matches(&format!("verified by {key}")).count(),
        5,
        "{listing}"
    );
    assert_eq!(listing.matches("NOT verified").count(), 1, "{listing}");

    // The CycloneDX attestation's statement edited in a copy of the layout (its blob keeps
    // its digest name): that SBOM is no longer verified, the others still are.
    let layout = b.dir.path().join("edited-layout");
    let status = Command::new("cp")
        .args(["-r", s(&b.fixture.layout), s(&layout)])
        .status()
        .unwrap();
    assert!(status.success());
    let mut edited = 0;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(mut envelope) =
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap())
        else {
            continue;
        };
        let Some(payload) = envelope["payload"].as_str() else {
            continue;
        };
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut statement: serde_json::Value =
            serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
        if statement["predicateType"] != "https://cyclonedx.org/bom" {
            continue;
        }
        statement["predicate"]["serialNumber"] = "urn:uuid:edited-after-signing".into();
        envelope["payload"] = engine
            .encode(serde_json::to_vec(&statement).unwrap())
            .into();
        std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
        edited += 1;
    }
    assert_eq!(edited, 1, "one CycloneDX attestation in the layout");
    let inputs = &b.fixture.inputs;
    let edited_bundle = bundle_of(
        b.dir.path(),
        "edited",
        &inputs.chart_dir,
        &inputs.hints,
        &layout,
    );
    let list = sboms(&edited_bundle, &[key]);
    assert_eq!(
        verdicts(&list),
        owned(&[
            ("attachment", "spdx-json", "not-verified"),
            ("attestation", "cyclonedx-json", "not-verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
            ("attestation", "spdx-json", "verified"),
        ]),
        "{list:#?}"
    );
    let cdx = list
        .iter()
        .find(|e| e["format"] == "cyclonedx-json")
        .unwrap();
    assert!(
        cdx["verification"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("tampered payload"),
        "{cdx:#}"
    );
}
