//! `cargo bench -p kantup-bundle --bench verify`: generates a ~1 GiB bundle (a plain tar
//! holding a docker-archive `images.tar` with random, incompressible layers), then times
//! `Bundle::open` + `verify` against `sha256sum` of the same file, in one run, and prints the
//! ratio and each side's peak RSS.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kantup_bundle::{Bundle, Digest, DigestWriter, VerifyOptions};

const LAYERS: usize = 8;
const LAYER_SIZE: u64 = 128 << 20;

/// xorshift64*: fast, incompressible enough for a benchmark, no dependency.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}

/// A reader of `len` random bytes.
struct RandomReader {
    noise: Noise,
    left: u64,
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        self.noise.fill(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes a layer tar (one random file) and returns its digest and size.
fn write_layer(path: &Path, seed: u64) -> (Digest, u64) {
    let w = DigestWriter::new(BufWriter::new(File::create(path).unwrap()));
    let mut tar = tar::Builder::new(w);
    let data = LAYER_SIZE - 2048;
    let mut h = header(data);
    tar.append_data(
        &mut h,
        "data.bin",
        RandomReader {
            noise: Noise(seed),
            left: data,
        },
    )
    .unwrap();
    let (mut inner, digest, size) = tar.into_inner().unwrap().finish();
    inner.flush().unwrap();
    (digest, size)
}

fn generate(dir: &Path) -> std::path::PathBuf {
    let images = dir.join("images.tar");
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&images).unwrap()));
    let mut manifest = Vec::new();
    for image in 0..2 {
        let mut diff_ids = Vec::new();
        let mut names = Vec::new();
        for l in 0..LAYERS / 2 {
            let tmp = dir.join("layer.tmp");
            let (digest, size) =
                write_layer(&tmp, 0x9e37_79b9_7f4a_7c15 ^ (image * 100 + l as u64 + 1));
            let name = format!("{}.tar", digest.hex());
            tar.append_data(&mut header(size), &name, File::open(&tmp).unwrap())
                .unwrap();
            std::fs::remove_file(&tmp).unwrap();
            diff_ids.push(digest.to_string());
            names.push(name);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let config_name = format!("sha256:{}", Digest::of(&config).hex());
        tar.append_data(
            &mut header(config.len() as u64),
            &config_name,
            config.as_slice(),
        )
        .unwrap();
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": [format!("bench.local/image-{image}:v1")],
            "Layers": names,
        }));
    }
    let manifest = serde_json::to_vec(&manifest).unwrap();
    tar.append_data(
        &mut header(manifest.len() as u64),
        "manifest.json",
        manifest.as_slice(),
    )
    .unwrap();
    tar.into_inner().unwrap().flush().unwrap();

    let bundle = dir.join("bench.bundle.tar");
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&bundle).unwrap()));
    let hints = b"- \"{{ .image.repository }}:{{ .image.tag }}\"\n";
    tar.append_data(&mut header(hints.len() as u64), "hints.yaml", &hints[..])
        .unwrap();
    let chart = b"apiVersion: v2\nname: bench\nversion: 1.0.0\n";
    tar.append_data(
        &mut header(chart.len() as u64),
        "original-chart/Chart.yaml",
        &chart[..],
    )
    .unwrap();
    let values = b"image:\n  repository: bench.local/image-0\n  tag: v1\n";
    tar.append_data(
        &mut header(values.len() as u64),
        "original-chart/values.yaml",
        &values[..],
    )
    .unwrap();
    let size = std::fs::metadata(&images).unwrap().len();
    tar.append_data(
        &mut header(size),
        "images.tar",
        File::open(&images).unwrap(),
    )
    .unwrap();
    tar.into_inner().unwrap().flush().unwrap();
    std::fs::remove_file(&images).unwrap();
    bundle
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `/usr/bin/time -v sha256sum FILE`; returns wall seconds and peak RSS in KiB.
fn sha256sum(path: &Path) -> (f64, u64) {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("sha256sum")
        .arg(path)
        .output()
        .expect("run /usr/bin/time -v sha256sum");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (secs, rss)
}

fn main() {
    let dir = tempfile::tempdir_in(
        std::env::var_os("KANTUP_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .unwrap();
    let started = Instant::now();
    let bundle_path = generate(dir.path());
    let size = std::fs::metadata(&bundle_path).unwrap().len();
    println!(
        "generated {} ({:.2} GiB) in {:.1}s",
        bundle_path.display(),
        size as f64 / (1u64 << 30) as f64,
        started.elapsed().as_secs_f64()
    );
    // Warm the page cache so both sides read from memory.
    std::io::copy(&mut File::open(&bundle_path).unwrap(), &mut std::io::sink()).unwrap();

    // sha256sum, under /usr/bin/time -v for its peak RSS; run before and after kantup so a
    // change in machine load shows.
    let (sha_secs, sha_rss_kib) = sha256sum(&bundle_path);

    // kantup: reset our peak RSS (generation is over), then open + verify.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kib("VmRSS:");
    let t = Instant::now();
    let bundle = Bundle::open(&bundle_path).unwrap();
    let mut hashed = 0u64;
    let report = bundle
        .verify(VerifyOptions::default(), &mut |n| hashed += n)
        .unwrap();
    let kantup_secs = t.elapsed().as_secs_f64();
    let kantup_hwm = status_kib("VmHWM:");
    assert_eq!(report.images, 2);
    assert_eq!(report.blobs, LAYERS + 2);

    let (sha_secs_after, _) = sha256sum(&bundle_path);
    let gib = size as f64 / (1u64 << 30) as f64;
    println!(
        "sha256sum          : {sha_secs:7.2}s  {:7.0} MiB/s  peak RSS {:6} KiB",
        gib * 1024.0 / sha_secs,
        sha_rss_kib
    );
    println!(
        "kantup verify      : {kantup_secs:7.2}s  {:7.0} MiB/s  peak RSS {:6} KiB (process RSS before verify {} KiB; {} blobs, {} bytes hashed)",
        gib * 1024.0 / kantup_secs,
        kantup_hwm,
        rss_before,
        report.blobs,
        hashed
    );
    println!(
        "sha256sum (again)  : {sha_secs_after:7.2}s  {:7.0} MiB/s",
        gib * 1024.0 / sha_secs_after
    );
    println!(
        "ratio kantup/sha256sum (time): {:.2} (against the faster sha256sum run)",
        kantup_secs / sha_secs.min(sha_secs_after)
    );
}
