//! Everything that can stop an upgrade, each naming what was kept and the way back once
//! something changed.

use std::path::PathBuf;

use crate::ops::helm::HelmError;

/// Everything that can stop an upgrade.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The source path does not exist.
    #[error("{}: no such bundle, chart directory or chart archive", .0.display())]
    NoSource(PathBuf),
    /// The source is a file that is neither a bundle nor a chart archive.
    #[error("{} is neither a bundle nor a chart archive: {source}", path.display())]
    NotAChart {
        /// The file.
        path: PathBuf,
        /// Why it is not a chart archive.
        #[source]
        source: kantup_bundle::BundleError,
    },
    /// The bundle failed verification.
    #[error("verifying {}: {source}", path.display())]
    Verify {
        /// The bundle.
        path: PathBuf,
        /// What did not match.
        #[source]
        source: kantup_bundle::BundleError,
    },
    /// Reading the chart failed.
    #[error("{0}")]
    Bundle(#[from] kantup_bundle::BundleError),
    /// Computing values failed.
    #[error("{0}")]
    Values(#[from] kantup_helm_values::Error),
    /// A Kubernetes API request, the kubeconfig, or a CRD apply failed.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// `--image-registry` is not a host.
    #[error("--image-registry {0:?} is not a registry host")]
    BadImageRegistry(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(kantup_bundle::FileError),
    /// The source's signature did not verify (or there is none); nothing was changed.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
    /// Pulling the chart from its repository failed (not found, digest mismatch, ...).
    #[error("{0}")]
    Repository(#[from] kantup_registry::chart_repo::RepoError),
    /// An `oci://` source whose last path segment is not a chart name, without a chart named.
    #[error("{0}: name the chart with --chart")]
    OciChartNotNamed(String),
    /// A repository URL without a chart named.
    #[error("{0} is a chart repository: name the chart with --chart")]
    RepositoryChartNotNamed(String),
    /// A signature was asked for a source that is not one file.
    #[error(
        "{0}: --verify-key needs a bundle or chart archive file (not a directory or repository)"
    )]
    SignatureNeedsFile(String),
    /// `--image-key` for a source that carries no images (not a bundle).
    #[error("{0}: --image-key needs a bundle (its images and their signatures travel in it)")]
    ImageKeyNeedsBundle(String),
    /// An image is not signed by any `--image-key` (or a key is unusable); nothing changed.
    #[error("{0}")]
    ImageKeys(#[from] crate::ops::image_keys::ImageKeysError),
    /// helm could not be run (before anything changed).
    #[error("{0}")]
    Helm(#[from] HelmError),
    /// A pre-flight check failed; nothing was changed.
    #[error(
        "pre-flight failed for release {release} in namespace {namespace}: {failed}; nothing was changed"
    )]
    PreflightFailed {
        /// The release.
        release: String,
        /// The namespace.
        namespace: String,
        /// The failed checks, one line.
        failed: String,
    },
    /// Applying CRDs failed after the backup was written.
    #[error("applying CRDs failed (values backup kept at {}): {source}", backup.display())]
    Crds {
        /// The values backup.
        backup: PathBuf,
        /// What failed.
        #[source]
        source: Box<kantup_k8s_apply::Error>,
    },
    /// helm failed.
    #[error("helm {verb} failed; values backup kept at {}; {way_back}: {source}", backup.display())]
    HelmFailed {
        /// `upgrade` or `install`.
        verb: &'static str,
        /// The values backup.
        backup: PathBuf,
        /// The command that returns to the last good state.
        way_back: String,
        /// helm's failure.
        #[source]
        source: HelmError,
    },
    /// helm succeeded but the release is not at a new deployed revision.
    #[error(
        "after helm, release {release} is at revision {revision} with status {status} (expected a \
         new deployed revision); values backup kept at {}; {way_back}",
        backup.display()
    )]
    NotDeployed {
        /// The release.
        release: String,
        /// Its latest revision.
        revision: u32,
        /// That revision's status.
        status: String,
        /// The values backup.
        backup: PathBuf,
        /// The command that returns to the last good state.
        way_back: String,
    },
}

impl UpgradeError {
    /// A failed operation on a file or directory.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        UpgradeError::Io(kantup_bundle::FileError {
            action,
            path: path.into(),
            source,
        })
    }
}
