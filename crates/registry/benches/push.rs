//! Benchmark: pushing images into a fresh docker-registry, side by side in one run, for two
//! bundles: 12 images sharing 2 base layers (`KANTUP_BENCH_MIB`, default 560 MiB of unique
//! blobs) and 1 image whose one layer is `KANTUP_BENCH_BIG_MIB` (default 1024 MiB).
//!
//! - **floor**: the registry's ingest floor. Every unique blob sent by `curl` as one plain
//!   monolithic upload (`POST`, then `PUT ...?digest=` streaming the file), 4 at a time, no
//!   client work (no hashing, no existence checks, no manifests).
//! - **kantup**: `push_images` as `kantup sync` runs it (HEAD, mounts, chunked uploads of
//!   64 MiB with the session saved after each chunk, every byte hashed, manifests), in its own
//!   process so `/usr/bin/time` measures its peak RSS.
//! - **skopeo**: `skopeo copy` from the OCI layout, one run per image (skopeo has no
//!   multi-image push).
//!
//! Each is timed `KANTUP_BENCH_ROUNDS` times (default 3, median reported), each time into a
//! fresh registry, after `sync` has written out what earlier runs left dirty; the rounds
//! interleave the three so machine load hits them alike, kantup and the floor taking turns
//! going first. Printed: wall times, MiB/s, kantup's peak RSS and CPU time, the registry's
//! CPU time for the floor and for kantup (on a small machine they share the cores), the ratio
//! skopeo/kantup of the medians, and kantup/floor as the median of each round's ratio (the
//! two run back to back; the machine drifts more between rounds), with every round's.
//!
//! `cargo bench -p kantup-registry --bench push`; `KANTUP_BENCH_CHUNK_MIB` changes kantup's
//! chunk size (default 64; larger than a blob = one monolithic `PUT`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kantup_bundle::archive::ImageArchive;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::{
    ClientOptions, PushOptions, RegistryClient, RelocationRule, UploadSessions, push_images,
};
use kantup_test_support::gnu_time;
use kantup_test_support::image_gen::{GenBlob, GenImage, GenSpec, generate_layout};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{require_tool, write_back_dirty_pages};

const CHILD_ENV: &str = "KANTUP_BENCH_PUSH_CHILD";

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

/// A generated OCI layout and what is in it.
struct Scenario {
    name: String,
    layout: PathBuf,
    images: Vec<GenImage>,
    /// Every distinct blob (layers and configs), once.
    unique: Vec<GenBlob>,
}

impl Scenario {
    fn generate(name: &str, dir: &Path, spec: &GenSpec) -> Self {
        let layout = dir.join(name);
        let started = Instant::now();
        let images = generate_layout(&layout, spec).expect("generate");
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<GenBlob> = images
            .iter()
            .flat_map(|i| i.layers.iter().chain(std::iter::once(&i.config)))
            .filter(|b| seen.insert(b.digest.clone()))
            .cloned()
            .collect();
        let scenario = Self {
            name: name.to_string(),
            layout,
            images,
            unique,
        };
        println!(
            "{}: {} image(s), {} unique blobs, {:.1} MiB, generated in {:.1?}",
            scenario.name,
            scenario.images.len(),
            scenario.unique.len(),
            scenario.mib(),
            started.elapsed()
        );
        scenario
    }

