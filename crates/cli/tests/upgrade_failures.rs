//! `kantup upgrade` against a fake API server (no real cluster can run here): every failure
//! before helm runs leaves the cluster untouched and writes no backup; a helm failure keeps the
//! backup (mode 0600, previous user values) and names it; `--plan` writes nothing; a release
//! already at the same chart, values and CRDs is "nothing to do" and helm never runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use kantup_k8s_apply::release::{
    ChartMetadata, Release, ReleaseChart, ReleaseInfo, ReleaseStatus, encode_release,
};
use kantup_test_support::fake_apiserver::{FakeApiServer, helm_release_secret};
use serde_json::{Map, Value, json};

const NS: &str = "kant-system";
const RELEASE: &str = "demo";
const REGISTRY: &str = "10.16.10.111:5000";
const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
"#;

struct Fixture {
    dir: tempfile::TempDir,
    server: FakeApiServer,
}

impl Fixture {
    /// A fake cluster with namespace `NS` and the given release history.
    fn new(history: &[(u32, ReleaseStatus, &str, Value)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = FakeApiServer::start();
        server.namespace(NS);
        let items: Vec<String> = history
            .iter()
            .map(|(rev, status, version, config)| {
                release_secret(*rev, status.clone(), version, config)
            })
            .collect();
        server.secrets(NS, &items);
        server.write_kubeconfig(&dir.path().join("kubeconfig"));
        std::fs::create_dir(dir.path().join("backups")).unwrap();
        Self { dir, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A chart directory at `version`, with `crds` as its `crds/` files.
    fn chart(&self, name: &str, version: &str, crds: &[(&str, &str)]) -> PathBuf {
        let chart = self.path(name);
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            format!("apiVersion: v2\nname: demo\nversion: {version}\n"),
        )
        .unwrap();
        std::fs::write(chart.join("values.yaml"), "replicas: 1\n").unwrap();
        std::fs::write(
            chart.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata: {}\n",
        )
        .unwrap();
        if !crds.is_empty() {
            std::fs::create_dir_all(chart.join("crds")).unwrap();
            for (file, text) in crds {
                std::fs::write(chart.join("crds").join(file), text).unwrap();
            }
        }
        chart
    }

    /// A stand-in helm: answers `version` like helm 3 and fails (exit 1) on anything else,
    /// logging each call to `helm-calls.log`.
    fn failing_helm(&self) -> PathBuf {
        let script = self.path("helm");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$1\" = version ]; then echo v3.17.3+ge4da497; exit 0; fi\n\
                 echo \"$@\" >> {}\necho 'Error: UPGRADE FAILED: fake cluster refused' >&2\nexit 1\n",
                self.path("helm-calls.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn upgrade(&self, source: &Path, extra: &[&str]) -> Output {
        self.upgrade_in(NS, source, extra)
    }

    fn upgrade_in(&self, namespace: &str, source: &Path, extra: &[&str]) -> Output {
        let helm = self.failing_helm();
        std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
            .arg("upgrade")
            .arg(source)
            .args(["--release", RELEASE, "-n", namespace, "--yes"])
            .arg("--kubeconfig")
            .arg(self.path("kubeconfig"))
            .arg("--backup-dir")
            .arg(self.path("backups"))
            .args(extra)
            .env_remove("KUBECONFIG")
            .env_remove("HELM_DRIVER")
            // The stand-in helm, unless a test passes --helm (the flag wins over the env).
            .env("KANTUP_HELM", &helm)
            .output()
            .unwrap()
    }

    fn backups(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path("backups"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn helm_upgrade_calls(&self) -> usize {
        std::fs::read_to_string(self.path("helm-calls.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// No write reached the cluster, no backup was written and helm never ran.
    fn assert_untouched(&self, what: &str) {
        let writes = self.server.writes();
        assert!(
            writes.is_empty(),
            "{what}: writes reached the API server: {writes:?}"
        );
        assert!(
            self.backups().is_empty(),
            "{what}: files written: {:?}",
            self.backups()
        );
        assert_eq!(self.helm_upgrade_calls(), 0, "{what}: helm ran");
    }
}

fn release_secret(revision: u32, status: ReleaseStatus, version: &str, config: &Value) -> String {
    let release = Release {
        name: RELEASE.into(),
        namespace: NS.into(),
        version: revision,
        info: Some(ReleaseInfo {
            status: status.clone(),
            description: "Upgrade complete".into(),
            ..Default::default()
        }),
        chart: Some(ReleaseChart {
            metadata: ChartMetadata {
                name: "demo".into(),
                version: version.into(),
                api_version: "v2".into(),
                ..Default::default()
            },
            values: Some(Map::from_iter([("replicas".to_string(), json!(1))])),
        }),
        config: config.as_object().cloned(),
        manifest: "---\n# Source: demo/templates/cm.yaml\n".into(),
        ..Default::default()
    };
    let encoded = encode_release(&release).unwrap();
    helm_release_secret(NS, RELEASE, revision, status.as_str(), &encoded)
}

fn user_values() -> Value {
    json!({"replicas": 3, "global": {"imageRegistry": "old.example:5000"}})
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_failed_with(output: &Output, what: &str, needle: &str) {
    assert!(
        !output.status.success(),
        "{what}: expected failure, got {output:?}"
    );
    let err = stderr(output);
    assert!(
        err.contains(needle),
        "{what}: error should mention {needle:?}: {err}"
    );
}

#[test]
fn pending_upgrade_release_fails_preflight_and_changes_nothing() {
    let f = Fixture::new(&[
        (1, ReleaseStatus::Superseded, "1.0.0", user_values()),
        (2, ReleaseStatus::PendingUpgrade, "1.0.0", user_values()),
    ]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    assert_failed_with(&out, "pending-upgrade", "pre-flight failed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pending-upgrade"),
        "the pre-flight report names the status: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    f.assert_untouched("pending-upgrade");
    assert!(
        f.server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/secrets")
                && r.query.contains("labelSelector=owner%3Dhelm%2Cname%3Ddemo")),
        "releases are listed by helm's labels: {:?}",
        f.server.requests()
    );
}

#[test]
fn missing_namespace_fails_preflight_and_changes_nothing() {
    let f = Fixture::new(&[]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let out = f.upgrade_in("nowhere", &chart, &[]);
    assert_failed_with(&out, "missing namespace", "pre-flight failed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace nowhere does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    f.assert_untouched("missing namespace");
}

#[test]
fn bad_inputs_fail_before_anything_changes() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let bad_values = f.path("bad-values.yaml");
    std::fs::write(&bad_values, "replicas: [1, 2\nimage: {\n").unwrap();
    let not_crd = f.chart(
        "chart-not-crd",
        "1.1.0",
        &[(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        )],
    );
    let corrupt = f.path("corrupt.bundle.tar");
    let mut bytes = std::fs::read(
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar"),
    )
    .unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, bytes).unwrap();

    let bad_values_arg = bad_values.display().to_string();
    let cases: Vec<(&str, &Path, Vec<&str>, &str)> = vec![
        (
            "bad values file",
            &chart,
            vec!["-f", &bad_values_arg],
            "bad-values.yaml",
        ),
        ("bad --set", &chart, vec!["--set", "a.b[=1"], "a.b[=1"),
        ("CRD file that is not a CRD", &not_crd, vec![], "cm.yaml"),
        ("corrupt bundle", &corrupt, vec![], "corrupt.bundle.tar"),
        (
            "bad --image-registry",
            &chart,
            vec!["--image-registry", "a,b"],
            "--image-registry",
        ),
    ];
    for (what, source, extra, needle) in cases {
        let out = f.upgrade(source, &extra);
        assert_failed_with(&out, what, needle);
        f.assert_untouched(what);
    }
}

#[test]
fn helm_failure_keeps_the_backup_and_names_it() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
    let chart = f.chart("chart", "1.1.0", &[]);
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    assert_failed_with(&out, "helm failure", "UPGRADE FAILED");
    assert_eq!(f.helm_upgrade_calls(), 1);
    let backup = f
        .backups()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".backup.yaml"))
        .expect("backup file written");
    let err = stderr(&out);
    assert!(
        err.contains(&backup.display().to_string()),
        "error names {}: {err}",
        backup.display()
    );
    assert!(err.contains("helm rollback demo 1 -n kant-system"), "{err}");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup mode");
    let saved: Value = serde_yaml::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    assert_eq!(
        saved,
        user_values(),
        "the backup holds the previous user values"
    );
    assert!(
        backup
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("demo-kant-system-rev1-"),
        "{}",
        backup.display()
    );
    // No CRDs in this chart, so nothing but helm could have written.
    assert!(f.server.writes().is_empty(), "{:?}", f.server.writes());
}

#[test]
fn plan_shows_crds_values_and_helm_command_and_writes_nothing() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let out = f.upgrade(
        &chart,
        &[
            "--plan",
            "--image-registry",
            REGISTRY,
            "--set",
            "replicas=5",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("new        widgets.example.com"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("can get secrets in namespace"))
        .expect("pre-flight permission line");
    assert!(
        line.contains("kant-system  ") && line.ends_with(" allowed"),
        "pre-flight columns stay apart: {line:?}"
    );
    assert!(text.contains("changed  replicas: 3 -> 5"), "{text}");
    assert!(
        text.contains(&format!(
            "global.imageRegistry: \"old.example:5000\" -> \"{REGISTRY}\""
        )),
        "{text}"
    );
    assert!(text.contains(" upgrade demo "), "{text}");
    assert!(text.contains("--namespace kant-system --values "), "{text}");
    f.assert_untouched("--plan");

    let out = f.upgrade(
        &chart,
        &[
            "--plan",
            "-o",
            "json",
            "--image-registry",
            REGISTRY,
            "--set",
            "auth.password=hunter2",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        !all.contains("hunter2"),
        "a password reached the output: {all}"
    );
    let plan: Value = serde_json::from_slice(&out.stdout).expect("--plan -o json prints JSON");
    assert_eq!(plan["chart_version"], "1.1.0");
    assert_eq!(plan["deployed_revision"], 1);
    assert_eq!(plan["crds"][0]["name"], "widgets.example.com");
    assert_eq!(plan["up_to_date"], false);
    let changes = plan["values_changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "global.imageRegistry" && c["new"] == REGISTRY),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "auth" && c["new"]["password"] == "(redacted)"),
        "{changes:?}"
    );
    assert_eq!(plan["helm_command"][1], "upgrade");
    f.assert_untouched("--plan -o json");
}

#[test]
fn rerun_after_success_is_nothing_to_do() {
    let deployed = json!({"replicas": 3, "global": {"imageRegistry": REGISTRY}});
    let f = Fixture::new(&[(2, ReleaseStatus::Deployed, "1.1.0", deployed)]);
    let chart = f.chart("chart", "1.1.0", &[]);
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing to do"), "{text}");
    f.assert_untouched("re-run");

    // A changed value is not "nothing to do": helm runs (and fails here).
    let out = f.upgrade(
        &chart,
        &["--image-registry", REGISTRY, "--set", "replicas=4"],
    );
    assert!(!out.status.success());
    assert_eq!(f.helm_upgrade_calls(), 1);
}

#[test]
fn after_a_failed_attempt_upgrade_continues_and_rolls_back_to_the_deployed_revision() {
    let f = Fixture::new(&[
        (1, ReleaseStatus::Deployed, "1.0.0", user_values()),
        (2, ReleaseStatus::Failed, "1.1.0", user_values()),
    ]);
    let chart = f.chart("chart", "1.1.0", &[]);
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    // The failed revision only warns: helm is run again (and the stand-in fails).
    assert_failed_with(&out, "continue after failure", "UPGRADE FAILED");
    assert_eq!(
        f.helm_upgrade_calls(),
        1,
        "helm ran again after the failed revision"
    );
    let err = stderr(&out);
    assert!(
        err.contains("helm rollback demo 1 -n kant-system"),
        "rollback goes to the deployed revision 1, not the failed 2: {err}"
    );
    assert!(
        f.backups()
            .iter()
            .any(|p| p.to_string_lossy().contains("demo-kant-system-rev2-")),
        "{:?}",
        f.backups()
    );
}

#[test]
fn real_helm_failing_against_the_fake_server_keeps_the_backup() {
    for (name, helm) in [
        ("helm 3", kantup_test_support::helm3()),
        ("helm 4", kantup_test_support::helm4()),
    ] {
        let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
        let chart = f.chart("chart", "1.1.0", &[]);
        let helm_arg = helm.display().to_string();
        let out = f.upgrade(
            &chart,
            &[
                "--image-registry",
                REGISTRY,
                "--helm",
                &helm_arg,
                "--timeout",
                "20s",
            ],
        );
        assert_failed_with(&out, name, "helm upgrade failed; values backup kept at");
        let backup = f
            .backups()
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".backup.yaml"))
            .unwrap_or_else(|| panic!("{name}: backup written"));
        assert!(
            stderr(&out).contains(&backup.display().to_string()),
            "{name}: {}",
            stderr(&out)
        );
        let saved: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
        assert_eq!(saved, user_values(), "{name}");
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        // helm itself talked to the fake server (its first call is the discovery of /version,
        // which kantup never asks for) and got the API server's 404.
        assert!(
            f.server.requests().iter().any(|r| r.path == "/version"),
            "{name}: helm reached the fake API server"
        );
    }
}

/// The CRD as the API server returns it after a server-side apply of `applied` (JSON), with the
/// conditions a ready CRD has.
fn established_crd(applied: &[u8]) -> (u16, String) {
    let Ok(mut crd) = serde_json::from_slice::<Value>(applied) else {
        return (400, "{}".into());
    };
    // The API server's defaulting: conversion strategy, singular and list kind names.
    if crd["spec"].get("conversion").is_none() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
    let kind = crd["spec"]["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let names = &mut crd["spec"]["names"];
    if names.get("singular").is_none() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    crd["metadata"]["uid"] = json!("0b7c4d1e-0000-4000-8000-00000000c0de");
    crd["metadata"]["resourceVersion"] = json!("501");
    crd["metadata"]["generation"] = json!(1);
    crd["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": ["v1"]
    });
    (200, crd.to_string())
}

#[test]
fn successful_upgrade_backs_up_first_applies_crds_runs_helm_and_checks_the_revision() {
    let f = Fixture::new(&[]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let saved_values = f.path("helm-got-values.yaml");
    let helm_log = f.path("ok-helm-calls.log");
    let ok_helm = f.path("ok-helm");
    std::fs::write(
        &ok_helm,
        format!(
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo v4.1.0+g0000000; exit 0; fi\n\
             echo \"$@\" >> {log}\n\
             while [ $# -gt 0 ]; do if [ \"$1\" = --values ]; then cp \"$2\" {saved}; fi; shift; done\n\
             exit 0\n",
            log = helm_log.display(),
            saved = saved_values.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ok_helm, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Release history: revision 1 until helm ran, then revision 2 deployed with the values
    // helm was given (what helm would store).
    let (rev1, saved) = (
        release_secret(1, ReleaseStatus::Deployed, "1.0.0", &user_values()),
        saved_values.clone(),
    );
    f.server
        .route_fn("GET", &format!("/api/v1/namespaces/{NS}/secrets"), move |_, _| {
            let mut items = vec![];
            if let Ok(text) = std::fs::read_to_string(&saved) {
                let config: Value = serde_yaml::from_str(&text).unwrap();
                items.push(release_secret(1, ReleaseStatus::Superseded, "1.0.0", &user_values()));
                items.push(release_secret(2, ReleaseStatus::Deployed, "1.1.0", &config));
            } else {
                items.push(rev1.clone());
            }
            (
                200,
                format!(
                    r#"{{"kind":"SecretList","apiVersion":"v1","metadata":{{"resourceVersion":"100"}},"items":[{}]}}"#,
                    items.join(",")
                ),
            )
        });
    let crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com";
    f.server.route_fn("GET", crd_path, |request, earlier| {
        match earlier
            .iter()
            .rev()
            .find(|r| r.method == "PATCH" && r.path == request.path)
        {
            Some(applied) => established_crd(&applied.body),
            None => (
                404,
                kantup_test_support::fake_apiserver::not_found_status(&request.path),
            ),
        }
    });
    // The backup must be on disk before the first write reaches the cluster.
    let backups_dir = f.path("backups");
    let backup_before_write = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = backup_before_write.clone();
    f.server.route_fn("PATCH", crd_path, move |request, _| {
        let has_backup = std::fs::read_dir(&backups_dir).unwrap().any(|e| {
            e.unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".backup.yaml")
        });
        flag.store(has_backup, std::sync::atomic::Ordering::SeqCst);
        established_crd(&request.body)
    });

    let ok_helm_arg = ok_helm.display().to_string();
    let args = [
        "--image-registry",
        REGISTRY,
        "--helm",
        &ok_helm_arg,
        "-o",
        "json",
    ];
    let out = f.upgrade(&chart, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["previous_revision"], 1, "{summary}");
    assert_eq!(summary["revision"], 2, "{summary}");
    assert_eq!(summary["status"], "deployed", "{summary}");
    assert_eq!(summary["crds_applied"], 1, "{summary}");
    assert_eq!(
        summary["rollback_command"],
        "helm rollback demo 1 -n kant-system"
    );
    assert!(
        backup_before_write.load(std::sync::atomic::Ordering::SeqCst),
        "the values backup existed when the CRD was applied"
    );
    let writes = f.server.writes();
    assert_eq!(writes.len(), 1, "only the CRD apply: {writes:?}");
    assert_eq!(writes[0].method, "PATCH");
    assert!(
        writes[0].query.contains("fieldManager=kantup"),
        "server-side apply as kantup: {}",
        writes[0].query
    );
    // helm got one values file: the backup, then the registry on top.
    let got: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&saved_values).unwrap()).unwrap();
    // Numbers from a values file are float64 to helm either way (the helm-template equivalence
    // test in upgrade.rs proves the rendering), so the file may say 3.0.
    assert_eq!(got["global"], json!({"imageRegistry": REGISTRY}), "{got}");
    assert_eq!(got["replicas"].as_f64(), Some(3.0), "{got}");
    assert_eq!(got.as_object().unwrap().len(), 2, "{got}");
    let calls = std::fs::read_to_string(&helm_log).unwrap();
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(calls.starts_with("upgrade demo "), "{calls}");

    // Re-run on the upgraded release: nothing to do, no write, helm not run again.
    let out = f.upgrade(
        &chart,
        &["--image-registry", REGISTRY, "--helm", &ok_helm_arg],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing to do"), "{text}");
    assert_eq!(f.server.writes().len(), 1, "{:?}", f.server.writes());
    assert_eq!(
        std::fs::read_to_string(&helm_log).unwrap().lines().count(),
        1
    );
}

#[test]
fn rejected_crd_apply_keeps_the_backup_names_it_and_never_runs_helm() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    f.server.route(
        "PATCH",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        422,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: spec.versions[0].schema.openAPIV3Schema.type: Unsupported value: \"int\"","reason":"Invalid","details":{"name":"widgets.example.com","group":"apiextensions.k8s.io","kind":"CustomResourceDefinition"},"code":422}"#,
    );
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    assert_failed_with(&out, "CRD rejected", "widgets.example.com");
    assert_eq!(
        f.helm_upgrade_calls(),
        0,
        "helm must not run after a CRD failure"
    );
    let files = f.backups();
    let backup = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".backup.yaml"))
        .expect("backup written before the CRD apply");
    let err = stderr(&out);
    assert!(err.contains(&backup.display().to_string()), "{err}");
    // The computed values file may hold secrets from the release: private too.
    for file in &files {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let writes = f.server.writes();
    assert_eq!(writes.len(), 1, "only the refused apply: {writes:?}");
}

#[test]
fn without_yes_and_without_a_terminal_nothing_changes() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", user_values())]);
    let chart = f.chart("chart", "1.1.0", &[("widgets.yaml", CRD)]);
    let helm = f.failing_helm();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("upgrade")
        .arg(&chart)
        .args(["--release", RELEASE, "-n", NS, "--image-registry", REGISTRY])
        .arg("--kubeconfig")
        .arg(f.path("kubeconfig"))
        .arg("--helm")
        .arg(&helm)
        .arg("--backup-dir")
        .arg(f.path("backups"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_failed_with(&out, "no --yes", "--yes");
    f.assert_untouched("no --yes");
}

#[test]
fn a_release_without_user_values_upgrades_from_an_empty_backup() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "1.0.0", Value::Null)]);
    let chart = f.chart("chart", "1.1.0", &[]);
    let out = f.upgrade(&chart, &["--image-registry", REGISTRY]);
    assert_failed_with(&out, "empty user values", "UPGRADE FAILED");
    let files = f.backups();
    let backup = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".backup.yaml"))
        .expect("backup written");
    let saved: Option<Value> =
        serde_yaml::from_str(&std::fs::read_to_string(backup).unwrap()).unwrap();
    assert!(
        saved.is_none() || saved == Some(json!({})),
        "no user values were backed up as none: {saved:?}"
    );
    let values = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".values.yaml"))
        .expect("values file written");
    let computed: Value = serde_yaml::from_str(&std::fs::read_to_string(values).unwrap()).unwrap();
    assert_eq!(computed, json!({"global": {"imageRegistry": REGISTRY}}));
}

#[test]
fn plan_from_a_verified_bundle_writes_nothing() {
    let f = Fixture::new(&[(1, ReleaseStatus::Deployed, "0.0.9", user_values())]);
    let bundle =
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar");
    let out = f.upgrade(
        &bundle,
        &["--plan", "-o", "json", "--image-registry", REGISTRY],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["source_kind"], "bundle", "{plan}");
    assert_eq!(plan["chart"], "testchart", "{plan}");
    assert_eq!(plan["chart_version"], "0.1.0", "{plan}");
    assert_eq!(plan["deployed_chart_version"], "0.0.9", "{plan}");
    // helm is handed the bundle's chart, written out to a directory named after it.
    let chart_arg = plan["helm_command"][3].as_str().unwrap();
    assert!(chart_arg.ends_with("/testchart"), "{chart_arg}");
    f.assert_untouched("--plan from a bundle");
}
