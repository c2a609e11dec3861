//! Bundle verification: every blob hashes to its name, every referenced member exists, config
//! `rootfs.diff_ids` match the layers (deep mode decompresses each layer), and the checksum
//! member kantup writes is honoured.

use std::collections::HashSet;
use std::io::{self, Read};

use serde::Serialize;

use crate::archive::{BlobInfo, Compression, Image, ImageArchive};
use crate::bundle::{Bundle, CHECKSUMS_MEMBER};
use crate::digest::{Digest, DigestReader};
use crate::error::BundleError;

/// How thoroughly to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Also decompress every layer and compare with the config's `rootfs.diff_ids`.
    pub deep: bool,
    /// Pass a bundle that lacks images its chart needs (a chart that pulls them from elsewhere
    /// on purpose); they are still listed in [`VerifyReport::images_missing`].
    pub allow_missing_images: bool,
}

/// What verification looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Members checked against `kantup-checksums.sha256` (0 when the bundle has none).
    pub checksummed_members: usize,
    /// Images whose manifest, config and layers were checked.
    pub images: usize,
    /// Distinct blobs hashed.
    pub blobs: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Layers decompressed and matched with their diff IDs (deep mode).
    pub diff_ids_checked: usize,
    /// Whether the chart and hints loaded.
    pub chart: Option<String>,
    /// Number of hint patterns.
    pub hints: usize,
    /// Where the list of images the chart needs came from.
    pub image_source: Option<crate::discovery::ImageSource>,
    /// How many images the chart needs (all in the bundle unless allowed missing).
    pub images_needed: usize,
    /// Needed images the bundle lacks, passed with
    /// [`VerifyOptions::allow_missing_images`].
    pub images_missing: Vec<String>,
    /// For a differential bundle: its base and the blobs it needs from there (not checked
    /// here: they are not in the bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::differential::BaseRecord>,
}

/// Parses `sha256sum` output: `<64 hex>  <name>` per line.
pub(crate) fn parse_checksums(
    text: &str,
    label: &str,
) -> Result<Vec<(Digest, String)>, BundleError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || BundleError::Document {
                path: format!("{label}!{CHECKSUMS_MEMBER}"),
                format: "sha256sum",
                reason: format!("line {}: expected `<sha256 hex>  <member>`", i + 1),
            };
            let (hex, name) = line.split_once("  ").ok_or_else(bad)?;
            let d = Digest::from_hex(hex).map_err(|_| bad())?;
            Ok((d, name.trim_start_matches('*').to_string()))
        })
        .collect()
}

fn hash_reader(
    reader: impl Read,
    what: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<(Digest, u64), BundleError> {
    let mut r = DigestReader::new(reader);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).map_err(|e| BundleError::io(what, e))?;
        if n == 0 {
            break;
        }
        progress(n as u64);
    }
    Ok(r.finish())
}

/// One piece of content to hash and compare.
struct HashJob<'a> {
    what: String,
    open: Box<dyn Fn() -> Result<Box<dyn Read + Send>, BundleError> + Send + Sync + 'a>,
    expected: Digest,
    expected_size: Option<u64>,
}

