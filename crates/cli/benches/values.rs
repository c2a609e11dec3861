//! Benchmark: reading a large values file, `kantup values merge` against helm 3.17, in one run.
//!
//! Two generated values files of 1 MiB and 0.5 MiB, written as values files are (nested maps,
//! lists of maps, quoted and plain strings, a block scalar per component, a few anchors and
//! aliases), under a chart whose only template ignores its values. For each size:
//! - `kantup values merge -f FILE` (the binary, what the issue's 15 ms goal is about), and
//!   `kantup values merge --chart CHART -f FILE` less `kantup values merge --chart CHART`: the
//!   cost of the file to kantup;
//! - `helm template r CHART -f FILE` less `helm template r CHART`: the cost of the file to helm
//!   (reading, coalescing; the template does not look at the values);
//! - the library's `parse_values` of the file in process (reading alone).
//!
//! The merged values are checked against helm's (`toJson .Values`) once, untimed. Times are
//! medians; ratios are helm's cost over kantup's.
//!
//! `cargo bench -p kantup --bench values`; rounds with `KANTUP_BENCH_ROUNDS` (default 11).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A values file of about `bytes` bytes, written as a chart with many components would be.
fn values_file(bytes: usize) -> String {
    let mut s = String::from(
        "# Default values for the platform.\n\
         global:\n  imageRegistry: \"\"\n  imagePullSecrets: []\n  storageClass: standard\n\
         commonLabels: &labels\n  app.kubernetes.io/part-of: platform\n  team: core\n\
         defaultResources: &resources\n  requests: {cpu: 100m, memory: 128Mi}\n  limits:\n    cpu: \"1\"\n    memory: 512Mi\n",
    );
    let mut i = 0;
    while s.len() < bytes {
        let _ = write!(
            s,
            "\
component{i}:
  enabled: {enabled}
  replicaCount: {replicas}
  image:
    registry: docker.io
    repository: platform/service-{i}
    tag: \"1.{i}.3\"
    pullPolicy: IfNotPresent
  labels: *labels
  resources: *resources
  podAnnotations:
    prometheus.io/scrape: \"true\"
    prometheus.io/port: \"9{port:03}\"
  service:
    type: ClusterIP
    ports:
      - name: http
        port: 80
        targetPort: 8080
      - name: metrics
        port: 9{port:03}
  env:
",
            enabled = i % 5 != 0,
            replicas = i % 4 + 1,
            port = i % 1000,
        );
        for j in 0..12 {
            let _ = writeln!(
                s,
                "    - name: SERVICE_{i}_SETTING_{j}\n      value: 'value {j} for component {i}'"
            );
        }
        let _ = write!(
            s,
            "  tolerations: [{{key: dedicated, operator: Equal, value: platform, effect: NoSchedule}}]
  nodeSelector: {{kubernetes.io/os: linux}}
  livenessProbe: {{httpGet: {{path: /healthz, port: http}}, initialDelaySeconds: 10, periodSeconds: 15}}
  config: |
    # generated configuration for component {i}
    server.port=8080
    server.threads={threads}
    feature.flags=a,b,c
  ingress:
    enabled: false
    hosts: [\"svc{i}.example.com\"]   # the public name
"
            ,
            threads = i % 16 + 4,
        );
        i += 1;
    }
    s
}

fn chart(dir: &Path, template: &str) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: bench\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "global: {storageClass: fast}\n").unwrap();
    std::fs::write(dir.join("templates/out.yaml"), template).unwrap();
}

/// Median wall time of `program args` (output discarded), which must succeed.
fn time(rounds: u64, program: &Path, args: &[&std::ffi::OsStr]) -> Duration {
    let times = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run");
            let took = start.elapsed();
            assert!(status.success(), "{program:?} {args:?}");
            took
        })
        .collect();
    median(times)
}

fn main() {
    let rounds = std::env::var("KANTUP_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11u64)
        .max(1);
    let kantup = Path::new(env!("CARGO_BIN_EXE_kantup"));
    let helm = kantup_test_support::helm3();
    let work = tempfile::tempdir().expect("temp dir");
    let plain = work.path().join("chart");
    chart(
        &plain,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bench}\n",
    );
    let echo = work.path().join("echo-chart");
    chart(&echo, "{{ toJson .Values }}\n");

    println!(
        "values file    | kantup merge -f | kantup's cost | helm's cost | helm/kantup | parse_values"
    );
    for (name, size) in [("1 MiB", 1 << 20), ("0.5 MiB", 1 << 19)] {
        let text = values_file(size);
        let file = work.path().join(format!("values-{size}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let f = file.as_os_str();
        let c = plain.as_os_str();

        // The same values as helm computes them (untimed).
        let out = Command::new(&helm)
            .args([
                "template".as_ref(),
                "r".as_ref(),
                echo.as_os_str(),
                "-f".as_ref(),
                f,
            ])
            .output()
            .expect("helm");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let helm_json = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let out = Command::new(kantup)
            .args([
                "values".as_ref(),
                "merge".as_ref(),
                "--chart".as_ref(),
                echo.as_os_str(),
                "-f".as_ref(),
                f,
                "-o".as_ref(),
                "json".as_ref(),
            ])
            .output()
            .expect("kantup");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kantup_values: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let helm_values: serde_json::Value = serde_json::from_str(&helm_json).unwrap();
        assert_eq!(
            kantup_values, helm_values,
            "kantup and helm computed different values"
        );

        let merge = time(
            rounds,
            kantup,
            &["values".as_ref(), "merge".as_ref(), "-f".as_ref(), f],
        );
        let with = time(
            rounds,
            kantup,
            &[
                "values".as_ref(),
                "merge".as_ref(),
                "--chart".as_ref(),
                c,
                "-f".as_ref(),
                f,
            ],
        );
        let without = time(
            rounds,
            kantup,
            &["values".as_ref(), "merge".as_ref(), "--chart".as_ref(), c],
        );
        let helm_with = time(
            rounds,
            &helm,
            &["template".as_ref(), "r".as_ref(), c, "-f".as_ref(), f],
        );
        let helm_without = time(rounds, &helm, &["template".as_ref(), "r".as_ref(), c]);
        let parse = median(
            (0..rounds)
                .map(|_| {
                    let start = Instant::now();
                    let v = kantup_helm_values::yaml::parse_values(&text, "bench").unwrap();
                    let took = start.elapsed();
                    std::hint::black_box(v);
                    took
                })
                .collect(),
        );
        let kantup_cost = with.saturating_sub(without);
        let helm_cost = helm_with.saturating_sub(helm_without);
        println!(
            "{name:>7} ({:>4} KiB) | {:>12.1} ms | {:>10.1} ms | {:>8.1} ms | {:>10.1}x | {:>9.1} ms",
            text.len() >> 10,
            ms(merge),
            ms(kantup_cost),
            ms(helm_cost),
            helm_cost.as_secs_f64() / kantup_cost.as_secs_f64().max(1e-6),
            ms(parse),
        );
    }
    println!(
        "(medians of {rounds} runs; costs are `--chart C -f FILE` less `--chart C`, for helm `helm template r C`)"
    );
}
