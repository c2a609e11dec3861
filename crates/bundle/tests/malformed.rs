//! Malformed-bundle corpus, generated here (no committed binaries). Each case must fail with
//! its own clear error, and unpack must leave nothing behind: no target, no staging dir.

use std::io::{Read, Write};
use std::path::Path;

use kantup_bundle::{Bundle, BundleError, UnpackOptions, VerifyOptions};
use kantup_test_support::workspace_root;

/// One raw tar entry; names and link targets are written into the header verbatim.
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<Vec<u8>>,
    declared_size: Option<u64>,
}

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        link: None,
        declared_size: None,
    }
}

fn link(name: &str, kind: tar::EntryType, target: &str) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        data: Vec::new(),
        link: Some(target.as_bytes().to_vec()),
        declared_size: None,
    }
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(&e.name);
        if let Some(l) = &e.link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.declared_size.unwrap_or(e.data.len() as u64));
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The members of the example bundle, in order.
fn example_members() -> Vec<(String, Vec<u8>)> {
    let bytes =
        std::fs::read(workspace_root().join("examples/bundles/testchart.bundle.tar")).unwrap();
    members_of(&bytes)
}

fn members_of(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    raw_tar(&members.iter().map(|(n, d)| file(n, d)).collect::<Vec<_>>())
}

/// The example bundle with `images.tar` rewritten by `edit`.
fn with_images(edit: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut members = example_members();
    let images = members.iter_mut().find(|(n, _)| n == "images.tar").unwrap();
    let mut inner = members_of(&images.1);
    edit(&mut inner);
    images.1 = tar_of(&inner);
    tar_of(&members)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    // With the frame checksum, as `kantup bundle create` writes zstd bundles.
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The example bundle with `images.tar` replaced by `images`.
fn with_image_archive(images: Vec<u8>) -> Vec<u8> {
    let mut members = example_members();
    members
        .iter_mut()
        .find(|(n, _)| n == "images.tar")
        .unwrap()
        .1 = images;
    tar_of(&members)
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

fn sha(data: &[u8]) -> String {
    kantup_bundle::Digest::of(data).hex()
}

/// An OCI image layout tar holding one image whose manifest is `manifest` (a JSON value with
/// `{config}` standing for the config descriptor), named in `index.json` with `media_type`.
fn oci_archive(media_type: &str, manifest: serde_json::Value) -> Vec<u8> {
    let config = serde_json::json!({
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": format!("sha256:{}", sha(CONFIG)),
        "size": CONFIG.len(),
    });
    let text = serde_json::to_string(&manifest)
        .unwrap()
        .replace("\"{config}\"", &config.to_string());
    let manifest = text.into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": format!("sha256:{}", sha(&manifest)),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "reg.local/app:1"},
        }],
    });
    tar_of(&[
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index.to_string().into_bytes()),
        (format!("blobs/sha256/{}", sha(&manifest)), manifest),
        (format!("blobs/sha256/{}", sha(CONFIG)), CONFIG.to_vec()),
    ])
}

fn oci_manifest(media_type: &str) -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "config": "{config}", "layers": []})
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A GNU long-name (`L`) or pax (`x`) header of `size` bytes in front of `hints.yaml`.
fn with_extension_header(kind: tar::EntryType, size: usize) -> Vec<u8> {
    let data = if kind == tar::EntryType::XHeader {
        let mut record = format!("{} path=", size).into_bytes();
        record.resize(size - 1, b'a');
        record.push(b'\n');
        record
    } else {
        vec![b'a'; size]
    };
    let mut out = raw_tar(&[Raw {
        kind,
        ..file("././@LongLink", &data)
    }]);
    out.truncate(out.len() - 1024);
    out.extend(raw_tar(&[file("hints.yaml", b"[]")]));
    out
}

/// Where a case fails.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Open,
    Hints,
    Chart,
    Images,
    Verify,
    Unpack,
}

