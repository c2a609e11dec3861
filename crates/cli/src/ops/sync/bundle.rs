//! One bundle's sync: the chart prepared (values relocated in memory, packaged), the images
//! pushed to the registry or written into the OCI layout, then the chart uploaded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kantup_bundle::Bundle;
use kantup_bundle::archive::ImageArchive;
use kantup_bundle::archive::oci_layout::{self, LayoutAction};
use kantup_bundle::chart::Chart;
use kantup_registry::bundle_source::{plan_archive, plan_indexes};
use kantup_registry::chart_target::{ChartAction, ChartResult, ChartTarget, PackagedChart};
use kantup_registry::{
    AttachmentResult, ImageAction, ImagePush, ImageResult, PushEvent, PushOptions, RegistryClient,
    RelocationRule, plan_attachments, push_attachments, push_images,
};

use super::attachments;
use super::differential::{require_base_blobs, require_base_in_layout};
use super::targets::ImageTarget;
use super::{BundleReport, SyncError, SyncOptions, SyncReport};
use crate::ops::progress::Progress;

/// One bundle's sync: what it needs from the whole run.
pub(super) struct BundleSync<'a> {
    pub(super) options: &'a SyncOptions,
    pub(super) path: &'a Path,
    pub(super) image_target: &'a ImageTarget,
    pub(super) chart_target: Option<&'a ChartTarget>,
    pub(super) push_options: &'a PushOptions,
    pub(super) progress: &'a Arc<dyn Progress>,
}

