//! The files `kantup upgrade` writes into its backup directory and `kantup rollback` reads
//! back: one naming rule for both. Every name starts with `<release>-<namespace>-` and carries
//! a UTC timestamp, so the files of one release sort by time and never overwrite each other.

use std::path::{Path, PathBuf};

/// The backup files of one release in one directory.
pub(crate) struct BackupFiles<'a> {
    dir: &'a Path,
    release: &'a str,
    namespace: &'a str,
}

impl<'a> BackupFiles<'a> {
    /// The files of `release` in `namespace` under `dir`.
    pub(crate) fn new(dir: &'a Path, release: &'a str, namespace: &'a str) -> Self {
        Self {
            dir,
            release,
            namespace,
        }
    }

    /// The values backup of `revision` (what `helm get values` prints), not yet taken.
    pub(crate) fn values_backup(&self, revision: u32, stamp: &str) -> PathBuf {
        self.unused(format!("rev{revision}-{stamp}.backup.yaml"))
    }

    /// The computed values file helm gets, not yet taken.
    pub(crate) fn computed_values(&self, stamp: &str) -> PathBuf {
        self.unused(format!("{stamp}.values.yaml"))
    }

    /// The record of the images an upgrade deploys (digest, signature verdict, SBOMs), not
    /// yet taken.
    pub(crate) fn deployed_images(&self, stamp: &str) -> PathBuf {
        self.unused(format!("{stamp}.images.json"))
    }

    /// The snapshot of the live CRDs an upgrade from `revision` changes, not yet taken.
    pub(crate) fn crd_snapshot(&self, revision: u32, stamp: &str) -> PathBuf {
        self.unused(format!("rev{revision}-{stamp}.crds.yaml"))
    }

    /// Whether `file_name` is one of this release's CRD snapshots.
    pub(crate) fn is_crd_snapshot(&self, file_name: &str) -> bool {
        file_name.starts_with(&format!("{}rev", self.prefix())) && file_name.ends_with(".crds.yaml")
    }

    fn prefix(&self) -> String {
        format!("{}-{}-", self.release, self.namespace)
    }

    fn unused(&self, rest: String) -> PathBuf {
        unused_path(self.dir.join(format!("{}{rest}", self.prefix())))
    }
}

/// UTC `YYYYMMDDTHHMMSSZ`, so backups sort by time and never overwrite each other.
pub(crate) fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

/// `path`, or `path` with `-1`, `-2`, ... before its extension when taken: a backup never
/// replaces another one, even for two runs in the same second.
fn unused_path(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extension) = match name.split_once('.') {
        Some((stem, extension)) => (stem.to_string(), format!(".{extension}")),
        None => (name.clone(), String::new()),
    };
    (1..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{extension}")))
        .find(|candidate| !candidate.exists())
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_file_name_safe() {
        let stamp = timestamp();
        assert_eq!(stamp.len(), "20261125T144500Z".len(), "{stamp}");
        assert!(stamp.chars().all(|c| c.is_ascii_alphanumeric()), "{stamp}");
    }

    #[test]
    fn names_upgrade_writes_are_the_names_rollback_reads() {
        let dir = tempfile::tempdir().unwrap();
        let files = BackupFiles::new(dir.path(), "kant", "kant-system");
        let stamp = "20261125T144500Z";
        let snapshot = files.crd_snapshot(3, stamp);
        assert_eq!(
            snapshot,
            dir.path()
                .join("kant-kant-system-rev3-20261125T144500Z.crds.yaml")
        );
        assert_eq!(
            files.values_backup(3, stamp),
            dir.path()
                .join("kant-kant-system-rev3-20261125T144500Z.backup.yaml")
        );
        assert_eq!(
            files.computed_values(stamp),
            dir.path()
                .join("kant-kant-system-20261125T144500Z.values.yaml")
        );
        let name = snapshot.file_name().unwrap().to_str().unwrap();
        assert!(files.is_crd_snapshot(name));
        // A taken name gets a suffix, still read as a snapshot of the same release.
        std::fs::write(&snapshot, "").unwrap();
        let second = files.crd_snapshot(3, stamp);
        let second_name = second.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            second_name,
            "kant-kant-system-rev3-20261125T144500Z-1.crds.yaml"
        );
        assert!(files.is_crd_snapshot(second_name));
        for other in [
            "kant-kant-system-rev3-20261125T144500Z.backup.yaml",
            "kant-kant-system-20261125T144500Z.values.yaml",
            "other-kant-system-rev3-20261125T144500Z.crds.yaml",
        ] {
            assert!(!files.is_crd_snapshot(other), "{other}");
        }
    }
}
