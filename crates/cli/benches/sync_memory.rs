//! Benchmark: peak RSS of the `kantup` binary as shipped (its allocator included) running
//! `kantup sync` of bundles of growing size into a fresh docker-registry. The push bench
//! (`kantup-registry`) measures the library inside the bench process, with the system
//! allocator; this one measures what a user runs. The promise is a peak RSS that does not grow
//! with the bundle (under 100 MiB whatever its size).
//!
//! For each size in `KANTUP_BENCH_SIZES_MIB` (default `64,256,1024`): one image whose one layer
//! has that size, made into a bundle (untimed, and written out with `sync`), then `kantup sync`
//! under `/usr/bin/time -v`.
//! Printed: bundle size, wall time, MiB/s and peak RSS.
//!
//! `cargo bench -p kantup --bench sync_memory`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kantup_test_support::gnu_time;
use kantup_test_support::image_gen::{GenSpec, generate_bundle_inputs};
use kantup_test_support::registry_server::RegistryServer;

fn main() {
    let sizes: Vec<u64> = std::env::var("KANTUP_BENCH_SIZES_MIB")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let time = Path::new(gnu_time::PATH);
    assert!(
        time.is_file(),
        "/usr/bin/time is required (apt-get install time)"
    );
    let kantup = env!("CARGO_BIN_EXE_kantup");

    println!(
        "{:>10} {:>9} {:>10} {:>12}",
        "bundle", "sync", "MiB/s", "kantup RSS"
    );
    for mib in sizes {
        let work = tempfile::tempdir().expect("temp dir");
        let spec = GenSpec {
            images: 1,
            base_layers: 0,
            base_layer_size: 0,
            own_layer_size: (mib * 1024 * 1024) as usize,
            seed: mib,
            source_prefix: "example.com/kantup".into(),
        };
        let inputs = generate_bundle_inputs(work.path(), &spec).expect("generate");
        let bundles = work.path().join("bundles");
        std::fs::create_dir_all(&bundles).unwrap();
        let bundle = bundles.join("bench.bundle.tar");
        inputs.create_bundle(Path::new(kantup), &bundle);
        let bundle_mib = std::fs::metadata(&bundle).unwrap().len() as f64 / 1048576.0;

        let registry = RegistryServer::start();
        let config = work.path().join("load-image.yaml");
        std::fs::write(
            &config,
            format!(
                "source:\n  intermediateBundlesPath: bundles\ntarget:\n  containerRegistry: {}\n  containerRepository: bench\n  repo:\n    kind: LOCAL\n    path: charts\n",
                registry.host()
            ),
        )
        .unwrap();
        // The bundle just written is still being written back; let that finish first, as the
        // push bench does before each run.
        kantup_test_support::write_back_dirty_pages();
        let started = Instant::now();
        let out = Command::new(time)
            .arg("-v")
            .arg(kantup)
            .args(["-q", "sync", "--plain-http", "--config"])
            .arg(&config)
            .output()
            .expect("kantup sync");
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kantup sync failed: {stderr}");
        println!(
            "{:>6.0} MiB {:>8.2}s {:>10.0} {:>8.1} MiB",
            bundle_mib,
            elapsed.as_secs_f64(),
            bundle_mib / elapsed.as_secs_f64(),
            gnu_time::max_rss_kib(&stderr) as f64 / 1024.0
        );
    }
}
