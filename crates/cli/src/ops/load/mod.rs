//! Loading a bundle's images into a node's container runtime, for nodes that cannot pull:
//! feed the image archive to the runtime CLI (`ctr -n k8s.io images import`, `docker load`,
//! `podman load`), then tag each image with the name the installation uses (the relocation
//! rule: `REGISTRY/REPO/<last path segment>:<tag>`).

mod docker_node;
mod error;
mod input;
mod nodes;
mod runtime_cli;
mod ssh;

use std::path::PathBuf;

use kantup_bundle::IMAGES_MEMBER;
use kantup_registry::RelocationRule;
use serde::Serialize;

pub use error::LoadError;
pub use nodes::{
    NodeImage, NodeLoadOptions, NodeReport, NodeStatus, NodesReport, load_nodes, read_nodes_file,
};
pub use ssh::{Node, SshClient};

use crate::ops::progress::Progress;
use input::{Feed, open_input};
use runtime_cli::{ProgressReader, RuntimeCli};

/// The container runtimes images can be loaded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// containerd through `ctr` (the namespace kubelet uses is `k8s.io`).
    Containerd,
    /// Docker Engine through `docker`.
    Docker,
    /// Podman through `podman`.
    Podman,
}

impl Runtime {
    /// The runtime's CLI.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Containerd => "ctr",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

/// What to load, where.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A bundle (its `images.tar` is streamed to the runtime) or an image archive.
    pub input: PathBuf,
    /// The runtime.
    pub runtime: Runtime,
    /// Tag every image with the name this rule gives it.
    pub retag: Option<RelocationRule>,
    /// The containerd namespace (`ctr -n`).
    pub namespace: String,
    /// Global arguments for the runtime CLI, before its subcommand.
    pub runtime_args: Vec<String>,
    /// The runtime CLI to run instead of `ctr`/`docker`/`podman` from `PATH`.
    pub runtime_bin: Option<PathBuf>,
    /// Refuse the input unless its detached signature verifies with this public key.
    pub verify_key: Option<PathBuf>,
    /// The signature file (default `<input>.sig`).
    pub signature: Option<PathBuf>,
    /// How bundles are opened (the expansion limit of a compressed bundle).
    pub open: kantup_bundle::OpenOptions,
    /// Accept a bundle that lacks images its chart needs (a chart that pulls them from
    /// elsewhere on purpose); without it such a bundle is refused before anything is loaded.
    pub allow_missing_images: bool,
    /// Every image must be signed by one of these public keys (`--image-key`), checked
    /// before anything is loaded.
    pub image_keys: Vec<PathBuf>,
}

impl LoadOptions {
    /// Loading `input` into `runtime`, containerd namespace `k8s.io`, no re-tagging.
    pub fn new(input: impl Into<PathBuf>, runtime: Runtime) -> Self {
        Self {
            input: input.into(),
            runtime,
            retag: None,
            namespace: "k8s.io".to_string(),
            runtime_args: Vec::new(),
            runtime_bin: None,
            verify_key: None,
            signature: None,
            open: kantup_bundle::OpenOptions::default(),
            allow_missing_images: false,
            image_keys: Vec::new(),
        }
    }
}

/// One image loaded.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedImage {
    /// The name the archive gives the image (what the runtime stores it as).
    pub source: String,
    /// The name it was tagged with, when re-tagging was asked and the image has a tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retagged: Option<String>,
}

/// What [`load`] did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The runtime.
    pub runtime: Runtime,
    /// The input.
    pub input: PathBuf,
    /// The containerd namespace (containerd only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Every image, in archive order.
    pub images: Vec<LoadedImage>,
}

/// `REGISTRY[/REPO]` as a relocation rule.
///
/// ```
/// let rule = kantup::ops::load::parse_retag("reg.local:5000/kant").unwrap();
/// assert_eq!(rule.target_name("harbor.example/proxy/library/busybox", Some("1.0"), ""),
///            "reg.local:5000/kant/busybox:1.0");
/// assert!(kantup::ops::load::parse_retag("https://reg/x").is_err());
/// ```
pub fn parse_retag(text: &str) -> Result<RelocationRule, LoadError> {
    let (registry, prefix) = text.split_once('/').unwrap_or((text, ""));
    if registry.is_empty() || text.contains("://") || text.contains(char::is_whitespace) {
        return Err(LoadError::BadRetag(text.to_string()));
    }
    Ok(RelocationRule::new(registry, prefix))
}

/// Loads the images of `options.input` into the runtime and re-tags them. Blocking: runs the
/// runtime CLI as a child process.
pub fn load(options: &LoadOptions, progress: &dyn Progress) -> Result<LoadReport, LoadError> {
    if let Some(key) = &options.verify_key {
        kantup_bundle::signature::verify_bundle_file(
            &options.input,
            key,
            options.signature.as_deref(),
        )?;
    }
    let (feed, names) = open_input(
        &options.input,
        &options.open,
        &options.image_keys,
        options.allow_missing_images,
    )?;
    if names.is_empty() {
        return Err(LoadError::NoImages(options.input.clone()));
    }
    let runtime = RuntimeCli::new(options);

    // 1. Load.
    match &feed {
        Feed::File(path) => runtime.load(Some(path), None)?,
        Feed::Spooled(file) => runtime.load(Some(file.path()), None)?,
        Feed::BundleMember { bundle, size } => {
            let member = bundle
                .open_member(IMAGES_MEMBER)
                .map_err(|source| LoadError::Open {
                    path: options.input.clone(),
                    source,
                })?;
            progress.start(&format!("loading into {}", options.runtime.binary()), *size);
            let result = runtime.load(
                None,
                Some(Box::new(ProgressReader {
                    inner: member,
                    progress,
                })),
            );
            progress.finish();
            result?;
        }
    }

    // 2. Re-tag.
    let mut images = Vec::new();
    for name in names {
        let source = name.to_string();
        let mut retagged = None;
        if let Some(rule) = &options.retag {
            match name.reference() {
                Some(reference) if reference.tag.is_some() => {
                    let target =
                        rule.target_name(&reference.repository, reference.tag.as_deref(), "");
                    runtime.tag(&source, &target)?;
                    retagged = Some(target);
                }
                _ => tracing::warn!("{source}: no tag to keep, not re-tagged"),
            }
        }
        images.push(LoadedImage { source, retagged });
    }
    Ok(LoadReport {
        runtime: options.runtime,
        input: options.input.clone(),
        namespace: (options.runtime == Runtime::Containerd).then(|| options.namespace.clone()),
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retag_table() {
        let cases = [
            (
                "reg.local:5000/kant",
                "harbor.example/proxy/library/busybox",
                "reg.local:5000/kant/busybox:1.0",
            ),
            ("reg.local:5000/a/b/", "tiny", "reg.local:5000/a/b/tiny:1.0"),
            ("reg.local", "bitnami/wordpress", "reg.local/wordpress:1.0"),
        ];
        for (retag, repository, expected) in cases {
            let rule = parse_retag(retag).unwrap();
            assert_eq!(
                rule.target_name(repository, Some("1.0"), ""),
                expected,
                "{retag}"
            );
        }
        for bad in ["", "https://reg/x", "/kant", "reg local/x"] {
            assert!(parse_retag(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
