//! The CRD snapshots `kantup upgrade` wrote, read back: each CRD's state at the target
//! revision and the CRDs created since.

use std::path::PathBuf;

use kantup_k8s_apply::crd::{CrdDocument, CrdSnapshot};

use super::{RollbackError, RollbackOptions};
use crate::ops::backup_files::BackupFiles;

pub(super) type Collected = (Vec<PathBuf>, Vec<CrdDocument>, Vec<String>, Option<String>);

/// The snapshots of this release taken at revisions `target..current`, and from them each
/// CRD's state at `target` (its first mention) and the CRDs created since.
pub(super) fn collect_snapshots(
    options: &RollbackOptions,
    target: u32,
    current: u32,
) -> Result<Collected, RollbackError> {
    let dir = &options.backup_dir;
    let entries = std::fs::read_dir(dir).map_err(|source| RollbackError::Io {
        path: dir.clone(),
        source,
    })?;
    let names = BackupFiles::new(dir, &options.release.name, &options.release.namespace);
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| names.is_crd_snapshot(n))
        })
        .collect();
    // Names carry a sortable timestamp: oldest first within a revision.
    files.sort();
    let mut snapshots: Vec<(CrdSnapshot, PathBuf)> = Vec::new();
    for file in files {
        let snapshot = CrdSnapshot::read(&file)?;
        if snapshot.release == options.release.name
            && snapshot.namespace == options.release.namespace
            && (target..current).contains(&snapshot.revision)
        {
            snapshots.push((snapshot, file));
        }
    }
    snapshots.sort_by_key(|(s, _)| s.revision);
    if snapshots.is_empty() {
        return Ok((
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Some(format!(
                "no CRD snapshot of revisions {target}..{} in {}: CRDs are left as they are \
                 (helm rollback never changes CRDs)",
                current - 1,
                dir.display()
            )),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut documents = Vec::new();
    let mut added = Vec::new();
    let mut used = Vec::new();
    for (snapshot, file) in &snapshots {
        let mut used_this = false;
        for document in snapshot.documents(&file.display().to_string())? {
            if !seen.contains(&document.name) {
                seen.push(document.name.clone());
                documents.push(document);
                used_this = true;
            }
        }
        for name in &snapshot.added {
            if !seen.contains(name) {
                seen.push(name.clone());
                added.push(name.clone());
                used_this = true;
            }
        }
        if used_this {
            used.push(file.clone());
        }
    }
    Ok((used, documents, added, None))
}
