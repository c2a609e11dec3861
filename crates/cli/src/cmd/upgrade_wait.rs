//! What `kantup upgrade` does after helm: wait until every object of the new revision (and the
//! CRDs it applied) is ready, print what is not and why, and with `--rollback-on-failure` roll
//! back and wait for the old revision. The work is in [`kantup::ops::status`] and
//! [`kantup::ops::rollback_on_failure`]; this module binds the flags and prints.

use clap::Args;
use kantup::ops::rollback::{RollbackOptions, RollbackSummary};
use kantup::ops::rollback_on_failure::{self, RollbackOutcome};
use kantup::ops::status::{ReleaseReadiness, wait_for_revision};
use kantup::ops::upgrade::{UpgradeError, UpgradeSummary};
use kantup_k8s_apply::readiness::WaitOptions;
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

/// The upgrade's JSON result: the summary, the readiness, and the rollback when one ran.
#[derive(Serialize)]
struct UpgradeResult<'a> {
    #[serde(flatten)]
    summary: &'a UpgradeSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness: Option<&'a ReleaseReadiness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_on_failure: Option<&'a RollbackOutcome>,
}

/// The rest of an upgrade, once `execute` returned: with `result` an error, a rollback when
/// asked (then the error); else the wait and its verdict. `rollback` reaches the cluster the
/// upgrade did; its `to_revision` is the revision before the upgrade (`None` for an install:
/// nothing to roll back to), its `timeout` the wait's.
pub async fn finish(
    ctx: &Ctx,
    args: &WaitArgs,
    rollback: RollbackOptions,
    result: Result<UpgradeSummary, UpgradeError>,
    print_summary: impl Fn(&Ctx, &UpgradeSummary) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let timeout = rollback.timeout;
    let wait = WaitOptions { timeout };
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            let helm_ran = matches!(
                error,
                UpgradeError::HelmFailed { .. } | UpgradeError::NotDeployed { .. }
            );
            if args.rollback_on_failure && helm_ran {
                eprintln!("upgrade failed: {error}");
                let outcome = roll_back(ctx, args, &rollback, &wait).await;
                if ctx.output == OutputFormat::Json {
                    ctx.print_json(&serde_json::json!({
                        "error": error.to_string(),
                        "rollback_on_failure": outcome,
                    }))?;
                }
            }
            return Err(error.into());
        }
    };
    if args.no_wait {
        print_summary(ctx, &summary)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table = ctx.output == OutputFormat::Table;
    if table {
        print_summary(ctx, &summary)?;
        if !ctx.quiet {
            eprintln!(
                "waiting up to {} for the objects of revision {} to be ready (--no-wait skips this)",
                humantime::format_duration(timeout),
                summary.revision
            );
        }
    }
    let crds: Vec<String> = summary.crds.iter().map(|c| c.name.clone()).collect();
    let readiness = wait_for_revision(
        &rollback.cluster,
        &summary.release,
        rollback.driver,
        summary.revision,
        &crds,
        &wait,
        live_lines(ctx),
    )
    .await?;
    let mut outcome = None;
    if table {
        if readiness.ready {
            print_verdict(&readiness);
        } else {
            println!();
            print_table(&readiness.not_ready().cloned().collect::<Vec<_>>());
            print_verdict(&readiness);
            println!(
                "revision {} of {} is not ready{}; the release is left as it is",
                summary.revision,
                summary.release,
                if readiness.timed_out {
                    format!(" after {}", humantime::format_duration(timeout))
                } else {
                    String::new()
                }
            );
            println!("way back: {}", summary.way_back);
        }
    }
    if !readiness.ready && args.rollback_on_failure {
        outcome = Some(roll_back(ctx, args, &rollback, &wait).await);
    }
    if !table {
        ctx.print_json(&UpgradeResult {
            summary: &summary,
            readiness: Some(&readiness),
            rollback_on_failure: outcome.as_ref(),
        })?;
    }
    Ok(if readiness.ready {
        ExitCode::SUCCESS
    } else {
        Exit::NotReady.code()
    })
}

async fn roll_back(
    ctx: &Ctx,
    args: &WaitArgs,
    options: &RollbackOptions,
    wait: &WaitOptions,
) -> RollbackOutcome {
    let Some(target) = options.to_revision else {
        let outcome = RollbackOutcome {
            target_revision: 0,
            rollback: None,
            readiness: None,
            error: Some(
                "the release was installed by this run: there is no revision to roll back to"
                    .into(),
            ),
        };
        if ctx.output == OutputFormat::Table {
            println!(
                "rollback on failure: {}",
                outcome.error.as_deref().unwrap_or_default()
            );
        }
        return outcome;
    };
    let table = ctx.output == OutputFormat::Table;
    if table {
        println!("\nrolling back to revision {target} (--rollback-on-failure)");
    }
    let outcome =
        rollback_on_failure::roll_back(options, (!args.no_wait).then_some(wait), live_lines(ctx))
            .await;
    if table {
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
    outcome
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
