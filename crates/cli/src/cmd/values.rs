//! `kantup values merge | diff | relocate | backup`.

use std::process::ExitCode;

use clap::Subcommand;

use crate::output::Ctx;

#[derive(Debug, Subcommand)]
pub enum ValuesCommand {
    /// Write what `helm get values` writes for a release, read from the cluster.
    Backup(super::cluster::BackupArgs),
}

pub async fn run(ctx: &Ctx, command: ValuesCommand) -> anyhow::Result<ExitCode> {
    match command {
        ValuesCommand::Backup(args) => super::cluster::run_backup(ctx, args).await,
    }
}
