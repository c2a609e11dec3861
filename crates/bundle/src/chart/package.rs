//! `helm package`-compatible chart archives, and what charts-syncer changes in a chart before
//! it uploads it to an offline repository.

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;

use super::{Chart, chart_err};
use crate::error::BundleError;
use crate::write::deterministic_header;

impl Chart {
    /// Packages the chart as `helm package` lays it out: a gzip tar whose entries sit under
    /// `<name>/`, `Chart.yaml` first, then `values.yaml`, then the rest by path. Output is
    /// deterministic (fixed mtime, uid/gid 0, mode 0644), so the same chart gives the same
    /// bytes.
    ///
    /// ```
    /// # let fixtures = kantup_test_support::relok8s_fixtures();
    /// use kantup_bundle::chart::Chart;
    /// let chart = Chart::load_dir(fixtures.join("testchart"))?;
    /// let tgz = chart.package()?;
    /// assert_eq!(Chart::load_tgz_bytes(&chart.archive_name(), &tgz)?.files, chart.files);
    /// # Ok::<(), kantup_bundle::BundleError>(())
    /// ```
    pub fn package(&self) -> Result<Vec<u8>, BundleError> {
        let name = self.name();
        let gz = GzEncoder::new(Vec::new(), GzLevel::default());
        let mut tar = tar::Builder::new(gz);
        let mut order: Vec<&String> = self.files.keys().collect();
        let rank = |p: &str| match p {
            "Chart.yaml" => 0,
            "values.yaml" => 1,
            _ => 2,
        };
        order.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
        let err = |e: std::io::Error| chart_err(name, format!("packaging: {e}"));
        for path in order {
            let data = &self.files[path];
            let mut header = deterministic_header(data.len() as u64, 0o644);
            tar.append_data(&mut header, format!("{name}/{path}"), data.as_slice())
                .map_err(err)?;
        }
        let gz = tar.into_inner().map_err(err)?;
        gz.finish().map_err(err)
    }

    /// What charts-syncer does before uploading a chart to an offline repository: drops
    /// `Chart.lock` and blanks each dependency's `repository` (conditions, aliases and tags
    /// stay), since the subcharts travel inside the chart and helm must not fetch them.
    pub fn detach_dependencies(&mut self) -> Result<(), BundleError> {
        self.files.remove("Chart.lock");
        let label = self.name().to_string();
        let raw = self
            .files
            .get("Chart.yaml")
            .ok_or_else(|| chart_err(&label, "missing Chart.yaml"))?;
        let mut doc: serde_yaml::Value = serde_yaml::from_slice(raw)
            .map_err(|e| chart_err(&label, format!("Chart.yaml: {e}")))?;
        let mut changed = false;
        if let Some(deps) = doc
            .get_mut("dependencies")
            .and_then(|d| d.as_sequence_mut())
        {
            for dep in deps {
                if let Some(map) = dep.as_mapping_mut()
                    && map
                        .get("repository")
                        .is_some_and(|r| r.as_str() != Some(""))
                {
                    map.insert("repository".into(), "".into());
                    changed = true;
                }
            }
        }
        if changed {
            let text = serde_yaml::to_string(&doc)
                .map_err(|e| chart_err(&label, format!("Chart.yaml: {e}")))?;
            self.files.insert("Chart.yaml".into(), text.into_bytes());
        }
        for dep in &mut self.metadata.dependencies {
            if dep.repository.is_some() {
                dep.repository = Some(String::new());
            }
        }
        Ok(())
    }
}

/// Packages `chart` as `helm package` does; the same as [`Chart::package`].
///
/// ```no_run
/// let chart = kantup_bundle::chart::Chart::load_dir("mychart").unwrap();
/// std::fs::write(chart.archive_name(), kantup_bundle::chart::package(&chart).unwrap()).unwrap();
/// ```
pub fn package(chart: &Chart) -> Result<Vec<u8>, BundleError> {
    chart.package()
}