/// Runs every stage up to `stage` and returns the error at `stage`.
fn fail_at(name: &str, path: &Path, stage: Stage, options: UnpackOptions) -> BundleError {
    let bundle = match Bundle::open(path) {
        Ok(b) => b,
        Err(e) => {
            assert!(
                matches!(stage, Stage::Open),
                "{name}: failed at open, expected {stage:?}: {e}"
            );
            return e;
        }
    };
    let target = path.parent().unwrap().join("unpacked");
    let result = match stage {
        Stage::Open => panic!("{name}: open succeeded"),
        Stage::Hints => bundle.hints().map(|_| ()),
        Stage::Chart => bundle.chart().map(|_| ()),
        Stage::Images => bundle.image_archive().map(|_| ()),
        Stage::Verify => bundle
            .verify(
                VerifyOptions {
                    deep: true,
                    ..VerifyOptions::default()
                },
                &mut |_| {},
            )
            .map(|_| ()),
        Stage::Unpack => bundle.unpack(&target, options, &mut |_| {}).map(|_| ()),
    };
    result.expect_err(name)
}

type Check = fn(&BundleError) -> bool;
/// (name, bundle bytes, failing stage, unpack options, message fragment, variant check)
type Case = (
    &'static str,
    Vec<u8>,
    Stage,
    UnpackOptions,
    &'static str,
    Check,
);

