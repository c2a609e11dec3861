//! `values backup`: what `helm get values [-a] -o yaml` prints, written safely.

use std::path::Path;

use kantup_helm_values::strvals::HelmVersion;
use serde_json::Value;

use crate::coalesce::coalesce_values;
use crate::error::{Error, Result};
use crate::release::Release;

/// The values of `release` as `helm get values -o yaml` prints them: the user-supplied values
/// (`config`; `null` when there are none, as Helm prints), or with `all` the chart defaults
/// coalesced with them.
///
/// ```
/// use kantup_k8s_apply::release::Release;
/// let release: Release = serde_json::from_value(serde_json::json!({
///     "name": "demo", "version": 1,
///     "chart": {"metadata": {"name": "demo", "version": "1.0.0"}, "values": {"replicas": 1, "tag": "a"}},
///     "config": {"tag": "b"}})).unwrap();
/// assert_eq!(kantup_k8s_apply::values_yaml(&release, false).unwrap(), "tag: b\n");
/// assert_eq!(kantup_k8s_apply::values_yaml(&release, true).unwrap(), "tag: b\nreplicas: 1\n");
/// ```
pub fn values_yaml(release: &Release, all: bool) -> Result<String> {
    let values = release_values(release, all);
    serde_yaml::to_string(&values).map_err(|source| Error::ValuesYaml {
        release: release.name.clone(),
        source,
    })
}

/// The values as JSON (see [`values_yaml`]).
pub fn release_values(release: &Release, all: bool) -> Value {
    if all {
        let defaults = release.chart.as_ref().and_then(|c| c.values.as_ref());
        // Only Helm 4 writes `apply_method`; its presence tells which Helm wrote the record.
        let helm = if release.apply_method.is_some() {
            HelmVersion::V4
        } else {
            HelmVersion::V3
        };
        Value::Object(coalesce_values(defaults, release.config.as_ref(), helm))
    } else {
        release
            .config
            .clone()
            .map(Value::Object)
            .unwrap_or(Value::Null)
    }
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the same
/// directory, fsync, rename over `path`, then fsync the directory. A crash leaves either the
/// old file or the new one, never a partial file.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    kantup_bundle::atomic::write_with(path, bytes, kantup_bundle::atomic::Access::Private)
        .map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_mode_0600_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bak.yaml");
        std::fs::write(&path, "old: true\n").unwrap();
        write_private_file(&path, b"new: true\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new: true\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary file left behind: {leftovers:?}"
        );
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/bak.yaml");
        let err = write_private_file(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("bak.yaml"), "{err}");
    }
}
