//! Interoperability with the real tools: archives written by skopeo and podman are read right
//! (digests compared with what the tools report), and archives kantup writes are accepted by
//! skopeo and `podman load`. Images are built here (no network): an OCI layout with generated
//! layers, then transformed by the tools. podman runs with its own temporary storage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_bundle::archive::{ArchiveFormat, ImageArchive, oci_layout};
use kantup_bundle::{Bundle, Digest, VerifyOptions, VerifyReport, verify_archive};
use kantup_test_support::{require_tool, workspace_root};
use serde_json::{Value, json};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    run(Command::new(require_tool("skopeo"))
        .args(["--insecure-policy"])
        .args(args))
}

/// podman with private, temporary storage.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn run(&self, args: &[&str]) -> Vec<u8> {
        let root = self.dir.path().join("root");
        let runroot = self.dir.path().join("runroot");
        run(Command::new(require_tool("podman"))
            .arg("--root")
            .arg(root)
            .arg("--runroot")
            .arg(runroot)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args))
    }
}

fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, name, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = Digest::of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn put(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let d = Digest::of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    (d.to_string(), bytes.len())
}

/// An OCI layout with two images sharing a base layer: `example.com/test/a:v1` and
/// `example.com/test/b:v2`, each with its own top layer.
fn build_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let base = layer(&[("etc/base.txt", b"shared base layer\n")]);
    let mut manifests = Vec::new();
    for (name, payload) in [
        ("example.com/test/a:v1", &b"image a"[..]),
        ("example.com/test/b:v2", &b"image b, different"[..]),
    ] {
        let top = layer(&[("app/payload", payload)]);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/app/payload"]},
            "rootfs": {"type": "layers", "diff_ids": [base.1.to_string(), top.1.to_string()]},
        }))
        .unwrap();
        let (cd, cs) = put(dir, &config);
        let layers: Vec<Value> = [&base.0, &top.0]
            .iter()
            .map(|l| {
                let (d, s) = put(dir, l);
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": layers,
        }))
        .unwrap();
        let (md, ms) = put(dir, &manifest);
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    }
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
}

const NAMES: [&str; 2] = ["example.com/test/a:v1", "example.com/test/b:v2"];

/// What skopeo reports for an image: (manifest digest, config digest, layer digests).
fn skopeo_digests(transport_ref: &str) -> (Digest, Digest, Vec<Digest>) {
    let raw = skopeo(&["inspect", "--raw", transport_ref]);
    let config = skopeo(&["inspect", "--config", "--raw", transport_ref]);
    let m: Value = serde_json::from_slice(&raw).unwrap();
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().parse().unwrap())
        .collect();
    (Digest::of(&raw), Digest::of(&config), layers)
}

fn find<'a>(archive: &'a ImageArchive, name: &str) -> &'a kantup_bundle::archive::Image {
    archive
        .images()
        .iter()
        .find(|i| i.references.iter().any(|r| r.to_string() == name))
        .unwrap_or_else(|| panic!("{name} not in {}: {:?}", archive.label(), archive.images()))
}

fn verify_deep(archive: &ImageArchive) -> VerifyReport {
    let mut report = VerifyReport::default();
    verify_archive(
        archive,
        VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
        &mut |_| {},
        &mut report,
    )
    .unwrap();
    report
}

#[test]
fn reads_skopeo_docker_and_oci_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_layout(&src);
    for name in NAMES {
        let da = tmp.path().join(format!("{}.docker.tar", &name[17..18]));
        let oa = tmp.path().join(format!("{}.oci.tar", &name[17..18]));
        let src_ref = format!("oci:{}:{name}", src.display());
        skopeo(&[
            "copy",
            &src_ref,
            &format!("docker-archive:{}:{name}", da.display()),
        ]);
        skopeo(&[
            "copy",
            &src_ref,
            &format!("oci-archive:{}:{name}", oa.display()),
        ]);

        // docker-archive (classic layout: uncompressed `<hex>.tar` + `<id>/layer.tar` symlinks).
        let archive = ImageArchive::open(&da).unwrap();
        assert_eq!(archive.format(), ArchiveFormat::DockerArchive);
        let image = find(&archive, name);
        let (_, config, layers) = skopeo_digests(&format!("docker-archive:{}", da.display()));
        assert_eq!(image.config.digest, config, "{name} config");
        assert_eq!(
            image
                .layers
                .iter()
                .map(|l| l.diff_id.unwrap())
                .collect::<Vec<_>>(),
            layers,
            "{name} layers"
        );
        // Uncompressed layers: stored bytes are the diff ID.
        assert!(image.layers.iter().all(|l| Some(l.digest) == l.diff_id));
        assert_eq!(verify_deep(&archive).images, 1);

        // oci-archive: the manifest is skopeo's own bytes, so its digest matches exactly.
        let archive = ImageArchive::open(&oa).unwrap();
        assert_eq!(archive.format(), ArchiveFormat::OciLayout);
        let image = find(&archive, name);
        let (manifest, config, layers) =
            skopeo_digests(&format!("oci-archive:{}:{name}", oa.display()));
        assert_eq!(image.manifest_digest, manifest, "{name} manifest");
        assert_eq!(image.config.digest, config);
        assert_eq!(
            image.layers.iter().map(|l| l.digest).collect::<Vec<_>>(),
            layers
        );
        assert_eq!(verify_deep(&archive).diff_ids_checked, 2);
        assert_eq!(image.platform.as_ref().unwrap().to_string(), "linux/amd64");
    }
}

