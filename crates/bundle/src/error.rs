//! The crate's one error type. Every message names the file, member, image or field at fault.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::hints::HintsError;
use crate::image_source::ImageSource;

/// Everything that can go wrong reading, verifying, unpacking or creating a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file could not be written whole (see [`crate::atomic`]).
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: empty file, not a bundle")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A tar stream is malformed (truncated, bad header, bad checksum).
    #[error("{path}: malformed tar: {reason}")]
    Tar {
        /// The file (or `bundle!member` for nested archives).
        path: String,
        /// What the tar reader reported.
        reason: String,
    },
    /// A compressed stream is corrupt.
    #[error("{path}: corrupt {format} stream: {reason}")]
    Compression {
        /// The file or member.
        path: String,
        /// `gzip` or `zstd`.
        format: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A member name is not UTF-8.
    #[error("{path}: member name is not UTF-8: {name_lossy:?}")]
    NonUtf8Name {
        /// The archive.
        path: String,
        /// The name with invalid bytes replaced.
        name_lossy: String,
    },
    /// A blob a differential bundle left out (its base holds it) was asked for.
    #[error(
        "{path}: blob {digest} is not in this differential bundle (its base bundle holds it); it must already be in the target"
    )]
    BlobOmitted {
        /// The archive.
        path: String,
        /// The blob.
        digest: Digest,
    },
    /// A member appears twice.
    #[error("{path}: duplicate member {member:?}")]
    DuplicateMember {
        /// The archive.
        path: String,
        /// The repeated name.
        member: String,
    },
    /// A member that must exist does not.
    #[error("{path}: missing member {member:?}")]
    MissingMember {
        /// The archive or directory.
        path: String,
        /// The missing name.
        member: String,
    },
    /// A member path or link would escape the target, or is a device/fifo.
    #[error("{path}: unsafe member {member:?}: {reason}")]
    UnsafeMember {
        /// The archive.
        path: String,
        /// The member name.
        member: String,
        /// Why it is refused.
        reason: String,
    },
    /// A member or total size is past the configured limit.
    #[error("{path}: member {member:?} declares {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The archive.
        path: String,
        /// The member.
        member: String,
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// `hints.yaml` (or another hints file) is invalid.
    #[error("{path}: {source}")]
    Hints {
        /// The hints file or member.
        path: String,
        /// The cause.
        #[source]
        source: HintsError,
    },
    /// The chart's image list (`Images.lock`, `Chart.yaml` annotations) is unusable.
    #[error(transparent)]
    Discovery(Box<DiscoveryError>),
    /// A chart is malformed.
    #[error("chart {path}: {reason}")]
    Chart {
        /// The chart directory, archive or member.
        path: String,
        /// What is wrong (names the field or file).
        reason: String,
    },
    /// A JSON or YAML document could not be decoded.
    #[error("{path}: invalid {format}: {reason}")]
    Document {
        /// The member or file.
        path: String,
        /// `JSON` or `YAML`.
        format: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// An image archive is malformed (names the member and image).
    #[error("{path}: {reason}")]
    ImageArchive {
        /// The archive, with member when relevant.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A signature, attestation, SBOM or referrer is about a manifest the archive does not
    /// hold (see [`crate::archive::attachment`]).
    #[error(
        "{path}: {attachment} is about {subject}, which the archive does not hold (was the image re-pushed or rebuilt after it was signed? save the image and its signatures from the same source)"
    )]
    AttachmentWithoutSubject {
        /// The archive.
        path: String,
        /// The attachment (kind, tag or referrer, digest).
        attachment: String,
        /// The manifest it names.
        subject: Digest,
    },
    /// A bundle cannot keep some signatures, attestations or SBOMs of its images, and was not
    /// told to drop them.
    #[error(
        "{archive}: {reason}, so the bundle would lose {}: refused (--drop-signatures leaves them out)",
        .lost.join(", ")
    )]
    AttachmentsNotKept {
        /// The image archive.
        archive: String,
        /// Why they cannot be kept.
        reason: String,
        /// Each attachment, described (kind, name or digest, and its image).
        lost: Vec<String>,
    },
    /// A blob was requested that the archive does not hold.
    #[error("{path}: no blob {digest}")]
    BlobNotFound {
        /// The archive.
        path: String,
        /// The digest asked for.
        digest: Digest,
    },
    /// Content does not hash to the digest it is named by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which blob, member or layer (names the image).
        what: String,
        /// Declared digest.
        expected: Digest,
        /// Computed digest.
        actual: Digest,
    },
    /// Content has a different size than declared.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Which blob or member.
        what: String,
        /// Declared size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// A gzip or zstd bundle expands past the limit set for it (a decompression bomb, or a
    /// bundle that needs a higher limit): refused before the temporary file grows further.
    #[error("{path}: the {format} stream expands past {}, {}; a decompression bomb? If it is a real bundle, raise the limit (kantup: --max-expanded-size SIZE or KANTUP_MAX_EXPANDED_SIZE=SIZE)",
        human(*limit),
        if *configured { "the limit set for it".to_string() } else { format!("the default limit ({} times its compressed size of {}, at least {})", crate::open_options::DEFAULT_EXPANSION_RATIO, human(*compressed), human(crate::open_options::MIN_DEFAULT_EXPANSION)) })]
    ExpansionLimit {
        /// The bundle.
        path: PathBuf,
        /// `gzip` or `zstd`.
        format: &'static str,
        /// The limit, in bytes.
        limit: u64,
        /// The bundle's (compressed) size.
        compressed: u64,
        /// Whether the limit was set ([`crate::OpenOptions::max_expanded_size`]) rather than
        /// the default.
        configured: bool,
    },
    /// The bundle lacks images its chart needs, or names images invalidly (see
    /// [`crate::image_check`]).
    #[error("{0}")]
    Images(Box<ImageProblems>),
    /// Bad input given by the caller (a path, an option).
    #[error("{0}")]
    Invalid(String),
}

