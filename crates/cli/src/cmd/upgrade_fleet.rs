//! `kantup upgrade` over several clusters (`--context` more than once, or `--fleet FILE`):
//! binds the flags to [`kantup::ops::fleet`], prints the plan table, a live line per cluster
//! (redrawn in place on a terminal, a plain line per state change otherwise) and the final
//! table (or `-o json`), and picks the exit code: 0 only when every cluster is done.

use std::process::ExitCode;

use kantup::ops::fleet::{self, ClusterPlan, ClusterReport, FleetCluster, FleetOptions};
use kantup::ops::image_check::ImageCheckOptions;
use kantup::ops::upgrade::UpgradeOptions;
use kantup_k8s_apply::crd::PlanAction;

use crate::cmd::upgrade::UpgradeArgs;
use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress::LiveLines;

pub async fn run(
    ctx: &Ctx,
    args: &UpgradeArgs,
    upgrade: UpgradeOptions,
) -> anyhow::Result<ExitCode> {
    let usage = |message: String| ExitError::new(Exit::Usage, message);
    let clusters = match &args.fleet.fleet {
        Some(file) => fleet::select(fleet::read_fleet_file(file)?, &args.fleet.selector)?,
        None => args
            .cluster
            .cluster
            .context
            .iter()
            .map(|context| {
                FleetCluster::from_context(args.cluster.cluster.kubeconfig.clone(), context)
            })
            .collect(),
    };
    if clusters.is_empty() {
        return Err(usage(format!(
            "no cluster of the fleet matches --selector {}",
            args.fleet.selector.join(",")
        ))
        .into());
    }
    for canary in &args.fleet.canary {
        if !clusters.iter().any(|c| &c.name == canary) {
            return Err(usage(format!(
                "--canary {canary}: no such cluster in the fleet ({})",
                clusters
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    let mut options = FleetOptions::new(upgrade, clusters);
    options.canary = args.fleet.canary.clone();
    options.max_parallel = usize::from(args.fleet.max_parallel);
    options.max_failures = args.fleet.max_failures;
    options.rollback_on_failure = args.after_helm.rollback_on_failure;
    options.wait = !args.after_helm.no_wait;
    options.image_check = (!args.skip_image_check).then(|| ImageCheckOptions {
        http: args.tls.http_options(),
        ..ImageCheckOptions::default()
    });
    let table = ctx.output == OutputFormat::Table;
    let prepared = fleet::plan(&options).await;
    if args.plan {
        if table {
            print_plans(prepared.plans());
        } else {
            ctx.print_json(&prepared.plans())?;
        }
        return Ok(crate::output::success_if(prepared.passed()));
    }
    if table && !ctx.quiet {
        print_plans(prepared.plans());
        println!();
    }
    if !args.yes {
        crate::cmd::confirm(
            "upgrade",
            "upgrade",
            || Ok(()),
            &format!(
                "Upgrade release {} on {} cluster(s)?",
                args.release,
                prepared.plans().len()
            ),
        )?;
    }
    let lines = LiveLines::new(ctx);
    let report = fleet::execute(prepared, move |line| {
        lines.set(&line.name, live_line(line), line.state.is_final());
    })
    .await;
    if table {
        print_report(&report.clusters);
        if let Some(stopped) = &report.stopped {
            println!("the rollout stopped: {stopped}");
        }
    } else {
        ctx.print_json(&report)?;
    }
    Ok(if report.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn live_line(line: &ClusterReport) -> String {
    let mut text = format!("cluster {}: {}", line.name, line.state);
    if let Some(revision) = line.revision {
        text.push_str(&format!(" (revision {revision})"));
    }
    if let Some(reason) = &line.reason {
        text.push_str(&format!(": {reason}"));
    }
    text
}

fn print_plans(plans: &[ClusterPlan]) {
    let width =
        crate::cmd::tables::name_width(plans.iter().map(|p| p.name.as_str())).max("CLUSTER".len());
    println!(
        "{:width$}  {:<28}  {:>5}  {:>6}  BLOCKERS",
        "CLUSTER", "ACTION", "CRDS", "VALUES"
    );
    for plan in plans {
        let (action, crds, values) = match &plan.plan {
            None if !plan.reachable => ("unreachable".to_string(), "-".into(), "-".into()),
            None => ("-".to_string(), "-".into(), "-".into()),
            Some(p) => (
                if p.up_to_date {
                    format!("up to date ({})", p.chart_version)
                } else if p.install {
                    format!("install {}", p.chart_version)
                } else {
                    format!(
                        "upgrade {} -> {}",
                        p.deployed_chart_version.as_deref().unwrap_or("-"),
                        p.chart_version
                    )
                },
                format!(
                    "{}/{}",
                    p.crds
                        .iter()
                        .filter(|c| c.action != PlanAction::Unchanged)
                        .count(),
                    p.crds.len()
                ),
                p.values_changes.len().to_string(),
            ),
        };
        println!(
            "{:width$}  {action:<28}  {crds:>5}  {values:>6}  {}",
            plan.name,
            if plan.blockers.is_empty() {
                "-".to_string()
            } else {
                plan.blockers.join("; ")
            }
        );
    }
}

fn print_report(clusters: &[ClusterReport]) {
    let width = crate::cmd::tables::name_width(clusters.iter().map(|c| c.name.as_str()))
        .max("CLUSTER".len());
    println!(
        "{:width$}  {:<12}  {:>8}  {:<24}  {:<24}  REASON",
        "CLUSTER", "STATE", "REVISION", "STARTED", "ENDED"
    );
    for cluster in clusters {
        println!(
            "{:width$}  {:<12}  {:>8}  {:<24}  {:<24}  {}",
            cluster.name,
            cluster.state.to_string(),
            cluster
                .revision
                .map_or_else(|| "-".to_string(), |r| r.to_string()),
            cluster.started_at.as_deref().unwrap_or("-"),
            cluster.ended_at.as_deref().unwrap_or("-"),
            cluster.reason.as_deref().unwrap_or("-")
        );
    }
}