    fn mib(&self) -> f64 {
        self.unique.iter().map(|b| b.size).sum::<u64>() as f64 / 1048576.0
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

/// One timed run: its wall time and the CPU time the registry spent on it.
struct Timed {
    wall: Duration,
    registry_cpu: Duration,
}

/// kantup in a child process under `/usr/bin/time -v`: (the run, peak RSS KiB, kantup's CPU
/// seconds).
fn run_kantup(scenario: &Scenario, sessions: &Path) -> (Timed, u64, f64) {
    let registry = RegistryServer::start();
    // Each run writes hundreds of MiB into a registry; none pays for the one before it.
    write_back_dirty_pages();
    let exe = std::env::current_exe().expect("bench exe");
    let started = Instant::now();
    let out = Command::new(gnu_time::PATH)
        .arg("-v")
        .arg(&exe)
        .env(
            CHILD_ENV,
            format!(
                "{}|{}|{}",
                scenario.layout.display(),
                registry.host(),
                sessions.display()
            ),
        )
        .output()
        .expect("run kantup push child");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "kantup push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let time_output = String::from_utf8_lossy(&out.stderr);
    (
        Timed {
            wall: elapsed,
            registry_cpu: registry.cpu_time(),
        },
        gnu_time::max_rss_kib(&time_output),
        gnu_time::cpu_seconds(&time_output),
    )
}

/// The ingest floor: every unique blob by curl, `POST` then a streamed monolithic `PUT`,
/// 4 at a time.
fn run_floor(scenario: &Scenario, curl: &Path) -> Timed {
    let registry = RegistryServer::start();
    let host = registry.host();
    let queue = Arc::new(Mutex::new(scenario.unique.clone()));
    // Each run writes hundreds of MiB into a registry; none pays for the one before it.
    write_back_dirty_pages();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let queue = queue.clone();
            let host = host.clone();
            scope.spawn(move || {
                loop {
                    let Some(blob) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let post = Command::new(curl)
                        .args(["-sS", "-f", "-X", "POST", "-D", "-", "-o", "/dev/null"])
                        .arg(format!("http://{host}/v2/floor/blobs/uploads/"))
                        .output()
                        .expect("curl POST");
                    assert!(post.status.success(), "POST failed");
                    let headers = String::from_utf8_lossy(&post.stdout);
                    let location = headers
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("location")
                                .then(|| v.trim().to_string())
                        })
                        .expect("Location");
                    let location = if location.starts_with('/') {
                        format!("http://{host}{location}")
                    } else {
                        location
                    };
                    let sep = if location.contains('?') { '&' } else { '?' };
                    let put = Command::new(curl)
                        .args(["-sS", "-f", "-o", "/dev/null", "-H"])
                        .arg("Content-Type: application/octet-stream")
                        .arg("-T")
                        .arg(scenario.blob_path(&blob.digest))
                        .arg(format!("{location}{sep}digest={}", blob.digest))
                        .output()
                        .expect("curl PUT");
                    assert!(
                        put.status.success(),
                        "PUT {}: {}",
                        blob.digest,
                        String::from_utf8_lossy(&put.stderr)
                    );
                }
            });
        }
    });
    Timed {
        wall: started.elapsed(),
        registry_cpu: registry.cpu_time(),
    }
}

/// skopeo copy, one run per image: (wall time, max peak RSS KiB over the runs).
fn run_skopeo(scenario: &Scenario, skopeo: &Path) -> (Duration, u64) {
    let registry = RegistryServer::start();
    let mut rss = 0;
    // Each run writes hundreds of MiB into a registry; none pays for the one before it.
    write_back_dirty_pages();
    let started = Instant::now();
    for image in &scenario.images {
        let tail = image.repository.rsplit('/').next().unwrap();
        let out = Command::new(gnu_time::PATH)
            .arg("-v")
            .arg(skopeo)
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!(
                "oci:{}:{}",
                scenario.layout.display(),
                image.reference
            ))
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
        rss = rss.max(gnu_time::max_rss_kib(&String::from_utf8_lossy(&out.stderr)));
    }
    (started.elapsed(), rss)
}

