//! Where half-done blob uploads are remembered, so that a push stopped half-way (a dropped
//! network, a killed process) continues on the next run from what the registry already holds.
//!
//! One small JSON file per (registry, repository, blob digest) in one directory: by default
//! `$XDG_CACHE_HOME/kantup/uploads` (`~/.cache/kantup/uploads`; see [`UploadSessions::default_dir`]).
//! A file holds the registry, repository, digest and size of the blob, the upload session's
//! URL and the offset the registry last confirmed; it is written after every chunk the registry
//! accepts and removed once the blob is committed.
//!
//! The upload URL is a secret: registries put signed state in its query (docker-registry's
//! `_state`, presigned storage URLs), and whoever holds it can write into the session. The
//! files are created with mode 0600 in a 0700 directory, and the URL is never logged (see
//! [`crate::net::redact_url`]). No credential is ever written: a URL that carries user
//! information is not saved.
//!
//! A saved session is only a hint. Before using it kantup asks the registry where the session
//! stands (`GET` on the URL; the answer's `Range: 0-N` is the offset); a session the registry no
//! longer knows (404, `BLOB_UPLOAD_UNKNOWN`, `BLOB_UPLOAD_INVALID`) or one older than
//! [`MAX_AGE`] is dropped and the blob starts over, and the registry still checks the whole
//! blob's digest when the upload is closed (`PUT ...?digest=`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kantup_bundle::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Sessions older than this are not resumed: docker-registry purges unfinished uploads after
/// a week (`storage.maintenance.uploadpurging.age`, 168h).
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A directory of saved upload sessions.
///
/// ```
/// use kantup_registry::UploadSessions;
/// let dir = tempfile::tempdir().unwrap();
/// let sessions = UploadSessions::new(dir.path());
/// assert_eq!(sessions.dir(), dir.path());
/// ```
#[derive(Debug, Clone)]
pub struct UploadSessions {
    dir: PathBuf,
}

/// One saved session: enough to ask the registry where the upload stands and continue it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedSession {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// The repository the blob goes to.
    pub repository: String,
    /// The blob (a file naming no valid digest is unreadable, and dropped).
    pub digest: Digest,
    /// Size of the whole blob.
    pub size: u64,
    /// The session URL the registry gave last (a secret: see the module docs).
    pub location: String,
    /// Bytes the registry had confirmed when this was written.
    pub offset: u64,
}

impl std::fmt::Debug for SavedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedSession")
            .field("registry", &self.registry)
            .field("repository", &self.repository)
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("location", &crate::net::redact_url(&self.location))
            .field("offset", &self.offset)
            .finish()
    }
}

impl UploadSessions {
    /// Sessions kept in `dir` (created when the first one is saved).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `kantup/uploads` in the user's cache directory (`$XDG_CACHE_HOME`, else
    /// `~/.cache` on Linux); `None` when there is no home directory to put it in.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("kantup").join("uploads"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one blob upload: named by a hash of registry, repository and digest, so any
    /// repository name maps to one flat, safe file name.
    fn path(&self, registry: &str, repository: &str, digest: &Digest) -> PathBuf {
        let key = Sha256::digest(format!("{registry}\n{repository}\n{digest}"));
        self.dir.join(format!("{}.json", hex::encode(&key[..16])))
    }

    /// The saved session of this blob upload, if there is a usable one. A file that cannot be
    /// read, names another blob or size, or is older than [`MAX_AGE`] is removed.
    pub fn load(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Option<SavedSession> {
        let path = self.path(registry, repository, digest);
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        let fresh = SystemTime::now()
            .duration_since(modified)
            .map(|age| age < MAX_AGE)
            .unwrap_or(true);
        let saved = std::fs::read(&path)
            .ok()
            .and_then(|raw| serde_json::from_slice::<SavedSession>(&raw).ok())
            .filter(|s| {
                fresh
                    && s.registry == registry
                    && s.repository == repository
                    && s.digest == *digest
                    && s.size == size
                    && s.offset <= size
            });
        if saved.is_none() {
            tracing::debug!(
                "dropping saved upload session {} (unreadable, stale or for another blob)",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
        }
        saved
    }

    /// Saves (replaces) a session: written to a temporary file, then renamed, so a process
    /// killed at any moment leaves the old file or the new one, never half of one.
    pub fn save(&self, session: &SavedSession) -> std::io::Result<()> {
        if url::Url::parse(&session.location).is_ok_and(|u| u.password().is_some()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the upload URL carries credentials; not saved",
            ));
        }
        create_private_dir(&self.dir)?;
        let path = self.path(&session.registry, &session.repository, &session.digest);
        let bytes = serde_json::to_vec(session).map_err(std::io::Error::other)?;
        kantup_bundle::atomic::write_with(&path, &bytes, kantup_bundle::atomic::Access::Private)
            .map_err(|e| e.source)
    }

    /// Forgets a session (its blob is in, or the registry no longer knows it).
    pub fn remove(&self, registry: &str, repository: &str, digest: &Digest) {
        let _ = std::fs::remove_file(self.path(registry, repository, digest));
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"blob")
    }

    fn session(offset: u64) -> SavedSession {
        SavedSession {
            registry: "reg:5000".into(),
            repository: "a/b".into(),
            digest: digest(),
            size: 100,
            location: "https://reg:5000/v2/a/b/blobs/uploads/u?_state=secret".into(),
            offset,
        }
    }

    #[test]
    fn saves_loads_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let store = UploadSessions::new(dir.path().join("uploads"));
        assert_eq!(store.load("reg:5000", "a/b", &digest(), 100), None);
        store.save(&session(10)).unwrap();
        store.save(&session(40)).unwrap();
        assert_eq!(
            store.load("reg:5000", "a/b", &digest(), 100),
            Some(session(40))
        );
        // Another size is another blob: the file is dropped.
        assert_eq!(store.load("reg:5000", "a/b", &digest(), 99), None);
        assert_eq!(store.load("reg:5000", "a/b", &digest(), 100), None);
        store.save(&session(40)).unwrap();
        store.remove("reg:5000", "a/b", &digest());
        assert_eq!(store.load("reg:5000", "a/b", &digest(), 100), None);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_hold_no_credentials() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = UploadSessions::new(dir.path().join("uploads"));
        store.save(&session(1)).unwrap();
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let file = store.path("reg:5000", "a/b", &digest());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut with_password = session(1);
        with_password.location = "https://user:pw@reg:5000/v2/a/b/blobs/uploads/u".into();
        assert!(store.save(&with_password).is_err());
        assert!(format!("{:?}", session(1)).contains("_state=<redacted>"));
        assert!(!format!("{:?}", session(1)).contains("secret"));
    }
}
