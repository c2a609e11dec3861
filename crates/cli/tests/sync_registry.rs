//! `kantup sync` end to end against a real docker-registry: the relok8s fixture bundle and a
//! generated 12-image bundle, read back with skopeo and helm 3/4; a second sync skips
//! everything; dry runs touch nothing; a LOCAL chart target feeds `helm template`; a flaky
//! network (fault proxy) and an interrupted sync.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_bundle::Bundle;
use kantup_bundle::archive::Compression;
use kantup_bundle::create::{CreateOptions, create};
use kantup_test_support::fault_proxy::{FaultConfig, FaultProxy};
use kantup_test_support::image_gen::{GenSpec, generate_bundle_inputs};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{helm3, helm4, skopeo, workspace_root};
use serde_json::Value;

use common::kantup_isolated as kantup;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory of bundles as they arrive: the relok8s fixture under the name the manual steps
/// use, a generated 12-image bundle under a versioned name, and a file that is no bundle.
fn bundle_dir(root: &Path, images: usize) -> PathBuf {
    let dir = root.join("bundles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        dir.join("kant.bundle.tar"),
    )
    .unwrap();
    let inputs = generate_bundle_inputs(
        &root.join("gen"),
        &GenSpec {
            images,
            ..GenSpec::default()
        },
    )
    .unwrap();
    create(
        &CreateOptions {
            chart: inputs.chart_dir,
            hints: inputs.hints,
            images: Some(inputs.layout),
            output: dir.join("genchart_0.1.0-rc.1.bundle.tar"),
            compression: Compression::None,
            base: None,
        },
        &mut |_| {},
    )
    .expect("create generated bundle");
    std::fs::write(dir.join("README.txt"), "not a bundle\n").unwrap();
    dir
}

fn write_config(root: &Path, name: &str, body: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn oci_config(root: &Path, bundles: &Path, registry: &str, chart_host: &str) -> PathBuf {
    write_config(
        root,
        "load-image.yaml",
        &format!(
            "source:\n  intermediateBundlesPath: {}\n  repo:\n    kind: LOCAL\n    path: /unused\ntarget:\n  containerRegistry: {registry}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{chart_host}/charts\n",
            bundles.display()
        ),
    )
}

/// (target name, manifest digest, config digest, layer digests) of every image in `dir`'s
/// bundles, relocated under `host/kant/apps`.
fn expected_images(dir: &Path, host: &str) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    for name in ["kant.bundle.tar", "genchart_0.1.0-rc.1.bundle.tar"] {
        let bundle = Bundle::open(dir.join(name)).unwrap();
        let archive = bundle.image_archive().unwrap().unwrap();
        for image in archive.images() {
            for r in image.references.iter().filter_map(|r| r.reference()) {
                let tail = r.repository.rsplit('/').next().unwrap();
                out.push((
                    format!("{host}/kant/apps/{tail}:{}", r.tag.clone().unwrap()),
                    image.manifest_digest.to_string(),
                    image.config.digest.to_string(),
                    image.layers.iter().map(|l| l.digest.to_string()).collect(),
                ));
            }
        }
    }
    out
}

fn sha256(data: &[u8]) -> String {
    kantup_bundle::Digest::of(data).to_string()
}

fn check_images(expected: &[(String, String, String, Vec<String>)]) {
    for (target, manifest, config, layers) in expected {
        let t = format!("docker://{target}");
        let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &t]);
        assert_eq!(&sha256(&raw), manifest, "{target}");
        let cfg = skopeo(&["inspect", "--tls-verify=false", "--config", "--raw", &t]);
        assert_eq!(&sha256(&cfg), config, "{target}");
        let info: Value =
            serde_json::from_slice(&skopeo(&["inspect", "--tls-verify=false", &t])).unwrap();
        let got: Vec<String> = info["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(&got, layers, "{target}");
    }
}

