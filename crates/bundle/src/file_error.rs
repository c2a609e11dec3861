//! The one error for "doing X to this file failed": what was being done, the path, the cause.

use std::path::PathBuf;

/// An operation on a file or directory failed. The message names the operation and the path
/// (`read the signature /tmp/b.sig: No such file or directory`), and the `io::Error` stays
/// its source.
///
/// Every crate's error enum that reads or writes files carries this one type (as an `Io`
/// variant) instead of spelling the same three fields again.
///
/// ```
/// use kantup_bundle::FileError;
/// let error = FileError {
///     action: "read",
///     path: "values.yaml".into(),
///     source: std::io::Error::from(std::io::ErrorKind::NotFound),
/// };
/// assert_eq!(error.to_string(), "read values.yaml: entity not found");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct FileError {
    /// What was being done (`read`, `write`, `create a temporary file beside`, ...).
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}
