//! A directory served as a chart repository: the archives beside an `index.yaml`.

use std::path::Path;

use super::{Existing, PackagedChart};
use crate::chart_index::{IndexFile, sha256_file};
use crate::error::{RegistryError, Result};

/// Writes the archive into `dir` and lists it in `dir/index.yaml` (its entry replaced, the
/// others kept), each file atomically.
pub(super) fn write_local(dir: &Path, chart: &PackagedChart) -> Result<()> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistryError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let file = dir.join(chart.file_name());
    kantup_bundle::atomic::write(&file, &chart.tgz).map_err(|e| RegistryError::File {
        path: e.path,
        source: e.source,
    })?;
    let index_path = dir.join("index.yaml");
    let mut index = if index_path.is_file() {
        IndexFile::load(&index_path).map_err(|e| RegistryError::Invalid(e.to_string()))?
    } else {
        IndexFile::new()
    };
    // Replace this version's entry (a forced overwrite) and keep all others, like
    // `helm repo index --merge` with the fresh archive winning.
    if let Some(versions) = index.entries.get_mut(&chart.name) {
        versions.retain(|v| v.metadata.version != chart.version);
    }
    index.add(
        chart.index_metadata.clone(),
        &chart.file_name(),
        None,
        &chart.digest,
    );
    index.sort_entries();
    index
        .write(&index_path)
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    Ok(())
}

/// What `dir` holds of `chart`: an archive with the same digest that the index lists is the
/// same chart; one the index lacks (an interrupted run) is still to be uploaded.
pub(super) fn existing(dir: &Path, chart: &PackagedChart) -> Result<Existing> {
    let file = dir.join(chart.file_name());
    if !file.exists() {
        return Ok(Existing::Absent);
    }
    let have = sha256_file(&file).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    if have != chart.digest() {
        return Ok(Existing::Different);
    }
    let index_path = dir.join("index.yaml");
    let listed = index_path.is_file()
        && IndexFile::load(&index_path)
            .map(|i| i.has(&chart.name, &chart.version))
            .unwrap_or(false);
    Ok(if listed {
        Existing::Same
    } else {
        Existing::Absent
    })
}
