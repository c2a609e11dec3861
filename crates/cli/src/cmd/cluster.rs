//! Commands that talk to the Kubernetes API: `crds apply`, `values backup`, `preflight`.
//! All real work is in `kantup-k8s-apply`; this file parses flags, picks the CRD source and
//! prints results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use kantup::ops::duration::parse_duration;
use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::crd::{
    ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, CrdPlan, PlanAction, chart_crds,
    load_crd_dir,
};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightCheck, PreflightOptions, preflight};
use kantup_k8s_apply::release::{ReleaseStore, StorageDriver};
use kantup_k8s_apply::{ClusterAccess, release_values, values_yaml, write_private_file};
use serde::Serialize;

use crate::output::{Ctx, OutputFormat};

/// How to reach the cluster (as kubectl: `$KUBECONFIG`, `~/.kube/config`, in-cluster).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    async fn client(&self) -> anyhow::Result<kantup_k8s_apply::kube::Client> {
        let access = ClusterAccess {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        };
        Ok(access.client().await?)
    }
}

/// How the commands that run helm (`upgrade`, `rollback`) reach the cluster and the release
/// records: the same kubeconfig, context and storage driver helm is given.
#[derive(Debug, Args)]
pub struct HelmClusterArgs {
    /// Path to the kubeconfig file (as kubectl's `--kubeconfig`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Helm's storage driver (`secret` or `configmap`), as `HELM_DRIVER`.
    #[arg(long, env = "HELM_DRIVER")]
    pub helm_driver: Option<String>,
}

