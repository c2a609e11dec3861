//! `kantup upgrade` over a fleet, against three real API servers with the real
//! kube-controller-manager (the test acts as each one's kubelet), one kubeconfig with a context
//! per server, and releases made by the real helm 4.1. One test, so the servers (about 300 MB
//! and 5 s each) serve every case in turn: a canary that never becomes ready leaves the other
//! clusters untouched; a cluster that is down is reported unreachable and the others are
//! upgraded one at a time (`--max-parallel 1`, checked from the report's times); with a fresh
//! server standing in, the re-run upgrades only that one; when helm fails on two clusters (an
//! admission policy refuses their new revisions), `--max-failures 1` goes on past the first
//! and stops at the second, and a failure in a later wave stops the rollout: the clusters not
//! started are listed so (table, live lines, JSON) and keep their revision.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use common::{KantChart, REGISTRY, combined_kubeconfig, text};
use kantup_test_support::kube_cluster::{
    KubeCluster, can_start_local_with_controllers, skip_or_fail,
};
use kantup_test_support::kubelet::Kubelet;
use serde_json::Value;

const NS: &str = "kant-fleet";
const GROUP: &str = "fleet.kant.test";

/// `helm install kant` of kant 0.4.0 (one replica) into [`NS`] of `server`.
fn install_040(server: &KubeCluster, helm: &Path, dir: &Path) {
    server.kubectl(&["create", "namespace", NS]);
    let chart = KantChart::v040(GROUP).write(dir);
    server.helm(
        helm,
        &[
            "install",
            "kant",
            chart.to_str().unwrap(),
            "-n",
            NS,
            "--set",
            &format!("global.imageRegistry={REGISTRY}"),
        ],
    );
}

