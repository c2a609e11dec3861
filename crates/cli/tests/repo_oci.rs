//! `kantup repo versions oci://...` against the real distribution registry, with charts pushed
//! by the real `helm push`.

use std::path::Path;
use std::process::{Command, Output};

use kantup_test_support::registry_server::RegistryServer;

fn helm(home: &Path, args: &[&str]) {
    let output = Command::new(kantup_test_support::helm3())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_REGISTRY_CONFIG", home.join("registry.json"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("KANTUP_REPO_PASSWORD")
        // No ambient docker credentials.
        .env("DOCKER_CONFIG", "/nonexistent-kantup-test")
        .output()
        .unwrap()
}

fn versions(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row["name"], "web");
            row["version"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn lists_versions_of_an_oci_chart_pushed_by_helm() {
    let registry = RegistryServer::start();
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let chart = temp.path().join("web");
    let packages = temp.path().join("packages");
    helm(&home, &["create", chart.to_str().unwrap()]);
    // `+build` becomes `_build` in the OCI tag; kantup must turn it back.
    for version in ["0.1.0", "0.10.0", "0.2.0+build.7", "1.0.0-rc.1"] {
        helm(
            &home,
            &[
                "package",
                chart.to_str().unwrap(),
                "--version",
                version,
                "-d",
                packages.to_str().unwrap(),
            ],
        );
        helm(
            &home,
            &[
                "push",
                packages
                    .join(format!("web-{version}.tgz"))
                    .to_str()
                    .unwrap(),
                &format!("oci://{}/charts", registry.host()),
                "--plain-http",
            ],
        );
    }
    let url = format!("oci://{}/charts/web", registry.host());

    let stable = kantup(&["repo", "versions", &url, "--plain-http", "-o", "json"]);
    assert_eq!(versions(&stable), ["0.10.0", "0.2.0+build.7", "0.1.0"]);

    let devel = kantup(&[
        "repo",
        "versions",
        &url,
        "--plain-http",
        "--devel",
        "-o",
        "json",
    ]);
    assert_eq!(
        versions(&devel),
        ["1.0.0-rc.1", "0.10.0", "0.2.0+build.7", "0.1.0"]
    );

    let latest = kantup(&[
        "repo",
        "versions",
        &url,
        "--plain-http",
        "--latest",
        "-o",
        "json",
    ]);
    assert_eq!(versions(&latest), ["0.10.0"]);
    // App version and description come from the chart's config blob, as helm pushed it.
    let rows: serde_json::Value = serde_json::from_slice(&latest.stdout).unwrap();
    assert_eq!(rows[0]["app_version"], "1.16.0", "helm create's appVersion");
    assert_eq!(rows[0]["description"], "A Helm chart for Kubernetes");

    // A chart that was never pushed: nothing found, exit code 4, naming the repository.
    let missing = kantup(&[
        "repo",
        "versions",
        &format!("oci://{}/charts/nope", registry.host()),
        "--plain-http",
    ]);
    assert_eq!(missing.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("charts/nope"), "{stderr}");
}
