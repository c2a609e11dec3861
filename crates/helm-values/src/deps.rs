//! Dependency processing before coalescing (Helm's pkg/chartutil/dependencies.go): aliases,
//! `condition` and `tags` enabling, and `import-values`.

use serde_json::{Map, Value};

use crate::chart::{Chart, Dependency};
use crate::coalesce::{coalesce_tables, coalesce_values, merge_values_with_chart};
use crate::strvals::HelmVersion;
use crate::value::Values;

/// Helm's `ProcessDependenciesWithMerge`: returns the chart as Helm renders it for `vals`:
/// aliased subcharts renamed, disabled ones removed, imported values folded into defaults.
///
/// Like Helm, this folds subchart defaults into a parent that lists dependencies even without
/// `import-values`; nulls then reach the subchart twice, which is why Helm 3 drops a subchart's
/// own `null` defaults and Helm 4.1 (which deletes only over a non-null default) keeps them.
pub fn process_dependencies(
    chart: &Chart,
    vals: &Values,
    helm: HelmVersion,
) -> crate::Result<Chart> {
    let mut chart = chart.clone();
    process_enabled(&mut chart, vals, "", helm)?;
    process_import_values(&mut chart, helm)?;
    Ok(chart)
}

/// The subcharts Helm keeps for `values`, as paths of chart names from the top chart (`[["db"],
/// ["db", "metrics"]]`), depth first: Helm's `condition` and `tags` with `helm`'s rules,
/// aliases followed. Which CRDs Helm installs with a chart follows from it.
///
/// ```
/// # let root = kantup_test_support::workspace_root();
/// use kantup_helm_values::strvals::HelmVersion;
/// let bundle = kantup_bundle::Bundle::open(root.join("examples/bundles/testchart.bundle.tar"))?;
/// let chart = bundle.chart()?;
/// let enabled = kantup_helm_values::deps::enabled_subcharts(&chart, &Default::default(), HelmVersion::V3)?;
/// // Each path starts at a subchart of the top chart.
/// assert!(enabled.iter().all(|path| chart.subcharts.iter().any(|s| s.name() == path[0])));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn enabled_subcharts(
    chart: &kantup_bundle::chart::Chart,
    values: &Values,
    helm: HelmVersion,
) -> crate::Result<Vec<Vec<String>>> {
    let in_chart = |source: crate::Error| crate::Error::Subcharts {
        chart: chart.name().to_string(),
        source: Box::new(source),
    };
    let as_values_chart = Chart::from_chart(chart).map_err(in_chart)?;
    let processed = process_dependencies(&as_values_chart, values, helm).map_err(in_chart)?;
    let mut out = Vec::new();
    walk_enabled(chart, &processed, &mut Vec::new(), &mut out);
    Ok(out)
}

/// Pairs each subchart of `chart` with the processed dependency that kept it: Helm renames an
/// aliased dependency to its alias, so a subchart counts when its name, or an alias that
/// `Chart.yaml` gives it, is among the processed dependencies.
fn walk_enabled(
    chart: &kantup_bundle::chart::Chart,
    processed: &Chart,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    for sub in &chart.subcharts {
        let mut names = vec![sub.name().to_string()];
        names.extend(
            chart
                .metadata
                .dependencies
                .iter()
                .filter(|d| d.name == sub.name())
                .filter_map(|d| d.alias.clone()),
        );
        let Some(kept) = processed
            .dependencies
            .iter()
            .find(|d| names.contains(&d.name))
        else {
            continue;
        };
        path.push(sub.name().to_string());
        out.push(path.clone());
        walk_enabled(sub, kept, path, out);
        path.pop();
    }
}

/// Masterminds/semver-ish `IsCompatibleRange`: an empty or unparsable constraint never matches.
fn is_compatible_range(constraint: &str, version: &str) -> bool {
    let constraint = constraint.trim();
    if constraint.is_empty() {
        return false;
    }
    let Ok(v) = semver::Version::parse(version.trim_start_matches('v')) else {
        return false;
    };
    if constraint == version || constraint == "*" || constraint == "x" {
        return true;
    }
    // Masterminds reads a bare version as "=", Rust's semver as "^": make it explicit.
    let req_text = if constraint.starts_with(|c: char| c.is_ascii_digit()) {
        format!("={constraint}")
    } else {
        constraint.to_string()
    };
    semver::VersionReq::parse(&req_text)
        .map(|r| r.matches(&v))
        .unwrap_or(false)
}