/// The revisions of the release on `server`.
fn revisions(server: &KubeCluster, helm: &Path) -> usize {
    let out = server.helm(helm, &["history", "kant", "-n", NS, "-o", "json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

/// `kantup upgrade` of kant 0.5.0 over the contexts a, b and c, with `extra`, as JSON.
fn upgrade_fleet(kubeconfig: &Path, dir: &Path, helm: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["-o", "json"];
    args.extend_from_slice(extra);
    let output = kantup_fleet(kubeconfig, dir, helm, &args);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the JSON report ({e}): {}", text(&output)));
    (output, report)
}

/// `kantup upgrade` of kant 0.5.0 over the contexts a, b and c, with `extra`.
fn kantup_fleet(kubeconfig: &Path, dir: &Path, helm: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--context", "a", "--context", "b", "--context", "c"];
    args.extend_from_slice(extra);
    kantup_upgrade(kubeconfig, dir, helm, &args)
}

/// `kantup upgrade` of kant 0.5.0 with `extra` naming the clusters.
fn kantup_upgrade(kubeconfig: &Path, dir: &Path, helm: &Path, extra: &[&str]) -> Output {
    let chart = KantChart::v050(GROUP).write(dir);
    let backups = dir.join("backups");
    std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args([
            "upgrade",
            chart.to_str().unwrap(),
            "--release",
            "kant",
            "-n",
            NS,
            "--yes",
            "--image-registry",
            REGISTRY,
            "--backup-dir",
            backups.to_str().unwrap(),
            "--helm",
            helm.to_str().unwrap(),
            // The new revision runs a new image tag, as a real upgrade does, so the test's
            // kubelet can tell its pods from the old revision's (`act`).
            "--set",
            "image.tag=v0.5.0",
        ])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", dir.join("helm-config"))
        .env("HELM_DATA_HOME", dir.join("helm-data"))
        .env_remove("HELM_DRIVER")
        .env_remove("KANTUP_NO_WAIT")
        // The chart's images are at a private address: the kubelet here pulls nothing.
        .env("KANTUP_SKIP_IMAGE_CHECK", "true")
        .output()
        .expect("run kantup")
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {report}"))
}

fn time(value: &Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().expect("a time")).unwrap()
}

/// Pods of kant 0.5.0 cannot pull their image on the cluster while `broken`; the rest run.
fn act(broken: &AtomicBool) -> impl Fn(&Kubelet, &str, &Value) + Sync + '_ {
    move |kubelet, pod, value| {
        let image = value["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default();
        if broken.load(Ordering::Relaxed) && image.ends_with(":v0.5.0") {
            kubelet.image_pull_back_off(NS, pod);
        } else {
            kubelet.run_ready(NS, pod);
        }
    }
}

#[test]
fn a_fleet_upgrade_gates_on_the_canary_defers_a_cluster_that_is_down_and_resumes() {
    if !can_start_local_with_controllers() {
        skip_or_fail(
            "upgrade_fleet",
            "no API server and controller-manager in .tools/kube: run scripts/install-test-tools.sh",
        );
        return;
    }
    let helm = kantup_test_support::helm4();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("fleet-kubeconfig");
    let (a, b) = (
        KubeCluster::start_with_controllers(),
        KubeCluster::start_with_controllers(),
    );
    let c = KubeCluster::start_with_controllers();
    combined_kubeconfig(&kubeconfig, &[("a", &a), ("b", &b), ("c", &c)]);
    let helm = helm.as_path();
    for server in [&a, &b, &c] {
        install_040(server, helm, dir.path());
    }
    let (a_broken, never) = (AtomicBool::new(true), AtomicBool::new(false));
    let stop_ab = AtomicBool::new(false);
    let (kubelet_a, kubelet_b) = (Kubelet::new(&a), Kubelet::new(&b));
    std::thread::scope(|scope| {
        let served_a = scope.spawn(|| kubelet_a.serve(NS, &stop_ab, act(&a_broken)));
        let served_b = scope.spawn(|| kubelet_b.serve(NS, &stop_ab, act(&never)));
        // A failed assertion below must end the kubelets too, or the scope waits for ever.
        let _stop_ab = StopOnDrop(&stop_ab);

        // 1. The canary a never becomes ready: it is rolled back, b and c are not touched.
        let (canary, report) = while_serving(&c, act(&never), || {
            upgrade_fleet(
                &kubeconfig,
                dir.path(),
                helm,
                &["--canary", "a", "--rollback-on-failure", "--timeout", "20s"],
            )
        });
        let all = text(&canary);
        assert_eq!(canary.status.code(), Some(1), "{all}");
        assert_eq!(cluster(&report, "a")["state"], "rolled_back", "{all}");
        assert_eq!(cluster(&report, "a")["revision"], 3, "{all}");
        assert!(
            cluster(&report, "a")["reason"]
                .as_str()
                .unwrap()
                .contains("is not ready"),
            "{all}"
        );
        for name in ["b", "c"] {
            assert_eq!(cluster(&report, name)["state"], "not_started", "{all}");
            assert!(cluster(&report, name).get("started_at").is_none(), "{all}");
        }
        assert!(
            report["stopped"].as_str().unwrap().contains("the canary a"),
            "{all}"
        );
        assert_eq!(revisions(&b, helm), 1, "b untouched: {all}");
        assert_eq!(revisions(&c, helm), 1, "c untouched: {all}");
        assert_eq!(revisions(&a, helm), 3, "a upgraded then rolled back: {all}");

        // 2. c is down: a and b are upgraded one at a time, c is reported unreachable.
        drop(c);
        a_broken.store(false, Ordering::Relaxed);
        // A canary that cannot be reached gates the others as a failed one does.
        let (gated, report) = upgrade_fleet(&kubeconfig, dir.path(), helm, &["--canary", "c"]);
        let all = text(&gated);
        assert_eq!(gated.status.code(), Some(1), "{all}");
        assert_eq!(cluster(&report, "c")["state"], "unreachable", "{all}");
        for name in ["a", "b"] {
            assert_eq!(cluster(&report, name)["state"], "not_started", "{all}");
        }
        assert_eq!((revisions(&a, helm), revisions(&b, helm)), (3, 1), "{all}");
        let (partial, report) = upgrade_fleet(
            &kubeconfig,
            dir.path(),
            helm,
            &["--max-parallel", "1", "--timeout", "60s"],
        );
        let all = text(&partial);
        assert_eq!(partial.status.code(), Some(1), "{all}");
        assert_eq!(cluster(&report, "a")["state"], "done", "{all}");
        assert_eq!(cluster(&report, "a")["revision"], 4, "{all}");
        assert_eq!(cluster(&report, "b")["state"], "done", "{all}");
        assert_eq!(cluster(&report, "b")["revision"], 2, "{all}");
        assert_eq!(cluster(&report, "c")["state"], "unreachable", "{all}");
        assert!(
            cluster(&report, "c")["reason"]
                .as_str()
                .unwrap()
                .contains("cannot reach the API server https://127.0.0.1:"),
            "{all}"
        );
        let (ca, cb) = (cluster(&report, "a"), cluster(&report, "b"));
        let (a_start, a_end) = (time(&ca["started_at"]), time(&ca["ended_at"]));
        let (b_start, b_end) = (time(&cb["started_at"]), time(&cb["ended_at"]));
        assert!(a_start <= a_end && b_start <= b_end, "{all}");
        assert!(
            a_end <= b_start || b_end <= a_start,
            "--max-parallel 1, yet a and b overlap: {all}"
        );

        // 3. A fresh server stands in for c: the re-run upgrades only c.
        let c = KubeCluster::start_with_controllers();
        combined_kubeconfig(&kubeconfig, &[("a", &a), ("b", &b), ("c", &c)]);
        install_040(&c, helm, dir.path());
        let (rerun, report) = while_serving(&c, act(&never), || {
            upgrade_fleet(
                &kubeconfig,
                dir.path(),
                helm,
                &["--max-parallel", "2", "--timeout", "60s"],
            )
        });
        let all = text(&rerun);
        assert_eq!(rerun.status.code(), Some(0), "{all}");
        for (name, revision) in [("a", 4), ("b", 2), ("c", 2)] {
            let line = cluster(&report, name);
            assert_eq!(line["state"], "done", "{all}");
            assert_eq!(line["revision"], revision, "{name}: {all}");
        }
        for name in ["a", "b"] {
            let line = cluster(&report, name);
            assert!(
                line.get("started_at").is_none(),
                "{name} was touched: {all}"
            );
            assert!(
                line["reason"].as_str().unwrap().contains("up to date"),
                "{all}"
            );
        }
        assert!(cluster(&report, "c").get("started_at").is_some(), "{all}");
        assert_eq!((revisions(&a, helm), revisions(&b, helm)), (4, 2), "{all}");
        assert_eq!(revisions(&c, helm), 2, "{all}");

        // The plan table says every cluster is up to date; a canary must be in the fleet.
        let plan = kantup_fleet(&kubeconfig, dir.path(), helm, &["--plan"]);
        let all = text(&plan);
        assert_eq!(plan.status.code(), Some(0), "{all}");
        let stdout = String::from_utf8_lossy(&plan.stdout);
        for name in ["a", "b", "c"] {
            assert!(
                stdout.lines().any(
                    |l| l.starts_with(&format!("{name}  ")) && l.contains("up to date (0.5.0)")
                ),
                "{all}"
            );
        }
        // A context the kubeconfig does not have is a mistake, not a cluster that is down.
        let (mistake, report) =
            upgrade_fleet(&kubeconfig, dir.path(), helm, &["--context", "nope"]);
        let all = text(&mistake);
        assert_eq!(mistake.status.code(), Some(1), "{all}");
        assert_eq!(cluster(&report, "nope")["state"], "failed", "{all}");
        assert!(
            cluster(&report, "nope")["reason"]
                .as_str()
                .unwrap()
                .contains("the kubeconfig"),
            "{all}"
        );
        // A fleet file, its clusters picked by label, each with its own namespace when given.
        c.kubectl(&["create", "namespace", "elsewhere"]);
        let fleet = dir.path().join("fleet.yaml");
        std::fs::write(
            &fleet,
            "clusters:\n\
             - {name: north-a, kubeconfig: fleet-kubeconfig, context: a, labels: {site: north}}\n\
             - {name: north-c, kubeconfig: fleet-kubeconfig, context: c, namespace: elsewhere, labels: {site: north}}\n\
             - {name: south-b, context: b, labels: {site: south}}\n",
        )
        .unwrap();
        let picked = kantup_upgrade(
            &kubeconfig,
            dir.path(),
            helm,
            &[
                "--fleet",
                fleet.to_str().unwrap(),
                "--selector",
                "site=north",
                "--plan",
                "-o",
                "json",
            ],
        );
        let all = text(&picked);
        let plans: Value = serde_json::from_slice(&picked.stdout).expect(&all);
        let names: Vec<&str> = plans
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["north-a", "north-c"], "{all}");
        assert_eq!(plans[0]["plan"]["up_to_date"], true, "{all}");
        assert_eq!(plans[1]["plan"]["namespace"], "elsewhere", "{all}");
        assert_eq!(plans[1]["plan"]["install"], true, "{all}");
        let unknown = kantup_fleet(&kubeconfig, dir.path(), helm, &["--canary", "d"]);
        assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
        assert!(
            text(&unknown).contains("--canary d: no such cluster"),
            "{}",
            text(&unknown)
        );

        // 4. A failure in a wave. Helm cannot store a new revision on a or b any more (a real
        // admission policy of their API servers refuses it), a new value makes every cluster
        // need an upgrade. With --max-failures 1 the rollout goes on past a, stops after b, and
        // c is left untouched: in the table and in the live lines (plain, stderr is no
        // terminal), one line per state change.
        refuse_new_revisions(&a);
        refuse_new_revisions(&b);
        let before = [&a, &b, &c].map(|server| revisions(server, helm));
        let tolerated = kantup_fleet(
            &kubeconfig,
            dir.path(),
            helm,
            &[
                "--max-parallel",
                "1",
                "--max-failures",
                "1",
                "--set",
                "fleetRun=4",
            ],
        );
        let all = text(&tolerated);
        assert_eq!(tolerated.status.code(), Some(1), "{all}");
        let table = String::from_utf8_lossy(&tolerated.stdout);
        for (name, state) in [("a", "failed"), ("b", "failed"), ("c", "not started")] {
            assert!(
                table.lines().any(|line| {
                    let mut words = line.split_whitespace();
                    words.next() == Some(name)
                        && words.collect::<Vec<_>>().join(" ").starts_with(state)
                }),
                "{name} is not {state} in the table: {all}"
            );
        }
        assert!(
            table.contains("the rollout stopped: 2 cluster(s) failed, more than --max-failures 1"),
            "{all}"
        );
        let stderr = String::from_utf8_lossy(&tolerated.stderr);
        for (name, states) in [
            ("a", &["planned", "upgrading", "failed"][..]),
            ("b", &["planned", "upgrading", "failed"]),
            ("c", &["planned", "not started"]),
        ] {
            assert_eq!(live_states(&stderr, name), states, "{all}");
        }
        assert!(
            stderr.contains("refuses new helm revisions"),
            "the failure's reason is in a's line: {all}"
        );
        assert_eq!(
            [&a, &b, &c].map(|server| revisions(server, helm)),
            before,
            "{all}"
        );

        // A failure in a later wave stops the rollout (--max-failures 0): c (first) is
        // upgraded, b fails, a is not started and keeps its revision.
        let (stopped, report) = while_serving(&c, act(&never), || {
            let output = kantup_upgrade(
                &kubeconfig,
                dir.path(),
                helm,
                &[
                    "--context",
                    "c",
                    "--context",
                    "b",
                    "--context",
                    "a",
                    "--max-parallel",
                    "1",
                    "--timeout",
                    "60s",
                    "--set",
                    "fleetRun=4",
                    "-o",
                    "json",
                ],
            );
            let report: Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("the JSON report ({e}): {}", text(&output)));
            (output, report)
        });
        let all = text(&stopped);
        assert_eq!(stopped.status.code(), Some(1), "{all}");
        assert_eq!(cluster(&report, "c")["state"], "done", "{all}");
        assert_eq!(cluster(&report, "c")["revision"], 3, "{all}");
        assert_eq!(cluster(&report, "b")["state"], "failed", "{all}");
        assert_eq!(cluster(&report, "a")["state"], "not_started", "{all}");
        assert!(cluster(&report, "a").get("started_at").is_none(), "{all}");
        assert!(
            report["stopped"]
                .as_str()
                .unwrap()
                .contains("1 cluster(s) failed, more than --max-failures 0"),
            "{all}"
        );
        assert_eq!(revisions(&a, helm), before[0], "a untouched: {all}");
        assert_eq!(revisions(&c, helm), before[2] + 1, "{all}");

        stop_ab.store(true, Ordering::Relaxed);
        served_a.join().unwrap();
        served_b.join().unwrap();
    });
    kubelet_a.release_pods(NS);
    kubelet_b.release_pods(NS);
}

