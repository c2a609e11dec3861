//! `kantup sync --config load-image.yaml`.

use std::process::ExitCode;

use clap::Args;

use crate::output::Ctx;

#[derive(Debug, Args)]
pub struct SyncArgs {}

pub async fn run(_ctx: &Ctx, _args: SyncArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kantup sync is not built yet (issue 3)")
}
