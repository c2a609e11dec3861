//! TLS as a new user meets it: a real docker-registry serving TLS on 127.0.0.1 with a
//! certificate from a private test CA (made with openssl), and the real nginx serving an HTTPS
//! chart repository. `kantup sync` and `kantup repo` with `--ca-file` work; without it the error
//! is one clear line naming the host and `--ca-file`; `--insecure-skip-tls-verify` works and
//! warns; `--plain-http` against TLS fails clearly. What kantup pushed is read back by skopeo
//! (`--cert-dir`) and helm 3.17 and 4.1 (`--ca-file`); charts helm pushed are read by kantup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_bundle::Bundle;
use kantup_test_support::registry_server::nginx::Nginx;
use kantup_test_support::registry_server::tls::TestCa;
use kantup_test_support::registry_server::{RegistryAuth, RegistryServer, TLS_TEST_NAME};
use kantup_test_support::{helm3, helm4, require_tool, workspace_root};
use serde_json::Value;

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .env_remove("TARGET_CONTAINERS_AUTH_USERNAME")
        .env_remove("TARGET_CONTAINERS_AUTH_PASSWORD")
        .env_remove("TARGET_REPO_AUTH_USERNAME")
        .env_remove("TARGET_REPO_AUTH_PASSWORD")
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("KANTUP_REPO_PASSWORD")
        .env_remove("RUST_LOG")
        .env("DOCKER_CONFIG", "/nonexistent-kantup-docker-config")
        .output()
        .expect("run kantup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a real tool; panics with its stderr unless it succeeds.
fn run(binary: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = Command::new(binary);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        binary.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn helm(binary: &Path, home: &Path, args: &[&str]) -> String {
    run(
        binary,
        args,
        &[
            ("HELM_CONFIG_HOME", &home.join("config")),
            ("HELM_CACHE_HOME", &home.join("cache")),
            ("HELM_DATA_HOME", &home.join("data")),
            ("HELM_REGISTRY_CONFIG", &home.join("registry.json")),
            ("HELM_REPOSITORY_CONFIG", &home.join("repositories.yaml")),
        ],
    )
}

/// helm talks plain HTTP to `localhost` and loopback IPs whatever its flags (containerd's
/// `MatchLocalhost` rule), so for TLS it is given [`TLS_TEST_NAME`], mapped to 127.0.0.1 in a
/// private `/etc/hosts` bind-mounted in a mount namespace of its own (the machine's file is
/// untouched). Returns its stdout.
fn helm_over_tls(binary: &Path, home: &Path, args: &[&str]) -> String {
    let hosts = home.join("hosts");
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n127.0.0.1 {TLS_TEST_NAME}\n"),
    )
    .unwrap();
    let mut full = vec![
        "--mount",
        "sh",
        "-c",
        "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
        path(&hosts),
        path(binary),
    ];
    full.extend_from_slice(args);
    run(
        &require_tool("unshare"),
        &full,
        &[
            ("HELM_CONFIG_HOME", &home.join("config")),
            ("HELM_CACHE_HOME", &home.join("cache")),
            ("HELM_DATA_HOME", &home.join("data")),
            ("HELM_REGISTRY_CONFIG", &home.join("registry.json")),
            ("HELM_REPOSITORY_CONFIG", &home.join("repositories.yaml")),
        ],
    )
}

fn sha256(data: &[u8]) -> String {
    kantup_bundle::Digest::of(data).to_string()
}

/// A load-image.yaml for the example bundle, images and chart (OCI) into `host`.
fn sync_config(root: &Path, host: &str) -> PathBuf {
    let bundle = root.join("kant.bundle.tar");
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
    )
    .unwrap();
    let config = root.join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: oci://{host}/charts\n",
            bundle.display()
        ),
    )
    .unwrap();
    config
}

/// (target reference, manifest digest) of every image of the example bundle in `host`.
fn expected_images(root: &Path, host: &str) -> Vec<(String, String)> {
    let bundle = Bundle::open(root.join("kant.bundle.tar")).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    let mut out = Vec::new();
    for image in archive.images() {
        for r in image.references.iter().filter_map(|r| r.reference()) {
            let tail = r.repository.rsplit('/').next().unwrap();
            out.push((
                format!("{host}/kant/apps/{tail}:{}", r.tag.clone().unwrap()),
                image.manifest_digest.to_string(),
            ));
        }
    }
    out
}

