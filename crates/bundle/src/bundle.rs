//! Opening a bundle: the relok8s intermediate layout (`hints.yaml`, `original-chart/`,
//! `images.tar`) in a plain, gzip or zstd tar.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::{Compression, ImageArchive, Store};
use crate::chart::{Chart, clean_relative};
use crate::differential::{BASE_MEMBER, BaseRecord};
use crate::error::BundleError;
use crate::hints::{ImagePattern, parse_hints};
use crate::open_options::{MAX_EXPANDED_SIZE_ENV, OpenOptions};
use crate::source::{EntryKind, FileSpan, TarIndex};

/// The hints member.
pub const HINTS_MEMBER: &str = "hints.yaml";
/// The chart directory member prefix.
pub const CHART_DIR: &str = "original-chart";
/// The image archive member.
pub const IMAGES_MEMBER: &str = "images.tar";
/// The checksum member kantup writes (`sha256sum` format; other readers ignore it).
pub const CHECKSUMS_MEMBER: &str = "kantup-checksums.sha256";
/// Largest hints/checksum document read into memory.
const MAX_SMALL: u64 = 16 << 20;

impl OpenOptions {
    /// The options [`Bundle::open`] uses: the default, or the limit in
    /// `KANTUP_MAX_EXPANDED_SIZE` ([`MAX_EXPANDED_SIZE_ENV`]) when it is set.
    pub fn from_env() -> Result<OpenOptions, BundleError> {
        let max_expanded_size = match std::env::var(MAX_EXPANDED_SIZE_ENV) {
            Ok(text) => Some(Self::parse_size(&text).map_err(|reason| {
                BundleError::Invalid(format!("{MAX_EXPANDED_SIZE_ENV}={text:?}: {reason}"))
            })?),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(BundleError::Invalid(format!(
                    "{MAX_EXPANDED_SIZE_ENV} is not UTF-8"
                )));
            }
        };
        Ok(OpenOptions { max_expanded_size })
    }
}

/// A member of the bundle tar.
#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    /// Path inside the bundle.
    pub name: String,
    /// Data size.
    pub size: u64,
    /// `file`, `dir`, `symlink`, `hardlink` or the special type.
    pub kind: String,
}

/// An opened bundle.
///
/// A plain tar is indexed once and members are then read in place by offset (even
/// `images.tar`, which is never extracted). A gzip or zstd bundle is decompressed in one
/// streaming pass into an anonymous temporary file (deleted when the `Bundle` drops, and never
/// visible in the temporary directory), then treated the same way; memory use does not grow
/// with bundle size, and the temporary file never grows past the expansion limit
/// ([`OpenOptions`]).
///
/// ```
/// # let root = kantup_test_support::workspace_root();
/// let bundle = kantup_bundle::Bundle::open(root.join("examples/bundles/testchart.bundle.tar")).unwrap();
/// assert_eq!(bundle.chart().unwrap().name(), "testchart");
/// assert_eq!(bundle.hints().unwrap().len(), 4);
/// assert_eq!(bundle.image_archive().unwrap().unwrap().images().len(), 2);
/// ```
#[derive(Debug)]
pub struct Bundle {
    path: PathBuf,
    compression: Compression,
    pub(crate) index: TarIndex,
    layout: Layout,
}

/// How the bundle's parts are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Layout {
    /// relok8s's intermediate bundle: `hints.yaml`, `original-chart/`, `images.tar`.
    Relok8s,
    /// A Bitnami wrapped chart (`helm dt wrap`, `*.wrap.tgz`): `<root>/chart/` with its
    /// `Images.lock`, and one OCI image layout per platform manifest in
    /// `<root>/images/<hex>.layout/`. See [`crate::wrap`].
    Wrap {
        /// The top directory (`<chart>-<version>`).
        root: String,
    },
}

