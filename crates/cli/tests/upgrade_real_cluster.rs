//! `kantup upgrade` against a real cluster, with the real helm and kubectl. Runs only when
//! `KANTUP_TEST_KUBECONFIG` names a kubeconfig (no cluster can run on the build machine); it
//! prints a line and returns otherwise.
//!
//! It lives in the cli package (not tests/e2e) so `env!("CARGO_BIN_EXE_kantup")` gives the
//! freshly built binary.
//!
//! Scenario: a unique namespace; `helm install` of chart version 1.0.0 with user values;
//! `kantup upgrade` to 1.1.0 (which adds a CRD in `crds/`) with `--image-registry`; then the new
//! revision is 2 and deployed, the user values are kept, `global.imageRegistry` is the new
//! registry, the CRD exists and is Established; a re-run is "nothing to do". Everything the
//! test created is removed on the way out, also when an assertion fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const REGISTRY: &str = "10.16.10.111:5000";

struct Cluster {
    kubeconfig: PathBuf,
    helm: PathBuf,
    kubectl: PathBuf,
    namespace: String,
    release: String,
    crd: String,
}

impl Cluster {
    fn helm(&self, args: &[&str]) -> Output {
        Command::new(&self.helm)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("run helm")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("run kubectl")
    }
}

/// Removes the release, the namespace and the CRD, whatever happened.
impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.helm(&["uninstall", &self.release, "-n", &self.namespace, "--wait"]);
        let _ = self.kubectl(&["delete", "namespace", &self.namespace, "--ignore-not-found"]);
        let _ = self.kubectl(&["delete", "crd", &self.crd, "--ignore-not-found"]);
    }
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn write_chart(dir: &Path, version: &str, crd: Option<(&str, &str)>) -> PathBuf {
    let chart = dir.join(format!("e2e-{version}"));
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: kantup-e2e\nversion: {version}\nappVersion: \"{version}\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "global:\n  imageRegistry: docker.io\nimage:\n  repository: library/busybox\n  tag: \"1.36\"\nreplicas: 1\nextra: {}\n",
    )
    .unwrap();
    // A ConfigMap only: nothing needs to pull an image in an air-gapped test cluster.
    std::fs::write(
        chart.join("templates/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n\
data:\n  image: \"{{ .Values.global.imageRegistry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n  \
replicas: {{ .Values.replicas | quote }}\n",
    )
    .unwrap();
    if let Some((group, plural)) = crd {
        std::fs::create_dir_all(chart.join("crds")).unwrap();
        std::fs::write(
            chart.join("crds/widgets.yaml"),
            format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    kind: Widget\n    \
plural: {plural}\n    singular: widget\n  versions:\n    - name: v1\n      served: true\n      \
storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          \
properties:\n            spec:\n              type: object\n              properties:\n                \
size:\n                  type: integer\n"
            ),
        )
        .unwrap();
    }
    chart
}

