//! `kantup load ARCHIVE|BUNDLE --runtime containerd|docker|podman [--retag REGISTRY/REPO]`:
//! what a node needs when it cannot pull: feed the images to the local container runtime
//! (`ctr -n k8s.io images import`, `docker load`, `podman load`), then tag each image with the
//! name the installation will use (relok8s rule: REGISTRY/REPO/<last path segment>:<tag>).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use clap::{Args, ValueEnum};
use kantup_bundle::archive::{ImageArchive, ImageName};
use kantup_bundle::{Bundle, IMAGES_MEMBER};
use kantup_registry::RelocationRule;
use serde::Serialize;

use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress;

/// The container runtimes `load` can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
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
    fn binary(self) -> &'static str {
        match self {
            Runtime::Containerd => "ctr",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// A kantup/relok8s bundle (its `images.tar` is loaded) or an image archive (docker-archive
    /// or OCI-layout tar, as `docker save`/`skopeo copy` write).
    input: PathBuf,
    /// The container runtime to load into.
    #[arg(long, value_enum)]
    runtime: Runtime,
    /// Tag every loaded image as REGISTRY/REPO/<last path segment of its repository>:<tag>
    /// (the name the chart will use after relocation), e.g. `reg.local:5000/kant`.
    #[arg(long, value_name = "REGISTRY[/REPO]")]
    retag: Option<String>,
    /// containerd namespace (`ctr -n`); kubelet's images live in `k8s.io`.
    #[arg(long, default_value = "k8s.io")]
    namespace: String,
    /// Extra global argument for the runtime CLI, placed before its subcommand (repeatable),
    /// e.g. `--runtime-arg=--address=/run/k3s/containerd/containerd.sock` for ctr or
    /// `--runtime-arg=--root=/srv/podman` for podman. Also read, whitespace-separated, from
    /// KANTUP_RUNTIME_ARGS.
    #[arg(
        long = "runtime-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        env = "KANTUP_RUNTIME_ARGS",
        value_delimiter = ' '
    )]
    runtime_args: Vec<String>,
    /// The runtime CLI to run instead of `ctr`/`docker`/`podman` from PATH.
    #[arg(long, value_name = "PATH")]
    runtime_bin: Option<PathBuf>,
}

/// One image `load` handled.
#[derive(Debug, Serialize)]
struct LoadedImage {
    /// The name the archive gives the image (what the runtime stores it as).
    source: String,
    /// The name it was re-tagged to, when `--retag` was given and the image has a tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    retagged: Option<String>,
}

#[derive(Debug, Serialize)]
struct LoadReport {
    runtime: Runtime,
    input: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    images: Vec<LoadedImage>,
}

/// What to feed the runtime: the whole input file, or the bundle's `images.tar` member.
enum Feed {
    File(PathBuf),
    BundleMember { bundle: Bundle, size: u64 },
}

pub async fn run(ctx: &Ctx, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || load(&ctx, args))
        .await
        .context("the load task panicked")?
}

