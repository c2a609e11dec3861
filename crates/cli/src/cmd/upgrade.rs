//! `kantup upgrade`: binds flags to [`kantup::ops::upgrade`], prints the plan and the result,
//! asks for confirmation and picks the exit code. The workflow itself lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use kantup::ops::duration::parse_duration;
use kantup::ops::readiness_gate::GateOptions;
use kantup::ops::release::ReleaseId;
use kantup::ops::upgrade::{
    self, ChartSource, RepositoryChart, UpgradeOptions, UpgradePlan, UpgradeSummary,
};
use kantup_helm_values::strvals::HelmVersion;

use crate::cmd::cluster::HelmClusterArgs;
use crate::cmd::values_args::ValuesArgs;
use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress::BarProgress;

/// Upgrade a Helm release from an offline bundle, a chart directory or a chart archive.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// A bundle (`kant.bundle.tar`, plain, gzip or zstd), a chart directory, a chart `.tgz`,
    /// or a chart repository (`https://harbor/chartrepo/kant`, `oci://reg/charts`, a directory
    /// with an index.yaml) with `--chart`.
    pub source: String,
    /// The chart in the repository SOURCE (for `oci://host/path/CHART` the last segment when
    /// omitted).
    #[arg(long)]
    pub chart: Option<String>,
    /// The chart version to pull from the repository (exact); the newest stable one when
    /// omitted. Only for a repository SOURCE (`--chart`, or an `oci://host/path/CHART`).
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub credentials: crate::cmd::net_args::CredentialArgs,
    #[command(flatten)]
    pub tls: crate::cmd::net_args::TlsArgs,
    /// The release to upgrade (installed when it does not exist, as `helm upgrade --install`).
    #[arg(long)]
    pub release: String,
    /// The release's namespace.
    #[arg(long, short = 'n')]
    pub namespace: String,
    /// Sets `global.imageRegistry` (as a string) after every other value.
    #[arg(long)]
    pub image_registry: Option<String>,
    /// Values on top of the backed-up ones (files applied after the backup, in order).
    #[command(flatten)]
    pub values: ValuesArgs,
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
    #[command(flatten)]
    pub cluster: HelmClusterArgs,
    /// Accept a chart version lower than the deployed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Fail instead of installing when the release does not exist.
    #[arg(long)]
    pub no_install: bool,
    /// Create the namespace when installing into one that does not exist.
    #[arg(long)]
    pub create_namespace: bool,
    /// Do not apply the chart's CRDs.
    #[arg(long)]
    pub skip_crds: bool,
    #[command(flatten)]
    pub conflicts: crate::cmd::cluster::ConflictArgs,
    /// Allow removing CRD versions still listed in `status.storedVersions`.
    #[arg(long)]
    pub allow_version_removal: bool,
    /// Passed to `helm upgrade --timeout`, and the CRD wait timeout (`90s`, `5m`, `1h30m`).
    #[arg(long, default_value = crate::cmd::defaults::UPGRADE_TIMEOUT.as_str(), value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub after_helm: crate::cmd::upgrade_wait::WaitArgs,
    /// Do not ask the registries whether the chart's images are there before any change.
    #[arg(long, env = "KANTUP_SKIP_IMAGE_CHECK")]
    pub skip_image_check: bool,
    /// Skip bundle verification (not recommended).
    #[arg(long)]
    pub skip_verify: bool,
    #[command(flatten)]
    pub signature: crate::cmd::bundle::SignatureArgs,
    #[command(flatten)]
    pub images: crate::cmd::bundle::MissingImagesArgs,
    #[command(flatten)]
    pub image_keys: crate::cmd::image_key_args::ImageKeyArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// The flags of an upgrade over several clusters (`--context` given more than once, or
/// `--fleet`).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// A fleet file (YAML: `clusters:` each with a name, a kubeconfig and/or a context, an
    /// optional namespace and labels): upgrade the release on each of its clusters.
    #[arg(long, value_name = "FILE", conflicts_with = "context")]
    pub fleet: Option<PathBuf>,
    /// Only the fleet file's clusters with these labels (`KEY=VALUE`, comma-separated or
    /// repeated: all must match).
    #[arg(long, value_name = "KEY=VALUE", requires = "fleet")]
    pub selector: Vec<String>,
    /// Upgrade this cluster first, alone, and go on only when its release is ready (repeat
    /// for several canaries).
    #[arg(long, value_name = "NAME")]
    pub canary: Vec<String>,
    /// Upgrade at most this many clusters at once, after the canary.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: u16,
    /// Stop the rollout once more than this many clusters have failed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_failures: usize,
}

