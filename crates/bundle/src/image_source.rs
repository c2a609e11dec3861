//! Where a list of the images a chart needs came from: its own module so that the error type
//! can name it without depending on discovery.

use serde::Serialize;

/// Where an image list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// relok8s hints (`hints.yaml`).
    Hints,
    /// The chart's own relok8s hints file (`.relok8s-images.yaml`).
    ChartHints,
    /// `Images.lock`.
    ImagesLock,
    /// `Chart.yaml` annotations.
    Annotations,
    /// The manifests of the chart rendered with its default values.
    RenderedManifests,
    /// Nothing lists the chart's images.
    None,
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageSource::Hints => "hints.yaml",
            ImageSource::ChartHints => "the chart's .relok8s-images.yaml",
            ImageSource::ImagesLock => "Images.lock",
            ImageSource::Annotations => "Chart.yaml annotations",
            ImageSource::RenderedManifests => "rendered manifests (default values)",
            ImageSource::None => "none",
        })
    }
}
