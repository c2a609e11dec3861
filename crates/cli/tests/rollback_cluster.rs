//! `kantup rollback` against the real API server with the real helm: kant 0.4.0 -> 0.5.0 ->
//! rollback leaves the release, its values and its CRDs as 0.4.0 had them, with custom objects
//! of the old version intact; a rollback that would drop a CRD version objects are stored in
//! is refused before anything changes.

mod common;

use std::path::{Path, PathBuf};

use common::{KantChart, REGISTRY, crd_spec, kantup, ok, resource_version, text};
use kantup_test_support::kube_cluster::{KubeCluster, cluster_or_skip, unique_name};
use serde_json::Value;

struct Site {
    cluster: &'static KubeCluster,
    ns: String,
    group: String,
    dir: tempfile::TempDir,
    helm: PathBuf,
}

impl Site {
    fn new(test: &str) -> Option<Self> {
        let cluster = cluster_or_skip(test)?;
        Some(Self {
            ns: cluster.namespace("rollback"),
            group: format!("{}.kant.test", unique_name("rb")),
            cluster,
            dir: tempfile::tempdir().unwrap(),
            helm: kantup_test_support::helm3(),
        })
    }

    fn kantup(&self, args: &[&str]) -> std::process::Output {
        let backups = self.dir.path().join("backups");
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--release",
            "kant",
            "-n",
            &self.ns,
            "--backup-dir",
            backups.to_str().unwrap(),
            "--helm",
            self.helm.to_str().unwrap(),
        ]);
        kantup(self.cluster.kubeconfig(), self.dir.path(), &all)
    }

    fn helm(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", &self.ns]);
        self.cluster.helm(&self.helm, &all)
    }

    fn install_040(&self) {
        let chart = KantChart::v040(&self.group).write(self.dir.path());
        let values = self.dir.path().join("user.yaml");
        std::fs::write(&values, "replicas: 3\nextra:\n  keep: kept\n").unwrap();
        self.helm(&[
            "install",
            "kant",
            chart.to_str().unwrap(),
            "-f",
            values.to_str().unwrap(),
        ]);
    }

    fn widget(&self, version: &str, name: &str, size: u32) {
        self.cluster.apply_yaml(&format!(
            "apiVersion: {}/{version}\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {}\n\
             spec:\n  size: {size}\n",
            self.group, self.ns
        ));
    }
}

fn upgrade_to(site: &Site, chart: &Path) {
    ok(
        site.kantup(&[
            "upgrade",
            chart.to_str().unwrap(),
            "--image-registry",
            REGISTRY,
            "--yes",
        ]),
        "kantup upgrade",
    );
}