fn load(ctx: &Ctx, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let rule = args.retag.as_deref().map(parse_retag).transpose()?;
    let (feed, names) = open_input(&args.input)?;
    if names.is_empty() {
        return Err(ExitError::new(
            Exit::NothingToDo,
            format!(
                "{}: the image archive holds no images",
                args.input.display()
            ),
        )
        .into());
    }
    let runtime = RuntimeCli::new(&args);

    // 1. Load.
    let mut load_args: Vec<String> = match args.runtime {
        Runtime::Containerd => vec![
            "-n".into(),
            args.namespace.clone(),
            "images".into(),
            "import".into(),
        ],
        Runtime::Docker | Runtime::Podman => vec!["load".into()],
    };
    match &feed {
        Feed::File(path) => {
            let path = path.to_string_lossy().into_owned();
            match args.runtime {
                Runtime::Containerd => load_args.push(path),
                Runtime::Docker | Runtime::Podman => load_args.extend(["-i".into(), path]),
            }
            runtime.run(&load_args, None)?;
        }
        Feed::BundleMember { bundle, size } => {
            if args.runtime == Runtime::Containerd {
                load_args.push("-".into());
            }
            let bar = progress::bytes_bar(
                ctx,
                *size,
                format!("loading into {}", args.runtime.binary()),
            );
            let member = bundle
                .open_member(IMAGES_MEMBER)
                .with_context(|| format!("{}: reading {IMAGES_MEMBER}", args.input.display()))?;
            runtime.run(&load_args, Some(Box::new(bar.wrap_read(member))))?;
            bar.finish_and_clear();
        }
    }

    // 2. Re-tag.
    let bar = match rule {
        Some(_) => progress::count_bar(ctx, names.len() as u64, "re-tagging"),
        None => indicatif::ProgressBar::hidden(),
    };
    let mut images = Vec::new();
    for name in names {
        bar.inc(1);
        let source = name.to_string();
        let mut retagged = None;
        if let Some(rule) = &rule {
            match name.reference() {
                Some(reference) if reference.tag.is_some() => {
                    let target =
                        rule.target_name(&reference.repository, reference.tag.as_deref(), "");
                    let tag_args: Vec<String> = match args.runtime {
                        Runtime::Containerd => vec![
                            "-n".into(),
                            args.namespace.clone(),
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

    bar.finish_and_clear();
    let report = LoadReport {
        runtime: args.runtime,
        input: args.input.clone(),
        namespace: (args.runtime == Runtime::Containerd).then(|| args.namespace.clone()),
        images,
    };
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => {
            for image in &report.images {
                match &image.retagged {
                    Some(target) => println!("loaded {} -> tagged {target}", image.source),
                    None => println!("loaded {}", image.source),
                }
            }
        }
    }
    Ok(Exit::Ok.code())
}

/// `REGISTRY[/REPO]` into a relocation rule.
fn parse_retag(text: &str) -> anyhow::Result<RelocationRule> {
    let (registry, prefix) = text.split_once('/').unwrap_or((text, ""));
    if registry.is_empty() || text.contains("://") || text.contains(char::is_whitespace) {
        return Err(ExitError::new(
            Exit::Usage,
            format!("--retag {text:?}: expected REGISTRY[/REPO] such as reg.local:5000/kant"),
        )
        .into());
    }
    Ok(RelocationRule::new(registry, prefix))
}

/// Opens a bundle or an image archive; returns what to feed the runtime and the image names.
fn open_input(path: &Path) -> anyhow::Result<(Feed, Vec<ImageName>)> {
    let bundle = Bundle::open(path)
        .with_context(|| format!("{}: not a readable bundle or image archive", path.display()))?;
    if bundle.has_member(IMAGES_MEMBER) {
        let archive = bundle
            .image_archive()?
            .with_context(|| format!("{}: no {IMAGES_MEMBER}", path.display()))?;
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
        let archive = ImageArchive::open(path)?;
        return Ok((Feed::File(path.to_owned()), image_names(&archive)));
    }
    Err(anyhow::anyhow!(
        "{}: neither a bundle (no {IMAGES_MEMBER}) nor an image archive (no manifest.json or index.json)",
        path.display()
    ))
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
    fn new(args: &LoadArgs) -> Self {
        Self {
            program: args
                .runtime_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from(args.runtime.binary())),
            global_args: args
                .runtime_args
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
        }
    }

    /// Runs `program global_args.. args..`, streaming `stdin` into it when given.
    fn run(&self, args: &[String], stdin: Option<Box<dyn Read + Send>>) -> anyhow::Result<()> {
        let command_line = std::iter::once(self.program.display().to_string())
            .chain(self.global_args.iter().cloned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!("running {command_line}");
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
            .map_err(|error| {
                let hint = if error.kind() == std::io::ErrorKind::NotFound {
                    " (is it installed and on PATH? see --runtime-bin)"
                } else {
                    ""
                };
                anyhow::anyhow!("cannot run `{command_line}`: {error}{hint}")
            })?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(mut source), Some(mut sink)) => Some(std::thread::spawn(move || {
                let copied = std::io::copy(&mut source, &mut sink);
                drop(sink);
                copied
            })),
            _ => None,
        };
        let output = child
            .wait_with_output()
            .with_context(|| format!("waiting for `{command_line}`"))?;
        let copy_result = writer.map(|handle| handle.join());
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(anyhow::anyhow!(
                "`{command_line}` failed ({}): {}",
                output.status,
                stderr.trim()
            ));
        }
        match copy_result {
            Some(Ok(Err(error))) => {
                return Err(anyhow::anyhow!(
                    "streaming the images into `{command_line}` failed: {error}"
                ));
            }
            Some(Err(_)) => anyhow::bail!("streaming the images into `{command_line}` panicked"),
            _ => {}
        }
        tracing::debug!(
            "{command_line}: {}",
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
