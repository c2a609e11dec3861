//! `kantup values merge | diff | relocate | backup`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use kantup_helm_values::chart::Chart;
use kantup_helm_values::diff::{diff, to_text};
use kantup_helm_values::merge::{ValueOptions, render_owned_values_as};
use kantup_helm_values::relocate::{RelocationRules, relocate_chart_dir};
use kantup_helm_values::strvals::HelmVersion;
use kantup_helm_values::value::to_go_json;
use kantup_helm_values::yaml::{lossy_in_file, parse_values, to_yaml};
use serde_json::Value;

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
    /// Values files, in order (`-f/--values`).
    #[arg(short = 'f', long = "values")]
    pub values: Vec<PathBuf>,
    /// `--set key=value[,key=value]`.
    #[arg(long)]
    pub set: Vec<String>,
    /// `--set-string key=value`.
    #[arg(long)]
    pub set_string: Vec<String>,
    /// `--set-file key=path`.
    #[arg(long)]
    pub set_file: Vec<String>,
    /// `--set-json key=json`.
    #[arg(long)]
    pub set_json: Vec<String>,
    /// `--set-literal key=value`.
    #[arg(long)]
    pub set_literal: Vec<String>,
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
    let helm = match args.helm {
        HelmMajor::V3 => HelmVersion::V3,
        HelmMajor::V4 => HelmVersion::V4,
    };
    let options = ValueOptions {
        value_files: args.values,
        json_values: args.set_json,
        values: args.set,
        string_values: args.set_string,
        file_values: args.set_file,
        literal_values: args.set_literal,
        helm,
    };
    let user = options.merge_values()?;
    let result = match &args.chart {
        Some(path) => {
            let chart = Chart::load(path)?;
            render_owned_values_as(&chart, user, helm)?
        }
        None => user,
    };
    let value = Value::Object(result);
    match ctx.output {
        OutputFormat::Json => println!("{}", to_go_json(&value)),
        OutputFormat::Table => {
            for path in lossy_in_file(&value) {
                tracing::warn!(
                    "{path}: integer beyond 2^53; Helm reads numbers in values files as float64, so pass it with --set"
                );
            }
            print!("{}", to_yaml(&value));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_values(path: &PathBuf) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Value::Object(parse_values(
        &text,
        &path.display().to_string(),
    )?))
}

fn diff_cmd(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let changes = diff(&read_values(&args.old)?, &read_values(&args.new)?);
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

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn relocate(ctx: &Ctx, args: RelocateArgs) -> anyhow::Result<ExitCode> {
    if args.registry.is_none() && args.repository_prefix.is_none() {
        anyhow::bail!("nothing to do: give --registry and/or --repository-prefix");
    }
    let hints_text = std::fs::read_to_string(&args.hints)
        .with_context(|| format!("reading {}", args.hints.display()))?;
    let patterns = kantup_bundle::hints::parse_hints(&hints_text)
        .with_context(|| format!("parsing hints {}", args.hints.display()))?;
    let mut digests = HashMap::new();
    for d in &args.digests {
        let (image, digest) = d
            .rsplit_once('=')
            .with_context(|| format!("--digest {d:?}: expected IMAGE=sha256:..."))?;
        let image: kantup_bundle::reference::Reference =
            image.parse().with_context(|| format!("--digest {d:?}"))?;
        digests.insert(image.to_string(), digest.to_string());
    }
    let dir = match &args.out {
        Some(out) => {
            if out.exists() {
                anyhow::bail!("--out {} already exists", out.display());
            }
            copy_dir(&args.chart, out)?;
            out.clone()
        }
        None => args.chart.clone(),
    };
    let rules = RelocationRules {
        registry: args.registry,
        repository_prefix: args.repository_prefix,
    };
    let report = relocate_chart_dir(&dir, &patterns, &rules, &digests)?;
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
