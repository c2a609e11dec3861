//! Credentials stay with their host and out of every output:
//! - a registry that redirects blob downloads to another host (as registries backed by object
//!   storage do) gets the credentials; the other host gets no `Authorization` header;
//! - passwords and tokens appear in no line of stdout or stderr (`-vvv` trace logging
//!   included) nor in `-o json`, on success and on failure, for `sync` and `repo`.
//!
//! The registry is the real docker-registry (htpasswd basic auth, or bearer tokens from the
//! test token issuer). docker-registry's own `redirect` storage middleware works only with cloud
//! storage drivers, which cannot run here, so the redirect comes from the real nginx in front of
//! it, answering blob GETs with a 307 to another host name and port that serves the blob files
//! (see `registry_server::nginx::Nginx::redirecting_front`).

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::registry_server::nginx::Nginx;
use kantup_test_support::registry_server::tls::TestCa;
use kantup_test_support::{helm3, workspace_root};

fn kantup(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kantup"));
    command
        .args(args)
        .env_remove("TARGET_CONTAINERS_AUTH_USERNAME")
        .env_remove("TARGET_CONTAINERS_AUTH_PASSWORD")
        .env_remove("TARGET_REPO_AUTH_USERNAME")
        .env_remove("TARGET_REPO_AUTH_PASSWORD")
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("KANTUP_REPO_PASSWORD")
        .env_remove("RUST_LOG")
        .env("DOCKER_CONFIG", "/nonexistent-kantup-docker-config");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run kantup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn helm(home: &Path, args: &[&str]) {
    let out = Command::new(helm3())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_REGISTRY_CONFIG", home.join("registry.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "helm {args:?}: {}", text(&out.stderr));
}

/// `helm create web` packaged as 1.0.0 and pushed by helm into `registry` (plain HTTP, basic
/// auth) as `charts/web:1.0.0`; returns the archive.
fn helm_push_web(temp: &Path, registry: &RegistryServer, user: &str, password: &str) -> Vec<u8> {
    let home = temp.join("helm-home");
    let chart = temp.join("web");
    helm(&home, &["create", path(&chart)]);
    helm(
        &home,
        &[
            "package",
            path(&chart),
            "--version",
            "1.0.0",
            "-d",
            path(temp),
        ],
    );
    let tgz = temp.join("web-1.0.0.tgz");
    helm(
        &home,
        &[
            "push",
            path(&tgz),
            &format!("oci://{}/charts", registry.host()),
            "--plain-http",
            "--username",
            user,
            "--password",
            password,
        ],
    );
    std::fs::read(tgz).unwrap()
}

#[test]
fn blob_redirected_to_another_host_gets_no_authorization() {
    let registry = RegistryServer::start_basic("puller", "redirect-secret-pw");
    let temp = tempfile::tempdir().unwrap();
    let archive = helm_push_web(temp.path(), &registry, "puller", "redirect-secret-pw");
    let ca = TestCa::create(&temp.path().join("ca"), "kantup test front CA");
    let front = Nginx::redirecting_front(&registry.host(), &registry.storage(), &ca);
    let url = format!("oci://{}/charts/web", front.host(0));
    let dest = temp.path().join("out");

    let pulled = kantup(
        &[
            "repo",
            "pull",
            &url,
            "web",
            "--version",
            "1.0.0",
            "--ca-file",
            path(ca.cert_path()),
            "-d",
            path(&dest),
            "-o",
            "json",
        ],
        &[
            ("KANTUP_REPO_USERNAME", "puller"),
            ("KANTUP_REPO_PASSWORD", "redirect-secret-pw"),
        ],
    );
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert_eq!(std::fs::read(dest.join("web-1.0.0.tgz")).unwrap(), archive);

    // The front saw the credentials on the blob requests it redirected ...
    let front_log = front.log_lines("front");
    let redirected: Vec<&String> = front_log
        .iter()
        .filter(|line| line.contains("/blobs/sha256:") && line.contains("status=307"))
        .collect();
    assert_eq!(
        redirected.len(),
        2,
        "config and chart layer: {front_log:#?}"
    );
    assert!(
        redirected
            .iter()
            .all(|line| line.contains("authorization=yes")),
        "{front_log:#?}"
    );
    // ... and the other host served both blobs without ever getting them.
    let storage_log = front.log_lines("storage");
    assert_eq!(storage_log.len(), 2, "{storage_log:#?}");
    assert!(
        storage_log
            .iter()
            .all(|line| line.contains("status=200 authorization=no")),
        "{storage_log:#?}"
    );
}