#[test]
fn upgrade_a_real_release_with_a_new_crd_and_registry() {
    let Some(kubeconfig) = std::env::var_os("KANTUP_TEST_KUBECONFIG") else {
        println!("skipped: set KANTUP_TEST_KUBECONFIG to a cluster's kubeconfig to run this test");
        return;
    };
    let suffix = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000
    );
    let group = format!("e2e{suffix}.kantup.dev");
    let cluster = Cluster {
        kubeconfig: PathBuf::from(kubeconfig),
        helm: kantup_test_support::helm3(),
        kubectl: kantup_test_support::kubectl(),
        namespace: format!("kantup-e2e-{suffix}"),
        release: "e2e".to_string(),
        crd: format!("widgets.{group}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let chart_a = write_chart(dir.path(), "1.0.0", None);
    let chart_b = write_chart(dir.path(), "1.1.0", Some((&group, "widgets")));
    let ns = cluster.namespace.clone();

    ok(
        cluster.kubectl(&["create", "namespace", &ns]),
        "kubectl create namespace",
    );
    let user_values = dir.path().join("user.yaml");
    std::fs::write(&user_values, "replicas: 3\nextra:\n  keep: kept\n").unwrap();
    ok(
        cluster.helm(&[
            "install",
            &cluster.release,
            chart_a.to_str().unwrap(),
            "-n",
            &ns,
            "-f",
            user_values.to_str().unwrap(),
            "--wait",
        ]),
        "helm install version A",
    );

    let backups = dir.path().join("backups");
    let upgrade = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kantup"))
            .arg("upgrade")
            .arg(&chart_b)
            .args(["--release", &cluster.release, "-n", &ns, "--yes"])
            .args(["--image-registry", REGISTRY])
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--helm")
            .arg(&cluster.helm)
            .arg("--backup-dir")
            .arg(&backups)
            .args(extra)
            .output()
            .expect("run kantup")
    };
    let summary: Value =
        serde_json::from_str(&ok(upgrade(&["-o", "json"]), "kantup upgrade")).unwrap();
    assert_eq!(summary["previous_revision"], 1, "{summary}");
    assert_eq!(summary["revision"], 2, "{summary}");
    assert_eq!(summary["status"], "deployed", "{summary}");
    assert_eq!(summary["crds_applied"], 1, "{summary}");
    let backup_file = PathBuf::from(summary["backup_file"].as_str().unwrap());
    let backed_up: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&backup_file).unwrap()).unwrap();
    assert_eq!(
        backed_up["replicas"], 3,
        "backup holds revision 1's user values"
    );

    // helm's own view of the release.
    let status: Value = serde_json::from_str(&ok(
        cluster.helm(&["status", &cluster.release, "-n", &ns, "-o", "json"]),
        "helm status",
    ))
    .unwrap();
    assert_eq!(status["version"], 2, "{status}");
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert_eq!(status["chart"]["metadata"]["version"], "1.1.0");
    let values: Value = serde_json::from_str(&ok(
        cluster.helm(&["get", "values", &cluster.release, "-n", &ns, "-o", "json"]),
        "helm get values",
    ))
    .unwrap();
    assert_eq!(values["replicas"], 3, "user values kept: {values}");
    assert_eq!(
        values["extra"]["keep"], "kept",
        "user values kept: {values}"
    );
    assert_eq!(values["global"]["imageRegistry"], REGISTRY, "{values}");
    let image = ok(
        cluster.kubectl(&[
            "get",
            "configmap",
            &format!("{}-config", cluster.release),
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.image}",
        ]),
        "kubectl get configmap",
    );
    assert_eq!(image, format!("{REGISTRY}/library/busybox:1.36"));

    let established = ok(
        cluster.kubectl(&[
            "get",
            "crd",
            &cluster.crd,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ]),
        "kubectl get crd",
    );
    assert_eq!(
        established.trim(),
        "True",
        "CRD {} is Established",
        cluster.crd
    );

    // Re-running the same upgrade changes nothing.
    let again = ok(upgrade(&[]), "kantup upgrade (re-run)");
    assert!(again.contains("nothing to do"), "{again}");
    let status: Value = serde_json::from_str(&ok(
        cluster.helm(&["status", &cluster.release, "-n", &ns, "-o", "json"]),
        "helm status",
    ))
    .unwrap();
    assert_eq!(status["version"], 2, "a re-run makes no new revision");
}

/// The generated charts are valid without a cluster: both render with the real helm, the CRD
/// is a CRD, and the registry reaches the ConfigMap.
#[test]
fn the_generated_test_charts_render() {
    let dir = tempfile::tempdir().unwrap();
    let chart_a = write_chart(dir.path(), "1.0.0", None);
    let chart_b = write_chart(dir.path(), "1.1.0", Some(("e2e.kantup.dev", "widgets")));
    for helm in [kantup_test_support::helm3(), kantup_test_support::helm4()] {
        for chart in [&chart_a, &chart_b] {
            let out = Command::new(&helm)
                .args(["template", "e2e"])
                .arg(chart)
                .args([
                    "--include-crds",
                    "--set",
                    &format!("global.imageRegistry={REGISTRY}"),
                ])
                .output()
                .unwrap();
            let text = ok(out, "helm template");
            assert!(
                text.contains(&format!("image: \"{REGISTRY}/library/busybox:1.36\"")),
                "{text}"
            );
            assert_eq!(
                text.contains("name: widgets.e2e.kantup.dev"),
                chart == &chart_b,
                "{text}"
            );
        }
    }
}
