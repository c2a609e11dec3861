//! `kantup repo versions` and `kantup repo pull`: read Helm chart repositories through
//! [`kantup_registry::chart_repo::ChartRepository`] (Harbor `https://host/chartrepo/<project>`,
//! ChartMuseum, any HTTP server with an `index.yaml`, a local directory, `oci://` registries).
//! This module binds flags, prints, and picks exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kantup_registry::chart_index::parse_version;
use kantup_registry::chart_repo::{ChartRepository, ChartVersionInfo};
use serde::Serialize;

use crate::cmd::net_args::{CredentialArgs, TlsArgs};
use crate::output::{Ctx, Exit, ExitError, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// List chart versions, newest first (what `helm search repo --versions` shows).
    Versions(VersionsArgs),
    /// Download a chart archive, verified against the index's sha256 or the OCI layer digest.
    #[command(disable_version_flag = true)]
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Repository: http(s) URL (the index is URL/index.yaml), a directory, or
    /// oci://registry/repository/chart.
    repository: String,
    /// Only this chart.
    #[arg(long)]
    chart: Option<String>,
    /// Only the newest version of each chart.
    #[arg(long)]
    latest: bool,
    /// Include pre-release versions (alpha, beta, rc), like helm's --devel.
    #[arg(long)]
    devel: bool,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Repository: http(s) URL (the index is URL/index.yaml), a directory, or
    /// oci://registry/repository (the chart is then oci://registry/repository/CHART;
    /// oci://registry/repository/CHART itself is accepted too).
    repository: String,
    /// Chart name.
    chart: String,
    /// Chart version (exact); the newest stable version when omitted.
    #[arg(long)]
    version: Option<String>,
    /// With no --version: also consider pre-releases.
    #[arg(long)]
    devel: bool,
    /// Directory to write the archive into.
    #[arg(long, short = 'd', default_value = ".")]
    destination: PathBuf,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

pub async fn run(ctx: &Ctx, command: RepoCommand) -> anyhow::Result<ExitCode> {
    match command {
        RepoCommand::Versions(args) => versions(ctx, args).await,
        RepoCommand::Pull(args) => pull(ctx, args).await,
    }
}

fn open(
    repository: &str,
    credentials: &CredentialArgs,
    tls: &TlsArgs,
) -> anyhow::Result<ChartRepository> {
    Ok(ChartRepository::open(
        repository,
        &tls.http_options(),
        &credentials.resolver()?,
    )?)
}

async fn versions(ctx: &Ctx, args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let repo = open(&args.repository, &args.credentials, &args.tls)?;
    let charts = match &args.chart {
        Some(chart) => vec![chart.clone()],
        None => repo.chart_names().await?,
    };
    let mut rows: Vec<ChartVersionInfo> = Vec::new();
    for chart in &charts {
        // helm's search filter: stable SemVer, or any SemVer with --devel.
        let shown = repo
            .versions(chart)
            .await?
            .into_iter()
            .filter(|v| args.devel || v.is_stable());
        if args.latest {
            rows.extend(shown.take(1));
        } else {
            rows.extend(shown);
        }
    }
    if rows.is_empty() {
        let what = match &args.chart {
            Some(chart) => format!("no versions of chart {chart:?}"),
            None => "no chart versions".to_owned(),
        };
        let hint = if args.devel {
            ""
        } else {
            " (pre-releases need --devel)"
        };
        return Err(ExitError::new(
            Exit::NothingToDo,
            format!("{what} in {}{hint}", repo.location()),
        )
        .into());
    }
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&rows)?,
        OutputFormat::Table => print_table(&rows),
    }
    Ok(Exit::Ok.code())
}

fn print_table(rows: &[ChartVersionInfo]) {
    let headers = ["NAME", "CHART VERSION", "APP VERSION", "DESCRIPTION"];
    let cells: Vec<[&str; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.name.as_str(),
                row.version.as_str(),
                row.app_version.as_str(),
                row.description.as_str(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 4]| {
        format!(
            "{:<w0$}\t{:<w1$}\t{:<w2$}\t{}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    println!("{}", line(headers).trim_end());
    for row in cells {
        println!("{}", line(row).trim_end());
    }
}

#[derive(Debug, Serialize)]
struct PullReport {
    chart: String,
    version: String,
    path: PathBuf,
    source: String,
    sha256: String,
    verified: bool,
}

async fn pull(ctx: &Ctx, args: PullArgs) -> anyhow::Result<ExitCode> {
    let oci = args.repository.starts_with("oci://");
    if let Some(version) = &args.version
        && oci
        && parse_version(version).is_none()
    {
        return Err(ExitError::new(
            Exit::Usage,
            format!("--version {version:?} is not a semantic version (helm charts are versioned by semver)"),
        )
        .into());
    }
    let repo = open(&args.repository, &args.credentials, &args.tls)?;
    let version = match (&args.version, args.devel) {
        (Some(version), _) => Some(version.clone()),
        (None, true) => Some(repo.latest(&args.chart, true).await?.version),
        (None, false) => None,
    };
    let pulled = repo.pull(&args.chart, version.as_deref()).await?;
    let path = pulled.write_to(&args.destination)?;
    let report = PullReport {
        chart: pulled.name,
        version: pulled.version,
        path,
        source: pulled.source,
        sha256: pulled
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&pulled.digest)
            .to_owned(),
        verified: pulled.verified,
    };
    let check = match (oci, report.verified) {
        (true, _) => "sha256 verified against the OCI layer digest",
        (false, true) => "sha256 verified against the index",
        (false, false) => "NOT verified: the index has no digest",
    };
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => println!(
            "{} {} -> {} ({check}: {})",
            report.chart,
            report.version,
            report.path.display(),
            report.sha256
        ),
    }
    Ok(Exit::Ok.code())
}
