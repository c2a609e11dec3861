//! `helm package`-compatible chart archives.

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;

use super::Chart;
use crate::error::BundleError;
use crate::write::deterministic_header;

/// Packages a chart as `helm package` lays it out: a gzip tar whose entries sit under
/// `<name>/`, `Chart.yaml` first, then `values.yaml`, then the rest by path. Output is
/// deterministic (fixed mtime, uid/gid 0, mode 0644), so the same chart gives the same bytes.
///
/// ```no_run
/// let chart = kantup_bundle::chart::Chart::load_dir("mychart").unwrap();
/// std::fs::write(chart.archive_name(), kantup_bundle::chart::package(&chart).unwrap()).unwrap();
/// ```
pub fn package(chart: &Chart) -> Result<Vec<u8>, BundleError> {
    let name = chart.name();
    let gz = GzEncoder::new(Vec::new(), GzLevel::default());
    let mut tar = tar::Builder::new(gz);
    let mut order: Vec<&String> = chart.files.keys().collect();
    let rank = |p: &str| match p {
        "Chart.yaml" => 0,
        "values.yaml" => 1,
        _ => 2,
    };
    order.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let err = |e: std::io::Error| BundleError::Chart {
        path: name.to_string(),
        reason: format!("packaging: {e}"),
    };
    for path in order {
        let data = &chart.files[path];
        let mut header = deterministic_header(data.len() as u64, 0o644);
        tar.append_data(&mut header, format!("{name}/{path}"), data.as_slice())
            .map_err(err)?;
    }
    let gz = tar.into_inner().map_err(err)?;
    gz.finish().map_err(err)
}