impl UpgradeArgs {
    /// SOURCE as a path, or as a repository when `--chart` is given or SOURCE is a URL.
    fn chart_source(&self) -> anyhow::Result<ChartSource> {
        let chart = match ChartSource::repository_chart(&self.source, self.chart.as_deref()) {
            // clap cannot say this one: `oci://host/path/CHART` names its chart without `--chart`.
            Ok(None) if self.version.is_some() => {
                return Err(ExitError::new(
                    Exit::Usage,
                    format!(
                        "--version picks a chart version in a repository, but {} is a path; give --chart to read it as a chart repository",
                        self.source
                    ),
                )
                .into());
            }
            Ok(None) => return Ok(ChartSource::Path(PathBuf::from(&self.source))),
            Ok(Some(chart)) => chart,
            Err(error) => return Err(ExitError::new(Exit::Usage, error.to_string()).into()),
        };
        Ok(ChartSource::Repository(Box::new(RepositoryChart {
            location: self.source.clone(),
            chart,
            version: self.version.clone(),
            http: self.tls.http_options(),
            credentials: self.credentials.resolver()?,
        })))
    }

    fn options(&self, open: &kantup_bundle::OpenOptions) -> anyhow::Result<UpgradeOptions> {
        Ok(UpgradeOptions {
            open: open.clone(),
            source: self.chart_source()?,
            release: ReleaseId::new(&self.release, &self.namespace),
            image_registry: self.image_registry.clone(),
            // The Helm version is the one `helm` turns out to be (the plan sets it).
            values: self.values.clone().options(HelmVersion::V3),
            helm: self.helm.clone(),
            backup_dir: self.backup_dir.clone(),
            cluster: self.cluster.cluster.first_access(),
            driver: self.cluster.driver()?,
            allow_downgrade: self.allow_downgrade,
            install: !self.no_install,
            create_namespace: self.create_namespace,
            skip_crds: self.skip_crds,
            crd_conflicts: self.conflicts.policy(),
            allow_version_removal: self.allow_version_removal,
            timeout: self.timeout,
            // kantup waits itself, after helm, with kstatus's rules (`--no-wait` skips it).
            wait: false,
            skip_verify: self.skip_verify,
            verify_key: self.signature.verify_key.clone(),
            signature: self.signature.signature.clone(),
            allow_missing_images: self.images.allow_missing_images,
            image_keys: self.image_keys.image_keys.clone(),
        })
    }
}

pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> anyhow::Result<ExitCode> {
    let options = args.options(&ctx.open)?;
    if args.fleet.fleet.is_some() || args.cluster.cluster.context.len() > 1 {
        return crate::cmd::upgrade_fleet::run(ctx, &args, options).await;
    }
    if !args.fleet.canary.is_empty() {
        return Err(ExitError::new(
            Exit::Usage,
            "--canary names a cluster of a fleet: give --context more than once, or --fleet",
        )
        .into());
    }
    let progress = BarProgress::new(ctx);
    let prepared = upgrade::plan(&options, &progress).await?;
    let plan = prepared.plan();
    let missing_images = crate::cmd::image_check::check(
        ctx,
        args.skip_image_check,
        args.tls.http_options(),
        &prepared,
    )
    .await?;
    if args.plan {
        print_plan(ctx, plan)?;
        let mut blockers = prepared.blockers();
        blockers.extend(missing_images);
        if ctx.output == OutputFormat::Table {
            for blocker in &blockers {
                println!("would refuse: {blocker}");
            }
        }
        return Ok(crate::output::success_if(blockers.is_empty()));
    }
    if !plan.preflight.passed() {
        print_plan(ctx, plan)?;
    } else if plan.up_to_date {
        if ctx.output == OutputFormat::Json {
            ctx.print_json(plan)?;
        } else {
            println!(
                "release {} already runs {} {} with these values and CRDs: nothing to do",
                plan.release, plan.chart, plan.chart_version
            );
        }
        return Ok(ExitCode::SUCCESS);
    } else if !missing_images.is_empty() {
        return Err(ExitError::new(
            Exit::Failure,
            format!(
                "the chart's images are not all in their registries; nothing was changed \
                 (--skip-image-check skips this check):\n  {}",
                missing_images.join("\n  ")
            ),
        )
        .into());
    } else {
        confirm(ctx, &args, plan)?;
    }
    if ctx.output == OutputFormat::Table && !ctx.quiet {
        for reason in &plan.helm_reasons {
            println!("helm runs: {reason}");
        }
    }
    let gate = GateOptions::new(&options, plan.deployed_revision);
    let result = upgrade::execute(prepared).await;
    crate::cmd::upgrade_wait::finish(ctx, &args.after_helm, gate, result, print_summary).await
}

