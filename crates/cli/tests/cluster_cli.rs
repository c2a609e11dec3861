//! `kantup crds apply`, `kantup values backup` and `kantup preflight` against the real API
//! server (kube-apiserver v1.23.5 with etcd, `tests/support/src/kube_cluster.rs`), with
//! releases made by the real helm 3.17 and 4.1 in both storage drivers.
//!
//! Tests share one server and run in parallel: each has its own namespace and CRD group.

mod common;

use std::path::Path;
use std::process::Command;

use common::{KantChart, crd_managers, kantup, ok, resource_version, small_crd, text};
use kantup_test_support::kube_cluster::{KubeCluster, cluster_or_skip, unique_name};
use serde_json::Value;

fn helms() -> [(&'static str, std::path::PathBuf); 2] {
    [
        ("helm 3.17", kantup_test_support::helm3()),
        ("helm 4.1", kantup_test_support::helm4()),
    ]
}

/// `helm ARGS` with `HELM_DRIVER=driver`.
fn helm_with_driver(cluster: &KubeCluster, helm: &Path, driver: &str, args: &[&str]) -> String {
    let output = Command::new(helm)
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("HELM_DRIVER", driver)
        .output()
        .unwrap();
    ok(output, &format!("{} {}", helm.display(), args.join(" ")))
}

/// `crds apply --plan` asks the server: new, unchanged and changed CRDs, the manager whose
/// fields would be taken over (helm, which created the CRD at install), and nothing is
/// written; `crds apply` then takes them over by default and names helm; `--refuse-conflicts`
/// refuses instead and changes nothing; a second plan says every CRD is unchanged.
#[test]
fn crds_plan_and_apply_take_over_helms_fields() {
    let Some(cluster) = cluster_or_skip("crds_plan_and_apply_take_over_helms_fields") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = cluster.namespace("crds");
    let group = format!("{}.kant.test", unique_name("crds"));
    let v040 = KantChart::v040(&group).write(dir.path());
    cluster.helm(
        &kantup_test_support::helm3(),
        &["install", "kant", v040.to_str().unwrap(), "-n", &ns],
    );
    let v050 = KantChart::v050(&group);
    let chart = v050.write(dir.path());
    let kubeconfig = cluster.kubeconfig();
    let widgets_rv = resource_version(cluster, "crd", &v050.widgets(), None);

    let plan = kantup(
        kubeconfig,
        dir.path(),
        &[
            "crds",
            "apply",
            chart.to_str().unwrap(),
            "--plan",
            "-o",
            "json",
        ],
    );
    let plans: Value = serde_json::from_str(&ok(plan, "crds apply --plan")).unwrap();
    let by_name = |name: &str| {
        plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not planned: {plans}"))
            .clone()
    };
    let widgets = by_name(&v050.widgets());
    assert_eq!(widgets["action"], "changed", "{widgets}");
    assert_eq!(widgets["conflicts"][0]["manager"], "helm", "{widgets}");
    assert_eq!(
        widgets["conflicts"][0]["fields"][0], ".spec.versions",
        "{widgets}"
    );
    assert_eq!(
        widgets["changes"]["versions_added"][0], "v1beta1",
        "{widgets}"
    );
    assert_eq!(by_name(&v050.gadgets())["action"], "new");
    assert_eq!(
        resource_version(cluster, "crd", &v050.widgets(), None),
        widgets_rv,
        "the plan wrote nothing"
    );

    let refused = kantup(
        kubeconfig,
        dir.path(),
        &[
            "crds",
            "apply",
            chart.to_str().unwrap(),
            "--refuse-conflicts",
        ],
    );
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "CustomResourceDefinition {}: fields owned by other field managers: helm (.spec.versions); nothing was applied",
            v050.widgets()
        )),
        "{all}"
    );
    assert_eq!(
        resource_version(cluster, "crd", &v050.widgets(), None),
        widgets_rv
    );
    assert!(
        !cluster
            .kubectl_output(&["get", "crd", &v050.gadgets()], None)
            .status
            .success(),
        "nothing was applied"
    );

    let applied = ok(
        kantup(
            kubeconfig,
            dir.path(),
            &["crds", "apply", chart.to_str().unwrap()],
        ),
        "crds apply",
    );
    assert!(
        applied.contains("took over fields from helm (.spec.versions)"),
        "{applied}"
    );
    assert!(crd_managers(cluster, &v050.widgets()).contains(&"kantup".to_string()));

    let again = kantup(
        kubeconfig,
        dir.path(),
        &[
            "crds",
            "apply",
            chart.to_str().unwrap(),
            "--plan",
            "-o",
            "json",
        ],
    );
    let plans: Value = serde_json::from_str(&ok(again, "second plan")).unwrap();
    for plan in plans.as_array().unwrap() {
        assert_eq!(plan["action"], "unchanged", "{plan}");
        assert_eq!(plan["conflicts"], Value::Array(vec![]), "{plan}");
    }
    let widgets_rv = resource_version(cluster, "crd", &v050.widgets(), None);
    ok(
        kantup(
            kubeconfig,
            dir.path(),
            &["crds", "apply", chart.to_str().unwrap()],
        ),
        "crds apply again",
    );
    assert_eq!(
        resource_version(cluster, "crd", &v050.widgets(), None),
        widgets_rv,
        "an unchanged CRD is not written"
    );
}

