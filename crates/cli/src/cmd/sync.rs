//! `kantup sync --config load-image.yaml`: charts-syncer's job for offline bundles. For every
//! bundle: push its images to their relocated names, rewrite the chart's image values through
//! the bundle's hints, and upload the repackaged chart to the chart target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kantup_bundle::Bundle;
use kantup_bundle::archive::ImageArchive;
use kantup_bundle::chart::Chart;
use kantup_helm_values::relocate::relocate_chart;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::chart_target::{ChartAction, ChartResult, ChartTarget, PackagedChart};
use kantup_registry::credentials::{CredentialResolver, EnvPair};
use kantup_registry::{
    ClientOptions, Credentials, ImageAction, ImagePush, ImageResult, PushEvent, PushOptions,
    RegistryClient, RelocationRule, TagPolicy, push_images,
};
use serde::Serialize;

use crate::cmd::net_args::TlsArgs;
use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress;
use crate::sync_config::{AuthConfig, SyncConfig, TargetConfig};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// charts-syncer v1 config (`source.intermediateBundlesPath`, `target.containerRegistry`,
    /// `target.containerRepository`, `target.repo`, `target.containers.auth`).
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// Print the plan (each image `source -> target (push | skip | overwrite)` and each chart
    /// upload) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the images into this OCI image layout directory instead of a registry.
    #[arg(long, value_name = "DIR")]
    pub to_oci_layout: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Fail an image whose target tag already points at another digest (default: overwrite
    /// and report it).
    #[arg(long)]
    pub no_overwrite: bool,
    /// Replace a chart with the same name and version but other content.
    #[arg(long)]
    pub force: bool,
    /// Blob transfers in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// Where images go.
enum ImageTarget {
    Registry(Arc<RegistryClient>, RelocationRule),
    Layout(PathBuf),
}

#[derive(Debug, Serialize)]
struct BundleSummary {
    bundle: PathBuf,
    chart: String,
    images: Vec<ImageResult>,
    chart_upload: Option<ChartResult>,
    chart_error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct SyncSummary {
    dry_run: bool,
    bundles: Vec<BundleSummary>,
    images_pushed: u64,
    images_skipped: u64,
    images_overwritten: u64,
    images_failed: u64,
    charts_uploaded: u64,
    charts_skipped: u64,
    charts_failed: u64,
    blobs_uploaded: u64,
    blobs_mounted: u64,
    blobs_skipped: u64,
    bytes_uploaded: u64,
}

pub async fn run(ctx: &Ctx, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let config = SyncConfig::load(&args.config)?;
    for key in config.ignored_keys() {
        tracing::warn!(
            "{}: {key} is a charts-syncer setting kantup does not use; ignored",
            args.config.display()
        );
    }
    let base = args.config.parent().unwrap_or(Path::new("."));
    let source = config
        .source
        .intermediate_bundles_path
        .as_ref()
        .map(|p| base.join(p))
        .with_context(|| {
            format!(
                "{}: source.intermediateBundlesPath is required (a bundle file or a directory of bundles)",
                args.config.display()
            )
        })?;
    let bundles = find_bundles(&source)?;
    if bundles.is_empty() {
        return Err(ExitError::new(
            Exit::NothingToDo,
            format!(
                "no bundles (tar files with a chart inside) in {}",
                source.display()
            ),
        )
        .into());
    }

    let image_target = image_target(&config.target, &args, base)?;
    if let ImageTarget::Registry(client, _) = &image_target {
        // Settle the scheme and TLS trust once, up front: an untrusted certificate or a
        // registry that is not there is one clear error, not one per image.
        client
            .base_url()
            .await
            .with_context(|| format!("connecting to the registry {}", client.host()))?;
    }
    let chart_target = chart_target(&config.target, &args, base, &image_target)?;
    let push_options = PushOptions {
        blob_concurrency: args.concurrency.max(1),
        image_concurrency: 3,
        tag_policy: if args.no_overwrite {
            TagPolicy::Refuse
        } else {
            TagPolicy::Overwrite
        },
    };

    let mut summary = SyncSummary {
        dry_run: args.dry_run,
        ..SyncSummary::default()
    };
    for path in &bundles {
        let result = sync_bundle(
            ctx,
            &args,
            path,
            &image_target,
            chart_target.as_ref(),
            &push_options,
            &mut summary,
        )
        .await
        .with_context(|| format!("bundle {}", path.display()))?;
        summary.bundles.push(result);
    }

    if ctx.output == OutputFormat::Json {
        ctx.print_json(&summary)?;
    } else if !ctx.quiet {
        print_table(&summary);
    }
    let failed = summary.images_failed + summary.charts_failed;
    if failed > 0 {
        return Err(ExitError::new(
            Exit::Failure,
            format!(
                "sync failed: {} image(s) and {} chart(s) failed",
                summary.images_failed, summary.charts_failed
            ),
        )
        .into());
    }
    Ok(Exit::Ok.code())
}

/// A bundle file, or every file in a directory that is a bundle (a tar with a chart inside),
/// whatever its name; sorted by path.
fn find_bundles(source: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if source.is_file() {
        return Ok(vec![source.to_path_buf()]);
    }
    if !source.is_dir() {
        bail!(
            "source.intermediateBundlesPath {} does not exist",
            source.display()
        );
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(source)
        .with_context(|| format!("reading {}", source.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        match Bundle::open(&path).and_then(|b| b.chart().map(|_| ())) {
            Ok(()) => out.push(path),
            Err(e) => tracing::debug!("{} is not a bundle: {e}", path.display()),
        }
    }
    Ok(out)
}

fn client_options(args: &SyncArgs, credentials: Option<Credentials>) -> ClientOptions {
    ClientOptions {
        http: args.tls.http_options(),
        credentials,
        ..ClientOptions::default()
    }
}

/// The container registry's credentials: `target.containers.auth` (when its `registry` is
/// empty or this host), then charts-syncer's `TARGET_CONTAINERS_AUTH_*`, then docker's
/// `config.json`.
fn registry_resolver(target: &TargetConfig, host: &str) -> CredentialResolver {
    let from_config = target
        .containers
        .as_ref()
        .and_then(|c| c.auth.as_ref())
        .filter(|a| {
            a.registry
                .as_deref()
                .is_none_or(|r| r.is_empty() || r == host)
        })
        .and_then(AuthConfig::credentials);
    CredentialResolver::new()
        .given_credentials("target.containers.auth", from_config)
        .env(EnvPair::TARGET_CONTAINERS)
        .docker_config()
}

fn image_target(
    target: &TargetConfig,
    args: &SyncArgs,
    base: &Path,
) -> anyhow::Result<ImageTarget> {
    if let Some(dir) = &args.to_oci_layout {
        return Ok(ImageTarget::Layout(dir.clone()));
    }
    let registry = target
        .container_registry
        .as_deref()
        .filter(|r| !r.is_empty())
        .context("target.containerRegistry is required (a registry host, or oci-layout:/path)")?;
    if let Some(dir) = registry.strip_prefix("oci-layout:") {
        return Ok(ImageTarget::Layout(base.join(dir)));
    }
    let host = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let credentials = registry_resolver(target, host).resolve(host)?;
    let mut options = client_options(args, credentials);
    if registry.starts_with("http://") {
        options.http.plain_http = true;
    }
    let client = RegistryClient::new(host, options)?;
    Ok(ImageTarget::Registry(
        Arc::new(client),
        RelocationRule::new(host, target.container_repository().to_string()),
    ))
}

fn chart_target(
    target: &TargetConfig,
    args: &SyncArgs,
    base: &Path,
    images: &ImageTarget,
) -> anyhow::Result<Option<ChartTarget>> {
    let Some(repo) = &target.repo else {
        return Ok(None);
    };
    // `target.repo.auth`, then charts-syncer's `TARGET_REPO_AUTH_*`.
    let repo_given = repo.auth.as_ref().and_then(AuthConfig::credentials);
    let repo_resolver = CredentialResolver::new()
        .given_credentials("target.repo.auth", repo_given)
        .env(EnvPair::TARGET_REPO);
    let url = repo.url();
    Ok(Some(match repo.kind().as_str() {
        "OCI" => {
            let (plain, rest) = if let Some(r) = url.strip_prefix("http://") {
                (true, r)
            } else if let Some(r) = url.strip_prefix("https://") {
                (false, r)
            } else {
                (false, url.strip_prefix("oci://").unwrap_or(url))
            };
            let rest = rest.trim_end_matches('/');
            let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if host.is_empty() {
                bail!("target.repo.url {url:?} must name a registry (oci://host/path)");
            }
            let repo_credentials = repo_resolver.resolve(host)?;
            // Reuse the image registry's client (and its tokens) when it is the same host.
            if let ImageTarget::Registry(client, _) = images
                && client.host() == host
                && repo_credentials.is_none()
            {
                return Ok(Some(ChartTarget::Oci {
                    client: client.clone(),
                    repository_prefix: prefix.to_string(),
                }));
            }
            let credentials = match repo_credentials {
                Some(c) => Some(c),
                None => registry_resolver(target, host).resolve(host)?,
            };
            let mut options = client_options(args, credentials);
            options.http.plain_http |= plain;
            ChartTarget::Oci {
                client: Arc::new(RegistryClient::new(host, options)?),
                repository_prefix: prefix.to_string(),
            }
        }
        "LOCAL" => {
            let dir = repo
                .path
                .clone()
                .or_else(|| (!url.is_empty()).then(|| PathBuf::from(url)))
                .context("target.repo.path is required for kind LOCAL")?;
            ChartTarget::Local {
                dir: base.join(dir),
            }
        }
        kind @ ("HARBOR" | "CHARTMUSEUM" | "HELM") => {
            let host = url_authority(url);
            ChartTarget::http_repo(
                kind == "HARBOR",
                url,
                &args.tls.http_options(),
                repo_resolver.resolve(&host)?,
            )?
        }
        other => {
            bail!("target.repo.kind {other:?} is not supported (OCI, LOCAL, HARBOR, CHARTMUSEUM)")
        }
    }))
}

/// `host[:port]` of a chart repository URL (for its credentials and messages).
fn url_authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_owned()
}

#[allow(clippy::too_many_arguments)]
async fn sync_bundle(
    ctx: &Ctx,
    args: &SyncArgs,
    path: &Path,
    image_target: &ImageTarget,
    chart_target: Option<&ChartTarget>,
    push_options: &PushOptions,
    summary: &mut SyncSummary,
) -> anyhow::Result<BundleSummary> {
    let bundle = Bundle::open(path)?;
    let mut chart = bundle.chart()?;
    let chart_name = format!("{}-{}", chart.metadata.name, chart.metadata.version);
    let mut out = BundleSummary {
        bundle: path.to_path_buf(),
        chart: chart_name.clone(),
        images: Vec::new(),
        chart_upload: None,
        chart_error: None,
    };
    let archive = bundle.image_archive()?.map(Arc::new);

    let packaged = match chart_target {
        None => None,
        Some(_) => {
            if let ImageTarget::Registry(_, rule) = image_target {
                relocate_values(&bundle, &mut chart, rule, archive.as_deref())
                    .with_context(|| format!("relocating the image values of {chart_name}"))?;
            }
            chart.detach_dependencies()?;
            Some(PackagedChart::new(&chart)?)
        }
    };

    // 1. Images.
    match (image_target, &archive) {
        (_, None) => {}
        (ImageTarget::Registry(client, rule), Some(archive)) => {
            let pushes = plan_archive(archive.clone(), rule)?;
            if let Some(record) = bundle.base()? {
                require_base_blobs(client, rule, &pushes, &record, path, args.dry_run).await?;
            }
            if args.dry_run {
                let actions = kantup_registry::plan(client, &pushes).await?;
                for (push, action) in pushes.iter().zip(actions) {
                    count_action(summary, &action, false);
                    out.images.push(ImageResult {
                        source: push.source_name.clone(),
                        target: push.target_name(client.host()),
                        digest: push.manifest_digest.clone(),
                        action,
                        error: None,
                    });
                }
            } else {
                let report =
                    push_with_progress(ctx, client, &pushes, push_options, &chart_name).await;
                summary.blobs_uploaded += report.blobs_uploaded;
                summary.blobs_mounted += report.blobs_mounted;
                summary.blobs_skipped += report.blobs_skipped;
                summary.bytes_uploaded += report.bytes_uploaded;
                for image in &report.images {
                    count_action(summary, &image.action, image.error.is_some());
                }
                out.images = report.images;
            }
        }
        (ImageTarget::Layout(dir), Some(archive)) => {
            let missing: Vec<String> = archive
                .omitted_blobs()
                .iter()
                .filter(|d| {
                    !dir.join("blobs")
                        .join(d.algorithm())
                        .join(d.hex())
                        .is_file()
                })
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                anyhow::bail!(
                    "{} is a differential bundle: {} layer(s) it leaves out are not in the OCI layout {}: {}; write the base bundle's images there first, or use the full bundle",
                    path.display(),
                    missing.len(),
                    dir.display(),
                    missing.join(", ")
                );
            }
            let images: Vec<_> = archive.images().iter().collect();
            for image in &images {
                out.images.push(ImageResult {
                    source: image.display_name(),
                    target: format!("oci-layout:{}", dir.display()),
                    digest: image.manifest_digest.to_string(),
                    action: ImageAction::Push,
                    error: None,
                });
            }
            if !args.dry_run {
                let total: u64 = images.iter().map(|i| i.total_size()).sum();
                let bar = progress::bytes_bar(ctx, total, format!("{chart_name} images"));
                let report =
                    kantup_bundle::archive::oci_layout::write_images(dir, archive, &images, |n| {
                        bar.inc(n)
                    })?;
                bar.finish_and_clear();
                summary.blobs_uploaded += report.blobs_written as u64;
                summary.blobs_skipped += report.blobs_present as u64;
                summary.bytes_uploaded += report.bytes_written;
            }
            summary.images_pushed += images.len() as u64;
        }
    }

    // 2. Chart (prepared before any image moves, so a bad chart fails the bundle early).
    let Some(chart_target) = chart_target else {
        return Ok(out);
    };
    let Some(packaged) = packaged else {
        return Ok(out);
    };
    let failed_images = out.images.iter().filter(|i| i.error.is_some()).count();
    if failed_images > 0 {
        // A chart whose images are not all in place would deploy broken references.
        summary.charts_failed += 1;
        out.chart_error = Some(format!(
            "not uploaded: {failed_images} of its image(s) failed"
        ));
        return Ok(out);
    }
    let result = if args.dry_run {
        chart_target
            .plan(&packaged, args.force)
            .await
            .map(|action| ChartResult {
                chart: chart_name.clone(),
                location: chart_target.location(&packaged),
                digest: packaged.digest(),
                action,
            })
    } else {
        chart_target.upload(&packaged, args.force).await
    };
    match result {
        Ok(r) => {
            match r.action {
                ChartAction::Skip => summary.charts_skipped += 1,
                _ => summary.charts_uploaded += 1,
            }
            out.chart_upload = Some(r);
        }
        Err(e) => {
            summary.charts_failed += 1;
            out.chart_error = Some(format!("{e}"));
        }
    }
    Ok(out)
}

/// A differential bundle is pushed only when the target registry already holds every layer
/// it leaves out (mounting from the base's repositories where needed); checked before any
/// push, so a refusal changes nothing.
async fn require_base_blobs(
    client: &RegistryClient,
    rule: &RelocationRule,
    pushes: &[ImagePush],
    record: &kantup_bundle::differential::BaseRecord,
    path: &Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    use kantup_registry::base_blobs::{base_repositories, ensure_base_blobs};
    let omitted: std::collections::HashSet<String> = record
        .omitted
        .iter()
        .map(|b| b.digest.to_string())
        .collect();
    let from = base_repositories(record, rule);
    let check = ensure_base_blobs(client, pushes, &omitted, &from, !dry_run).await?;
    if check.missing.is_empty() {
        tracing::info!(
            "{}: differential bundle; {} left-out layer(s) already in {}, {} mounted from the base's repositories",
            path.display(),
            check.present,
            client.host(),
            check.mounted
        );
        return Ok(());
    }
    let list: Vec<String> = check
        .missing
        .iter()
        .map(|m| format!("{} needs {} in {}", m.image, m.digest, m.repository))
        .collect();
    anyhow::bail!(
        "{} is a differential bundle against {}; {} of the layers it leaves out are not in {}: {}. Sync the base bundle to this registry first, or use the full bundle. Nothing was pushed.",
        path.display(),
        record.base,
        check.missing.len(),
        client.host(),
        list.join("; ")
    )
}

fn count_action(summary: &mut SyncSummary, action: &ImageAction, failed: bool) {
    if failed {
        summary.images_failed += 1;
        return;
    }
    match action {
        ImageAction::Push => summary.images_pushed += 1,
        ImageAction::Skip => summary.images_skipped += 1,
        ImageAction::Overwrite { .. } => summary.images_overwritten += 1,
    }
}

async fn push_with_progress(
    ctx: &Ctx,
    client: &RegistryClient,
    pushes: &[ImagePush],
    options: &PushOptions,
    label: &str,
) -> kantup_registry::PushReport {
    let mut seen = std::collections::HashSet::new();
    let total: u64 = pushes
        .iter()
        .flat_map(|p| p.blobs.iter())
        .filter(|b| seen.insert(b.digest.clone()))
        .map(|b| b.size)
        .sum();
    let bar = progress::bytes_bar(ctx, total, format!("{label} images"));
    let observer_bar = bar.clone();
    let observer: kantup_registry::Observer = Arc::new(move |event| {
        if let PushEvent::Bytes(n) = event {
            observer_bar.inc(n);
        }
    });
    let report = push_images(client, pushes, options, Some(observer)).await;
    bar.finish_and_clear();
    report
}

/// Rewrites the chart's image values to the relocated names through the bundle's hints, in
/// memory (helm-values edits the values files surgically, keeping comments). Hints without a
/// tag are pinned to the digest of the bundle's image.
fn relocate_values(
    bundle: &Bundle,
    chart: &mut Chart,
    rule: &RelocationRule,
    archive: Option<&ImageArchive>,
) -> anyhow::Result<()> {
    let hints = bundle.hints()?;
    if hints.is_empty() {
        return Ok(());
    }
    let mut digests = HashMap::new();
    for image in archive.map(|a| a.images()).unwrap_or_default() {
        for reference in image.references.iter().filter_map(|r| r.reference()) {
            digests.insert(reference.clone(), image.manifest_digest);
        }
    }
    let report = relocate_chart(chart, &hints, &rule.into(), &digests)?;
    for image in &report.images {
        tracing::info!("values: {} -> {}", image.original, image.relocated);
    }
    Ok(())
}

fn print_table(summary: &SyncSummary) {
    let verb = if summary.dry_run { "plan" } else { "synced" };
    for bundle in &summary.bundles {
        println!("{} ({}):", bundle.chart, bundle.bundle.display());
        for image in &bundle.images {
            match &image.error {
                Some(e) => println!("  {} -> {} FAILED: {e}", image.source, image.target),
                None => println!("  {} -> {} ({})", image.source, image.target, image.action),
            }
        }
        if let Some(c) = &bundle.chart_upload {
            println!("  chart {} -> {} ({})", c.chart, c.location, c.action);
        }
        if let Some(e) = &bundle.chart_error {
            println!("  chart {} FAILED: {e}", bundle.chart);
        }
    }
    println!(
        "{verb}: images {} pushed, {} skipped, {} overwritten, {} failed; charts {} uploaded, {} skipped, {} failed; blobs {} uploaded ({} bytes), {} mounted, {} skipped",
        summary.images_pushed,
        summary.images_skipped,
        summary.images_overwritten,
        summary.images_failed,
        summary.charts_uploaded,
        summary.charts_skipped,
        summary.charts_failed,
        summary.blobs_uploaded,
        summary.bytes_uploaded,
        summary.blobs_mounted,
        summary.blobs_skipped,
    );
    let nothing_new =
        summary.images_pushed + summary.images_overwritten + summary.charts_uploaded == 0;
    let failed = summary.images_failed + summary.charts_failed;
    if nothing_new && failed == 0 && !summary.dry_run {
        println!("everything was already in place (all skipped)");
    }
}
