//! `kantup load ARCHIVE|BUNDLE --runtime containerd|docker|podman [--retag REGISTRY/REPO]`:
//! binds flags to [`kantup::ops::load`], prints the result and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kantup::ops::load::{self, LoadOptions, Node, NodeLoadOptions, Runtime, SshClient};

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
    /// Load onto this node over ssh instead of the local runtime (repeatable):
    /// `ssh://[USER@]HOST[:PORT]`. Runs the system `ssh` (or KANTUP_SSH), so ~/.ssh/config,
    /// the agent, known_hosts and jump hosts apply; only the layers the node lacks are sent.
    #[arg(long = "node", value_name = "ssh://[USER@]HOST[:PORT]")]
    nodes: Vec<String>,
    /// A YAML list of nodes (`- ssh://root@edge-1` or `- {host: edge-2, user: root, port: 22}`).
    #[arg(long = "nodes", value_name = "FILE")]
    nodes_file: Option<PathBuf>,
    /// An ssh `-o` option for every connection to a node (repeatable), e.g.
    /// `--ssh-option UserKnownHostsFile=/etc/kantup/known_hosts`. BatchMode=yes is always set.
    #[arg(long = "ssh-option", value_name = "KEY=VALUE")]
    ssh_options: Vec<String>,
    /// Nodes loaded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    #[command(flatten)]
    images: crate::cmd::bundle::MissingImagesArgs,
    #[command(flatten)]
    image_keys: crate::cmd::image_key_args::ImageKeyArgs,
}

pub async fn run(ctx: &Ctx, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let retag = args.retag.as_deref().map(load::parse_retag).transpose()?;
    if !args.nodes.is_empty() || args.nodes_file.is_some() {
        return run_nodes(ctx, args, retag).await;
    }
    let options = LoadOptions {
        open: ctx.open.clone(),
        input: args.input,
        runtime: args.runtime.into(),
        retag,
        namespace: args.namespace,
        runtime_args: args.runtime_args,
        runtime_bin: args.runtime_bin,
        verify_key: args.signature.verify_key,
        signature: args.signature.signature,
        allow_missing_images: args.images.allow_missing_images,
        image_keys: args.image_keys.image_keys.clone(),
    };
    let ctx = ctx.clone();
    let report = tokio::task::spawn_blocking(move || {
        let progress = BarProgress::new(&ctx);
        load::load(&options, &progress).map(|report| (ctx, report))
    })
    .await
    .context("the load task panicked")?;
    let (ctx, report) = report?;
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

async fn run_nodes(
    ctx: &Ctx,
    args: LoadArgs,
    retag: Option<kantup_registry::RelocationRule>,
) -> anyhow::Result<ExitCode> {
    let mut nodes = Vec::new();
    for text in &args.nodes {
        nodes.push(Node::parse(text).map_err(|e| ExitError::new(Exit::Usage, e))?);
    }
    if let Some(file) = &args.nodes_file {
        nodes.extend(
            load::read_nodes_file(file).map_err(|e| ExitError::new(Exit::Usage, e.to_string()))?,
        );
    }
    let mut ssh = SshClient {
        options: args.ssh_options,
        ..SshClient::default()
    };
    if let Ok(command) = std::env::var("KANTUP_SSH") {
        let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if !words.is_empty() {
            ssh.command = words;
        }
    }
    let options = NodeLoadOptions {
        input: args.input,
        nodes,
        runtime: args.runtime.into(),
        retag,
        namespace: args.namespace,
        runtime_args: args
            .runtime_args
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect(),
        runtime_bin: args
            .runtime_bin
            .map(|path| path.to_string_lossy().into_owned()),
        ssh,
        max_parallel: usize::from(args.max_parallel),
        open: ctx.open.clone(),
        allow_missing_images: args.images.allow_missing_images,
        image_keys: args.image_keys.image_keys.clone(),
    };
    if let Some(key) = &args.signature.verify_key {
        kantup_bundle::signature::verify_bundle_file(
            &options.input,
            key,
            args.signature.signature.as_deref(),
        )?;
    }
    let report = tokio::task::spawn_blocking(move || load::load_nodes(&options))
        .await
        .context("the load task panicked")?;
    // Exit codes come from output::exit_for over the typed error.
    let report = report?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => {
            for node in &report.nodes {
                match &node.error {
                    None => println!(
                        "{}: done, {} image name(s) checked; sent {} blob(s), {} bytes; {} blob(s) already there",
                        node.node,
                        node.images.len(),
                        node.blobs_sent,
                        node.bytes_sent,
                        node.blobs_skipped
                    ),
                    Some(error) => println!("{}: FAILED: {error}", node.node),
                }
            }
        }
    }
    if report.all_done() {
        Ok(Exit::Ok.code())
    } else {
        let failed = report.nodes.iter().filter(|n| n.error.is_some()).count();
        Err(ExitError::new(
            Exit::Failure,
            format!("{failed} of {} node(s) failed", report.nodes.len()),
        )
        .into())
    }
}