#[test]
fn rollback_returns_release_values_and_crds_to_the_old_revision() {
    let Some(site) = Site::new("rollback_returns_release_values_and_crds_to_the_old_revision")
    else {
        return;
    };
    site.install_040();
    site.widget("v1alpha1", "w1", 3);
    let widgets = format!("widgets.{}", site.group);
    let gadgets = format!("gadgets.{}", site.group);
    let before_spec = crd_spec(site.cluster, &widgets);
    let before_values = site.helm(&["get", "values", "kant", "-o", "json"]);
    let before_manifest = site.helm(&["get", "manifest", "kant"]);

    let bundle = KantChart::v050(&site.group).bundle(site.dir.path());
    upgrade_to(&site, &bundle);
    assert_ne!(
        crd_spec(site.cluster, &widgets),
        before_spec,
        "the upgrade changed the CRD"
    );
    let snapshots: Vec<PathBuf> = std::fs::read_dir(site.dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".crds.yaml"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");

    let plan = site.kantup(&["rollback", "--plan", "-o", "json"]);
    let plan: Value = serde_json::from_str(&ok(plan, "rollback --plan")).unwrap();
    assert_eq!(plan["target_revision"], 1, "{plan}");
    assert_eq!(plan["target_chart_version"], "0.4.0", "{plan}");
    assert_eq!(plan["crds"][0]["name"], widgets.as_str(), "{plan}");
    assert_eq!(plan["crds"][0]["action"], "changed", "{plan}");
    assert_eq!(plan["added_crds"][0]["name"], gadgets.as_str(), "{plan}");
    assert_eq!(plan["added_crds"][0]["action"], "delete", "{plan}");
    assert_eq!(plan["blockers"], Value::Array(vec![]), "{plan}");
    assert_eq!(
        site.helm(&["history", "kant", "-o", "json"])
            .matches("revision")
            .count(),
        2
    );

    let done = ok(site.kantup(&["rollback", "--yes"]), "rollback");
    assert!(
        done.contains("back to revision 1: new revision 3, chart 0.4.0"),
        "{done}"
    );
    assert!(
        done.contains(&format!("CRDs restored: {widgets}")),
        "{done}"
    );
    assert!(
        done.contains(&format!("CRDs deleted:  {gadgets}")),
        "{done}"
    );

    let status: Value =
        serde_json::from_str(&site.helm(&["status", "kant", "-o", "json"])).unwrap();
    assert_eq!(status["version"], 3, "{status}");
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    let values: Value =
        serde_json::from_str(&site.helm(&["get", "values", "kant", "-o", "json"])).unwrap();
    assert_eq!(
        values,
        serde_json::from_str::<Value>(&before_values).unwrap()
    );
    assert_eq!(site.helm(&["get", "manifest", "kant"]), before_manifest);
    assert_eq!(
        crd_spec(site.cluster, &widgets),
        before_spec,
        "the CRD is 0.4.0's again"
    );
    assert!(
        !site
            .cluster
            .kubectl_output(&["get", "crd", &gadgets], None)
            .status
            .success(),
        "the CRD 0.5.0 added is gone"
    );
    let size = site.cluster.kubectl(&[
        "get",
        &format!("widgets.v1alpha1.{}", site.group),
        "w1",
        "-n",
        &site.ns,
        "-o",
        "jsonpath={.spec.size}",
    ]);
    assert_eq!(size, "3", "the old version's object is intact");
}

#[test]
fn rollback_refuses_to_drop_a_stored_crd_version() {
    let Some(site) = Site::new("rollback_refuses_to_drop_a_stored_crd_version") else {
        return;
    };
    site.install_040();
    // 0.5.0 makes v1beta1 the storage version; an object written then is stored in it.
    let chart = KantChart::v050(&site.group).write(site.dir.path());
    let crd_file = chart.join("crds/widgets.yaml");
    let crd = std::fs::read_to_string(&crd_file)
        .unwrap()
        .replacen("storage: true", "storage: false", 1)
        .replace(
            "  - name: v1beta1\n    served: true\n    storage: false",
            "  - name: v1beta1\n    served: true\n    storage: true",
        );
    std::fs::write(&crd_file, crd).unwrap();
    upgrade_to(&site, &chart);
    site.widget("v1beta1", "stored-in-beta", 5);
    let gadgets = format!("gadgets.{}", site.group);
    site.cluster.apply_yaml(&format!(
        "apiVersion: {}/v1\nkind: Gadget\nmetadata:\n  name: g1\n  namespace: {}\nspec: {{}}\n",
        site.group, site.ns
    ));
    let widgets = format!("widgets.{}", site.group);
    let stored = site.cluster.kubectl(&[
        "get",
        "crd",
        &widgets,
        "-o",
        "jsonpath={.status.storedVersions}",
    ]);
    assert!(stored.contains("v1beta1"), "{stored}");
    let widgets_rv = resource_version(site.cluster, "crd", &widgets, None);

    let plan = site.kantup(&["rollback", "--plan"]);
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{plan_text}");
    assert!(
        plan_text.contains("would refuse: restoring CustomResourceDefinition"),
        "{plan_text}"
    );
    assert!(
        plan_text.contains("would remove version(s) v1beta1"),
        "{plan_text}"
    );
    assert!(plan_text.contains(&gadgets), "{plan_text}");
    assert!(
        plan_text.contains("keep (created by the upgrade; objects exist"),
        "{plan_text}"
    );

    let refused = site.kantup(&["rollback", "--yes"]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(all.contains("refused; nothing was changed"), "{all}");
    assert!(all.contains("status.storedVersions"), "{all}");
    let status: Value =
        serde_json::from_str(&site.helm(&["status", "kant", "-o", "json"])).unwrap();
    assert_eq!(status["version"], 2, "helm did not run: {status}");
    assert_eq!(
        resource_version(site.cluster, "crd", &widgets, None),
        widgets_rv
    );
}
