//! `kantup load --runtime containerd` against a real containerd daemon started by the test
//! (`kantup_test_support::runtimes::Containerd`: its own root, state and socket; killed on
//! drop), driven through the real `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::runtimes::Containerd;

/// `kantup load --runtime containerd` into `daemon`.
fn kantup_load(daemon: &Containerd, input: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(input)
        .args(["--runtime", "containerd"])
        .arg(format!(
            "--runtime-arg=--address={}",
            daemon.socket().display()
        ))
        .args(extra)
        .env_remove("KANTUP_RUNTIME_ARGS")
        .output()
        .unwrap()
}

fn bundle() -> PathBuf {
    kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar")
}

const BUSYBOX: &str = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
const TINY: &str = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";

#[test]
fn imports_a_bundle_into_k8s_io_and_retags() {
    let daemon = Containerd::start();
    let output = kantup_load(
        &daemon,
        &bundle(),
        &["--retag", "reg.local:5000/kant", "-o", "json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["runtime"], "containerd");
    assert_eq!(report["namespace"], "k8s.io");
    assert_eq!(
        daemon.images("k8s.io"),
        [
            BUSYBOX,
            TINY,
            "reg.local:5000/kant/busybox:1.33.1",
            "reg.local:5000/kant/tiny:tiniest",
        ]
    );
    // Loading again is fine: the tags are moved, not refused.
    let again = kantup_load(&daemon, &bundle(), &["--retag", "reg.local:5000/kant"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(daemon.images("k8s.io").len(), 4);
}

#[test]
fn honours_the_namespace() {
    let daemon = Containerd::start();
    let output = kantup_load(&daemon, &bundle(), &["--namespace", "kantup-test"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(daemon.images("kantup-test"), [BUSYBOX, TINY]);
    assert!(daemon.images("k8s.io").is_empty());
}

#[test]
fn unreachable_daemon_names_ctr_and_its_error() {
    let temp = tempfile::tempdir().unwrap();
    kantup_test_support::require_tool("ctr");
    let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(bundle())
        .args(["--runtime", "containerd"])
        .arg(format!(
            "--runtime-arg=--address={}",
            temp.path().join("nobody-listens.sock").display()
        ))
        .arg("--runtime-arg=--timeout=2s")
        .env_remove("KANTUP_RUNTIME_ARGS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ctr"), "{stderr}");
    assert!(stderr.contains("import"), "{stderr}");
    assert!(
        stderr.contains("nobody-listens.sock"),
        "ctr's own message: {stderr}"
    );
}
