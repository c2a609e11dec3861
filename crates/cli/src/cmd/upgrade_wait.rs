//! What `kantup upgrade` does after helm: wait until every object of the new revision (and the
//! CRDs it applied) is ready, print what is not and why, and with `--rollback-on-failure` roll
//! back and wait for the old revision. The work is in [`kantup::ops::readiness_gate`] (and
//! [`kantup::ops::status`] for `kantup rollback`'s wait); this module binds the flags and prints.

use clap::Args;
use kantup::ops::readiness_gate::{self, GateObserver, GateOptions};
use kantup::ops::rollback::{RollbackOptions, RollbackSummary};
use kantup::ops::rollback_on_failure::RollbackOutcome;
use kantup::ops::status::{ReleaseReadiness, wait_for_revision};
use kantup::ops::upgrade::{UpgradeError, UpgradeSummary};
use kantup_k8s_apply::readiness::{ObjectReport, WaitOptions};
use serde::Serialize;
use std::process::ExitCode;

use crate::cmd::status::{live_lines, print_table, print_verdict};
use crate::output::{Ctx, Exit, OutputFormat};

/// The flags for what happens after helm.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Do not wait for the release's objects to be ready after helm (by default kantup waits,
    /// up to --timeout, with kstatus's rules, and exits 5 when they are not ready).
    #[arg(long, env = "KANTUP_NO_WAIT")]
    pub no_wait: bool,
    /// When helm fails or the objects are not ready in time, roll back to the revision before
    /// (as `kantup rollback`, CRDs included) and wait for it. The exit code stays non-zero.
    #[arg(long)]
    pub rollback_on_failure: bool,
}

impl WaitArgs {
    /// `gate` with these flags.
    pub fn bind(&self, mut gate: GateOptions) -> GateOptions {
        if self.no_wait {
            gate.wait = None;
        }
        gate.rollback_on_failure = self.rollback_on_failure;
        gate
    }
}

/// The upgrade's JSON result: the summary, the readiness (or why the wait could not judge
/// it), and the rollback when one ran.
#[derive(Serialize)]
struct UpgradeResult<'a> {
    #[serde(flatten)]
    summary: &'a UpgradeSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness: Option<&'a ReleaseReadiness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_on_failure: Option<&'a RollbackOutcome>,
}

/// Prints the gate's steps as they happen: the objects' live lines, the objects that are not
/// ready, the rollback starting.
struct Printer<'a> {
    ctx: &'a Ctx,
    lines: Box<dyn FnMut(&ObjectReport)>,
    /// How long the wait was allowed.
    timeout: std::time::Duration,
    /// The upgrade's error, when it failed (said before the rollback it causes).
    upgrade_error: Option<String>,
}

