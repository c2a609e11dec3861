//! Differential bundles end to end: `bundle create --base OLD` leaves out the layers OLD holds;
//! the result verifies and says what it needs; `sync` refuses it (pushing nothing) where the
//! base is missing and, once the base was synced, pushes digest-exact images that skopeo copies
//! in full (layers of a new repository mounted from the base's); an OCI layout target is
//! checked the same way; `load` refuses it; `upgrade` installs its chart on the real API server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ok, text};
use kantup_test_support::image_gen::{GenImage, GenSpec, generate_bundle_inputs};
use kantup_test_support::kube_cluster::{cluster_or_skip, unique_name};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{helm3, require_tool};
use serde_json::Value;

use common::kantup_isolated as kantup;

/// Two base layers of 1 MiB shared by every image, and one own layer per image.
fn spec(images: usize, own_layer_size: usize) -> GenSpec {
    GenSpec {
        images,
        base_layers: 2,
        base_layer_size: 1024 * 1024,
        own_layer_size,
        seed: 21,
        source_prefix: "example.com/kant".into(),
    }
}

/// `kantup bundle create` of generated images with the chart at `version`; `base` makes it
/// differential.
fn create(
    dir: &Path,
    name: &str,
    spec: &GenSpec,
    version: &str,
    base: Option<&Path>,
) -> (PathBuf, Vec<GenImage>) {
    let inputs = generate_bundle_inputs(&dir.join(format!("{name}-inputs")), spec).unwrap();
    std::fs::write(
        inputs.chart_dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: genchart\nversion: {version}\n"),
    )
    .unwrap();
    let path = dir.join(format!("{name}.bundle.tar"));
    let mut cmd = inputs.bundle_create_command(Path::new(env!("CARGO_BIN_EXE_kantup")), &path);
    if let Some(base) = base {
        cmd.arg("--base").arg(base);
    }
    ok(cmd.output().unwrap(), "bundle create");
    (path, inputs.images)
}

fn sha256_file(path: &Path) -> String {
    kantup_bundle::Digest::of(&std::fs::read(path).unwrap()).to_string()
}

/// A load-image.yaml syncing `bundle` into `registry` (`oci-layout:DIR` for a layout) under
/// `kant/apps`.
fn sync_config(dir: &Path, name: &str, bundle: &Path, registry: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {registry}\n  containerRepository: kant/apps\n",
            bundle.display()
        ),
    )
    .unwrap();
    path
}

fn skopeo(args: &[&str]) -> Output {
    Command::new(require_tool("skopeo"))
        .args(args)
        .output()
        .unwrap()
}

/// Each image is in `host/kant/apps` with the generator's manifest digest, and skopeo copies
/// it whole (every blob fetched and digest-checked) into a `dir:` (blobs kept as they are).
fn check_pushed(host: &str, images: &[GenImage], scratch: &Path) {
    for image in images {
        let tail = image.repository.rsplit('/').next().unwrap();
        let target = format!("docker://{host}/kant/apps/{tail}:{}", image.tag);
        let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &target]);
        assert!(raw.status.success(), "{target}: {}", text(&raw));
        assert_eq!(
            kantup_bundle::Digest::of(&raw.stdout).to_string(),
            image.manifest_digest,
            "{target}"
        );
        let copy_dir = scratch.join(format!("copy-{tail}"));
        let copied = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &target,
            &format!("dir:{}", copy_dir.display()),
        ]);
        assert!(
            copied.status.success(),
            "skopeo copy {target}: {}",
            text(&copied)
        );
        for layer in &image.layers {
            let hex = layer.digest.trim_start_matches("sha256:");
            assert!(
                copy_dir.join(hex).is_file(),
                "{target}: layer {} not copied",
                layer.digest
            );
        }
    }
}

