//! What a bundle holds: its layout and compression, its chart, hints, the images the chart
//! needs (and where that list came from), the images it carries, and its base when it is
//! differential.

use std::path::{Path, PathBuf};

use kantup_bundle::Bundle;
use kantup_bundle::archive::attachment_info::{ImageAttachments, by_image};
use kantup_bundle::archive::{Compression, Image};
use serde::Serialize;

use super::BundleOpError;

/// Everything [`inspect`] found.
#[derive(Debug, Serialize)]
pub struct BundleInspection {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Its outer compression.
    pub compression: Compression,
    /// relok8s bundle or wrapped chart.
    pub layout: kantup_bundle::Layout,
    /// Number of tar members.
    pub members: usize,
    /// The chart.
    pub chart: ChartSummary,
    /// The relok8s hints (empty when the bundle has none).
    pub hints: Vec<kantup_bundle::hints::ImagePattern>,
    /// The images the chart needs and where that list came from.
    pub chart_images: kantup_bundle::discovery::Discovery,
    /// The images the bundle carries.
    pub images: Vec<Image>,
    /// Signatures, attestations and SBOMs carried with the images, per image (platform
    /// manifest or index) that has any; read, not verified.
    pub attachments: Vec<ImageAttachments>,
    /// For a differential bundle: its base and the layers it leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<kantup_bundle::differential::BaseRecord>,
}

/// A chart as [`inspect`] shows it.
#[derive(Debug, Serialize)]
pub struct ChartSummary {
    /// The chart name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its `appVersion`.
    pub app_version: Option<String>,
    /// `v1` or `v2`.
    pub api_version: String,
    /// `<name> <version>` of each subchart.
    pub subcharts: Vec<String>,
    /// The paths of its CRD files.
    pub crds: Vec<String>,
}

/// Reads what `bundle` holds. `helm` (a helm binary) renders the chart to find its images
/// when neither hints, `Images.lock` nor `Chart.yaml` annotations list them.
pub fn inspect(
    bundle: &Path,
    open: &kantup_bundle::OpenOptions,
    helm: Option<&Path>,
) -> Result<BundleInspection, BundleOpError> {
    let opened = Bundle::open_with(bundle, open)?;
    let chart = opened.chart()?;
    let hints = opened.hints()?;
    let archive = opened.image_archive()?;
    let chart_images = crate::ops::images::discover(&opened, helm)?;
    Ok(BundleInspection {
        bundle: bundle.to_path_buf(),
        compression: opened.compression(),
        layout: opened.layout().clone(),
        chart_images,
        members: opened.members().len(),
        chart: ChartSummary {
            name: chart.name().to_string(),
            version: chart.metadata.version.to_string(),
            app_version: chart.metadata.app_version.clone(),
            api_version: chart.metadata.api_version.clone(),
            subcharts: chart
                .subcharts
                .iter()
                .map(|c| format!("{} {}", c.name(), c.metadata.version))
                .collect(),
            crds: chart
                .crds()
                .into_iter()
                .map(|(p, _)| p.to_string())
                .collect(),
        },
        hints,
        attachments: archive
            .as_ref()
            .map(by_image)
            .transpose()?
            .unwrap_or_default(),
        images: archive.map(|a| a.images().to_vec()).unwrap_or_default(),
        base: opened.base()?,
    })
}