impl GateObserver for Printer<'_> {
    fn object(&mut self, report: &ObjectReport) {
        (self.lines)(report);
    }

    fn not_ready(&mut self, summary: &UpgradeSummary, readiness: &ReleaseReadiness) {
        if self.ctx.output != OutputFormat::Table {
            return;
        }
        println!();
        print_table(&readiness.not_ready().cloned().collect::<Vec<_>>());
        print_verdict(readiness);
        println!(
            "revision {} of {} is not ready{}; the release is left as it is",
            summary.revision,
            summary.release,
            if readiness.timed_out {
                format!(" after {}", humantime::format_duration(self.timeout))
            } else {
                String::new()
            }
        );
        println!("way back: {}", summary.way_back);
    }

    fn rolling_back(&mut self, target: Option<u32>) {
        if let Some(error) = &self.upgrade_error {
            eprintln!("upgrade failed: {error}");
        }
        // The rolled-back revision's objects get lines of their own.
        self.lines = Box::new(live_lines(self.ctx));
        if let Some(target) = target
            && self.ctx.output == OutputFormat::Table
        {
            println!("\nrolling back to revision {target} (--rollback-on-failure)");
        }
    }
}
/// The rest of an upgrade, once `execute` returned `result`: the readiness gate (the wait, and
/// with `--rollback-on-failure` the rollback when due), printed as it goes, then the result
/// and the exit code (5 when the new revision is not ready). `gate` is the gate for the
/// upgrade's options and the revision before it; `args` bind its flags.
pub async fn finish(
    ctx: &Ctx,
    args: &WaitArgs,
    gate: GateOptions,
    result: Result<UpgradeSummary, UpgradeError>,
    print_summary: impl Fn(&Ctx, &UpgradeSummary) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let gate = args.bind(gate);
    let table = ctx.output == OutputFormat::Table;
    if let (Ok(summary), Some(wait), true) = (&result, &gate.wait, table) {
        print_summary(ctx, summary)?;
        if !ctx.quiet {
            eprintln!(
                "waiting up to {} for the objects of revision {} to be ready (--no-wait skips this)",
                humantime::format_duration(wait.timeout),
                summary.revision
            );
        }
    }
    let mut printer = Printer {
        ctx,
        lines: Box::new(live_lines(ctx)),
        timeout: gate.rollback.timeout,
        upgrade_error: result.as_ref().err().map(ToString::to_string),
    };
    let outcome = readiness_gate::pass(result, &gate, &mut printer).await;
    if table && let Some(rollback) = &outcome.rollback {
        print_rollback(rollback);
    }
    let summary = match outcome.upgrade {
        Ok(summary) => summary,
        Err(error) => {
            if let (Some(rollback), false) = (&outcome.rollback, table) {
                ctx.print_json(&serde_json::json!({
                    "error": error.to_string(),
                    "rollback_on_failure": rollback,
                }))?;
            }
            return Err(error.into());
        }
    };
    if let Some(error) = outcome.wait_error {
        // The upgrade ran, and maybe the rollback it caused: say both before the error.
        if !table {
            ctx.print_json(&UpgradeResult {
                summary: &summary,
                readiness: None,
                wait_error: Some(error.to_string()),
                rollback_on_failure: outcome.rollback.as_ref(),
            })?;
        }
        return Err(error.into());
    }
    let Some(readiness) = &outcome.readiness else {
        // Not waited for (--no-wait).
        print_summary(ctx, &summary)?;
        return Ok(ExitCode::SUCCESS);
    };
    if table {
        if readiness.ready {
            print_verdict(readiness);
        }
    } else {
        ctx.print_json(&UpgradeResult {
            summary: &summary,
            readiness: Some(readiness),
            wait_error: None,
            rollback_on_failure: outcome.rollback.as_ref(),
        })?;
    }
    Ok(if readiness.ready {
        ExitCode::SUCCESS
    } else {
        Exit::NotReady.code()
    })
}

/// The rollback after a failure, as a table prints it.
fn print_rollback(outcome: &RollbackOutcome) {
    if let Some(done) = &outcome.rollback {
        println!(
            "rolled {} back to revision {}: new revision {}, chart {}",
            done.release, done.target_revision, done.revision, done.chart_version
        );
    }
    if let Some(readiness) = &outcome.readiness {
        if !readiness.ready {
            print_table(&readiness.not_ready().cloned().collect::<Vec<_>>());
        }
        print_verdict(readiness);
    }
    if let Some(error) = &outcome.error {
        println!("rollback on failure: {error}");
    }
}

/// `kantup rollback`'s JSON result with the wait: the summary and the readiness.
#[derive(Serialize)]
struct RollbackResult<'a> {
    #[serde(flatten)]
    summary: &'a RollbackSummary,
    readiness: &'a ReleaseReadiness,
}

/// What `kantup rollback` does after helm: unless `no_wait`, wait for the rolled-back revision
/// and the CRDs it restored, then print the verdict; exit 5 when they are not ready.
pub async fn finish_rollback(
    ctx: &Ctx,
    no_wait: bool,
    options: &RollbackOptions,
    summary: RollbackSummary,
    print_summary: impl Fn(&Ctx, &RollbackSummary) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let table = ctx.output == OutputFormat::Table;
    if no_wait || table {
        print_summary(ctx, &summary)?;
    }
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let readiness = wait_for_revision(
        &options.cluster,
        &summary.release,
        options.driver,
        summary.revision,
        &summary.crds_restored,
        &WaitOptions {
            timeout: options.timeout,
        },
        live_lines(ctx),
    )
    .await?;
    if table {
        if !readiness.ready {
            print_table(&readiness.not_ready().cloned().collect::<Vec<_>>());
        }
        print_verdict(&readiness);
    } else {
        ctx.print_json(&RollbackResult {
            summary: &summary,
            readiness: &readiness,
        })?;
    }
    Ok(if readiness.ready {
        ExitCode::SUCCESS
    } else {
        Exit::NotReady.code()
    })
}
