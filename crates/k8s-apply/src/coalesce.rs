//! Helm's value coalescing as `helm get values --all` applies it: the chart's default values
//! under the user-supplied ones (`chartutil.CoalesceValues`).
//!
//! This is a stand-in kept to exactly what `values backup --all` needs, until
//! `kantup-helm-values` exposes its coalescing; then this module should call it instead.
//! Rules (from Helm's `pkg/chartutil/coalesce.go`): a user value wins over a default; maps
//! merge recursively; a user `null` deletes the default key; a default map under a user
//! scalar (or the reverse) keeps the user value. The stored chart has no subcharts (Helm does
//! not serialize them into the record), so there are no dependency scopes to coalesce.

use serde_json::{Map, Value};

/// `user` coalesced over `defaults` (both may be absent).
pub fn coalesce_values(
    defaults: Option<&Map<String, Value>>,
    user: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut out = user.cloned().unwrap_or_default();
    if let Some(defaults) = defaults {
        coalesce_tables(&mut out, defaults);
    }
    out
}

fn coalesce_tables(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (key, default) in src {
        match dst.get_mut(key) {
            Some(Value::Null) => {
                dst.remove(key);
            }
            None => {
                dst.insert(key.clone(), default.clone());
            }
            Some(Value::Object(user_table)) => {
                if let Value::Object(default_table) = default {
                    coalesce_tables(user_table, default_table);
                } else {
                    tracing::warn!(
                        key,
                        "user value is a table, chart default is not; keeping the user value"
                    );
                }
            }
            Some(_) => {
                if default.is_object() {
                    tracing::warn!(
                        key,
                        "chart default is a table, user value is not; keeping the user value"
                    );
                }
            }
        }
    }
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
            let got = coalesce_values(Some(&map(defaults)), Some(&map(user)));
            assert_eq!(Value::Object(got), expect, "{name}");
        }
    }

    #[test]
    fn no_user_values_gives_defaults() {
        let defaults = map(json!({"a": {"b": 1}}));
        assert_eq!(coalesce_values(Some(&defaults), None), defaults);
    }
}
