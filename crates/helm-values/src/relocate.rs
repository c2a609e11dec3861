//! Image relocation through relok8s hints, as relok8s does it (internal/rewrite_action.go,
//! pkg/mover/chart.go): the registry value becomes the new registry; the repository value
//! becomes `prefix/<last segment of the original repository>`; a placeholder that holds the
//! whole reference gets the whole new reference; tags and digests are untouched, except that a
//! hint without a tag (or digest) placeholder is pinned by the digest the caller supplies.
//!
//! Edits go into the `values.yaml` of the chart that owns the path: a path whose first
//! segment names a subchart (by name or alias) is routed into that subchart's directory. A
//! subchart packed as `charts/<name>-<version>.tgz` (as `helm dependency build` leaves it) is
//! unpacked into `charts/<name>/` when a path routes into it, nested archives included. Files
//! are edited surgically ([`crate::yaml_edit`]): comments and layout stay.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use kantup_bundle::hints::ImagePattern;
use kantup_bundle::reference::Reference;
use serde::Serialize;
use serde_json::Value;

use crate::chart::Chart;
use crate::yaml::parse_values;
use crate::yaml_edit::set_scalar;
use crate::{Error, Result};

/// Where images move to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelocationRules {
    /// New registry host (`registry.local:5000`); `None` keeps each image's registry.
    pub registry: Option<String>,
    /// New repository prefix (`team/mirror`); `None` keeps each image's repository.
    pub repository_prefix: Option<String>,
}

/// One image and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelocatedImage {
    /// The hint that names it.
    pub pattern: String,
    /// The reference the chart uses today (normalized).
    pub original: String,
    /// The reference after relocation: push the image here.
    pub relocated: String,
}

/// One edited value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueEdit {
    /// The values file changed.
    pub file: PathBuf,
    /// The path inside that file (`image.registry`).
    pub path: String,
    /// The new value.
    pub value: String,
}

/// What [`relocate_chart_dir`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelocationReport {
    /// Every image, original -> relocated, in hint order (duplicates removed).
    pub images: Vec<RelocatedImage>,
    /// Every value written.
    pub edits: Vec<ValueEdit>,
}

/// Relocates the images of the chart directory `dir` in place.
///
/// `digests` maps an original reference (as printed in [`RelocatedImage::original`]) to its
/// manifest digest; it is used for hints without a tag placeholder.
///
/// ```no_run
/// use kantup_helm_values::relocate::{relocate_chart_dir, RelocationRules};
/// let hints = kantup_bundle::hints::parse_hints(&std::fs::read_to_string("hints.yaml").unwrap()).unwrap();
/// let rules = RelocationRules { registry: Some("reg.local:5000".into()), repository_prefix: Some("mirror".into()) };
/// let report = relocate_chart_dir("chart".as_ref(), &hints, &rules, &Default::default()).unwrap();
/// for image in report.images { println!("{} -> {}", image.original, image.relocated); }
/// ```
pub fn relocate_chart_dir(
    dir: &Path,
    patterns: &[ImagePattern],
    rules: &RelocationRules,
    digests: &HashMap<String, String>,
) -> Result<RelocationReport> {
    let mut chart = Chart::load(dir)?;
    apply_aliases(&mut chart);
    // Like relok8s: every subchart's defaults, enabled or not (a disabled subchart's images
    // still ship in the bundle and may be enabled at install time).
    let values = Value::Object(crate::coalesce::coalesce_values(
        &chart,
        &Default::default(),
        crate::strvals::HelmVersion::V3,
    )?);
    let mut report = RelocationReport::default();
    // path -> (value, pattern that asked for it)
    let mut actions: BTreeMap<Vec<String>, (String, String)> = BTreeMap::new();
    for pattern in patterns {
        let rendered = pattern
            .render(&values)
            .map_err(|e| Error::Relocate(e.to_string()))?;
        let original: Reference =
            rendered
                .parse()
                .map_err(|e: kantup_bundle::reference::ReferenceError| {
                    Error::Relocate(format!("hint {:?}: {e}", pattern.template))
                })?;
        let (image, wanted) = plan(pattern, &original, rules, digests)?;
        for (path, value) in wanted {
            if let Some((existing, by)) = actions.get(&path)
                && existing != &value
            {
                return Err(Error::Relocate(format!(
                    "value .{} would be set to {existing:?} by hint {by:?} and to {value:?} by hint {:?}",
                    path.join("."),
                    pattern.template
                )));
            }
            actions.insert(path, (value, pattern.template.clone()));
        }
        if !report
            .images
            .iter()
            .any(|i| i.original == image.original && i.relocated == image.relocated)
        {
            report.images.push(image);
        }
    }
    let actions: Vec<(Vec<String>, String)> =
        actions.into_iter().map(|(p, (v, _))| (p, v)).collect();
    report.edits = apply_value_edits(dir, &actions)?;
    Ok(report)
}

