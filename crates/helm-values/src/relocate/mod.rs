//! Image relocation through relok8s hints, as relok8s does it (internal/rewrite_action.go,
//! pkg/mover/chart.go), by the one relocation rule ([`kantup_bundle::relocation`]): the
//! registry value becomes the new registry; the repository value becomes `prefix/<last segment
//! of the original repository>`; a placeholder that holds the whole reference gets the whole
//! new reference; tags and digests are untouched, except that a hint without a tag (or digest)
//! placeholder is pinned by the digest the caller supplies.
//!
//! The chart is changed in memory ([`relocate_chart`], [`edit_values`]): each edit goes into
//! the `values.yaml` of the chart that owns the path (a path whose first segment names a
//! subchart, by name or alias, is routed into that subchart); a subchart packed as
//! `charts/<name>-<version>.tgz` (as `helm dependency build` leaves it) becomes the directory
//! `charts/<name>/` when a path routes into it, nested archives included. Values files are
//! edited surgically ([`crate::yaml_edit`]): comments and layout stay. [`relocate_chart_dir`]
//! and [`apply_value_edits`] do the same to a chart directory on disk.

mod dir;
mod edit;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kantup_bundle::Digest;
use kantup_bundle::chart::Chart as ChartFiles;
use kantup_bundle::hints::ImagePattern;
use kantup_bundle::reference::Reference;
use serde::Serialize;
use serde_json::Value;

use crate::chart::Chart;
use crate::{Error, Result};

pub use dir::{apply_value_edits, relocate_chart_dir};
/// Where images move to: the one relocation rule, also when `kantup values relocate` leaves
/// its registry or its prefix out.
pub use kantup_bundle::relocation::RelocationRule;

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
    /// The values file changed: relative to the chart root for a chart in memory, under the
    /// chart directory for one on disk.
    pub file: PathBuf,
    /// The path inside that file (`image.registry`).
    pub path: String,
    /// The new value.
    pub value: String,
}

/// What [`relocate_chart`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelocationReport {
    /// Every image, original -> relocated, in hint order (duplicates removed).
    pub images: Vec<RelocatedImage>,
    /// Every value written.
    pub edits: Vec<ValueEdit>,
}

/// Relocates the images of `chart` in memory: its values files (and its subcharts') are
/// rewritten, and the chart is read again from its changed files.
///
/// `digests` maps an original reference to its manifest digest; it pins hints without a tag
/// placeholder.
///
/// ```
/// # let fixtures = kantup_test_support::relok8s_fixtures();
/// use kantup_bundle::{chart::Chart, hints::parse_hints, relocation::RelocationRule};
/// use kantup_helm_values::relocate::relocate_chart;
/// let mut chart = Chart::load(fixtures.join("testchart"))?;
/// let hints = parse_hints(&std::fs::read_to_string(fixtures.join("testchart.images.yaml"))?)?;
/// let rule = RelocationRule::new("reg.local:5000", "mirror");
/// let report = relocate_chart(&mut chart, &hints, &rule, &Default::default())?;
/// assert!(report.images.iter().all(|i| i.relocated.starts_with("reg.local:5000/mirror/")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn relocate_chart(
    chart: &mut ChartFiles,
    patterns: &[ImagePattern],
    rule: &RelocationRule,
    digests: &HashMap<Reference, Digest>,
) -> Result<RelocationReport> {
    let origin = chart.name().to_string();
    let (report, _) = relocate(chart, &origin, patterns, rule, digests)?;
    Ok(report)
}

/// Writes values into `chart` the way relok8s applies its rewrite actions: each
/// `(path, value)` goes into the `values.yaml` of the chart that owns the path (subcharts by
/// name or alias, nested), editing only the scalar (or inserting the missing keys). Every file
/// is checked to still parse as Helm reads it; on any error the chart is left as it was.
pub fn edit_values(
    chart: &mut ChartFiles,
    actions: &[(Vec<String>, String)],
) -> Result<Vec<ValueEdit>> {
    let origin = chart.name().to_string();
    let mut editor = edit::Editor::new(chart, &origin);
    let edits = editor.apply(actions)?;
    *chart = editor.finish()?.chart;
    Ok(edits)
}

/// Where the chart's values hold the images it needs, found without hints: the image
/// patterns [`relocate_chart_dir`] takes, and the images no value names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValueImages {
    /// One pattern per place in the values that names one of the images: a map with a
    /// `repository` (and `registry`, `tag`, `digest` when present and not empty), or a single
    /// `image` string holding the whole reference.
    pub patterns: Vec<ImagePattern>,
    /// Images no value names: they keep their original registry when the chart is deployed.
    pub unmapped: Vec<String>,
}

/// Finds `images` in the default values of `chart` (subcharts' defaults
/// under their names and aliases, enabled or not, as for hints): every map with a string
/// `repository` whose `registry/repository` is one of the images' names, and every `image`
/// string that parses as a reference to one of them. Lists are not searched (a hint cannot
/// address a list item), nor keys a values path cannot spell (with `.` or spaces).
///
/// ```no_run
/// use kantup_helm_values::relocate::{find_value_images, relocate_chart, RelocationRule};
/// let mut chart = kantup_bundle::chart::Chart::load("chart").unwrap();
/// let images = vec!["docker.io/bitnami/nginx:1.25.3".parse().unwrap()];
/// let found = find_value_images(&chart, &images).unwrap();
/// for missing in &found.unmapped { eprintln!("{missing}: no value names it"); }
/// let rule = RelocationRule::new("reg.local:5000", "mirror");
/// relocate_chart(&mut chart, &found.patterns, &rule, &Default::default()).unwrap();
/// ```
pub fn find_value_images(chart: &ChartFiles, images: &[Reference]) -> Result<ValueImages> {
    let values = all_defaults(chart)?;
    let mut found = ValueImages::default();
    let mut matched: Vec<String> = Vec::new();
    walk_value_images(
        &values,
        &mut Vec::new(),
        images,
        &mut found.patterns,
        &mut matched,
    );
    for image in images {
        if !matched.contains(&image.name()) {
            found.unmapped.push(image.to_string());
        }
    }
    Ok(found)
}

fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| c == '.' || c.is_whitespace() || "{}|()\"'".contains(c))
}

fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn walk_value_images(
    value: &Value,
    path: &mut Vec<String>,
    images: &[Reference],
    patterns: &mut Vec<ImagePattern>,
    matched: &mut Vec<String>,
) {
    let Value::Object(map) = value else {
        return;
    };
    let placeholder = |path: &[String], key: &str| {
        let mut p: Vec<&str> = path.iter().map(String::as_str).collect();
        p.push(key);
        format!("{{{{ .{} }}}}", p.join("."))
    };
    let known = |name: &str| images.iter().find(|i| i.name() == name);
    if let Some(repository) = scalar_text(map.get("repository")) {
        let registry = scalar_text(map.get("registry"));
        let tag = scalar_text(map.get("tag"));
        let digest = scalar_text(map.get("digest"));
        let text = match &registry {
            Some(r) => format!("{r}/{repository}"),
            None => repository.clone(),
        };
        // A tag or digest is needed unless the registry has its own placeholder: alone, the
        // repository value would be rewritten as a whole reference.
        let usable = registry.is_some() || tag.is_some() || digest.is_some();
        if usable
            && let Ok(reference) = text.parse::<Reference>()
            && let Some(image) = known(&reference.name())
        {
            let mut template = String::new();
            if registry.is_some() {
                template.push_str(&placeholder(path, "registry"));
                template.push('/');
            }
            template.push_str(&placeholder(path, "repository"));
            if tag.is_some() {
                template.push(':');
                template.push_str(&placeholder(path, "tag"));
            }
            if digest.is_some() {
                template.push('@');
                template.push_str(&placeholder(path, "digest"));
            }
            if let Ok(pattern) = ImagePattern::parse(&template) {
                patterns.push(pattern);
                matched.push(image.name());
            }
        }
    }
    for (key, child) in map {
        if !plain_key(key) {
            continue;
        }
        if key == "image"
            && let Value::String(text) = child
            && let Ok(reference) = text.trim().parse::<Reference>()
            && let Some(image) = known(&reference.name())
        {
            if let Ok(pattern) = ImagePattern::parse(&placeholder(path, key)) {
                patterns.push(pattern);
                matched.push(image.name());
            }
            continue;
        }
        path.push(key.clone());
        walk_value_images(child, path, images, patterns, matched);
        path.pop();
    }
}

/// The chart's values as relok8s sees them: its defaults coalesced with every subchart's
/// (aliases applied), enabled or not, since a disabled subchart's images still ship in the
/// bundle and may be enabled at install time.
fn all_defaults(chart: &ChartFiles) -> Result<Value> {
    let mut view = Chart::from_chart(chart)?;
    apply_aliases(&mut view);
    Ok(Value::Object(crate::coalesce::coalesce_values(
        &view,
        &Default::default(),
        crate::strvals::HelmVersion::V3,
    )?))
}

/// Relocation, also returning what the directory functions need to write back.
fn relocate(
    chart: &mut ChartFiles,
    origin: &str,
    patterns: &[ImagePattern],
    rule: &RelocationRule,
    digests: &HashMap<Reference, Digest>,
) -> Result<(RelocationReport, edit::Edited)> {
    let values = all_defaults(chart)?;
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
        let (image, wanted) = plan(pattern, &original, rule, digests);
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
    let mut editor = edit::Editor::new(chart, origin);
    report.edits = editor.apply(&actions)?;
    let edited = editor.finish()?;
    *chart = edited.chart.clone();
    Ok((report, edited))
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
fn plan(
    pattern: &ImagePattern,
    original: &Reference,
    rule: &RelocationRule,
    digests: &HashMap<Reference, Digest>,
) -> (RelocatedImage, Vec<(Vec<String>, String)>) {
    let mut new_ref = rule.relocate(original);
    let mut writes = Vec::new();
    let seg = |p: &kantup_bundle::hints::ValuePath| p.segments().to_vec();
    match &pattern.registry {
        Some(reg_path) => {
            writes.push((seg(reg_path), new_ref.registry.clone()));
            writes.push((seg(&pattern.repository), new_ref.repository.clone()));
        }
        None => {
            // The repository placeholder carries the registry too; without a tag or digest
            // placeholder it carries the whole reference.
            let whole = pattern.tag.is_none() && pattern.digest.is_none();
            let value = if whole {
                if let Some(digest) = digests.get(original) {
                    new_ref.tag = None;
                    new_ref.digest = Some(*digest);
                }
                new_ref.to_string()
            } else {
                new_ref.name()
            };
            writes.push((seg(&pattern.repository), value));
        }
    }
    (
        RelocatedImage {
            pattern: pattern.template.clone(),
            original: original.to_string(),
            relocated: new_ref.to_string(),
        },
        writes,
    )
}