impl Bundle {
    /// Opens and indexes a bundle file. Compression is detected from magic bytes. A gzip or
    /// zstd bundle may expand to the default limit, or to `KANTUP_MAX_EXPANDED_SIZE`
    /// ([`OpenOptions::from_env`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        Self::open_with(path, &OpenOptions::from_env()?)
    }

    /// [`Bundle::open`] with explicit options.
    ///
    /// ```
    /// # let root = kantup_test_support::workspace_root();
    /// use kantup_bundle::{Bundle, OpenOptions};
    /// let options = OpenOptions { max_expanded_size: Some(64 << 20) };
    /// let bundle = Bundle::open_with(root.join("examples/bundles/testchart.bundle.tar"), &options)?;
    /// # Ok::<(), kantup_bundle::BundleError>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Bundle, BundleError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let span = FileSpan::open(path)?;
        if span.len == 0 {
            return Err(BundleError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut head = Vec::with_capacity(8);
        span.reader()
            .take(8)
            .read_to_end(&mut head)
            .map_err(|e| BundleError::io(path, e))?;
        let compression = Compression::sniff(&head);
        let limit = ExpansionLimit {
            bytes: options.expansion_limit(span.len),
            compressed: span.len,
            configured: options.max_expanded_size.is_some(),
        };
        let span = match compression {
            Compression::None => span,
            Compression::Gzip => spool(
                path,
                "gzip",
                flate2::read::MultiGzDecoder::new(std::io::BufReader::new(span.reader())),
                limit,
            )?,
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(span.reader()).map_err(|e| {
                    BundleError::Compression {
                        path: label.clone(),
                        format: "zstd",
                        reason: e.to_string(),
                    }
                })?;
                spool(path, "zstd", decoder, limit)?
            }
        };
        let index = TarIndex::build(span, label)?;
        let layout = detect_layout(&index);
        Ok(Bundle {
            path: path.to_path_buf(),
            compression,
            index,
            layout,
        })
    }

    /// Whether this is a relok8s bundle or a wrapped chart.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the tar is laid out as a bundle: a wrapped chart, or a relok8s bundle
    /// (`hints.yaml`, `images.tar` or `original-chart/`). [`Bundle::open`] also opens a chart
    /// archive (a gzip tar with the chart at its top), which is none of these; commands that
    /// take either read a file that is not a bundle as a chart archive.
    pub fn is_bundle(&self) -> bool {
        matches!(self.layout, Layout::Wrap { .. })
            || self.has_member(HINTS_MEMBER)
            || self.has_member(IMAGES_MEMBER)
            || self.members().iter().any(|m| m.name.starts_with(CHART_DIR))
    }

    /// Whether the bundle carries relok8s hints (a wrapped chart never does; its images come
    /// from `Images.lock`).
    pub fn has_hints(&self) -> bool {
        self.layout == Layout::Relok8s && self.has_member(HINTS_MEMBER)
    }

    /// The chart's `Images.lock` (for a wrap, the one in `chart/`), if there is one.
    pub fn images_lock(&self) -> Result<Option<crate::images_lock::ImagesLock>, BundleError> {
        Ok(crate::discovery::images_lock(&self.chart()?)?)
    }

    /// The images the chart needs and where the list came from: `hints.yaml` rendered against
    /// the chart's values, else the chart's own `.relok8s-images.yaml`, else `Images.lock`, else
    /// the `Chart.yaml` annotations (see [`crate::discovery`]). Rendering the chart, the last
    /// resort, is up to the caller. A hint that does not render to a valid image reference is
    /// an error naming it.
    pub fn discover_images(&self) -> Result<crate::discovery::Discovery, BundleError> {
        let file = format!("{}!{HINTS_MEMBER}", self.index.label);
        Ok(crate::discovery::needed_images(
            &self.chart()?,
            &self.hints()?,
            &file,
        )?)
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The outer compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Every member, in archive order.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.index
            .entries
            .iter()
            .map(|e| MemberInfo {
                name: e.name.clone(),
                size: e.size,
                kind: match &e.kind {
                    EntryKind::File => "file".into(),
                    EntryKind::Dir => "dir".into(),
                    EntryKind::Symlink(_) => "symlink".into(),
                    EntryKind::Hardlink(_) => "hardlink".into(),
                    EntryKind::Special(s) => (*s).into(),
                },
            })
            .collect()
    }

    /// Whether a member exists.
    pub fn has_member(&self, name: &str) -> bool {
        self.index.get(name).is_some()
    }

    /// Opens a member for streaming (links inside the bundle are followed).
    pub fn open_member(&self, name: &str) -> Result<Box<dyn Read + Send>, BundleError> {
        Ok(Box::new(self.index.member_span(name)?.reader()))
    }

    /// Size of the (decompressed) bundle tar.
    pub fn tar_size(&self) -> u64 {
        self.index.span.len
    }

    /// Reads a small member (at most 16 MiB) into memory.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>, BundleError> {
        self.index.read_member(name, MAX_SMALL)
    }

    /// The text of `hints.yaml`.
    pub fn hints_text(&self) -> Result<String, BundleError> {
        let bytes = self.index.read_member(HINTS_MEMBER, MAX_SMALL)?;
        String::from_utf8(bytes).map_err(|_| BundleError::Hints {
            path: format!("{}!{HINTS_MEMBER}", self.index.label),
            source: crate::hints::HintsError::Yaml("not UTF-8".into()),
        })
    }

    /// The parsed image hints of `hints.yaml`; none for a wrapped chart or a bundle without
    /// that member (its images are found as a chart's are: [`Bundle::discover_images`]).
    pub fn hints(&self) -> Result<Vec<ImagePattern>, BundleError> {
        if !self.has_hints() {
            return Ok(Vec::new());
        }
        parse_hints(&self.hints_text()?).map_err(|source| BundleError::Hints {
            path: format!("{}!{HINTS_MEMBER}", self.index.label),
            source,
        })
    }

    /// The chart in `original-chart/` (a directory tree, or a single `.tgz` in it).
    pub fn chart(&self) -> Result<Chart, BundleError> {
        let chart_dir = match &self.layout {
            Layout::Relok8s => CHART_DIR.to_string(),
            Layout::Wrap { root } => format!("{root}/{}", crate::wrap::WRAP_CHART_DIR),
        };
        let label = format!("{}!{chart_dir}", self.index.label);
        let prefix = format!("{chart_dir}/");
        let mut files = BTreeMap::new();
        for e in &self.index.entries {
            let Some(rel) = e.name.strip_prefix(&prefix) else {
                continue;
            };
            match &e.kind {
                EntryKind::Dir => continue,
                EntryKind::File | EntryKind::Hardlink(_) | EntryKind::Symlink(_) => {}
                EntryKind::Special(s) => {
                    return Err(BundleError::UnsafeMember {
                        path: self.index.label.clone(),
                        member: e.name.clone(),
                        reason: format!("{s} in the chart"),
                    });
                }
            }
            let rel = clean_relative(rel)
                .map_err(|reason| BundleError::UnsafeMember {
                    path: self.index.label.clone(),
                    member: e.name.clone(),
                    reason,
                })?
                .unwrap_or_default();
            let bytes = self
                .index
                .read_member(&e.name, crate::chart::MAX_CHART_SIZE)?;
            files.insert(rel, bytes);
        }
        if files.is_empty() {
            return Err(BundleError::MissingMember {
                path: self.index.label.clone(),
                member: prefix,
            });
        }
        if files.len() == 1 {
            let (name, bytes) = files.iter().next().expect("one file");
            if name.ends_with(".tgz") {
                return Chart::load_tgz_bytes(&format!("{label}/{name}"), bytes);
            }
        }
        Chart::from_files(&label, files)
    }

    /// The image archive in `images.tar`, read in place; `None` for a charts-only bundle.
    pub fn image_archive(&self) -> Result<Option<ImageArchive>, BundleError> {
        if let Layout::Wrap { root } = &self.layout {
            let lock = self.images_lock()?;
            return crate::wrap::image_archive(&self.index, root, lock.as_ref());
        }
        if self.index.get(IMAGES_MEMBER).is_none() {
            return Ok(None);
        }
        let span = self.index.member_span(IMAGES_MEMBER)?;
        let inner = TarIndex::build(span, format!("{}!{IMAGES_MEMBER}", self.index.label))?;
        let omitted = self
            .base()?
            .map(|record| record.omitted_digests())
            .unwrap_or_default();
        ImageArchive::from_store_omitting(Store::Tar(inner), &omitted).map(Some)
    }

    /// For a differential bundle (made with `create --base`), its base and the blobs it left
    /// out; `None` for a complete bundle.
    pub fn base(&self) -> Result<Option<BaseRecord>, BundleError> {
        if !self.has_member(BASE_MEMBER) {
            return Ok(None);
        }
        let bytes = self.read_small(BASE_MEMBER)?;
        BaseRecord::parse(&bytes, &format!("{}!{BASE_MEMBER}", self.index.label)).map(Some)
    }
}

