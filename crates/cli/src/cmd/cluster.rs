//! Commands that talk to the Kubernetes API: `crds apply`, `values backup`, `preflight`.
//! All real work is in `kantup-k8s-apply`; this file parses flags, picks the CRD source and
//! prints results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use kantup_k8s_apply::crd::{
    ApplyOptions, CrdApplier, CrdDocument, CrdPlan, PlanAction, load_crd_dir, load_crd_documents,
};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightOptions, preflight};
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

#[derive(Debug, Subcommand)]
pub enum CrdsCommand {
    /// Server-side apply a chart's CRDs (Helm never upgrades them) and wait until served.
    Apply(CrdsApplyArgs),
}

#[derive(Debug, Args)]
pub struct CrdsApplyArgs {
    /// A chart directory, a `crds/` directory, a chart `.tgz`, or a kantup bundle.
    pub path: PathBuf,
    /// Only show what would change (new / changed / unchanged); apply nothing.
    #[arg(long)]
    pub plan: bool,
    /// Take over fields owned by other field managers (server-side apply `force`).
    #[arg(long)]
    pub force_conflicts: bool,
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

/// `90`, `90s`, `2m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 2m or 1h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs(seconds))
}

pub async fn run_crds(ctx: &Ctx, command: CrdsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CrdsCommand::Apply(args) => crds_apply(ctx, args).await,
    }
}

/// Reads the CRDs of whatever `path` is, before any cluster access, so bad input fails fast.
fn load_crds(path: &Path) -> anyhow::Result<Vec<CrdDocument>> {
    if path.is_dir() {
        if path.join("Chart.yaml").is_file() {
            let chart = kantup_bundle::chart::Chart::load_dir(path)
                .with_context(|| format!("load chart {}", path.display()))?;
            return chart_crds(&chart, "");
        }
        return Ok(load_crd_dir(path)?);
    }
    let name = path.to_string_lossy();
    let chart = if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        kantup_bundle::chart::Chart::load_tgz(path)
            .with_context(|| format!("load chart {}", path.display()))?
    } else {
        kantup_bundle::Bundle::open(path)
            .and_then(|b| b.chart())
            .with_context(|| format!("load the chart of bundle {}", path.display()))?
    };
    chart_crds(&chart, "")
}

/// The chart's own `crds/` then each subchart's, as Helm installs them.
fn chart_crds(
    chart: &kantup_bundle::chart::Chart,
    prefix: &str,
) -> anyhow::Result<Vec<CrdDocument>> {
    let own = chart
        .crds()
        .into_iter()
        .map(|(file, bytes)| (format!("{prefix}{file}"), bytes));
    let mut crds = load_crd_documents(own)?;
    for sub in &chart.subcharts {
        let sub_prefix = format!("{prefix}charts/{}/", sub.name());
        for crd in chart_crds(sub, &sub_prefix)? {
            if let Some(first) = crds.iter().find(|c| c.name == crd.name) {
                anyhow::bail!(
                    "CustomResourceDefinition {} is defined twice: in {} and in {}",
                    crd.name,
                    first.origin(),
                    crd.origin()
                );
            }
            crds.push(crd);
        }
    }
    Ok(crds)
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
            force_conflicts: args.force_conflicts,
            allow_version_removal: args.allow_version_removal,
            timeout: args.timeout,
        },
    );
    if args.plan {
        let plans = applier.plan(&crds).await?;
        match ctx.output {
            OutputFormat::Json => ctx.print_json(&plans)?,
            OutputFormat::Table => print_plans(&plans),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let applied = applier.apply(&crds).await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&applied)?,
        OutputFormat::Table => {
            if !ctx.quiet {
                println!("{:<50} {:<10} STATUS", "CRD", "WAS");
                for crd in &applied {
                    println!(
                        "{:<50} {:<10} established",
                        crd.name,
                        action_word(&crd.action)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn action_word(action: &PlanAction) -> &'static str {
    match action {
        PlanAction::New => "new",
        PlanAction::Changed => "changed",
        PlanAction::Unchanged => "unchanged",
    }
}

fn print_plans(plans: &[CrdPlan]) {
    println!("{:<50} {:<10} DETAILS", "CRD", "ACTION");
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
        if !plan.blocked_versions.is_empty() {
            details.push(format!(
                "BLOCKED: stored versions {} would be removed",
                plan.blocked_versions.join(",")
            ));
        }
        println!(
            "{:<50} {:<10} {}",
            plan.name,
            action_word(&plan.action),
            details.join("; ")
        );
        for version in &c.versions_changed {
            if !version.fields_changed.is_empty() {
                println!(
                    "    {}: {}",
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
                println!("    {}: {sign} {}", version.name, change.path);
            }
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
        },
    )
    .await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => {
            println!("{:<60} {:<8} DETAIL", "CHECK", "RESULT");
            for check in &report.checks {
                let outcome = match check.outcome {
                    CheckOutcome::Pass => "ok",
                    CheckOutcome::Warn => "warn",
                    CheckOutcome::Fail => "FAIL",
                    CheckOutcome::Skipped => "skipped",
                };
                println!("{:<60} {:<8} {}", check.name, outcome, check.detail);
                if let Some(fix) = &check.fix {
                    println!("{:<60} {:<8} fix: {fix}", "", "");
                }
            }
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        for (text, expected) in [
            ("60", Some(Duration::from_secs(60))),
            ("90s", Some(Duration::from_secs(90))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2d", None),
            ("soon", None),
        ] {
            assert_eq!(parse_duration(text).ok(), expected, "{text}");
        }
    }
}