fn main() {
    // Child mode: push the layout given in the environment, then exit.
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let mut parts = spec.splitn(3, '|');
        let (layout, host, sessions) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        child_push(Path::new(layout), host, Path::new(sessions));
        return;
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    let twelve_mib = env_number("KANTUP_BENCH_MIB", 560);
    let big_mib = env_number("KANTUP_BENCH_BIG_MIB", 1024);
    let rounds = env_number("KANTUP_BENCH_ROUNDS", 3).max(1);
    assert!(
        Path::new(gnu_time::PATH).is_file(),
        "/usr/bin/time is required (apt-get install time)"
    );
    let skopeo = require_tool("skopeo");
    let curl = require_tool("curl");

    let work = tempfile::tempdir().expect("temp dir");
    let sessions = work.path().join("upload-sessions");
    let scenarios = [
        Scenario::generate(
            "12 images",
            work.path(),
            &GenSpec {
                images: 12,
                base_layers: 2,
                // 2 shared base layers take 40%, the 12 own layers 60%.
                base_layer_size: (twelve_mib * 1048576 * 4 / 10 / 2) as usize,
                own_layer_size: (twelve_mib * 1048576 * 6 / 10 / 12) as usize,
                seed: 99,
                source_prefix: "example.com/kantup".into(),
            },
        ),
        Scenario::generate(
            "1 image",
            work.path(),
            &GenSpec {
                images: 1,
                base_layers: 0,
                base_layer_size: 0,
                own_layer_size: (big_mib * 1048576) as usize,
                seed: 98,
                source_prefix: "example.com/kantup".into(),
            },
        ),
    ];

    println!(
        "\n{:<10} {:>9} {:>9} {:>9} {:>11} {:>13} {:>14} {:>12}",
        "bundle",
        "floor",
        "kantup",
        "skopeo",
        "kantup RSS",
        "skopeo RSS",
        "kantup/floor",
        "skopeo/kantup"
    );
    for scenario in &scenarios {
        let (mut floor, mut kantup, mut skopeo_times) = (Vec::new(), Vec::new(), Vec::new());
        let (mut kantup_rss, mut skopeo_rss) = (0, 0);
        let mut kantup_cpu = Vec::new();
        let (mut floor_registry_cpu, mut kantup_registry_cpu) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // kantup and the floor take turns going first, so neither always runs on a machine
            // the other has just warmed or loaded.
            let run_floor_now = || run_floor(scenario, &curl);
            let (floor_time, (t, rss, cpu)) = if round % 2 == 0 {
                let f = run_floor_now();
                (f, run_kantup(scenario, &sessions))
            } else {
                let k = run_kantup(scenario, &sessions);
                (run_floor_now(), k)
            };
            floor.push(floor_time.wall);
            floor_registry_cpu.push(floor_time.registry_cpu);
            kantup.push(t.wall);
            kantup_registry_cpu.push(t.registry_cpu);
            kantup_rss = kantup_rss.max(rss);
            kantup_cpu.push(Duration::from_secs_f64(cpu));
            let (t, rss) = run_skopeo(scenario, &skopeo);
            skopeo_times.push(t);
            skopeo_rss = skopeo_rss.max(rss);
        }
        // kantup/floor of each round (the two ran back to back), then their median: the
        // machine's speed drifts between rounds, less within one.
        let paired: Vec<f64> = floor
            .iter()
            .zip(&kantup)
            .map(|(f, k)| k.as_secs_f64() / f.as_secs_f64())
            .collect();
        let mut sorted = paired.clone();
        sorted.sort_by(f64::total_cmp);
        let kantup_over_floor = sorted[sorted.len() / 2];
        let (floor_times, kantup_times) = (floor.clone(), kantup.clone());
        let (floor, kantup, skopeo_time) = (median(floor), median(kantup), median(skopeo_times));
        let kantup_cpu = median(kantup_cpu);
        let (floor_registry_cpu, kantup_registry_cpu) =
            (median(floor_registry_cpu), median(kantup_registry_cpu));
        let rate = |d: Duration| scenario.mib() / d.as_secs_f64();
        println!(
            "{:<10} {:>8.2}s {:>8.2}s {:>8.2}s {:>7.1} MiB {:>9.1} MiB {:>13.2}x {:>13.2}x",
            scenario.name,
            floor.as_secs_f64(),
            kantup.as_secs_f64(),
            skopeo_time.as_secs_f64(),
            kantup_rss as f64 / 1024.0,
            skopeo_rss as f64 / 1024.0,
            kantup_over_floor,
            skopeo_time.as_secs_f64() / kantup.as_secs_f64(),
        );
        println!(
            "{:<10} {:>7.0} MiB/s floor, {:.0} MiB/s kantup, {:.0} MiB/s skopeo (median of {rounds}); kantup used {:.2}s of CPU",
            "",
            rate(floor),
            rate(kantup),
            rate(skopeo_time),
            kantup_cpu.as_secs_f64()
        );
        let rounds_text: Vec<String> = paired
            .iter()
            .zip(floor_times.iter().zip(&kantup_times))
            .map(|(r, (f, k))| format!("{r:.2}x ({:.2}s/{:.2}s)", k.as_secs_f64(), f.as_secs_f64()))
            .collect();
        println!(
            "{:<10} kantup/floor by round: {}",
            "",
            rounds_text.join(" ")
        );
        println!(
            "{:<10} the registry used {:.2}s of CPU for the floor, {:.2}s for kantup",
            "",
            floor_registry_cpu.as_secs_f64(),
            kantup_registry_cpu.as_secs_f64()
        );
    }
}

fn child_push(layout: &Path, host: &str, sessions: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let archive = Arc::new(ImageArchive::open(layout).expect("open layout"));
        let plan = plan_archive(archive, &RelocationRule::new(host, "bench")).expect("plan");
        // The bench registry is plain HTTP: say so rather than time a TLS probe. Sessions
        // are saved as `kantup sync` saves them.
        let options = ClientOptions {
            http: kantup_registry::HttpOptions::with_tls(None, false, true),
            upload_sessions: Some(UploadSessions::new(sessions)),
            chunk_size: std::env::var("KANTUP_BENCH_CHUNK_MIB")
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .map_or(kantup_registry::DEFAULT_CHUNK_SIZE, |mib| mib << 20),
            ..ClientOptions::default()
        };
        let client = RegistryClient::new(host, options).expect("client");
        let report = push_images(&client, &plan, &PushOptions::default(), None).await;
        let failed: Vec<_> = report.failures().collect();
        assert!(failed.is_empty(), "push failures: {failed:#?}");
    });
}
