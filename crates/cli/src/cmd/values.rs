//! `kantup values merge | diff | relocate | backup`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use kantup::ops::values::{self, RelocateOptions};
use kantup_helm_values::diff::to_text;
use kantup_helm_values::strvals::HelmVersion;
use kantup_helm_values::value::to_go_json;
use kantup_helm_values::yaml::{lossy_in_file, write_yaml};
use serde_json::Value;

use crate::cmd::values_args::ValuesArgs;
use crate::output::{Ctx, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum ValuesCommand {
    /// Compute values exactly as Helm does from `-f` files and `--set` flags (and, with
    /// `--chart`, the chart's defaults, subcharts and globals). Prints YAML (JSON with -o json).
    Merge(MergeArgs),
    /// Compare two values files: added, removed and changed paths.
    Diff(DiffArgs),
    /// Point a chart's image values at another registry through relok8s hints, editing its
    /// values.yaml files in place (comments kept).
    Relocate(RelocateArgs),
    /// Write what `helm get values` writes for a release, read from the cluster.
    Backup(super::cluster::BackupArgs),
}

impl ValuesCommand {
    /// Whether the command reads and writes local files only (`backup` reads the cluster).
    pub fn is_local(&self) -> bool {
        !matches!(self, ValuesCommand::Backup(_))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HelmMajor {
    /// Helm 3 (3.17).
    #[value(name = "3")]
    V3,
    /// Helm 4 (4.1).
    #[value(name = "4")]
    V4,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Chart directory or .tgz whose defaults to coalesce under the user values. Without it,
    /// prints the user-supplied values only (what `helm get values` would store).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Which Helm's semantics to follow where 3 and 4 differ.
    #[arg(long, value_enum, default_value = "3")]
    pub helm: HelmMajor,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old values file.
    pub old: PathBuf,
    /// The new values file.
    pub new: PathBuf,
}

#[derive(Debug, Args)]
pub struct RelocateArgs {
    /// The chart directory.
    #[arg(long)]
    pub chart: PathBuf,
    /// relok8s hints file (`*.images.yaml`, `.relok8s-images.yaml`, `hints.yaml`).
    #[arg(long)]
    pub hints: PathBuf,
    /// New registry host (with port).
    #[arg(long)]
    pub registry: Option<String>,
    /// New repository prefix: each repository becomes PREFIX/<its last segment>.
    #[arg(long)]
    pub repository_prefix: Option<String>,
    /// Write the relocated chart here (a copy) instead of editing --chart in place.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `IMAGE=sha256:...` digests to pin hints that have no tag placeholder.
    #[arg(long = "digest")]
    pub digests: Vec<String>,
}

pub async fn run(ctx: &Ctx, command: ValuesCommand) -> anyhow::Result<ExitCode> {
    match command {
        ValuesCommand::Merge(args) => merge(ctx, args),
        ValuesCommand::Diff(args) => diff_cmd(ctx, args),
        ValuesCommand::Relocate(args) => relocate(ctx, args),
        ValuesCommand::Backup(args) => super::cluster::run_backup(ctx, args).await,
    }
}

fn merge(ctx: &Ctx, args: MergeArgs) -> anyhow::Result<ExitCode> {
    let options = args.values.options(match args.helm {
        HelmMajor::V3 => HelmVersion::V3,
        HelmMajor::V4 => HelmVersion::V4,
    });
    // The process ends after this command: freeing a large tree node by node only delays the
    // exit, so it is never dropped.
    let value = std::mem::ManuallyDrop::new(Value::Object(values::merge(
        &options,
        args.chart.as_deref(),
    )?));
    match ctx.output {
        OutputFormat::Json => println!("{}", to_go_json(&value)),
        OutputFormat::Table => {
            let written = match write_yaml(&value, &mut std::io::stdout().lock()) {
                Ok(written) => written,
                // The reader went away (`| head`): what it wanted, it has.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Err(anyhow::Error::new(e).context("writing the values")),
            };
            if written.lossy {
                for path in lossy_in_file(&value) {
                    tracing::warn!(
                        "{path}: integer beyond 2^53; Helm reads numbers in values files as float64, so pass it with --set"
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn diff_cmd(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let changes = values::diff_files(&args.old, &args.new)?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&changes)?,
        OutputFormat::Table => {
            if changes.is_empty() {
                if !ctx.quiet {
                    println!("no differences");
                }
            } else {
                print!("{}", to_text(&changes));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn relocate(ctx: &Ctx, args: RelocateArgs) -> anyhow::Result<ExitCode> {
    let report = values::relocate(&RelocateOptions {
        chart: args.chart,
        hints: args.hints,
        registry: args.registry,
        repository_prefix: args.repository_prefix,
        out: args.out,
        digests: args.digests,
    })?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => {
            for image in &report.images {
                println!("{} -> {}", image.original, image.relocated);
            }
            if ctx.verbose > 0 {
                for edit in &report.edits {
                    println!("  {}: {} = {}", edit.file.display(), edit.path, edit.value);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
