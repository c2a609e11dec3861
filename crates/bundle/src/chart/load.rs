//! Reading charts: a directory (with `.helmignore`, as `helm package` reads it), a `.tgz`
//! archive (file or memory), or either by path. Every reader refuses unsafe paths and links
//! and charts over [`MAX_CHART_SIZE`], naming the chart and the file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Chart, HelmIgnore, MAX_CHART_SIZE, chart_err, clean_relative};
use crate::error::BundleError;

impl Chart {
    /// Loads a chart directory, or a chart archive (`.tgz`) from a file.
    ///
    /// ```
    /// # let fixtures = kantup_test_support::relok8s_fixtures();
    /// use kantup_bundle::chart::Chart;
    /// let dir = Chart::load(fixtures.join("testchart"))?;
    /// let tgz = Chart::load(fixtures.join("wordpress-11.0.4.tgz"))?;
    /// assert_eq!((dir.name(), tgz.name()), ("testchart", "wordpress"));
    /// # Ok::<(), kantup_bundle::BundleError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Chart, BundleError> {
        let path = path.as_ref();
        if path.is_dir() {
            Chart::load_dir(path)
        } else {
            Chart::load_tgz(path)
        }
    }

    /// Loads a chart directory, applying `.helmignore` as `helm package` does.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Chart, BundleError> {
        let dir = dir.as_ref();
        let label = dir.display().to_string();
        let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
            Ok(text) => HelmIgnore::parse(&text)
                .map_err(|e| chart_err(&label, format!(".helmignore: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HelmIgnore::defaults(),
            Err(e) => return Err(BundleError::io(dir.join(".helmignore"), e)),
        };
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        walk(dir, dir, &ignore, &mut files, &mut total, &label)?;
        Chart::from_files(&label, files)
    }

    /// Loads a chart archive (`.tgz`) from a file.
    pub fn load_tgz(path: impl AsRef<Path>) -> Result<Chart, BundleError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| BundleError::io(path, e))?;
        Chart::load_tgz_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads a chart archive from memory. Entries must sit under one top directory, which is
    /// stripped; unsafe paths and links are refused.
    pub fn load_tgz_bytes(label: &str, bytes: &[u8]) -> Result<Chart, BundleError> {
        Chart::from_files(label, read_tgz_files(label, bytes)?)
    }

    /// Writes the chart's files under `dir` (created if needed).
    pub fn write_dir(&self, dir: impl AsRef<Path>) -> Result<(), BundleError> {
        let dir = dir.as_ref();
        for (path, bytes) in &self.files {
            let clean = clean_relative(path)
                .map_err(|e| chart_err(self.name(), e))?
                .ok_or_else(|| chart_err(self.name(), "empty file path"))?;
            let target = dir.join(&clean);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
            }
            std::fs::write(&target, bytes).map_err(|e| BundleError::io(&target, e))?;
        }
        Ok(())
    }
}

/// The files of a chart archive, relative to its top directory.
fn read_tgz_files(label: &str, bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| chart_err(label, format!("not a gzip tar: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| chart_err(label, format!("not a valid gzip tar: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let name = std::str::from_utf8(&raw).map_err(|_| {
            chart_err(
                label,
                format!("non-UTF-8 member name {:?}", String::from_utf8_lossy(&raw)),
            )
        })?;
        let ty = entry.header().entry_type();
        if ty.is_dir() || ty.is_pax_global_extensions() {
            continue;
        }
        if !ty.is_file() {
            return Err(chart_err(
                label,
                format!("member {name:?} is not a regular file"),
            ));
        }
        let clean = clean_relative(name).map_err(|e| chart_err(label, e))?;
        let Some(clean) = clean else { continue };
        // Strip the chart's top directory.
        let Some((_, inner)) = clean.split_once('/') else {
            return Err(chart_err(
                label,
                format!("member {name:?} is not inside the chart's directory"),
            ));
        };
        total += entry.size();
        if total > MAX_CHART_SIZE {
            return Err(chart_err(
                label,
                format!("chart is larger than {MAX_CHART_SIZE} bytes uncompressed"),
            ));
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| chart_err(label, format!("{name}: {e}")))?;
        if files.insert(inner.to_string(), data).is_some() {
            return Err(chart_err(label, format!("duplicate member {name:?}")));
        }
    }
    Ok(files)
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &HelmIgnore,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
    label: &str,
) -> Result<(), BundleError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| BundleError::io(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| BundleError::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_str()
            .ok_or_else(|| chart_err(label, format!("non-UTF-8 file name {}", path.display())))?
            .replace('\\', "/");
        // Follow symlinks as Helm does, but only to files and directories.
        let meta = std::fs::metadata(&path).map_err(|e| BundleError::io(&path, e))?;
        if ignore.ignored(&rel, meta.is_dir()) {
            continue;
        }
        if meta.is_dir() {
            walk(root, &path, ignore, files, total, label)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > MAX_CHART_SIZE {
                return Err(chart_err(
                    label,
                    format!("chart is larger than {MAX_CHART_SIZE} bytes"),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| BundleError::io(&path, e))?;
            files.insert(rel, bytes);
        } else {
            return Err(chart_err(
                label,
                format!("{rel}: not a regular file or directory"),
            ));
        }
    }
    Ok(())
}