/// Hashes `jobs` on up to `available_parallelism` threads (each blob has its own reader, so
/// they proceed in parallel), feeding byte counts to `progress` on this thread. Returns the
/// bytes hashed, or the error of the first failing job in list order.
fn run_jobs(jobs: Vec<HashJob<'_>>, progress: &mut dyn FnMut(u64)) -> Result<u64, BundleError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<u64, BundleError>)>> = Mutex::new(Vec::new());
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            let tx = tx.clone();
            let (jobs, next, failed, results) = (&jobs, &next, &failed, &results);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let job = &jobs[i];
                    let outcome = (job.open)().and_then(|reader| {
                        let (digest, size) = hash_reader(reader, &job.what, &mut |n| {
                            let _ = tx.send(n);
                        })?;
                        if digest != job.expected {
                            return Err(BundleError::DigestMismatch {
                                what: job.what.clone(),
                                expected: job.expected,
                                actual: digest,
                            });
                        }
                        if let Some(expected) = job.expected_size
                            && expected != size
                        {
                            return Err(BundleError::SizeMismatch {
                                what: job.what.clone(),
                                expected,
                                actual: size,
                            });
                        }
                        Ok(size)
                    });
                    if outcome.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results
                        .lock()
                        .expect("no panics while locked")
                        .push((i, outcome));
                }
            });
        }
        drop(tx);
        for n in rx {
            progress(n);
        }
    });
    let mut results = results.into_inner().expect("no panics while locked");
    results.sort_by_key(|(i, _)| *i);
    let mut total = 0;
    for (_, r) in results {
        total += r?;
    }
    Ok(total)
}

/// Decompresses a layer and returns its diff ID.
fn diff_id_of(archive: &ImageArchive, blob: &BlobInfo, what: &str) -> Result<Digest, BundleError> {
    let raw = archive.open_blob(&blob.digest)?;
    let corrupt = |format: &'static str, e: io::Error| BundleError::Compression {
        path: what.to_string(),
        format,
        reason: e.to_string(),
    };
    let result = match blob.compression {
        Compression::None => Digest::of_reader(raw).map_err(|e| BundleError::io(what, e)),
        Compression::Gzip => {
            Digest::of_reader(flate2::read::MultiGzDecoder::new(io::BufReader::new(raw)))
                .map_err(|e| corrupt("gzip", e))
        }
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(raw).map_err(|e| corrupt("zstd", e))?;
            Digest::of_reader(d).map_err(|e| corrupt("zstd", e))
        }
    };
    result.map(|(d, _)| d)
}

/// Verifies an image archive on its own: manifests, then every distinct blob (hashed in
/// parallel), then config diff IDs (deep mode decompresses compressed layers). `progress`
/// receives hashed byte counts.
pub fn verify_archive(
    archive: &ImageArchive,
    options: VerifyOptions,
    progress: &mut dyn FnMut(u64),
    report: &mut VerifyReport,
) -> Result<(), BundleError> {
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for image in archive.images() {
        report.images += 1;
        let actual = Digest::of(&image.manifest);
        if actual != image.manifest_digest {
            return Err(BundleError::DigestMismatch {
                what: format!(
                    "{}: manifest of image {}",
                    archive.label(),
                    image.display_name()
                ),
                expected: image.manifest_digest,
                actual,
            });
        }
        let blobs = std::iter::once(("config", &image.config))
            .chain(image.layers.iter().map(|l| ("layer", l)));
        for (kind, blob) in blobs {
            if !seen.insert(blob.digest) || archive.is_omitted(&blob.digest) {
                continue;
            }
            let digest = blob.digest;
            jobs.push(HashJob {
                what: format!(
                    "{}: {kind} {} of image {}",
                    archive.label(),
                    blob.digest,
                    image.display_name()
                ),
                open: Box::new(move || archive.open_blob(&digest)),
                expected: blob.digest,
                expected_size: Some(blob.size),
            });
        }
    }
    report.blobs += jobs.len();
    report.bytes += run_jobs(jobs, progress)?;
    for image in archive.images() {
        check_diff_ids(archive, image, options, report)?;
    }
    Ok(())
}

