//! `kantup repo versions` and `kantup repo pull`: read Helm chart repositories.
//!
//! Index-based repositories (Harbor `https://host/chartrepo/<project>`, ChartMuseum, any HTTP
//! server with an `index.yaml`, a local directory) go through
//! [`kantup_registry::chart_index::http::ChartRepository`]; `oci://registry/repo/chart` lists
//! the chart's tags through [`kantup_registry::RegistryClient`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use kantup_registry::chart_index::http::{BasicAuth, ChartRepository};
use kantup_registry::chart_index::{ChartVersion, IndexFile, parse_version};
use kantup_registry::{ClientOptions, Credentials, DockerConfig, RegistryClient};
use serde::Serialize;

use crate::output::{Ctx, Exit, ExitError, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// List chart versions, newest first (what `helm search repo --versions` shows).
    Versions(VersionsArgs),
    /// Download a chart archive from an index repository, verified against the index's sha256.
    #[command(disable_version_flag = true)]
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Username for the repository (HTTP basic auth; for oci:// the registry login).
    #[arg(long, env = "KANTUP_REPO_USERNAME")]
    username: Option<String>,
    /// Password for the repository; prefer the environment variable over the flag.
    #[arg(long, env = "KANTUP_REPO_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// For oci://: talk plain HTTP to the registry (otherwise HTTPS, except for localhost).
    #[arg(long)]
    plain_http: bool,
}

impl AuthArgs {
    fn basic(&self) -> anyhow::Result<Option<BasicAuth>> {
        match (&self.username, &self.password) {
            (Some(username), Some(password)) => Ok(Some(BasicAuth {
                username: username.clone(),
                password: password.clone(),
            })),
            (None, None) => Ok(None),
            _ => Err(ExitError::new(
                Exit::Usage,
                "--username and --password must be given together",
            )
            .into()),
        }
    }
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
    auth: AuthArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Repository: http(s) URL (the index is URL/index.yaml) or a directory.
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
    auth: AuthArgs,
}

/// One row of `repo versions`.
#[derive(Debug, Serialize)]
struct VersionRow {
    name: String,
    version: String,
    app_version: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
}

impl VersionRow {
    fn from_entry(entry: &ChartVersion) -> Self {
        Self {
            name: entry.metadata.name.clone(),
            version: entry.metadata.version.clone(),
            app_version: entry.metadata.app_version.clone().unwrap_or_default(),
            description: entry.metadata.description.clone().unwrap_or_default(),
            urls: entry.urls.clone(),
            digest: entry.digest.clone(),
            created: entry.created.clone(),
        }
    }
}

pub async fn run(ctx: &Ctx, command: RepoCommand) -> anyhow::Result<ExitCode> {
    match command {
        RepoCommand::Versions(args) => versions(ctx, args).await,
        RepoCommand::Pull(args) => pull(ctx, args).await,
    }
}

/// Whether a version passes helm's search filter: stable semver (`>0.0.0`), or any semver
/// with `--devel` (`>0.0.0-0`); versions that are not semver are never shown.
fn shown(version: &str, devel: bool) -> bool {
    parse_version(version).is_some_and(|v| devel || v.pre.is_empty())
}

async fn versions(ctx: &Ctx, args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let rows = if let Some(reference) = args.repository.strip_prefix("oci://") {
        oci_versions(reference, &args).await?
    } else {
        let repo = ChartRepository::new(&args.repository, args.auth.basic()?)?;
        let index = repo.fetch_index().await?;
        index_rows(&index, &args)
    };
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
            format!("{what} in {}{hint}", args.repository),
        )
        .into());
    }
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&rows)?,
        OutputFormat::Table => print_table(&rows),
    }
    Ok(Exit::Ok.code())
}

fn index_rows(index: &IndexFile, args: &VersionsArgs) -> Vec<VersionRow> {
    let mut rows = Vec::new();
    for (name, versions) in &index.entries {
        if args.chart.as_ref().is_some_and(|chart| chart != name) {
            continue;
        }
        if args.latest {
            if let Some(entry) = index.latest(name, args.devel) {
                rows.push(VersionRow::from_entry(entry));
            }
            continue;
        }
        rows.extend(
            versions
                .iter()
                .filter(|entry| shown(&entry.metadata.version, args.devel))
                .map(VersionRow::from_entry),
        );
    }
    rows
}

