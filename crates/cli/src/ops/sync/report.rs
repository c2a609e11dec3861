//! What a sync did, bundle by bundle, with totals.

use std::path::PathBuf;

use kantup_registry::chart_target::ChartResult;
use kantup_registry::{AttachmentResult, ImageAction, ImageResult};
use serde::Serialize;

/// What happened to one bundle.
#[derive(Debug, Serialize)]
pub struct BundleReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// `<name>-<version>` of its chart.
    pub chart: String,
    /// How the chart's image values were relocated (hints, or found without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<crate::ops::images::ValuesRelocation>,
    /// Every image: pushed, skipped, overwritten or failed (planned, with `dry_run`).
    pub images: Vec<ImageResult>,
    /// Every signature, attestation, SBOM and referrer of its images, once per repository
    /// they went to: pushed, skipped, overwritten or failed (planned, with `dry_run`).
    pub attachments: Vec<AttachmentResult>,
    /// The chart upload, when there is a chart target and it did not fail.
    pub chart_upload: Option<ChartResult>,
    /// Why the chart was not uploaded.
    pub chart_error: Option<String>,
}

/// What a sync did (or, with `dry_run`, would do), with totals.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    /// Whether this is a plan.
    pub dry_run: bool,
    /// One entry per bundle, in path order.
    pub bundles: Vec<BundleReport>,
    /// Images pushed.
    pub images_pushed: u64,
    /// Images already in place.
    pub images_skipped: u64,
    /// Images whose tag pointed at another digest and now points at theirs.
    pub images_overwritten: u64,
    /// Images that failed.
    pub images_failed: u64,
    /// Attachments (signatures, attestations, SBOMs, referrers) pushed.
    pub attachments_pushed: u64,
    /// Attachments already in place.
    pub attachments_skipped: u64,
    /// Attachments whose cosign tag pointed at another manifest and now points at theirs.
    pub attachments_overwritten: u64,
    /// Attachments that failed (or whose image did not go in).
    pub attachments_failed: u64,
    /// Referrers fallback indexes (`sha256-<hex>`) written, each merged with what was there.
    pub fallback_indexes_written: u64,
    /// Charts uploaded.
    pub charts_uploaded: u64,
    /// Charts already in place.
    pub charts_skipped: u64,
    /// Charts not uploaded (an upload error, or one of their images failed).
    pub charts_failed: u64,
    /// How the blobs got there (an OCI layout target counts blobs written as uploaded).
    #[serde(flatten)]
    pub blobs: kantup_registry::BlobCounts,
}

impl SyncReport {
    /// Images, attachments and charts that failed.
    pub fn failed(&self) -> u64 {
        self.images_failed + self.attachments_failed + self.charts_failed
    }

    /// Whether nothing new was (or would be) pushed or uploaded.
    pub fn nothing_new(&self) -> bool {
        self.images_pushed
            + self.images_overwritten
            + self.attachments_pushed
            + self.attachments_overwritten
            + self.fallback_indexes_written
            + self.charts_uploaded
            == 0
    }
}

impl SyncReport {
    /// Counts one image's outcome.
    pub(super) fn count_image(&mut self, action: &ImageAction, failed: bool) {
        if failed {
            self.images_failed += 1;
            return;
        }
        match action {
            ImageAction::Push => self.images_pushed += 1,
            ImageAction::Skip => self.images_skipped += 1,
            ImageAction::Overwrite { .. } => self.images_overwritten += 1,
        }
    }

    /// Counts one attachment's outcome.
    pub(super) fn count_attachment(&mut self, attachment: &AttachmentResult) {
        if attachment.error.is_some() {
            self.attachments_failed += 1;
            return;
        }
        match attachment.action {
            ImageAction::Push => self.attachments_pushed += 1,
            ImageAction::Skip => self.attachments_skipped += 1,
            ImageAction::Overwrite { .. } => self.attachments_overwritten += 1,
        }
    }
}