/// Every secret form of `user:password` that could leak: the password, its basic-auth
/// encoding, and any bearer token (JWTs start with `eyJ`, the encoding of `{"`).
fn assert_no_secret(what: &str, output: &Output, user: &str, password: &str) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        for (n, line) in text(bytes).lines().enumerate() {
            for secret in [password, basic.as_str(), "eyJ", "Bearer "] {
                assert!(
                    !line.contains(secret),
                    "{what}: {stream} line {} shows a secret ({secret:?}): {line}",
                    n + 1
                );
            }
        }
    }
}

/// One kantup run to search: what it is, its arguments, its environment, whether it succeeds.
type Run<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, bool);

#[test]
fn passwords_and_tokens_appear_in_no_output() {
    const USER: &str = "robot";
    const PASSWORD: &str = "token-secret-pw-7c1";
    let registry = RegistryServer::start_token(USER, PASSWORD);
    let host = registry.host();
    let temp = tempfile::tempdir().unwrap();
    let bundle = temp.path().join("kant.bundle.tar");
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
    )
    .unwrap();
    let config = temp.path().join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: oci://{host}/charts\n",
            bundle.display()
        ),
    )
    .unwrap();
    let sync_env = [
        ("TARGET_CONTAINERS_AUTH_USERNAME", USER),
        ("TARGET_CONTAINERS_AUTH_PASSWORD", PASSWORD),
    ];
    let config = path(&config);

    let runs: Vec<Run> = vec![
        (
            "sync -vvv",
            vec!["sync", "--config", config, "-vvv"],
            sync_env.to_vec(),
            true,
        ),
        (
            "sync -o json -vvv",
            vec!["sync", "--config", config, "-o", "json", "-vvv"],
            sync_env.to_vec(),
            true,
        ),
        (
            "sync --dry-run -vvv",
            vec!["sync", "--config", config, "--dry-run", "-vvv"],
            sync_env.to_vec(),
            true,
        ),
        (
            "sync with a wrong password -vvv",
            vec!["sync", "--config", config, "-vvv"],
            vec![
                ("TARGET_CONTAINERS_AUTH_USERNAME", USER),
                ("TARGET_CONTAINERS_AUTH_PASSWORD", "wrong-token-secret-pw"),
            ],
            false,
        ),
    ];
    let oci = format!("oci://{host}/charts/testchart");
    let dest = temp.path().join("pulled");
    let repo_env = vec![
        ("KANTUP_REPO_USERNAME", USER),
        ("KANTUP_REPO_PASSWORD", PASSWORD),
    ];
    let repo_runs: Vec<Run> = vec![
        (
            "repo versions -o json -vvv",
            vec!["repo", "versions", &oci, "-o", "json", "-vvv"],
            repo_env.clone(),
            true,
        ),
        (
            "repo pull -vvv",
            vec!["repo", "pull", &oci, "testchart", "-d", path(&dest), "-vvv"],
            repo_env.clone(),
            true,
        ),
        (
            "repo pull --password flag -o json -vvv",
            vec![
                "repo",
                "pull",
                &oci,
                "testchart",
                "--username",
                USER,
                "--password",
                PASSWORD,
                "-d",
                path(&dest),
                "-o",
                "json",
                "-vvv",
            ],
            Vec::new(),
            true,
        ),
        (
            "repo versions with a wrong password -vvv",
            vec![
                "repo",
                "versions",
                &oci,
                "--username",
                USER,
                "--password",
                "wrong-token-secret-pw",
                "-vvv",
            ],
            Vec::new(),
            false,
        ),
    ];
    let mut issued_before = registry.token_issuer().unwrap().tokens_issued();
    for (what, args, env, succeeds) in runs.into_iter().chain(repo_runs) {
        let output = kantup(&args, &env);
        assert_eq!(
            output.status.success(),
            succeeds,
            "{what}: {}",
            text(&output.stderr)
        );
        assert_no_secret(what, &output, USER, PASSWORD);
        assert_no_secret(what, &output, USER, "wrong-token-secret-pw");
        if succeeds {
            // Tokens were really in play (the check above had something to miss).
            let issued = registry.token_issuer().unwrap().tokens_issued();
            assert!(issued > issued_before, "{what}: no token was issued");
            issued_before = issued;
            assert!(
                !text(&output.stderr).trim().is_empty(),
                "{what}: -vvv logged nothing to search"
            );
        }
    }
    assert!(dest.join("testchart-0.1.0.tgz").is_file());
}
