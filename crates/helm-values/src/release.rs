//! A release's values as Helm keeps and shows them: what `helm get values [--all] -o yaml`
//! prints for a release record (the values backup an upgrade writes before it changes
//! anything), and that backup read back as `helm upgrade -f bak.yaml` reads it
//! ([`crate::merge::ValueOptions::merge_values_after`]), without a file in between.

use serde_json::{Map, Value};

use crate::chart::Chart;
use crate::strvals::HelmVersion;
use crate::{Error, Result};

/// The values a release record stores: the chart's defaults (`chart.values`) and the
/// user-supplied values (`config`), and which Helm wrote the record.
///
/// ```
/// use kantup_helm_values::release::StoredValues;
/// use kantup_helm_values::strvals::HelmVersion;
/// let defaults = serde_json::json!({"replicas": 1, "tag": "a"});
/// let config = serde_json::json!({"tag": "b"});
/// let stored = StoredValues {
///     defaults: defaults.as_object(),
///     config: config.as_object(),
///     helm: HelmVersion::V3,
/// };
/// assert_eq!(stored.to_yaml("demo", false).unwrap(), "tag: b\n");
/// assert_eq!(stored.to_yaml("demo", true).unwrap(), "tag: b\nreplicas: 1\n");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StoredValues<'a> {
    /// The chart's default values, when the record has them.
    pub defaults: Option<&'a Map<String, Value>>,
    /// The user-supplied values, when there are any.
    pub config: Option<&'a Map<String, Value>>,
    /// The Helm that wrote the record: its coalescing rules apply.
    pub helm: HelmVersion,
}

impl<'a> StoredValues<'a> {
    /// The values of a release record: `defaults` (`chart.values`), `config`, and whether
    /// Helm 4 wrote it (else Helm 3).
    pub fn of_record(
        defaults: Option<&'a Map<String, Value>>,
        config: Option<&'a Map<String, Value>>,
        written_by_helm4: bool,
    ) -> Self {
        StoredValues {
            defaults,
            config,
            helm: if written_by_helm4 {
                HelmVersion::V4
            } else {
                HelmVersion::V3
            },
        }
    }

    /// The values as `helm get values` shows them: the user-supplied values (`null` when
    /// there are none, as Helm prints), or with `all` the chart defaults coalesced with them.
    pub fn values(&self, all: bool) -> Value {
        if all {
            Value::Object(coalesce_stored(self.defaults, self.config, self.helm))
        } else {
            self.config
                .cloned()
                .map(Value::Object)
                .unwrap_or(Value::Null)
        }
    }

    /// [`values`](Self::values) as `helm get values -o yaml` prints them, for release
    /// `release` (named in the error).
    pub fn to_yaml(&self, release: &str, all: bool) -> Result<String> {
        serde_yaml::to_string(&self.values(all)).map_err(|source| Error::ReleaseYaml {
            release: release.to_string(),
            source,
        })
    }
}

/// `user` coalesced over `defaults` (both may be absent) as `helm get values --all` does it
/// (`chartutil.CoalesceValues`) with Helm `helm`'s rules: a user value wins over a default;
/// maps merge recursively; a user `null` deletes the default key, at the top level always, in
/// nested tables as each Helm version does. The stored chart has no subcharts (Helm does not
/// serialize them into the record), so only the chart's own values are coalesced.
pub fn coalesce_stored(
    defaults: Option<&Map<String, Value>>,
    user: Option<&Map<String, Value>>,
    helm: HelmVersion,
) -> Map<String, Value> {
    let chart = Chart {
        values: defaults.cloned().unwrap_or_default(),
        ..Default::default()
    };
    let user = user.cloned().unwrap_or_default();
    // Only subcharts can make coalescing fail (a value where a subchart's table goes).
    crate::coalesce::coalesce_values(&chart, &user, helm)
        .expect("a chart without subcharts always coalesces")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn table() {
        let cases = [
            (
                "user wins",
                json!({"a": 1}),
                json!({"a": 2}),
                json!({"a": 2}),
            ),
            (
                "defaults fill in",
                json!({"a": 1, "b": 2}),
                json!({"a": 3}),
                json!({"a": 3, "b": 2}),
            ),
            (
                "nested merge",
                json!({"img": {"repo": "r", "tag": "1"}}),
                json!({"img": {"tag": "2"}}),
                json!({"img": {"tag": "2", "repo": "r"}}),
            ),
            (
                "null deletes",
                json!({"a": 1, "b": 2}),
                json!({"a": null}),
                json!({"b": 2}),
            ),
            (
                "nested null deletes",
                json!({"m": {"x": 1, "y": 2}}),
                json!({"m": {"x": null}}),
                json!({"m": {"y": 2}}),
            ),
            (
                "scalar over table kept",
                json!({"m": {"x": 1}}),
                json!({"m": 5}),
                json!({"m": 5}),
            ),
            (
                "null without default stays",
                json!({}),
                json!({"z": null}),
                json!({"z": null}),
            ),
        ];
        for (name, defaults, user, expect) in cases {
            for helm in [HelmVersion::V3, HelmVersion::V4] {
                let got =
                    coalesce_stored(Some(&map(defaults.clone())), Some(&map(user.clone())), helm);
                assert_eq!(Value::Object(got), expect, "{name} ({helm:?})");
            }
        }
    }

    #[test]
    fn a_null_over_a_null_default() {
        // Helm 4.1 keeps it in nested tables only; at the top level both delete it (as
        // `helm get values --all` of each shows, kantup-k8s-apply's tests/release_records.rs).
        let defaults = map(json!({"top": null, "t": {"nested": null}}));
        let user = map(json!({"top": null, "t": {"nested": null}}));
        let v3 = coalesce_stored(Some(&defaults), Some(&user), HelmVersion::V3);
        assert_eq!(Value::Object(v3), json!({"t": {}}));
        let v4 = coalesce_stored(Some(&defaults), Some(&user), HelmVersion::V4);
        assert_eq!(Value::Object(v4), json!({"t": {"nested": null}}));
    }

    #[test]
    fn no_user_values_gives_defaults() {
        let defaults = map(json!({"a": {"b": 1}}));
        assert_eq!(
            coalesce_stored(Some(&defaults), None, HelmVersion::V3),
            defaults
        );
    }
}
