//! Benchmark: a fleet upgrade at scale. Three real API servers (no controller-manager), ten
//! releases on each (one per namespace), all listed in one fleet file. The chart is a small one
//! whose only object is a ConfigMap, so the readiness gate runs and passes at once without a
//! kubelet. Measured: 30 sequential single-cluster `kantup upgrade` runs (to version 2) against
//! one fleet run of `kantup upgrade --fleet --max-parallel 8` (to version 3), wall time of each,
//! and peak RSS: kantup's own (its `VmHWM`, sampled while it runs; the goal is under 150 MiB) and
//! the largest process of the run (`/usr/bin/time -v`, which counts the helm processes kantup
//! starts too).
//!
//! `cargo bench -p kantup --bench fleet_scale` (`KANTUP_BENCH_FLEET_PER_SERVER`, default 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kantup_test_support::gnu_time;
use kantup_test_support::kube_cluster::KubeCluster;

fn chart(dir: &Path, version: u32) -> PathBuf {
    let chart = dir.join(format!("app-{version}"));
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: app\nversion: 0.{version}.0\n"),
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: {{ .Chart.Version | quote }}\n",
    )
    .unwrap();
    chart
}

/// One run: its output, kantup's own peak RSS and the largest process's (helm included), KiB.
struct Run {
    output: Output,
    own_peak_kib: u64,
    tree_peak_kib: u64,
}

/// `VmHWM` (KiB) of the first child of `parent`, 0 while there is none or it has exited.
fn child_hwm_kib(parent: u32) -> u64 {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default();
    let Some(child) = children.split_whitespace().next() else {
        return 0;
    };
    std::fs::read_to_string(format!("/proc/{child}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn kantup(kubeconfig: &Path, dir: &Path, args: &[&str]) -> Run {
    let child = Command::new(gnu_time::PATH)
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .args([
            "--release",
            "app",
            "--yes",
            "--skip-image-check",
            "--timeout",
            "60s",
        ])
        .arg("--backup-dir")
        .arg(dir.join("backups"))
        .arg("--helm")
        .arg(kantup_test_support::helm4())
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", dir.join("helm-config"))
        .env("HELM_DATA_HOME", dir.join("helm-data"))
        .env_remove("HELM_DRIVER")
        .env_remove("KANTUP_NO_WAIT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kantup");
    // GNU time's figure is the largest of kantup and the helm processes it waited for, so
    // kantup's own peak is read from its /proc status (a high-water mark) while it runs.
    let time_pid = child.id();
    let finished = AtomicBool::new(false);
    let (output, own_peak_kib) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !finished.load(Ordering::Relaxed) {
                peak = peak.max(child_hwm_kib(time_pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let output = child.wait_with_output().expect("wait for kantup");
        finished.store(true, Ordering::Relaxed);
        (output, sampler.join().unwrap())
    });
    assert!(
        output.status.success(),
        "kantup {args:?} failed: {}",
        common::text(&output)
    );
    let tree_peak_kib = gnu_time::max_rss_kib(&String::from_utf8_lossy(&output.stderr));
    Run {
        output,
        own_peak_kib,
        tree_peak_kib,
    }
}

fn main() {
    let per_server: usize = std::env::var("KANTUP_BENCH_FLEET_PER_SERVER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    assert!(
        Path::new(gnu_time::PATH).is_file(),
        "/usr/bin/time is required (apt-get install time)"
    );
    let dir = tempfile::tempdir().unwrap();
    let servers = [
        KubeCluster::start(),
        KubeCluster::start(),
        KubeCluster::start(),
    ];
    let kubeconfig = dir.path().join("kubeconfig");
    common::combined_kubeconfig(
        &kubeconfig,
        &[
            ("s0", &servers[0]),
            ("s1", &servers[1]),
            ("s2", &servers[2]),
        ],
    );
    let mut fleet = String::from("clusters:\n");
    let mut releases = Vec::new();
    for server in 0..3 {
        for n in 0..per_server {
            let (context, namespace) = (format!("s{server}"), format!("app-{n}"));
            fleet.push_str(&format!(
                "  - {{name: {context}-{namespace}, kubeconfig: kubeconfig, context: {context}, namespace: {namespace}}}\n"
            ));
            releases.push((context, namespace));
        }
    }
    let fleet_file = dir.path().join("fleet.yaml");
    std::fs::write(&fleet_file, fleet).unwrap();
    let fleet_arg = fleet_file.to_str().unwrap();
    let (v1, v2, v3) = (
        chart(dir.path(), 1),
        chart(dir.path(), 2),
        chart(dir.path(), 3),
    );

    // Untimed: the releases, installed by a fleet run.
    kantup(
        &kubeconfig,
        dir.path(),
        &[
            "upgrade",
            v1.to_str().unwrap(),
            "-n",
            "default",
            "--fleet",
            fleet_arg,
            "--create-namespace",
            "--max-parallel",
            "8",
        ],
    );

    let started = Instant::now();
    let (mut sequential_own, mut sequential_tree) = (0, 0);
    for (context, namespace) in &releases {
        let run = kantup(
            &kubeconfig,
            dir.path(),
            &[
                "upgrade",
                v2.to_str().unwrap(),
                "-n",
                namespace,
                "--context",
                context,
            ],
        );
        sequential_own = sequential_own.max(run.own_peak_kib);
        sequential_tree = sequential_tree.max(run.tree_peak_kib);
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    let fleet = kantup(
        &kubeconfig,
        dir.path(),
        &[
            "upgrade",
            v3.to_str().unwrap(),
            "-n",
            "default",
            "--fleet",
            fleet_arg,
            "--max-parallel",
            "8",
            "-o",
            "json",
        ],
    );
    let fleet_time = started.elapsed();
    let report: serde_json::Value =
        serde_json::from_slice(&fleet.output.stdout).expect("the fleet's JSON report");
    let done = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "done" && c["revision"] == 3)
        .count();
    assert_eq!(done, releases.len(), "{report}");
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{} releases on 3 servers: {} sequential single-cluster runs {:.1}s; one fleet run \
         --max-parallel 8 {:.1}s ({:.2}x faster)",
        releases.len(),
        releases.len(),
        sequential.as_secs_f64(),
        fleet_time.as_secs_f64(),
        sequential.as_secs_f64() / fleet_time.as_secs_f64(),
    );
    println!(
        "peak RSS: kantup itself {:.1} MiB in the fleet run, {:.1} MiB in a single run; \
         the largest process, helm included, {:.1} MiB and {:.1} MiB",
        mib(fleet.own_peak_kib),
        mib(sequential_own),
        mib(fleet.tree_peak_kib),
        mib(sequential_tree),
    );
}
