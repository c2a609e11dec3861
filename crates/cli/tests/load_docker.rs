//! `kantup load --runtime docker` against a real Docker Engine started by the test (Debian's
//! dockerd with vfs storage on its own containerd: `kantup_test_support::runtimes::Dockerd`),
//! driven through the real `docker` CLI; and the failure when nobody listens.

use std::path::Path;
use std::process::{Command, Output};

use kantup_bundle::Bundle;
use kantup_test_support::runtimes::Dockerd;

fn kantup_load(daemon: &Dockerd, input: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(input)
        .args(["--runtime", "docker"])
        .arg(format!("--runtime-arg={}", daemon.host_arg()))
        .args(extra)
        .env_remove("KANTUP_RUNTIME_ARGS")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap()
}

fn example_bundle() -> std::path::PathBuf {
    kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar")
}

/// The bundle's images land in dockerd under their names and the re-tagged ones, and docker's
/// image IDs are the configs the bundle holds (the same images, byte for byte); a zstd bundle
/// loads the same way.
#[test]
fn loads_a_bundle_into_dockerd_and_retags() {
    let daemon = Dockerd::start();
    let out = kantup_load(
        &daemon,
        &example_bundle(),
        &["--retag", "reg.local:5000/kant"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(daemon.log_path()).unwrap_or_default()
    );
    let images = daemon.images();
    assert_eq!(
        images,
        [
            "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1",
            "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest",
            "reg.local:5000/kant/busybox:1.33.1",
            "reg.local:5000/kant/tiny:tiniest",
        ]
    );
    let bundle = Bundle::open(example_bundle()).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    for image in archive.images() {
        let name = image.references[0].to_string();
        let short = name.rsplit('/').next().unwrap();
        let retagged = format!("reg.local:5000/kant/{short}");
        assert_eq!(
            daemon.image_id(&name),
            image.config.digest.to_string(),
            "{name}"
        );
        assert_eq!(
            daemon.image_id(&retagged),
            image.config.digest.to_string(),
            "{retagged}"
        );
    }

    // The same bundle zstd-compressed, into a fresh engine.
    let fresh = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("testchart.bundle.tar.zst");
    let compressed = zstd::encode_all(std::fs::File::open(example_bundle()).unwrap(), 3).unwrap();
    std::fs::write(&zst, compressed).unwrap();
    let out = kantup_load(&fresh, &zst, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fresh.images().len(), 2, "{:?}", fresh.images());
}

#[test]
fn docker_failure_names_the_command_and_dockers_message() {
    kantup_test_support::require_tool("docker");
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("no-docker-here.sock");
    let bundle =
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar");
    let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(&bundle)
        .args(["--runtime", "docker", "--retag", "reg.local/kant"])
        .arg(format!("--runtime-arg=--host=unix://{}", socket.display()))
        .env_remove("KANTUP_RUNTIME_ARGS")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("`docker --host=unix://{} load`", socket.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-docker-here.sock"),
        "docker's message: {stderr}"
    );
    assert!(output.stdout.is_empty());
}
