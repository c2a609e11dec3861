//! Where an archive's members live: a tar (possibly inside another tar) or a directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::BundleError;
use crate::source::{FileSpan, TarIndex};

/// Members of an image archive.
#[derive(Debug)]
pub(crate) enum Store {
    Tar(TarIndex),
    Dir(PathBuf),
}

impl Store {
    pub(crate) fn open_tar(path: &Path) -> Result<Store, BundleError> {
        let span = FileSpan::open(path)?;
        Ok(Store::Tar(TarIndex::build(
            span,
            path.display().to_string(),
        )?))
    }

    pub(crate) fn label(&self) -> String {
        match self {
            Store::Tar(t) => t.label.clone(),
            Store::Dir(d) => d.display().to_string(),
        }
    }

    /// Resolves a member name inside a directory store, refusing to leave it.
    fn dir_path(dir: &Path, name: &str) -> Option<PathBuf> {
        let n = crate::source::normalize_name(name);
        if n.starts_with('/') || n.split('/').any(|c| c == "..") {
            return None;
        }
        Some(dir.join(n))
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        match self {
            Store::Tar(t) => t.resolve(name).is_ok(),
            Store::Dir(d) => Self::dir_path(d, name).is_some_and(|p| p.is_file()),
        }
    }

    /// For a tar member that is present, whether its links lead to a file; the error says why
    /// not. Absent members and directory stores pass.
    pub(crate) fn check_readable(&self, name: &str) -> Result<(), BundleError> {
        match self {
            Store::Tar(t) if t.get(name).is_some() => t.resolve(name).map(|_| ()),
            _ => Ok(()),
        }
    }

    pub(crate) fn size(&self, name: &str) -> Result<u64, BundleError> {
        match self {
            Store::Tar(t) => Ok(t.resolve(name)?.size),
            Store::Dir(d) => {
                let p = self.checked(d, name)?;
                Ok(std::fs::metadata(&p)
                    .map_err(|e| BundleError::io(&p, e))?
                    .len())
            }
        }
    }

    fn checked(&self, d: &Path, name: &str) -> Result<PathBuf, BundleError> {
        let p = Self::dir_path(d, name).ok_or_else(|| BundleError::UnsafeMember {
            path: d.display().to_string(),
            member: name.to_string(),
            reason: "path leaves the directory".to_string(),
        })?;
        if !p.is_file() {
            return Err(BundleError::MissingMember {
                path: d.display().to_string(),
                member: name.to_string(),
            });
        }
        Ok(p)
    }

    pub(crate) fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, BundleError> {
        match self {
            Store::Tar(t) => Ok(Box::new(t.member_span(name)?.reader())),
            Store::Dir(d) => {
                let p = self.checked(d, name)?;
                let f = std::fs::File::open(&p).map_err(|e| BundleError::io(&p, e))?;
                Ok(Box::new(f))
            }
        }
    }

    pub(crate) fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
        match self {
            Store::Tar(t) => t.read_member(name, limit),
            Store::Dir(_) => {
                let size = self.size(name)?;
                if size > limit {
                    return Err(BundleError::TooLarge {
                        path: self.label(),
                        member: name.to_string(),
                        size,
                        limit,
                    });
                }
                let mut buf = Vec::with_capacity(size as usize);
                self.open(name)?
                    .read_to_end(&mut buf)
                    .map_err(|e| BundleError::io(self.label(), e))?;
                Ok(buf)
            }
        }
    }

    /// Reads the first bytes of a member (compression sniffing).
    pub(crate) fn head(&self, name: &str) -> Result<Vec<u8>, BundleError> {
        let mut buf = Vec::with_capacity(8);
        self.open(name)?
            .take(8)
            .read_to_end(&mut buf)
            .map_err(|e| BundleError::io(self.label(), e))?;
        Ok(buf)
    }
}
