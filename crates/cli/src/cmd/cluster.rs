//! Commands that talk to the Kubernetes API: `crds apply`, `values backup`, `preflight`.
//! All real work is in `kantup-k8s-apply`; this file parses flags, picks the CRD source and
//! prints results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use kantup::ops::crds::{self, CrdsApplyOptions};
use kantup::ops::duration::parse_duration;
use kantup::ops::preflight::{PreflightOptions, preflight};
use kantup::ops::values::{self, BackupOptions};
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::ConflictPolicy;
use kantup_k8s_apply::release::StorageDriver;
use serde::Serialize;

use crate::cmd::tables::{action_word, name_width, print_checks, print_plans};
use crate::output::{Ctx, OutputFormat, success_if};

/// How to reach the cluster (as kubectl: `--kubeconfig` or `$KUBECONFIG`, `~/.kube/config`,
/// in-cluster): the one group of cluster flags, flattened into every command that talks to it.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file(s) (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context). `upgrade` takes it several
    /// times: one upgrade over the clusters of these contexts (a fleet).
    #[arg(long, value_name = "NAME")]
    pub context: Vec<String>,
}

impl ClusterArgs {
    /// The cluster, as kubectl would reach it with these flags; a usage error when `--context`
    /// is given more than once (only `upgrade` reaches a fleet).
    pub fn access(&self) -> anyhow::Result<ClusterAccess> {
        if self.context.len() > 1 {
            return Err(crate::output::ExitError::new(
                crate::output::Exit::Usage,
                format!(
                    "--context is given {} times: only `kantup upgrade` works on several clusters",
                    self.context.len()
                ),
            )
            .into());
        }
        Ok(self.first_access())
    }

    /// The cluster of the first `--context` (kubectl's resolution without one): the one
    /// cluster, or the template each cluster of a fleet upgrade replaces.
    pub fn first_access(&self) -> ClusterAccess {
        ClusterAccess {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.first().cloned(),
        }
    }
}

/// `--refuse-conflicts` (and the hidden `--force-conflicts`, the default kept for scripts):
/// whose CRD fields kantup may take over.
#[derive(Debug, Args)]
pub struct ConflictArgs {
    /// Take over CRD fields owned by other field managers (the default; kept for scripts).
    #[arg(long, hide = true, conflicts_with = "refuse_conflicts")]
    pub force_conflicts: bool,
    /// Refuse, before any change, when another field manager (helm, kubectl, ...) owns CRD
    /// fields the chart sets; by default kantup takes them over and names the managers.
    #[arg(long)]
    pub refuse_conflicts: bool,
}

impl ConflictArgs {
    /// The policy these flags ask for.
    pub fn policy(&self) -> ConflictPolicy {
        if self.refuse_conflicts {
            ConflictPolicy::Refuse
        } else {
            ConflictPolicy::TakeOver
        }
    }
}

/// How the commands that read Helm release records (`upgrade`, `rollback`, `values backup`,
/// `preflight`) reach the cluster and the records: the cluster flags and helm's storage
/// driver, the same ones helm is given.
#[derive(Debug, Args)]
pub struct HelmClusterArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Helm's storage driver: secret (default) or configmap, as `HELM_DRIVER`.
    #[arg(long, env = "HELM_DRIVER", value_name = "DRIVER")]
    pub helm_driver: Option<String>,
}

impl HelmClusterArgs {
    /// The cluster, as kubectl would reach it with these flags (see [`ClusterArgs::access`]).
    pub fn access(&self) -> anyhow::Result<ClusterAccess> {
        self.cluster.access()
    }

