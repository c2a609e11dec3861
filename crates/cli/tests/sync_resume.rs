//! `kantup sync` under an interrupted or dead network, against a real docker-registry behind
//! the fault proxy (which counts the body bytes that reach the registry):
//! - killed with SIGKILL in the middle of a 500 MiB blob, the next run continues the upload
//!   where the registry stands (its saved session), sends less than 60% of the blob again,
//!   does not send finished blobs again, and every digest is the bundle's;
//! - a registry that goes down and stays down: exit code 1 after bounded retries, the output
//!   names what is in the registry and what is not, and never says "all skipped".

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kantup_bundle::archive::Compression;
use kantup_bundle::create::{CreateOptions, create};
use kantup_test_support::fault_proxy::{FaultConfig, FaultProxy};
use kantup_test_support::image_gen::{GenImage, GenSpec, generate_bundle_inputs};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{require_tool, skopeo};
use serde_json::Value;

use common::{kantup_isolated as kantup, kantup_isolated_command as kantup_command};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory holding one generated bundle (`images` images sharing `base_layer_size`-byte
/// base layers); the generated inputs are removed once the bundle is written.
fn bundle(root: &Path, spec: GenSpec) -> (PathBuf, Vec<GenImage>) {
    let dir = root.join("bundles");
    std::fs::create_dir_all(&dir).unwrap();
    let gen_dir = root.join("gen");
    let inputs = generate_bundle_inputs(&gen_dir, &spec).unwrap();
    create(
        &CreateOptions {
            chart: inputs.chart_dir,
            hints: inputs.hints,
            images: Some(inputs.layout),
            output: dir.join("genchart_0.1.0.bundle.tar"),
            compression: Compression::None,
            base: None,
        },
        &mut |_| {},
    )
    .expect("create bundle");
    std::fs::remove_dir_all(&gen_dir).unwrap();
    (dir, inputs.images)
}

/// A load-image.yaml pushing images to `registry` and the chart to a local directory.
fn config(root: &Path, bundles: &Path, registry: &str) -> PathBuf {
    let path = root.join("load-image.yaml");
    std::fs::write(
        &path,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {registry}\n  containerRepository: kant/apps\n  repo:\n    kind: LOCAL\n    path: {}\n",
            bundles.display(),
            root.join("charts").display()
        ),
    )
    .unwrap();
    path
}

/// skopeo reads the image straight from the registry: manifest, config and layers are the
/// bundle's, digest for digest.
fn check_image(host: &str, image: &GenImage) {
    let tail = image.repository.rsplit('/').next().unwrap();
    let target = format!("docker://{host}/kant/apps/{tail}:{}", image.tag);
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &target]);
    assert_eq!(
        kantup_bundle::Digest::of(&raw).to_string(),
        image.manifest_digest,
        "{target}"
    );
    let info: Value =
        serde_json::from_slice(&skopeo(&["inspect", "--tls-verify=false", &target])).unwrap();
    let layers: Vec<&str> = info["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let want: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(layers, want, "{target}");
}

