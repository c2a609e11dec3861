//! A values diff: which paths were added, removed or changed, old -> new.

use serde::Serialize;
use serde_json::Value;

use crate::value::to_go_json;

/// One difference at a values path (`image.tag`, `list[2]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// Only in the new values.
    Added {
        /// Where.
        path: String,
        /// The new value.
        new: Value,
    },
    /// Only in the old values.
    Removed {
        /// Where.
        path: String,
        /// The old value.
        old: Value,
    },
    /// In both, different.
    Changed {
        /// Where.
        path: String,
        /// Before.
        old: Value,
        /// After.
        new: Value,
    },
}

/// Compares two values trees, recursing into maps and, index by index, into lists. Changes
/// come out sorted by path.
///
/// ```
/// use serde_json::json;
/// let changes = kantup_helm_values::diff::diff(&json!({"a": 1, "b": {"c": [1, 2]}}),
///                                               &json!({"b": {"c": [1, 3]}, "d": true}));
/// assert_eq!(kantup_helm_values::diff::to_text(&changes),
///     "- a: 1\n~ b.c[1]: 2 -> 3\n+ d: true\n");
/// ```
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), old, new, &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let seg = if simple {
        key.to_string()
    } else {
        format!("\"{}\"", key.replace('"', "\\\""))
    };
    if prefix.is_empty() {
        seg
    } else {
        format!("{prefix}.{seg}")
    }
}

/// One map key or list index of both sides: compared further when both have it, else added or
/// removed.
fn walk_entry(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        (Some(x), Some(y)) => walk(path, x, y, out),
        (Some(x), None) => out.push(Change::Removed {
            path,
            old: x.clone(),
        }),
        (None, Some(y)) => out.push(Change::Added {
            path,
            new: y.clone(),
        }),
        (None, None) => {}
    }
}

fn walk(path: String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk_entry(join(&path, k), a.get(k), b.get(k), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                walk_entry(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) => {
            // Numbers compare by value: 1 from --set equals 1.0 from a file.
            let same = match (a, b) {
                (Value::Number(x), Value::Number(y)) => {
                    x.as_f64() == y.as_f64() && to_go_json(a) == to_go_json(b)
                }
                _ => a == b,
            };
            if !same {
                out.push(Change::Changed {
                    path,
                    old: a.clone(),
                    new: b.clone(),
                });
            }
        }
    }
}

/// One line per change: `+ path: new`, `- path: old`, `~ path: old -> new` (values as JSON).
pub fn to_text(changes: &[Change]) -> String {
    let mut s = String::new();
    for c in changes {
        match c {
            Change::Added { path, new } => s.push_str(&format!("+ {path}: {}\n", to_go_json(new))),
            Change::Removed { path, old } => {
                s.push_str(&format!("- {path}: {}\n", to_go_json(old)))
            }
            Change::Changed { path, old, new } => s.push_str(&format!(
                "~ {path}: {} -> {}\n",
                to_go_json(old),
                to_go_json(new)
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_table() {
        let cases: &[(Value, Value, &str)] = &[
            (json!({}), json!({}), ""),
            (json!({"a": 1}), json!({"a": 1.0}), ""),
            (json!({"a": 1}), json!({"a": "1"}), "~ a: 1 -> \"1\"\n"),
            (json!({"a": {"b": null}}), json!({"a": {}}), "- a.b: null\n"),
            (
                json!({"a": [1]}),
                json!({"a": [1, {"x": 2}]}),
                "+ a[1]: {\"x\":2}\n",
            ),
            (
                json!({"a": {"b": 1}}),
                json!({"a": 5}),
                "~ a: {\"b\":1} -> 5\n",
            ),
            (json!({"a.b": 1}), json!({}), "- \"a.b\": 1\n"),
        ];
        for (old, new, want) in cases {
            assert_eq!(to_text(&diff(old, new)), *want, "{old} vs {new}");
        }
    }

    #[test]
    fn json_form_names_the_change() {
        let changes = diff(&json!({"a": 1}), &json!({"a": 2}));
        assert_eq!(
            serde_json::to_value(&changes).unwrap(),
            json!([{"change": "changed", "path": "a", "old": 1, "new": 2}])
        );
    }
}
