//! Value edits on a chart in memory: routing a values path into the subchart that owns it
//! (unpacking subchart archives on the way), editing the values file surgically, and reading
//! the chart again from its changed files.

use std::collections::BTreeMap;

use kantup_bundle::chart::{Chart as ChartFiles, SubchartPath};

use super::ValueEdit;
use crate::yaml::parse_values;
use crate::yaml_edit::set_scalar;
use crate::{Error, Result};

/// Edits in progress on a copy of a chart's files; the chart itself is not touched.
pub(super) struct Editor<'a> {
    /// The chart as read: routing follows its subcharts.
    top: &'a ChartFiles,
    /// Names the chart in errors (its directory, or its name).
    origin: &'a str,
    /// The chart's files with archives unpacked (paths from the chart root).
    files: BTreeMap<String, Vec<u8>>,
    /// Edited values files, by path.
    texts: BTreeMap<String, String>,
    /// Archives turned into directories: `(archive, directory)`, outermost first.
    unpacked: Vec<(String, String)>,
}

/// The outcome of an [`Editor`]: the chart read again from its changed files, and what
/// changed, for writing a chart directory back.
pub(super) struct Edited {
    pub chart: ChartFiles,
    /// `(archive, directory)` for each archive unpacked, outermost first.
    pub unpacked: Vec<(String, String)>,
    /// The values files written, by path from the chart root.
    pub written: Vec<String>,
}

impl<'a> Editor<'a> {
    pub fn new(chart: &'a ChartFiles, origin: &'a str) -> Self {
        Self {
            top: chart,
            origin,
            files: chart.files.clone(),
            texts: BTreeMap::new(),
            unpacked: Vec::new(),
        }
    }

    /// Routes every action (unpacking what it must), then edits every values file, each
    /// checked to parse as Helm reads it.
    pub fn apply(&mut self, actions: &[(Vec<String>, String)]) -> Result<Vec<ValueEdit>> {
        let routed = actions
            .iter()
            .map(|(path, value)| self.route(path).map(|(file, rest)| (file, rest, value)))
            .collect::<Result<Vec<_>>>()?;
        let mut edits = Vec::new();
        for (file, rest, value) in routed {
            let text = match (self.texts.get(&file), self.files.get(&file)) {
                (Some(text), _) => text.clone(),
                (None, Some(bytes)) => {
                    String::from_utf8(bytes.clone()).map_err(|_| Error::Chart {
                        chart: self.origin.to_string(),
                        message: format!("{file} is not UTF-8"),
                    })?
                }
                (None, None) => String::new(),
            };
            let shown = format!("{}/{file}", self.origin);
            let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
            let edited = set_scalar(&text, &rest_refs, value)
                .map_err(|e| Error::Relocate(format!("{shown}: {e}")))?;
            parse_values(&edited, &shown)?;
            self.texts.insert(file.clone(), edited);
            edits.push(ValueEdit {
                file: file.into(),
                path: rest.join("."),
                value: value.clone(),
            });
        }
        Ok(edits)
    }

    /// Reads the chart again from its changed files (with every check loading does).
    pub fn finish(self) -> Result<Edited> {
        let mut files = self.files;
        let written: Vec<String> = self.texts.keys().cloned().collect();
        for (path, text) in self.texts {
            files.insert(path, text.into_bytes());
        }
        Ok(Edited {
            chart: ChartFiles::from_files(self.origin, files)?,
            unpacked: self.unpacked,
            written,
        })
    }

    /// The values file that owns `path` (from the chart root) and the path inside it,
    /// descending into subcharts whose name or alias is the first segment.
    fn route(&mut self, path: &[String]) -> Result<(String, Vec<String>)> {
        let mut chart = self.top;
        let mut prefix = String::new();
        let mut rest = path.to_vec();
        while rest.len() > 1 {
            let Some(sub) = self.subchart(chart, &prefix, &rest[0])? else {
                break;
            };
            prefix = match &sub.path_in_parent {
                Some(SubchartPath::Archive(archive)) => {
                    self.unpack(&format!("{prefix}{archive}"), &prefix, sub)?
                }
                Some(SubchartPath::Directory(dir)) => format!("{prefix}{dir}/"),
                None => unreachable!("a subchart knows where it sits"),
            };
            chart = sub;
            rest.remove(0);
        }
        Ok((format!("{prefix}values.yaml"), rest))
    }

    /// The subchart of `chart` (at `prefix`) called `name`, or aliased `name`. Like Helm's
    /// loader, archives are identified by their `Chart.yaml`, not by their file name; a
    /// directory wins over an archive of the same chart, and two archives of it are an error.
    fn subchart(
        &self,
        chart: &'a ChartFiles,
        prefix: &str,
        name: &str,
    ) -> Result<Option<&'a ChartFiles>> {
        let mut wanted = name;
        for dependency in &chart.metadata.dependencies {
            if dependency.alias.as_deref() == Some(name) {
                wanted = &dependency.name;
            }
        }
        let named = |directory: bool| {
            chart.subcharts.iter().filter(move |sub| {
                sub.name() == wanted
                    && matches!(sub.path_in_parent, Some(SubchartPath::Directory(_))) == directory
            })
        };
        if let Some(dir) = named(true).next() {
            return Ok(Some(dir));
        }
        let archives: Vec<&ChartFiles> = named(false).collect();
        if archives.len() > 1 {
            let paths: Vec<String> = archives
                .iter()
                .filter_map(|a| a.path_in_parent.as_ref())
                .map(|p| format!("{}/{prefix}{}", self.origin, p.as_str()))
                .collect();
            return Err(Error::Chart {
                chart: format!("{}/{prefix}", self.origin)
                    .trim_end_matches('/')
                    .to_string(),
                message: format!(
                    "subchart {wanted} is packed twice ({}); keep one",
                    paths.join(", ")
                ),
            });
        }
        Ok(archives.first().copied())
    }

    /// Replaces the subchart archive `archive` (already read as `sub`, which refused absolute
    /// paths, `..` and links) by the directory `charts/<name>/` beside it: Helm loads either
    /// form the same way, and relok8s, which loads and re-saves the chart, also ends with the
    /// edited values inside the chart. Returns the directory, with a trailing `/`.
    fn unpack(&mut self, archive: &str, prefix: &str, sub: &ChartFiles) -> Result<String> {
        if let Some((_, dir)) = self.unpacked.iter().find(|(a, _)| a == archive) {
            return Ok(format!("{dir}/"));
        }
        let dir = format!("{prefix}charts/{}", sub.name());
        let inside = format!("{dir}/");
        if self.files.keys().any(|path| path.starts_with(&inside)) {
            return Err(already_exists(
                &format!("{}/{archive}", self.origin),
                &format!("{}/{dir}", self.origin),
            ));
        }
        self.files.remove(archive);
        for (path, bytes) in &sub.files {
            self.files.insert(format!("{inside}{path}"), bytes.clone());
        }
        self.unpacked.push((archive.to_string(), dir));
        Ok(inside)
    }
}

/// The error for an archive whose directory name is taken.
pub(super) fn already_exists(archive: &str, dir: &str) -> Error {
    Error::Chart {
        chart: archive.to_string(),
        message: format!("cannot unpack it to relocate its values: {dir} already exists"),
    }
}
