//! Benchmark: merging a generated ~1 MiB values tree with 100 `--set` flags under a chart,
//! kantup (in process) against `helm template` (helm 3.17) doing the same, in one run.
//! Prints both times, the ratio and peak memory (kantup: this process's VmHWM; helm: the
//! child's maximum RSS from `/usr/bin/time -v`).
//!
//! `cargo bench -p kantup-helm-values --bench merge`

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use kantup_helm_values::chart::Chart;
use kantup_helm_values::merge::{ValueOptions, render_owned_values_as};
use kantup_helm_values::strvals::HelmVersion;
use kantup_helm_values::value::to_go_json;

const RUNS: u32 = 5;

fn values_file() -> String {
    // ~1 MiB: 560 services x ~1.8 KiB each.
    let mut s = String::new();
    for i in 0..560 {
        let _ = writeln!(s, "svc{i}:");
        let _ = writeln!(
            s,
            "  image: {{registry: docker.io, repository: team/app{i}, tag: \"1.{i}.0\"}}"
        );
        let _ = writeln!(s, "  replicas: {}", i % 7);
        let _ = writeln!(s, "  enabled: yes");
        let _ = writeln!(s, "  env:");
        for j in 0..40 {
            let _ = writeln!(s, "    - {{name: VAR_{j}, value: \"value-{i}-{j}\"}}");
        }
    }
    s
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("kantup-bench-merge-{}", std::process::id()));
    let chart = tmp.join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: bench\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "global: {registry: docker.io}\n").unwrap();
    std::fs::write(
        chart.join("templates/values.yaml"),
        "{{ toJson .Values }}\n",
    )
    .unwrap();
    let file = tmp.join("big.yaml");
    let text = values_file();
    std::fs::write(&file, &text).unwrap();
    let sets: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "svc{i}.image.registry=reg.local:5000,svc{i}.env[{}].value=x{i}",
                i % 40
            )
        })
        .collect();
    println!(
        "values file: {} bytes, {} --set flags",
        text.len(),
        sets.len()
    );

    let options = ValueOptions {
        value_files: vec![file.clone()],
        values: sets.clone(),
        ..Default::default()
    };
    let mut kantup = Duration::MAX;
    let mut kantup_json = String::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let user = options.merge_values().unwrap();
        let c = Chart::load(&chart).unwrap();
        let v = render_owned_values_as(&c, user, HelmVersion::V3).unwrap();
        kantup_json = to_go_json(&serde_json::Value::Object(v));
        kantup = kantup.min(start.elapsed());
    }
    let kantup_peak = peak_rss_kib();

    let helm = kantup_test_support::helm3();
    let mut helm_time = Duration::MAX;
    let mut helm_peak = 0u64;
    let mut helm_json = String::new();
    for _ in 0..RUNS {
        let mut cmd = Command::new("/usr/bin/time");
        cmd.arg("-v").arg(&helm).args(["template", "r"]).arg(&chart);
        cmd.args(["--show-only", "templates/values.yaml", "-f"])
            .arg(&file);
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        let start = Instant::now();
        let out = cmd.output().expect("run helm");
        helm_time = helm_time.min(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(kib) = stderr
            .lines()
            .find(|l| l.contains("Maximum resident set size"))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            helm_peak = helm_peak.max(kib);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        helm_json = stdout.lines().last().unwrap_or("").to_string();
    }
    assert_eq!(
        kantup_json, helm_json,
        "kantup and helm computed different values"
    );
    println!(
        "kantup merge+coalesce: {:?} (best of {RUNS}), peak RSS {} KiB (whole bench process)",
        kantup, kantup_peak
    );
    println!(
        "helm template:         {:?} (best of {RUNS}), peak RSS {} KiB",
        helm_time, helm_peak
    );
    println!(
        "ratio helm/kantup: {:.1}x",
        helm_time.as_secs_f64() / kantup.as_secs_f64()
    );
    std::fs::remove_dir_all(&tmp).ok();
}