    /// Where helm keeps the release records.
    pub fn driver(&self) -> kantup_k8s_apply::Result<StorageDriver> {
        StorageDriver::from_helm_driver(self.helm_driver.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum CrdsCommand {
    /// Server-side apply a chart's CRDs (Helm never upgrades them) and wait until served.
    Apply(CrdsApplyArgs),
}

#[derive(Debug, Args)]
pub struct CrdsApplyArgs {
    /// A chart directory, a `crds/` directory, a chart `.tgz`, or a kantup bundle.
    pub path: PathBuf,
    /// Only show what would change (new / changed / unchanged, the fields other managers own,
    /// what the server would refuse), asking the server with a dry-run; apply nothing.
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub conflicts: ConflictArgs,
    /// Allow removing versions still listed in status.storedVersions.
    #[arg(long)]
    pub allow_version_removal: bool,
    /// How long to wait for each CRD to be Established (e.g. `90s`, `2m`, `60`).
    #[arg(long, default_value = crate::cmd::defaults::CRDS_TIMEOUT.as_str(), value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The release name.
    #[arg(long, short = 'r')]
    pub release: String,
    /// The release namespace (default: the context's namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// A revision other than the latest.
    #[arg(long)]
    pub revision: Option<u32>,
    /// Computed values (chart defaults coalesced with the user values), like `helm get values --all`.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Write to this file (atomically, mode 0600) instead of stdout.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: HelmClusterArgs,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The release name.
    #[arg(long, short = 'r')]
    pub release: String,
    /// The release namespace (default: the context's namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The chart version about to be installed.
    #[arg(long, value_name = "VERSION")]
    pub chart_version: Option<String>,
    /// Accept a lower chart version than the deployed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    #[command(flatten)]
    pub cluster: HelmClusterArgs,
}

pub async fn run_crds(ctx: &Ctx, command: CrdsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CrdsCommand::Apply(args) => crds_apply(ctx, args).await,
    }
}

async fn crds_apply(ctx: &Ctx, args: CrdsApplyArgs) -> anyhow::Result<ExitCode> {
    let options = CrdsApplyOptions {
        open: ctx.open.clone(),
        path: args.path,
        conflicts: args.conflicts.policy(),
        allow_version_removal: args.allow_version_removal,
        timeout: args.timeout,
        cluster: args.cluster.access()?,
    };
    let prepared = crds::plan(&options).await?;
    if args.plan {
        match ctx.output {
            OutputFormat::Json => ctx.print_json(&prepared.plans())?,
            OutputFormat::Table => print_plans(prepared.plans(), ""),
        }
        // A plan the apply would refuse is a failed plan.
        return Ok(success_if(prepared.refusal().is_none()));
    }
    let applied = crds::execute(prepared).await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&applied)?,
        OutputFormat::Table => {
            if !ctx.quiet {
                let width = name_width(applied.iter().map(|c| c.name.as_str()));
                println!("{:<width$} {:<10} STATUS", "CRD", "WAS");
                for crd in &applied {
                    let status = if crd.resource_version.is_some() {
                        "applied, established"
                    } else {
                        "established (not written)"
                    };
                    println!(
                        "{:<width$} {:<10} {status}",
                        crd.name,
                        action_word(&crd.action)
                    );
                    if !crd.taken_over.is_empty() {
                        println!(
                            "{:<width$} {:<10} took over fields from {}",
                            "",
                            "",
                            kantup_k8s_apply::describe_conflicts(&crd.taken_over)
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct BackupResult<'a> {
    release: &'a str,
    namespace: &'a str,
    revision: u32,
    all: bool,
    file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<serde_json::Value>,
}

pub async fn run_backup(ctx: &Ctx, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let driver = args.cluster.driver()?;
    let options = BackupOptions {
        release: args.release.clone(),
        namespace: args.namespace.clone(),
        cluster: args.cluster.access()?,
        revision: args.revision,
        all: args.all,
        file: args.file.clone(),
        driver,
    };
    let backup = values::backup(&options).await?;
    let namespace = backup.release.namespace.clone();
    match (ctx.output, &args.file) {
        (OutputFormat::Table, None) => print!("{}", backup.yaml),
        (OutputFormat::Table, Some(file)) => {
            if !ctx.quiet {
                eprintln!(
                    "wrote {} values of release {} revision {} to {}",
                    if args.all {
                        "computed"
                    } else {
                        "user-supplied"
                    },
                    args.release,
                    backup.revision,
                    file.display()
                );
            }
        }
        (OutputFormat::Json, file) => ctx.print_json(&BackupResult {
            release: &args.release,
            namespace: &namespace,
            revision: backup.revision,
            all: args.all,
            file: file.as_deref(),
            // Values may hold secrets: only printed when they are not going to a file.
            values: file.is_none().then_some(backup.values),
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_preflight(ctx: &Ctx, args: PreflightArgs) -> anyhow::Result<ExitCode> {
    let driver = args.cluster.driver()?;
    let report = preflight(&PreflightOptions {
        release: args.release.clone(),
        namespace: args.namespace.clone(),
        chart_version: args.chart_version.clone(),
        allow_downgrade: args.allow_downgrade,
        driver,
        cluster: args.cluster.access()?,
    })
    .await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => print_checks(&report.checks, ""),
    }
    Ok(success_if(report.passed()))
}
