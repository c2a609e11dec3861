//! Bitnami wrapped charts: what `helm dt wrap` (vmware-labs/distribution-tooling-for-helm)
//! writes and `helm dt unwrap` reads, a `<chart>-<version>.wrap.tgz`:
//!
//! ```text
//! <chart>-<version>/chart/                  the chart, as it was wrapped
//! <chart>-<version>/chart/Images.lock       every image, one digest per platform
//! <chart>-<version>/images/<hex>.layout/    one OCI image layout per platform manifest,
//!                                           named by the manifest digest's hex
//! <chart>-<version>/artifacts/images/...    signatures, attestations, SBOMs and referrers of
//!                                           the images, one OCI layout per cosign tag (see
//!                                           [`artifacts`]); dt's `.metadata` is not read
//! ```
//!
//! [`Bundle::open`](crate::Bundle::open) recognizes the layout, so everything that reads a
//! bundle reads a wrap: [`Bundle::chart`](crate::Bundle::chart) is `chart/`,
//! [`Bundle::image_archive`](crate::Bundle::image_archive) is every layout of `images/` as one
//! archive, each manifest named by the `Images.lock` entry that lists its digest. An image
//! with several platforms is also given an OCI image index (listing its platform manifests in
//! lock order), named by the lock's reference; each platform manifest is then named by digest.
//! [`create_wrap`] writes the same layout.

/// The chart directory inside a wrap's top directory.
pub const WRAP_CHART_DIR: &str = "chart";
/// The images directory inside a wrap's top directory.
pub const WRAP_IMAGES_DIR: &str = "images";
/// The suffix of each image's OCI layout directory.
pub const LAYOUT_SUFFIX: &str = ".layout";

pub mod artifacts;
mod lock;
mod read;
mod write;

pub use lock::lock_for;
pub(crate) use read::image_archive;
pub use write::{WrapOptions, create_wrap, create_wrap_carrying};