/// Writes values into a chart directory the way relok8s applies its rewrite actions: each
/// `(path, value)` goes into the `values.yaml` of the chart that owns the path (subcharts by
/// name or alias, nested), editing only the scalar (or inserting the missing keys).
///
/// Every file is checked to still parse as Helm reads it before any values file is written; no
/// values file is written when any edit fails. Subchart archives that paths route into are
/// unpacked first (and stay unpacked if an edit then fails: Helm renders the chart the same).
pub fn apply_value_edits(dir: &Path, actions: &[(Vec<String>, String)]) -> Result<Vec<ValueEdit>> {
    let routed = actions
        .iter()
        .map(|(path, value)| route(dir, path).map(|(file, rest)| (file, rest, value)))
        .collect::<Result<Vec<_>>>()?;
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut edits = Vec::new();
    for (file, rest, value) in routed {
        let text = match files.get(&file) {
            Some(t) => t.clone(),
            None if file.exists() => {
                std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?
            }
            None => String::new(),
        };
        let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
        let edited = set_scalar(&text, &rest_refs, value)
            .map_err(|e| Error::Relocate(format!("{}: {e}", file.display())))?;
        parse_values(&edited, &file.display().to_string())?;
        files.insert(file.clone(), edited);
        edits.push(ValueEdit {
            file,
            path: rest.join("."),
            value: value.clone(),
        });
    }
    for (file, text) in files {
        std::fs::write(&file, text).map_err(|e| Error::io(&file, e))?;
    }
    Ok(edits)
}

/// Puts each aliased subchart's defaults under its alias, as Helm does before rendering (one
/// copy per alias), without dropping disabled subcharts. Subcharts not listed in
/// `dependencies:` keep their name.
fn apply_aliases(chart: &mut Chart) {
    let mut deps: Vec<Chart> = chart
        .dependencies
        .iter()
        .filter(|d| !chart.metadata_dependencies.iter().any(|m| m.name == d.name))
        .cloned()
        .collect();
    for req in &chart.metadata_dependencies {
        if let Some(found) = chart.dependencies.iter().find(|d| d.name == req.name) {
            let mut copy = found.clone();
            if let Some(alias) = &req.alias {
                copy.name = alias.clone();
            }
            deps.push(copy);
        }
    }
    for dep in &mut deps {
        apply_aliases(dep);
    }
    chart.dependencies = deps;
}

/// The new reference for one hint and the values to write.
#[allow(clippy::type_complexity)]
fn plan(
    pattern: &ImagePattern,
    original: &Reference,
    rules: &RelocationRules,
    digests: &HashMap<String, String>,
) -> Result<(RelocatedImage, Vec<(Vec<String>, String)>)> {
    let registry = rules
        .registry
        .clone()
        .unwrap_or_else(|| original.registry.clone());
    let repository = match &rules.repository_prefix {
        Some(prefix) => {
            let last = original
                .repository
                .rsplit('/')
                .next()
                .unwrap_or(&original.repository);
            format!("{}/{last}", prefix.trim_end_matches('/'))
        }
        None => original.repository.clone(),
    };
    let mut new_ref = Reference {
        registry: registry.clone(),
        repository: repository.clone(),
        tag: original.tag.clone(),
        digest: original.digest,
    };
    let mut writes = Vec::new();
    let seg = |p: &kantup_bundle::hints::ValuePath| p.segments().to_vec();
    match &pattern.registry {
        Some(reg_path) => {
            writes.push((seg(reg_path), registry.clone()));
            writes.push((seg(&pattern.repository), repository.clone()));
        }
        None => {
            // The repository placeholder carries the registry too; without a tag or digest
            // placeholder it carries the whole reference.
            let whole = pattern.tag.is_none() && pattern.digest.is_none();
            let value = if whole {
                let key = original.to_string();
                if let Some(d) = digests.get(&key) {
                    new_ref.tag = None;
                    new_ref.digest = Some(
                        d.parse()
                            .map_err(|e| Error::Relocate(format!("digest for {key}: {e}")))?,
                    );
                }
                new_ref.to_string()
            } else {
                format!("{registry}/{repository}")
            };
            writes.push((seg(&pattern.repository), value));
        }
    }
    Ok((
        RelocatedImage {
            pattern: pattern.template.clone(),
            original: original.to_string(),
            relocated: new_ref.to_string(),
        },
        writes,
    ))
}

