//! The release artifact `scripts/dist.sh` writes, run where nothing else is: a root holding
//! only the binary, `/etc/hosts` and the bundle to sync (no C library, no NSS modules, no
//! `/etc/resolv.conf`, no CA store). `--version` names the commit; `sync` reaches a real
//! docker-registry by a host name only that `/etc/hosts` knows.
//!
//! The artifact is built once per test run by `scripts/test.sh` (one release build); the test
//! fails without it when `KANTUP_REQUIRE_DIST=1` (as `scripts/test.sh` sets), and records
//! itself as skipped otherwise. It needs root, for `chroot`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::image_gen::{GenSpec, generate_bundle_inputs};
use kantup_test_support::kube_cluster::record_skip;
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{require_tool, skopeo_manifest_digest, workspace_root};
use serde_json::Value;

/// The host name the chroot's `/etc/hosts` gives the registry (and nothing else knows).
const REGISTRY_NAME: &str = "kantup-registry.dist.test";

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `target/dist/kantup-<version>-linux-amd64.tar.gz`, or `None` (skipped, or a failure when
/// the run requires it).
fn artifact(test: &str) -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join(format!(
        "dist/kantup-{}-linux-amd64.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    let required = std::env::var_os("KANTUP_REQUIRE_DIST").is_some_and(|v| v == "1");
    let missing = if !path.is_file() {
        Some(format!("no {} (run scripts/dist.sh)", path.display()))
    } else if effective_uid() != 0 {
        Some("chroot needs root".to_string())
    } else {
        None
    };
    match missing {
        None => Some(path),
        Some(reason) if required => panic!("{test}: KANTUP_REQUIRE_DIST=1 and {reason}"),
        Some(reason) => {
            record_skip(test, &reason);
            None
        }
    }
}

/// The effective user id, from `id -u`.
fn effective_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Runs `/kantup ARGS` chrooted into `root`, with an empty environment but `HOME`.
fn in_root(root: &Path, args: &[&str]) -> Output {
    Command::new(require_tool("chroot"))
        .arg(root)
        .arg("/kantup")
        .args(args)
        .env_clear()
        .env("HOME", "/work")
        .env("TMPDIR", "/work")
        .output()
        .unwrap()
}

#[test]
fn the_static_binary_runs_and_syncs_in_an_empty_root() {
    let Some(tarball) = artifact("the_static_binary_runs_and_syncs_in_an_empty_root") else {
        return;
    };
    // The checksum file checks with sha256sum, as a node's operator runs it.
    let dist = tarball.parent().unwrap();
    let check = Command::new("sha256sum")
        .args([
            "-c",
            &format!("{}.sha256", tarball.file_name().unwrap().to_string_lossy()),
        ])
        .current_dir(dist)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));

    // The tarball holds one file, the executable, under 30 MiB.
    let root = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tarball).unwrap(),
    ));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
        entry.unpack_in(root.path()).unwrap();
    }
    assert_eq!(names, ["kantup"]);
    let size = std::fs::metadata(root.path().join("kantup")).unwrap().len();
    assert!(size < 30 << 20, "{size} bytes");

    // Nothing else in the root but /etc/hosts and the work directory.
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/hosts"),
        format!("127.0.0.1 localhost\n127.0.0.1 {REGISTRY_NAME}\n"),
    )
    .unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let version = in_root(root.path(), &["--version"]);
    assert!(version.status.success(), "{}", text(&version));
    let version = String::from_utf8(version.stdout).unwrap();
    let commit = version
        .trim()
        .strip_prefix(&format!("kantup {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );

    // A bundle made outside (by the test build), synced from inside by host name.
    let gen_dir = tempfile::tempdir().unwrap();
    let spec = GenSpec {
        images: 2,
        base_layer_size: 32 * 1024,
        own_layer_size: 8 * 1024,
        seed: 51,
        ..GenSpec::default()
    };
    let inputs = generate_bundle_inputs(gen_dir.path(), &spec).unwrap();
    inputs.create_bundle(
        Path::new(env!("CARGO_BIN_EXE_kantup")),
        &work.join("app.bundle.tar"),
    );
    let registry = RegistryServer::start();
    let target = format!("{REGISTRY_NAME}:{}", registry.port());
    std::fs::write(
        work.join("load-image.yaml"),
        format!(
            "source:\n  intermediateBundlesPath: /work/app.bundle.tar\ntarget:\n  containerRegistry: {target}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{target}/charts\n"
        ),
    )
    .unwrap();
    let out = in_root(
        root.path(),
        &[
            "sync",
            "--config",
            "/work/load-image.yaml",
            "--plain-http",
            "--upload-cache",
            "/work/cache",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["images_pushed"], 2, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");
    for image in &inputs.images {
        let last = image.repository.rsplit('/').next().unwrap();
        assert_eq!(
            skopeo_manifest_digest(&format!(
                "127.0.0.1:{}/kant/apps/{last}:{}",
                registry.port(),
                image.tag
            )),
            image.manifest_digest
        );
    }
    // The chart is in the registry too.
    let pulled = Command::new(require_tool("skopeo"))
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!(
                "docker://127.0.0.1:{}/charts/genchart:0.1.0",
                registry.port()
            ),
        ])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", text(&pulled));
}
