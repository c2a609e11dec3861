//! Safe unpacking: every member is checked before anything is written, the bundle is
//! extracted into a temporary directory beside the target and renamed into place only when
//! complete; on any error the temporary directory is removed.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::bundle::Bundle;
use crate::chart::clean_relative;
use crate::error::BundleError;
use crate::source::{EntryKind, resolve_symlink};

/// Limits for [`Bundle::unpack`].
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Largest single member.
    pub max_member_size: u64,
    /// Largest total of all members.
    pub max_total_size: u64,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            max_member_size: 256 << 30,
            max_total_size: 1 << 40,
        }
    }
}

/// What [`Bundle::unpack`] wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UnpackReport {
    /// Regular files written.
    pub files: usize,
    /// Directories created.
    pub dirs: usize,
    /// Symlinks created (each checked to stay inside).
    pub symlinks: usize,
    /// Bytes written.
    pub bytes: u64,
}

impl Bundle {
    /// Unpacks every member into `target`, which must not exist yet (or be an empty
    /// directory). Refuses absolute paths, `..`, links leaving the target, writing through a
    /// link, device files and fifos, and members over the size limits, before writing
    /// anything. Nothing is ever written outside `target`, and `target` only appears once
    /// complete.
    pub fn unpack(
        &self,
        target: impl AsRef<Path>,
        options: UnpackOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<UnpackReport, BundleError> {
        let target = target.as_ref();
        let label = self.path().display().to_string();
        let unsafe_member = |member: &str, reason: String| BundleError::UnsafeMember {
            path: label.clone(),
            member: member.to_string(),
            reason,
        };
        // 1. Check everything first.
        let entries = &self.index.entries;
        let mut symlinks = HashSet::new();
        let mut files = HashSet::new();
        let mut total = 0u64;
        let mut plan = Vec::with_capacity(entries.len());
        for e in entries {
            let clean = match clean_relative(&e.name) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(reason) => return Err(unsafe_member(&e.name, reason)),
            };
            let mut prefix = String::new();
            for comp in clean.split('/') {
                if !prefix.is_empty() && symlinks.contains(&prefix) {
                    return Err(unsafe_member(
                        &e.name,
                        format!("would be written through the symlink {prefix:?}"),
                    ));
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(comp);
            }
            match &e.kind {
                EntryKind::Special(kind) => {
                    return Err(unsafe_member(
                        &e.name,
                        format!("{kind} members are not unpacked"),
                    ));
                }
                EntryKind::Symlink(t) => {
                    if resolve_symlink(&clean, t.as_str()).is_none() {
                        return Err(unsafe_member(
                            &e.name,
                            format!("symlink to {t:?} leaves the target directory"),
                        ));
                    }
                    symlinks.insert(clean.clone());
                }
                EntryKind::Hardlink(t) => {
                    let t = clean_relative(t.as_str())
                        .map_err(|r| unsafe_member(&e.name, format!("hard link: {r}")))?;
                    if !t.as_ref().is_some_and(|t| files.contains(t)) {
                        return Err(unsafe_member(
                            &e.name,
                            format!(
                                "hard link to {t:?}, which is not an earlier file in the bundle"
                            ),
                        ));
                    }
                }
                EntryKind::File => {
                    files.insert(clean.clone());
                }
                EntryKind::Dir => {}
            }
            if e.size > options.max_member_size {
                return Err(BundleError::TooLarge {
                    path: label.clone(),
                    member: e.name.clone(),
                    size: e.size,
                    limit: options.max_member_size,
                });
            }
            total = total.saturating_add(e.size);
            if total > options.max_total_size {
                return Err(BundleError::TooLarge {
                    path: label.clone(),
                    member: e.name.clone(),
                    size: total,
                    limit: options.max_total_size,
                });
            }
            plan.push((clean, e));
        }
        // 2. Where to build it.
        if target.exists() {
            let empty = fs::read_dir(target)
                .map_err(|e| BundleError::io(target, e))?
                .next()
                .is_none();
            if !empty {
                return Err(BundleError::Invalid(format!(
                    "unpack target {} exists and is not empty",
                    target.display()
                )));
            }
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::env::current_dir().map_err(|e| BundleError::io(".", e))?,
        };
        fs::create_dir_all(&parent).map_err(|e| BundleError::io(&parent, e))?;
        let staging = crate::atomic::AtomicDir::create(target)?;
        // 3. Write into staging (dropped, hence removed, on error).
        let mut report = UnpackReport::default();
        for (clean, e) in plan {
            let dest = staging.staging().join(&clean);
            if let Some(p) = dest.parent() {
                fs::create_dir_all(p).map_err(|err| BundleError::io(p, err))?;
            }
            match &e.kind {
                EntryKind::Dir => {
                    fs::create_dir_all(&dest).map_err(|err| BundleError::io(&dest, err))?;
                    report.dirs += 1;
                }
                EntryKind::File => {
                    let mut out = io::BufWriter::new(
                        fs::File::create(&dest).map_err(|err| BundleError::io(&dest, err))?,
                    );
                    let mut reader = self.index.span.sub(e.offset, e.size).reader();
                    let n = io::copy(&mut reader, &mut out)
                        .map_err(|err| BundleError::io(&dest, err))?;
                    io::Write::flush(&mut out).map_err(|err| BundleError::io(&dest, err))?;
                    progress(n);
                    report.files += 1;
                    report.bytes += n;
                }
                EntryKind::Hardlink(t) => {
                    let src = staging
                        .staging()
                        .join(clean_relative(t.as_str()).ok().flatten().expect("checked"));
                    fs::hard_link(&src, &dest).map_err(|err| BundleError::io(&dest, err))?;
                    report.files += 1;
                }
                EntryKind::Symlink(t) => {
                    std::os::unix::fs::symlink(t, &dest)
                        .map_err(|err| BundleError::io(&dest, err))?;
                    report.symlinks += 1;
                }
                EntryKind::Special(_) => unreachable!("refused above"),
            }
        }
        // Renamed over the empty target directory, if there is one.
        staging.commit()?;
        Ok(report)
    }
}
