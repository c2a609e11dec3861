//! A chart packaged for upload: the archive built once, its digest and its metadata.

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::chart::Chart;

use kantup_bundle::chart::ChartMetadata;

use crate::chart_index::chart_metadata;
use crate::error::{RegistryError, Result};

/// A packaged chart (`<name>-<version>.tgz` bytes) and its `Chart.yaml`, made from a
/// [`Chart`] in memory: the archive is built once and never read back.
#[derive(Debug, Clone)]
pub struct PackagedChart {
    /// The chart name.
    pub name: String,
    /// The chart version.
    pub version: String,
    /// Chart.yaml as JSON (the OCI config blob).
    pub metadata: serde_json::Value,
    /// The archive.
    pub tgz: Bytes,
    pub(super) digest: Digest,
    /// What an `index.yaml` entry of it holds.
    pub(super) index_metadata: ChartMetadata<String>,
}

impl PackagedChart {
    /// Packages `chart` ([`Chart::package`]).
    ///
    /// ```
    /// # let fixtures = kantup_test_support::relok8s_fixtures();
    /// use kantup_registry::chart_target::PackagedChart;
    /// let chart = kantup_bundle::chart::Chart::load(fixtures.join("testchart"))?;
    /// let packaged = PackagedChart::new(&chart)?;
    /// assert_eq!(packaged.file_name(), "testchart-0.1.0.tgz");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(chart: &Chart) -> Result<Self> {
        let tgz = chart.package().map_err(invalid_chart)?;
        Self::of(chart, Bytes::from(tgz))
    }

    /// A chart archive made elsewhere, read (and checked) as a [`Chart`].
    pub fn from_tgz(tgz: impl Into<Bytes>) -> Result<Self> {
        let tgz = tgz.into();
        let chart = Chart::load_tgz_bytes("chart package", &tgz).map_err(invalid_chart)?;
        Self::of(&chart, tgz)
    }

    fn of(chart: &Chart, tgz: Bytes) -> Result<Self> {
        let bad = |reason: String| {
            RegistryError::Invalid(format!("chart {}: Chart.yaml: {reason}", chart.name()))
        };
        let raw = chart
            .files
            .get("Chart.yaml")
            .ok_or_else(|| bad("missing".into()))?;
        let yaml: serde_yaml::Value =
            serde_yaml::from_slice(raw).map_err(|e| bad(e.to_string()))?;
        let metadata = serde_json::to_value(&yaml).map_err(|e| bad(e.to_string()))?;
        let index_metadata = chart_metadata(chart);
        Ok(Self {
            name: chart.name().to_owned(),
            version: chart.version().to_string(),
            metadata,
            digest: Digest::of(&tgz),
            tgz,
            index_metadata,
        })
    }

    /// `<name>-<version>.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }

    /// The sha256 digest of the archive.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

fn invalid_chart(error: kantup_bundle::BundleError) -> RegistryError {
    RegistryError::Invalid(error.to_string())
}
