//! A file given where a bundle or a chart archive may stand (`kantup upgrade FILE`,
//! `kantup crds apply FILE`): one rule for telling them apart, so every command reads the
//! same file the same way.

use std::path::Path;

use crate::OpenOptions;
use crate::chart::Chart;
use crate::{Bundle, BundleError};

/// What a file named as a chart source holds.
pub enum ChartFile {
    /// A bundle, relok8s or wrapped, compressed or not (see [`Bundle::is_bundle`]).
    Bundle(Bundle),
    /// A chart archive, as `helm package` writes it.
    Archive(Box<Chart>),
}

impl ChartFile {
    /// Opens `path`: a bundle when its tar is laid out as one, else a chart archive.
    ///
    /// A file that is not a tar at all (nor a gzip or zstd one) gets the bundle reader's error,
    /// which names what is wrong (truncated, corrupt, too large once expanded); a tar that is
    /// not a bundle gets the chart reader's.
    ///
    /// ```no_run
    /// use kantup_bundle::chart_file::ChartFile;
    ///
    /// match ChartFile::open("kant.bundle.tar")? {
    ///     ChartFile::Bundle(bundle) => println!("bundle of {}", bundle.chart()?.name()),
    ///     ChartFile::Archive(chart) => println!("chart archive of {}", chart.name()),
    /// }
    /// # Ok::<(), kantup_bundle::BundleError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<ChartFile, BundleError> {
        Self::open_with(path, &OpenOptions::from_env()?)
    }

    /// [`ChartFile::open`] with explicit options for opening a bundle.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &OpenOptions,
    ) -> Result<ChartFile, BundleError> {
        let path = path.as_ref();
        // Every chart archive is also a tar the bundle reader opens, so its failing means
        // the file is neither.
        let bundle = Bundle::open_with(path, options)?;
        if bundle.is_bundle() {
            Ok(ChartFile::Bundle(bundle))
        } else {
            Chart::load_tgz(path).map(|chart| ChartFile::Archive(Box::new(chart)))
        }
    }
}
