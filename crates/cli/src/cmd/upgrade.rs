//! `kantup upgrade`: the seed's whole upgrade procedure as one safe, repeatable command.
//!
//! The order is the seed's, with every manual step made checkable:
//! verify the source -> pre-flight -> back up the release's values -> apply the chart's CRDs ->
//! compute the values (backup, then `-f` files, then the `--set` family, then
//! `global.imageRegistry`) -> `helm upgrade` with that one values file -> check the new revision
//! is `deployed`. `--plan` runs every read-only step and prints what would change.
//!
//! Nothing in the cluster changes before the backup file is on disk, and a failure after helm
//! ran names the backup file and the rollback command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use kantup_bundle::chart::Chart as BundleChart;
use kantup_bundle::{Bundle, VerifyOptions};
use kantup_helm_values::diff::Change;
use kantup_helm_values::merge::ValueOptions;
use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{ApplyOptions, CrdApplier, CrdPlan, PlanAction, load_crd_documents};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightOptions, PreflightReport, preflight};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore, StorageDriver};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::output::Ctx;

/// Upgrade a Helm release from an offline bundle, a chart directory or a chart archive.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// A bundle (`kant.bundle.tar`, plain, gzip or zstd), a chart directory or a chart `.tgz`.
    pub source: PathBuf,
    /// The release to upgrade.
    #[arg(long)]
    pub release: String,
    /// The release's namespace.
    #[arg(long, short = 'n')]
    pub namespace: String,
    /// Sets `global.imageRegistry` (as a string) after every other value.
    #[arg(long)]
    pub image_registry: Option<String>,
    /// Values files, applied after the backed-up values, in order.
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// `--set` expressions (Helm's grammar and typing).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// `--set-string` expressions.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// `--set-file` expressions.
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// `--set-json` expressions.
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// `--set-literal` expressions.
    #[arg(long = "set-literal", value_name = "KEY=VALUE")]
    pub set_literal: Vec<String>,
    /// Show everything the upgrade would do and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The helm binary to run.
    #[arg(long, default_value = "helm", env = "KANTUP_HELM")]
    pub helm: PathBuf,
    /// Where the values backup and the computed values file are written.
    #[arg(long, default_value = ".")]
    pub backup_dir: PathBuf,
    /// Path to the kubeconfig file (as kubectl's `--kubeconfig`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Helm's storage driver (`secret` or `configmap`), as `HELM_DRIVER`.
    #[arg(long, env = "HELM_DRIVER")]
    pub helm_driver: Option<String>,
    /// Accept a chart version lower than the deployed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Do not apply the chart's CRDs.
    #[arg(long)]
    pub skip_crds: bool,
    /// Take over CRD fields owned by another field manager.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Allow removing CRD versions still listed in `status.storedVersions`.
    #[arg(long)]
    pub allow_version_removal: bool,
    /// Passed to `helm upgrade --timeout`, and the CRD wait timeout.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// Passed as `helm upgrade --wait`.
    #[arg(long)]
    pub wait: bool,
    /// Skip bundle verification (not recommended).
    #[arg(long)]
    pub skip_verify: bool,
}

/// The chart the upgrade installs, and the path handed to helm.
struct ResolvedChart {
    chart: BundleChart,
    /// A chart directory or `.tgz` for `helm upgrade`.
    helm_path: PathBuf,
    /// Keeps a bundle's chart directory alive until helm has run.
    _scratch: Option<tempfile::TempDir>,
    /// What the source was, for the summary.
    kind: &'static str,
}

/// Everything the upgrade will do, printed by `--plan` and before confirmation.
#[derive(Debug, Serialize)]
pub struct UpgradePlan {
    pub release: String,
    pub namespace: String,
    pub source: String,
    pub source_kind: String,
    pub chart: String,
    pub chart_version: String,
    pub deployed_revision: Option<u32>,
    pub deployed_chart_version: Option<String>,
    pub preflight: PreflightReport,
    pub crds: Vec<CrdPlan>,
    pub values_changes: Vec<ValueChange>,
    pub helm_command: Vec<String>,
    /// True when the release already runs this chart version with these values and every CRD
    /// is unchanged: nothing would be done.
    pub up_to_date: bool,
}

