//! `kantup upgrade` against the real API server (kube-apiserver v1.23.5 with etcd, see
//! `tests/support/src/kube_cluster.rs`) with the real helm 3.17 and 4.1: releases made by
//! `helm install`, the seed's upgrade compared with the seed's manual steps on a second server,
//! and every way the upgrade must stop before changing anything.
//!
//! Tests share one server and run in parallel: each has its own namespace and CRD group.

mod common;

use std::path::{Path, PathBuf};

use common::{KantChart, REGISTRY, crd_managers, crd_spec, kantup, ok, resource_version, text};
use kantup_test_support::kube_cluster::{KubeCluster, Rule, cluster_or_skip, unique_name};
use serde_json::Value;

/// One test's corner of the cluster: a namespace, a CRD group, a scratch directory.
struct Site {
    cluster: &'static KubeCluster,
    ns: String,
    group: String,
    dir: tempfile::TempDir,
}

impl Site {
    fn new(test: &str) -> Option<Self> {
        let cluster = cluster_or_skip(test)?;
        let ns = cluster.namespace("kant");
        let group = format!("{}.kant.test", unique_name("g"));
        Some(Self {
            cluster,
            ns,
            group,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn backups(&self) -> PathBuf {
        self.path("backups")
    }

    /// `helm install kant CHART -n NS` with the seed's first values.
    fn helm_install(&self, helm: &Path, chart: &Path, extra: &[&str]) {
        let user = self.path("install-values.yaml");
        std::fs::write(
            &user,
            "replicas: 3\nglobal:\n  imageRegistry: old.example:5000\nextra:\n  keep: kept\n",
        )
        .unwrap();
        let mut args = vec![
            "install",
            "kant",
            chart.to_str().unwrap(),
            "-n",
            &self.ns,
            "-f",
            user.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.cluster.helm(helm, &args);
    }

    /// `kantup upgrade SOURCE --release kant -n NS --backup-dir ... --helm HELM ARGS`.
    fn upgrade(&self, source: &Path, helm: &Path, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "upgrade",
            source.to_str().unwrap(),
            "--release",
            "kant",
            "-n",
            &self.ns,
            "--backup-dir",
            self.dir.path().join("backups").to_str().unwrap(),
            "--helm",
            helm.to_str().unwrap(),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kantup(self.cluster.kubeconfig(), self.dir.path(), &args)
    }

    fn helm_json(&self, helm: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-n", &self.ns, "-o", "json"]);
        serde_json::from_str(&self.cluster.helm(helm, &all)).unwrap()
    }

    fn revision(&self, helm: &Path) -> u64 {
        let history = self.helm_json(helm, &["history", "kant"]);
        history.as_array().unwrap().last().unwrap()["revision"]
            .as_u64()
            .unwrap()
    }

    fn backup_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.backups()) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn helms() -> [(&'static str, PathBuf); 2] {
    [
        ("helm 3.17", kantup_test_support::helm3()),
        ("helm 4.1", kantup_test_support::helm4()),
    ]
}

/// The seed's manual procedure: back up the values, `kubectl apply -f crds/` (which fails on
/// the CRD over 256 KiB, as it does for operators: that one is created instead), then
/// `helm upgrade -f bak.yaml --set global.imageRegistry=REG`.
fn manual_upgrade(cluster: &KubeCluster, helm: &Path, ns: &str, chart: &Path, dir: &Path) {
    let backup = dir.join(format!("manual-bak-{ns}.yaml"));
    let values = cluster.helm(helm, &["get", "values", "kant", "-n", ns, "-o", "yaml"]);
    std::fs::write(&backup, values).unwrap();
    let crds = chart.join("crds");
    let apply = cluster.kubectl_output(&["apply", "-f", crds.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        !apply.status.success() && stderr.contains("Too long: may not be more than 262144 bytes"),
        "kubectl apply of the 400 KiB CRD fails on the annotation limit: {stderr}"
    );
    cluster.kubectl(&["create", "-f", crds.join("gadgets.yaml").to_str().unwrap()]);
    cluster.helm(
        helm,
        &[
            "upgrade",
            "kant",
            chart.to_str().unwrap(),
            "-n",
            ns,
            "-f",
            backup.to_str().unwrap(),
            "--set",
            &format!("global.imageRegistry={REGISTRY}"),
        ],
    );
}

/// The seed's upgrade 0.4.0 -> 0.5.0 from a bundle, with no extra flags, against a release
/// `helm install` made (so helm owns the widgets CRD's fields): the result equals the manual
/// procedure run on a second server — user values, rendered manifest and CRD specs — for
/// helm 3.17 and 4.1; a re-run is "nothing to do".
#[test]
fn the_seed_upgrade_equals_the_manual_steps() {
    let Some(site) = Site::new("the_seed_upgrade_equals_the_manual_steps") else {
        return;
    };
    if !kantup_test_support::kube_cluster::can_start_local() {
        kantup_test_support::kube_cluster::skip_or_fail(
            "the_seed_upgrade_equals_the_manual_steps",
            "needs a second local API server for the manual procedure",
        );
        return;
    }
    let manual = KubeCluster::start();
    for (name, helm) in helms() {
        let group = format!("{}.kant.test", unique_name("seed"));
        let ns = site.cluster.namespace("seed");
        let site = Site {
            cluster: site.cluster,
            ns: ns.clone(),
            group: group.clone(),
            dir: tempfile::tempdir().unwrap(),
        };
        let v040 = KantChart::v040(&group).write(site.dir.path());
        let v050 = KantChart::v050(&group);
        let bundle = v050.bundle(site.dir.path());
        let chart_050 = v050.write(&site.path("manual"));

        // The manual procedure on the second server, same namespace and group names.
        manual.kubectl(&["create", "namespace", &ns]);
        let manual_site = Site {
            cluster: site.cluster,
            ns: ns.clone(),
            group: group.clone(),
            dir: tempfile::tempdir().unwrap(),
        };
        let install_values = manual_site.path("install-values.yaml");
        std::fs::write(
            &install_values,
            "replicas: 3\nglobal:\n  imageRegistry: old.example:5000\nextra:\n  keep: kept\n",
        )
        .unwrap();
        manual.helm(
            &helm,
            &[
                "install",
                "kant",
                v040.to_str().unwrap(),
                "-n",
                &ns,
                "-f",
                install_values.to_str().unwrap(),
            ],
        );
        manual_upgrade(&manual, &helm, &ns, &chart_050, site.dir.path());

        // kantup on the shared server.
        site.helm_install(&helm, &v040, &[]);
        let output = site.upgrade(
            &bundle,
            &helm,
            &["--image-registry", REGISTRY, "--yes", "-o", "json"],
        );
        let summary: Value = serde_json::from_str(&ok(output, name)).unwrap();
        assert_eq!(summary["previous_revision"], 1, "{name}: {summary}");
        assert_eq!(summary["revision"], 2, "{name}: {summary}");
        assert_eq!(summary["status"], "deployed", "{name}: {summary}");
        let crds = summary["crds"].as_array().unwrap();
        let widgets = crds
            .iter()
            .find(|c| c["name"] == v050.widgets().as_str())
            .unwrap();
        assert_eq!(widgets["action"], "changed", "{name}: {summary}");
        assert_eq!(
            widgets["taken_over"][0]["manager"], "helm",
            "{name}: the fields helm owned are taken over and named: {summary}"
        );
        let gadgets = crds
            .iter()
            .find(|c| c["name"] == v050.gadgets().as_str())
            .unwrap();
        assert_eq!(gadgets["action"], "new", "{name}: {summary}");

        let backup = PathBuf::from(summary["backup_file"].as_str().unwrap());
        let backed_up: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
        assert_eq!(backed_up["replicas"], 3, "{name}: revision 1's user values");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: the backup is private");

        // Equal to the manual procedure: values, manifest, CRD specs.
        let on = |cluster: &KubeCluster, args: &[&str]| cluster.helm(&helm, args);
        let values_args = ["get", "values", "kant", "-n", &ns, "-o", "json"];
        let ours: Value = serde_json::from_str(&on(site.cluster, &values_args)).unwrap();
        let theirs: Value = serde_json::from_str(&on(&manual, &values_args)).unwrap();
        assert_eq!(ours, theirs, "{name}: user values");
        assert_eq!(ours["global"]["imageRegistry"], REGISTRY, "{name}");
        assert_eq!(ours["extra"]["keep"], "kept", "{name}");
        let manifest_args = ["get", "manifest", "kant", "-n", &ns];
        assert_eq!(
            on(site.cluster, &manifest_args),
            on(&manual, &manifest_args),
            "{name}: rendered manifest"
        );
        for crd in [v050.widgets(), v050.gadgets()] {
            assert_eq!(
                crd_spec(site.cluster, &crd),
                crd_spec(&manual, &crd),
                "{name}: spec of {crd}"
            );
            let established = site.cluster.kubectl(&[
                "get",
                "crd",
                &crd,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
            ]);
            assert_eq!(established, "True", "{name}: {crd}");
        }
        assert!(
            crd_managers(site.cluster, &v050.widgets()).contains(&"kantup".to_string()),
            "{name}: kantup owns the fields it applied"
        );

        // A re-run finds nothing to do and writes nothing.
        let before = site.backup_files().len();
        let again = ok(
            site.upgrade(&bundle, &helm, &["--image-registry", REGISTRY, "--yes"]),
            "re-run",
        );
        assert!(again.contains("nothing to do"), "{name}: {again}");
        assert_eq!(site.revision(&helm), 2, "{name}: no new revision");
        assert_eq!(site.backup_files().len(), before, "{name}: no new files");
    }
}

/// A user whose RBAC role may manage the release's Secrets but not CRDs: the pre-flight names
/// the missing permissions, exit code 1, and nothing changes (no revision, no CRD, no file).
#[test]
fn missing_crd_permissions_fail_the_preflight_and_change_nothing() {
    let Some(site) = Site::new("missing_crd_permissions_fail_the_preflight_and_change_nothing")
    else {
        return;
    };
    let helm = kantup_test_support::helm3();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let v050 = KantChart::v050(&site.group).write(site.dir.path());
    let user = site.cluster.user(
        &unique_name("operator"),
        &[],
        Some((
            &site.ns,
            &[Rule::new(
                &["", "apps"],
                &["secrets", "configmaps", "deployments"],
                &["get", "list", "create", "update", "patch", "delete"],
            )],
        )),
    );
    let widgets_rv = resource_version(
        site.cluster,
        "crd",
        &format!("widgets.{}", site.group),
        None,
    );
    let output = kantup(
        &user,
        site.dir.path(),
        &[
            "upgrade",
            v050.to_str().unwrap(),
            "--release",
            "kant",
            "-n",
            &site.ns,
            "--yes",
            "--helm",
            helm.to_str().unwrap(),
            "--backup-dir",
            site.backups().to_str().unwrap(),
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    for missing in [
        "can get customresourcedefinitions.apiextensions.k8s.io cluster-wide",
        "can create customresourcedefinitions.apiextensions.k8s.io cluster-wide",
        "can patch customresourcedefinitions.apiextensions.k8s.io cluster-wide",
    ] {
        let line = all
            .lines()
            .find(|l| l.contains(missing))
            .unwrap_or_else(|| panic!("{missing} not reported: {all}"));
        assert!(line.contains("FAIL"), "{line}");
    }
    assert!(all.contains("nothing was changed"), "{all}");
    assert!(!all.contains("Status {"), "one-line errors only: {all}");
    assert_eq!(site.revision(&helm), 1);
    assert!(site.backup_files().is_empty(), "{:?}", site.backup_files());
    assert_eq!(
        resource_version(
            site.cluster,
            "crd",
            &format!("widgets.{}", site.group),
            None
        ),
        widgets_rv
    );
    let gadgets = site
        .cluster
        .kubectl_output(&["get", "crd", &format!("gadgets.{}", site.group)], None);
    assert!(!gadgets.status.success(), "the new CRD was not created");
}

/// A CRD the server rejects (an unknown schema type): `--plan` shows the server's message and
/// exits 1; the upgrade stops before any change — no backup, no CRD written (not even the
/// valid new one), helm not run.
#[test]
fn a_crd_the_server_rejects_stops_before_any_change() {
    let Some(site) = Site::new("a_crd_the_server_rejects_stops_before_any_change") else {
        return;
    };
    let helm = kantup_test_support::helm4();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let v050 = KantChart::v050(&site.group);
    let chart = v050.write(site.dir.path());
    let widgets = chart.join("crds/widgets.yaml");
    let broken = std::fs::read_to_string(&widgets)
        .unwrap()
        .replace("type: integer", "type: integr");
    std::fs::write(&widgets, broken).unwrap();
    let widgets_rv = resource_version(site.cluster, "crd", &v050.widgets(), None);

    let plan = site.upgrade(&chart, &helm, &["--plan"]);
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{plan_text}");
    assert!(plan_text.contains("REFUSED by the server"), "{plan_text}");
    assert!(
        plan_text.contains("Unsupported value: \"integr\""),
        "{plan_text}"
    );

    let output = site.upgrade(&chart, &helm, &["--yes"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the API server refuses 1 CustomResourceDefinition(s); nothing was applied"),
        "{all}"
    );
    assert!(all.contains("Unsupported value: \"integr\""), "{all}");
    assert!(all.contains("422 Invalid"), "{all}");
    assert_eq!(site.revision(&helm), 1);
    assert!(site.backup_files().is_empty(), "{:?}", site.backup_files());
    assert_eq!(
        resource_version(site.cluster, "crd", &v050.widgets(), None),
        widgets_rv
    );
    let gadgets = site
        .cluster
        .kubectl_output(&["get", "crd", &v050.gadgets()], None);
    assert!(
        !gadgets.status.success(),
        "the valid new CRD was not applied either"
    );
}

/// A `helm upgrade` the server refuses (a template with an invalid object name): the backup
/// stays (mode 0600, the previous user values) and is named with the rollback command; the
/// next run with a good chart continues from the failed revision, and its way back is the
/// last deployed revision, not the failure.
#[test]
fn a_failed_helm_upgrade_keeps_the_backup_and_the_next_run_continues() {
    let Some(site) = Site::new("a_failed_helm_upgrade_keeps_the_backup_and_the_next_run_continues")
    else {
        return;
    };
    let helm = kantup_test_support::helm3();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let broken = KantChart {
        broken_template: true,
        ..KantChart::v050(&site.group)
    }
    .write(&site.path("broken"));
    let output = site.upgrade(&broken, &helm, &["--image-registry", REGISTRY, "--yes"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("helm upgrade failed; values backup kept at"),
        "{all}"
    );
    assert!(all.contains("rollback kant 1 --namespace"), "{all}");
    assert!(
        all.contains("Not_A_Valid_Name"),
        "helm's own error is shown: {all}"
    );
    let backups: Vec<PathBuf> = site
        .backup_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".backup.yaml"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(all.contains(&backups[0].display().to_string()), "{all}");
    let backed_up: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&backups[0]).unwrap()).unwrap();
    assert_eq!(backed_up["replicas"], 3);
    let status = site.helm_json(&helm, &["status", "kant"]);
    assert_eq!(status["info"]["status"], "failed", "{status}");

    let good = KantChart::v050(&site.group).write(site.dir.path());
    let output = site.upgrade(&good, &helm, &["--image-registry", REGISTRY, "--yes"]);
    let all = ok(output, "upgrade after the failed attempt");
    assert!(all.contains("revision 2 -> 3"), "{all}");
    assert!(all.contains("rollback kant 1 --namespace"), "{all}");
    let values = site.helm_json(&helm, &["get", "values", "kant"]);
    assert_eq!(values["replicas"], 3, "{values}");
    assert_eq!(values["global"]["imageRegistry"], REGISTRY, "{values}");
}

/// The release does not exist: `kantup upgrade` installs it (`helm upgrade --install`), with
/// the namespace created on request and the CRDs applied by kantup; without
/// `--create-namespace` a missing namespace fails the pre-flight, and `--no-install` refuses
/// a missing release.
#[test]
fn a_missing_release_is_installed() {
    let Some(site) = Site::new("a_missing_release_is_installed") else {
        return;
    };
    let helm = kantup_test_support::helm4();
    let chart = KantChart::v050(&site.group).write(site.dir.path());

    let refused = site.upgrade(&chart, &helm, &["--yes", "--no-install"]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(all.contains("release kant not found"), "{all}");

    let fresh_ns = unique_name("fresh");
    let missing_ns = Site {
        cluster: site.cluster,
        ns: fresh_ns.clone(),
        group: site.group.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let refused = missing_ns.upgrade(&chart, &helm, &["--yes"]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("namespace {fresh_ns} does not exist")),
        "{all}"
    );
    assert!(all.contains("pass --create-namespace"), "{all}");

    let output = missing_ns.upgrade(
        &chart,
        &helm,
        &["--yes", "--create-namespace", "-o", "json"],
    );
    let summary: Value = serde_json::from_str(&ok(output, "install")).unwrap();
    assert_eq!(summary["installed"], true, "{summary}");
    assert_eq!(summary["revision"], 1, "{summary}");
    assert!(
        summary["way_back"]
            .as_str()
            .unwrap()
            .contains("uninstall kant"),
        "{summary}"
    );
    let status = missing_ns.helm_json(&helm, &["status", "kant"]);
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    for crd in ["widgets", "gadgets"] {
        site.cluster
            .kubectl(&["get", "crd", &format!("{crd}.{}", site.group)]);
    }
    // Installed, it is up to date.
    let again = ok(missing_ns.upgrade(&chart, &helm, &["--yes"]), "re-run");
    assert!(again.contains("nothing to do"), "{again}");
    // The same version with other defaults (as `sync` relocates a chart) is not.
    let values = chart.join("values.yaml");
    let mut defaults = std::fs::read_to_string(&values).unwrap();
    defaults.push_str("relocatedBy: kantup\n");
    std::fs::write(&values, defaults).unwrap();
    let output = missing_ns.upgrade(&chart, &helm, &["--yes", "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(output, "same version, new defaults")).unwrap();
    assert_eq!(summary["revision"], 2, "{summary}");
}

/// `--plan` of a verified bundle changes nothing and writes nothing; so does an upgrade
/// without `--yes` when stdin is not a terminal.
#[test]
fn plan_and_unconfirmed_runs_change_nothing() {
    let Some(site) = Site::new("plan_and_unconfirmed_runs_change_nothing") else {
        return;
    };
    let helm = kantup_test_support::helm3();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let v050 = KantChart::v050(&site.group);
    let bundle = v050.bundle(site.dir.path());
    let widgets_rv = resource_version(site.cluster, "crd", &v050.widgets(), None);

    let plan = ok(
        site.upgrade(&bundle, &helm, &["--plan", "--image-registry", REGISTRY]),
        "--plan",
    );
    assert!(plan.contains("upgrade kant in"), "{plan}");
    assert!(plan.contains("kant 0.4.0 -> kant 0.5.0 (bundle)"), "{plan}");
    assert!(
        plan.contains("takes over fields from helm (.spec.versions)"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("{} new", v050.gadgets())) || plan.contains("new"),
        "{plan}"
    );
    assert!(plan.contains("global.imageRegistry"), "{plan}");
    assert!(plan.contains("upgrade kant"), "{plan}");

    let json: Value = serde_json::from_str(&ok(
        site.upgrade(&bundle, &helm, &["--plan", "-o", "json"]),
        "--plan -o json",
    ))
    .unwrap();
    assert_eq!(json["install"], false, "{json}");
    assert_eq!(json["crds"].as_array().unwrap().len(), 2, "{json}");

    let unconfirmed = site.upgrade(&bundle, &helm, &[]);
    let all = text(&unconfirmed);
    assert_eq!(unconfirmed.status.code(), Some(1), "{all}");
    assert!(all.contains("refusing to upgrade without --yes"), "{all}");

    assert_eq!(site.revision(&helm), 1);
    assert!(site.backup_files().is_empty(), "{:?}", site.backup_files());
    assert_eq!(
        resource_version(site.cluster, "crd", &v050.widgets(), None),
        widgets_rv
    );
    assert!(
        !site
            .cluster
            .kubectl_output(&["get", "crd", &v050.gadgets()], None)
            .status
            .success()
    );
}

/// Helm's ConfigMap storage: `--helm-driver configmap` reaches helm (the new revision is a
/// ConfigMap record too, no Secret record appears), and a `KUBECONFIG` list reaches helm as a
/// list (the admin kubeconfig split into two files).
#[test]
fn the_configmap_driver_and_a_kubeconfig_list_reach_helm() {
    let Some(site) = Site::new("the_configmap_driver_and_a_kubeconfig_list_reach_helm") else {
        return;
    };
    let helm = kantup_test_support::helm3();
    let chart_040 = KantChart::v040(&site.group).write(site.dir.path());
    let user = site.path("install-values.yaml");
    std::fs::write(&user, "replicas: 2\n").unwrap();
    let kubeconfig = site.cluster.kubeconfig().to_str().unwrap().to_string();
    let installed = std::process::Command::new(&helm)
        .args([
            "install",
            "kant",
            chart_040.to_str().unwrap(),
            "-n",
            &site.ns,
        ])
        .args(["-f", user.to_str().unwrap()])
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_DRIVER", "configmap")
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", text(&installed));

    // The kubeconfig as two files: everything but the current context, and the context.
    let full = std::fs::read_to_string(&kubeconfig).unwrap();
    let (rest, current): (Vec<&str>, Vec<&str>) = full
        .lines()
        .partition(|l| !l.starts_with("current-context:"));
    let first = site.path("kubeconfig-a");
    let second = site.path("kubeconfig-b");
    std::fs::write(&first, rest.join("\n")).unwrap();
    std::fs::write(
        &second,
        format!("apiVersion: v1\nkind: Config\n{}\n", current.join("\n")),
    )
    .unwrap();
    let list = format!("{}:{}", first.display(), second.display());

    let chart_050 = KantChart::v050(&site.group).write(site.dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(["upgrade", chart_050.to_str().unwrap(), "--release", "kant"])
        .args(["-n", &site.ns, "--yes", "--helm", helm.to_str().unwrap()])
        .args(["--helm-driver", "configmap", "--image-registry", REGISTRY])
        .arg("--backup-dir")
        .arg(site.backups())
        .env("KUBECONFIG", &list)
        .env_remove("HELM_DRIVER")
        .env("KANTUP_NO_WAIT", "true")
        .env("KANTUP_SKIP_IMAGE_CHECK", "true")
        .output()
        .unwrap();
    let all = ok(
        output,
        "upgrade with the configmap driver and a KUBECONFIG list",
    );
    assert!(all.contains("revision 1 -> 2"), "{all}");
    let records = site.cluster.kubectl(&[
        "get",
        "configmaps",
        "-n",
        &site.ns,
        "-l",
        "owner=helm,name=kant",
        "-o",
        "name",
    ]);
    assert_eq!(records.lines().count(), 2, "{records}");
    let secrets = site.cluster.kubectl(&[
        "get",
        "secrets",
        "-n",
        &site.ns,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]);
    assert_eq!(secrets.trim(), "", "no Secret records: {secrets}");
}

/// Helm installs the `crds/` of enabled subcharts too; so does the upgrade: the addon's CRD is
/// applied when `addon.enabled` is true, and not when it is false.
#[test]
fn enabled_subcharts_crds_are_applied() {
    let Some(site) = Site::new("enabled_subcharts_crds_are_applied") else {
        return;
    };
    let helm = kantup_test_support::helm3();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let with_addon = KantChart {
        addon: true,
        ..KantChart::v050(&site.group)
    };
    let chart = with_addon.write(site.dir.path());
    let sprockets = format!("sprockets.{}", site.group);

    let plan: Value = serde_json::from_str(&ok(
        site.upgrade(&chart, &helm, &["--plan", "-o", "json"]),
        "plan with the addon disabled",
    ))
    .unwrap();
    let names: Vec<&str> = plan["crds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&sprockets.as_str()), "{names:?}");

    ok(
        site.upgrade(&chart, &helm, &["--yes", "--set", "addon.enabled=true"]),
        "upgrade with the addon enabled",
    );
    let established = site.cluster.kubectl(&[
        "get",
        "crd",
        &sprockets,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(established, "True");
}

/// A re-run after a successful upgrade from a bundle does nothing, with helm 3.17 and 4.1: the
/// same command twice more leaves the revision count as it was and says so. The chart has a
/// subchart it lists under `dependencies` (disabled, then enabled): Helm stores the parent's
/// defaults with the subchart's folded in, which a comparison with `values.yaml` as written
/// took for changed defaults, so every re-run ran `helm upgrade` again. Whenever helm does run,
/// the plan and the output say why.
#[test]
fn a_second_identical_upgrade_from_a_bundle_does_nothing() {
    let Some(site) = Site::new("a_second_identical_upgrade_from_a_bundle_does_nothing") else {
        return;
    };
    for (name, helm) in helms() {
        let site = Site {
            cluster: site.cluster,
            ns: site.cluster.namespace("again"),
            group: format!("{}.kant.test", unique_name("again")),
            dir: tempfile::tempdir().unwrap(),
        };
        site.helm_install(
            &helm,
            &KantChart::v040(&site.group).write(site.dir.path()),
            &[],
        );
        let bundle = KantChart {
            addon: true,
            ..KantChart::v050(&site.group)
        }
        .bundle(site.dir.path());
        for (n, extra) in [&[][..], &["--set", "addon.enabled=true"][..]]
            .into_iter()
            .enumerate()
        {
            let mut args = vec!["--image-registry", REGISTRY, "--yes"];
            args.extend_from_slice(extra);
            let before = site.revision(&helm);
            let plan: Value = serde_json::from_str(&ok(
                site.upgrade(
                    &bundle,
                    &helm,
                    &[&args[..], &["--plan", "-o", "json"]].concat(),
                ),
                name,
            ))
            .unwrap();
            assert_eq!(plan["up_to_date"], false, "{name}: {plan}");
            let reasons = plan["helm_reasons"].as_array().unwrap();
            let first = if n == 0 {
                serde_json::json!({"reason": "chart-version", "deployed": "kant 0.4.0", "new": "kant 0.5.0"})
            } else {
                serde_json::json!({"reason": "values", "paths": ["addon"]})
            };
            assert!(reasons.contains(&first), "{name}: {plan}");
            let upgraded = ok(site.upgrade(&bundle, &helm, &args), name);
            assert!(upgraded.contains("helm runs: "), "{name}: {upgraded}");
            assert!(
                upgraded.contains(&format!("revision {before} -> {}", before + 1)),
                "{name}: {upgraded}"
            );
            for run in ["second", "third"] {
                let again = ok(site.upgrade(&bundle, &helm, &args), run);
                assert!(
                    again.contains(
                        "already runs kant 0.5.0 with these values and CRDs: nothing to do"
                    ),
                    "{name}, {run} run: {again}"
                );
                assert_eq!(
                    site.revision(&helm),
                    before + 1,
                    "{name}, {run} run: {again}"
                );
            }
            let plan: Value = serde_json::from_str(&ok(
                site.upgrade(
                    &bundle,
                    &helm,
                    &[&args[..], &["--plan", "-o", "json"]].concat(),
                ),
                name,
            ))
            .unwrap();
            assert_eq!(plan["up_to_date"], true, "{name}: {plan}");
            assert_eq!(
                plan["helm_reasons"],
                serde_json::json!([]),
                "{name}: {plan}"
            );
        }
    }
}

/// Bad input fails before anything changes, each error naming what is wrong: a values file
/// that is not YAML, a bad `--set`, a CRD file that is not a CRD, a corrupt bundle, a
/// registry that is not a host, a timeout that is not a duration.
#[test]
fn bad_inputs_fail_before_anything_changes() {
    let Some(site) = Site::new("bad_inputs_fail_before_anything_changes") else {
        return;
    };
    let helm = kantup_test_support::helm3();
    site.helm_install(
        &helm,
        &KantChart::v040(&site.group).write(site.dir.path()),
        &[],
    );
    let chart = KantChart::v050(&site.group).write(site.dir.path());
    let bad_values = site.path("bad-values.yaml");
    std::fs::write(&bad_values, "replicas: [1, 2\nimage: {\n").unwrap();
    let not_crd = KantChart::v050(&site.group).write(&site.path("not-crd"));
    std::fs::write(
        not_crd.join("crds/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let corrupt = site.path("corrupt.bundle.tar");
    let mut bytes = std::fs::read(KantChart::v050(&site.group).bundle(&site.path("b"))).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, bytes).unwrap();
    let widgets_rv = resource_version(
        site.cluster,
        "crd",
        &format!("widgets.{}", site.group),
        None,
    );

    let bad_values_arg = bad_values.display().to_string();
    let cases: Vec<(&str, &Path, Vec<&str>, &str)> = vec![
        (
            "bad values file",
            &chart,
            vec!["-f", &bad_values_arg],
            "bad-values.yaml",
        ),
        ("bad --set", &chart, vec!["--set", "a.b[=1"], "a.b[=1"),
        (
            "CRD file that is not a CRD",
            &not_crd,
            vec![],
            "crds/cm.yaml",
        ),
        ("corrupt bundle", &corrupt, vec![], "corrupt.bundle.tar"),
        (
            "bad --image-registry",
            &chart,
            vec!["--image-registry", "a,b"],
            "--image-registry",
        ),
        (
            "bad --timeout",
            &chart,
            vec!["--timeout", "soon"],
            "\"soon\" is not a duration",
        ),
    ];
    for (what, source, extra, needle) in cases {
        let mut args = vec!["--yes"];
        args.extend(extra);
        let output = site.upgrade(source, &helm, &args);
        let all = text(&output);
        assert!(!output.status.success(), "{what}: {all}");
        assert!(
            all.contains(needle),
            "{what}: error should name {needle:?}: {all}"
        );
        assert_eq!(site.revision(&helm), 1, "{what}");
        assert!(
            site.backup_files().is_empty(),
            "{what}: {:?}",
            site.backup_files()
        );
    }
    assert_eq!(
        resource_version(
            site.cluster,
            "crd",
            &format!("widgets.{}", site.group),
            None
        ),
        widgets_rv
    );
}
