//! How a bundle is opened: the expansion limit of a compressed bundle, and how sizes are
//! written. A leaf module: the error messages in [`crate::error`] quote its defaults.

/// The environment variable that sets [`OpenOptions::max_expanded_size`] for
/// [`Bundle::open`](crate::Bundle::open) (`kantup --max-expanded-size` sets it too).
pub const MAX_EXPANDED_SIZE_ENV: &str = "KANTUP_MAX_EXPANDED_SIZE";

/// By default a gzip or zstd bundle may expand to this many times its compressed size...
pub const DEFAULT_EXPANSION_RATIO: u64 = 100;
/// ...and always to at least this much (1 GiB).
pub const MIN_DEFAULT_EXPANSION: u64 = 1 << 30;

/// How [`Bundle::open_with`](crate::Bundle::open_with) opens a bundle.
///
/// A gzip or zstd bundle is decompressed to a temporary file before it is read, so a small
/// file that expands enormously (a decompression bomb) could fill the disk. It is refused as
/// soon as it expands past a limit: [`max_expanded_size`](Self::max_expanded_size) when set,
/// else [`DEFAULT_EXPANSION_RATIO`] (100) times the compressed size but at least
/// [`MIN_DEFAULT_EXPANSION`] (1 GiB). Real bundles hold compressed image layers and expand
/// little; one that legitimately expands more needs a higher limit.
///
/// ```
/// use kantup_bundle::OpenOptions;
/// let options = OpenOptions { max_expanded_size: Some(OpenOptions::parse_size("8GiB").unwrap()) };
/// assert_eq!(options.expansion_limit(1 << 20), 8 << 30);
/// assert_eq!(OpenOptions::default().expansion_limit(1 << 20), 1 << 30);
/// assert_eq!(OpenOptions::default().expansion_limit(100 << 20), 10_000 << 20);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// The most a gzip or zstd bundle may expand to, in bytes; `None` for the default limit.
    pub max_expanded_size: Option<u64>,
}

impl OpenOptions {
    /// A size as people write it: bytes (`1073741824`) or with a unit (`8GiB`, `500 MB`).
    pub fn parse_size(text: &str) -> Result<u64, SizeParseError> {
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|size| size.as_u64())
            .map_err(|reason| SizeParseError { reason })
    }

    /// The most a bundle of `compressed` bytes may expand to.
    pub fn expansion_limit(&self, compressed: u64) -> u64 {
        self.max_expanded_size.unwrap_or_else(|| {
            compressed
                .saturating_mul(DEFAULT_EXPANSION_RATIO)
                .max(MIN_DEFAULT_EXPANSION)
        })
    }
}

/// Why a text is not a size ([`OpenOptions::parse_size`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a size ({reason}); write e.g. 8GiB or 500MB")]
pub struct SizeParseError {
    /// What the size parser said.
    pub reason: String,
}
