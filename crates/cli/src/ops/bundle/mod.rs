//! The bundle workflows behind `kantup bundle`: [`inspect`] what a bundle holds, [`verify`] it,
//! [`unpack`] it, [`create`] one (relok8s or wrapped), [`export_images`] into an OCI image
//! layout, and [`sign`] it. What changes between two bundles is
//! [`bundle_diff`](crate::ops::bundle_diff).
//!
//! ```no_run
//! use kantup::ops::bundle::{self, VerifyBundleOptions};
//! use kantup::ops::progress::Silent;
//! let options = VerifyBundleOptions {
//!     deep: true,
//!     ..VerifyBundleOptions::new("kant.bundle.tar")
//! };
//! let report = bundle::verify(&options, &Silent)?;
//! println!("{} blobs verified", report.blobs);
//! # Ok::<(), kantup::ops::bundle::BundleOpError>(())
//! ```

mod create;
mod export;
mod inspect;
mod sbom;
mod sign;

use std::path::{Path, PathBuf};

use kantup_bundle::{
    Bundle, BundleError, OpenOptions, UnpackOptions, UnpackReport, VerifyOptions, VerifyReport,
};

pub use create::{BundleFormat, CreateBundleOptions, create};
pub use export::{ExportOptions, ExportedImages, export_images};
pub use inspect::{BundleInspection, ChartSummary, inspect};
pub use sbom::{SbomEntry, SbomOptions, SbomReport, sboms};
pub use sign::{SignOptions, sign};

use crate::ops::progress::Progress;

/// Why a bundle workflow failed. Library errors are kept as the source, so a caller can read
/// them from the chain (a digest mismatch is a [`BundleError`] there).
#[derive(Debug, thiserror::Error)]
pub enum BundleOpError {
    /// The bundle (or an image archive, a chart) could not be read or written.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// The bundle's signature did not verify (or there is none), or a key is unusable.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// The chart's images could not be listed.
    #[error("{0}")]
    Images(#[from] crate::ops::images::ImagesError),
    /// The bundle failed verification.
    #[error("verification of {} failed", path.display())]
    Verify {
        /// The bundle.
        path: PathBuf,
        /// What did not match.
        #[source]
        source: BundleError,
    },
    /// A wrapped chart was asked to be differential.
    #[error(
        "--base makes a differential relok8s bundle; a wrap (--format wrap) is always complete"
    )]
    WrapWithBase,
    /// The bundle holds no images to export.
    #[error("{} holds no images", .0.display())]
    NoImages(PathBuf),
    /// An image asked for is not in the bundle.
    #[error("image {image:?} is not in {}", bundle.display())]
    ImageNotFound {
        /// The image as asked for.
        image: String,
        /// The bundle.
        bundle: PathBuf,
    },
    /// A file could not be written.
    #[error("{0}")]
    Write(#[from] kantup_bundle::atomic::WriteError),
    /// A scratch file could not be made.
    #[error("{action}")]
    Scratch {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// What [`verify`] checks.
#[derive(Debug, Clone)]
pub struct VerifyBundleOptions {
    /// The bundle.
    pub bundle: PathBuf,
    /// Also decompress every layer and check it against the config's diff IDs.
    pub deep: bool,
    /// Also check the bundle's detached signature with this public key (PEM), first.
    pub key: Option<PathBuf>,
    /// The signature file (default `<bundle>.sig`).
    pub signature: Option<PathBuf>,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: OpenOptions,
    /// Pass a bundle that lacks images its chart needs (they are listed in the report).
    pub allow_missing_images: bool,
}

impl VerifyBundleOptions {
    /// Every blob and member checksum of `bundle`, no layer decompression, no signature.
    pub fn new(bundle: impl Into<PathBuf>) -> Self {
        Self {
            bundle: bundle.into(),
            deep: false,
            key: None,
            signature: None,
            open: OpenOptions::default(),
            allow_missing_images: false,
        }
    }
}

/// Checks the signature of `bundle` when a key is given; nothing when not.
fn check_signature(
    bundle: &Path,
    key: Option<&Path>,
    signature: Option<&Path>,
) -> Result<(), BundleOpError> {
    if let Some(key) = key {
        kantup_bundle::signature::verify_bundle_file(bundle, key, signature)?;
        tracing::info!(bundle = %bundle.display(), key = %key.display(), "signature verified");
    }
    Ok(())
}

/// Checks the signature (when a key is given), then every blob, member checksum and, with
/// `deep`, layer diff ID of the bundle; progress counts the bundle's bytes.
pub fn verify(
    options: &VerifyBundleOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport, BundleOpError> {
    check_signature(
        &options.bundle,
        options.key.as_deref(),
        options.signature.as_deref(),
    )?;
    let bundle = Bundle::open_with(&options.bundle, &options.open)?;
    progress.start("verifying", bundle.tar_size());
    let result = bundle.verify(
        VerifyOptions {
            deep: options.deep,
            allow_missing_images: options.allow_missing_images,
        },
        &mut |n| progress.advance(n),
    );
    progress.finish();
    result.map_err(|source| BundleOpError::Verify {
        path: options.bundle.clone(),
        source,
    })
}

/// What [`unpack`] unpacks, where.
#[derive(Debug, Clone)]
pub struct UnpackBundleOptions {
    /// The bundle.
    pub bundle: PathBuf,
    /// The target directory; must not exist or be empty.
    pub target: PathBuf,
    /// Refuse members larger than this many bytes (default: the library's limit).
    pub max_member_size: Option<u64>,
    /// Refuse bundles whose members total more than this many bytes (default: the library's
    /// limit).
    pub max_total_size: Option<u64>,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: OpenOptions,
}

/// Unpacks the bundle safely into the target directory; progress counts the bundle's bytes.
pub fn unpack(
    options: &UnpackBundleOptions,
    progress: &dyn Progress,
) -> Result<UnpackReport, BundleOpError> {
    let bundle = Bundle::open_with(&options.bundle, &options.open)?;
    let mut limits = UnpackOptions::default();
    if let Some(n) = options.max_member_size {
        limits.max_member_size = n;
    }
    if let Some(n) = options.max_total_size {
        limits.max_total_size = n;
    }
    progress.start("unpacking", bundle.tar_size());
    let result = bundle.unpack(&options.target, limits, &mut |n| progress.advance(n));
    progress.finish();
    Ok(result?)
}
