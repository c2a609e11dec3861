//! The values `helm upgrade` stores and renders (pkg/action/upgrade.go `reuseValues`, the same
//! in Helm 3.17 and 4.1).

use crate::Result;
use crate::chart::Chart;
use crate::coalesce::{coalesce_tables_pub, coalesce_values};
use crate::merge::render_values_as;
use crate::strvals::HelmVersion;
use crate::value::Values;

/// `helm upgrade`'s values flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValuesStrategy {
    /// No flag: the new flags only; with no flags at all, the previous release's values.
    #[default]
    Default,
    /// `--reuse-values`: previous user values under the new flags, and the *previous* release's
    /// computed values as chart defaults (new chart defaults are ignored).
    ReuseValues,
    /// `--reset-values`: the new flags and the new chart's defaults only.
    ResetValues,
    /// `--reset-then-reuse-values`: previous user values under the new flags, new chart defaults.
    ResetThenReuseValues,
}

/// The previous release, as `helm get values` and `helm get all` show it.
#[derive(Debug, Clone)]
pub struct PreviousRelease<'a> {
    /// The chart it was installed with.
    pub chart: &'a Chart,
    /// Its user-supplied values (`helm get values`).
    pub config: &'a Values,
}

/// What the upgrade stores as the new release's user values, and what it renders with.
#[derive(Debug, Clone, PartialEq)]
pub struct UpgradeValues {
    /// The release's new user-supplied values (`helm get values` after the upgrade).
    pub stored: Values,
    /// `.Values` of the new chart's templates.
    pub rendered: Values,
}

/// Computes an upgrade's values. `new_user` is what the new flags merge to
/// ([`crate::merge::ValueOptions::merge_values`]).
///
/// ```
/// use kantup_helm_values::{chart::Chart, upgrade::*};
/// let old = Chart { name: "app".into(), values: serde_json::from_str(r#"{"a": 1, "b": 1}"#).unwrap(), ..Default::default() };
/// let new = Chart { name: "app".into(), values: serde_json::from_str(r#"{"a": 2, "b": 2}"#).unwrap(), ..Default::default() };
/// let config = serde_json::from_str(r#"{"a": 10}"#).unwrap();
/// let prev = PreviousRelease { chart: &old, config: &config };
/// let up = upgrade_values(&new, &prev, &Default::default(), ValuesStrategy::ResetThenReuseValues,
///     kantup_helm_values::strvals::HelmVersion::V3).unwrap();
/// assert_eq!(serde_json::Value::Object(up.rendered), serde_json::json!({"a": 10, "b": 2}));
/// ```
pub fn upgrade_values(
    new_chart: &Chart,
    previous: &PreviousRelease<'_>,
    new_user: &Values,
    strategy: ValuesStrategy,
    helm: HelmVersion,
) -> Result<UpgradeValues> {
    let mut chart = new_chart.clone();
    let stored = match strategy {
        ValuesStrategy::ResetValues => new_user.clone(),
        ValuesStrategy::ReuseValues => {
            let old_vals = coalesce_values(previous.chart, previous.config, helm)?;
            let mut vals = new_user.clone();
            coalesce_tables_pub(&mut vals, previous.config, helm);
            chart.values = old_vals;
            vals
        }
        ValuesStrategy::ResetThenReuseValues => {
            let mut vals = new_user.clone();
            coalesce_tables_pub(&mut vals, previous.config, helm);
            vals
        }
        ValuesStrategy::Default => {
            if new_user.is_empty() && !previous.config.is_empty() {
                previous.config.clone()
            } else {
                new_user.clone()
            }
        }
    };
    let rendered = render_values_as(&chart, &stored, helm)?;
    Ok(UpgradeValues { stored, rendered })
}