fn helm(binary: &Path, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(binary)
        .args(args)
        .current_dir(cwd)
        .env("HELM_CONFIG_HOME", cwd.join(".helm/config"))
        .env("HELM_CACHE_HOME", cwd.join(".helm/cache"))
        .env("HELM_DATA_HOME", cwd.join(".helm/data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        binary.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn sync_to_registry_and_oci_chart_repo_then_everything_skips() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let bundles = bundle_dir(root.path(), 12);
    let config = oci_config(root.path(), &bundles, &host, &host);

    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["bundles"].as_array().unwrap().len(),
        2,
        "{summary:#}"
    );
    // The registry is plain HTTP on 127.0.0.1: HTTPS was tried first, and the fallback said so.
    assert!(
        text(&out.stderr).contains("does not speak TLS; using plain HTTP"),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(summary["images_pushed"], 14, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 2, "{summary:#}");
    assert!(summary["blobs_uploaded"].as_u64().unwrap() > 0);

    let expected = expected_images(&bundles, &host);
    assert_eq!(expected.len(), 14);
    check_images(&expected);

    // Helm 3 and Helm 4 pull the charts from the OCI target, and the values point at the
    // relocated images.
    for (n, binary) in [helm3(), helm4()].iter().enumerate() {
        let work = root.path().join(format!("helm{n}"));
        std::fs::create_dir_all(&work).unwrap();
        for (chart, version) in [("testchart", "0.1.0"), ("genchart", "0.1.0")] {
            helm(
                binary,
                &[
                    "pull",
                    &format!("oci://{host}/charts/{chart}"),
                    "--version",
                    version,
                    "--plain-http",
                ],
                &work,
            );
            let tgz = work.join(format!("{chart}-{version}.tgz"));
            assert!(tgz.is_file(), "{} missing", tgz.display());
            let rendered = helm(binary, &["template", "x", tgz.to_str().unwrap()], &work);
            if chart == "genchart" {
                assert!(
                    rendered.contains(&format!("{host}/kant/apps/gen-app-07:1.0.0")),
                    "{rendered}"
                );
                assert!(!rendered.contains("example.com"), "{rendered}");
            }
        }
    }

    // Second run: nothing to upload.
    let again = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    assert!(again.status.success(), "stderr: {}", text(&again.stderr));
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["blobs_uploaded"], 0, "{summary:#}");
    assert_eq!(summary["bytes_uploaded"], 0, "{summary:#}");
    assert_eq!(summary["images_pushed"], 0, "{summary:#}");
    assert_eq!(summary["images_skipped"], 14, "{summary:#}");
    assert_eq!(summary["charts_skipped"], 2, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 0, "{summary:#}");

    let table = kantup(&["sync", "--config", config.to_str().unwrap()]);
    assert!(table.status.success());
    let stdout = text(&table.stdout);
    assert!(stdout.contains("all skipped"), "{stdout}");
    assert!(stdout.contains("(skip)"), "{stdout}");
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let bundles = bundle_dir(root.path(), 3);
    let config = oci_config(root.path(), &bundles, &host, &host);
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "/library/busybox:1.33.1 -> {host}/kant/apps/busybox:1.33.1 (push)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("-> oci://{host}/charts/testchart:0.1.0 (upload)")),
        "{stdout}"
    );
    assert_eq!(registry.stored_blob_count(), 0, "dry run stored blobs");
}

#[test]
fn local_chart_target_serves_helm_template_through_its_index() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let bundles = bundle_dir(root.path(), 2);
    let repo = root.path().join("repo");
    let config = write_config(
        root.path(),
        "local.yaml",
        &format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: LOCAL\n    path: {}\n",
            bundles.display(),
            repo.display()
        ),
    );
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let index: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo.join("index.yaml")).unwrap()).unwrap();
    for chart in ["testchart", "genchart"] {
        let url = index["entries"][chart][0]["urls"][0].as_str().unwrap();
        let tgz = repo.join(url);
        let rendered = helm(
            &helm3(),
            &["template", "x", tgz.to_str().unwrap()],
            root.path(),
        );
        if chart == "genchart" {
            assert!(
                rendered.contains(&format!("{host}/kant/apps/gen-app-01:1.0.0")),
                "{rendered}"
            );
        }
    }
}

