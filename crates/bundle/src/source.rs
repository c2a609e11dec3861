//! Random access to members of a tar file without extracting it.
//!
//! A [`FileSpan`] is a window `[start, start+len)` of an open file, read with positioned reads
//! (`pread`), so any number of readers, on any threads, can share one handle. A [`TarIndex`]
//! walks a tar once, seeking over member data, and remembers where each member's bytes are.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::BundleError;

/// A window of a file.
#[derive(Debug, Clone)]
pub(crate) struct FileSpan {
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<PathBuf>,
    pub(crate) start: u64,
    pub(crate) len: u64,
}

impl FileSpan {
    /// The whole file.
    pub(crate) fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path).map_err(|e| BundleError::io(path, e))?;
        let len = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
        Ok(FileSpan {
            file: Arc::new(file),
            path: Arc::new(path.to_path_buf()),
            start: 0,
            len,
        })
    }

    pub(crate) fn from_file(file: File, path: PathBuf) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSpan {
            file: Arc::new(file),
            path: Arc::new(path),
            start: 0,
            len,
        })
    }

    /// A sub-window; `offset` is relative to this span.
    pub(crate) fn sub(&self, offset: u64, len: u64) -> FileSpan {
        FileSpan {
            file: self.file.clone(),
            path: self.path.clone(),
            start: self.start + offset,
            len,
        }
    }

    pub(crate) fn reader(&self) -> SpanReader {
        SpanReader {
            span: self.clone(),
            pos: 0,
        }
    }

    /// Reads the whole span into memory; refuses spans over `limit` bytes.
    pub(crate) fn read_all(&self, limit: u64, what: &str) -> Result<Vec<u8>, BundleError> {
        if self.len > limit {
            return Err(BundleError::TooLarge {
                path: self.path.display().to_string(),
                member: what.to_string(),
                size: self.len,
                limit,
            });
        }
        let mut buf = vec![0u8; self.len as usize];
        self.file
            .read_exact_at(&mut buf, self.start)
            .map_err(|e| BundleError::io(self.path.as_path(), e))?;
        Ok(buf)
    }
}

/// `Read + Seek` over a [`FileSpan`].
#[derive(Debug)]
pub(crate) struct SpanReader {
    span: FileSpan,
    pos: u64,
}

impl Read for SpanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.span.len.saturating_sub(self.pos);
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(remaining.min(usize::MAX as u64) as usize);
        let n = self
            .span
            .file
            .read_at(&mut buf[..want], self.span.start + self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends before the {} bytes it should hold",
                    self.span.path.display(),
                    self.span.len
                ),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SpanReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.span.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            )),
        }
    }
}

/// What a tar member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    /// Device, fifo or anything else; holds the type's name.
    Special(&'static str),
}

/// One member: its normalized name and where its data is (relative to the tar's span).
#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    pub(crate) name: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) kind: EntryKind,
}

/// The member table of one tar file (or a tar inside another, through a span).
#[derive(Debug, Clone)]
pub(crate) struct TarIndex {
    pub(crate) label: String,
    pub(crate) span: FileSpan,
    pub(crate) entries: Vec<TarEntry>,
    by_name: HashMap<String, usize>,
}

/// `./a/b/` -> `a/b`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    n.trim_end_matches('/').to_string()
}

/// Most members one tar may have. The index keeps about 200 bytes per member, so this bounds
/// its memory (about 200 MB); a bundle or image archive has a few thousand at most.
pub(crate) const MAX_MEMBERS: usize = 1_000_000;

/// Largest GNU long-name or pax extended header. The tar reader holds one in memory whole, so
/// without a bound a small compressed bundle could expand into one huge name.
pub(crate) const MAX_EXTENSION_HEADER: u64 = 1 << 20;

/// A tar header block as the tar reader will read it, or `None` when the bytes at `pos` are
/// not a header (end of archive, or a position this check cannot follow, like GNU sparse
/// members; the tar reader then reports or handles it).
fn header_at(span: &FileSpan, pos: u64) -> Option<tar::Header> {
    let mut block = [0u8; 512];
    if pos.checked_add(512)? > span.len {
        return None;
    }
    span.file.read_exact_at(&mut block, span.start + pos).ok()?;
    let header = tar::Header::from_byte_slice(&block).clone();
    let stored = header.cksum().ok()?;
    let computed: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    (stored == computed).then_some(header)
}

