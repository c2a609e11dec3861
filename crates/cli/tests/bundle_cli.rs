//! `kantup bundle ...` run as the built binary against the relok8s example bundle.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::{require_tool, workspace_root};
use serde_json::Value;

const BUSYBOX: &str = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
const TINY: &str = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";
const LAYER: &str = "sha256:24fb2886d6f6c5d16481dd7608b47e78a8e92a13d6e64d87d57cb16d5f766d63";

fn example() -> PathBuf {
    workspace_root().join("examples/bundles/testchart.bundle.tar")
}

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .output()
        .expect("run kantup")
}

fn ok(args: &[&str]) -> String {
    let out = kantup(args);
    assert!(
        out.status.success(),
        "kantup {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn inspect_table_lists_chart_hints_and_images() {
    let out = ok(&["bundle", "inspect", s(&example())]);
    assert!(out.contains("Chart:       testchart 0.1.0"), "{out}");
    assert!(out.contains("Hints (4):"), "{out}");
    for template in [
        "{{ .image.repository }}:{{ .image.tag }}",
        "{{ .sameImageButNoTagRequirement.image }}",
        "{{ .singleImageReference.image }}",
        "{{ .subchart.image.name }}:{{ .subchart.image.tag }}",
    ] {
        assert!(out.contains(template), "missing hint {template}: {out}");
    }
    assert!(out.contains("Images (2):"), "{out}");
    assert!(out.contains(BUSYBOX) && out.contains(TINY), "{out}");
    assert!(out.contains(&format!("layer     {LAYER}")), "{out}");
}

#[test]
fn inspect_json() {
    let out = ok(&["bundle", "inspect", s(&example()), "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chart"]["name"], "testchart");
    assert_eq!(v["hints"].as_array().unwrap().len(), 4);
    assert_eq!(v["hints"][0]["repository"], ".image.repository");
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["references"][0], BUSYBOX);
    assert_eq!(images[0]["layers"][0]["digest"], LAYER);
    assert_eq!(images[1]["references"][0], TINY);
    assert_eq!(images[1]["layers"].as_array().unwrap().len(), 0);
}

#[test]
fn verify_ok_and_corruption_exits_3() {
    let out = ok(&["bundle", "verify", "--deep", s(&example())]);
    assert!(out.starts_with("OK "), "{out}");
    assert!(out.contains("2 images"), "{out}");
    let json: Value =
        serde_json::from_str(&ok(&["bundle", "verify", s(&example()), "-o", "json"])).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["report"]["blobs"], 3);

    // Flip one byte inside the busybox layer (inside images.tar inside the bundle).
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.tar");
    let mut bytes = std::fs::read(example()).unwrap();
    let images_at = member_offset(&bytes, "images.tar");
    let layer_at = member_offset(&bytes[images_at..], &format!("{}.tar.gz", &LAYER[7..]));
    bytes[images_at + layer_at + 1000] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let out = kantup(&["bundle", "verify", s(&bad)]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("digest mismatch") && err.contains("busybox"),
        "{err}"
    );
}

/// Offset of a member's data in a ustar archive (plain names, as in the example bundle).
fn member_offset(tar_bytes: &[u8], name: &str) -> usize {
    let mut at = 0;
    while at + 512 <= tar_bytes.len() && tar_bytes[at] != 0 {
        let header = &tar_bytes[at..at + 512];
        let end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let size_field = std::str::from_utf8(&header[124..136]).unwrap();
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .unwrap();
        if &header[..end] == name.as_bytes() {
            return at + 512;
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("{name} not found");
}

#[test]
fn unpack_then_refuse_non_empty_target() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let out = ok(&["bundle", "unpack", s(&example()), s(&target)]);
    assert!(out.contains("16 files"), "{out}");
    assert!(
        target
            .join("original-chart/templates/deployment.yaml")
            .is_file()
    );
    assert!(target.join("images.tar").is_file());
    let again = kantup(&["bundle", "unpack", s(&example()), s(&target)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn create_round_trip_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let unpacked = tmp.path().join("u");
    ok(&["bundle", "unpack", s(&example()), s(&unpacked)]);
    let out_path = tmp.path().join("new.bundle.tar.zst");
    let (chart, hints, images) = (
        unpacked.join("original-chart"),
        unpacked.join("hints.yaml"),
        unpacked.join("images.tar"),
    );
    let args = [
        "bundle",
        "create",
        s(&out_path),
        "--chart",
        s(&chart),
        "--hints",
        s(&hints),
        "--images",
        s(&images),
        "-o",
        "json",
    ];
    let report: Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(report["images"], 2);
    let mut magic = [0u8; 4];
    std::fs::File::open(&out_path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(magic, [0x28, 0xb5, 0x2f, 0xfd], "zstd chosen from the name");
    // Reproducible: a second run gives the same digest.
    let again: Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(report["digest"], again["digest"]);
    let v: Value = serde_json::from_str(&ok(&[
        "bundle",
        "verify",
        "--deep",
        s(&out_path),
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["report"]["images"], 2);
    assert!(v["report"]["checksummed_members"].as_u64().unwrap() > 10);
    // Bad input names the file.
    let out = kantup(&[
        "bundle",
        "create",
        s(&tmp.path().join("x.tar")),
        "--chart",
        s(&unpacked),
        "--hints",
        s(&unpacked.join("hints.yaml")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing Chart.yaml"));
}

#[test]
fn export_images_to_oci_layout_readable_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let out = ok(&[
        "bundle",
        "export-images",
        s(&example()),
        "--oci-layout",
        s(&layout),
        "--oci-manifests",
    ]);
    assert!(out.contains("Wrote 2 images"), "{out}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, [BUSYBOX, TINY]);
    let skopeo = require_tool("skopeo");
    for name in [BUSYBOX, TINY] {
        let out = Command::new(&skopeo)
            .args([
                "inspect",
                "--raw",
                &format!("oci:{}:{name}", layout.display()),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Preserved manifests by default; selecting one image by its short name.
    let single = tmp.path().join("single");
    ok(&[
        "bundle",
        "export-images",
        s(&example()),
        "--oci-layout",
        s(&single),
        "--image",
        BUSYBOX,
    ]);
    let out = Command::new(&skopeo)
        .args(["inspect", "--raw", &format!("oci:{}", single.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], LAYER);
    let missing = kantup(&[
        "bundle",
        "export-images",
        s(&example()),
        "--oci-layout",
        s(&single),
        "--image",
        "nope:1",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("\"nope:1\" is not in"));
}
