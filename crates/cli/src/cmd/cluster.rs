//! Commands that talk to the Kubernetes API: `crds apply`, `values backup`, `preflight`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::output::Ctx;

#[derive(Debug, Subcommand)]
pub enum CrdsCommand {}

#[derive(Debug, Args)]
pub struct BackupArgs {}

#[derive(Debug, Args)]
pub struct PreflightArgs {}

pub async fn run_crds(_ctx: &Ctx, command: CrdsCommand) -> anyhow::Result<ExitCode> {
    match command {}
}

pub async fn run_backup(_ctx: &Ctx, _args: BackupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kantup values backup is not built yet (issue 5)")
}

pub async fn run_preflight(_ctx: &Ctx, _args: PreflightArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kantup preflight is not built yet (issue 5)")
}
