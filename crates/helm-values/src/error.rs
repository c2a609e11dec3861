//! Typed errors of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while computing, reading, writing or relocating values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--set`-family expression could not be parsed; the message is Helm's.
    #[error("failed parsing {flag} data {expr:?}: {source}")]
    Strvals {
        /// Which flag (`--set`, `--set-string`, ...).
        flag: &'static str,
        /// The whole expression as given.
        expr: String,
        /// What Helm would say, quoting the offending part.
        #[source]
        source: crate::strvals::SetError,
    },
    /// A values document is not valid YAML, or is not a map, as Helm reads it.
    #[error("failed to parse {origin}: {message}")]
    Yaml {
        /// The file (or other origin) of the document.
        origin: String,
        /// What is wrong, with the line when known.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A chart could not be read (not a chart, unsafe paths, too large, ...); names the chart
    /// and the file.
    #[error(transparent)]
    ChartFiles(#[from] kantup_bundle::BundleError),
    /// A chart is malformed (missing Chart.yaml, bad dependency, ...).
    #[error("chart {chart}: {message}")]
    Chart {
        /// Chart directory, archive or name.
        chart: String,
        /// What is wrong.
        message: String,
    },
    /// Coalescing failed as it does in Helm (e.g. a subchart key holding a non-map).
    #[error("{0}")]
    Coalesce(String),
    /// Relocating image references failed.
    #[error("relocation: {0}")]
    Relocate(String),
    /// A chart's dependencies could not be processed for its values (which subcharts are
    /// enabled).
    #[error("chart {chart}: {source}")]
    Subcharts {
        /// The chart name.
        chart: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// A release's values could not be rendered as YAML.
    #[error("cannot render values of release {release} as YAML: {source}")]
    ReleaseYaml {
        /// The release name.
        release: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