/// One changed path in the user-supplied values.
#[derive(Debug, Serialize, PartialEq)]
pub struct ValueChange {
    pub path: String,
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// What a finished upgrade reports.
#[derive(Debug, Serialize)]
struct UpgradeSummary {
    release: String,
    namespace: String,
    previous_revision: u32,
    revision: u32,
    status: String,
    chart_version: String,
    backup_file: PathBuf,
    values_file: PathBuf,
    crds_applied: usize,
    rollback_command: String,
}

pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> anyhow::Result<ExitCode> {
    let resolved = resolve_source(ctx, &args)?;
    let access = ClusterAccess {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let client = access.client().await.context("connecting to the cluster")?;
    let driver = StorageDriver::from_helm_driver(args.helm_driver.as_deref())?;
    let helm_version = detect_helm_version(&args.helm)?;

    // Pre-flight. A `failed` latest revision is a previous attempt that helm can continue
    // from (helm upgrades a failed release against its last deployed one), so it only warns.
    let mut report = preflight(
        &client,
        &PreflightOptions {
            release: args.release.clone(),
            namespace: args.namespace.clone(),
            chart_version: Some(resolved.chart.metadata.version.to_string()),
            allow_downgrade: args.allow_downgrade,
            driver,
        },
    )
    .await?;
    allow_continuing_failed(&mut report);

    let store = ReleaseStore::new(client.clone(), args.namespace.clone(), driver);
    let history = if report.revision.is_some() {
        store.history(&args.release).await?
    } else {
        Vec::new()
    };
    let current = history.last().cloned();
    // After a failed attempt the latest revision is the failed one; rolling back must go to
    // the revision that was last deployed, not to the failure.
    let rollback_revision = last_deployed_revision(&history);

    // The backup is what `helm get values -o yaml` prints for the current revision.
    let backup_yaml = match &current {
        Some(record) => kantup_k8s_apply::values_yaml(&record.release, false)?,
        None => String::new(),
    };
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let stamp = timestamp();
    let backup_path = args.backup_dir.join(format!(
        "{}-{}-rev{}-{stamp}.backup.yaml",
        args.release,
        args.namespace,
        report.revision.unwrap_or(0)
    ));
    let values_path = args.backup_dir.join(format!(
        "{}-{}-{stamp}.values.yaml",
        args.release, args.namespace
    ));
    // Values are computed from the backup file exactly as `helm upgrade -f bak.yaml` would;
    // under --plan the backup only goes to the scratch directory.
    let backup_for_merge = scratch.path().join("backup.yaml");
    std::fs::write(&backup_for_merge, &backup_yaml)
        .with_context(|| format!("writing {}", backup_for_merge.display()))?;
    let merged = compute_values(&args, &backup_for_merge, helm_version)?;
    let merged_yaml = kantup_helm_values::yaml::to_yaml(&Value::Object(merged.clone()));
    let previous_user = current
        .as_ref()
        .and_then(|r| r.release.config.clone())
        .unwrap_or_default();
    let values_changes = diff_values(&previous_user, &merged);

    let crds = load_crd_documents(
        resolved
            .chart
            .crds()
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), bytes.to_vec())),
    )?;
    let timeout = parse_duration(&args.timeout)?;
    let applier = CrdApplier::new(
        client.clone(),
        ApplyOptions {
            force_conflicts: args.force_conflicts,
            allow_version_removal: args.allow_version_removal,
            timeout,
        },
    );
    let crd_plans = if args.skip_crds {
        Vec::new()
    } else {
        applier.plan(&crds).await?
    };

    let helm_command = helm_command(&args, &resolved.helm_path, &values_path);
    let up_to_date = is_up_to_date(current.as_ref(), &resolved.chart, &merged, &crd_plans);
    let plan = UpgradePlan {
        release: args.release.clone(),
        namespace: args.namespace.clone(),
        source: args.source.display().to_string(),
        source_kind: resolved.kind.to_string(),
        chart: resolved.chart.name().to_string(),
        chart_version: resolved.chart.metadata.version.to_string(),
        deployed_revision: report.revision,
        deployed_chart_version: report.deployed_chart_version.clone(),
        preflight: report,
        crds: crd_plans,
        values_changes,
        helm_command,
        up_to_date,
    };

    if args.plan {
        print_plan(ctx, &plan)?;
        return Ok(if plan.preflight.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if !plan.preflight.passed() {
        print_plan(ctx, &plan)?;
        bail!(
            "pre-flight failed for release {} in namespace {}: nothing was changed",
            plan.release,
            plan.namespace
        );
    }
    let current = current.expect("pre-flight passed, so the release exists");
    if plan.up_to_date {
        if ctx.output == crate::output::OutputFormat::Json {
            ctx.print_json(&plan)?;
        } else {
            println!(
                "release {} in {} already runs {} {} with these values and CRDs: nothing to do",
                plan.release, plan.namespace, plan.chart, plan.chart_version
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    confirm(ctx, &args, &plan)?;

    // 1. The backup, before anything in the cluster changes.
    std::fs::create_dir_all(&args.backup_dir)
        .with_context(|| format!("creating {}", args.backup_dir.display()))?;
    kantup_k8s_apply::write_private_file(&backup_path, backup_yaml.as_bytes())?;
    kantup_k8s_apply::write_private_file(&values_path, merged_yaml.as_bytes())?;
    tracing::info!(backup = %backup_path.display(), "values backed up");
    let rollback_to = rollback_revision.unwrap_or(current.revision);
    let rollback = format!(
        "helm rollback {} {rollback_to} -n {}",
        args.release, args.namespace
    );

    // 2. CRDs (helm never upgrades them).
    let crds_applied = if args.skip_crds || crds.is_empty() {
        0
    } else {
        applier.apply(&crds).await.with_context(|| {
            format!(
                "applying CRDs (values backup kept at {})",
                backup_path.display()
            )
        })?;
        crds.len()
    };

    // 3. helm upgrade with the one computed values file.
    run_helm(ctx, &plan.helm_command).with_context(|| {
        format!(
            "helm upgrade failed; values backup kept at {}; to return to revision {rollback_to}: \
             {rollback}",
            backup_path.display(),
        )
    })?;

    // 4. The new revision must be deployed.
    let latest = store.latest(&args.release).await?;
    let status = latest.release.status();
    if latest.revision <= current.revision || status != ReleaseStatus::Deployed {
        bail!(
            "after helm upgrade, release {} is at revision {} with status {} (expected a new \
             deployed revision after {}); values backup kept at {}; roll back with: {rollback}",
            args.release,
            latest.revision,
            status,
            current.revision,
            backup_path.display()
        );
    }
    let summary = UpgradeSummary {
        release: args.release.clone(),
        namespace: args.namespace.clone(),
        previous_revision: current.revision,
        revision: latest.revision,
        status: status.to_string(),
        chart_version: plan.chart_version.clone(),
        backup_file: backup_path,
        values_file: values_path,
        crds_applied,
        rollback_command: rollback,
    };
    if ctx.output == crate::output::OutputFormat::Json {
        ctx.print_json(&summary)?;
    } else {
        println!(
            "upgraded {} in {}: revision {} -> {} ({}), chart {} {}",
            summary.release,
            summary.namespace,
            summary.previous_revision,
            summary.revision,
            summary.status,
            plan.chart,
            summary.chart_version
        );
        println!("values backup: {}", summary.backup_file.display());
        println!("values used:   {}", summary.values_file.display());
        println!("CRDs applied:  {}", summary.crds_applied);
        println!("roll back:     {}", summary.rollback_command);
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens and checks the source: a bundle is verified and its chart written to a scratch
/// directory; a chart directory or archive is loaded (and so validated) and given to helm as is.
fn resolve_source(ctx: &Ctx, args: &UpgradeArgs) -> anyhow::Result<ResolvedChart> {
    let path = &args.source;
    if path.is_dir() {
        let chart = BundleChart::load_dir(path)?;
        return Ok(ResolvedChart {
            chart,
            helm_path: path.clone(),
            _scratch: None,
            kind: "chart directory",
        });
    }
    if !path.is_file() {
        bail!(
            "{}: no such bundle, chart directory or chart archive",
            path.display()
        );
    }
    // A chart archive is a gzip tar whose top directory holds Chart.yaml; a bundle holds
    // original-chart/. Try the bundle reading first: it detects compression by magic bytes.
    match Bundle::open(path) {
        Ok(bundle)
            if bundle.has_member(kantup_bundle::HINTS_MEMBER)
                || bundle.has_member("images.tar")
                || has_original_chart(&bundle) =>
        {
            if !args.skip_verify {
                let bar = crate::progress::bytes_bar(ctx, bundle.tar_size(), "verifying bundle");
                bundle
                    .verify(VerifyOptions::default(), &mut |n| bar.inc(n))
                    .with_context(|| format!("verifying {}", path.display()))?;
                bar.finish_and_clear();
            }
            let chart = bundle.chart()?;
            let scratch = tempfile::tempdir().context("creating a scratch directory")?;
            let dir = scratch.path().join(chart.name());
            chart.write_dir(&dir)?;
            Ok(ResolvedChart {
                chart,
                helm_path: dir,
                _scratch: Some(scratch),
                kind: "bundle",
            })
        }
        _ => {
            let chart = BundleChart::load_tgz(path).with_context(|| {
                format!("{} is neither a bundle nor a chart archive", path.display())
            })?;
            Ok(ResolvedChart {
                chart,
                helm_path: path.clone(),
                _scratch: None,
                kind: "chart archive",
            })
        }
    }
}

fn has_original_chart(bundle: &Bundle) -> bool {
    bundle
        .members()
        .iter()
        .any(|m| m.name.starts_with(kantup_bundle::CHART_DIR))
}

/// The values helm gets: the backup first (as `-f bak.yaml`), then the user's files, then the
/// `--set` family in Helm's order, then `global.imageRegistry` as a string.
fn compute_values(
    args: &UpgradeArgs,
    backup: &Path,
    helm: HelmVersion,
) -> anyhow::Result<Map<String, Value>> {
    let mut value_files = vec![backup.to_path_buf()];
    value_files.extend(args.values.iter().cloned());
    let string_values = args.set_string.clone();
    let mut literal_values = args.set_literal.clone();
    if let Some(registry) = &args.image_registry {
        // Last of all, and never re-typed: a registry such as `10.16.10.111` stays a string.
        // --set-literal is applied after every other flag group, so it wins.
        if registry.contains(',') || registry.is_empty() {
            bail!("--image-registry {registry:?} is not a registry host");
        }
        literal_values.push(format!("global.imageRegistry={registry}"));
    }
    let options = ValueOptions {
        value_files,
        json_values: args.set_json.clone(),
        values: args.set.clone(),
        string_values,
        file_values: args.set_file.clone(),
        literal_values,
        helm,
    };
    Ok(options.merge_values()?)
}

/// Changed paths between the previous and the new user-supplied values (helm-values' diff,
/// where numbers compare as Helm sees them). Values under a secret-looking key (password,
/// token, ...) are reported as changed but never shown.
fn diff_values(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<ValueChange> {
    let changes =
        kantup_helm_values::diff::diff(&Value::Object(old.clone()), &Value::Object(new.clone()));
    changes
        .into_iter()
        .map(|change| {
            let mut change = match change {
                Change::Added { path, new } => ValueChange {
                    path,
                    change: "added",
                    old: None,
                    new: Some(new),
                },
                Change::Removed { path, old } => ValueChange {
                    path,
                    change: "removed",
                    old: Some(old),
                    new: None,
                },
                Change::Changed { path, old, new } => ValueChange {
                    path,
                    change: "changed",
                    old: Some(old),
                    new: Some(new),
                },
            };
            let whole = looks_secret(&change.path);
            for value in [&mut change.old, &mut change.new].into_iter().flatten() {
                redact(value, whole);
            }
            change
        })
        .collect()
}

/// Replaces `value` (when `whole`) or every value under a secret-looking key inside it.
fn redact(value: &mut Value, whole: bool) {
    if whole {
        *value = Value::String(REDACTED.to_string());
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                redact(child, looks_secret(key));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, false)),
        _ => {}
    }
}

const REDACTED: &str = "(redacted)";

/// True when any segment of a dotted values path names a credential.
fn looks_secret(path: &str) -> bool {
    const WORDS: [&str; 9] = [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "credential",
        "privatekey",
        "private_key",
    ];
    path.split('.').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace('-', "_");
        WORDS.iter().any(|w| segment.contains(w))
    })
}

fn is_up_to_date(
    current: Option<&ReleaseRecord>,
    chart: &BundleChart,
    merged: &Map<String, Value>,
    crds: &[CrdPlan],
) -> bool {
    let Some(current) = current else {
        return false;
    };
    let deployed = current.release.status() == ReleaseStatus::Deployed;
    let same_chart = current
        .release
        .chart_metadata()
        .is_some_and(|m| m.name == chart.name() && m.version == chart.metadata.version.to_string());
    let same_values = same_value(
        &Value::Object(current.release.config.clone().unwrap_or_default()),
        &Value::Object(merged.clone()),
    );
    let crds_unchanged = crds.iter().all(|p| p.action == PlanAction::Unchanged);
    deployed && same_chart && same_values && crds_unchanged
}

/// Equality as Helm sees values: numbers compare by value, because a values file gives Helm
/// `float64` (`3` becomes `3.0` here) while the stored release JSON prints it as `3`.
fn same_value(a: &Value, b: &Value) -> bool {
    kantup_helm_values::diff::diff(a, b).is_empty()
}

/// The newest revision whose status is `deployed` (Helm leaves the previous revision deployed
/// when an upgrade fails), if any.
fn last_deployed_revision(history: &[ReleaseRecord]) -> Option<u32> {
    history
        .iter()
        .filter(|r| r.release.status() == ReleaseStatus::Deployed)
        .map(|r| r.revision)
        .max()
}

fn allow_continuing_failed(report: &mut PreflightReport) {
    if report.status.as_deref() != Some("failed") {
        return;
    }
    for check in &mut report.checks {
        if check.name == "release-status" && check.outcome == CheckOutcome::Fail {
            check.outcome = CheckOutcome::Warn;
            check.detail = format!(
                "{}; continuing: helm upgrades a failed release against its last deployed \
                 revision",
                check.detail
            );
        }
    }
}

fn helm_command(args: &UpgradeArgs, chart: &Path, values: &Path) -> Vec<String> {
    let mut command = vec![
        args.helm.display().to_string(),
        "upgrade".to_string(),
        args.release.clone(),
        chart.display().to_string(),
        "--namespace".to_string(),
        args.namespace.clone(),
        "--values".to_string(),
        values.display().to_string(),
        "--timeout".to_string(),
        args.timeout.clone(),
    ];
    if args.wait {
        command.push("--wait".to_string());
    }
    if let Some(kubeconfig) = &args.kubeconfig {
        command.push("--kubeconfig".to_string());
        command.push(kubeconfig.display().to_string());
    }
    if let Some(context) = &args.context {
        command.push("--kube-context".to_string());
        command.push(context.clone());
    }
    command
}

fn run_helm(ctx: &Ctx, command: &[String]) -> anyhow::Result<()> {
    let (program, rest) = command.split_first().expect("helm command has a program");
    tracing::info!(command = %command.join(" "), "running helm");
    let output = std::process::Command::new(program)
        .args(rest)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !ctx.quiet && ctx.output == crate::output::OutputFormat::Table {
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
    }
    if !output.status.success() {
        bail!(
            "`{}` exited with {}: {}",
            command.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Which Helm's `--set` quirks to follow: the binary's major version.
fn detect_helm_version(helm: &Path) -> anyhow::Result<HelmVersion> {
    let output = std::process::Command::new(helm)
        .args(["version", "--short"])
        .output()
        .with_context(|| format!("running `{} version` (set --helm)", helm.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("`{} version --short` failed", helm.display());
    }
    Ok(if text.trim_start().starts_with("v4") {
        HelmVersion::V4
    } else {
        HelmVersion::V3
    })
}

fn confirm(ctx: &Ctx, args: &UpgradeArgs, plan: &UpgradePlan) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to upgrade without --yes when stdin is not a terminal (see --plan first)");
    }
    print_plan(ctx, plan)?;
    eprint!(
        "Upgrade release {} in {}? [y/N] ",
        plan.release, plan.namespace
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("upgrade cancelled; nothing was changed");
    }
    Ok(())
}

fn print_plan(ctx: &Ctx, plan: &UpgradePlan) -> anyhow::Result<()> {
    if ctx.output == crate::output::OutputFormat::Json {
        return ctx.print_json(plan);
    }
    println!(
        "upgrade {} in {}: {} {} -> {} {} ({})",
        plan.release,
        plan.namespace,
        plan.chart,
        plan.deployed_chart_version.as_deref().unwrap_or("-"),
        plan.chart,
        plan.chart_version,
        plan.source_kind
    );
    println!("\npre-flight:");
    // Check names such as "can patch customresourcedefinitions..." are long: size the column.
    let width = plan
        .preflight
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for check in &plan.preflight.checks {
        println!(
            "  {:<8} {:<width$}  {}",
            format!("{:?}", check.outcome).to_lowercase(),
            check.name,
            check.detail
        );
        if let Some(fix) = &check.fix {
            println!("  {:<8} {:<width$}  fix: {fix}", "", "");
        }
    }
    println!("\nCRDs:");
    if plan.crds.is_empty() {
        println!("  (none)");
    }
    for crd in &plan.crds {
        println!(
            "  {:<10} {}",
            format!("{:?}", crd.action).to_lowercase(),
            crd.name
        );
    }
    println!("\nvalues (user-supplied, previous -> new):");
    if plan.values_changes.is_empty() {
        println!("  (no change)");
    }
    for change in &plan.values_changes {
        let show = |v: &Option<Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
        println!(
            "  {:<8} {}: {} -> {}",
            change.change,
            change.path,
            show(&change.old),
            show(&change.new)
        );
    }
    println!("\nhelm command:\n  {}", plan.helm_command.join(" "));
    if plan.up_to_date {
        println!("\nthe release is up to date: nothing would be done");
    }
    Ok(())
}

/// Helm's `--timeout` syntax (Go durations such as `300s`, `5m`, `1h30m`, `5m0s`).
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text)
        .with_context(|| format!("--timeout {text:?}: expected a duration such as 300s, 5m or 1h"))
}

/// UTC `YYYYMMDDTHHMMSSZ`, so backups sort by time and never overwrite each other.
fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_helm_timeouts() {
        for (text, secs) in [("300s", 300), ("5m", 300), ("1h", 3600), ("1h30m", 5400)] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        for bad in ["", "5x", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_file_name_safe() {
        let stamp = timestamp();
        assert_eq!(stamp.len(), "20261125T144500Z".len(), "{stamp}");
        assert!(stamp.chars().all(|c| c.is_ascii_alphanumeric()), "{stamp}");
    }

    /// A chart whose one template prints every value it was given, so two `helm template`
    /// runs render the same manifest exactly when they got the same values.
    fn values_echo_chart(dir: &Path) -> PathBuf {
        let chart = dir.join("echo");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: echo\nversion: 1.1.0\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("values.yaml"),
            "global:\n  imageRegistry: docker.io\n  pullPolicy: IfNotPresent\n\
             image:\n  repository: bitnami/nginx\n  tag: \"1.25\"\n\
             replicas: 1\nextra: {}\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("templates/values.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: echo\n\
             data:\n  values: {{ toJson .Values | quote }}\n",
        )
        .unwrap();
        chart
    }

    fn helm_template(helm: &Path, chart: &Path, extra: &[String]) -> String {
        let output = std::process::Command::new(helm)
            .args(["template", "rel"])
            .arg(chart)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} template {extra:?}: {}",
            helm.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn parse_args(extra: &[&str]) -> UpgradeArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: UpgradeArgs,
        }
        let mut argv = vec!["kantup", "chart", "--release", "rel", "-n", "ns"];
        argv.extend_from_slice(extra);
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().args
    }

    /// The seed's `helm upgrade -f bak.yaml [-f user.yaml] [--set ...] --set
    /// global.imageRegistry=REG` and kantup's one computed values file must render the same.
    #[test]
    fn computed_values_render_like_the_seed_command_with_real_helm() {
        let dir = tempfile::tempdir().unwrap();
        let chart = values_echo_chart(dir.path());
        // The previous release's user values, as `helm get values -o yaml` prints them.
        let backup = dir.path().join("bak.yaml");
        std::fs::write(
            &backup,
            "global:\n  imageRegistry: old.example:5000\nreplicas: 3\n\
             image:\n  tag: \"1.24\"\nextra:\n  keep: kept\n  drop: me\n",
        )
        .unwrap();
        let user = dir.path().join("user.yaml");
        std::fs::write(&user, "image:\n  tag: \"1.26\"\nextra:\n  drop: null\n").unwrap();
        let registry = "10.16.10.111:5000";
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("backup only", vec![]),
            (
                "backup and a values file",
                vec!["-f", user.to_str().unwrap()],
            ),
            (
                "values file and --set family",
                vec![
                    "-f",
                    user.to_str().unwrap(),
                    "--set",
                    "replicas=5,image.pullSecrets[0]=regcred",
                    "--set-string",
                    "extra.port=8080",
                    "--set-json",
                    r#"extra.list=[1,"two"]"#,
                ],
            ),
            (
                "a --set that names the registry too",
                vec!["--set", "global.imageRegistry=x.io"],
            ),
        ];
        for (helm_name, helm) in [
            ("helm 3", kantup_test_support::helm3()),
            ("helm 4", kantup_test_support::helm4()),
        ] {
            let version = detect_helm_version(&helm).unwrap();
            for (case, flags) in &cases {
                let mut argv = flags.clone();
                argv.extend_from_slice(&["--image-registry", registry]);
                let args = parse_args(&argv);
                let merged = compute_values(&args, &backup, version).unwrap();
                let computed = dir.path().join("computed.yaml");
                std::fs::write(
                    &computed,
                    kantup_helm_values::yaml::to_yaml(&Value::Object(merged)),
                )
                .unwrap();
                let ours = helm_template(
                    &helm,
                    &chart,
                    &["-f".into(), computed.display().to_string()],
                );

                let mut seed: Vec<String> = vec!["-f".into(), backup.display().to_string()];
                seed.extend(flags.iter().map(|f| f.to_string()));
                seed.extend(["--set".into(), format!("global.imageRegistry={registry}")]);
                let theirs = helm_template(&helm, &chart, &seed);
                assert_eq!(ours, theirs, "{helm_name}, {case}");
                assert!(ours.contains(registry), "{helm_name}, {case}: {ours}");
            }
        }
    }

    #[test]
    fn numbers_from_values_files_equal_the_stored_release_numbers() {
        // A release stored `replicas: 3`; the values file read back gives 3.0.
        let stored = json!({"replicas": 3, "ports": [80, 443], "ratio": 0.5});
        let from_file = json!({"replicas": 3.0, "ports": [80.0, 443.0], "ratio": 0.5});
        assert!(same_value(&stored, &from_file));
        assert!(
            diff_values(stored.as_object().unwrap(), from_file.as_object().unwrap()).is_empty()
        );
        for different in [
            json!({"replicas": 4, "ports": [80, 443], "ratio": 0.5}),
            json!({"replicas": "3", "ports": [80, 443], "ratio": 0.5}),
            json!({"replicas": 3, "ports": [80], "ratio": 0.5}),
            json!({"replicas": 3, "ports": [80, 443], "ratio": 0.5, "extra": null}),
        ] {
            assert!(!same_value(&stored, &different), "{different}");
        }
    }

    #[test]
    fn value_changes_never_show_credentials() {
        let old = json!({"auth": {"rootPassword": "hunter2", "user": "a"}, "apiToken": "t1"});
        let new =
            json!({"auth": {"rootPassword": "s3cret!", "user": "b"}, "tls": {"privateKey": "k"}});
        let changes = diff_values(old.as_object().unwrap(), new.as_object().unwrap());
        let text = serde_json::to_string(&changes).unwrap();
        for secret in ["hunter2", "s3cret!", "t1", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["apiToken", "auth.rootPassword", "auth.user", "tls"],
            "every change is still listed"
        );
        assert_eq!(
            changes[2].new,
            Some(json!("b")),
            "ordinary values are shown"
        );
        assert!(looks_secret("existingSecret") && !looks_secret("image.tag"));
    }

    #[test]
    fn value_changes_list_leaf_paths() {
        let old = json!({"global": {"imageRegistry": "a"}, "keep": 1, "gone": true});
        let new = json!({"global": {"imageRegistry": "b"}, "keep": 1, "extra": [1]});
        let changes = diff_values(old.as_object().unwrap(), new.as_object().unwrap());
        let summary: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("extra", "added"),
                ("global.imageRegistry", "changed"),
                ("gone", "removed")
            ]
        );
    }
}
