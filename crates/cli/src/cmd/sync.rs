//! `kantup sync --config load-image.yaml`: binds the flags to [`kantup::ops::sync`], prints
//! the report and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use kantup::ops::sync::{SyncOptions, SyncReport, sync};
use kantup_registry::ReferrerListing;

use crate::cmd::net_args::TlsArgs;
use crate::output::{Ctx, Exit, ExitError, OutputFormat};
use crate::progress::BarProgress;

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
    /// Where half-done blob uploads are remembered, so an interrupted sync continues where
    /// the registry stands (default: $XDG_CACHE_HOME/kantup/uploads).
    #[arg(long, value_name = "DIR", env = "KANTUP_UPLOAD_CACHE")]
    pub upload_cache: Option<PathBuf>,
    /// A helm binary to render a chart with its default values when neither hints,
    /// `Images.lock` nor `Chart.yaml` annotations list its images (the last resort of image
    /// discovery: every `image:` of the manifests).
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
    #[command(flatten)]
    pub signature: crate::cmd::bundle::SignatureArgs,
    #[command(flatten)]
    pub images: crate::cmd::bundle::MissingImagesArgs,
    #[command(flatten)]
    pub image_keys: crate::cmd::image_key_args::ImageKeyArgs,
}

impl SyncArgs {
    fn options(&self, open: &kantup_bundle::OpenOptions) -> SyncOptions {
        SyncOptions {
            open: open.clone(),
            config: self.config.clone(),
            dry_run: self.dry_run,
            to_oci_layout: self.to_oci_layout.clone(),
            http: self.tls.http_options(),
            no_overwrite: self.no_overwrite,
            force: self.force,
            concurrency: self.concurrency,
            upload_cache: self.upload_cache.clone(),
            verify_key: self.signature.verify_key.clone(),
            signature: self.signature.signature.clone(),
            helm: self.helm.clone(),
            allow_missing_images: self.images.allow_missing_images,
            image_keys: self.image_keys.image_keys.clone(),
        }
    }
}

pub async fn run(ctx: &Ctx, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let summary = sync(&args.options(&ctx.open), Arc::new(BarProgress::new(ctx))).await?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&summary)?;
    } else if !ctx.quiet {
        print_table(&summary);
    }
    if summary.failed() > 0 {
        return Err(ExitError::new(
            Exit::Failure,
            // Attachments are named only when some failed: most bundles carry none.
            if summary.attachments_failed > 0 {
                format!(
                    "sync failed: {} image(s), {} attachment(s) and {} chart(s) failed",
                    summary.images_failed, summary.attachments_failed, summary.charts_failed
                )
            } else {
                format!(
                    "sync failed: {} image(s) and {} chart(s) failed",
                    summary.images_failed, summary.charts_failed
                )
            },
        )
        .into());
    }
    Ok(Exit::Ok.code())
}

fn print_table(summary: &SyncReport) {
    let verb = if summary.dry_run { "plan" } else { "synced" };
    for bundle in &summary.bundles {
        println!("{} ({}):", bundle.chart, bundle.bundle.display());
        for image in &bundle.images {
            match &image.error {
                Some(e) => println!("  {} -> {} FAILED: {e}", image.source, image.target),
                None => println!("  {} -> {} ({})", image.source, image.target, image.action),
            }
        }
        for a in &bundle.attachments {
            let kind = serde_json::to_value(a.kind).unwrap_or_default();
            let kind = kind.as_str().unwrap_or_default();
            match &a.error {
                Some(e) => println!("    {kind} of {} -> {} FAILED: {e}", a.image, a.target),
                None => {
                    let listed = match a.referrers {
                        Some(ReferrerListing::ReferrersApi) => ", listed by the referrers API",
                        Some(ReferrerListing::FallbackIndexAdded) => {
                            ", added to the fallback index"
                        }
                        Some(ReferrerListing::FallbackIndexPresent) => ", in the fallback index",
                        None => "",
                    };
                    println!(
                        "    {kind} of {} -> {} ({}{listed})",
                        a.image, a.target, a.action
                    );
                }
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
        "{verb}: images {} pushed, {} skipped, {} overwritten, {} failed; charts {} uploaded, {} skipped, {} failed; blobs {} uploaded ({}), {} mounted, {} skipped",
        summary.images_pushed,
        summary.images_skipped,
        summary.images_overwritten,
        summary.images_failed,
        summary.charts_uploaded,
        summary.charts_skipped,
        summary.charts_failed,
        summary.blobs.uploaded,
        crate::output::human_bytes(summary.blobs.bytes_uploaded),
        summary.blobs.mounted,
        summary.blobs.skipped,
    );
    let attachments = summary.attachments_pushed
        + summary.attachments_skipped
        + summary.attachments_overwritten
        + summary.attachments_failed;
    if attachments > 0 {
        println!(
            "{verb}: attachments (signatures, attestations, SBOMs, referrers) {} pushed, {} skipped, {} overwritten, {} failed; fallback indexes {} written",
            summary.attachments_pushed,
            summary.attachments_skipped,
            summary.attachments_overwritten,
            summary.attachments_failed,
            summary.fallback_indexes_written,
        );
    }
    if summary.blobs.resumed > 0 {
        println!(
            "resumed: {} blob upload(s) continued where an interrupted run left them ({} not sent again)",
            summary.blobs.resumed,
            crate::output::human_bytes(summary.blobs.bytes_resumed)
        );
    }
    if summary.nothing_new() && summary.failed() == 0 && !summary.dry_run {
        println!("everything was already in place (all skipped)");
    }
}
