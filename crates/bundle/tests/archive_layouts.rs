//! Layouts no tool here writes: classic `docker save` (`<id>/layer.tar`, `<id>.json`,
//! `repositories`) and a multi-platform OCI layout with a nested index, built in the test.

use std::path::Path;

use kantup_bundle::archive::{Compression, ImageArchive, media_types};
use kantup_bundle::{Digest, VerifyOptions, VerifyReport, verify_archive};
use serde_json::json;

fn layer_tar(content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "file.txt", content).unwrap();
    tar.into_inner().unwrap()
}

fn append(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, name, data).unwrap();
}

#[test]
fn classic_docker_save() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = layer_tar(b"classic");
    let diff_id = Digest::of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    let id = "4e946c0731f48eb24c98b347269aa242123204bd73cbcf003e5e8aa9b7fa3451";
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, &format!("{id}/layer.tar"), &layer);
    append(&mut tar, &format!("{id}/VERSION"), b"1.0");
    append(&mut tar, &format!("{}.json", config_digest.hex()), &config);
    let manifest = json!([{
        "Config": format!("{}.json", config_digest.hex()),
        "RepoTags": ["busybox:classic", "registry.local:5000/team/app:1"],
        "Layers": [format!("{id}/layer.tar")],
    }]);
    append(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    append(&mut tar, "repositories", br#"{"busybox":{"classic":"x"}}"#);
    let path = tmp.path().join("classic.tar");
    std::fs::write(&path, tar.into_inner().unwrap()).unwrap();

    let archive = ImageArchive::open(&path).unwrap();
    let image = &archive.images()[0];
    let names: Vec<String> = image.references.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:classic",
            "registry.local:5000/team/app:1"
        ]
    );
    assert_eq!(image.config.digest, config_digest);
    assert_eq!(
        image.layers[0].digest, diff_id,
        "uncompressed layer: digest is the diff ID"
    );
    assert_eq!(image.layers[0].compression, Compression::None);
    assert_eq!(image.layers[0].media_type, media_types::DOCKER_LAYER);
    assert_eq!(
        image.platform.as_ref().unwrap().to_string(),
        "linux/arm64/v8"
    );
    let mut report = VerifyReport::default();
    verify_archive(
        &archive,
        VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
        &mut |_| {},
        &mut report,
    )
    .unwrap();
    assert_eq!(report.blobs, 2);
}

fn put(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let d = Digest::of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    (d.to_string(), bytes.len())
}

#[test]
fn multi_platform_oci_layout_with_nested_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = layer_tar(arch.as_bytes());
        let (ld, ls) = put(dir, &layer);
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [ld]},
        }))
        .unwrap();
        let (cd, cs) = put(dir, &config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST,
            "config": {"mediaType": media_types::OCI_CONFIG, "digest": cd, "size": cs},
            "layers": [{"mediaType": media_types::OCI_LAYER, "digest": ld, "size": ls}],
        }))
        .unwrap();
        let (md, ms) = put(dir, &manifest);
        children.push(
            json!({"mediaType": media_types::OCI_MANIFEST, "digest": md, "size": ms,
            "platform": {"architecture": arch, "os": "linux"}}),
        );
    }
    let inner = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": children}),
    )
    .unwrap();
    let (id, is) = put(dir, &inner);
    // The top index names the nested index by a bare tag and by a full name.
    let top = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": media_types::OCI_INDEX, "digest": id, "size": is,
         "annotations": {"org.opencontainers.image.ref.name": "quay.io/multi/app:2"}},
    ]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();

    let archive = ImageArchive::open(dir).unwrap();
    assert_eq!(archive.indexes().len(), 1);
    assert_eq!(
        archive.indexes()[0].references[0].to_string(),
        "quay.io/multi/app:2"
    );
    assert_eq!(archive.indexes()[0].digest.to_string(), id);
    let platforms: Vec<String> = archive
        .images()
        .iter()
        .map(|i| i.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // The index itself can be read back as a blob, byte for byte.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut archive.open_blob(&id.parse().unwrap()).unwrap(),
        &mut bytes,
    )
    .unwrap();
    assert_eq!(bytes, inner);
    let mut report = VerifyReport::default();
    verify_archive(
        &archive,
        VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
        &mut |_| {},
        &mut report,
    )
    .unwrap();
    assert_eq!(report.images, 2);

    // A manifest whose bytes do not match the index's digest is refused at open.
    let child_digest: Digest = archive.images()[0].manifest_digest;
    std::fs::write(dir.join("blobs/sha256").join(child_digest.hex()), b"{}").unwrap();
    let err = ImageArchive::open(dir).unwrap_err();
    assert!(err.is_verification_failure(), "{err}");
}
