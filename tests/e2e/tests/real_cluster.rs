//! The whole cluster path against a real Kubernetes cluster: `kantup crds apply` (server-side
//! apply + wait for Established), `kantup values backup` compared with `helm get values`, and
//! `kantup preflight`, on a release installed by the real helm 3 binary.
//!
//! Runs against the test binary's real API server (`tests/support/src/kube_cluster.rs`), or
//! the cluster `KANTUP_TEST_KUBECONFIG` names (its user needs to create namespaces and CRDs);
//! with neither it is recorded as skipped. Everything it creates (a unique namespace, the
//! release, a uniquely named CRD) is deleted at the end, also on failure, without waiting:
//! a server without controllers never finishes deleting a namespace.
//!
//! The kantup binary: `$KANTUP_BIN`, else the one `cargo test --workspace` built beside this
//! test, else it is built into `<target>/e2e-real-cluster`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::kube::Api;
use kantup_k8s_apply::kube::api::DeleteParams;
use serde_json::Value;

fn kantup_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("KANTUP_BIN") {
        return PathBuf::from(bin);
    }
    // <target>/<profile>/deps/real_cluster-<hash>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let sibling = profile_dir.join("kantup");
    if sibling.is_file() {
        return sibling;
    }
    let target = profile_dir.parent().unwrap().join("e2e-real-cluster");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "kantup", "--bin", "kantup"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(kantup_test_support::workspace_root())
        .status()
        .expect("run cargo build -p kantup");
    assert!(status.success(), "cargo build -p kantup failed");
    target.join("debug/kantup")
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("spawn");
    eprintln!(
        "$ {:?}\n{}{}",
        command,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(output.status.success(), "{command:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Deletes what the test created, whatever happened.
struct Cleanup {
    kubeconfig: PathBuf,
    namespace: String,
    release: String,
    crd: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run(Command::new(kantup_test_support::helm3())
            .args([
                "uninstall",
                &self.release,
                "-n",
                &self.namespace,
                "--kubeconfig",
            ])
            .arg(&self.kubeconfig));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let access = ClusterAccess {
                kubeconfig: Some(self.kubeconfig.clone()),
                context: None,
            };
            let Ok(client) = access.client().await else {
                eprintln!(
                    "cleanup: no client; delete namespace {} and CRD {} by hand",
                    self.namespace, self.crd
                );
                return;
            };
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            if let Err(e) = crds.delete(&self.crd, &DeleteParams::default()).await {
                eprintln!("cleanup: delete CRD {}: {e}", self.crd);
            }
            let namespaces: Api<Namespace> = Api::all(client);
            if let Err(e) = namespaces
                .delete(&self.namespace, &DeleteParams::default())
                .await
            {
                eprintln!("cleanup: delete namespace {}: {e}", self.namespace);
            }
        });
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn crds_apply_values_backup_and_preflight_against_a_real_cluster() {
    let Some(cluster) = kantup_test_support::kube_cluster::cluster_or_skip(
        "crds_apply_values_backup_and_preflight_against_a_real_cluster",
    ) else {
        return;
    };
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let helm = kantup_test_support::helm3();
    let kantup = kantup_binary();
    let unique = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 100_000_000
    );
    let namespace = format!("kantup-e2e-{unique}");
    let release = "kantup-e2e".to_string();
    let plural = format!("probes{unique}");
    let crd_name = format!("{plural}.e2e.kantup.dev");
    let _cleanup = Cleanup {
        kubeconfig: kubeconfig.clone(),
        namespace: namespace.clone(),
        release: release.clone(),
        crd: crd_name.clone(),
    };

    // A tiny chart and, apart from it, the CRD kantup applies.
    let work = tempfile::tempdir().unwrap();
    let chart = work.path().join("chart");
    write(
        &chart.join("Chart.yaml"),
        "apiVersion: v2\nname: kantup-e2e\nversion: 0.1.0\n",
    );
    write(
        &chart.join("values.yaml"),
        "greeting: hello\nnested:\n  a: 1\nimage:\n  repository: docker.io/library/busybox\n  tag: \"1.36\"\n",
    );
    write(
        &chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
    );
    let crds = work.path().join("crds");
    write(
        &crds.join("probe.yaml"),
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {crd_name}\nspec:\n  group: e2e.kantup.dev\n  scope: Namespaced\n  names:\n    kind: Probe{unique}\n    plural: {plural}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec:\n              type: object\n              properties:\n                target:\n                  type: string\n"
        ),
    );

    ok(Command::new(&helm)
        .args(["install", &release])
        .arg(&chart)
        .args([
            "-n",
            &namespace,
            "--create-namespace",
            "--set",
            "greeting=world",
        ])
        .args(["--set", "nested.b=2", "--kubeconfig"])
        .arg(&kubeconfig));

    // CRD apply: new, then established (kantup waits), then the plan says unchanged.
    let kc = kubeconfig.to_str().unwrap();
    let applied: Value = serde_json::from_str(&ok(Command::new(&kantup)
        .args(["crds", "apply"])
        .arg(&crds)
        .args(["--timeout", "120s", "--kubeconfig", kc, "-o", "json"])))
    .unwrap();
    assert_eq!(applied[0]["name"], crd_name.as_str());
    assert_eq!(applied[0]["action"], "new");
    let plan: Value = serde_json::from_str(&ok(Command::new(&kantup)
        .args(["crds", "apply"])
        .arg(&crds)
        .args(["--plan", "--kubeconfig", kc, "-o", "json"])))
    .unwrap();
    assert_eq!(plan[0]["action"], "unchanged", "{plan:#}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let established = runtime.block_on(async {
        let client = ClusterAccess {
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
        }
        .client()
        .await
        .unwrap();
        let crd = Api::<CustomResourceDefinition>::all(client)
            .get(&crd_name)
            .await
            .unwrap();
        crd.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    });
    assert!(established, "{crd_name} is not Established");

    // values backup == helm get values (file, byte for byte), and --all == helm get values --all.
    let backup = work.path().join("bak.yaml");
    ok(Command::new(&kantup)
        .args(["values", "backup", "-r", &release, "-n", &namespace, "-f"])
        .arg(&backup)
        .args(["--kubeconfig", kc]));
    let helm_values = ok(Command::new(&helm).args([
        "get",
        "values",
        &release,
        "-n",
        &namespace,
        "-o",
        "yaml",
        "--kubeconfig",
        kc,
    ]));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), helm_values);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let ours: Value = serde_json::from_str(&ok(Command::new(&kantup)
        .args([
            "values", "backup", "-r", &release, "-n", &namespace, "--all", "-o", "json",
        ])
        .args(["--kubeconfig", kc])))
    .unwrap();
    let helms: Value = serde_json::from_str(&ok(Command::new(&helm)
        .args([
            "get", "values", &release, "-n", &namespace, "--all", "-o", "json",
        ])
        .args(["--kubeconfig", kc])))
    .unwrap();
    assert_eq!(ours["values"], helms);

    // preflight: an upgrade passes, a downgrade fails.
    let report: Value = serde_json::from_str(&ok(Command::new(&kantup)
        .args([
            "preflight",
            "-r",
            &release,
            "-n",
            &namespace,
            "--chart-version",
            "0.2.0",
        ])
        .args(["--kubeconfig", kc, "-o", "json"])))
    .unwrap();
    assert_eq!(report["revision"], 1);
    assert_eq!(report["status"], "deployed");
    assert_eq!(report["deployed_chart_version"], "0.1.0");
    let downgrade = run(Command::new(&kantup)
        .args([
            "preflight",
            "-r",
            &release,
            "-n",
            &namespace,
            "--chart-version",
            "0.0.1",
        ])
        .args(["--kubeconfig", kc]));
    assert_eq!(downgrade.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&downgrade.stdout)
            .contains("0.0.1 is lower than the deployed 0.1.0")
    );
}