#[test]
fn malformed_corpus() {
    let good = tar_of(&example_members());
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut bad_gzip = gzip(&good);
    let mid = bad_gzip.len() / 2;
    for b in &mut bad_gzip[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let mut bad_zstd = zstd(&good);
    let mid = bad_zstd.len() / 2;
    for b in &mut bad_zstd[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let replace_hints = |text: &str| {
        let mut m = example_members();
        m.iter_mut().find(|(n, _)| n == "hints.yaml").unwrap().1 = text.as_bytes().to_vec();
        tar_of(&m)
    };
    let mut with_dup = example_members();
    with_dup.push(("hints.yaml".into(), b"- \"{{ .a }}\"".to_vec()));
    let layer_name = "24fb2886d6f6c5d16481dd7608b47e78a8e92a13d6e64d87d57cb16d5f766d63.tar.gz";
    let mut huge = raw_tar(&[file("hints.yaml", b"[]")]);
    huge.truncate(huge.len() - 1024);
    huge.extend(raw_tar(&[Raw {
        declared_size: Some(1 << 40),
        ..file("original-chart/big", b"x")
    }]));
    let mut wrong_sum_members = example_members();
    let sums: String = wrong_sum_members
        .iter()
        .map(|(n, d)| {
            let hex = if n == "hints.yaml" {
                "0".repeat(64)
            } else {
                kantup_bundle::Digest::of(d).hex()
            };
            format!("{hex}  {n}\n")
        })
        .collect();
    wrong_sum_members.push(("kantup-checksums.sha256".into(), sums.into_bytes()));
    let truncated_gzip = {
        let mut z = gzip(&good);
        z.truncate(z.len() / 2);
        z
    };
    let truncated_zstd = {
        let mut z = zstd(&good);
        z.truncate(z.len() / 2);
        z
    };
    let zstd_trailing_garbage = {
        let mut z = zstd(&good);
        z.extend_from_slice(b"this is not a zstd frame");
        z
    };
    let bad_checksum = {
        let mut t = good.clone();
        t[0] ^= 0x20; // the first member's name changes, its stored checksum does not
        t
    };
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8 + 1).collect();
    let with_sums = |sums: &str| {
        let mut m = example_members();
        m.push(("kantup-checksums.sha256".into(), sums.as_bytes().to_vec()));
        tar_of(&m)
    };
    let hints_bomb = {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let items = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        text
    };
    let huge_manifest = oci_archive(
        OCI_MANIFEST,
        serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "{config}", "layers": [],
            "annotations": {"padding": "x".repeat(5 << 20)},
        }),
    );
    let small_limit = UnpackOptions {
        max_member_size: 100_000,
        ..UnpackOptions::default()
    };

    // (name, bundle bytes, stage, unpack options, expected message fragment, variant check)
    let cases: Vec<Case> = vec![
        (
            "empty file",
            Vec::new(),
            Stage::Open,
            UnpackOptions::default(),
            "empty file",
            |e| matches!(e, BundleError::Empty { .. }),
        ),
        (
            "truncated tar",
            truncated,
            Stage::Open,
            UnpackOptions::default(),
            "truncated",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "corrupt gzip",
            bad_gzip,
            Stage::Open,
            UnpackOptions::default(),
            "corrupt gzip stream",
            |e| matches!(e, BundleError::Compression { format: "gzip", .. }),
        ),
        (
            "corrupt zstd",
            bad_zstd,
            Stage::Open,
            UnpackOptions::default(),
            "corrupt zstd stream",
            |e| matches!(e, BundleError::Compression { format: "zstd", .. }),
        ),
        (
            "duplicate member",
            tar_of(&with_dup),
            Stage::Open,
            UnpackOptions::default(),
            "duplicate member \"hints.yaml\"",
            |e| matches!(e, BundleError::DuplicateMember { .. }),
        ),
        (
            "non-UTF-8 name",
            raw_tar(&[Raw {
                name: b"original-chart/\xff\xfe.yaml".to_vec(),
                ..file("x", b"x")
            }]),
            Stage::Open,
            UnpackOptions::default(),
            "not UTF-8",
            |e| matches!(e, BundleError::NonUtf8Name { .. }),
        ),
        (
            "huge declared size",
            huge,
            Stage::Open,
            UnpackOptions::default(),
            "declares 1099511627776 bytes",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "hints not a list",
            replace_hints("image: {repository: x}\n"),
            Stage::Hints,
            UnpackOptions::default(),
            "must be a YAML list",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "bad pattern",
            replace_hints("- \"{{ .a }}/{{ .b }}/{{ .c }}\"\n"),
            Stage::Hints,
            UnpackOptions::default(),
            "invalid image pattern \"{{ .a }}/{{ .b }}/{{ .c }}\"",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "manifest names a missing layer",
            with_images(|m| m.retain(|(n, _)| n != layer_name)),
            Stage::Images,
            UnpackOptions::default(),
            "busybox:1.33.1: layer member \"24fb",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "layer digest mismatch",
            with_images(|m| {
                let layer = m.iter_mut().find(|(n, _)| n == layer_name).unwrap();
                let last = layer.1.len() - 100;
                layer.1[last] ^= 1;
            }),
            Stage::Verify,
            UnpackOptions::default(),
            "digest mismatch: expected sha256:24fb2886",
            |e| e.is_verification_failure(),
        ),
        (
            "member checksum mismatch",
            tar_of(&wrong_sum_members),
            Stage::Verify,
            UnpackOptions::default(),
            "hints.yaml: digest mismatch",
            |e| e.is_verification_failure(),
        ),
        (
            "../ path",
            raw_tar(&[
                file("hints.yaml", b"[]"),
                file("original-chart/../../evil", b"x"),
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "contains `..`",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "absolute path",
            raw_tar(&[file("hints.yaml", b"[]"), file("/tmp/kantup-evil", b"x")]),
            Stage::Unpack,
            UnpackOptions::default(),
            "absolute path",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "symlink escape",
            raw_tar(&[
                file("hints.yaml", b"[]"),
                link(
                    "original-chart/evil",
                    tar::EntryType::Symlink,
                    "../../../etc/passwd",
                ),
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "leaves the target directory",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "write through symlink",
            raw_tar(&[
                link("dir", tar::EntryType::Symlink, "original-chart"),
                file("dir/x", b"x"),
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "through the symlink \"dir\"",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "hard link outside",
            raw_tar(&[
                file("hints.yaml", b"[]"),
                link("h", tar::EntryType::Link, "/etc/passwd"),
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "hard link",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "device file",
            raw_tar(&[
                file("hints.yaml", b"[]"),
                Raw {
                    kind: tar::EntryType::Char,
                    ..file("dev", b"")
                },
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "character device",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "fifo",
            raw_tar(&[
                file("hints.yaml", b"[]"),
                Raw {
                    kind: tar::EntryType::Fifo,
                    ..file("fifo", b"")
                },
            ]),
            Stage::Unpack,
            UnpackOptions::default(),
            "fifo",
            |e| matches!(e, BundleError::UnsafeMember { .. }),
        ),
        (
            "member over size limit",
            good.clone(),
            Stage::Unpack,
            small_limit,
            "over the limit of 100000",
            |e| matches!(e, BundleError::TooLarge { .. }),
        ),
        (
            "truncated gzip",
            truncated_gzip,
            Stage::Open,
            UnpackOptions::default(),
            "corrupt gzip stream",
            |e| matches!(e, BundleError::Compression { format: "gzip", .. }),
        ),
        (
            "truncated zstd",
            truncated_zstd,
            Stage::Open,
            UnpackOptions::default(),
            "corrupt zstd stream",
            |e| matches!(e, BundleError::Compression { format: "zstd", .. }),
        ),
        (
            "zstd with trailing garbage",
            zstd_trailing_garbage,
            Stage::Open,
            UnpackOptions::default(),
            "corrupt zstd stream",
            |e| matches!(e, BundleError::Compression { format: "zstd", .. }),
        ),
        (
            "plain garbage",
            garbage.clone(),
            Stage::Open,
            UnpackOptions::default(),
            "malformed tar",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "gzip of garbage",
            gzip(&garbage),
            Stage::Open,
            UnpackOptions::default(),
            "malformed tar",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "header checksum mismatch",
            bad_checksum,
            Stage::Open,
            UnpackOptions::default(),
            "checksum",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "GNU long name of 2 MiB",
            gzip(&with_extension_header(tar::EntryType::GNULongName, 2 << 20)),
            Stage::Open,
            UnpackOptions::default(),
            "the GNU long name at offset 0 is 2097152 bytes, over the limit of 1048576",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "pax header of 2 MiB",
            with_extension_header(tar::EntryType::XHeader, 2 << 20),
            Stage::Open,
            UnpackOptions::default(),
            "the pax extended header at offset 0 is 2097152 bytes, over the limit of 1048576",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "hints is a mapping",
            replace_hints("images:\n- \"{{ .image }}\"\nextra: 1\n"),
            Stage::Hints,
            UnpackOptions::default(),
            "hints.yaml: hints must be a YAML list of template strings, found a mapping with the keys \"images\", \"extra\"",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "hint item is a number",
            replace_hints("- \"{{ .a }}\"\n- 42\n"),
            Stage::Hints,
            UnpackOptions::default(),
            "found item 2 is a number",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "hint template not quoted",
            replace_hints("- {{ .image.repository }}\n"),
            Stage::Hints,
            UnpackOptions::default(),
            "a template must be quoted",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "hints not UTF-8",
            {
                let mut m = example_members();
                m.iter_mut().find(|(n, _)| n == "hints.yaml").unwrap().1 = b"- \"\xff\"".to_vec();
                tar_of(&m)
            },
            Stage::Hints,
            UnpackOptions::default(),
            "hints.yaml: hints are not valid YAML: not UTF-8",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "hints alias bomb",
            replace_hints(&hints_bomb),
            Stage::Hints,
            UnpackOptions::default(),
            "hints.yaml: hints are not valid YAML: repetition limit exceeded",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "hints nested 10000 deep",
            replace_hints(&format!("- {}\n", "[".repeat(10_000))),
            Stage::Hints,
            UnpackOptions::default(),
            "hints.yaml: hints are not valid YAML: recursion limit exceeded",
            |e| matches!(e, BundleError::Hints { .. }),
        ),
        (
            "chart without Chart.yaml",
            {
                let mut m = example_members();
                m.retain(|(n, _)| !n.ends_with("Chart.yaml"));
                tar_of(&m)
            },
            Stage::Chart,
            UnpackOptions::default(),
            "Chart.yaml",
            |e| {
                matches!(
                    e,
                    BundleError::Chart { .. } | BundleError::MissingMember { .. }
                )
            },
        ),
        (
            "images.tar is not a tar",
            with_image_archive(garbage.clone()),
            Stage::Images,
            UnpackOptions::default(),
            "bundle.tar!images.tar: malformed tar",
            |e| matches!(e, BundleError::Tar { .. }),
        ),
        (
            "images.tar holds no image archive",
            with_image_archive(tar_of(&[("README".into(), b"hi".to_vec())])),
            Stage::Images,
            UnpackOptions::default(),
            "not an image archive: neither index.json (OCI layout) nor manifest.json",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "manifest.json is not JSON",
            with_images(|m| {
                m.iter_mut().find(|(n, _)| n == "manifest.json").unwrap().1 =
                    b"<html>oops</html>".to_vec()
            }),
            Stage::Images,
            UnpackOptions::default(),
            "images.tar!manifest.json: invalid JSON",
            |e| matches!(e, BundleError::Document { .. }),
        ),
        (
            "manifest.json is an object",
            with_images(|m| {
                m.iter_mut().find(|(n, _)| n == "manifest.json").unwrap().1 =
                    br#"{"Config": "x"}"#.to_vec()
            }),
            Stage::Images,
            UnpackOptions::default(),
            "images.tar!manifest.json: invalid JSON: invalid type: map, expected a sequence",
            |e| matches!(e, BundleError::Document { .. }),
        ),
        (
            "image config is not JSON",
            with_images(|m| {
                let config: String = {
                    let text = &m.iter().find(|(n, _)| n == "manifest.json").unwrap().1;
                    let v: serde_json::Value = serde_json::from_slice(text).unwrap();
                    v[0]["Config"].as_str().unwrap().to_string()
                };
                m.iter_mut().find(|(n, _)| *n == config).unwrap().1 = b"not json".to_vec();
            }),
            Stage::Images,
            UnpackOptions::default(),
            "invalid JSON: expected ident",
            |e| matches!(e, BundleError::Document { .. }),
        ),
        (
            "symlink loop in images.tar",
            with_image_archive(raw_tar(&[
                link("manifest.json", tar::EntryType::Symlink, "other.json"),
                link("other.json", tar::EntryType::Symlink, "manifest.json"),
            ])),
            Stage::Images,
            UnpackOptions::default(),
            "too many levels of links",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "OCI manifest over 4 MiB",
            with_image_archive(huge_manifest),
            Stage::Images,
            UnpackOptions::default(),
            "over the limit of 4194304",
            |e| matches!(e, BundleError::TooLarge { .. }),
        ),
        (
            "OCI descriptor with a non-manifest media type",
            with_image_archive(oci_archive(
                "text/html",
                serde_json::json!({"schemaVersion": 2, "config": "{config}", "layers": []}),
            )),
            Stage::Images,
            UnpackOptions::default(),
            "media type \"text/html\" is not an image manifest or index",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "OCI manifest of a layer media type",
            with_image_archive(oci_archive(
                "application/vnd.oci.image.layer.v1.tar",
                oci_manifest("application/vnd.oci.image.layer.v1.tar"),
            )),
            Stage::Images,
            UnpackOptions::default(),
            "media type \"application/vnd.oci.image.layer.v1.tar\" is not an image manifest",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "OCI descriptor and manifest disagree on the media type",
            with_image_archive(oci_archive(OCI_MANIFEST, oci_manifest(DOCKER_MANIFEST))),
            Stage::Images,
            UnpackOptions::default(),
            "the descriptor says media type \"application/vnd.oci.image.manifest.v1+json\" but the manifest says \"application/vnd.docker.distribution.manifest.v2+json\"",
            |e| matches!(e, BundleError::ImageArchive { .. }),
        ),
        (
            "checksum member malformed",
            with_sums("not a checksum line\n"),
            Stage::Verify,
            UnpackOptions::default(),
            "kantup-checksums.sha256: invalid sha256sum: line 1",
            |e| matches!(e, BundleError::Document { .. }),
        ),
        (
            "checksum member does not list every member",
            with_sums(&format!("{}  nowhere.txt\n", "0".repeat(64))),
            Stage::Verify,
            UnpackOptions::default(),
            "is not listed in kantup-checksums.sha256",
            |e| {
                matches!(
                    e,
                    BundleError::ImageArchive { .. } | BundleError::MissingMember { .. }
                )
            },
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut seen_messages = std::collections::HashSet::new();
    for (name, bytes, stage, options, want, check) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("bundle.tar");
        std::fs::write(&path, &bytes).unwrap();
        let err = fail_at(name, &path, stage, options);
        // The failing step wrote nothing and left the bundle as it was.
        let listing: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(listing, ["bundle.tar"], "{name}: wrote files");
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{name}: bundle changed"
        );
        let msg = err.to_string();
        assert!(msg.contains(want), "{name}: message {msg:?} lacks {want:?}");
        assert!(check(&err), "{name}: wrong variant {err:?}");
        assert!(
            seen_messages.insert(msg.clone()),
            "{name}: message not distinct: {msg}"
        );
        // Unpack never leaves anything: only the input file remains.
        let _ = Bundle::open(&path)
            .map(|b| b.unpack(tmp.path().join("unpacked"), options, &mut |_| {}));
        let left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if matches!(stage, Stage::Unpack | Stage::Open) {
            assert_eq!(
                left,
                vec!["bundle.tar".to_string()],
                "{name}: unpack left files behind"
            );
        }
    }
    assert!(!Path::new("/tmp/kantup-evil").exists());
}

/// A failure in the middle of writing (a member that cannot be created) removes the staging
/// directory and never creates the target.
#[test]
fn unpack_failure_midway_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // `a` is a file, then `a/b` needs `a` to be a directory: fails after `a` was written.
    let bytes = raw_tar(&[
        file("hints.yaml", b"[]"),
        file("a", b"x"),
        file("a/b", b"y"),
    ]);
    let path = tmp.path().join("bundle.tar");
    std::fs::write(&path, bytes).unwrap();
    let bundle = Bundle::open(&path).unwrap();
    let err = bundle
        .unpack(
            tmp.path().join("out"),
            UnpackOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, BundleError::Io { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bundle.tar")]);
}

/// A bundle of 100,000 members (all but the example's own are empty files in the chart) is
/// read, verified and unpacked correctly: the index holds each member once and nothing is
/// read twice.
#[test]
fn hundred_thousand_members() {
    let mut members = example_members();
    for i in 0..100_000 {
        members.push((format!("original-chart/files/f{i:06}"), Vec::new()));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.tar");
    std::fs::write(&path, tar_of(&members)).unwrap();
    let bundle = Bundle::open(&path).unwrap();
    assert_eq!(bundle.members().len(), members.len());
    let report = bundle
        .verify(
            VerifyOptions {
                deep: true,
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.images, 2);
    let chart = bundle.chart().unwrap();
    assert_eq!(chart.name(), "testchart");
    let out = tmp.path().join("out");
    let unpacked = bundle
        .unpack(&out, UnpackOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(unpacked.files, members.len());
    assert!(out.join("original-chart/files/f099999").is_file());
}

/// A relok8s-layout bundle without a `hints.yaml` member is not malformed (bundles made by hand
/// or by other tools often lack it): it opens, has no hints, its images are found as a chart's
/// are, and it verifies.
#[test]
fn a_bundle_without_hints_yaml_opens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-hints.tar");
    let without_hints: Vec<_> = example_members()
        .into_iter()
        .filter(|(n, _)| n != "hints.yaml")
        .collect();
    std::fs::write(&path, tar_of(&without_hints)).unwrap();
    let bundle = Bundle::open(&path).unwrap();
    assert!(bundle.is_bundle());
    assert!(bundle.hints().unwrap().is_empty());
    // The example chart lists its images nowhere else.
    let found = bundle.discover_images().unwrap();
    assert_eq!(found.source, kantup_bundle::discovery::ImageSource::None);
    let report = bundle
        .verify(VerifyOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.hints, 0);
    assert_eq!(report.images, 2);
}
