//! `kantup`: the command-line tool. It only composes the workspace's library crates; every
//! piece of real work lives in one of them.

mod cmd;
mod output;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};

use crate::output::{Ctx, OutputFormat};

/// mimalloc instead of the system allocator: reading a values file builds a tree of many
/// small maps and strings, and glibc's malloc spent more time on them than the reading did
/// (`kantup values merge` of a 1 MiB file: 44 ms of CPU with glibc, 25 ms with mimalloc).
/// mimalloc's version 3 (the default), not 2: v2 ran that command about 1 ms faster, but held
/// on to the 1 MiB pieces of a push that one thread allocates and another frees, so
/// `kantup sync` of a 381 MiB bundle peaked at 256 MiB RSS with v2 and 35 MiB with v3.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `kantup --version`: the package version and the git commit it was built from
/// (`build.rs`; `unknown` outside a git checkout).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KANTUP_GIT_COMMIT"),
    ")"
);

/// Install and upgrade Kubernetes modules shipped as offline bundles into air-gapped clusters.
#[derive(Debug, Parser)]
#[command(
    name = "kantup",
    version = VERSION,
    about,
    propagate_version = true,
    after_help = output::EXIT_CODES_HELP
)]
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
    /// Largest size a gzip or zstd bundle may expand to while it is read (e.g. 8GiB): a
    /// bundle past it is refused as a decompression bomb. Default: 100 times the bundle's
    /// size, at least 1 GiB.
    #[arg(
        long,
        global = true,
        value_name = "SIZE",
        env = kantup_bundle::MAX_EXPANDED_SIZE_ENV,
        value_parser = parse_expanded_size
    )]
    max_expanded_size: Option<u64>,
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
    /// Upgrade a release from a bundle or chart: verify, pre-flight, back up values, apply
    /// CRDs, compute values, `helm upgrade`, check the new revision (`--plan` changes nothing).
    #[command(disable_version_flag = true)]
    Upgrade(Box<cmd::upgrade::UpgradeArgs>),
    /// Roll a release back (`helm rollback`) and put its CRDs back as that revision had them,
    /// from the snapshots `kantup upgrade` writes; refuses to drop a stored CRD version.
    Rollback(Box<cmd::rollback::RollbackArgs>),
    /// Show the readiness of a release's objects as they are now (kstatus's rules, with what
    /// is wrong underneath: pods' reasons, conditions' messages); changes nothing.
    Status(cmd::status::StatusArgs),
    /// Load a bundle's images into a node's container runtime (containerd, docker, podman)
    /// and re-tag them for the installation's registry.
    Load(cmd::load::LoadArgs),
    /// Read Helm chart repositories (Harbor, ChartMuseum, HTTP, directory, OCI): list versions,
    /// pull verified chart archives.
    #[command(subcommand)]
    Repo(cmd::repo::RepoCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(cmd::completions::CompletionsArgs),
    /// Print the man page, or write one page per command into a directory.
    Man(cmd::completions::ManArgs),
}

impl Command {
    /// Whether the command works on local files only, without the network, the cluster or
    /// parallel work.
    fn is_local(&self) -> bool {
        match self {
            Command::Values(command) => command.is_local(),
            Command::Completions(_) | Command::Man(_) => true,
            _ => false,
        }
    }
}

/// `--max-expanded-size`: clap names only the flag in its error, also when the value came from
/// the environment variable, so the message names both.
fn parse_expanded_size(text: &str) -> Result<u64, String> {
    kantup_bundle::OpenOptions::parse_size(text).map_err(|e| {
        format!(
            "{e} (set by --max-expanded-size or {})",
            kantup_bundle::MAX_EXPANDED_SIZE_ENV
        )
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The bundle options travel as a value to every workflow that opens a bundle.
    let open = kantup_bundle::OpenOptions {
        max_expanded_size: cli.max_expanded_size,
    };
    let ctx = Ctx::new(cli.output, cli.verbose, cli.quiet, open);
    ctx.init_logging();
    // Commands that only read and write local files run on the calling thread: a multi-thread
    // runtime first starts a worker thread per core, which they would never use.
    let mut builder = if cli.command.is_local() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bundle(command) => cmd::bundle::run(&ctx, command).await,
            Command::Sync(args) => cmd::sync::run(&ctx, args).await,
            Command::Values(command) => cmd::values::run(&ctx, command).await,
            Command::Crds(command) => cmd::cluster::run_crds(&ctx, command).await,
            Command::Preflight(args) => cmd::cluster::run_preflight(&ctx, args).await,
            Command::Upgrade(args) => cmd::upgrade::run(&ctx, *args).await,
            Command::Rollback(args) => cmd::rollback::run(&ctx, *args).await,
            Command::Status(args) => cmd::status::run(&ctx, args).await,
            Command::Load(args) => cmd::load::run(&ctx, args).await,
            Command::Repo(command) => cmd::repo::run(&ctx, command).await,
            Command::Completions(args) => cmd::completions::run_completions(Cli::command(), args),
            Command::Man(args) => cmd::completions::run_man(&ctx, Cli::command(), args),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (unique names, valid defaults) over every command.
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
