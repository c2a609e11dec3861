//! Why a sync stopped.

use std::path::PathBuf;

use kantup_bundle::BundleError;
use kantup_registry::RegistryError;

use super::config::ConfigError;

/// Why a sync stopped. Images or charts that failed one by one do not stop it: they are in the
/// [`SyncReport`]. Every library error is kept as the source (never flattened into text), so a
/// caller can read it from the chain: a digest mismatch, incomplete credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The config file cannot be used.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A bundle's signature did not verify (or there is none); nothing was pushed.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// An image is not signed by any `--image-key` (or a key is unusable); nothing was pushed.
    #[error("{0}")]
    ImageKeys(#[from] crate::ops::image_keys::ImageKeysError),
    /// `signature` names one file but the source holds several bundles.
    #[error(
        "--signature names one signature file but {} holds {count} bundles; leave it out to use <bundle>.sig beside each",
        directory.display()
    )]
    OneSignatureManyBundles {
        /// The bundles' directory.
        directory: PathBuf,
        /// How many bundles it holds.
        count: usize,
    },
    /// The config names no bundles.
    #[error(
        "{}: source.intermediateBundlesPath is required (a bundle file or a directory of bundles)",
        config.display()
    )]
    MissingSource {
        /// The config file.
        config: PathBuf,
    },
    /// `source.intermediateBundlesPath` is not there.
    #[error("source.intermediateBundlesPath {} does not exist", .0.display())]
    SourceNotFound(PathBuf),
    /// The bundle directory could not be listed.
    #[error("reading {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Nothing to sync: no file there is a bundle.
    #[error("no bundles (tar files with a chart inside) in {}", .0.display())]
    NoBundles(PathBuf),
    /// A setting of the config's `target` is missing or wrong.
    #[error("{0}")]
    Target(String),
    /// Credentials could not be resolved (half a pair, an unreadable docker config, ...).
    #[error("{0}")]
    Credentials(#[from] kantup_registry::credentials::CredentialsError),
    /// The target registry cannot be reached or trusted.
    #[error("connecting to the registry {host}")]
    Connect {
        /// The registry.
        host: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A registry or chart repository error.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// One bundle could not be synced; bundles before it were.
    #[error("bundle {}", path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<SyncError>,
    },
    /// The bundle could not be read.
    #[error("{0}")]
    BundleFile(#[from] BundleError),
    /// The chart's images could not be listed, or its values not rewritten.
    #[error(transparent)]
    Images(#[from] crate::ops::images::ImagesError),
    /// The chart's image values could not be rewritten.
    #[error("relocating the image values of {chart}")]
    Relocate {
        /// `<name>-<version>`.
        chart: String,
        /// Why.
        #[source]
        source: kantup_helm_values::Error,
    },
    /// A differential bundle's left-out layers are not in the target registry; nothing was
    /// pushed.
    #[error(
        "{} is a differential bundle against {base}; {} of the layers it leaves out are not in {host}: {}. Sync the base bundle to this registry first, or use the full bundle. Nothing was pushed.",
        bundle.display(),
        missing.len(),
        missing.join("; ")
    )]
    BaseNotInRegistry {
        /// The differential bundle.
        bundle: PathBuf,
        /// Its base, as recorded in it.
        base: String,
        /// The target registry.
        host: String,
        /// `<image> needs <digest> in <repository>`, one per missing layer.
        missing: Vec<String>,
    },
    /// A differential bundle's left-out layers are not in the target OCI layout.
    #[error(
        "{} is a differential bundle: {} layer(s) it leaves out are not in the OCI layout {}: {}; write the base bundle's images there first, or use the full bundle",
        bundle.display(),
        missing.len(),
        layout.display(),
        missing.join(", ")
    )]
    BaseNotInLayout {
        /// The differential bundle.
        bundle: PathBuf,
        /// The OCI layout directory.
        layout: PathBuf,
        /// The missing layer digests.
        missing: Vec<String>,
    },
}