fn check_diff_ids(
    archive: &ImageArchive,
    image: &Image,
    options: VerifyOptions,
    report: &mut VerifyReport,
) -> Result<(), BundleError> {
    let config = archive.read_blob(&image.config.digest)?;
    let summary = crate::archive::ConfigSummary::parse(
        &config,
        &format!(
            "{}: config of image {}",
            archive.label(),
            image.display_name()
        ),
    )?;
    let diff_ids = summary.diff_ids(&archive.label())?;
    if diff_ids.len() != image.layers.len() {
        return Err(BundleError::archive(
            archive.label(),
            format!(
                "image {}: config rootfs.diff_ids lists {} layers, the manifest {}",
                image.display_name(),
                diff_ids.len(),
                image.layers.len()
            ),
        ));
    }
    for (i, layer) in image.layers.iter().enumerate() {
        if layer.compression == Compression::None && layer.digest != diff_ids[i] {
            return Err(BundleError::DigestMismatch {
                what: format!(
                    "{}: uncompressed layer {} of image {} against config rootfs.diff_ids[{i}]",
                    archive.label(),
                    i + 1,
                    image.display_name()
                ),
                expected: diff_ids[i],
                actual: layer.digest,
            });
        }
        if options.deep
            && layer.compression != Compression::None
            && !archive.is_omitted(&layer.digest)
        {
            let what = format!(
                "{}: layer {} of image {}",
                archive.label(),
                layer.digest,
                image.display_name()
            );
            let actual = diff_id_of(archive, layer, &what)?;
            if actual != diff_ids[i] {
                return Err(BundleError::DigestMismatch {
                    what: format!(
                        "{what}: uncompressed content against config rootfs.diff_ids[{i}]"
                    ),
                    expected: diff_ids[i],
                    actual,
                });
            }
            report.diff_ids_checked += 1;
        }
    }
    Ok(())
}

impl Bundle {
    /// Verifies the bundle: the checksum member (when present), hints, chart, that the bundle
    /// carries every image the chart needs under valid names ([`crate::image_check`]), and
    /// every image blob. Stops at the first problem, returned as a typed error naming the member or image.
    pub fn verify(
        &self,
        options: VerifyOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<VerifyReport, BundleError> {
        let mut report = VerifyReport::default();
        if self.has_member(CHECKSUMS_MEMBER) {
            let text = String::from_utf8(self.read_small(CHECKSUMS_MEMBER)?).map_err(|_| {
                BundleError::Document {
                    path: format!("{}!{CHECKSUMS_MEMBER}", self.path().display()),
                    format: "sha256sum",
                    reason: "not UTF-8".into(),
                }
            })?;
            let label = self.path().display().to_string();
            let listed = parse_checksums(&text, &label)?;
            let names: HashSet<&str> = listed.iter().map(|(_, n)| n.as_str()).collect();
            for m in self.members() {
                if m.kind == "file"
                    && m.name != CHECKSUMS_MEMBER
                    && !names.contains(m.name.as_str())
                {
                    return Err(BundleError::archive(
                        &label,
                        format!("member {:?} is not listed in {CHECKSUMS_MEMBER}", m.name),
                    ));
                }
            }
            let mut jobs = Vec::new();
            for (expected, name) in &listed {
                if !self.has_member(name) {
                    return Err(BundleError::MissingMember {
                        path: label.clone(),
                        member: name.clone(),
                    });
                }
                let member = name.clone();
                jobs.push(HashJob {
                    what: format!("{label}!{name}"),
                    open: Box::new(move || self.open_member(&member)),
                    expected: *expected,
                    expected_size: None,
                });
            }
            report.checksummed_members = jobs.len();
            report.bytes += run_jobs(jobs, progress)?;
        }
        report.base = self.base()?;
        report.hints = self.hints()?.len();
        report.chart = Some(self.chart()?.name().to_string());
        let needed = self.discover_images()?;
        let archive = self.image_archive()?;
        let check = crate::image_check::check_images(archive.as_ref(), &needed);
        check.require(
            &self.path().display().to_string(),
            options.allow_missing_images,
        )?;
        report.image_source = Some(check.source);
        report.images_needed = check.needed;
        report.images_missing = check.missing.iter().map(ToString::to_string).collect();
        if let Some(archive) = archive {
            verify_archive(&archive, options, progress, &mut report)?;
        }
        Ok(report)
    }
}
