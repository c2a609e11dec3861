//! `kantup repo versions` and `kantup repo pull`: read Helm chart repositories through
//! [`kantup_registry::chart_repo::ChartRepository`] (Harbor `https://host/chartrepo/<project>`,
//! ChartMuseum, any HTTP server with an `index.yaml`, a local directory, `oci://` registries).
//! The work is [`kantup::ops::repo`]; this module binds flags, prints, and picks exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kantup::ops::repo::{self, PullOptions, VersionsOptions};
use kantup_registry::chart_repo::ChartVersionInfo;

use crate::cmd::net_args::{CredentialArgs, TlsArgs};
use crate::output::{Ctx, Exit, OutputFormat};

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

async fn versions(ctx: &Ctx, args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let options = VersionsOptions {
        repository: args.repository,
        chart: args.chart,
        latest: args.latest,
        devel: args.devel,
        http: args.tls.http_options(),
        credentials: args.credentials.resolver()?,
    };
    let rows = repo::versions(&options).await?;
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

async fn pull(ctx: &Ctx, args: PullArgs) -> anyhow::Result<ExitCode> {
    let options = PullOptions {
        repository: args.repository,
        chart: args.chart,
        version: args.version,
        devel: args.devel,
        destination: args.destination,
        http: args.tls.http_options(),
        credentials: args.credentials.resolver()?,
    };
    let report = repo::pull(&options).await?;
    let check = match report.checked_against() {
        Some(what) => format!("sha256 verified against {what}"),
        None => "NOT verified: the index has no digest".to_string(),
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
