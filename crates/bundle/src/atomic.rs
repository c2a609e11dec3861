//! Files that appear whole or not at all: written to a temporary file in the target's
//! directory, flushed to disk, renamed over the target, and the directory flushed too. A
//! crash or an error leaves the old file (or none), never a partial one; the temporary file is
//! removed on failure. The one way kantup writes a file others read (bundles, signatures,
//! values backups, chart archives, repository indexes, OCI layout blobs and indexes).
//!
//! Directories the same way ([`AtomicDir`]): filled in a hidden staging directory beside the
//! target and renamed into place (`bundle unpack`, a subchart archive unpacked by relocation).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("index.yaml");
//! kantup_bundle::atomic::write(&path, b"apiVersion: v1\n")?;
//! assert_eq!(std::fs::read(&path)?, b"apiVersion: v1\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::FileError;

/// A step of an atomic write failed: a [`FileError`] whose `action` names the step (`create a
/// temporary file beside`, `write`, `rename into place`) and whose `path` is the file being
/// written (its final path).
pub type WriteError = FileError;

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// The process's usual permissions (umask applied), as `File::create` gives.
    #[default]
    Normal,
    /// Owner only (mode 0600 on Unix): for files that may hold secrets, such as values.
    Private,
}

/// A file being written: write through [`AtomicFile::file`], then [`AtomicFile::commit`].
/// Dropped without a commit, it leaves nothing behind.
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path` (the temporary file is created beside it).
    pub fn create(path: impl Into<PathBuf>, access: Access) -> Result<Self, WriteError> {
        let path = path.into();
        let dir = parent_dir(&path);
        let prefix = temp_prefix(&path);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Created with these bits, less the umask: as `File::create` does for `Normal`.
            let mode = match access {
                Access::Normal => 0o666,
                Access::Private => 0o600,
            };
            builder.permissions(std::fs::Permissions::from_mode(mode));
        }
        let temp = builder.tempfile_in(&dir).map_err(|source| WriteError {
            action: "create a temporary file beside",
            path: path.clone(),
            source,
        })?;
        Ok(Self { temp, path })
    }

    /// The temporary file, to write into (and read back before the commit).
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }

    /// Where the temporary file is.
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file to disk, renames it over the final path and flushes the directory.
    pub fn commit(self) -> Result<(), WriteError> {
        let fail = |action| {
            let path = self.path.clone();
            move |source| WriteError {
                action,
                path,
                source,
            }
        };
        self.temp.as_file().sync_all().map_err(fail("fsync"))?;
        let dir = parent_dir(&self.path);
        let path = self.path.clone();
        self.temp
            .persist(&path)
            .map_err(|e| e.error)
            .map_err(fail("rename into place"))?;
        sync_dir(&dir);
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// A directory being filled: write under [`AtomicDir::staging`], then [`AtomicDir::commit`].
/// The staging directory is hidden (`.<name>.kantup-*.tmp`) and beside the target, so the
/// rename stays on one file system. Dropped without a commit, it is removed with everything in
/// it.
///
/// Others see the whole directory or none of it. Unlike [`AtomicFile`], the files in it are not
/// flushed one by one before the rename (a bundle may unpack to 100,000 files, and one `fsync`
/// each made that 30 times slower): after a power loss, a committed directory may hold files
/// whose data had not reached the disk yet.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use kantup_bundle::atomic::AtomicDir;
/// let target = dir.path().join("chart");
/// let staged = AtomicDir::create(&target)?;
/// std::fs::write(staged.staging().join("Chart.yaml"), "name: web\n")?;
/// assert!(!target.exists());
/// staged.commit()?;
/// assert_eq!(std::fs::read_to_string(target.join("Chart.yaml"))?, "name: web\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AtomicDir {
    staging: tempfile::TempDir,
    path: PathBuf,
}

impl AtomicDir {
    /// Starts filling the directory `path` (the staging directory is created beside it; the
    /// parent must exist).
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, WriteError> {
        let path = path.into();
        let staging = tempfile::Builder::new()
            .prefix(&temp_prefix(&path))
            .suffix(".tmp")
            .tempdir_in(parent_dir(&path))
            .map_err(|source| WriteError {
                action: "create a staging directory beside",
                path: path.clone(),
                source,
            })?;
        Ok(Self { staging, path })
    }

    /// The staging directory, to fill.
    pub fn staging(&self) -> &Path {
        self.staging.path()
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the staging directory to the final path (which must not exist, or be an empty
    /// directory) and flushes the parent directory; on failure the staging directory is
    /// removed.
    pub fn commit(self) -> Result<(), WriteError> {
        let path = self.path;
        let staged = self.staging.keep();
        if let Err(source) = std::fs::rename(&staged, &path) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(WriteError {
                action: "rename into place",
                path,
                source,
            });
        }
        sync_dir(&parent_dir(&path));
        Ok(())
    }
}

/// Makes a rename in `dir` durable; a failure here does not undo what is complete.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.kantup-")
}

/// Writes `bytes` to `path` atomically, with normal permissions.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_with(path, bytes, Access::Normal)
}

/// Writes `bytes` to `path` atomically, readable as `access` says.
pub fn write_with(path: &Path, bytes: &[u8], access: Access) -> Result<(), WriteError> {
    let mut file = AtomicFile::create(path, access)?;
    file.write_all(bytes).map_err(|source| WriteError {
        action: "write",
        path: path.to_path_buf(),
        source,
    })?;
    file.commit()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "old\n").unwrap();
        write(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.yaml"]);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        std::fs::write(&path, "old").unwrap();
        let mut file = AtomicFile::create(&path, Access::Normal).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn access_sets_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("bak.yaml");
        write_with(&private, b"secret: x\n", Access::Private).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o600);
        let normal = dir.path().join("index.yaml");
        write(&normal, b"x").unwrap();
        let created = dir.path().join("created");
        std::fs::write(&created, b"x").unwrap();
        assert_eq!(mode(&normal), mode(&created));
    }

    #[test]
    fn a_directory_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("web");
        let staged = AtomicDir::create(&target).unwrap();
        std::fs::create_dir(staged.staging().join("templates")).unwrap();
        std::fs::write(staged.staging().join("templates/a.yaml"), "a").unwrap();
        drop(staged);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        std::fs::create_dir(&target).unwrap();
        let staged = AtomicDir::create(&target).unwrap();
        std::fs::write(staged.staging().join("Chart.yaml"), "name: web\n").unwrap();
        staged.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("Chart.yaml")).unwrap(),
            "name: web\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["web"]);

        // A target that is not empty stays as it was, and the staging directory goes.
        let staged = AtomicDir::create(&target).unwrap();
        std::fs::write(staged.staging().join("other"), "x").unwrap();
        let err = staged.commit().unwrap_err().to_string();
        assert!(err.contains("web"), "{err}");
        assert!(!target.join("other").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/a.yaml");
        let err = write(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("no/such/dir/a.yaml"), "{err}");
    }
}
