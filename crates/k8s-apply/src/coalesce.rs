//! Helm's value coalescing as `helm get values --all` applies it: the chart's default values
//! under the user-supplied ones (`chartutil.CoalesceValues`), delegated to
//! `kantup-helm-values`, which implements Helm 3.17's and 4.1's rules (a user value wins over a
//! default; maps merge recursively; a user `null` deletes the default key, at the top level
//! always, in nested tables as each Helm version does). The stored chart has no subcharts (Helm
//! does not serialize them into the record), so only the chart's own values are coalesced.

use kantup_helm_values::chart::Chart;
use kantup_helm_values::strvals::HelmVersion;
use serde_json::{Map, Value};

/// `user` coalesced over `defaults` (both may be absent), with Helm `helm`'s rules.
pub fn coalesce_values(
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
    kantup_helm_values::coalesce::coalesce_values(&chart, &user, helm)
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
                    coalesce_values(Some(&map(defaults.clone())), Some(&map(user.clone())), helm);
                assert_eq!(Value::Object(got), expect, "{name} ({helm:?})");
            }
        }
    }

    #[test]
    fn a_null_over_a_null_default() {
        // Helm 4.1 keeps it in nested tables only; at the top level both delete it (as
        // `helm get values --all` of each shows, tests/release_records.rs).
        let defaults = map(json!({"top": null, "t": {"nested": null}}));
        let user = map(json!({"top": null, "t": {"nested": null}}));
        let v3 = coalesce_values(Some(&defaults), Some(&user), HelmVersion::V3);
        assert_eq!(Value::Object(v3), json!({"t": {}}));
        let v4 = coalesce_values(Some(&defaults), Some(&user), HelmVersion::V4);
        assert_eq!(Value::Object(v4), json!({"t": {"nested": null}}));
    }

    #[test]
    fn no_user_values_gives_defaults() {
        let defaults = map(json!({"a": {"b": 1}}));
        assert_eq!(
            coalesce_values(Some(&defaults), None, HelmVersion::V3),
            defaults
        );
    }
}
