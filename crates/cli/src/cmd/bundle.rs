//! `kantup bundle inspect | verify | unpack | create`.

use std::process::ExitCode;

use clap::Subcommand;

use crate::output::Ctx;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {}

pub async fn run(_ctx: &Ctx, command: BundleCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
