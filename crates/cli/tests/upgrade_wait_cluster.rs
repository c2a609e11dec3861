//! `kantup upgrade` waiting for readiness, `--rollback-on-failure`, `kantup rollback`'s wait and
//! `kantup status`, against the real kube-apiserver with the real kube-controller-manager (the
//! test acts as the kubelet, `kantup_test_support::kubelet`) and the real helm 3.17 and 4.1.
//! The tests share one cluster, each in its own namespace with its own CRD group, and use
//! short timeouts.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{KANT_IMAGE_REPOSITORY, KantChart, REGISTRY, crd_spec, text};
use kantup_test_support::kube_cluster::{
    KubeCluster, cluster_with_controllers_or_skip, unique_name,
};
use kantup_test_support::kubelet::Kubelet;
use serde_json::Value;

struct Site {
    cluster: &'static KubeCluster,
    ns: String,
    group: String,
    dir: tempfile::TempDir,
    helm: PathBuf,
}

impl Site {
    fn new(test: &str, helm: PathBuf) -> Option<Self> {
        let cluster = cluster_with_controllers_or_skip(test)?;
        Some(Self {
            ns: cluster.namespace("wait"),
            group: format!("{}.kant.test", unique_name("w")),
            cluster,
            dir: tempfile::tempdir().unwrap(),
            helm,
        })
    }

    /// `helm install kant` of kant 0.4.0 with 2 replicas, images from [`REGISTRY`].
    fn install_040(&self) {
        let chart = KantChart::v040(&self.group).write(self.dir.path());
        self.cluster.helm(
            &self.helm,
            &[
                "install",
                "kant",
                chart.to_str().unwrap(),
                "-n",
                &self.ns,
                "--set",
                "replicas=2",
                "--set",
                &format!("global.imageRegistry={REGISTRY}"),
            ],
        );
    }

    /// `kantup ARGS --release kant -n NS ...` with waiting on (unlike `common::kantup`).
    fn kantup(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args(args)
            .args(["--release", "kant", "-n", &self.ns])
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .env("HELM_CACHE_HOME", self.dir.path().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.path().join("helm-data"))
            .env_remove("HELM_DRIVER")
            .env_remove("KANTUP_NO_WAIT")
            // The chart's images are at a private address: the kubelet here pulls nothing.
            .env("KANTUP_SKIP_IMAGE_CHECK", "true")
            .output()
            .expect("run kantup")
    }

    /// `kantup upgrade` to kant 0.5.0 with `--timeout timeout` and `extra`.
    fn upgrade_050(&self, timeout: &str, extra: &[&str]) -> Output {
        let chart = KantChart::v050(&self.group).write(self.dir.path());
        let backups = self.dir.path().join("backups");
        let mut args = vec![
            "upgrade",
            chart.to_str().unwrap(),
            "--yes",
            "--timeout",
            timeout,
            "--image-registry",
            REGISTRY,
            "--backup-dir",
            backups.to_str().unwrap(),
            "--helm",
            self.helm.to_str().unwrap(),
            // The new revision runs a new image tag, as a real upgrade does, so the test's
            // kubelet can tell its pods from the old revision's (`new_image_missing`).
            "--set",
            "image.tag=v0.5.0",
        ];
        args.extend_from_slice(extra);
        self.kantup(&args)
    }

