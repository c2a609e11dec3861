//! `kantup status`: binds flags to [`kantup::ops::status`] and prints the readiness table; also
//! the printers `upgrade` and `rollback` use for their wait (live lines, the table at the end).

use std::process::ExitCode;

use clap::Args;
use kantup::ops::release::ReleaseId;
use kantup::ops::status::{self, ReleaseReadiness, StatusOptions};
use kantup_k8s_apply::readiness::ObjectReport;

use crate::cmd::cluster::HelmClusterArgs;
use crate::output::{Ctx, Exit, OutputFormat};

/// Show the readiness of a release's objects as they are now (kstatus's rules); change nothing.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The release.
    #[arg(long)]
    pub release: String,
    /// The release's namespace.
    #[arg(long, short = 'n')]
    pub namespace: String,
    #[command(flatten)]
    pub cluster: HelmClusterArgs,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let options = StatusOptions {
        release: ReleaseId::new(&args.release, &args.namespace),
        cluster: args.cluster.access()?,
        driver: args.cluster.driver()?,
    };
    let report = status::status(&options).await?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&report)?;
    } else {
        println!(
            "{}: revision {} (chart {}, helm status {})",
            report.release, report.revision, report.chart_version, report.helm_status
        );
        print_table(&report.objects);
        print_verdict(&report);
    }
    Ok(exit_for_readiness(&report))
}

/// 0 when every object is Current, else [`Exit::NotReady`].
pub fn exit_for_readiness(report: &ReleaseReadiness) -> ExitCode {
    if report.ready {
        ExitCode::SUCCESS
    } else {
        Exit::NotReady.code()
    }
}

/// The readiness table: one row per object, the problems found underneath indented below it.
pub fn print_table(objects: &[ObjectReport]) {
    let width = objects
        .iter()
        .map(|o| o.object.to_string().len())
        .max()
        .unwrap_or(0)
        .max("OBJECT".len());
    println!("{:<width$}  {:<11}  MESSAGE", "OBJECT", "STATUS");
    for report in objects {
        println!(
            "{:<width$}  {:<11}  {}",
            report.object.to_string(),
            report.readiness.status.as_str(),
            report.readiness.message
        );
        for detail in &report.details {
            println!("{:<width$}    {detail}", "");
        }
    }
}

/// One line under the table: all ready, or how many are not.
pub fn print_verdict(report: &ReleaseReadiness) {
    let not_ready = report.not_ready().count();
    if not_ready == 0 {
        println!("all {} objects are ready", report.objects.len());
    } else {
        println!(
            "{not_ready} of {} objects not ready{}",
            report.objects.len(),
            if report.timed_out { " (timed out)" } else { "" }
        );
    }
}

/// Shows each object's changes while a wait runs, on stderr (stdout stays for the result): on a
/// terminal, one line per object rewritten in place (a spinner until it is Current); else
/// plain lines, one per change, for logs. Nothing in `-o json` or `--quiet`.
pub fn live_lines(ctx: &Ctx) -> impl FnMut(&ObjectReport) + use<> {
    let lines = crate::progress::LiveLines::new(ctx);
    move |report: &ObjectReport| {
        let mut line = format!("{} {}", report.object, report.readiness);
        if let Some(first) = report.details.first() {
            line.push_str(&format!(" ({first})"));
        }
        lines.set(&format!("{:?}", report.object), line, report.is_current());
    }
}