/// Why [`ImageCheck::require`](crate::image_check::ImageCheck::require) refused a bundle
/// ([`BundleError::Images`]); the message names every image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProblems {
    /// The bundle.
    pub bundle: String,
    /// Where the list of needed images came from.
    pub source: ImageSource,
    /// Needed images the bundle does not carry.
    pub missing: Vec<String>,
    /// Invalid names in the image archive, each with the reason.
    pub invalid: Vec<String>,
}

impl std::fmt::Display for ImageProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.bundle)?;
        if !self.missing.is_empty() {
            write!(
                f,
                "{} image(s) the chart needs (listed by {}) are not in the bundle: {}; if the chart pulls them from elsewhere on purpose, pass --allow-missing-images",
                self.missing.len(),
                self.source,
                self.missing.join(", ")
            )?;
            if !self.invalid.is_empty() {
                f.write_str("; and ")?;
            }
        }
        if !self.invalid.is_empty() {
            write!(
                f,
                "{} image name(s) in the image archive are not valid references: {}",
                self.invalid.len(),
                self.invalid.join(", ")
            )?;
        }
        Ok(())
    }
}

/// A byte count in binary units (`1.0 GiB`).
fn human(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

impl BundleError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BundleError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn archive(path: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        BundleError::ImageArchive {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn json(path: impl std::fmt::Display, e: serde_json::Error) -> Self {
        BundleError::Document {
            path: path.to_string(),
            format: "JSON",
            reason: e.to_string(),
        }
    }

    /// Whether this error means content failed verification (digest or size mismatch), as
    /// opposed to an unreadable or malformed input.
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            BundleError::DigestMismatch { .. } | BundleError::SizeMismatch { .. }
        )
    }
}

impl From<DiscoveryError> for BundleError {
    fn from(e: DiscoveryError) -> Self {
        BundleError::Discovery(Box::new(e))
    }
}

/// Why images could not be listed. Messages name the chart, file and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// An annotation is not a list of `{name, image}`.
    #[error("chart {chart}: Chart.yaml annotation {key:?}: {reason}")]
    Annotation {
        /// The chart (or subchart) name.
        chart: String,
        /// The annotation key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// `Images.lock` is unusable.
    #[error(transparent)]
    Lock(#[from] crate::images_lock::ImagesLockError),
    /// Rendered manifests are not YAML.
    #[error("rendered manifests: {0}")]
    Manifests(String),
    /// A hints file is not a list of image patterns.
    #[error("{file}: {source}")]
    HintsFile {
        /// The hints file (`<bundle>!hints.yaml`, `<chart>/.relok8s-images.yaml`).
        file: String,
        /// Why.
        #[source]
        source: HintsError,
    },
    /// Hints that do not render to a valid image reference against the chart's values (every
    /// one is named, with what it rendered to).
    #[error("{file}: {} hint(s) do not render to a valid image reference: {}", problems.len(), problems.join("; "))]
    BadHints {
        /// The hints file.
        file: String,
        /// One line per hint: the template, and what it rendered to or why it could not.
        problems: Vec<String>,
    },
}
