//! kantup: the offline bundle format.
//!
//! A bundle is the relok8s intermediate layout — `hints.yaml` (image hint patterns),
//! `original-chart/` (the Helm chart) and `images.tar` (an image archive) — in a plain, gzip or
//! zstd tar. This crate reads it without extracting ([`Bundle`]), models its parts
//! ([`chart::Chart`], [`hints::ImagePattern`], [`archive::ImageArchive`]), verifies it,
//! unpacks it safely and creates it reproducibly.
//!
//! Bad input fails with an error naming the file and member, before anything is written; a
//! gzip or zstd bundle that expands past its limit (a decompression bomb) is refused as it
//! expands, see [`OpenOptions`].
//!
//! ```
//! # let root = kantup_test_support::workspace_root();
//! use kantup_bundle::Bundle;
//! let bundle = Bundle::open(root.join("examples/bundles/testchart.bundle.tar"))?;
//! let chart = bundle.chart()?;
//! for image in bundle.image_archive()?.expect("images.tar").images() {
//!     println!("{} {}", image.display_name(), image.manifest_digest);
//! }
//! # Ok::<(), kantup_bundle::BundleError>(())
//! ```

#![warn(missing_docs)]

pub mod archive;
pub mod atomic;
mod bundle;
pub mod chart;
pub mod chart_file;
pub mod create;
pub mod differential;
mod digest;
pub mod discovery;
mod error;
mod file_error;
pub mod hints;
pub mod image_check;
pub mod image_signature;
mod image_source;
pub mod images_lock;
pub mod media_types;
mod open_options;
pub mod reference;
pub mod relocation;
pub mod signature;
mod source;
mod unpack;
mod verify;
pub mod wrap;
mod write;

pub use bundle::{
    Bundle, CHART_DIR, CHECKSUMS_MEMBER, HINTS_MEMBER, IMAGES_MEMBER, Layout, MemberInfo,
};
pub use digest::{Digest, DigestParseError, DigestReader, DigestWriter};
pub use error::BundleError;
pub use file_error::FileError;
pub use open_options::{
    DEFAULT_EXPANSION_RATIO, MAX_EXPANDED_SIZE_ENV, MIN_DEFAULT_EXPANSION, OpenOptions,
    SizeParseError,
};
pub use unpack::{UnpackOptions, UnpackReport};
pub use verify::{VerifyOptions, VerifyReport, verify_archive};