#[test]
fn sync_through_faulty_network_keeps_digests_and_resumes() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let bundles = bundle_dir(root.path(), 12);
    let expected = expected_images(&bundles, &host);

    // An interrupted sync: the network dies after 50 requests.
    let dead = FaultProxy::start(
        &host,
        FaultConfig {
            seed: 5,
            fault_percent: 0,
            max_faults: 0,
            fail_after_requests: Some(50),
            ..FaultConfig::default()
        },
    );
    let config = oci_config(root.path(), &bundles, &dead.host(), &host);
    // The fault proxy speaks plain HTTP only and never answers a TLS handshake.
    let out = kantup(&[
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--plain-http",
        "-o",
        "json",
    ]);
    assert!(!out.status.success(), "an interrupted sync must fail");
    drop(dead);
    let stored_after_interrupt = registry.stored_blob_count();
    assert!(stored_after_interrupt > 0);

    // Resume through a flaky (but not dead) network.
    let flaky = FaultProxy::start(
        &host,
        FaultConfig {
            seed: 77,
            fault_percent: 10,
            max_faults: 20,
            fail_after_requests: None,
            ..FaultConfig::default()
        },
    );
    let config = oci_config(root.path(), &bundles, &flaky.host(), &host);
    let out = kantup(&[
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--plain-http",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let total_blobs: u64 = summary["blobs_uploaded"].as_u64().unwrap()
        + summary["blobs_mounted"].as_u64().unwrap()
        + summary["blobs_skipped"].as_u64().unwrap();
    assert!(
        summary["blobs_skipped"].as_u64().unwrap() > 0,
        "the resumed sync re-used what the interrupted one stored: {summary:#}"
    );
    assert!(total_blobs > summary["blobs_uploaded"].as_u64().unwrap());
    // Digests read straight from the registry match the bundles.
    check_images(&expected);
}

#[test]
fn nothing_to_sync_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("kant.bundle.tar"), "not a tar").unwrap();
    let config = write_config(
        root.path(),
        "c.yaml",
        &format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: 127.0.0.1:1\n",
            empty.display()
        ),
    );
    let out = kantup(&["sync", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no bundles"), "{stderr}");
    assert!(stderr.contains(empty.to_str().unwrap()), "{stderr}");
}

#[test]
fn serverless_sync_writes_an_oci_layout_and_a_local_chart_repo() {
    let root = tempfile::tempdir().unwrap();
    let bundles = bundle_dir(root.path(), 2);
    let layout = root.path().join("layout");
    let repo = root.path().join("repo");
    let config = write_config(
        root.path(),
        "serverless.yaml",
        &format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: oci-layout:{}\n  repo:\n    kind: LOCAL\n    path: {}\n",
            bundles.display(),
            layout.display(),
            repo.display()
        ),
    );
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["images_pushed"], 4, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 2, "{summary:#}");

    // Every bundle image is in the layout with its digest; skopeo reads it.
    let written = kantup_bundle::archive::ImageArchive::open(&layout).unwrap();
    let mut have: Vec<String> = written
        .images()
        .iter()
        .map(|i| i.manifest_digest.to_string())
        .collect();
    have.sort();
    have.dedup();
    let mut want: Vec<String> = expected_images(&bundles, "unused")
        .into_iter()
        .map(|(_, manifest, _, _)| manifest)
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(have, want);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let first = &index["manifests"][0];
    let name = first["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:{name}", layout.display()),
    ]);
    assert_eq!(sha256(&raw), first["digest"].as_str().unwrap());
    assert!(repo.join("index.yaml").is_file());
    assert!(repo.join("testchart-0.1.0.tgz").is_file());
}
