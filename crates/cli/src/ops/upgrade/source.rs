//! Where the chart of an upgrade comes from: a bundle (verified, its chart written to a scratch
//! directory for helm), a chart directory or a chart archive (loaded, and so validated, then
//! handed to helm as it is).

use std::path::{Path, PathBuf};

use kantup_bundle::chart::Chart;
use kantup_bundle::{Bundle, VerifyOptions};

use super::UpgradeError;
use crate::ops::progress::Progress;

/// The chart an upgrade installs, and the path helm gets.
pub(crate) struct ResolvedChart {
    pub chart: Chart,
    /// A chart directory or `.tgz` for `helm upgrade`.
    pub helm_path: PathBuf,
    /// What the source was, for the plan.
    pub kind: &'static str,
    /// Keeps a bundle's chart directory alive until helm has run.
    pub _scratch: Option<tempfile::TempDir>,
}

/// Opens and checks `path`: a bundle is verified (unless `skip_verify`) and its chart written
/// to a scratch directory; a chart directory or archive is loaded as it is.
pub(crate) fn resolve_path(
    path: &Path,
    skip_verify: bool,
    progress: &dyn Progress,
) -> Result<ResolvedChart, UpgradeError> {
    if path.is_dir() {
        let chart = Chart::load_dir(path)?;
        return Ok(ResolvedChart {
            chart,
            helm_path: path.to_path_buf(),
            kind: "chart directory",
            _scratch: None,
        });
    }
    if !path.is_file() {
        return Err(UpgradeError::NoSource(path.to_path_buf()));
    }
    // A chart archive is a gzip tar whose top directory holds Chart.yaml; a bundle holds
    // original-chart/. Try the bundle reading first: it detects compression by magic bytes.
    match Bundle::open(path) {
        Ok(bundle) if is_bundle(&bundle) => {
            if !skip_verify {
                progress.start("verifying bundle", bundle.tar_size());
                let verified =
                    bundle.verify(VerifyOptions::default(), &mut |n| progress.advance(n));
                progress.finish();
                verified.map_err(|source| UpgradeError::Verify {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            let chart = bundle.chart()?;
            let scratch = tempfile::tempdir().map_err(|source| UpgradeError::Io {
                action: "create a scratch directory",
                path: std::env::temp_dir(),
                source,
            })?;
            let dir = scratch.path().join(chart.name());
            chart.write_dir(&dir)?;
            Ok(ResolvedChart {
                chart,
                helm_path: dir,
                kind: "bundle",
                _scratch: Some(scratch),
            })
        }
        _ => {
            let chart = Chart::load_tgz(path).map_err(|source| UpgradeError::NotAChart {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(ResolvedChart {
                chart,
                helm_path: path.to_path_buf(),
                kind: "chart archive",
                _scratch: None,
            })
        }
    }
}

fn is_bundle(bundle: &Bundle) -> bool {
    bundle.has_member(kantup_bundle::HINTS_MEMBER)
        || bundle.has_member("images.tar")
        || bundle
            .members()
            .iter()
            .any(|m| m.name.starts_with(kantup_bundle::CHART_DIR))
}
