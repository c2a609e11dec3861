//! Building an index like `helm repo index`: adding packaged charts (their `Chart.yaml` and
//! digest), indexing a directory, merging indexes; and the file helpers that go with it.

use std::path::Path;

use kantup_bundle::Digest;
use kantup_bundle::chart::{Chart, ChartMetadata};

use super::{ChartVersion, IndexError, IndexFile, now_rfc3339};

impl IndexFile {
    /// Adds a version (helm's `MustAdd`): fills a missing chart `apiVersion` with `v1`, sets
    /// `urls` to `filename` (joined onto `base_url` when given), `digest` (the archive's, written
    /// as bare hex like helm does) and `created` now.
    pub fn add(
        &mut self,
        mut metadata: ChartMetadata<String>,
        filename: &str,
        base_url: Option<&str>,
        digest: &Digest,
    ) {
        if metadata.api_version.is_empty() {
            metadata.api_version = "v1".to_owned();
        }
        let url = match base_url.filter(|base| !base.is_empty()) {
            Some(base) => {
                let file = filename.rsplit('/').next().unwrap_or(filename);
                join_url(base, file)
            }
            None => filename.to_owned(),
        };
        let version = ChartVersion {
            metadata,
            urls: vec![url],
            created: Some(now_rfc3339()),
            removed: false,
            digest: Some(digest.hex()),
        };
        self.entries
            .entry(version.metadata.name.clone())
            .or_default()
            .push(version);
    }

    /// Indexes a directory like `helm repo index DIR [--url URL]`: every `*.tgz` in `dir` and
    /// one level below; archives that are not charts are skipped; entries sorted.
    pub fn index_directory(dir: &Path, base_url: Option<&str>) -> Result<Self, IndexError> {
        let mut index = Self::new();
        let io = |source| IndexError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut top = Vec::new();
        let mut nested = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            if path.is_dir() {
                let Ok(children) = std::fs::read_dir(&path) else {
                    continue;
                };
                for child in children.flatten() {
                    let child = child.path();
                    if is_tgz(&child) {
                        nested.push(child);
                    }
                }
            } else if is_tgz(&path) {
                top.push(path);
            }
        }
        top.sort();
        nested.sort();
        for archive in top.into_iter().chain(nested) {
            let relative = archive.strip_prefix(dir).unwrap_or(&archive);
            let parent = relative
                .parent()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let file = relative
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent_url = match (base_url.filter(|b| !b.is_empty()), parent.is_empty()) {
                (Some(base), true) => Some(base.to_owned()),
                (Some(base), false) => Some(join_url(base, &parent)),
                (None, true) => None,
                (None, false) => Some(parent),
            };
            let metadata = match read_chart_metadata(&archive) {
                Ok(metadata) => metadata,
                Err(error) => {
                    // helm: "Assume this is not a chart."
                    tracing::debug!("skipping {}: {error}", archive.display());
                    continue;
                }
            };
            let digest = sha256_file(&archive)?;
            index.add(metadata, &file, parent_url.as_deref(), &digest);
        }
        index.sort_entries();
        Ok(index)
    }

    /// Merges `other` into this index like helm's `IndexFile.Merge`: versions this index already
    /// has (same name and version) are kept as they are; the others are added. Sorts entries.
    ///
    /// `helm repo index --merge OLD DIR` merges OLD into the index built from DIR, so the freshly
    /// indexed archives win over OLD's entries for the same name and version.
    pub fn merge(&mut self, other: &IndexFile) {
        for versions in other.entries.values() {
            for version in versions {
                if !self.has(&version.metadata.name, &version.metadata.version) {
                    self.entries
                        .entry(version.metadata.name.clone())
                        .or_default()
                        .push(version.clone());
                }
            }
        }
        self.sort_entries();
    }
}

fn is_tgz(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|ext| ext == "tgz")
}

/// Joins a path onto a URL the way helm's `urlutil.URLJoin` does for simple cases: one slash
/// between the parts, query and fragment of the base dropped into place after the path.
pub fn join_url(base: &str, path: &str) -> String {
    let (base_no_query, query) = match base.find(['?', '#']) {
        Some(at) => base.split_at(at),
        None => (base, ""),
    };
    let path = path.trim_start_matches("./");
    if base_no_query.is_empty() {
        return format!("{path}{query}");
    }
    format!(
        "{}/{}{query}",
        base_no_query.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The sha256 digest of a file's bytes (helm's `provenance.DigestFile`), streamed.
pub fn sha256_file(path: &Path) -> Result<Digest, IndexError> {
    let io = |source| IndexError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let (digest, _) = Digest::of_reader(file).map_err(io)?;
    Ok(digest)
}

/// Reads a packaged chart (through [`Chart`], the one chart reader, with its size and path
/// checks: a name and a semantic version, as helm checks before indexing) and returns the
/// metadata helm copies into an index entry.
pub fn read_chart_metadata(archive: &Path) -> Result<ChartMetadata<String>, IndexError> {
    let chart = Chart::load_tgz(archive).map_err(|source| IndexError::Chart {
        path: archive.to_owned(),
        source: Box::new(source),
    })?;
    Ok(chart_metadata(&chart))
}

/// The index metadata of a loaded chart: the chart model's `Chart.yaml`, its version as text.
pub fn chart_metadata(chart: &Chart) -> ChartMetadata<String> {
    chart
        .metadata
        .clone()
        .map_version(|version| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart_index::tests::{entry, index_of, order};

    #[test]
    fn merge_keeps_existing_and_adds_missing() {
        let mut ours = index_of(&["1.0.0", "1.1.0"]);
        ours.entries.get_mut("web").unwrap()[0].digest = Some("ours".into());
        let mut theirs = index_of(&["1.1.0", "0.9.0"]);
        for e in theirs.entries.get_mut("web").unwrap() {
            e.digest = Some("theirs".into());
        }
        let mut other_chart = entry("3.0.0");
        other_chart.metadata.name = "db".into();
        theirs.entries.insert("db".into(), vec![other_chart]);
        ours.merge(&theirs);
        assert_eq!(order(&ours), ["1.1.0", "1.0.0", "0.9.0"]);
        assert_eq!(
            ours.get("web", "1.1.0").unwrap().digest.as_deref(),
            Some("ours")
        );
        assert_eq!(
            ours.get("web", "0.9.0").unwrap().digest.as_deref(),
            Some("theirs")
        );
        assert!(ours.has("db", "3.0.0"));
    }

    #[test]
    fn join_url_table() {
        let cases = [
            ("", "a-1.0.0.tgz", "a-1.0.0.tgz"),
            ("https://h/charts", "a.tgz", "https://h/charts/a.tgz"),
            ("https://h/charts/", "a.tgz", "https://h/charts/a.tgz"),
            ("https://h/c?x=1", "a.tgz", "https://h/c/a.tgz?x=1"),
            ("sub", "a.tgz", "sub/a.tgz"),
        ];
        for (base, path, expected) in cases {
            assert_eq!(
                join_url(base, path),
                expected,
                "join_url({base:?}, {path:?})"
            );
        }
    }
}
