//! Benchmark: `kantup load --runtime containerd` of a generated 12-image bundle against
//! `ctr -n k8s.io images import` of the same image archive (extracted from the bundle first,
//! untimed), each into a fresh containerd so no content is shared between runs. kantup streams
//! the archive out of the bundle into `ctr images import -`; the floor is ctr reading the file
//! itself. Prints wall time, peak RSS of kantup (not of ctr/containerd), and the ratio.
//!
//! `cargo bench -p kantup --bench load`; size with `KANTUP_BENCH_MIB` (default 256), rounds
//! with `KANTUP_BENCH_ROUNDS` (default 3, the median is reported).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kantup_test_support::gnu_time;
use kantup_test_support::image_gen::{GenSpec, generate_bundle_inputs};
use kantup_test_support::runtimes::Containerd;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let total_mib = env_number("KANTUP_BENCH_MIB", 256);
    let rounds = env_number("KANTUP_BENCH_ROUNDS", 3).max(1);
    let time = Path::new(gnu_time::PATH);
    assert!(
        time.is_file(),
        "/usr/bin/time is required (apt-get install time)"
    );
    let kantup = env!("CARGO_BIN_EXE_kantup");

    let work = tempfile::tempdir().expect("temp dir");
    let spec = GenSpec {
        images: 12,
        base_layers: 2,
        base_layer_size: (total_mib * 1024 * 1024 * 4 / 10 / 2) as usize,
        own_layer_size: (total_mib * 1024 * 1024 * 6 / 10 / 12) as usize,
        seed: 5,
        source_prefix: "example.com/kantup".into(),
    };
    let inputs = generate_bundle_inputs(work.path(), &spec).expect("generate");
    let bundle = work.path().join("bench.bundle.tar");
    inputs.create_bundle(Path::new(kantup), &bundle);
    // The same archive as a file, for ctr.
    let archive = work.path().join("images.tar");
    let mut tar = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "images.tar" {
            entry.unpack(&archive).unwrap();
        }
    }
    let size = std::fs::metadata(&archive).unwrap().len();
    println!(
        "load bench: 12 images, image archive {:.1} MiB, {rounds} round(s)",
        size as f64 / 1048576.0
    );

    let mut ctr_times = Vec::new();
    let mut kantup_times = Vec::new();
    let mut kantup_rss = 0;
    for _ in 0..rounds {
        let daemon = Containerd::start();
        let started = Instant::now();
        let out = Command::new("ctr")
            .arg("--address")
            .arg(daemon.socket())
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&archive)
            .output()
            .expect("ctr images import");
        ctr_times.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(daemon.images("k8s.io").len(), 12);
        drop(daemon);

        let daemon = Containerd::start();
        let started = Instant::now();
        let out = Command::new(time)
            .arg("-v")
            .arg(kantup)
            .args(["-q", "load"])
            .arg(&bundle)
            .args(["--runtime", "containerd"])
            .arg(format!(
                "--runtime-arg=--address={}",
                daemon.socket().display()
            ))
            .env_remove("KANTUP_RUNTIME_ARGS")
            .output()
            .expect("kantup load");
        kantup_times.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(daemon.images("k8s.io").len(), 12);
        kantup_rss = kantup_rss.max(gnu_time::max_rss_kib(&String::from_utf8_lossy(&out.stderr)));
    }
    let (ctr, ours) = (median(ctr_times), median(kantup_times));
    let rate = |d: Duration| size as f64 / 1048576.0 / d.as_secs_f64();
    println!(
        "ctr images import (file)   : {ctr:>8.2?}  {:>7.1} MiB/s",
        rate(ctr)
    );
    println!(
        "kantup load (from bundle)  : {ours:>8.2?}  {:>7.1} MiB/s  kantup peak RSS {:.1} MiB",
        rate(ours),
        kantup_rss as f64 / 1024.0
    );
    println!(
        "ratio kantup/ctr time: {:.2}x",
        ours.as_secs_f64() / ctr.as_secs_f64()
    );
}