fn process_enabled(c: &mut Chart, v: &Values, path: &str, helm: HelmVersion) -> crate::Result<()> {
    if c.metadata_dependencies.is_empty() {
        return Ok(());
    }
    let mut deps: Vec<Chart> = Vec::new();
    for existing in &c.dependencies {
        let listed = c
            .metadata_dependencies
            .iter()
            .any(|r| existing.name == r.name && is_compatible_range(&r.version, &existing.version));
        if !listed {
            deps.push(existing.clone());
        }
    }
    for req in &mut c.metadata_dependencies {
        if let Some(found) = c
            .dependencies
            .iter()
            .find(|ch| ch.name == req.name && is_compatible_range(&req.version, &ch.version))
        {
            let mut copy = found.clone();
            if let Some(alias) = &req.alias {
                copy.name = alias.clone();
            }
            deps.push(copy);
        }
        if let Some(alias) = &req.alias {
            req.name = alias.clone();
        }
        req.enabled = true;
    }
    c.dependencies = deps;
    let cvals = coalesce_values(c, v, helm)?;
    process_tags(&mut c.metadata_dependencies, &cvals);
    process_conditions(&mut c.metadata_dependencies, &cvals, path);
    let disabled: Vec<String> = c
        .metadata_dependencies
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    c.dependencies.retain(|d| !disabled.contains(&d.name));
    c.metadata_dependencies
        .retain(|d| !disabled.contains(&d.name));
    for t in &mut c.dependencies {
        let sub_path = format!("{path}{}.", t.name);
        process_enabled(t, &cvals, &sub_path, helm)?;
    }
    Ok(())
}

fn process_tags(reqs: &mut [Dependency], cvals: &Values) {
    let Some(Value::Object(tags)) = cvals.get("tags") else {
        return;
    };
    for r in reqs {
        let (mut has_true, mut has_false) = (false, false);
        for k in &r.tags {
            if let Some(Value::Bool(b)) = tags.get(k) {
                if *b {
                    has_true = true;
                } else {
                    has_false = true;
                }
            }
        }
        r.enabled = has_true || !has_false;
    }
}

fn process_conditions(reqs: &mut [Dependency], cvals: &Values, path: &str) {
    for r in reqs {
        let Some(cond) = r.condition.clone() else {
            continue;
        };
        for c in cond.trim().split(',') {
            if c.is_empty() {
                continue;
            }
            // A non-bool makes Helm warn "Condition path ... returned non-bool value".
            if let Some(Value::Bool(b)) = path_value(cvals, &format!("{path}{c}")) {
                r.enabled = *b;
                break;
            }
        }
    }
}

/// Helm's `Values.PathValue`: a non-table value at a dotted path.
fn path_value<'a>(v: &'a Values, path: &str) -> Option<&'a Value> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, tables) = parts.split_last()?;
    let t = table(v, &tables.join("."))?;
    t.get(*last).filter(|x| !x.is_object())
}

/// Helm's `Values.Table`: the table at a dotted path ("" is the root).
pub(crate) fn table<'a>(v: &'a Values, path: &str) -> Option<&'a Values> {
    let mut cur = v;
    if path.is_empty() {
        return Some(cur);
    }
    for part in path.split('.') {
        match cur.get(part) {
            Some(Value::Object(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur)
}

fn process_import_values(c: &mut Chart, helm: HelmVersion) -> crate::Result<()> {
    for d in &mut c.dependencies {
        process_import_values(d, helm)?;
    }
    if c.metadata_dependencies.is_empty() {
        return Ok(());
    }
    let cvals = merge_values_with_chart(c, &Map::new(), helm)?;
    let mut b = Map::new();
    for r in &c.metadata_dependencies {
        for iv in &r.import_values {
            let (child, parent) = match iv {
                Value::Object(m) => (
                    m.get("child")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    m.get("parent")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ),
                Value::String(s) => (format!("exports.{s}"), ".".to_string()),
                _ => continue,
            };
            let Some(vv) = table(&cvals, &format!("{}.{child}", r.name)) else {
                continue; // Helm warns: "ImportValues missing table"
            };
            let src = path_to_map(&parent, vv.clone());
            coalesce_tables(&mut b, src, true, helm);
        }
    }
    let mut merged = cvals;
    coalesce_tables(&mut merged, b, true, helm);
    c.values = merged;
    Ok(())
}

fn path_to_map(path: &str, data: Values) -> Values {
    if path == "." {
        return data;
    }
    let mut cur = data;
    for part in path.split('.').rev() {
        let mut m = Map::new();
        m.insert(part.to_string(), Value::Object(cur));
        cur = m;
    }
    cur
}