/// How far a bundle may expand, and why.
#[derive(Debug, Clone, Copy)]
struct ExpansionLimit {
    bytes: u64,
    compressed: u64,
    configured: bool,
}

/// Decompresses `reader` into an anonymous temporary file, refusing (and so removing the file)
/// as soon as it expands past `limit`: the file never holds more than `limit` bytes plus one
/// buffer.
fn spool(
    path: &Path,
    format: &'static str,
    reader: impl Read,
    limit: ExpansionLimit,
) -> Result<FileSpan, BundleError> {
    let file = tempfile::tempfile().map_err(|e| BundleError::io(std::env::temp_dir(), e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let expanded = std::io::copy(&mut reader.take(limit.bytes.saturating_add(1)), &mut out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::Other
                || e.kind() == std::io::ErrorKind::InvalidInput
                || e.kind() == std::io::ErrorKind::InvalidData
                || e.kind() == std::io::ErrorKind::UnexpectedEof
            {
                BundleError::Compression {
                    path: path.display().to_string(),
                    format,
                    reason: e.to_string(),
                }
            } else {
                BundleError::io(path, e)
            }
        })?;
    if expanded > limit.bytes {
        return Err(BundleError::ExpansionLimit {
            path: path.to_path_buf(),
            format,
            limit: limit.bytes,
            compressed: limit.compressed,
            configured: limit.configured,
        });
    }
    out.flush().map_err(|e| BundleError::io(path, e))?;
    let file = out
        .into_inner()
        .map_err(|e| BundleError::io(path, e.into_error()))?;
    FileSpan::from_file(file, path.to_path_buf()).map_err(|e| BundleError::io(path, e))
}

/// A wrap is a tar whose members all sit under one top directory holding `chart/Chart.yaml`,
/// and which has none of the relok8s members.
fn detect_layout(index: &TarIndex) -> Layout {
    if index.get(HINTS_MEMBER).is_some()
        || index.get(IMAGES_MEMBER).is_some()
        || index
            .entries
            .iter()
            .any(|e| e.name.starts_with(&format!("{}/", CHART_DIR)))
    {
        return Layout::Relok8s;
    }
    for e in &index.entries {
        let parts: Vec<&str> = e.name.split('/').collect();
        if let [root, crate::wrap::WRAP_CHART_DIR, "Chart.yaml"] = parts.as_slice() {
            return Layout::Wrap {
                root: (*root).to_string(),
            };
        }
    }
    Layout::Relok8s
}
