//! `kantup rollback`: binds flags to [`kantup::ops::rollback`], prints the plan and the result.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use kantup::ops::duration::parse_duration;
use kantup::ops::release::ReleaseId;
use kantup::ops::rollback::{self, RollbackOptions, RollbackPlan, RollbackSummary};

use crate::cmd::cluster::HelmClusterArgs;
use crate::output::{Ctx, OutputFormat};

/// Roll a release back with `helm rollback` and put its CRDs back as they were.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The release.
    #[arg(long)]
    pub release: String,
    /// The release's namespace.
    #[arg(long, short = 'n')]
    pub namespace: String,
    /// The revision to return to (default: the newest earlier deployed revision).
    #[arg(long, value_name = "N")]
    pub to_revision: Option<u32>,
    /// Where `kantup upgrade` wrote its values backups and CRD snapshots.
    #[arg(long, default_value = ".")]
    pub backup_dir: PathBuf,
    /// Show everything the rollback would do and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Leave the CRDs as they are (what `helm rollback` alone does).
    #[arg(long)]
    pub skip_crds: bool,
    /// The helm binary to run.
    #[arg(long, default_value = "helm", env = "KANTUP_HELM")]
    pub helm: PathBuf,
    #[command(flatten)]
    pub cluster: HelmClusterArgs,
    /// Passed to `helm rollback --timeout`, and the CRD wait timeout.
    #[arg(long, default_value = crate::cmd::defaults::ROLLBACK_TIMEOUT.as_str(), value_parser = parse_duration)]
    pub timeout: Duration,
    /// Do not wait for the rolled-back revision's objects to be ready (by default kantup
    /// waits, up to --timeout, with kstatus's rules, and exits 5 when they are not ready).
    #[arg(long, env = "KANTUP_NO_WAIT")]
    pub no_wait: bool,
}

pub async fn run(ctx: &Ctx, args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let options = RollbackOptions {
        release: ReleaseId::new(&args.release, &args.namespace),
        to_revision: args.to_revision,
        backup_dir: args.backup_dir.clone(),
        helm: args.helm.clone(),
        cluster: args.cluster.access()?,
        driver: args.cluster.driver()?,
        timeout: args.timeout,
        // kantup waits itself, after helm, with kstatus's rules (`--no-wait` skips it).
        wait: false,
        skip_crds: args.skip_crds,
    };
    let prepared = rollback::plan(&options).await?;
    let plan = prepared.plan();
    if args.plan {
        print_plan(ctx, plan)?;
        return Ok(crate::output::success_if(plan.blockers.is_empty()));
    }
    if !plan.blockers.is_empty() {
        print_plan(ctx, plan)?;
    } else if !args.yes {
        crate::cmd::confirm(
            "roll back",
            "rollback",
            || print_plan(ctx, plan),
            &format!(
                "Roll {} back to revision {}?",
                plan.release, plan.target_revision
            ),
        )?;
    }
    let summary = rollback::execute(prepared).await?;
    crate::cmd::upgrade_wait::finish_rollback(ctx, args.no_wait, &options, summary, print_summary)
        .await
}

fn print_plan(ctx: &Ctx, plan: &RollbackPlan) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return ctx.print_json(plan);
    }
    println!(
        "roll back {}: revision {} (chart {}) -> revision {} (chart {})",
        plan.release,
        plan.current_revision,
        plan.current_chart_version,
        plan.target_revision,
        plan.target_chart_version
    );
    println!("\nCRDs:");
    if let Some(note) = &plan.crd_note {
        println!("  {note}");
    }
    for snapshot in &plan.snapshots {
        println!("  from {}", snapshot.display());
    }
    crate::cmd::tables::print_plans(&plan.crds, "  ");
    for added in &plan.added_crds {
        let what = match added.action {
            "delete" => "delete (created by the upgrade, no objects)",
            "keep" => "keep (created by the upgrade; objects exist and would be deleted with it)",
            _ => "already gone",
        };
        println!("  {:<40} {what}", added.name);
    }
    println!("\nhelm command:\n  {}", plan.helm_command);
    for blocker in &plan.blockers {
        println!("would refuse: {blocker}");
    }
    Ok(())
}

fn print_summary(ctx: &Ctx, summary: &RollbackSummary) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return ctx.print_json(summary);
    }
    println!(
        "rolled {} back to revision {}: new revision {}, chart {}",
        summary.release, summary.target_revision, summary.revision, summary.chart_version
    );
    println!("CRDs restored: {}", list(&summary.crds_restored));
    println!("CRDs deleted:  {}", list(&summary.crds_deleted));
    if !summary.crds_kept.is_empty() {
        println!(
            "CRDs kept:     {} (custom objects exist)",
            list(&summary.crds_kept)
        );
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(", ")
    }
}