#[test]
fn reads_podman_save_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_layout(&src);
    let podman = Podman::new();
    for name in NAMES {
        let oa = tmp.path().join(format!("{}.oci.tar", &name[17..18]));
        skopeo(&[
            "copy",
            &format!("oci:{}:{name}", src.display()),
            &format!("oci-archive:{}:{name}", oa.display()),
        ]);
        podman.run(&["load", "-i", oa.to_str().unwrap()]);
    }
    // --multi-image-archive: both images, the shared base layer stored once and linked.
    let multi = tmp.path().join("multi.tar");
    podman.run(&[
        "save",
        "--multi-image-archive",
        "-o",
        multi.to_str().unwrap(),
        NAMES[0],
        NAMES[1],
    ]);
    let archive = ImageArchive::open(&multi).unwrap();
    assert_eq!(archive.images().len(), 2);
    for name in NAMES {
        let image = find(&archive, name);
        let id = String::from_utf8(podman.run(&["image", "inspect", "--format", "{{.Id}}", name]))
            .unwrap();
        assert_eq!(
            image.config.digest.hex(),
            id.trim(),
            "{name}: config digest is podman's image ID"
        );
        let (_, config, layers) =
            skopeo_digests(&format!("docker-archive:{}:{name}", multi.display()));
        assert_eq!(image.config.digest, config);
        assert_eq!(
            image
                .layers
                .iter()
                .map(|l| l.diff_id.unwrap())
                .collect::<Vec<_>>(),
            layers
        );
    }
    assert_eq!(
        find(&archive, NAMES[0]).layers[0].digest,
        find(&archive, NAMES[1]).layers[0].digest,
        "shared base layer"
    );
    assert_eq!(
        verify_deep(&archive).blobs,
        2 + 3,
        "2 configs + 3 distinct layers"
    );

    // --format oci-archive.
    let po = tmp.path().join("podman.oci.tar");
    podman.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        po.to_str().unwrap(),
        NAMES[1],
    ]);
    let archive = ImageArchive::open(&po).unwrap();
    let image = find(&archive, NAMES[1]);
    let (manifest, config, _) = skopeo_digests(&format!("oci-archive:{}", po.display()));
    assert_eq!(
        (image.manifest_digest, image.config.digest),
        (manifest, config)
    );
    verify_deep(&archive);
}

#[test]
fn tools_accept_what_kantup_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle =
        Bundle::open(workspace_root().join("examples/bundles/testchart.bundle.tar")).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    let images: Vec<_> = archive.images().iter().collect();
    let busybox = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
    let tiny = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";

    // The tar kantup writes (manifests preserved) is a docker-archive.
    let written = tmp.path().join("kantup-images.tar");
    oci_layout::write_archive_tar(
        std::fs::File::create(&written).unwrap(),
        &archive,
        &images,
        |_| {},
    )
    .unwrap();
    for name in [busybox, tiny] {
        let image = find(&archive, name);
        // skopeo's docker-archive source decompresses layers and names them by diff ID.
        let (_, config, layers) =
            skopeo_digests(&format!("docker-archive:{}:{name}", written.display()));
        assert_eq!(image.config.digest, config, "docker-archive {name}");
        assert_eq!(
            image
                .layers
                .iter()
                .map(|l| l.diff_id.unwrap())
                .collect::<Vec<_>>(),
            layers
        );
    }

    // With OCI manifests it is also an oci-archive skopeo addresses by name.
    let oci_images: Vec<_> = images.iter().map(|i| i.to_oci()).collect();
    let oci_refs: Vec<_> = oci_images.iter().collect();
    let written_oci = tmp.path().join("kantup-images-oci.tar");
    oci_layout::write_archive_tar(
        std::fs::File::create(&written_oci).unwrap(),
        &archive,
        &oci_refs,
        |_| {},
    )
    .unwrap();
    for image in &oci_images {
        let name = image.references[0].to_string();
        let (manifest, config, layers) =
            skopeo_digests(&format!("oci-archive:{}:{name}", written_oci.display()));
        assert_eq!(
            (manifest, config),
            (image.manifest_digest, image.config.digest),
            "oci-archive {name}"
        );
        assert_eq!(
            image.layers.iter().map(|l| l.digest).collect::<Vec<_>>(),
            layers
        );
    }

    // OCI layout directories: skopeo serves our manifest bytes unchanged, by name for OCI
    // manifests, and (containers/image addresses only OCI types by name) as the single image
    // of a layout for the preserved Docker manifest.
    let layout = tmp.path().join("layout");
    oci_layout::write_images(&layout, &archive, &oci_refs, |_| {}).unwrap();
    for image in &oci_images {
        let name = image.references[0].to_string();
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci:{}:{name}", layout.display()),
        ]);
        assert_eq!(raw, image.manifest, "oci:{name}");
    }
    let single = tmp.path().join("single");
    oci_layout::write_images(&single, &archive, &[find(&archive, busybox)], |_| {}).unwrap();
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}", single.display())]);
    assert_eq!(
        raw,
        find(&archive, busybox).manifest,
        "preserved docker manifest"
    );
    // skopeo can copy out of the layout again, and the copy reads back with the same config.
    let copied: PathBuf = tmp.path().join("copied.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}:{busybox}", layout.display()),
        &format!("docker-archive:{}:{busybox}", copied.display()),
    ]);
    assert_eq!(
        find(&ImageArchive::open(&copied).unwrap(), busybox)
            .config
            .digest,
        find(&archive, busybox).config.digest
    );

    // podman load takes the archive; the image ID is the config digest.
    let podman = Podman::new();
    let out = String::from_utf8(podman.run(&["load", "-i", written.to_str().unwrap()])).unwrap();
    assert!(out.contains("busybox"), "{out}");
    let id = String::from_utf8(podman.run(&["image", "inspect", "--format", "{{.Id}}", busybox]))
        .unwrap();
    assert_eq!(id.trim(), find(&archive, busybox).config.digest.hex());
}