    fn history(&self) -> Vec<(u64, String, String)> {
        let out = self.cluster.helm(
            &self.helm,
            &["history", "kant", "-n", &self.ns, "-o", "json"],
        );
        let history: Value = serde_json::from_str(&out).unwrap();
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["revision"].as_u64().unwrap(),
                    r["status"].as_str().unwrap().to_string(),
                    r["chart"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Runs `body` while a kubelet serves the namespace with `act`, then stops it.
    fn with_kubelet<T>(
        &self,
        act: impl Fn(&Kubelet, &str, &Value) + Sync,
        body: impl FnOnce() -> T,
    ) -> T {
        let stop = AtomicBool::new(false);
        let kubelet = Kubelet::new(self.cluster);
        let result = std::thread::scope(|scope| {
            let served = scope.spawn(|| kubelet.serve(&self.ns, &stop, &act));
            let result = body();
            stop.store(true, Ordering::Relaxed);
            served.join().expect("the kubelet thread");
            result
        });
        kubelet.release_pods(&self.ns);
        result
    }
}

fn image_of(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

/// Every pod runs and is ready.
fn all_ready(kubelet: &Kubelet, pod: &str, value: &Value) {
    let ns = value["metadata"]["namespace"].as_str().unwrap();
    kubelet.run_ready(ns, pod);
}

/// Pods of 0.5.0 cannot pull their image; the others run.
fn new_image_missing(kubelet: &Kubelet, pod: &str, value: &Value) {
    let ns = value["metadata"]["namespace"].as_str().unwrap();
    if image_of(value).ends_with(":v0.5.0") {
        kubelet.image_pull_back_off(ns, pod);
    } else {
        kubelet.run_ready(ns, pod);
    }
}

fn helms() -> [(&'static str, PathBuf); 2] {
    [
        ("helm 3.17", kantup_test_support::helm3()),
        ("helm 4.1", kantup_test_support::helm4()),
    ]
}

#[test]
fn an_upgrade_whose_pods_become_ready_exits_0_and_status_agrees() {
    for (name, helm) in helms() {
        let Some(site) = Site::new("upgrade_ready", helm) else {
            return;
        };
        let (upgrade, status) = site.with_kubelet(all_ready, || {
            site.install_040();
            let upgrade = site.upgrade_050("60s", &[]);
            (upgrade, site.kantup(&["status", "-o", "json"]))
        });
        let all = text(&upgrade);
        assert_eq!(upgrade.status.code(), Some(0), "{name}: {all}");
        assert!(all.contains("all 4 objects are ready"), "{name}: {all}");
        assert!(
            all.contains("Deployment/kant-controller Current"),
            "{name}: live lines: {all}"
        );
        assert_eq!(status.status.code(), Some(0), "{name}: {}", text(&status));
        let report: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(report["revision"], 2, "{name}: {report}");
        assert_eq!(report["ready"], true, "{name}: {report}");
        let kinds: Vec<&str> = report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["object"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ConfigMap", "Deployment"], "{name}: {report}");
    }
}

#[test]
fn an_image_that_cannot_be_pulled_is_named_and_the_release_left_as_it_is() {
    let Some(site) = Site::new("upgrade_image_pull", kantup_test_support::helm4()) else {
        return;
    };
    let image = format!("{REGISTRY}/{KANT_IMAGE_REPOSITORY}:v0.5.0");
    let (upgrade, status, revisions_after_status, rollback) =
        site.with_kubelet(new_image_missing, || {
            site.install_040();
            let upgrade = site.upgrade_050("8s", &[]);
            let status = site.kantup(&["status"]);
            let revisions_after_status = site.history();
            // The way back it printed, which waits for the old revision too.
            let backups = site.dir.path().join("backups");
            let rollback = site.kantup(&[
                "rollback",
                "--yes",
                "--timeout",
                "30s",
                "--backup-dir",
                backups.to_str().unwrap(),
                "--helm",
                site.helm.to_str().unwrap(),
            ]);
            (upgrade, status, revisions_after_status, rollback)
        });
    let all = text(&upgrade);
    assert_eq!(upgrade.status.code(), Some(5), "{all}");
    let stdout = String::from_utf8_lossy(&upgrade.stdout);
    assert!(
        stdout.contains("Deployment/kant-controller  InProgress"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ImagePullBackOff {image}: Back-off pulling image \"{image}\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("is not ready after 8s; the release is left as it is"),
        "{stdout}"
    );
    assert!(
        stdout.contains("way back: to return to revision 1"),
        "{stdout}"
    );
    // Left as it is: revision 2 deployed (before the rollback below).
    let history = &revisions_after_status;
    assert_eq!(history.len(), 2, "status changes nothing: {history:?}");
    assert_eq!(history[1].0, 2, "{history:?}");
    assert_eq!(history[1].1, "deployed", "{history:?}");
    // `kantup status` sees the same, changing nothing.
    assert_eq!(status.status.code(), Some(5), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("ImagePullBackOff"),
        "{}",
        text(&status)
    );
    let rolled_back = text(&rollback);
    assert_eq!(rollback.status.code(), Some(0), "{rolled_back}");
    assert!(
        rolled_back.contains("Deployment/kant-controller Current"),
        "{rolled_back}"
    );
    assert!(
        rolled_back.contains("all 3 objects are ready"),
        "{rolled_back}"
    );
    assert_eq!(site.history().len(), 3);
}

#[test]
fn pods_never_scheduled_time_out_naming_the_deployment() {
    let Some(site) = Site::new("upgrade_unscheduled", kantup_test_support::helm3()) else {
        return;
    };
    site.install_040();
    let upgrade = site.upgrade_050("4s", &["-o", "json"]);
    assert_eq!(upgrade.status.code(), Some(5), "{}", text(&upgrade));
    let result: Value = serde_json::from_slice(&upgrade.stdout).unwrap();
    assert_eq!(result["revision"], 2);
    let readiness = &result["readiness"];
    assert_eq!(readiness["ready"], false, "{result}");
    assert_eq!(readiness["timed_out"], true, "{result}");
    let deployment = readiness["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"]["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deployment["object"]["name"], "kant-controller");
    assert_eq!(deployment["status"], "InProgress", "{deployment}");
    let details: Vec<&str> = deployment["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("Pending: not scheduled to a node yet")),
        "{deployment}"
    );
}

#[test]
fn rollback_on_failure_restores_the_previous_chart_and_its_crds() {
    for (name, helm) in helms() {
        let Some(site) = Site::new("upgrade_rollback_on_failure", helm) else {
            return;
        };
        let widgets = KantChart::v040(&site.group).widgets();
        let (upgrade, crd_before) = site.with_kubelet(new_image_missing, || {
            site.install_040();
            let crd_before = crd_spec(site.cluster, &widgets);
            (
                site.upgrade_050("10s", &["--rollback-on-failure"]),
                crd_before,
            )
        });
        let all = text(&upgrade);
        eprintln!("{name}:\n{all}");
        assert_eq!(upgrade.status.code(), Some(5), "{name}: {all}");
        let stdout = String::from_utf8_lossy(&upgrade.stdout);
        assert!(
            stdout.contains("rolling back to revision 1 (--rollback-on-failure)"),
            "{name}: {stdout}"
        );
        assert!(
            stdout.contains("back to revision 1: new revision 3, chart 0.4.0"),
            "{name}: {stdout}"
        );
        // The rolled-back revision was waited for too, and is ready.
        assert!(
            stdout.trim_end().ends_with("objects are ready"),
            "{name}: {stdout}"
        );
        let history = site.history();
        assert_eq!(
            history.last().unwrap(),
            &(3, "deployed".to_string(), "kant-0.4.0".to_string()),
            "{name}: {history:?}"
        );
        assert_eq!(
            crd_spec(site.cluster, &widgets),
            crd_before,
            "{name}: CRD as before"
        );
        let gadgets = KantChart::v050(&site.group).gadgets();
        assert!(
            !site
                .cluster
                .kubectl_output(&["get", "crd", &gadgets], None)
                .status
                .success(),
            "{name}: the CRD the upgrade added is gone"
        );
    }
}

#[test]
fn no_wait_skips_the_wait() {
    let Some(site) = Site::new("upgrade_no_wait", kantup_test_support::helm4()) else {
        return;
    };
    site.install_040();
    let upgrade = site.upgrade_050("5m", &["--no-wait"]);
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert!(
        !text(&upgrade).contains("waiting up to"),
        "{}",
        text(&upgrade)
    );
}

#[test]
fn rollback_on_failure_after_helm_fails_restores_the_previous_chart() {
    let Some(site) = Site::new("upgrade_helm_fails_rollback", kantup_test_support::helm3()) else {
        return;
    };
    let upgrade = site.with_kubelet(all_ready, || {
        site.install_040();
        let chart = KantChart {
            broken_template: true,
            ..KantChart::v050(&site.group)
        }
        .write(site.dir.path());
        let backups = site.dir.path().join("backups");
        site.kantup(&[
            "upgrade",
            chart.to_str().unwrap(),
            "--yes",
            "--timeout",
            "30s",
            "--image-registry",
            REGISTRY,
            "--backup-dir",
            backups.to_str().unwrap(),
            "--helm",
            site.helm.to_str().unwrap(),
            "--rollback-on-failure",
        ])
    });
    let all = text(&upgrade);
    assert_eq!(upgrade.status.code(), Some(1), "{all}");
    assert!(
        all.contains("rolling back to revision 1 (--rollback-on-failure)"),
        "{all}"
    );
    assert!(all.contains("new revision 3, chart 0.4.0"), "{all}");
    assert!(all.contains("all 3 objects are ready"), "{all}");
    let history = site.history();
    assert_eq!(
        history.last().unwrap(),
        &(3, "deployed".to_string(), "kant-0.4.0".to_string()),
        "{history:?}"
    );
}

/// Differential: on the same objects, helm 4.1's own `--wait` (kstatus) and kantup agree on
/// ready or not ready.
#[test]
fn helm_4_wait_and_kantup_status_agree() {
    for (case, act) in [
        ("all ready", all_ready as fn(&Kubelet, &str, &Value)),
        ("new image missing", new_image_missing),
    ] {
        let helm4 = kantup_test_support::helm4();
        let Some(site) = Site::new("helm_4_wait_agrees", helm4.clone()) else {
            return;
        };
        let (helm_wait, status) = site.with_kubelet(act, || {
            site.install_040();
            let chart = KantChart::v050(&site.group).write(site.dir.path());
            let helm_wait = site.cluster.helm_output(
                &helm4,
                &[
                    "upgrade",
                    "kant",
                    chart.to_str().unwrap(),
                    "-n",
                    &site.ns,
                    "--reuse-values",
                    "--set",
                    "image.tag=v0.5.0",
                    "--wait",
                    "--timeout",
                    "15s",
                ],
            );
            (helm_wait, site.kantup(&["status"]))
        });
        let helm_ready = helm_wait.status.success();
        let kantup_ready = status.status.code() == Some(0);
        assert_eq!(
            helm_ready,
            kantup_ready,
            "{case}: helm 4 --wait: {}\nkantup status: {}",
            String::from_utf8_lossy(&helm_wait.stderr),
            text(&status)
        );
        assert_eq!(helm_ready, case == "all ready", "{case}");
    }
}