/// Fields `kubectl apply` (client-side) set belong to `kubectl-client-side-apply`: taken over
/// and named the same way.
#[test]
fn crds_apply_takes_over_kubectl_client_side_apply() {
    let Some(cluster) = cluster_or_skip("crds_apply_takes_over_kubectl_client_side_apply") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let group = format!("{}.kant.test", unique_name("csa"));
    let old = dir.path().join("old.yaml");
    std::fs::write(&old, common::widgets_crd(&group, false)).unwrap();
    cluster.kubectl(&["apply", "-f", old.to_str().unwrap()]);
    let new_dir = dir.path().join("crds");
    std::fs::create_dir(&new_dir).unwrap();
    std::fs::write(
        new_dir.join("widgets.yaml"),
        common::widgets_crd(&group, true),
    )
    .unwrap();
    let applied = ok(
        kantup(
            cluster.kubeconfig(),
            dir.path(),
            &["crds", "apply", new_dir.to_str().unwrap()],
        ),
        "crds apply",
    );
    assert!(
        applied.contains("took over fields from kubectl-client-side-apply (.spec.versions)"),
        "{applied}"
    );
}

/// Bad CRD files fail before the cluster is asked anything (the kubeconfig points at a port
/// nobody listens on, so any request would fail differently), naming the file; a missing
/// kubeconfig is named too.
#[test]
fn invalid_crds_and_kubeconfigs_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = kantup_test_support::registry_server::free_port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"https://127.0.0.1:{port}\"}}\n\
             users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let crds = dir.path().join("crds");
    std::fs::create_dir(&crds).unwrap();
    std::fs::write(
        crds.join("a.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = kantup(
        &kubeconfig,
        dir.path(),
        &["crds", "apply", crds.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "a.yaml: document 0: expected apiextensions.k8s.io/v1 CustomResourceDefinition, found v1 Service"
        ),
        "{stderr}"
    );

    // Nothing listens: one line naming what was asked and why it failed.
    std::fs::write(crds.join("a.yaml"), small_crd("x.kant.test", "X", "xs")).unwrap();
    let out = kantup(
        &kubeconfig,
        dir.path(),
        &["crds", "apply", crds.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("get CustomResourceDefinition xs.x.kant.test"),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.contains("hint: check that the API server"),
        "{stderr}"
    );

    let missing = dir.path().join("no-such-kubeconfig");
    let out = kantup(
        &kubeconfig,
        dir.path(),
        &[
            "preflight",
            "-r",
            "kant",
            "--kubeconfig",
            missing.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-kubeconfig"), "{stderr}");
}

/// `values backup` writes what `helm get values -o yaml` prints (and with `--all` what
/// `helm get values --all` prints), for releases written by helm 3.17 and 4.1 in both storage
/// drivers, the namespace taken from the kubeconfig context when not given; the file is mode
/// 0600; `--revision` reads an older revision.
#[test]
fn values_backup_equals_helm_get_values() {
    let Some(cluster) = cluster_or_skip("values_backup_equals_helm_get_values") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let group = format!("{}.kant.test", unique_name("backup"));
    let v040 = KantChart::v040(&group).write(dir.path());
    let v050 = KantChart::v050(&group).write(dir.path());
    let user = dir.path().join("user.yaml");
    std::fs::write(
        &user,
        "replicas: 3\nimage:\n  tag: custom\nextra:\n  list: [1, two, 3.5]\n  nothing: null\n  \
         nested: {a: {b: true}}\n",
    )
    .unwrap();
    for (name, helm) in helms() {
        for driver in ["secret", "configmap"] {
            let ns = cluster.namespace("backup");
            let what = format!("{name}, {driver}");
            helm_with_driver(
                cluster,
                &helm,
                driver,
                &[
                    "install",
                    "kant",
                    v040.to_str().unwrap(),
                    "-n",
                    &ns,
                    "-f",
                    user.to_str().unwrap(),
                ],
            );
            helm_with_driver(
                cluster,
                &helm,
                driver,
                &[
                    "upgrade",
                    "kant",
                    v050.to_str().unwrap(),
                    "-n",
                    &ns,
                    "--reuse-values",
                    "--set",
                    "replicas=5",
                ],
            );
            // A kubeconfig whose context names the namespace, so -n is not needed.
            let kubeconfig = dir.path().join(format!("kubeconfig-{ns}"));
            let text_config = std::fs::read_to_string(cluster.kubeconfig())
                .unwrap()
                .replace("namespace: default", &format!("namespace: {ns}"));
            std::fs::write(&kubeconfig, text_config).unwrap();
            for (all, revision) in [
                (false, None),
                (true, None),
                (false, Some("1")),
                (true, Some("1")),
            ] {
                let mut helm_args = vec!["get", "values", "kant", "-n", &ns, "-o", "yaml"];
                let mut ours_args = vec!["values", "backup", "-r", "kant"];
                if all {
                    helm_args.push("--all");
                    ours_args.push("--all");
                }
                if let Some(revision) = revision {
                    helm_args.extend(["--revision", revision]);
                    ours_args.extend(["--revision", revision]);
                }
                let file = dir.path().join(format!("bak-{ns}-{all}-{revision:?}.yaml"));
                ours_args.extend(["-f", file.to_str().unwrap()]);
                let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
                    .args(&ours_args)
                    .env("KUBECONFIG", &kubeconfig)
                    .env("HELM_DRIVER", driver)
                    .output()
                    .unwrap();
                ok(output, &format!("{what}: values backup"));
                let theirs = helm_with_driver(cluster, &helm, driver, &helm_args);
                let ours = std::fs::read_to_string(&file).unwrap();
                let parse = |t: &str| serde_yaml::from_str::<Value>(t).unwrap();
                assert_eq!(
                    parse(&ours),
                    parse(&theirs),
                    "{what}, --all {all}, revision {revision:?}:\nours:\n{ours}\nhelm:\n{theirs}"
                );
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{what}");
            }
        }
    }
}

/// `preflight` on a release helm 4.1 made: an upgrade passes, a downgrade fails (exit 1)
/// naming `--allow-downgrade`, and the check names fit their column.
#[test]
fn preflight_passes_an_upgrade_and_fails_a_downgrade() {
    let Some(cluster) = cluster_or_skip("preflight_passes_an_upgrade_and_fails_a_downgrade") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = cluster.namespace("preflight");
    let group = format!("{}.kant.test", unique_name("preflight"));
    let v040 = KantChart::v040(&group).write(dir.path());
    helm_with_driver(
        cluster,
        &kantup_test_support::helm4(),
        "configmap",
        &["install", "kant", v040.to_str().unwrap(), "-n", &ns],
    );
    let run = |version: &str| {
        kantup(
            cluster.kubeconfig(),
            dir.path(),
            &[
                "preflight",
                "-r",
                "kant",
                "-n",
                &ns,
                "--chart-version",
                version,
                "--helm-driver",
                "configmap",
            ],
        )
    };
    let output = run("0.5.0");
    // The test server's kubeconfig skips TLS verification: said once, naming the server, with
    // no colour codes into a pipe.
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if cluster.is_local() {
        assert!(
            stderr.contains("TLS certificate of the API server https://127.0.0.1:"),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("Server cert bypassed"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes when stderr is not a terminal: {stderr:?}"
    );
    let stdout = ok(output, "preflight of an upgrade");
    assert!(stdout.contains("upgrade 0.4.0 -> 0.5.0"), "{stdout}");
    // Every line's RESULT column starts at the same place, whatever the check's name.
    let columns: Vec<usize> = stdout
        .lines()
        .filter_map(|l| l.find(" ok ").or_else(|| l.find(" RESULT ")))
        .collect();
    assert!(columns.len() > 5, "{stdout}");
    assert!(columns.iter().all(|c| *c == columns[0]), "{stdout}");

    let out = run("0.3.0");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains("0.3.0 is lower than the deployed 0.4.0"),
        "{stdout}"
    );
    assert!(stdout.contains("--allow-downgrade"), "{stdout}");
}