fn saved_sessions(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn sync_killed_mid_blob_continues_from_the_registry_offset() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let (bundles, images) = bundle(
        root.path(),
        GenSpec {
            images: 1,
            base_layers: 1,
            base_layer_size: 500 << 20,
            own_layer_size: 64 * 1024,
            ..GenSpec::default()
        },
    );
    let big = images[0].layers[0].clone();
    assert!(big.size > 500 << 20);
    let cache = root.path().join("upload-sessions");

    // First run: the network hangs once 300 MiB reached the registry (the proxy holds every
    // further request body: nothing more arrives), and the process is killed with SIGKILL in
    // the middle of the blob, as a user or a CI timeout would.
    let hung = FaultProxy::start(
        &host,
        FaultConfig {
            stall_after_body_bytes: Some(300 << 20),
            ..FaultConfig::clean()
        },
    );
    let first_config = config(root.path(), &bundles, &hung.host());
    // The fault proxy speaks plain HTTP only and never answers a TLS handshake.
    let mut child = kantup_command(&[
        "sync",
        "--config",
        first_config.to_str().unwrap(),
        "--plain-http",
        "--upload-cache",
        cache.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while hung.stats().stalled.load(Ordering::Relaxed) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "kantup ended before the network hung"
        );
        assert!(Instant::now() < deadline, "the network never hung");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first_run = hung.stats().body_bytes();
    assert!(
        first_run >= 300 << 20 && first_run < big.size,
        "first run: {first_run}"
    );
    let saved = saved_sessions(&cache);
    assert_eq!(saved.len(), 1, "one half-done upload remembered: {saved:?}");
    let session = std::fs::read_to_string(&saved[0]).unwrap();
    assert!(session.contains(&big.digest), "{session}");

    // Second run: the network flows again (same registry address, so the saved session is
    // the one this registry gave).
    hung.set_stall_after(None);
    let out = kantup(&[
        "sync",
        "--config",
        first_config.to_str().unwrap(),
        "--plain-http",
        "--upload-cache",
        cache.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let second_run = hung.stats().body_bytes() - first_run;
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "blob {} bytes; first run sent {first_run}, second run {second_run} ({:.1}%); summary {summary}",
        big.size,
        second_run as f64 * 100.0 / big.size as f64
    );
    assert!(
        second_run * 10 < big.size * 6,
        "the second run sent {second_run} bytes of a {}-byte blob",
        big.size
    );
    assert_eq!(summary["blobs_resumed"], 1, "{summary:#}");
    let resumed = summary["bytes_resumed"].as_u64().unwrap();
    assert!(resumed >= 256 << 20, "{summary:#}");
    // The config and the small layer went in during the first run and are not sent again.
    assert_eq!(summary["blobs_skipped"], 2, "{summary:#}");
    assert_eq!(summary["blobs_uploaded"], 1, "{summary:#}");
    assert_eq!(
        summary["bytes_uploaded"].as_u64().unwrap() + resumed,
        big.size
    );
    assert!(
        saved_sessions(&cache).is_empty(),
        "finished uploads are forgotten"
    );
    check_image(&host, &images[0]);
}

#[test]
fn registry_that_stays_down_exits_1_naming_what_is_in_and_what_is_not() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let (bundles, images) = bundle(
        root.path(),
        GenSpec {
            images: 12,
            ..GenSpec::default()
        },
    );
    let cache = root.path().join("upload-sessions");

    // Down right after the first answer (the connection check): every image fails, and the
    // summary does not call that "all skipped".
    let down = FaultProxy::start(
        &host,
        FaultConfig {
            fail_after_requests: Some(1),
            ..FaultConfig::clean()
        },
    );
    let path = config(root.path(), &bundles, &down.host());
    let args = [
        "sync",
        "--config",
        path.to_str().unwrap(),
        "--plain-http",
        "--upload-cache",
        cache.to_str().unwrap(),
    ];
    let started = Instant::now();
    let out = kantup(&args);
    eprintln!("all down: {:?}", started.elapsed());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("all skipped"), "{stdout}");
    let failed_images = stdout
        .lines()
        .filter(|l| l.contains(" -> ") && l.contains("FAILED"))
        .count();
    assert_eq!(failed_images, 12, "{stdout}");
    assert!(stdout.contains("images 0 pushed"), "{stdout}");
    assert!(stdout.contains("12 failed"), "{stdout}");
    assert!(stdout.contains("giving up after"), "{stdout}");
    assert!(
        stderr.contains("sync failed: 12 image(s) and 1 chart(s) failed"),
        "{stderr}"
    );
    drop(down);

    // Down half-way: the images that went in are named as pushed, the others as failed (not
    // attempted once the registry stopped answering), and that is what the registry holds.
    let dies = FaultProxy::start(
        &host,
        FaultConfig {
            fail_after_requests: Some(60),
            ..FaultConfig::clean()
        },
    );
    let path = config(root.path(), &bundles, &dies.host());
    let args = [
        "sync",
        "--config",
        path.to_str().unwrap(),
        "--plain-http",
        "--upload-cache",
        cache.to_str().unwrap(),
        "-o",
        "json",
    ];
    let started = Instant::now();
    let out = kantup(&args);
    eprintln!("down half-way: {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = summary["bundles"][0]["images"].as_array().unwrap();
    assert_eq!(results.len(), 12);
    let pushed = results.iter().filter(|r| r["error"].is_null()).count();
    assert!(pushed > 0 && pushed < 12, "{summary:#}");
    assert!(
        results.iter().any(|r| r["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not attempted:") && e.contains("stopped answering"))),
        "{summary:#}"
    );
    for result in results {
        let target = result["target"].as_str().unwrap();
        let image = images
            .iter()
            .find(|i| target.contains(&format!("/{}:", i.repository.rsplit('/').next().unwrap())))
            .unwrap_or_else(|| panic!("{target} is no bundle image"));
        let direct = format!("docker://{}", target.replacen(&dies.host(), &host, 1));
        let there = Command::new(require_tool("skopeo"))
            .args(["inspect", "--tls-verify=false", "--raw", &direct])
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(there, result["error"].is_null(), "{direct}: {result}");
        if there {
            check_image(&host, image);
        }
    }
}

/// Killed while a chunk is on the wire: docker-registry keeps the part of the chunk that
/// arrived, which no longer matches the offset signed into the session URL kantup holds, and
/// refuses the session (`BLOB_UPLOAD_INVALID`). The next run sees that, starts the blob over,
/// and the result is still digest-exact with no session left behind.
#[test]
fn sync_killed_while_a_chunk_is_on_the_wire_starts_that_blob_over() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let (bundles, images) = bundle(
        root.path(),
        GenSpec {
            images: 1,
            base_layers: 1,
            base_layer_size: 200 << 20,
            own_layer_size: 64 * 1024,
            ..GenSpec::default()
        },
    );
    let big = images[0].layers[0].clone();
    let cache = root.path().join("upload-sessions");
    let proxy = FaultProxy::start(&host, FaultConfig::clean());
    let path = config(root.path(), &bundles, &proxy.host());
    let args = [
        "sync",
        "--config",
        path.to_str().unwrap(),
        "--plain-http",
        "--upload-cache",
        cache.to_str().unwrap(),
    ];
    let mut child = kantup_command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // 100 MiB in: the second 64 MiB chunk is on its way.
    let deadline = Instant::now() + Duration::from_secs(600);
    while proxy.stats().body_bytes() < 100 << 20 {
        assert!(child.try_wait().unwrap().is_none(), "kantup ended early");
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first_run = proxy.stats().body_bytes();
    assert!(first_run < big.size, "first run: {first_run}");

    let out = kantup(&[&args[..], &["-o", "json"]].concat());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let second_run = proxy.stats().body_bytes() - first_run;
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "blob {} bytes; first run sent {first_run}, second run {second_run}; summary {summary}",
        big.size
    );
    assert_eq!(summary["images_pushed"], 1, "{summary:#}");
    assert_eq!(summary["blobs_resumed"], 0, "{summary:#}");
    assert_eq!(
        summary["bytes_uploaded"].as_u64().unwrap() + summary["bytes_resumed"].as_u64().unwrap(),
        big.size,
        "{summary:#}"
    );
    assert!(saved_sessions(&cache).is_empty());
    check_image(&host, &images[0]);
}
