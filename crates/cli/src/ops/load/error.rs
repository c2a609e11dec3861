//! Why loading failed.

use std::path::PathBuf;

use kantup_bundle::IMAGES_MEMBER;

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--retag` is not `REGISTRY[/REPO]`.
    #[error("--retag {0:?}: expected REGISTRY[/REPO] such as reg.local:5000/kant")]
    BadRetag(String),
    /// The input's signature did not verify (or there is none); nothing was loaded.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// An image is not signed by any `--image-key` (or a key is unusable); nothing was loaded.
    #[error("{0}")]
    ImageKeys(#[from] crate::ops::image_keys::ImageKeysError),
    /// The bundle lacks images its chart needs, or names images invalidly; nothing was
    /// loaded.
    #[error("{}: refused, nothing loaded", path.display())]
    Images {
        /// The bundle.
        path: PathBuf,
        /// Which images (boxed: a second unboxed `BundleError` would grow every `LoadError`).
        #[source]
        source: Box<kantup_bundle::BundleError>,
    },
    /// The input could not be read.
    #[error("{}: not a readable bundle or image archive: {source}", path.display())]
    Open {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: kantup_bundle::BundleError,
    },
    /// The input is a tar but neither a bundle nor an image archive.
    #[error(
        "{}: neither a bundle (no {IMAGES_MEMBER}) nor an image archive (no manifest.json or index.json)",
        .0.display()
    )]
    NotAnArchive(PathBuf),
    /// The archive holds no image.
    #[error("{}: the image archive holds no images", .0.display())]
    NoImages(PathBuf),
    /// A differential bundle leaves out layers a container runtime would need.
    #[error(
        "{}: a differential bundle (against {base}) cannot be loaded into a container runtime: it leaves out {omitted} layer(s) its base holds; load the full bundle, or sync this one to a registry that holds the base's images",
        path.display()
    )]
    Differential {
        /// The input.
        path: PathBuf,
        /// The base bundle: file name, chart, version, digest.
        base: String,
        /// Number of layers left out.
        omitted: usize,
    },
    /// A wrapped chart holds an image with several platforms: a node runs one.
    #[error(
        "{}: image {image} is wrapped for several platforms; kantup load takes single-platform wraps (sync it to a registry instead)",
        path.display()
    )]
    MultiPlatform {
        /// The input.
        path: PathBuf,
        /// The image.
        image: String,
    },
    /// The runtime CLI could not be started.
    #[error("cannot run `{command}`: {source}{}", if source.kind() == std::io::ErrorKind::NotFound { " (is it installed and on PATH? see --runtime-bin)" } else { "" })]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runtime CLI failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said on stderr.
        stderr: String,
    },
    /// Streaming the archive into the runtime failed.
    #[error("streaming the images into `{command}` failed: {source}")]
    Stream {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A nodes file could not be read or holds a bad entry.
    #[error("{}: {reason}", path.display())]
    NodesFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Loading onto nodes over ssh does not support this runtime.
    #[error(
        "loading onto nodes (--node/--nodes) supports --runtime containerd and docker, not {}: run kantup load --runtime {} on the node itself",
        .0.binary(), .0.binary()
    )]
    NodeRuntime(super::Runtime),
}