/// Runs `f` while a test kubelet serves `server`'s pods with `act`, then stops it (also when `f`
/// panics) and releases the pods it bound.
fn while_serving<T>(
    server: &KubeCluster,
    act: impl Fn(&Kubelet, &str, &Value) + Send,
    f: impl FnOnce() -> T,
) -> T {
    let stop = AtomicBool::new(false);
    let kubelet = Kubelet::new(server);
    let result = std::thread::scope(|scope| {
        let (kubelet, stop_ref) = (&kubelet, &stop);
        scope.spawn(move || kubelet.serve(NS, stop_ref, act));
        let _stop = StopOnDrop(&stop);
        f()
    });
    kubelet.release_pods(NS);
    result
}

/// Sets its flag when dropped, also while a panic unwinds: a test kubelet serving in a scoped
/// thread stops, so a failed assertion fails the test instead of hanging it.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Makes `server` refuse every new helm revision (helm stores each as a Secret labelled
/// `owner: helm`) with a ValidatingAdmissionPolicy, and waits until it is in force.
fn refuse_new_revisions(server: &KubeCluster) {
    server.apply_yaml(
        "apiVersion: admissionregistration.k8s.io/v1\n\
         kind: ValidatingAdmissionPolicy\n\
         metadata: {name: no-new-helm-revisions}\n\
         spec:\n\
         \x20 failurePolicy: Fail\n\
         \x20 matchConstraints:\n\
         \x20   resourceRules:\n\
         \x20   - {apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [secrets]}\n\
         \x20 validations:\n\
         \x20 - expression: \"!has(object.metadata.labels) || !('owner' in object.metadata.labels) || object.metadata.labels['owner'] != 'helm'\"\n\
         \x20   message: the fleet test refuses new helm revisions here\n\
         ---\n\
         apiVersion: admissionregistration.k8s.io/v1\n\
         kind: ValidatingAdmissionPolicyBinding\n\
         metadata: {name: no-new-helm-revisions}\n\
         spec: {policyName: no-new-helm-revisions, validationActions: [Deny]}\n",
    );
    let probe = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: probe, namespace: {NS}, labels: {{owner: helm}}}}\n"
    );
    for _ in 0..100 {
        let out = server.kubectl_output(&["apply", "--dry-run=server", "-f", "-"], Some(&probe));
        if String::from_utf8_lossy(&out.stderr).contains("refuses new helm revisions") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the admission policy is not in force after 20 s");
}

/// The states the plain live lines (`cluster NAME: STATE[ (revision N)][: reason]`) gave
/// `name`, in order.
fn live_states(stderr: &str, name: &str) -> Vec<String> {
    let prefix = format!("cluster {name}: ");
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let end = [rest.find(" ("), rest.find(": ")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}
