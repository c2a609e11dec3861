//! `kantup`: the command-line tool. It only composes the workspace's library crates; every
//! piece of real work lives in one of them.

mod cmd;
mod output;
mod progress;

use clap::{Parser, Subcommand};

use crate::output::{Ctx, OutputFormat};

/// Install and upgrade Kubernetes modules shipped as offline bundles into air-gapped clusters.
#[derive(Debug, Parser)]
#[command(name = "kantup", version, about, propagate_version = true)]
struct Cli {
    /// Output format for results.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// More logging (-v info, -vv debug, -vvv trace). Logs go to stderr.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Only errors; no progress bars.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read, verify, unpack and create offline bundles.
    #[command(subcommand)]
    Bundle(cmd::bundle::BundleCommand),
    /// Push a bundle's images and chart to a registry and chart repository (charts-syncer's
    /// `load-image.yaml` works unchanged).
    Sync(cmd::sync::SyncArgs),
    /// Compute, compare, relocate and back up Helm values.
    #[command(subcommand)]
    Values(cmd::values::ValuesCommand),
    /// Apply a chart's CustomResourceDefinitions (server-side apply).
    #[command(subcommand)]
    Crds(cmd::cluster::CrdsCommand),
    /// Check that a release is safe to upgrade.
    Preflight(cmd::cluster::PreflightArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx::new(cli.output, cli.verbose, cli.quiet);
    ctx.init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bundle(command) => cmd::bundle::run(&ctx, command).await,
            Command::Sync(args) => cmd::sync::run(&ctx, args).await,
            Command::Values(command) => cmd::values::run(&ctx, command).await,
            Command::Crds(command) => cmd::cluster::run_crds(&ctx, command).await,
            Command::Preflight(args) => cmd::cluster::run_preflight(&ctx, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            output::print_error(&error);
            output::exit_code_for(&error)
        }
    }
}