/// Finds the values.yaml that owns `path`, descending into subcharts whose name or alias is
/// the first segment. A subchart packed as `.tgz` on the way is unpacked into
/// `charts/<name>/` first (see [`unpack_subchart`]).
fn route(dir: &Path, path: &[String]) -> Result<(PathBuf, Vec<String>)> {
    let mut dir = dir.to_path_buf();
    let mut rest = path.to_vec();
    while rest.len() > 1 {
        match subchart_dir(&dir, &rest[0])? {
            Some(sub) => {
                dir = sub;
                rest.remove(0);
            }
            None => break,
        }
    }
    Ok((dir.join("values.yaml"), rest))
}

/// The directory of the subchart called `name` (or aliased `name`) in `dir/charts/`,
/// unpacking it when it is an archive.
///
/// Like Helm's loader, entries whose name starts with `.` or `_` are not subcharts, and
/// archives are recognized by the `.tgz` extension and identified by their `Chart.yaml`, not
/// by their file name.
fn subchart_dir(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let chart_yaml = dir.join("Chart.yaml");
    let meta = std::fs::read_to_string(&chart_yaml).map_err(|e| Error::io(&chart_yaml, e))?;
    let meta = parse_values(&meta, &chart_yaml.display().to_string())?;
    let mut wanted = name.to_string();
    if let Some(Value::Array(deps)) = meta.get("dependencies") {
        for d in deps {
            if d.get("alias").and_then(Value::as_str) == Some(name)
                && let Some(n) = d.get("name").and_then(Value::as_str)
            {
                wanted = n.to_string();
            }
        }
    }
    let charts = dir.join("charts");
    let Ok(entries) = std::fs::read_dir(&charts) else {
        return Ok(None);
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut archives = Vec::new();
    for p in paths {
        let Some(file_name) = p.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file_name.starts_with(['.', '_']) {
            continue;
        }
        let sub_yaml = p.join("Chart.yaml");
        if p.is_dir() && sub_yaml.is_file() {
            let text = std::fs::read_to_string(&sub_yaml).map_err(|e| Error::io(&sub_yaml, e))?;
            let m = parse_values(&text, &sub_yaml.display().to_string())?;
            if m.get("name").and_then(Value::as_str) == Some(wanted.as_str()) {
                return Ok(Some(p));
            }
        } else if p.is_file() && file_name.ends_with(".tgz") {
            let chart = kantup_bundle::chart::Chart::load_tgz(&p).map_err(|e| Error::Chart {
                chart: p.display().to_string(),
                message: e.to_string(),
            })?;
            if chart.name() == wanted {
                archives.push((p, chart));
            }
        }
    }
    match archives.len() {
        0 => Ok(None),
        1 => {
            let (archive, chart) = archives.remove(0);
            unpack_subchart(&charts, &archive, &chart).map(Some)
        }
        _ => Err(Error::Chart {
            chart: dir.display().to_string(),
            message: format!(
                "subchart {wanted} is packed twice ({}); keep one",
                archives
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Replaces the subchart archive `archive` (already loaded as `chart`, which refused absolute
/// paths, `..` and links) by the directory `charts/<name>/`: Helm loads either form the same
/// way, and relok8s, which loads and re-saves the chart, also ends with the edited values
/// inside the chart. The files go to a hidden staging directory (ignored by Helm) that is
/// renamed into place, so a failure leaves either the archive or the directory, never half.
fn unpack_subchart(
    charts: &Path,
    archive: &Path,
    chart: &kantup_bundle::chart::Chart,
) -> Result<PathBuf> {
    let target = charts.join(chart.name());
    if target.symlink_metadata().is_ok() {
        return Err(Error::Chart {
            chart: archive.display().to_string(),
            message: format!(
                "cannot unpack it to relocate its values: {} already exists",
                target.display()
            ),
        });
    }
    let staging = charts.join(format!(".kantup-unpack-{}", chart.name()));
    if staging.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    let unpacked = chart
        .write_dir(&staging)
        .map_err(|e| Error::Chart {
            chart: archive.display().to_string(),
            message: format!("unpacking into {}: {e}", staging.display()),
        })
        .and_then(|()| std::fs::rename(&staging, &target).map_err(|e| Error::io(&target, e)));
    if let Err(e) = unpacked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::remove_file(archive) {
        // Keep the chart loadable: without this, Helm would see the subchart twice.
        let _ = std::fs::remove_dir_all(&target);
        return Err(Error::io(archive, e));
    }
    Ok(target)
}
