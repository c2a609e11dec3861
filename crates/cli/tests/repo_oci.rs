//! `kantup repo versions oci://...` and `kantup repo pull oci://...` against the real
//! distribution registry, with charts pushed by the real `helm push` and read back by the real
//! `helm pull` / `helm show chart`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_bundle::Digest;
use kantup_registry::{ClientOptions, Credentials, HttpOptions, RegistryClient};
use kantup_test_support::registry_server::RegistryServer;

fn helm(home: &Path, args: &[&str]) -> Output {
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
    output
}

fn kantup(args: &[&str]) -> Output {
    kantup_with_env(args, &[])
}

fn kantup_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kantup"));
    command
        .args(args)
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("KANTUP_REPO_PASSWORD")
        // No ambient docker credentials.
        .env("DOCKER_CONFIG", "/nonexistent-kantup-test");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// A chart made by `helm create web`, packaged and pushed by helm as each of `versions`;
/// returns the packaged archives by version.
fn push_web_chart(home: &Path, work: &Path, registry: &RegistryServer, versions: &[&str]) {
    let chart = work.join("web");
    let packages = work.join("packages");
    helm(home, &["create", chart.to_str().unwrap()]);
    for version in versions {
        helm(
            home,
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
            home,
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
}

/// The packaged archive `push_web_chart` made for `version`.
fn packaged(work: &Path, version: &str) -> PathBuf {
    work.join("packages").join(format!("web-{version}.tgz"))
}

/// Names of the entries of `dir` (hidden ones included), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(read) => read
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("{}: {error}", dir.display()),
    };
    names.sort();
    names
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a successful `kantup repo pull ... -o json` and returns its report.
fn pull_json(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["repo", "pull"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let output = kantup(&full);
    assert!(output.status.success(), "{full:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
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

#[test]
fn pulls_an_oci_chart_by_version_and_latest_as_helm_pull_does() {
    let registry = RegistryServer::start();
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    push_web_chart(
        &home,
        temp.path(),
        &registry,
        &["0.1.0", "0.10.0", "0.2.0+build.7", "1.0.0-rc.1"],
    );
    let repo = format!("oci://{}/charts", registry.host());
    let chart_url = format!("{repo}/web");

    // By version, with `+` stored as `_` in the tag; helm's URL form (chart in the URL).
    let by_version = temp.path().join("by-version");
    let report = pull_json(&[
        &chart_url,
        "web",
        "--version",
        "0.2.0+build.7",
        "--plain-http",
        "-d",
        by_version.to_str().unwrap(),
    ]);
    let pulled = by_version.join("web-0.2.0+build.7.tgz");
    assert_eq!(entries(&by_version), ["web-0.2.0+build.7.tgz"]);
    assert_eq!(report["chart"], "web");
    assert_eq!(report["version"], "0.2.0+build.7");
    assert_eq!(report["verified"], true);
    assert_eq!(
        Path::new(report["path"].as_str().unwrap()),
        pulled.as_path()
    );
    let bytes = std::fs::read(&pulled).unwrap();
    assert_eq!(
        format!("sha256:{}", report["sha256"].as_str().unwrap()),
        Digest::of(&bytes).to_string()
    );
    // helm push uploads the packaged archive unchanged: kantup gets back the same bytes.
    assert_eq!(
        bytes,
        std::fs::read(packaged(temp.path(), "0.2.0+build.7")).unwrap()
    );

    // The real helm reads the pulled archive...
    let shown = helm(&home, &["show", "chart", pulled.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("name: web"), "{shown}");
    assert!(shown.contains("version: 0.2.0+build.7"), "{shown}");
    // (helm 3.17's own `helm pull --version 0.2.0+build.7` fails after downloading: "contains
    // an underscore"; the byte comparison with `helm pull` is done on 0.10.0 below.)

    // Without --version: the newest stable version (0.10.0 sorts above 0.2.0 as semver, and
    // the 1.0.0-rc.1 pre-release is skipped); kantup's form, chart as its own argument.
    let latest = temp.path().join("latest");
    let report = pull_json(&[&repo, "web", "--plain-http", "-d", latest.to_str().unwrap()]);
    assert_eq!(report["version"], "0.10.0");
    assert_eq!(entries(&latest), ["web-0.10.0.tgz"]);
    assert_eq!(
        std::fs::read(latest.join("web-0.10.0.tgz")).unwrap(),
        std::fs::read(packaged(temp.path(), "0.10.0")).unwrap()
    );
    let by_helm_latest = temp.path().join("by-helm-latest");
    // helm pull does not create its destination.
    std::fs::create_dir_all(&by_helm_latest).unwrap();
    helm(
        &home,
        &[
            "pull",
            &chart_url,
            "--plain-http",
            "-d",
            by_helm_latest.to_str().unwrap(),
        ],
    );
    assert_eq!(entries(&by_helm_latest), ["web-0.10.0.tgz"], "helm agrees");
    // `helm pull` downloads exactly the bytes kantup wrote.
    assert_eq!(
        std::fs::read(by_helm_latest.join("web-0.10.0.tgz")).unwrap(),
        std::fs::read(latest.join("web-0.10.0.tgz")).unwrap()
    );

    // --devel lets the pre-release win.
    let devel = temp.path().join("devel");
    let report = pull_json(&[
        &repo,
        "web",
        "--devel",
        "--plain-http",
        "-d",
        devel.to_str().unwrap(),
    ]);
    assert_eq!(report["version"], "1.0.0-rc.1");
    assert_eq!(entries(&devel), ["web-1.0.0-rc.1.tgz"]);

    // The table output names the file and the check.
    let table_dir = temp.path().join("table");
    let table = kantup(&[
        "repo",
        "pull",
        &repo,
        "web",
        "--version",
        "0.1.0",
        "--plain-http",
        "-d",
        table_dir.to_str().unwrap(),
    ]);
    assert!(table.status.success(), "{}", stderr(&table));
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(stdout.contains("web-0.1.0.tgz"), "{stdout}");
    assert!(
        stdout.contains("verified against the OCI layer digest"),
        "{stdout}"
    );

    // A version that was never pushed: exit 4, naming the version, nothing written.
    let missing_dir = temp.path().join("missing");
    let missing = kantup(&[
        "repo",
        "pull",
        &repo,
        "web",
        "--version",
        "9.9.9",
        "--plain-http",
        "-d",
        missing_dir.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("9.9.9"), "{}", stderr(&missing));
    assert!(entries(&missing_dir).is_empty());

    // A --version that is not semver (a tag such as `latest`) is a usage error.
    let not_semver = kantup(&[
        "repo",
        "pull",
        &repo,
        "web",
        "--version",
        "latest",
        "--plain-http",
        "-d",
        missing_dir.to_str().unwrap(),
    ]);
    assert_eq!(not_semver.status.code(), Some(2), "{}", stderr(&not_semver));
    assert!(
        stderr(&not_semver).contains("\"latest\""),
        "{}",
        stderr(&not_semver)
    );
    assert!(entries(&missing_dir).is_empty());
}

/// Where the registry's filesystem driver keeps blob `digest`.
fn stored_blob(registry: &RegistryServer, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn refuses_a_tampered_chart_layer_and_writes_nothing() {
    let registry = RegistryServer::start();
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    push_web_chart(&home, temp.path(), &registry, &["0.1.0"]);
    let archive = std::fs::read(packaged(temp.path(), "0.1.0")).unwrap();
    let blob = stored_blob(&registry, &Digest::of(&archive));
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        archive,
        "helm stored the archive"
    );
    // Same length, one byte changed: only the digest can tell.
    let mut tampered = archive.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&blob, &tampered).unwrap();

    let dest = temp.path().join("out");
    std::fs::create_dir_all(&dest).unwrap();
    let output = kantup(&[
        "repo",
        "pull",
        &format!("oci://{}/charts/web", registry.host()),
        "web",
        "--version",
        "0.1.0",
        "--plain-http",
        "-d",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&Digest::of(&archive).to_string()),
        "{message}"
    );
    assert!(
        message.contains(&Digest::of(&tampered).to_string()),
        "{message}"
    );
    assert!(message.contains("nothing written"), "{message}");
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));

    // An older good copy in the destination is left as it was.
    std::fs::write(dest.join("web-0.1.0.tgz"), b"earlier download").unwrap();
    let again = kantup(&[
        "repo",
        "pull",
        &format!("oci://{}/charts", registry.host()),
        "web",
        "--plain-http",
        "-d",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert_eq!(entries(&dest), ["web-0.1.0.tgz"]);
    assert_eq!(
        std::fs::read(dest.join("web-0.1.0.tgz")).unwrap(),
        b"earlier download"
    );

    // A manifest (pushed with the registry client; the registry accepts it) whose layer
    // descriptor claims another size than the stored blob has is refused the same way.
    let good = packaged(temp.path(), "0.1.0");
    let good = std::fs::read(&good).unwrap();
    std::fs::write(&blob, &good).unwrap();
    let client = RegistryClient::new(
        &registry.host(),
        ClientOptions {
            http: HttpOptions::with_tls(None, false, true),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(push_chart_manifest(
            &client,
            &good,
            "0.1.1",
            "0.1.1",
            good.len() as u64 + 7,
        ))
        .expect("the registry takes a manifest with a wrong layer size");
    let lying_dir = temp.path().join("lying");
    let output = kantup(&[
        "repo",
        "pull",
        &format!("oci://{}/charts/web", registry.host()),
        "web",
        "--version",
        "0.1.1",
        "--plain-http",
        "-d",
        lying_dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("{} bytes", good.len() + 7)),
        "{}",
        stderr(&output)
    );
    assert!(entries(&lying_dir).is_empty(), "{:?}", entries(&lying_dir));

    // A tag whose chart config names another version: refused, nothing written.
    runtime
        .block_on(push_chart_manifest(
            &client,
            &good,
            "0.1.2",
            "0.1.0",
            good.len() as u64,
        ))
        .unwrap();
    let retagged_dir = temp.path().join("retagged");
    let output = kantup(&[
        "repo",
        "pull",
        &format!("oci://{}/charts/web", registry.host()),
        "web",
        "--version",
        "0.1.2",
        "--plain-http",
        "-d",
        retagged_dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("holds chart version \"0.1.0\""),
        "{}",
        stderr(&output)
    );
    assert!(entries(&retagged_dir).is_empty());
}

/// Pushes `archive` as chart `web` under tag `version` the way helm lays it out (config =
/// Chart.yaml as JSON, one chart-content layer), with `config_version` in the config and
/// `layer_size` in the layer descriptor.
async fn push_chart_manifest(
    client: &RegistryClient,
    archive: &[u8],
    version: &str,
    config_version: &str,
    layer_size: u64,
) -> kantup_registry::Result<Digest> {
    let config = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v2",
        "name": "web",
        "version": config_version,
    }))
    .unwrap();
    let (config_digest, _) = client
        .ensure_blob_bytes("charts/web", config.clone().into())
        .await
        .unwrap();
    let (layer_digest, _) = client
        .ensure_blob_bytes("charts/web", archive.to_vec().into())
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.cncf.helm.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    client
        .put_manifest(
            "charts/web",
            &version.replace('+', "_"),
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).unwrap().into(),
        )
        .await
}

#[test]
fn pulls_with_credentials_from_the_environment_or_docker_config() {
    let registry = RegistryServer::start_basic("chartuser", "s3cret-pass");
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    helm(
        &home,
        &["create", temp.path().join("web").to_str().unwrap()],
    );
    helm(
        &home,
        &[
            "package",
            temp.path().join("web").to_str().unwrap(),
            "--version",
            "1.2.3",
            "-d",
            temp.path().join("packages").to_str().unwrap(),
        ],
    );
    let archive = std::fs::read(packaged(temp.path(), "1.2.3")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = RegistryClient::new(
        &registry.host(),
        ClientOptions {
            http: HttpOptions::with_tls(None, false, true),
            credentials: Some(Credentials::new("chartuser", "s3cret-pass")),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    runtime
        .block_on(push_chart_manifest(
            &client,
            &archive,
            "1.2.3",
            "1.2.3",
            archive.len() as u64,
        ))
        .unwrap();
    let url = format!("oci://{}/charts/web", registry.host());

    // No credentials: refused by the registry, exit 1, nothing written.
    let anonymous_dir = temp.path().join("anonymous");
    let anonymous = kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "--plain-http",
        "-d",
        anonymous_dir.to_str().unwrap(),
    ]);
    assert_eq!(anonymous.status.code(), Some(1), "{}", stderr(&anonymous));
    assert!(entries(&anonymous_dir).is_empty());

    // From KANTUP_REPO_USERNAME / KANTUP_REPO_PASSWORD.
    let env_dir = temp.path().join("env");
    let output = kantup_with_env(
        &[
            "repo",
            "pull",
            &url,
            "web",
            "--plain-http",
            "-d",
            env_dir.to_str().unwrap(),
            "-v",
        ],
        &[
            ("KANTUP_REPO_USERNAME", "chartuser"),
            ("KANTUP_REPO_PASSWORD", "s3cret-pass"),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("s3cret-pass"));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("s3cret-pass"));
    assert_eq!(
        std::fs::read(env_dir.join("web-1.2.3.tgz")).unwrap(),
        archive
    );

    // From the docker config's `auths`, as the real `skopeo login` writes it.
    let docker = temp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let login = Command::new(kantup_test_support::require_tool("skopeo"))
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(docker.join("config.json"))
        .args([
            "--username",
            "chartuser",
            "--password-stdin",
            &registry.host(),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"s3cret-pass")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(login.status.success(), "skopeo login: {}", stderr(&login));
    let config_dir = temp.path().join("config");
    let output = kantup_with_env(
        &[
            "repo",
            "pull",
            &url,
            "web",
            "--version",
            "1.2.3",
            "--plain-http",
            "-d",
            config_dir.to_str().unwrap(),
        ],
        &[("DOCKER_CONFIG", docker.to_str().unwrap())],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read(config_dir.join("web-1.2.3.tgz")).unwrap(),
        archive
    );
}