/// The chart defaults Helm stores in the release record (`chart.values` of `helm get all`)
/// when it installs or upgrades `chart` with the user values `user`: not the chart's
/// `values.yaml` as written, but the values after Helm's dependency processing
/// (`ProcessDependenciesWithMerge`), which folds the defaults of the subcharts a parent lists
/// under `dependencies` (and their `import-values`) into the parent's. Compare a deployed
/// release's stored defaults with this, not with `values.yaml`.
///
/// ```
/// use kantup_helm_values::{chart::{Chart, Dependency}, upgrade::stored_chart_values};
/// let sub = Chart { name: "db".into(), version: "1.0.0".into(),
///     values: serde_json::from_str(r#"{"port": 5432}"#).unwrap(), ..Default::default() };
/// let parent = Chart { name: "app".into(), version: "1.0.0".into(),
///     values: serde_json::from_str(r#"{"replicas": 1}"#).unwrap(),
///     metadata_dependencies: vec![Dependency { name: "db".into(), version: "1.0.0".into(),
///         enabled: true, ..Default::default() }],
///     dependencies: vec![sub], ..Default::default() };
/// let stored = stored_chart_values(&parent, &Default::default(),
///     kantup_helm_values::strvals::HelmVersion::V3).unwrap();
/// // The subchart's defaults under its name, with the `global` Helm gives every subchart.
/// assert_eq!(serde_json::Value::Object(stored),
///     serde_json::json!({"replicas": 1, "db": {"port": 5432, "global": {}}}));
/// ```
pub fn stored_chart_values(chart: &Chart, user: &Values, helm: HelmVersion) -> Result<Values> {
    Ok(crate::deps::process_dependencies(chart, user, helm)?.values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn chart(values: Value) -> Chart {
        Chart {
            name: "app".into(),
            version: "1.0.0".into(),
            values: values.as_object().unwrap().clone(),
            ..Default::default()
        }
    }

    #[test]
    fn strategies_table() {
        let old = chart(json!({"a": "old-default", "b": "old-default", "gone": 1}));
        let new = chart(json!({"a": "new-default", "b": "new-default", "added": 1}));
        let config = json!({"a": "user", "m": {"x": 1}})
            .as_object()
            .unwrap()
            .clone();
        let prev = PreviousRelease {
            chart: &old,
            config: &config,
        };
        let flags = json!({"m": {"y": 2}}).as_object().unwrap().clone();
        let none = Values::new();
        let cases: &[(ValuesStrategy, &Values, Value, Value)] = &[
            (
                ValuesStrategy::Default,
                &flags,
                json!({"m": {"y": 2}}),
                json!({"a": "new-default", "b": "new-default", "added": 1, "m": {"y": 2}}),
            ),
            (
                ValuesStrategy::Default,
                &none,
                json!({"a": "user", "m": {"x": 1}}),
                json!({"a": "user", "b": "new-default", "added": 1, "m": {"x": 1}}),
            ),
            (
                ValuesStrategy::ResetValues,
                &none,
                json!({}),
                json!({"a": "new-default", "b": "new-default", "added": 1}),
            ),
            (
                ValuesStrategy::ReuseValues,
                &flags,
                json!({"a": "user", "m": {"x": 1, "y": 2}}),
                json!({"a": "user", "b": "old-default", "gone": 1, "m": {"x": 1, "y": 2}}),
            ),
            (
                ValuesStrategy::ResetThenReuseValues,
                &flags,
                json!({"a": "user", "m": {"x": 1, "y": 2}}),
                json!({"a": "user", "b": "new-default", "added": 1, "m": {"x": 1, "y": 2}}),
            ),
        ];
        for (strategy, user, stored, rendered) in cases {
            let up = upgrade_values(&new, &prev, user, *strategy, HelmVersion::V3).unwrap();
            assert_eq!(Value::Object(up.stored), *stored, "{strategy:?} stored");
            assert_eq!(
                Value::Object(up.rendered),
                *rendered,
                "{strategy:?} rendered"
            );
        }
    }
}