impl BundleSync<'_> {
    pub(super) async fn run(&self, summary: &mut SyncReport) -> Result<BundleReport, SyncError> {
        let bundle = Bundle::open_with(self.path, &self.options.open)?;
        let mut chart = bundle.chart()?;
        let chart_name = format!("{}-{}", chart.metadata.name, chart.metadata.version);
        let mut out = BundleReport {
            bundle: self.path.to_path_buf(),
            chart: chart_name.clone(),
            values: None,
            images: Vec::new(),
            attachments: Vec::new(),
            chart_upload: None,
            chart_error: None,
        };
        let archive = bundle.image_archive()?.map(Arc::new);

        // The chart is prepared before any image moves, so a bad chart fails the bundle early.
        let packaged = match self.chart_target {
            None => None,
            Some(_) => {
                if let ImageTarget::Registry(_, rule) = self.image_target {
                    out.values = Some(relocate_values(
                        &bundle,
                        &mut chart,
                        rule,
                        archive.as_deref(),
                        self.options.helm.as_deref(),
                    )?);
                }
                chart.detach_dependencies()?;
                Some(PackagedChart::new(&chart)?)
            }
        };

        // 1. Images.
        if let Some(archive) = &archive {
            match self.image_target {
                ImageTarget::Registry(client, rule) => {
                    (out.images, out.attachments) = self
                        .to_registry(client, rule, &bundle, archive, &chart_name, summary)
                        .await?;
                }
                ImageTarget::Layout(dir) => {
                    out.images = self.to_layout(dir, archive, &chart_name, summary)?;
                }
            }
        }

        // 2. Chart.
        if let (Some(chart_target), Some(packaged)) = (self.chart_target, packaged) {
            self.upload_chart(chart_target, &packaged, &mut out, summary)
                .await;
        }
        Ok(out)
    }

    /// Pushes the images to the registry (plans them, with `dry_run`). Index manifests of
    /// multi-platform images go after their platform manifests, and the images' attachments
    /// (signatures, attestations, SBOMs, referrers) after them all, into the repositories
    /// their images went to.
    async fn to_registry(
        &self,
        client: &RegistryClient,
        rule: &RelocationRule,
        bundle: &Bundle,
        archive: &Arc<ImageArchive>,
        chart_name: &str,
        summary: &mut SyncReport,
    ) -> Result<(Vec<ImageResult>, Vec<AttachmentResult>), SyncError> {
        let dry_run = self.options.dry_run;
        let pushes = plan_archive(archive.clone(), rule)?;
        let index_pushes = plan_indexes(archive.clone(), rule);
        let attachment_plan = attachments::plan(
            archive,
            &attachments::Destinations::of(pushes.iter().chain(&index_pushes)),
        );
        if let Some(record) = bundle.base()? {
            // The attachments' blobs too: the bundle leaves out every blob whose digest the base
            // holds as an image layer, whichever manifest names it.
            let all: Vec<ImagePush> = pushes
                .iter()
                .cloned()
                .chain(attachment_plan.iter().map(|a| a.manifest_push()))
                .collect();
            require_base_blobs(client, rule, &all, &record, self.path, dry_run).await?;
        }
        if dry_run {
            let all: Vec<ImagePush> = pushes.iter().chain(&index_pushes).cloned().collect();
            let actions = kantup_registry::plan(client, &all).await?;
            let mut images = Vec::new();
            for (push, action) in all.iter().zip(actions) {
                summary.count_image(&action, false);
                images.push(ImageResult {
                    source: push.source_name.clone(),
                    target: push.target_name(client.host()),
                    digest: push.manifest_digest,
                    action,
                    error: None,
                });
            }
            let planned = plan_attachments(client, &attachment_plan).await?;
            for attachment in &planned {
                summary.count_attachment(attachment);
            }
            return Ok((images, planned));
        }
        let mut report = self.push(client, &pushes, chart_name).await;
        if !index_pushes.is_empty() && report.images.iter().all(|i| i.error.is_none()) {
            let indexes = push_images(client, &index_pushes, self.push_options, None).await;
            report.images.extend(indexes.images);
        }
        summary.blobs += report.blobs;
        for image in &report.images {
            summary.count_image(&image.action, image.error.is_some());
        }

        let outcomes: Vec<_> = pushes
            .iter()
            .chain(&index_pushes)
            .enumerate()
            .map(|(i, push)| (push, report.images.get(i)))
            .collect();
        let (to_push, mut attached) =
            attachments::split_by_image_outcome(attachment_plan, &outcomes, client.host());
        if !to_push.is_empty() {
            let pushed = push_attachments(client, &to_push, self.push_options, None).await;
            summary.blobs += pushed.blobs;
            summary.fallback_indexes_written += pushed.fallback_indexes_written;
            attached.extend(pushed.attachments);
        }
        for attachment in &attached {
            summary.count_attachment(attachment);
        }
        Ok((report.images, attached))
    }

    /// Writes the images into the OCI layout (plans them, with `dry_run`); what the layout
    /// already holds is reported `skip` and not written again.
    fn to_layout(
        &self,
        dir: &Path,
        archive: &ImageArchive,
        chart_name: &str,
        summary: &mut SyncReport,
    ) -> Result<Vec<ImageResult>, SyncError> {
        require_base_in_layout(dir, archive, self.path)?;
        if !archive.attachments().is_empty() {
            tracing::warn!(
                "{}: {} signature(s), attestation(s), SBOM(s) or referrer(s) are not written into the OCI layout {} (only a registry target gets them)",
                self.path.display(),
                archive.attachments().len(),
                dir.display()
            );
        }
        let all: Vec<_> = archive.images().iter().collect();
        let plan = oci_layout::plan_images(dir, &all)?;
        let mut results = Vec::new();
        let mut images = Vec::new();
        for (image, planned) in all.iter().zip(plan) {
            let action = match planned {
                LayoutAction::Present => ImageAction::Skip,
                LayoutAction::Add => ImageAction::Push,
                LayoutAction::Replace { previous } => ImageAction::Overwrite { previous },
            };
            if action != ImageAction::Skip {
                images.push(*image);
            }
            summary.count_image(&action, false);
            results.push(ImageResult {
                source: image.display_name(),
                target: format!("oci-layout:{}", dir.display()),
                digest: image.manifest_digest,
                action,
                error: None,
            });
        }
        if !self.options.dry_run && !images.is_empty() {
            let total: u64 = images.iter().map(|i| i.total_size()).sum();
            self.progress.start(&format!("{chart_name} images"), total);
            let written =
                oci_layout::write_images(dir, archive, &images, |n| self.progress.advance(n));
            self.progress.finish();
            let report = written?;
            summary.blobs.uploaded += report.blobs_written as u64;
            summary.blobs.skipped += report.blobs_present as u64;
            summary.blobs.bytes_uploaded += report.bytes_written;
        }
        Ok(results)
    }

    /// Uploads the chart (plans it, with `dry_run`), unless one of its images failed: a chart
    /// whose images are not all in place would deploy broken references.
    async fn upload_chart(
        &self,
        chart_target: &ChartTarget,
        packaged: &PackagedChart,
        out: &mut BundleReport,
        summary: &mut SyncReport,
    ) {
        let failed_images = out.images.iter().filter(|i| i.error.is_some()).count();
        if failed_images > 0 {
            summary.charts_failed += 1;
            out.chart_error = Some(format!(
                "not uploaded: {failed_images} of its image(s) failed"
            ));
            return;
        }
        let force = self.options.force;
        let result = if self.options.dry_run {
            chart_target
                .plan(packaged, force)
                .await
                .map(|action| ChartResult {
                    chart: out.chart.clone(),
                    location: chart_target.location(packaged),
                    digest: packaged.digest(),
                    action,
                })
        } else {
            chart_target.upload(packaged, force).await
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
    }

    /// Pushes the images, reporting the bytes of every distinct blob as progress.
    async fn push(
        &self,
        client: &RegistryClient,
        pushes: &[ImagePush],
        label: &str,
    ) -> kantup_registry::PushReport {
        let mut seen = std::collections::HashSet::new();
        let total: u64 = pushes
            .iter()
            .flat_map(|p| p.blobs.iter())
            .filter(|b| seen.insert(b.digest))
            .map(|b| b.size)
            .sum();
        self.progress.start(&format!("{label} images"), total);
        let progress = self.progress.clone();
        let observer: kantup_registry::Observer = Arc::new(move |event| {
            if let PushEvent::Bytes(n) = event {
                progress.advance(n);
            }
        });
        let report = push_images(client, pushes, self.push_options, Some(observer)).await;
        self.progress.finish();
        report
    }
}

/// Rewrites the chart's image values to the relocated names, in memory: through the bundle's
/// hints, or, without hints, wherever the values name an image the chart lists (`Images.lock`,
/// annotations, or the chart rendered by `helm`). Hints without a tag are pinned to the
/// digest of the bundle's image. Images no value names are warned about.
fn relocate_values(
    bundle: &Bundle,
    chart: &mut Chart,
    rule: &RelocationRule,
    archive: Option<&ImageArchive>,
    helm: Option<&Path>,
) -> Result<crate::ops::images::ValuesRelocation, SyncError> {
    let mut digests = HashMap::new();
    for image in archive.map(|a| a.images()).unwrap_or_default() {
        for reference in image.references.iter().filter_map(|r| r.reference()) {
            digests.insert(reference.clone(), image.manifest_digest);
        }
    }
    let relocation = crate::ops::images::relocate_values(bundle, chart, rule, &digests, helm)?;
    for image in &relocation.report.images {
        tracing::info!("values: {} -> {}", image.original, image.relocated);
    }
    for image in &relocation.unmapped {
        tracing::warn!(
            "{}: no value names {image}; it keeps its original registry",
            chart.name()
        );
    }
    Ok(relocation)
}
