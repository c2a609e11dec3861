//! A bundle made from images cosign signed, attested and gave SBOMs (the `signed_images`
//! fixture): `bundle create` keeps them in both formats (relok8s and wrap), `bundle inspect`
//! lists them per image, `bundle sbom` lists and writes the SBOMs; a docker-archive cannot keep
//! them, and `bundle create` says so.

mod common;

use std::path::Path;

use kantup_test_support::signed_images::{CYCLONEDX_SBOM, SPDX_SBOM, SignedImages};
use serde_json::Value;

use common::{kantup_isolated as kantup, ok};

fn create(fixture: &SignedImages, bundle: &Path, format: &str) {
    ok(
        kantup(&[
            "bundle",
            "create",
            bundle.to_str().unwrap(),
            "--chart",
            fixture.inputs.chart_dir.to_str().unwrap(),
            "--hints",
            fixture.inputs.hints.to_str().unwrap(),
            "--images",
            fixture.layout.to_str().unwrap(),
            "--format",
            format,
        ]),
        "bundle create",
    );
}

#[test]
fn inspect_and_sbom_show_what_cosign_attached() {
    let fixture = SignedImages::create();
    for (format, name) in [
        ("relok8s", "signed.bundle.tar"),
        ("wrap", "signed.wrap.tgz"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join(name);
        create(&fixture, &bundle, format);
        inspect_and_sbom(&fixture, dir.path(), bundle.to_str().unwrap());
    }
}

/// What `bundle inspect` and `bundle sbom` say of a bundle made from the fixture's layout.
fn inspect_and_sbom(fixture: &SignedImages, dir: &Path, bundle: &str) {
    let text = ok(kantup(&["bundle", "inspect", bundle]), "inspect");
    assert!(text.contains("Signatures, attestations, SBOMs"), "{text}");
    assert!(
        text.contains("attestation  https://cyclonedx.org/bom"),
        "{text}"
    );
    assert!(text.contains("sigstore bundle"), "{text}");
    assert!(text.contains("linux/arm64"), "{text}");

    let json: Value = serde_json::from_str(&ok(
        kantup(&["bundle", "inspect", bundle, "-o", "json"]),
        "inspect json",
    ))
    .unwrap();
    let per_image = json["attachments"].as_array().unwrap();
    // The index and its two platform manifests, and the single image.
    assert_eq!(per_image.len(), 4, "{per_image:#?}");
    let single = per_image
        .iter()
        .find(|i| i["digest"] == fixture.single.digest.as_str())
        .unwrap();
    assert_eq!(single["image"], fixture.single.reference.as_str());
    assert_eq!(single["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(single["attestations"].as_array().unwrap().len(), 3);
    assert_eq!(single["sboms"].as_array().unwrap().len(), 4);
    let index = per_image
        .iter()
        .find(|i| i["digest"] == fixture.index.digest.as_str())
        .unwrap();
    assert_eq!(index["image"], fixture.index.reference.as_str());
    assert_eq!(index["signatures"].as_array().unwrap().len(), 2);
    for p in &fixture.index.platforms {
        let entry = per_image
            .iter()
            .find(|i| i["digest"] == p.digest.as_str())
            .unwrap();
        assert_eq!(entry["image"], fixture.index.reference.as_str());
        assert_eq!(entry["signatures"].as_array().unwrap().len(), 2);
        assert_eq!(
            entry["attestations"][0]["predicate_type"],
            "https://spdx.dev/Document"
        );
    }

    // Listed: every SBOM; one image's: only those.
    let listed: Value = serde_json::from_str(&ok(
        kantup(&["bundle", "sbom", bundle, "-o", "json"]),
        "sbom",
    ))
    .unwrap();
    assert_eq!(listed["sboms"].as_array().unwrap().len(), 6, "{listed:#}");
    let repository = fixture.index.reference.rsplit_once(':').unwrap().0;
    let of_index: Value = serde_json::from_str(&ok(
        kantup(&["bundle", "sbom", bundle, repository, "-o", "json"]),
        "sbom of the index",
    ))
    .unwrap();
    let platforms: Vec<&str> = of_index["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    let missing = kantup(&["bundle", "sbom", bundle, "example.com/kantup/nope"]);
    assert!(!missing.status.success());
    assert!(
        common::text(&missing).contains("example.com/kantup/nope"),
        "{}",
        common::text(&missing)
    );

    // Written: one file each, named apart, holding the documents cosign was given.
    let out = dir.join("sboms");
    let text = ok(
        kantup(&[
            "bundle",
            "sbom",
            bundle,
            "--output-dir",
            out.to_str().unwrap(),
        ]),
        "sbom -d",
    );
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}\n{text}");
    let spdx: Value = serde_json::from_str(SPDX_SBOM).unwrap();
    let cdx: Value = serde_json::from_str(CYCLONEDX_SBOM).unwrap();
    for f in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(out.join(f)).unwrap()).unwrap();
        if f.ends_with(".cdx.json") {
            assert_eq!(doc, cdx, "{f}");
        } else {
            assert!(f.ends_with(".spdx.json"), "{f}");
            assert_eq!(doc, spdx, "{f}");
        }
    }
    assert!(
        files
            .iter()
            .any(|f| f.contains("gen-app-01_1.0.0_linux-arm64_attestation-")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.contains("gen-app-00_1.0.0_linux-amd64_attachment-")),
        "{files:?}"
    );
}

/// A docker-archive keeps no registry manifest, so a signature in one is only a rebuilt image
/// without cosign's layer annotations: `bundle create` refuses it in either format, naming it
/// and `--drop-signatures`; with the flag it leaves it out and says what it dropped. (skopeo
/// will not copy a cosign manifest into a docker-archive — "Unknown media type during manifest
/// conversion" — so the archive is skopeo's docker-archive of the image plus the real
/// signature's config and layer, listed in `manifest.json` as `docker save` lists an image.)
#[test]
fn a_signature_in_a_docker_archive_is_refused_unless_dropped() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let sig = fixture
        .attachments
        .iter()
        .find(|a| a.subject == fixture.single.digest && a.tag.ends_with(".sig"))
        .expect("the single image has a .sig");
    let repository = fixture.single.reference.rsplit_once(':').unwrap().0;
    let sig_name = format!("{repository}:{}", sig.tag);
    let tar = dir.path().join("image.docker.tar");
    kantup_test_support::tools::skopeo(&[
        "copy",
        &format!(
            "oci:{}:{}",
            fixture.layout.display(),
            fixture.single.reference
        ),
        &format!(
            "docker-archive:{}:{}",
            tar.display(),
            fixture.single.reference
        ),
    ]);
    let archive = dir.path().join("images");
    std::fs::create_dir(&archive).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&archive)
        .status()
        .unwrap();
    assert!(untar.success());
    let blob = |digest: &str| {
        fixture
            .layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    };
    let sig_manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&sig.digest)).unwrap()).unwrap();
    let config = sig_manifest["config"]["digest"].as_str().unwrap();
    let layer = sig_manifest["layers"][0]["digest"].as_str().unwrap();
    std::fs::copy(blob(config), archive.join("sig-config.json")).unwrap();
    std::fs::copy(blob(layer), archive.join("sig-layer")).unwrap();
    let manifest_json = archive.join("manifest.json");
    let mut entries: Value =
        serde_json::from_slice(&std::fs::read(&manifest_json).unwrap()).unwrap();
    entries.as_array_mut().unwrap().push(serde_json::json!({
        "Config": "sig-config.json",
        "RepoTags": [sig_name],
        "Layers": ["sig-layer"],
    }));
    std::fs::write(&manifest_json, serde_json::to_vec(&entries).unwrap()).unwrap();

    let create = |format: &str, out: &Path, drop: bool| {
        let mut args = vec![
            "bundle",
            "create",
            out.to_str().unwrap(),
            "--chart",
            fixture.inputs.chart_dir.to_str().unwrap(),
            "--images",
            archive.to_str().unwrap(),
            "--format",
            format,
        ];
        if format == "relok8s" {
            args.extend(["--hints", fixture.inputs.hints.to_str().unwrap()]);
        }
        if drop {
            args.push("--drop-signatures");
        }
        kantup(&args)
    };
    for (format, name) in [("relok8s", "b.bundle.tar"), ("wrap", "b.wrap.tgz")] {
        let out = dir.path().join(name);
        let refused = create(format, &out, false);
        let text = common::text(&refused);
        assert_eq!(refused.status.code(), Some(1), "{format}: {text}");
        assert!(text.contains(&sig_name), "{format}: {text}");
        assert!(text.contains(&fixture.single.digest), "{format}: {text}");
        assert!(
            text.contains("docker-archive keeps no registry manifest"),
            "{format}: {text}"
        );
        assert!(text.contains("--drop-signatures"), "{format}: {text}");
        assert!(!out.exists(), "{format}: nothing is written");

        let dropped = create(format, &out, true);
        let text = common::text(&dropped);
        assert!(
            dropped.status.success(),
            "{format} --drop-signatures: {text}"
        );
        assert!(text.contains("left out 1 signatures"), "{format}: {text}");
        let json_out = dir.path().join(format!("json-{name}"));
        let report: Value = serde_json::from_str(&ok(
            kantup(&[
                "bundle",
                "create",
                json_out.to_str().unwrap(),
                "--chart",
                fixture.inputs.chart_dir.to_str().unwrap(),
                "--images",
                archive.to_str().unwrap(),
                "--format",
                format,
                "--drop-signatures",
                "-o",
                "json",
            ]),
            "create -o json",
        ))
        .unwrap();
        let dropped = report["dropped"].as_array().unwrap();
        assert_eq!(dropped.len(), 1, "{report:#}");
        assert!(
            dropped[0].as_str().unwrap().contains(&sig_name),
            "{report:#}"
        );
        assert!(text.contains(&sig_name), "{format}: {text}");
        let inspected: Value = serde_json::from_str(&ok(
            kantup(&["bundle", "inspect", out.to_str().unwrap(), "-o", "json"]),
            "inspect",
        ))
        .unwrap();
        let images = inspected["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{format}: {inspected:#}");
        assert!(
            !inspected.to_string().contains(&sig.tag),
            "{format}: the signature is not carried as an image: {inspected:#}"
        );
    }
}