#[test]
fn sync_over_tls_trusts_ca_file_only_and_says_what_is_wrong() {
    let registry = RegistryServer::start_tls(RegistryAuth::None);
    let host = registry.host();
    let ca = registry.ca_file().unwrap();
    let root = tempfile::tempdir().unwrap();
    let config = sync_config(root.path(), &host);
    let config = path(&config);

    // No --ca-file: the private CA is not trusted. One error naming the host and the flag,
    // no per-image failures, no summary claiming anything was skipped.
    let untrusted = kantup(&["sync", "--config", config]);
    assert_eq!(
        untrusted.status.code(),
        Some(1),
        "{}",
        text(&untrusted.stderr)
    );
    let stderr = text(&untrusted.stderr);
    assert!(stderr.contains(&host), "{stderr}");
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");
    assert!(!stderr.contains("HTTP 400"), "{stderr}");
    assert!(!text(&untrusted.stdout).contains("all skipped"));

    // A CA file of another CA: the same clear error.
    let other = TestCa::create(&root.path().join("other-ca"), "some other CA");
    let wrong = kantup(&[
        "sync",
        "--config",
        config,
        "--ca-file",
        path(other.cert_path()),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("not trusted"),
        "{}",
        text(&wrong.stderr)
    );

    // --plain-http against a TLS-only registry: said plainly, not "HTTP 400".
    let plain = kantup(&["sync", "--config", config, "--plain-http"]);
    assert_eq!(plain.status.code(), Some(1));
    let stderr = text(&plain.stderr);
    assert!(stderr.contains("speaks only TLS"), "{stderr}");
    assert!(stderr.contains("--plain-http"), "{stderr}");

    // With the CA: everything lands, no warning.
    let ok = kantup(&[
        "sync",
        "--config",
        config,
        "--ca-file",
        path(&ca),
        "-o",
        "json",
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(!text(&ok.stderr).contains("WARN"), "{}", text(&ok.stderr));
    let summary: Value = serde_json::from_slice(&ok.stdout).unwrap();
    let expected = expected_images(root.path(), &host);
    assert_eq!(summary["images_pushed"], expected.len(), "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");

    // skopeo reads back every manifest over TLS, trusting the same CA (and nothing else).
    let cert_dir = registry.cert_dir().unwrap();
    for (target, digest) in &expected {
        let raw = Command::new(require_tool("skopeo"))
            .args(["inspect", "--raw", "--cert-dir", path(&cert_dir)])
            .arg(format!("docker://{target}"))
            .output()
            .unwrap();
        assert!(raw.status.success(), "{target}: {}", text(&raw.stderr));
        assert_eq!(&sha256(&raw.stdout), digest, "{target}");
    }

    // helm 3.17 and 4.1 pull the chart kantup pushed, over TLS with --ca-file (through a
    // name helm does not take for loopback: see `helm_over_tls`).
    let helm_host = format!("{TLS_TEST_NAME}:{}", registry.port());
    for (n, binary) in [helm3(), helm4()].iter().enumerate() {
        let work = root.path().join(format!("helm{n}"));
        std::fs::create_dir_all(&work).unwrap();
        helm_over_tls(
            binary,
            &work,
            &[
                "pull",
                &format!("oci://{helm_host}/charts/testchart"),
                "--version",
                "0.1.0",
                "--ca-file",
                path(&ca),
                "-d",
                path(&work),
            ],
        );
        assert!(work.join("testchart-0.1.0.tgz").is_file());
    }

    // --insecure-skip-tls-verify: works, and warns naming the host.
    let insecure = kantup(&["sync", "--config", config, "--insecure-skip-tls-verify"]);
    assert!(insecure.status.success(), "{}", text(&insecure.stderr));
    let stderr = text(&insecure.stderr);
    assert!(stderr.contains("verification is OFF"), "{stderr}");
    assert!(stderr.contains(&host), "{stderr}");
    assert!(text(&insecure.stdout).contains("all skipped"));

    // A failure never ends in "all skipped": one target tag now holds another image, and
    // --no-overwrite refuses to replace it.
    let (first, _) = &expected[0];
    let (second, _) = expected
        .iter()
        .find(|(_, digest)| *digest != expected[0].1)
        .expect("two different images");
    let copied = Command::new(require_tool("skopeo"))
        .args([
            "copy",
            "--src-cert-dir",
            path(&cert_dir),
            "--dest-cert-dir",
            path(&cert_dir),
        ])
        .arg(format!("docker://{second}"))
        .arg(format!("docker://{first}"))
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let refused = kantup(&[
        "sync",
        "--config",
        config,
        "--ca-file",
        path(&ca),
        "--no-overwrite",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stdout = text(&refused.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(!stdout.contains("all skipped"), "{stdout}");
}

/// `helm create web`, packaged as `version` into `work/packages`.
fn package_web(binary: &Path, home: &Path, work: &Path, version: &str) -> PathBuf {
    let chart = work.join("web");
    if !chart.is_dir() {
        helm(binary, home, &["create", path(&chart)]);
    }
    let packages = work.join("packages");
    helm(
        binary,
        home,
        &[
            "package",
            path(&chart),
            "--version",
            version,
            "-d",
            path(&packages),
        ],
    );
    packages.join(format!("web-{version}.tgz"))
}

#[test]
fn oci_charts_helm_pushed_over_tls_are_listed_and_pulled_with_ca_file() {
    let registry = RegistryServer::start_tls(RegistryAuth::None);
    let host = registry.host();
    let ca = registry.ca_file().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    // helm 3.17 pushes one version, helm 4.1 another, both over TLS with --ca-file (through a
    // name helm does not take for loopback: see `helm_over_tls`).
    let helm_host = format!("{TLS_TEST_NAME}:{}", registry.port());
    let mut archives = Vec::new();
    for (binary, version) in [(helm3(), "1.0.0"), (helm4(), "1.1.0")] {
        let tgz = package_web(&binary, &home, temp.path(), version);
        helm_over_tls(
            &binary,
            &home,
            &[
                "push",
                path(&tgz),
                &format!("oci://{helm_host}/charts"),
                "--ca-file",
                path(&ca),
            ],
        );
        archives.push((version, std::fs::read(&tgz).unwrap()));
    }
    let url = format!("oci://{host}/charts/web");

    let listed = kantup(&[
        "repo",
        "versions",
        &url,
        "--ca-file",
        path(&ca),
        "-o",
        "json",
    ]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let versions: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);

    for (version, archive) in &archives {
        let dest = temp.path().join(format!("out-{version}"));
        let pulled = kantup(&[
            "repo",
            "pull",
            &url,
            "web",
            "--version",
            version,
            "--ca-file",
            path(&ca),
            "-d",
            path(&dest),
            "-o",
            "json",
        ]);
        assert!(pulled.status.success(), "{}", text(&pulled.stderr));
        let report: Value = serde_json::from_slice(&pulled.stdout).unwrap();
        assert_eq!(report["verified"], true);
        assert_eq!(
            &std::fs::read(dest.join(format!("web-{version}.tgz"))).unwrap(),
            archive
        );
    }

    // Without the CA: exit 1, one error naming the host and --ca-file, nothing written.
    let dest = temp.path().join("untrusted");
    let untrusted = kantup(&["repo", "pull", &url, "web", "-d", path(&dest)]);
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = text(&untrusted.stderr);
    assert!(
        stderr.contains(&host) && stderr.contains("--ca-file"),
        "{stderr}"
    );
    assert!(!dest.exists());

    // --insecure-skip-tls-verify: pulls, with a warning naming the host.
    let insecure = kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "--insecure-skip-tls-verify",
        "-d",
        path(&dest),
    ]);
    assert!(insecure.status.success(), "{}", text(&insecure.stderr));
    let stderr = text(&insecure.stderr);
    assert!(
        stderr.contains("verification is OFF") && stderr.contains(&host),
        "{stderr}"
    );
    assert!(dest.join("web-1.1.0.tgz").is_file());

    // --plain-http against TLS: said plainly.
    let plain = kantup(&["repo", "versions", &url, "--plain-http"]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        text(&plain.stderr).contains("speaks only TLS"),
        "{}",
        text(&plain.stderr)
    );
}

#[test]
fn https_chart_repository_with_a_private_ca_and_basic_auth() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let www = temp.path().join("www");
    let repo_dir = www.join("chartrepo/library");
    std::fs::create_dir_all(&repo_dir).unwrap();
    for version in ["0.1.0", "0.2.0"] {
        let tgz = package_web(&helm3(), &home, temp.path(), version);
        std::fs::copy(&tgz, repo_dir.join(tgz.file_name().unwrap())).unwrap();
    }
    helm(&helm3(), &home, &["repo", "index", path(&repo_dir)]);
    let ca = TestCa::create(&temp.path().join("ca"), "kantup test chart repo CA");
    let server = Nginx::static_https(&www, &ca, Some(("admin", "chart-repo-pw")));
    let url = format!("https://{}/chartrepo/library", server.host(0));
    let ca_file = path(ca.cert_path());

    let listed = kantup(&[
        "repo",
        "versions",
        &url,
        "--username",
        "admin",
        "--password",
        "chart-repo-pw",
        "--ca-file",
        ca_file,
        "-o",
        "json",
    ]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["version"], "0.2.0", "{rows:#}");
    assert_eq!(rows[1]["version"], "0.1.0", "{rows:#}");

    let dest = temp.path().join("out");
    let pulled = kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "--username",
        "admin",
        "--password",
        "chart-repo-pw",
        "--ca-file",
        ca_file,
        "-d",
        path(&dest),
        "-o",
        "json",
    ]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let report: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(report["version"], "0.2.0");
    assert_eq!(report["verified"], true);

    // helm 3.17 and 4.1 read the same repository through the same CA and get the same bytes.
    for (n, binary) in [helm3(), helm4()].iter().enumerate() {
        let helm_home = temp.path().join(format!("helm-home-{n}"));
        let name = format!("tlsrepo{n}");
        helm(
            binary,
            &helm_home,
            &[
                "repo",
                "add",
                &name,
                &url,
                "--ca-file",
                ca_file,
                "--username",
                "admin",
                "--password",
                "chart-repo-pw",
            ],
        );
        let helm_dest = temp.path().join(format!("helm-out-{n}"));
        std::fs::create_dir_all(&helm_dest).unwrap();
        helm(
            binary,
            &helm_home,
            &[
                "pull",
                &format!("{name}/web"),
                "--version",
                "0.2.0",
                "-d",
                path(&helm_dest),
            ],
        );
        assert_eq!(
            std::fs::read(helm_dest.join("web-0.2.0.tgz")).unwrap(),
            std::fs::read(dest.join("web-0.2.0.tgz")).unwrap()
        );
    }

    // Without the CA: one clear error naming the host and --ca-file.
    let untrusted = kantup(&[
        "repo",
        "versions",
        &url,
        "--username",
        "admin",
        "--password",
        "chart-repo-pw",
    ]);
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = text(&untrusted.stderr);
    assert!(stderr.contains(&server.host(0)), "{stderr}");
    assert!(
        stderr.contains("not trusted") && stderr.contains("--ca-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("chart-repo-pw"), "{stderr}");

    // An http:// URL to the TLS port: nginx's answer is named for what it is.
    let plain_url = format!("http://{}/chartrepo/library", server.host(0));
    let plain = kantup(&["repo", "versions", &plain_url]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        text(&plain.stderr).contains("speaks only TLS"),
        "{}",
        text(&plain.stderr)
    );

    // sync's HARBOR target reads the same repository's index through --ca-file: the dry run
    // plans the upload; without the CA the chart fails with the TLS error, and the summary
    // does not claim anything was skipped.
    let root = temp.path().join("sync");
    std::fs::create_dir_all(&root).unwrap();
    let bundle = root.join("kant.bundle.tar");
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
    )
    .unwrap();
    let config = root.join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: oci-layout:layout\n  repo:\n    kind: HARBOR\n    url: {url}\n    auth:\n      username: admin\n      password: chart-repo-pw\n",
            bundle.display()
        ),
    )
    .unwrap();
    let planned = kantup(&[
        "sync",
        "--config",
        path(&config),
        "--dry-run",
        "--ca-file",
        ca_file,
        "-o",
        "json",
    ]);
    assert!(planned.status.success(), "{}", text(&planned.stderr));
    let summary: Value = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(
        summary["bundles"][0]["chart_upload"]["action"], "upload",
        "{summary:#}"
    );
    let refused = kantup(&["sync", "--config", path(&config), "--dry-run"]);
    assert_eq!(refused.status.code(), Some(1));
    let stdout = text(&refused.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("not trusted"),
        "{stdout}"
    );
    // The HARBOR index reads carried the credentials: nginx let them in.
    assert!(
        server
            .log_lines("access")
            .iter()
            .any(|line| line.contains("status=200 authorization=yes")),
        "{:?}",
        server.log_lines("access")
    );
}
