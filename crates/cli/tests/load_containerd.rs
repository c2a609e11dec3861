//! `kantup load --runtime containerd` against a real containerd daemon started by the test
//! (its own root, state and socket in a temp dir; CRI plugin off; killed on drop), driven
//! through the real `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A private containerd; dropped = killed.
struct Containerd {
    child: Child,
    temp: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Self {
        let binary = kantup_test_support::require_tool("containerd");
        kantup_test_support::require_tool("ctr");
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        let state = temp.path().join("state");
        let config = temp.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {root:?}\nstate = {state:?}\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = {sock:?}\n",
                root = root.display().to_string(),
                state = state.display().to_string(),
                sock = temp.path().join("c.sock").display().to_string(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(temp.path().join("containerd.log")).unwrap();
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let daemon = Containerd { child, temp };
        // Up to ~20 s for the socket to answer.
        for _ in 0..200 {
            if daemon.sock().exists() && daemon.ctr(&["version"]).status.success() {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(daemon.temp.path().join("containerd.log")).unwrap();
        panic!("containerd did not come up; its log:\n{log}");
    }

    fn sock(&self) -> PathBuf {
        self.temp.path().join("c.sock")
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.sock())
            .args(args)
            .output()
            .unwrap()
    }

    /// Image names in `namespace`, sorted.
    fn images(&self, namespace: &str) -> Vec<String> {
        let output = self.ctr(&["-n", namespace, "images", "ls", "-q"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    fn kantup_load(&self, input: &Path, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kantup"))
            .arg("load")
            .arg(input)
            .args(["--runtime", "containerd"])
            .arg(format!("--runtime-arg=--address={}", self.sock().display()))
            .args(extra)
            .env_remove("KANTUP_RUNTIME_ARGS")
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bundle() -> PathBuf {
    kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar")
}

const BUSYBOX: &str = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
const TINY: &str = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";

#[test]
fn imports_a_bundle_into_k8s_io_and_retags() {
    let daemon = Containerd::start();
    let output = daemon.kantup_load(&bundle(), &["--retag", "reg.local:5000/kant", "-o", "json"]);
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
    let again = daemon.kantup_load(&bundle(), &["--retag", "reg.local:5000/kant"]);
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
    let output = daemon.kantup_load(&bundle(), &["--namespace", "kantup-test"]);
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
