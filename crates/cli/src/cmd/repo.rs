//! `kantup repo versions` and `kantup repo pull`: read Helm chart repositories.
//!
//! Index-based repositories (Harbor `https://host/chartrepo/<project>`, ChartMuseum, any HTTP
//! server with an `index.yaml`, a local directory) go through
//! [`kantup_registry::chart_index::http::ChartRepository`]; `oci://registry/repo/chart` lists
//! the chart's tags, and pulls the chart layer, through [`kantup_registry::RegistryClient`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use kantup_registry::chart_index::http::{BasicAuth, ChartRepository};
use kantup_registry::chart_index::{ChartVersion, IndexFile, parse_version};
use kantup_registry::{
    ClientOptions, Credentials, DockerConfig, RegistryClient, RegistryError, sha256_digest,
};
use serde::Serialize;

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
    let (host, repository) = split_oci_reference(reference)?;
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_owned();
    if args.chart.as_ref().is_some_and(|chart| *chart != name) {
        return Ok(Vec::new());
    }
    let client = oci_client(host, &args.auth)?;
    let mut versions =
        oci_versions_newest_first(&client, reference, repository, args.devel).await?;
    if args.latest {
        versions.truncate(1);
    }
    let mut rows = Vec::new();
    for (index, version) in versions.into_iter().enumerate() {
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

/// `registry/repository` (the part after `oci://`) split into host and repository.
fn split_oci_reference(reference: &str) -> anyhow::Result<(&str, &str)> {
    let (host, repository) = reference
        .split_once('/')
        .map(|(host, repo)| (host, repo.trim_end_matches('/')))
        .filter(|(host, repo)| !host.is_empty() && !repo.is_empty())
        .ok_or_else(|| {
            ExitError::new(
                Exit::Usage,
                format!("oci://{reference}: expected oci://registry/repository/chart"),
            )
        })?;
    Ok((host, repository))
}

/// A registry client for `host`: `--username/--password` (or their environment variables)
/// when given, otherwise the docker config's credentials for the host, as docker and helm
/// would use them.
fn oci_client(host: &str, auth: &AuthArgs) -> anyhow::Result<RegistryClient> {
    let credentials = match auth.basic()? {
        Some(auth) => Some(Credentials::new(auth.username, auth.password)),
        None => DockerConfig::load_default()
            .ok()
            .and_then(|config| config.credentials_for(host).ok().flatten()),
    };
    let options = ClientOptions {
        plain_http: auth.plain_http.then_some(true),
        credentials,
        ..ClientOptions::default()
    };
    Ok(RegistryClient::new(host, options)?)
}

/// The chart versions among a repository's tags (helm stores `+` as `_` in tags), newest
/// first; pre-releases only with `devel`, tags that are not semver never.
async fn oci_versions_newest_first(
    client: &RegistryClient,
    reference: &str,
    repository: &str,
    devel: bool,
) -> anyhow::Result<Vec<String>> {
    let tags = client
        .list_tags(repository)
        .await
        .with_context(|| format!("listing the tags of oci://{reference}"))?;
    let mut versions: Vec<_> = tags
        .into_iter()
        .map(|tag| tag.replace('_', "+"))
        .filter(|version| shown(version, devel))
        .filter_map(|version| parse_version(&version).map(|parsed| (parsed, version)))
        .collect();
    versions.sort_by(|(a, _), (b, _)| b.cmp_precedence(a));
    Ok(versions.into_iter().map(|(_, version)| version).collect())
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
    if let Some(reference) = args.repository.strip_prefix("oci://") {
        let report = oci_pull(reference, &args).await?;
        print_pull_report(ctx, &report, "sha256 verified against the OCI layer digest")?;
        return Ok(Exit::Ok.code());
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
    let check = if report.verified {
        "sha256 verified against the index"
    } else {
        "NOT verified: the index has no digest"
    };
    print_pull_report(ctx, &report, check)?;
    Ok(Exit::Ok.code())
}

fn print_pull_report(ctx: &Ctx, report: &PullReport, check: &str) -> anyhow::Result<()> {
    match ctx.output {
        OutputFormat::Json => ctx.print_json(report)?,
        OutputFormat::Table => println!(
            "{} {} -> {} ({check}: {})",
            report.chart,
            report.version,
            report.path.display(),
            report.sha256
        ),
    }
    Ok(())
}

/// Media type of a Helm chart's OCI manifest.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Helm chart's config blob (Chart.yaml as JSON).
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of the layer holding the chart archive (`.tgz`).
const HELM_CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer's media type before Helm 3.8 (helm still pulls it).
const HELM_CHART_CONTENT_LEGACY: &str = "application/tar+gzip";

/// One descriptor of an OCI manifest.
#[derive(Debug, serde::Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// The parts of an OCI image manifest a chart pull reads.
#[derive(Debug, serde::Deserialize)]
struct ChartManifest {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Pulls `oci://<reference>[/<chart>]` as helm does: the version's tag (`+` stored as `_`),
/// its OCI manifest, the Helm config and the chart layer, streamed into `-d DIR` while
/// hashing. The file `<name>-<version>.tgz` appears only when the layer's bytes match its
/// digest and size (exit 3 otherwise, with nothing written).
async fn oci_pull(reference: &str, args: &PullArgs) -> anyhow::Result<PullReport> {
    let (host, base) = split_oci_reference(reference)?;
    let repository = oci_chart_repository(base, &args.chart);
    let display = format!("oci://{host}/{repository}");
    let client = oci_client(host, &args.auth)?;
    let version = match &args.version {
        Some(version) if parse_version(version).is_none() => {
            return Err(ExitError::new(
                Exit::Usage,
                format!("--version {version:?} is not a semantic version (helm charts are versioned by semver)"),
            )
            .into());
        }
        Some(version) => version.clone(),
        None => {
            let reference = format!("{host}/{repository}");
            let versions =
                oci_versions_newest_first(&client, &reference, &repository, args.devel).await?;
            versions.into_iter().next().ok_or_else(|| {
                let hint = if args.devel {
                    ""
                } else {
                    " (pre-releases need --devel)"
                };
                ExitError::new(
                    Exit::NothingToDo,
                    format!("no chart versions in {display}{hint}"),
                )
            })?
        }
    };
    let tag = version.replace('+', "_");
    let (manifest_bytes, info) = match client.get_manifest(&repository, &tag).await {
        Ok(found) => found,
        Err(RegistryError::Status { status: 404, .. }) => {
            return Err(ExitError::new(
                Exit::NothingToDo,
                format!("chart version {version} not found in {display} (no tag {tag})"),
            )
            .into());
        }
        Err(error) => {
            return Err(anyhow::Error::from(error)
                .context(format!("reading the manifest of {display}:{tag}")));
        }
    };
    let manifest: ChartManifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{display}:{tag}: the manifest is not an OCI image manifest"))?;
    let media_type = manifest.media_type.as_deref().unwrap_or(&info.media_type);
    if media_type != OCI_MANIFEST {
        anyhow::bail!(
            "{display}:{tag}: manifest media type {media_type:?}, expected {OCI_MANIFEST}"
        );
    }
    if manifest.config.media_type != HELM_CONFIG {
        anyhow::bail!(
            "{display}:{tag} is not a Helm chart: config media type {:?}, expected {HELM_CONFIG}",
            manifest.config.media_type
        );
    }
    let layer = manifest
        .layers
        .iter()
        .find(|layer| layer.media_type == HELM_CHART_CONTENT)
        .or_else(|| {
            manifest
                .layers
                .iter()
                .find(|layer| layer.media_type == HELM_CHART_CONTENT_LEGACY)
        })
        .ok_or_else(|| {
            anyhow::anyhow!("{display}:{tag}: the manifest has no {HELM_CHART_CONTENT} layer")
        })?;
    for descriptor in [&manifest.config, layer] {
        if !descriptor.digest.starts_with("sha256:") {
            anyhow::bail!(
                "{display}:{tag}: digest {:?} is not sha256, which kantup cannot verify",
                descriptor.digest
            );
        }
    }

    // The config names the chart and its version: the file name helm gives the archive.
    let config = client
        .get_blob(&repository, &manifest.config.digest)
        .await
        .with_context(|| format!("reading the chart config of {display}:{tag}"))?;
    let config_digest = sha256_digest(&config);
    if config_digest != manifest.config.digest {
        return Err(ExitError::new(
            Exit::VerificationFailed,
            format!(
                "{display}:{tag}: the chart config has digest {config_digest}, the manifest says {}; nothing written",
                manifest.config.digest
            ),
        )
        .into());
    }
    #[derive(serde::Deserialize)]
    struct ChartMeta {
        name: String,
        version: String,
    }
    let meta: ChartMeta = serde_json::from_slice(&config)
        .with_context(|| format!("{display}:{tag}: the chart config has no name or version"))?;
    if parse_version(&meta.version).is_none() || !is_file_name_part(&meta.name) {
        anyhow::bail!(
            "{display}:{tag}: the chart config names chart {:?} version {:?}, not usable as a file name",
            meta.name,
            meta.version
        );
    }
    // A tag must hold the version it names (helm's push derives the tag from the version);
    // otherwise the file name and the report would lie about what was pulled.
    if parse_version(&meta.version) != parse_version(&version) {
        return Err(ExitError::new(
            Exit::VerificationFailed,
            format!(
                "{display}:{tag} holds chart version {:?}, not {version:?}; nothing written",
                meta.version
            ),
        )
        .into());
    }

    let file_name = format!("{}-{}.tgz", meta.name, meta.version);
    let dest_dir = &args.destination;
    std::fs::create_dir_all(dest_dir)
        .with_context(|| format!("creating {}", dest_dir.display()))?;
    let dest = dest_dir.join(&file_name);
    let temp = dest_dir.join(format!(".{file_name}.kantup-{}.part", std::process::id()));
    let downloaded = client
        .download_blob(&repository, &layer.digest, &temp)
        .await;
    let verified = downloaded
        .map_err(|error| {
            anyhow::Error::from(error).context(format!(
                "downloading the chart layer {} of {display}:{tag}",
                layer.digest
            ))
        })
        .and_then(|(actual, size)| {
            if actual != layer.digest || size != layer.size {
                return Err(ExitError::new(
                    Exit::VerificationFailed,
                    format!(
                        "{display}:{tag}: the chart layer's content ({actual}, {size} bytes) does not match the manifest ({}, {} bytes); nothing written",
                        layer.digest, layer.size
                    ),
                )
                .into());
            }
            std::fs::rename(&temp, &dest)
                .with_context(|| format!("moving {} into place", dest.display()))
        });
    if let Err(error) = verified {
        remove_if_present(&temp);
        return Err(error);
    }
    Ok(PullReport {
        chart: meta.name,
        version: meta.version,
        path: dest,
        source: format!("{display}@{}", info.digest),
        sha256: layer
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&layer.digest)
            .to_owned(),
        verified: true,
    })
}

/// The registry repository of `chart` below `base`: helm's form names the chart in the URL
/// (`oci://host/charts/web`), kantup's gives it as its own argument (`oci://host/charts web`);
/// both are accepted.
fn oci_chart_repository(base: &str, chart: &str) -> String {
    if base.rsplit('/').next() == Some(chart) {
        base.to_owned()
    } else {
        format!("{base}/{chart}")
    }
}

/// Whether `name` can stand before `-<version>.tgz` in a file name without leaving the
/// destination directory or hiding the file.
fn is_file_name_part(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

fn remove_if_present(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("could not remove {}: {error}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references() {
        let cases = [
            ("reg:5000/charts/web", Some(("reg:5000", "charts/web"))),
            ("reg:5000/charts/web/", Some(("reg:5000", "charts/web"))),
            ("reg/a/b/c", Some(("reg", "a/b/c"))),
            ("reg", None),
            ("reg/", None),
            ("/charts", None),
        ];
        for (reference, expected) in cases {
            assert_eq!(split_oci_reference(reference).ok(), expected, "{reference}");
        }
    }

    #[test]
    fn oci_chart_repositories() {
        let cases = [
            ("charts", "web", "charts/web"),
            ("charts/web", "web", "charts/web"),
            ("web", "web", "web"),
            ("team/charts", "web", "team/charts/web"),
            ("charts/webapp", "web", "charts/webapp/web"),
        ];
        for (base, chart, expected) in cases {
            assert_eq!(
                oci_chart_repository(base, chart),
                expected,
                "{base} {chart}"
            );
        }
    }

    #[test]
    fn chart_names_usable_in_file_names() {
        let cases = [
            ("web", true),
            ("my-chart_2", true),
            ("", false),
            (".hidden", false),
            ("..", false),
            ("../evil", false),
            ("a/b", false),
            ("a\\b", false),
            ("nul\0", false),
        ];
        for (name, usable) in cases {
            assert_eq!(is_file_name_part(name), usable, "{name:?}");
        }
    }
}