impl HelmClusterArgs {
    /// The cluster, as kubectl would reach it with these flags.
    pub fn access(&self) -> ClusterAccess {
        ClusterAccess {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
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
    /// Take over fields owned by other field managers (the default; kept for scripts).
    #[arg(long, hide = true, conflicts_with = "refuse_conflicts")]
    pub force_conflicts: bool,
    /// Refuse, before any change, when another field manager (helm, kubectl, ...) owns fields
    /// the chart sets; by default kantup takes them over and names the managers.
    #[arg(long)]
    pub refuse_conflicts: bool,
    /// Allow removing versions still listed in status.storedVersions.
    #[arg(long)]
    pub allow_version_removal: bool,
    /// How long to wait for each CRD to be Established (e.g. `90s`, `2m`, `60`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
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
    /// Helm's storage driver: secret (default) or configmap.
    #[arg(long, env = "HELM_DRIVER", value_name = "DRIVER")]
    pub helm_driver: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    /// Helm's storage driver: secret (default) or configmap.
    #[arg(long, env = "HELM_DRIVER", value_name = "DRIVER")]
    pub helm_driver: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run_crds(ctx: &Ctx, command: CrdsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CrdsCommand::Apply(args) => crds_apply(ctx, args).await,
    }
}

/// Reads the CRDs of whatever `path` is, before any cluster access, so bad input fails fast.
/// A chart gives its own `crds/` and those of the subcharts its default values enable, as
/// Helm installs them.
fn load_crds(path: &Path) -> anyhow::Result<Vec<CrdDocument>> {
    let chart = if path.is_dir() {
        if !path.join("Chart.yaml").is_file() {
            return Ok(load_crd_dir(path)?);
        }
        kantup_bundle::chart::Chart::load_dir(path)
            .with_context(|| format!("load chart {}", path.display()))?
    } else {
        let name = path.to_string_lossy();
        if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
            kantup_bundle::chart::Chart::load_tgz(path)
                .with_context(|| format!("load chart {}", path.display()))?
        } else {
            kantup_bundle::Bundle::open(path)
                .and_then(|b| b.chart())
                .with_context(|| format!("load the chart of bundle {}", path.display()))?
        }
    };
    Ok(chart_crds(&chart, &Default::default(), HelmVersion::V3)?)
}

async fn crds_apply(ctx: &Ctx, args: CrdsApplyArgs) -> anyhow::Result<ExitCode> {
    let crds = load_crds(&args.path)?;
    if crds.is_empty() {
        anyhow::bail!(
            "no CustomResourceDefinitions found in {}",
            args.path.display()
        );
    }
    let client = args.cluster.client().await?;
    let applier = CrdApplier::new(
        client,
        ApplyOptions {
            conflicts: if args.refuse_conflicts {
                ConflictPolicy::Refuse
            } else {
                ConflictPolicy::TakeOver
            },
            allow_version_removal: args.allow_version_removal,
            timeout: args.timeout,
        },
    );
    let plans = applier.plan(&crds).await?;
    if args.plan {
        match ctx.output {
            OutputFormat::Json => ctx.print_json(&plans)?,
            OutputFormat::Table => print_plans(&plans, ""),
        }
        // A plan the apply would refuse is a failed plan.
        let refused = plans.iter().any(|p| p.rejected.is_some())
            || (args.refuse_conflicts && plans.iter().any(|p| !p.conflicts.is_empty()));
        return Ok(if refused {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let applied = applier.apply_planned(&crds, plans).await?;
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

/// A column wide enough for every name (and the header).
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max(3)
}

fn action_word(action: &PlanAction) -> &'static str {
    match action {
        PlanAction::New => "new",
        PlanAction::Changed => "changed",
        PlanAction::Unchanged => "unchanged",
    }
}

/// The CRD plan as a table, each line starting with `indent`.
pub fn print_plans(plans: &[CrdPlan], indent: &str) {
    if plans.is_empty() {
        return;
    }
    let width = name_width(plans.iter().map(|p| p.name.as_str()));
    println!("{indent}{:<width$} {:<10} DETAILS", "CRD", "ACTION");
    for plan in plans {
        let c = &plan.changes;
        let mut details = Vec::new();
        if !c.versions_added.is_empty() {
            details.push(format!("+versions {}", c.versions_added.join(",")));
        }
        if !c.versions_removed.is_empty() {
            details.push(format!("-versions {}", c.versions_removed.join(",")));
        }
        if !c.spec_fields_changed.is_empty() {
            details.push(format!("spec {}", c.spec_fields_changed.join(",")));
        }
        if !c.metadata_fields_changed.is_empty() {
            details.push(format!("metadata {}", c.metadata_fields_changed.join(",")));
        }
        if !plan.blocked_versions.is_empty() {
            details.push(format!(
                "BLOCKED: stored versions {} would be removed",
                plan.blocked_versions.join(",")
            ));
        }
        println!(
            "{indent}{:<width$} {:<10} {}",
            plan.name,
            action_word(&plan.action),
            details.join("; ")
        );
        for version in &c.versions_changed {
            if !version.fields_changed.is_empty() {
                println!(
                    "{indent}    {}: {}",
                    version.name,
                    version.fields_changed.join(", ")
                );
            }
            for change in &version.schema {
                let sign = match change.kind {
                    kantup_k8s_apply::crd::SchemaChangeKind::Added => '+',
                    kantup_k8s_apply::crd::SchemaChangeKind::Removed => '-',
                    kantup_k8s_apply::crd::SchemaChangeKind::Changed => '~',
                };
                println!("{indent}    {}: {sign} {}", version.name, change.path);
            }
        }
        if !plan.conflicts.is_empty() {
            println!(
                "{indent}    takes over fields from {}",
                kantup_k8s_apply::describe_conflicts(&plan.conflicts)
            );
        }
        if let Some(reason) = &plan.rejected {
            println!("{indent}    REFUSED by the server: {reason}");
        }
    }
}

/// Pre-flight checks as a table (the name column sized to the longest name), each line
/// starting with `indent`.
pub fn print_checks(checks: &[PreflightCheck], indent: &str) {
    let width = name_width(checks.iter().map(|c| c.name.as_str())).max("CHECK".len());
    println!("{indent}{:<width$}  {:<8} DETAIL", "CHECK", "RESULT");
    for check in checks {
        let outcome = match check.outcome {
            CheckOutcome::Pass => "ok",
            CheckOutcome::Warn => "warn",
            CheckOutcome::Fail => "FAIL",
            CheckOutcome::Skipped => "skipped",
        };
        println!(
            "{indent}{:<width$}  {outcome:<8} {}",
            check.name, check.detail
        );
        if let Some(fix) = &check.fix {
            println!("{indent}{:<width$}  {:<8} fix: {fix}", "", "");
        }
    }
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
    let driver = StorageDriver::from_helm_driver(args.helm_driver.as_deref())?;
    let client = args.cluster.client().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let store = ReleaseStore::new(client, namespace.clone(), driver);
    let record = match args.revision {
        Some(revision) => store.revision(&args.release, revision).await?,
        None => store.latest(&args.release).await?,
    };
    let yaml = values_yaml(&record.release, args.all)?;
    if let Some(file) = &args.file {
        write_private_file(file, yaml.as_bytes())?;
    }
    match (ctx.output, &args.file) {
        (OutputFormat::Table, None) => print!("{yaml}"),
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
                    record.revision,
                    file.display()
                );
            }
        }
        (OutputFormat::Json, file) => ctx.print_json(&BackupResult {
            release: &args.release,
            namespace: &namespace,
            revision: record.revision,
            all: args.all,
            file: file.as_deref(),
            // Values may hold secrets: only printed when they are not going to a file.
            values: file
                .is_none()
                .then(|| release_values(&record.release, args.all)),
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_preflight(ctx: &Ctx, args: PreflightArgs) -> anyhow::Result<ExitCode> {
    let driver = StorageDriver::from_helm_driver(args.helm_driver.as_deref())?;
    let client = args.cluster.client().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let report = preflight(
        &client,
        &PreflightOptions {
            release: args.release.clone(),
            namespace,
            chart_version: args.chart_version.clone(),
            allow_downgrade: args.allow_downgrade,
            driver,
            ..Default::default()
        },
    )
    .await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => print_checks(&report.checks, ""),
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