#[test]
fn a_differential_bundle_syncs_where_its_base_is_and_is_refused_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_images) = create(dir.path(), "kant-0.4.0", &spec(4, 64 * 1024), "0.4.0", None);
    // 0.5.0 rebuilds every image's own layer (other size) and adds a fifth image; the base
    // layers stay.
    let (full, _) = create(
        dir.path(),
        "kant-0.5.0-full",
        &spec(5, 96 * 1024),
        "0.5.0",
        None,
    );
    let (diff, new_images) = create(
        dir.path(),
        "kant-0.5.0",
        &spec(5, 96 * 1024),
        "0.5.0",
        Some(&old),
    );
    assert_eq!(new_images[0].layers[0], old_images[0].layers[0]);

    // Much smaller than the full bundle: the two shared 1 MiB layers are left out.
    let full_size = std::fs::metadata(&full).unwrap().len();
    let diff_size = std::fs::metadata(&diff).unwrap().len();
    assert!(
        diff_size * 3 < full_size,
        "differential {diff_size} bytes, full {full_size} bytes"
    );

    // inspect and verify say what it is and what it needs.
    let info: Value = serde_json::from_str(&ok(
        kantup(&["bundle", "inspect", diff.to_str().unwrap(), "-o", "json"]),
        "inspect",
    ))
    .unwrap();
    assert_eq!(info["base"]["base"]["digest"], sha256_file(&old), "{info}");
    assert_eq!(info["base"]["base"]["chart_version"], "0.4.0", "{info}");
    let omitted: Vec<&str> = info["base"]["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    let shared: Vec<&str> = old_images[0]
        .layers
        .iter()
        .take(2)
        .map(|l| l.digest.as_str())
        .collect();
    assert_eq!(omitted.len(), 2, "{info}");
    for d in &shared {
        assert!(omitted.contains(d), "{d} not listed as left out: {info}");
    }
    let verified = ok(
        kantup(&["bundle", "verify", diff.to_str().unwrap()]),
        "verify",
    );
    assert!(
        verified.contains("Differential: needs 2 layers") && verified.contains("kant-0.4.0"),
        "{verified}"
    );
    let deep = kantup(&["bundle", "verify", "--deep", diff.to_str().unwrap()]);
    ok(deep, "verify --deep");

    // load cannot use it: a runtime would need every layer.
    let load = kantup(&["load", diff.to_str().unwrap(), "--runtime", "containerd"]);
    assert!(!load.status.success(), "{}", text(&load));
    let err = String::from_utf8_lossy(&load.stderr);
    assert!(
        err.contains("differential bundle") && err.contains("kant-0.4.0"),
        "{}",
        text(&load)
    );

    // A registry without the base: refused before anything is pushed, naming the blobs.
    let registry = RegistryServer::start();
    let host = registry.host();
    let cfg = sync_config(dir.path(), "diff.yaml", &diff, &host);
    let refused = kantup(&["sync", "--config", cfg.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("differential bundle against kant-0.4.0.bundle.tar")
            && err.contains(shared[0])
            && err.contains("Nothing was pushed"),
        "{}",
        text(&refused)
    );
    assert_eq!(registry.stored_blob_count(), 0, "nothing may be pushed");

    // The base synced, the differential bundle syncs; the fifth image's repository never
    // held the base layers: they are mounted from the base's repositories.
    let old_cfg = sync_config(dir.path(), "old.yaml", &old, &host);
    ok(
        kantup(&["sync", "--config", old_cfg.to_str().unwrap()]),
        "sync base",
    );
    let synced = kantup(&["sync", "--config", cfg.to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_str(&ok(synced, "sync differential")).unwrap();
    assert_eq!(report["images_failed"], 0, "{report}");
    // Same tags as 0.4.0: four overwritten, the fifth new.
    assert_eq!(report["images_overwritten"], 4, "{report}");
    assert_eq!(report["images_pushed"], 1, "{report}");
    assert!(
        report["bytes_uploaded"].as_u64().unwrap() < 1024 * 1024,
        "only the own layers and configs travel: {report}"
    );
    check_pushed(&host, &new_images, dir.path());
}

#[test]
fn a_differential_bundle_into_an_oci_layout_needs_the_base_there() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = create(dir.path(), "kant-0.4.0", &spec(2, 32 * 1024), "0.4.0", None);
    let (diff, new_images) = create(
        dir.path(),
        "kant-0.5.0",
        &spec(2, 48 * 1024),
        "0.5.0",
        Some(&old),
    );
    let layout = dir.path().join("layout");
    let target = format!("oci-layout:{}", layout.display());
    let sync_into_layout = |bundle: &Path| {
        let name = format!("{}.yaml", bundle.file_stem().unwrap().to_string_lossy());
        let cfg = sync_config(dir.path(), &name, bundle, &target);
        kantup(&["sync", "--config", cfg.to_str().unwrap()])
    };
    let refused = sync_into_layout(&diff);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not in the OCI layout"),
        "{}",
        text(&refused)
    );
    assert!(
        !layout.join("index.json").exists(),
        "nothing may be written"
    );
    ok(sync_into_layout(&old), "sync base into layout");
    ok(sync_into_layout(&diff), "sync differential into layout");
    for image in &new_images {
        let hex = image.manifest_digest.trim_start_matches("sha256:");
        assert!(layout.join("blobs/sha256").join(hex).is_file());
        for layer in &image.layers {
            let hex = layer.digest.trim_start_matches("sha256:");
            assert!(layout.join("blobs/sha256").join(hex).is_file());
        }
    }
}

#[test]
fn upgrade_installs_the_chart_of_a_differential_bundle() {
    let Some(cluster) = cluster_or_skip("upgrade_installs_the_chart_of_a_differential_bundle")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = create(dir.path(), "kant-0.4.0", &spec(1, 16 * 1024), "0.4.0", None);
    let (diff, _) = create(
        dir.path(),
        "kant-0.5.0",
        &spec(1, 24 * 1024),
        "0.5.0",
        Some(&old),
    );
    let ns = cluster.namespace("diff");
    let release = unique_name("gen");
    let helm = helm3();
    let run = |bundle: &Path| {
        common::kantup(
            cluster.kubeconfig(),
            dir.path(),
            &[
                "upgrade",
                bundle.to_str().unwrap(),
                "--release",
                &release,
                "-n",
                &ns,
                "--backup-dir",
                dir.path().join("backups").to_str().unwrap(),
                "--helm",
                helm.to_str().unwrap(),
                "--yes",
            ],
        )
    };
    ok(run(&old), "install 0.4.0");
    ok(run(&diff), "upgrade to the differential 0.5.0");
    let status: Value = serde_json::from_str(&cluster.helm(
        &helm,
        &["list", "-n", &ns, "-o", "json", "--filter", &release],
    ))
    .unwrap();
    assert_eq!(status[0]["chart"], "genchart-0.5.0", "{status}");
    assert_eq!(status[0]["revision"], "2", "{status}");
}