/// Lists an OCI chart's versions from its tags (helm stores `+` in versions as `_` in tags),
/// with app version and description read from each version's chart config.
async fn oci_versions(reference: &str, args: &VersionsArgs) -> anyhow::Result<Vec<VersionRow>> {
    let (host, repository) = reference
        .split_once('/')
        .filter(|(host, repo)| !host.is_empty() && !repo.is_empty())
        .ok_or_else(|| {
            ExitError::new(
                Exit::Usage,
                format!("oci://{reference}: expected oci://registry/repository/chart"),
            )
        })?;
    let repository = repository.trim_end_matches('/');
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_owned();
    if args.chart.as_ref().is_some_and(|chart| *chart != name) {
        return Ok(Vec::new());
    }
    let credentials = match args.auth.basic()? {
        Some(auth) => Some(Credentials::new(auth.username, auth.password)),
        None => DockerConfig::load_default()
            .ok()
            .and_then(|config| config.credentials_for(host).ok().flatten()),
    };
    let options = ClientOptions {
        plain_http: args.auth.plain_http.then_some(true),
        credentials,
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(host, options)?;
    let tags = client
        .list_tags(repository)
        .await
        .with_context(|| format!("listing the tags of oci://{reference}"))?;
    let mut versions: Vec<_> = tags
        .into_iter()
        .map(|tag| tag.replace('_', "+"))
        .filter(|version| shown(version, args.devel))
        .filter_map(|version| parse_version(&version).map(|parsed| (parsed, version)))
        .collect();
    versions.sort_by(|(a, _), (b, _)| b.cmp_precedence(a));
    if args.latest {
        versions.truncate(1);
    }
    let mut rows = Vec::new();
    for (index, (_, version)) in versions.into_iter().enumerate() {
        // The app version and description live in each chart's config blob (Chart.yaml as
        // JSON): two small requests per version, for the first OCI_METADATA_LIMIT versions.
        let metadata = if index < OCI_METADATA_LIMIT {
            oci_chart_metadata(&client, repository, &version.replace('+', "_")).await
        } else {
            None
        };
        let text = |key: &str| {
            metadata
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        rows.push(VersionRow {
            name: name.clone(),
            app_version: text("appVersion"),
            description: text("description"),
            version,
            urls: Vec::new(),
            digest: None,
            created: None,
        });
    }
    Ok(rows)
}

/// How many OCI versions get their app version and description looked up.
const OCI_METADATA_LIMIT: usize = 100;

/// The chart's `Chart.yaml` fields from its OCI config blob; `None` (columns left empty, a
/// debug log) when the manifest or config cannot be read or is not a Helm chart.
async fn oci_chart_metadata(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
) -> Option<serde_json::Value> {
    let result: anyhow::Result<serde_json::Value> = async {
        let (manifest, _) = client.get_manifest(repository, tag).await?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest)?;
        let config = &manifest["config"];
        if config["mediaType"] != "application/vnd.cncf.helm.config.v1+json" {
            anyhow::bail!("not a Helm chart (config {})", config["mediaType"]);
        }
        let digest = config["digest"]
            .as_str()
            .context("the manifest has no config digest")?;
        let blob = client.get_blob(repository, digest).await?;
        Ok(serde_json::from_slice(&blob)?)
    }
    .await;
    match result {
        Ok(metadata) => Some(metadata),
        Err(error) => {
            tracing::debug!("{repository}:{tag}: no chart metadata: {error:#}");
            None
        }
    }
}

fn print_table(rows: &[VersionRow]) {
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
    if args.repository.starts_with("oci://") {
        return Err(ExitError::new(
            Exit::Usage,
            "kantup repo pull reads index repositories; for oci:// charts use `helm pull oci://...`",
        )
        .into());
    }
    let repo = ChartRepository::new(&args.repository, args.auth.basic()?)?;
    let index = repo.fetch_index().await?;
    let entry = match &args.version {
        Some(version) => index.get(&args.chart, version),
        None => index.latest(&args.chart, args.devel),
    };
    let Some(entry) = entry else {
        let version = args.version.as_deref().unwrap_or("(latest)");
        let known: Vec<&str> = index
            .versions(&args.chart)
            .iter()
            .take(10)
            .map(|v| v.metadata.version.as_str())
            .collect();
        let known = if known.is_empty() {
            "the chart is not in the index".to_owned()
        } else {
            format!("versions there: {}", known.join(", "))
        };
        return Err(ExitError::new(
            Exit::NothingToDo,
            format!(
                "chart {:?} {version} not found in {}; {known}",
                args.chart, args.repository
            ),
        )
        .into());
    };
    let pulled = repo.pull(entry, &args.destination).await?;
    let report = PullReport {
        chart: entry.metadata.name.clone(),
        version: entry.metadata.version.clone(),
        path: pulled.path,
        source: pulled.source,
        sha256: pulled.sha256,
        verified: pulled.verified,
    };
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Table => {
            let check = if report.verified {
                "sha256 verified against the index"
            } else {
                "NOT verified: the index has no digest"
            };
            println!(
                "{} {} -> {} ({check}: {})",
                report.chart,
                report.version,
                report.path.display(),
                report.sha256
            );
        }
    }
    Ok(Exit::Ok.code())
}
