//! `kantup load --runtime podman` against the real podman, with an isolated store (vfs driver,
//! root and runroot in a temp dir) so the machine's images are never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Store {
    _temp: tempfile::TempDir,
    args: Vec<String>,
}

impl Store {
    fn new() -> Self {
        kantup_test_support::require_tool("podman");
        let temp = tempfile::tempdir().unwrap();
        let args = vec![
            format!("--root={}", temp.path().join("root").display()),
            format!("--runroot={}", temp.path().join("run").display()),
            "--storage-driver=vfs".to_owned(),
        ];
        Self { _temp: temp, args }
    }

    /// Every name podman's store holds.
    fn names(&self) -> Vec<String> {
        let output = Command::new("podman")
            .args(&self.args)
            .args(["images", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let images: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut names: Vec<String> = images
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|image| image["Names"].as_array().cloned().unwrap_or_default())
            .map(|name| name.as_str().unwrap().to_owned())
            .collect();
        // podman lists an image once per name it has; each name once is enough here.
        names.sort();
        names.dedup();
        names
    }

    fn kantup(&self, input: &Path, extra: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kantup"));
        command
            .arg("load")
            .arg(input)
            .args(["--runtime", "podman"])
            .args(extra)
            .env_remove("KANTUP_RUNTIME_ARGS");
        for arg in &self.args {
            command.arg(format!("--runtime-arg={arg}"));
        }
        command.output().unwrap()
    }
}

fn bundle() -> PathBuf {
    kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar")
}

const BUSYBOX: &str = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
const TINY: &str = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";

#[test]
fn loads_a_bundle_and_retags_for_the_target_registry() {
    let store = Store::new();
    let output = store.kantup(
        &bundle(),
        &["--retag", "reg.local:5000/kant/apps", "-o", "json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["runtime"], "podman");
    let pairs: Vec<(String, String)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["source"].as_str().unwrap().to_owned(),
                i["retagged"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (
                BUSYBOX.to_owned(),
                "reg.local:5000/kant/apps/busybox:1.33.1".to_owned()
            ),
            (
                TINY.to_owned(),
                "reg.local:5000/kant/apps/tiny:tiniest".to_owned()
            ),
        ]
    );
    assert_eq!(
        store.names(),
        [
            BUSYBOX,
            TINY,
            "reg.local:5000/kant/apps/busybox:1.33.1",
            "reg.local:5000/kant/apps/tiny:tiniest",
        ]
    );
}

#[test]
fn loads_a_plain_image_archive_from_the_environment_args() {
    let store = Store::new();
    let temp = tempfile::tempdir().unwrap();
    // The bundle's images.tar, on its own: a docker-archive as go-containerregistry writes it.
    let status = Command::new("tar")
        .arg("-xf")
        .arg(bundle())
        .arg("-C")
        .arg(temp.path())
        .arg("images.tar")
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(temp.path().join("images.tar"))
        .args(["--runtime", "podman", "--retag", "reg.local"])
        .env("KANTUP_RUNTIME_ARGS", store.args.join(" "))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "loaded {BUSYBOX} -> tagged reg.local/busybox:1.33.1"
        )),
        "{text}"
    );
    let names = store.names();
    assert!(
        names.contains(&"reg.local/busybox:1.33.1".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"reg.local/tiny:tiniest".to_owned()),
        "{names:?}"
    );
}

#[test]
fn runtime_failure_names_the_command_and_its_stderr() {
    let mut store = Store::new();
    // The last --storage-driver wins in podman.
    store
        .args
        .push("--storage-driver=no-such-driver".to_owned());
    let output = store.kantup(&bundle(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("podman"), "{stderr}");
    assert!(stderr.contains("load"), "{stderr}");
    assert!(
        stderr.contains("no-such-driver"),
        "podman's own message: {stderr}"
    );
}

#[test]
fn bad_input_is_refused_before_the_runtime_runs() {
    let store = Store::new();
    let temp = tempfile::tempdir().unwrap();
    let junk = temp.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let output = store.kantup(&junk, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk.tar"), "{stderr}");
    assert!(store.names().is_empty());

    let bad_retag = store.kantup(&bundle(), &["--retag", "https://reg.local/x"]);
    assert_eq!(bad_retag.status.code(), Some(2));
    assert!(store.names().is_empty());
}

#[test]
fn loads_a_compressed_bundle() {
    kantup_test_support::require_tool("zstd");
    let store = Store::new();
    let temp = tempfile::tempdir().unwrap();
    let compressed = temp.path().join("testchart.bundle.tar.zst");
    let status = Command::new("zstd")
        .args(["-q", "-o"])
        .arg(&compressed)
        .arg(bundle())
        .status()
        .unwrap();
    assert!(status.success());
    let output = store.kantup(&compressed, &["--retag", "reg.local/kant", "-q"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names = store.names();
    assert!(
        names.contains(&"reg.local/kant/busybox:1.33.1".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&TINY.to_owned()), "{names:?}");
}

#[test]
fn loads_a_dt_wrap_and_retags() {
    let store = Store::new();
    let temp = tempfile::tempdir().unwrap();
    let spec = kantup_test_support::image_gen::GenSpec {
        images: 2,
        base_layer_size: 4096,
        own_layer_size: 1024,
        ..Default::default()
    };
    let wrap =
        kantup_test_support::dt_wrap::dt_wrap(temp.path(), &spec, "webapp", "1.2.3").unwrap();
    let output = store.kantup(
        &wrap.path,
        &["--retag", "reg.local:5000/kant", "-o", "json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut want: Vec<String> = Vec::new();
    for image in &wrap.images {
        want.push(image.reference.clone());
        let last = image.repository.rsplit('/').next().unwrap();
        want.push(format!("reg.local:5000/kant/{last}:{}", image.tag));
    }
    want.sort();
    assert_eq!(store.names(), want);
}

#[test]
fn a_multi_platform_wrap_is_refused_before_the_runtime_runs() {
    let store = Store::new();
    let temp = tempfile::tempdir().unwrap();
    let (wrap, _) = kantup_test_support::dt_wrap::dt_wrap_two_platforms(temp.path()).unwrap();
    let output = store.kantup(&wrap, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("upstream.example/team/multi:1.0.0 is wrapped for several platforms"),
        "{stderr}"
    );
    assert!(store.names().is_empty(), "nothing was loaded");
}
