//! Loading a bundle's images into a node's container runtime, for nodes that cannot pull:
//! feed the image archive to the runtime CLI (`ctr -n k8s.io images import`, `docker load`,
//! `podman load`), then tag each image with the name the installation uses (the relocation
//! rule: `REGISTRY/REPO/<last path segment>:<tag>`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kantup_bundle::archive::{ImageArchive, ImageName};
use kantup_bundle::{Bundle, IMAGES_MEMBER};
use kantup_registry::RelocationRule;
use serde::Serialize;

use crate::ops::progress::Progress;

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

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--retag` is not `REGISTRY[/REPO]`.
    #[error("--retag {0:?}: expected REGISTRY[/REPO] such as reg.local:5000/kant")]
    BadRetag(String),
    /// The input's signature did not verify (or there is none); nothing was loaded.
    #[error("{0}")]
    Signature(#[from] kantup_bundle::signature::SignatureError),
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

/// What to feed the runtime: the whole input file, or the bundle's `images.tar` member.
enum Feed {
    File(PathBuf),
    BundleMember {
        bundle: Bundle,
        size: u64,
    },
    /// A wrapped chart's images, written as one archive the runtimes load (a wrap keeps one OCI
    /// layout per image, which no runtime CLI reads).
    Spooled(tempfile::NamedTempFile),
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
    let (feed, names) = open_input(&options.input)?;
    if names.is_empty() {
        return Err(LoadError::NoImages(options.input.clone()));
    }
    let runtime = RuntimeCli::new(options);

    // 1. Load.
    let mut load_args: Vec<String> = match options.runtime {
        Runtime::Containerd => vec![
            "-n".into(),
            options.namespace.clone(),
            "images".into(),
            "import".into(),
        ],
        Runtime::Docker | Runtime::Podman => vec!["load".into()],
    };
    match &feed {
        Feed::File(_) | Feed::Spooled(_) => {
            let path = match &feed {
                Feed::Spooled(file) => file.path().to_string_lossy().into_owned(),
                Feed::File(path) => path.to_string_lossy().into_owned(),
                Feed::BundleMember { .. } => unreachable!("matched above"),
            };
            match options.runtime {
                Runtime::Containerd => load_args.push(path),
                Runtime::Docker | Runtime::Podman => load_args.extend(["-i".into(), path]),
            }
            runtime.run(&load_args, None)?;
        }
        Feed::BundleMember { bundle, size } => {
            if options.runtime == Runtime::Containerd {
                load_args.push("-".into());
            }
            let member = bundle
                .open_member(IMAGES_MEMBER)
                .map_err(|source| LoadError::Open {
                    path: options.input.clone(),
                    source,
                })?;
            progress.start(&format!("loading into {}", options.runtime.binary()), *size);
            let result = runtime.run(
                &load_args,
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
                    let tag_args: Vec<String> = match options.runtime {
                        Runtime::Containerd => vec![
                            "-n".into(),
                            options.namespace.clone(),
                            "images".into(),
                            "tag".into(),
                            "--force".into(),
                            source.clone(),
                            target.clone(),
                        ],
                        Runtime::Docker | Runtime::Podman => {
                            vec!["tag".into(), source.clone(), target.clone()]
                        }
                    };
                    runtime.run(&tag_args, None)?;
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

/// Reports bytes read to a [`Progress`].
struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Opens a bundle or an image archive; returns what to feed the runtime and the image names.
fn open_input(path: &Path) -> Result<(Feed, Vec<ImageName>), LoadError> {
    let open_error = |source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    };
    let bundle = Bundle::open(path).map_err(open_error)?;
    if let Some(record) = bundle.base().map_err(open_error)? {
        return Err(LoadError::Differential {
            path: path.to_path_buf(),
            base: record.base.to_string(),
            omitted: record.omitted.len(),
        });
    }
    if let kantup_bundle::Layout::Wrap { .. } = bundle.layout() {
        let archive = bundle
            .image_archive()
            .map_err(open_error)?
            .ok_or_else(|| LoadError::NoImages(path.to_path_buf()))?;
        if let Some(index) = archive.indexes().first() {
            return Err(LoadError::MultiPlatform {
                path: path.to_path_buf(),
                image: index
                    .references
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| index.digest.to_string()),
            });
        }
        let images: Vec<_> = archive.images().iter().collect();
        let spool = tempfile::Builder::new()
            .prefix(".kantup-load-")
            .suffix(".tar")
            .tempfile()
            .map_err(|e| {
                open_error(kantup_bundle::BundleError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })
            })?;
        let out = std::io::BufWriter::new(spool.reopen().map_err(|e| {
            open_error(kantup_bundle::BundleError::Io {
                path: spool.path().to_path_buf(),
                source: e,
            })
        })?);
        let out =
            kantup_bundle::archive::oci_layout::write_archive_tar(out, &archive, &images, |_| {})
                .map_err(open_error)?;
        out.into_inner().map_err(|e| {
            open_error(kantup_bundle::BundleError::Io {
                path: spool.path().to_path_buf(),
                source: e.into_error(),
            })
        })?;
        return Ok((Feed::Spooled(spool), image_names(&archive)));
    }
    if bundle.has_member(IMAGES_MEMBER) {
        let archive = bundle
            .image_archive()
            .map_err(open_error)?
            .ok_or_else(|| LoadError::NotAnArchive(path.to_path_buf()))?;
        let names = image_names(&archive);
        let size = bundle
            .members()
            .into_iter()
            .find(|m| m.name == IMAGES_MEMBER)
            .map(|m| m.size)
            .unwrap_or(0);
        return Ok((Feed::BundleMember { bundle, size }, names));
    }
    if bundle.has_member("manifest.json") || bundle.has_member("index.json") {
        let archive = ImageArchive::open(path).map_err(open_error)?;
        return Ok((Feed::File(path.to_owned()), image_names(&archive)));
    }
    Err(LoadError::NotAnArchive(path.to_path_buf()))
}

fn image_names(archive: &ImageArchive) -> Vec<ImageName> {
    archive
        .images()
        .iter()
        .flat_map(|image| image.references.iter().cloned())
        .collect()
}

/// Runs the runtime CLI with its global arguments and reports failures with its stderr.
struct RuntimeCli {
    program: PathBuf,
    global_args: Vec<String>,
}

impl RuntimeCli {
    fn new(options: &LoadOptions) -> Self {
        Self {
            program: options
                .runtime_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from(options.runtime.binary())),
            global_args: options
                .runtime_args
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
        }
    }

    /// Runs `program global_args.. args..`, streaming `stdin` into it when given.
    fn run(
        &self,
        args: &[String],
        stdin: Option<Box<dyn Read + Send + '_>>,
    ) -> Result<(), LoadError> {
        let command = std::iter::once(self.program.display().to_string())
            .chain(self.global_args.iter().cloned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!("running {command}");
        let mut child = Command::new(&self.program)
            .args(&self.global_args)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LoadError::Spawn {
                command: command.clone(),
                source,
            })?;
        let (output, copied) = std::thread::scope(|scope| {
            let writer = match (stdin, child.stdin.take()) {
                (Some(mut source), Some(mut sink)) => Some(scope.spawn(move || {
                    let copied = std::io::copy(&mut source, &mut sink);
                    drop(sink);
                    copied
                })),
                _ => None,
            };
            let output = child.wait_with_output();
            let copied = writer.map(|handle| handle.join());
            (output, copied)
        });
        let output = output.map_err(|source| LoadError::Spawn {
            command: command.clone(),
            source,
        })?;
        if !output.status.success() {
            return Err(LoadError::Failed {
                command,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        match copied {
            Some(Ok(Err(source))) => return Err(LoadError::Stream { command, source }),
            Some(Err(_)) => {
                return Err(LoadError::Stream {
                    command,
                    source: std::io::Error::other("the copying thread panicked"),
                });
            }
            _ => {}
        }
        tracing::debug!(
            "{command}: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        );
        Ok(())
    }
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