fn confirm(ctx: &Ctx, args: &UpgradeArgs, plan: &UpgradePlan) -> anyhow::Result<()> {
    if args.yes {
        if ctx.output == OutputFormat::Table && !ctx.quiet {
            print_crd_takeovers(plan);
        }
        return Ok(());
    }
    crate::cmd::confirm(
        "upgrade",
        "upgrade",
        || print_plan(ctx, plan),
        &format!(
            "{} release {}?",
            if plan.install { "Install" } else { "Upgrade" },
            plan.release
        ),
    )
}

/// Says on stderr, before anything changes, whose CRD fields are about to be taken over.
fn print_crd_takeovers(plan: &UpgradePlan) {
    for crd in plan.crds.iter().filter(|c| !c.conflicts.is_empty()) {
        eprintln!(
            "CRD {}: taking over fields from {}",
            crd.name,
            kantup_k8s_apply::describe_conflicts(&crd.conflicts)
        );
    }
}

fn print_plan(ctx: &Ctx, plan: &UpgradePlan) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return ctx.print_json(plan);
    }
    if plan.install {
        println!(
            "install {}: {} {} ({})",
            plan.release, plan.chart, plan.chart_version, plan.source_kind
        );
    } else {
        println!(
            "upgrade {}: {} {} -> {} {} ({})",
            plan.release,
            plan.chart,
            plan.deployed_chart_version.as_deref().unwrap_or("-"),
            plan.chart,
            plan.chart_version,
            plan.source_kind
        );
    }
    println!("\npre-flight:");
    crate::cmd::tables::print_checks(&plan.preflight.checks, "  ");
    println!("\nCRDs:");
    if !plan.crds_planned {
        println!("  (not asked: the pre-flight failed)");
    } else if plan.crds.is_empty() {
        println!("  (none)");
    }
    crate::cmd::tables::print_plans(&plan.crds, "  ");
    println!("\nvalues (user-supplied, previous -> new):");
    if plan.values_changes.is_empty() {
        println!("  (no change)");
    }
    crate::cmd::tables::value_changes(&plan.values_changes);
    println!("\nvalues backup: {}", plan.files.backup_file.display());
    if let Some(file) = &plan.files.crd_snapshot_file {
        println!("CRD snapshot:  {}", file.display());
    }
    println!("helm command:\n  {}", plan.helm_command);
    if plan.up_to_date {
        println!("\nthe release is up to date: nothing would be done");
    } else {
        println!("\nhelm runs because:");
        for reason in &plan.helm_reasons {
            println!("  {reason}");
        }
    }
    Ok(())
}

fn print_summary(ctx: &Ctx, summary: &UpgradeSummary) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return ctx.print_json(summary);
    }
    let (verb, revisions) = match summary.previous_revision {
        Some(previous) => ("upgraded", format!("{previous} -> {}", summary.revision)),
        None => ("installed", summary.revision.to_string()),
    };
    println!(
        "{verb} {}: revision {revisions} ({}), chart {} {}",
        summary.release, summary.status, summary.chart, summary.chart_version
    );
    println!("values backup: {}", summary.files.backup_file.display());
    println!("values used:   {}", summary.files.values_file.display());
    if let Some(file) = &summary.files.crd_snapshot_file {
        println!("CRD snapshot:  {}", file.display());
    }
    let written = summary
        .crds
        .iter()
        .filter(|c| c.resource_version.is_some())
        .count();
    println!(
        "CRDs applied:  {written} of {} ({} unchanged)",
        summary.crds.len(),
        summary.crds.len() - written
    );
    for crd in summary.crds.iter().filter(|c| !c.taken_over.is_empty()) {
        println!(
            "  {}: took over fields from {}",
            crd.name,
            kantup_k8s_apply::describe_conflicts(&crd.taken_over)
        );
    }
    println!("way back:      {}", summary.way_back);
    Ok(())
}