/// Refuses GNU long-name/long-link and pax extended headers over [`MAX_EXTENSION_HEADER`] in
/// the header chain starting at `pos`, before the tar reader reads them into memory.
fn check_extension_headers(span: &FileSpan, mut pos: u64, label: &str) -> Result<(), BundleError> {
    // A member has at most a long name, a long link and a pax header in front of it.
    for _ in 0..4 {
        let Some(header) = header_at(span, pos) else {
            return Ok(());
        };
        let ty = header.entry_type();
        let what = if ty.is_gnu_longname() {
            "GNU long name"
        } else if ty.is_gnu_longlink() {
            "GNU long link name"
        } else if ty.is_pax_local_extensions() {
            "pax extended header"
        } else {
            return Ok(());
        };
        let Ok(size) = header.entry_size() else {
            return Ok(());
        };
        if size > MAX_EXTENSION_HEADER {
            return Err(BundleError::Tar {
                path: label.to_string(),
                reason: format!(
                    "the {what} at offset {pos} is {size} bytes, over the limit of {MAX_EXTENSION_HEADER}"
                ),
            });
        }
        pos = pos + 512 + size.div_ceil(512) * 512;
    }
    Ok(())
}

/// The tar reader's message as one terminal-safe line: it quotes header fields, which in a
/// corrupt file are arbitrary bytes.
fn printable(reason: &str) -> String {
    const MAX_CHARS: usize = 120;
    let mut out: String = reason
        .chars()
        .take(MAX_CHARS)
        .map(|c| {
            if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                '?'
            } else {
                c
            }
        })
        .collect();
    if reason.chars().nth(MAX_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

impl TarIndex {
    /// Walks the tar in `span` once. `label` names it in errors (`bundle.tar!images.tar`).
    /// Duplicate non-directory members are an error, and so are more than [`MAX_MEMBERS`]
    /// members or an extension header over [`MAX_EXTENSION_HEADER`].
    pub(crate) fn build(span: FileSpan, label: String) -> Result<Self, BundleError> {
        let tar_err = |reason: String| BundleError::Tar {
            path: label.clone(),
            reason,
        };
        let mut archive = tar::Archive::new(span.reader());
        let mut entries = Vec::new();
        let mut by_name = HashMap::new();
        let mut iter = archive
            .entries_with_seek()
            .map_err(|e| tar_err(printable(&e.to_string())))?;
        // Where the next member's header chain starts.
        let mut next_header = 0u64;
        let mut members = 0usize;
        loop {
            check_extension_headers(&span, next_header, &label)?;
            let Some(entry) = iter.next() else {
                break;
            };
            let entry = entry.map_err(|e| {
                let reason = printable(&e.to_string());
                if members == 0 {
                    tar_err(format!("not a tar (nor a gzip or zstd one): {reason}"))
                } else {
                    tar_err(reason)
                }
            })?;
            members += 1;
            if members > MAX_MEMBERS {
                return Err(tar_err(format!(
                    "more than {MAX_MEMBERS} members; kantup reads no archive that large"
                )));
            }
            next_header = entry
                .raw_file_position()
                .saturating_add(entry.size().div_ceil(512) * 512);
            let raw = entry.path_bytes();
            let name = std::str::from_utf8(&raw).map_err(|_| BundleError::NonUtf8Name {
                path: label.clone(),
                name_lossy: String::from_utf8_lossy(&raw).into_owned(),
            })?;
            let name = normalize_name(name);
            let header = entry.header();
            let size = entry.size();
            let offset = entry.raw_file_position();
            let link = || -> Result<String, BundleError> {
                let bytes = entry.link_name_bytes().unwrap_or_default();
                std::str::from_utf8(&bytes)
                    .map(str::to_string)
                    .map_err(|_| BundleError::NonUtf8Name {
                        path: label.clone(),
                        name_lossy: String::from_utf8_lossy(&bytes).into_owned(),
                    })
            };
            let ty = header.entry_type();
            let kind = if ty.is_file() || ty.is_contiguous() {
                EntryKind::File
            } else if ty.is_dir() {
                EntryKind::Dir
            } else if ty.is_symlink() {
                EntryKind::Symlink(link()?)
            } else if ty.is_hard_link() {
                EntryKind::Hardlink(normalize_name(&link()?))
            } else if ty.is_character_special() {
                EntryKind::Special("character device")
            } else if ty.is_block_special() {
                EntryKind::Special("block device")
            } else if ty.is_fifo() {
                EntryKind::Special("fifo")
            } else {
                EntryKind::Special("unsupported entry type")
            };
            let data_len = if kind == EntryKind::File { size } else { 0 };
            if offset
                .checked_add(data_len)
                .is_none_or(|end| end > span.len)
            {
                return Err(tar_err(format!(
                    "truncated: member {name:?} declares {size} bytes at offset {offset} but the archive holds {}",
                    span.len
                )));
            }
            if let Some(&previous) = by_name.get(&name) {
                let prev: &TarEntry = &entries[previous];
                if !(prev.kind == EntryKind::Dir && kind == EntryKind::Dir) {
                    return Err(BundleError::DuplicateMember {
                        path: label.clone(),
                        member: name,
                    });
                }
                continue;
            }
            by_name.insert(name.clone(), entries.len());
            entries.push(TarEntry {
                name,
                offset,
                size: data_len,
                kind,
            });
        }
        Ok(TarIndex {
            label,
            span,
            entries,
            by_name,
        })
    }

    /// The same index under another label (for messages).
    pub(crate) fn relabeled(&self, label: String) -> TarIndex {
        TarIndex {
            label,
            ..self.clone()
        }
    }

    /// The members under `prefix/`, renamed relative to it (a view sharing the same file):
    /// lets an archive nested as a directory of a bigger tar (an OCI layout in a wrap) be read
    /// like a tar of its own. Hard links are re-rooted too; links leaving the subtree then fail
    /// to resolve, with an error naming the member.
    pub(crate) fn subtree(&self, prefix: &str, label: String) -> TarIndex {
        let prefix = format!("{}/", normalize_name(prefix));
        let mut entries = Vec::new();
        let mut by_name = HashMap::new();
        for e in &self.entries {
            let Some(rest) = e.name.strip_prefix(&prefix) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let kind = match &e.kind {
                EntryKind::Hardlink(t) => EntryKind::Hardlink(
                    t.strip_prefix(&prefix)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("../{t}")),
                ),
                other => other.clone(),
            };
            by_name.insert(rest.to_string(), entries.len());
            entries.push(TarEntry {
                name: rest.to_string(),
                offset: e.offset,
                size: e.size,
                kind,
            });
        }
        TarIndex {
            label,
            span: self.span.clone(),
            entries,
            by_name,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TarEntry> {
        self.by_name
            .get(&normalize_name(name))
            .map(|&i| &self.entries[i])
    }

    /// Follows hard and symbolic links (inside the archive only, at most 16 hops) to a file.
    pub(crate) fn resolve(&self, name: &str) -> Result<&TarEntry, BundleError> {
        let mut current = normalize_name(name);
        for _ in 0..16 {
            let entry = self
                .get(&current)
                .ok_or_else(|| BundleError::MissingMember {
                    path: self.label.clone(),
                    member: current.clone(),
                })?;
            match &entry.kind {
                EntryKind::File => return Ok(entry),
                EntryKind::Hardlink(target) => current = target.clone(),
                EntryKind::Symlink(target) => {
                    current = resolve_symlink(&entry.name, target).ok_or_else(|| {
                        BundleError::UnsafeMember {
                            path: self.label.clone(),
                            member: entry.name.clone(),
                            reason: format!("symlink to {target:?} leaves the archive"),
                        }
                    })?
                }
                other => {
                    return Err(BundleError::archive(
                        &self.label,
                        format!("member {:?} is a {other:?}, not a file", entry.name),
                    ));
                }
            }
        }
        Err(BundleError::archive(
            &self.label,
            format!("member {name:?}: too many levels of links"),
        ))
    }

    /// A span over a member's bytes (links resolved).
    pub(crate) fn member_span(&self, name: &str) -> Result<FileSpan, BundleError> {
        let e = self.resolve(name)?;
        Ok(self.span.sub(e.offset, e.size))
    }

    pub(crate) fn read_member(&self, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
        let span = self.member_span(name)?;
        span.read_all(limit, &format!("{}!{name}", self.label))
            .map_err(|e| match e {
                BundleError::TooLarge { size, limit, .. } => BundleError::TooLarge {
                    path: self.label.clone(),
                    member: name.to_string(),
                    size,
                    limit,
                },
                other => other,
            })
    }
}

/// Joins a symlink's target to the directory of the link; `None` when it climbs out of the root.
pub(crate) fn resolve_symlink(link_name: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link_name.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_resolution_table() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("a/b", "c", Some("a/c")),
            ("a/b", "../c", Some("c")),
            ("a/b", "../../c", None),
            ("b", "/etc/passwd", None),
            ("x/y/z", "./w/../v", Some("x/y/v")),
        ];
        for (link, target, want) in rows {
            assert_eq!(
                resolve_symlink(link, target).as_deref(),
                *want,
                "{link} -> {target}"
            );
        }
    }
}
