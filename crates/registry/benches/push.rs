//! Benchmark: push a generated 12-image bundle (~1 GiB, shared base layers) into a fresh
//! docker-registry with kantup, and copy the same images with `skopeo copy` (one run per
//! image, as skopeo has no multi-image push from a layout) into another fresh registry.
//! Prints wall time, throughput, peak RSS of each, and the ratio.
//!
//! `cargo bench -p kantup-registry --bench push`
//! Size can be scaled with `KANTUP_BENCH_MIB` (default 1024).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kantup_bundle::archive::ImageArchive;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::{ClientOptions, PushOptions, RegistryClient, RelocationRule, push_images};
use kantup_test_support::image_gen::{GenSpec, generate_layout};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::require_tool;

const CHILD_ENV: &str = "KANTUP_BENCH_PUSH_CHILD";

fn main() {
    // Child mode: push the layout given in the environment, then exit. Running kantup in its
    // own process lets /usr/bin/time measure its peak memory like skopeo's.
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (layout, host) = spec.split_once('|').expect("layout|host");
        child_push(Path::new(layout), host);
        return;
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    let total_mib: u64 = std::env::var("KANTUP_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let time = Path::new("/usr/bin/time");
    assert!(
        time.is_file(),
        "/usr/bin/time is required (apt-get install time)"
    );
    let skopeo = require_tool("skopeo");

    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    // 2 shared base layers take 40%, the 12 own layers 60%.
    let base = (total_mib * 1024 * 1024 * 4 / 10 / 2) as usize;
    let own = (total_mib * 1024 * 1024 * 6 / 10 / 12) as usize;
    let spec = GenSpec {
        images: 12,
        base_layers: 2,
        base_layer_size: base,
        own_layer_size: own,
        seed: 99,
        source_prefix: "example.com/kantup".into(),
    };
    let started = Instant::now();
    let images = generate_layout(&layout, &spec).expect("generate");
    let unique: u64 = {
        let mut seen = std::collections::HashSet::new();
        images
            .iter()
            .flat_map(|i| i.layers.iter().chain(std::iter::once(&i.config)))
            .filter(|b| seen.insert(b.digest.clone()))
            .map(|b| b.size)
            .sum()
    };
    println!(
        "generated 12 images, {:.1} MiB of unique blobs, in {:.1?}",
        unique as f64 / 1048576.0,
        started.elapsed()
    );

    // kantup
    let registry = RegistryServer::start();
    let exe = std::env::current_exe().expect("bench exe");
    let started = Instant::now();
    let out = Command::new(time)
        .arg("-v")
        .arg(&exe)
        .env(
            CHILD_ENV,
            format!("{}|{}", layout.display(), registry.host()),
        )
        .output()
        .expect("run kantup push child");
    let kantup_time = started.elapsed();
    assert!(
        out.status.success(),
        "kantup push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kantup_rss = max_rss_kib(&String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    drop(registry);

    // skopeo, one copy per image, into a fresh registry.
    let registry = RegistryServer::start();
    let mut skopeo_rss = 0;
    let started = Instant::now();
    for image in &images {
        let tail = image.repository.rsplit('/').next().unwrap();
        let out = Command::new(time)
            .arg("-v")
            .arg(&skopeo)
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{}", layout.display(), image.reference))
            .arg(format!(
                "docker://{}/bench/{tail}:{}",
                registry.host(),
                image.tag
            ))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {}: {}",
            image.reference,
            String::from_utf8_lossy(&out.stderr)
        );
        skopeo_rss = skopeo_rss.max(max_rss_kib(&String::from_utf8_lossy(&out.stderr)));
    }
    let skopeo_time = started.elapsed();
    drop(registry);

    let mib = unique as f64 / 1048576.0;
    let rate = |d: Duration| mib / d.as_secs_f64();
    println!(
        "kantup push : {:>8.2?}  {:>7.1} MiB/s  peak RSS {:>7.1} MiB",
        kantup_time,
        rate(kantup_time),
        kantup_rss as f64 / 1024.0
    );
    println!(
        "skopeo copy : {:>8.2?}  {:>7.1} MiB/s  peak RSS {:>7.1} MiB (max over 12 runs)",
        skopeo_time,
        rate(skopeo_time),
        skopeo_rss as f64 / 1024.0
    );
    println!(
        "ratio skopeo/kantup time: {:.2}x",
        skopeo_time.as_secs_f64() / kantup_time.as_secs_f64()
    );
}

fn max_rss_kib(time_output: &str) -> u64 {
    time_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn child_push(layout: &Path, host: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let archive = Arc::new(ImageArchive::open(layout).expect("open layout"));
        let plan = plan_archive(archive, &RelocationRule::new(host, "bench")).expect("plan");
        // The bench registry is plain HTTP: say so rather than time a TLS probe.
        let options = ClientOptions {
            http: kantup_registry::HttpOptions::with_tls(None, false, true),
            ..ClientOptions::default()
        };
        let client = RegistryClient::new(host, options).expect("client");
        let report = push_images(&client, &plan, &PushOptions::default(), None).await;
        let failed: Vec<_> = report.failures().collect();
        assert!(failed.is_empty(), "push failures: {failed:#?}");
        println!(
            "kantup: {} images, {} blobs uploaded, {} mounted, {:.1} MiB sent",
            report.images.len(),
            report.blobs_uploaded,
            report.blobs_mounted,
            report.bytes_uploaded as f64 / 1048576.0
        );
    });
}
