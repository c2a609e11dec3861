//! `kantup load ARCHIVE|BUNDLE --runtime containerd|docker|podman [--retag REGISTRY/REPO]`:
//! binds flags to [`kantup::ops::load`], prints the result and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kantup::ops::load::{self, LoadError, LoadOptions, Runtime};

use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress::BarProgress;

/// The container runtimes `load` can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    /// containerd through `ctr` (the namespace kubelet uses is `k8s.io`).
    Containerd,
    /// Docker Engine through `docker`.
    Docker,
    /// Podman through `podman`.
    Podman,
}

impl From<RuntimeArg> for Runtime {
    fn from(arg: RuntimeArg) -> Self {
        match arg {
            RuntimeArg::Containerd => Runtime::Containerd,
            RuntimeArg::Docker => Runtime::Docker,
            RuntimeArg::Podman => Runtime::Podman,
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
    runtime: RuntimeArg,
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
    #[command(flatten)]
    signature: crate::cmd::bundle::SignatureArgs,
    #[command(flatten)]
    images: crate::cmd::bundle::MissingImagesArgs,
}

pub async fn run(ctx: &Ctx, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let retag = match args.retag.as_deref().map(load::parse_retag).transpose() {
        Ok(rule) => rule,
        Err(error) => return Err(ExitError::new(Exit::Usage, error.to_string()).into()),
    };
    let options = LoadOptions {
        input: args.input,
        runtime: args.runtime.into(),
        retag,
        namespace: args.namespace,
        runtime_args: args.runtime_args,
        runtime_bin: args.runtime_bin,
        verify_key: args.signature.verify_key,
        signature: args.signature.signature,
        allow_missing_images: args.images.allow_missing_images,
    };
    let ctx = ctx.clone();
    let report = tokio::task::spawn_blocking(move || {
        let progress = BarProgress::new(&ctx);
        load::load(&options, &progress).map(|report| (ctx, report))
    })
    .await
    .context("the load task panicked")?;
    let (ctx, report) = match report {
        Ok(done) => done,
        Err(error @ LoadError::NoImages(_)) => {
            return Err(ExitError::new(Exit::NothingToDo, error.to_string()).into());
        }
        Err(error) => return Err(error.into()),
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
