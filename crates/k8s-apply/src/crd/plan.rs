//! What applying a CRD would change: a structural diff of the object the API server would
//! store (its answer to a dry-run apply) against the live object's spec, the fields other
//! field managers own that the apply takes over, and whether the server would refuse it.
//!
//! Without a dry-run answer (the server refused the apply), the desired spec gets the fields
//! the API server defaults filled in so they do not show up as changes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::conflicts::FieldConflict;

/// What applying one CRD would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// The CRD does not exist yet.
    New,
    /// The CRD exists and its spec differs.
    Changed,
    /// The CRD exists with the same spec.
    Unchanged,
}

/// The plan for one CRD.
#[derive(Debug, Clone, Serialize)]
pub struct CrdPlan {
    /// The CRD name.
    pub name: String,
    /// `file#index` of the manifest.
    pub origin: String,
    /// New, changed or unchanged.
    pub action: PlanAction,
    /// The differences (empty unless `action` is `Changed`).
    pub changes: CrdChanges,
    /// Removed versions still listed in the live `status.storedVersions`; applying is refused
    /// unless version removal is allowed, and then first removes them from
    /// `status.storedVersions` (the API server refuses a spec without them otherwise).
    pub blocked_versions: Vec<String>,
    /// Fields of the live object owned by other field managers that this apply sets to other
    /// values: taken over (or, when conflicts are refused, the reason to stop).
    pub conflicts: Vec<FieldConflict>,
    /// Why the API server would refuse this CRD (its answer to the dry-run apply, or the
    /// stored object exceeding etcd's request limit), in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// The size in bytes of the object as the server would store it (JSON), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<usize>,
}

impl CrdPlan {
    /// The managers whose fields this apply takes over, in order of first appearance.
    pub fn conflicting_managers(&self) -> Vec<&str> {
        let mut managers: Vec<&str> = Vec::new();
        for conflict in &self.conflicts {
            if !managers.contains(&conflict.manager.as_str()) {
                managers.push(&conflict.manager);
            }
        }
        managers
    }
}

/// Differences between two CRD specs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrdChanges {
    /// Versions in the desired spec only.
    pub versions_added: Vec<String>,
    /// Versions in the live spec only.
    pub versions_removed: Vec<String>,
    /// Versions in both that differ.
    pub versions_changed: Vec<VersionChange>,
    /// Other top-level spec fields that differ (`names`, `scope`, `conversion`, ...).
    pub spec_fields_changed: Vec<String>,
    /// Metadata maps that differ (`annotations`, `labels`): a chart's CRD labels and
    /// annotations (cert-manager's `inject-ca-from`, say) are applied with the spec.
    pub metadata_fields_changed: Vec<String>,
}

impl CrdChanges {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.versions_added.is_empty()
            && self.versions_removed.is_empty()
            && self.versions_changed.is_empty()
            && self.spec_fields_changed.is_empty()
            && self.metadata_fields_changed.is_empty()
    }
}

/// How one version differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    /// The version name (`v1beta1`).
    pub name: String,
    /// Fields of the version other than the schema that differ (`served`, `storage`, ...).
    pub fields_changed: Vec<String>,
    /// Differences inside `schema.openAPIV3Schema`.
    pub schema: Vec<SchemaChange>,
}

/// One difference inside an OpenAPI v3 schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    /// Dotted path inside `openAPIV3Schema`, e.g. `properties.spec.properties.replicas.type`.
    pub path: String,
    /// Added, removed or changed.
    pub kind: SchemaChangeKind,
}

/// The kind of a [`SchemaChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaChangeKind {
    /// Only in the desired schema.
    Added,
    /// Only in the live schema.
    Removed,
    /// In both with different values.
    Changed,
}

/// Compares a desired CRD `spec` (as written in the chart) with the live object's `spec`.
///
/// The desired side gets the API server's defaults first (`names.singular`,
/// `names.listKind`, `conversion.strategy: None`, webhook service port 443,
/// `preserveUnknownFields: false`), so a CRD applied unchanged compares equal.
///
/// ```
/// use serde_json::json;
/// let desired = json!({"group": "example.com", "scope": "Namespaced",
///   "names": {"kind": "Foo", "plural": "foos"},
///   "versions": [{"name": "v1", "served": true, "storage": true,
///     "schema": {"openAPIV3Schema": {"type": "object",
///       "properties": {"size": {"type": "integer"}}}}}]});
/// let mut live = desired.clone();
/// live["names"]["singular"] = json!("foo");
/// live["names"]["listKind"] = json!("FooList");
/// live["conversion"] = json!({"strategy": "None"});
/// assert!(kantup_k8s_apply::crd::diff_spec(&desired, &live).is_empty());
/// live["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["size"]["type"] = json!("string");
/// let changes = kantup_k8s_apply::crd::diff_spec(&desired, &live);
/// assert_eq!(changes.versions_changed[0].schema[0].path, "properties.size.type");
/// ```
pub fn diff_spec(desired: &Value, live: &Value) -> CrdChanges {
    let desired = with_server_defaults(desired);
    let live = normalize(live);
    let mut changes = CrdChanges::default();

    let empty = Map::new();
    let desired_obj = desired.as_object().unwrap_or(&empty);
    let live_obj = live.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = desired_obj.keys().chain(live_obj.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if key == "versions" {
            continue;
        }
        if desired_obj.get(key) != live_obj.get(key) {
            changes.spec_fields_changed.push(key.clone());
        }
    }

    let desired_versions = versions_by_name(desired_obj.get("versions"));
    let live_versions = versions_by_name(live_obj.get("versions"));
    for (name, desired_version) in &desired_versions {
        match live_versions.iter().find(|(n, _)| n == name) {
            None => changes.versions_added.push(name.clone()),
            Some((_, live_version)) => {
                if let Some(change) = diff_version(name, desired_version, live_version) {
                    changes.versions_changed.push(change);
                }
            }
        }
    }
    for (name, _) in &live_versions {
        if !desired_versions.iter().any(|(n, _)| n == name) {
            changes.versions_removed.push(name.clone());
        }
    }
    changes
}

/// Compares two CRD specs as written in charts (neither from a server): both get the API
/// server's defaults, so only what the charts really change shows.
pub fn diff_written_specs(new: &Value, old: &Value) -> CrdChanges {
    diff_spec(new, &with_server_defaults(old))
}

/// The metadata maps (`annotations`, `labels`) that applying changes: the object as the server
/// would store it (its answer to the dry-run apply) against the live one; without that answer,
/// the manifest's entries the live object lacks or holds with another value.
pub(crate) fn diff_metadata(
    stored: Option<&ObjectMeta>,
    manifest: &ObjectMeta,
    live: &ObjectMeta,
) -> Vec<String> {
    type Entries = BTreeMap<String, String>;
    type Field = fn(&ObjectMeta) -> Option<&Entries>;
    let maps: [(&str, Field); 2] = [
        ("annotations", |m| m.annotations.as_ref()),
        ("labels", |m| m.labels.as_ref()),
    ];
    let empty = Entries::new();
    maps.into_iter()
        .filter(|(_, entries)| {
            let live = entries(live).unwrap_or(&empty);
            match stored {
                Some(stored) => entries(stored).unwrap_or(&empty) != live,
                None => entries(manifest)
                    .unwrap_or(&empty)
                    .iter()
                    .any(|(k, v)| live.get(k) != Some(v)),
            }
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

fn versions_by_name(versions: Option<&Value>) -> Vec<(String, Map<String, Value>)> {
    versions
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .map(|v| {
                    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                    (name.to_string(), v.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn diff_version(
    name: &str,
    desired: &Map<String, Value>,
    live: &Map<String, Value>,
) -> Option<VersionChange> {
    let mut keys: Vec<&String> = desired.keys().chain(live.keys()).collect();
    keys.sort();
    keys.dedup();
    let fields_changed: Vec<String> = keys
        .into_iter()
        .filter(|k| *k != "schema" && desired.get(*k) != live.get(*k))
        .cloned()
        .collect();
    let schema_of = |v: &Map<String, Value>| {
        v.get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut schema = Vec::new();
    diff_values("", &schema_of(desired), &schema_of(live), &mut schema);
    if fields_changed.is_empty() && schema.is_empty() {
        None
    } else {
        Some(VersionChange {
            name: name.to_string(),
            fields_changed,
            schema,
        })
    }
}

/// Structural diff: reports the highest path at which the two values part.
fn diff_values(path: &str, desired: &Value, live: &Value, out: &mut Vec<SchemaChange>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (key, dv) in d {
                match l.get(key) {
                    Some(lv) => diff_values(&join(key), dv, lv, out),
                    None => out.push(SchemaChange {
                        path: join(key),
                        kind: SchemaChangeKind::Added,
                    }),
                }
            }
            for key in l.keys().filter(|k| !d.contains_key(*k)) {
                out.push(SchemaChange {
                    path: join(key),
                    kind: SchemaChangeKind::Removed,
                });
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                diff_values(&format!("{path}[{i}]"), dv, lv, out);
            }
        }
        (d, l) if d == l => {}
        (Value::Null, _) => out.push(SchemaChange {
            path: path.to_string(),
            kind: SchemaChangeKind::Removed,
        }),
        (_, Value::Null) => out.push(SchemaChange {
            path: path.to_string(),
            kind: SchemaChangeKind::Added,
        }),
        _ => out.push(SchemaChange {
            path: path.to_string(),
            kind: SchemaChangeKind::Changed,
        }),
    }
}

/// Drops fields whose value means "unset" so that `false`/absent compare equal.
fn normalize(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(obj) = spec.as_object_mut() {
        if obj.get("preserveUnknownFields") == Some(&Value::Bool(false)) {
            obj.remove("preserveUnknownFields");
        }
        if let Some(Value::Array(versions)) = obj.get_mut("versions") {
            for version in versions.iter_mut().filter_map(Value::as_object_mut) {
                for flag in ["deprecated"] {
                    if version.get(flag) == Some(&Value::Bool(false)) {
                        version.remove(flag);
                    }
                }
            }
        }
    }
    spec
}

/// The desired spec as the API server would store it.
fn with_server_defaults(spec: &Value) -> Value {
    let mut spec = normalize(spec);
    let Some(obj) = spec.as_object_mut() else {
        return spec;
    };
    if let Some(Value::Object(names)) = obj.get_mut("names") {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        names
            .entry("singular")
            .or_insert_with(|| Value::String(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert_with(|| Value::String(format!("{kind}List")));
    }
    let conversion = obj
        .entry("conversion")
        .or_insert_with(|| serde_json::json!({"strategy": "None"}));
    if let Some(service) = conversion
        .pointer_mut("/webhook/clientConfig/service")
        .and_then(Value::as_object_mut)
    {
        service.entry("port").or_insert(Value::from(443));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(versions: Value) -> Value {
        json!({"group": "example.com", "scope": "Namespaced",
               "names": {"kind": "Widget", "plural": "widgets"}, "versions": versions})
    }

    fn live_of(desired: &Value) -> Value {
        let mut live = desired.clone();
        live["names"]["singular"] = json!("widget");
        live["names"]["listKind"] = json!("WidgetList");
        live["conversion"] = json!({"strategy": "None"});
        live
    }

    fn v(name: &str, storage: bool, props: Value) -> Value {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "properties": props}}})
    }

    #[test]
    fn table() {
        let base = spec(json!([v("v1", true, json!({"size": {"type": "integer"}}))]));
        struct Case {
            name: &'static str,
            desired: Value,
            expect: CrdChanges,
        }
        let cases = vec![
            Case {
                name: "identical after server defaults",
                desired: base.clone(),
                expect: CrdChanges::default(),
            },
            Case {
                name: "version added",
                desired: spec(json!([
                    v("v1", true, json!({"size": {"type": "integer"}})),
                    v("v2", false, json!({}))
                ])),
                expect: CrdChanges {
                    versions_added: vec!["v2".into()],
                    ..Default::default()
                },
            },
            Case {
                name: "version removed",
                desired: spec(json!([v("v2", true, json!({"size": {"type": "integer"}}))])),
                expect: CrdChanges {
                    versions_added: vec!["v2".into()],
                    versions_removed: vec!["v1".into()],
                    ..Default::default()
                },
            },
            Case {
                name: "schema property added and type changed",
                desired: spec(json!([v(
                    "v1",
                    true,
                    json!({"size": {"type": "string"}, "color": {"type": "string"}})
                )])),
                expect: CrdChanges {
                    versions_changed: vec![VersionChange {
                        name: "v1".into(),
                        fields_changed: vec![],
                        schema: vec![
                            SchemaChange {
                                path: "properties.size.type".into(),
                                kind: SchemaChangeKind::Changed,
                            },
                            SchemaChange {
                                path: "properties.color".into(),
                                kind: SchemaChangeKind::Added,
                            },
                        ],
                    }],
                    ..Default::default()
                },
            },
            Case {
                name: "schema property removed",
                desired: spec(json!([v("v1", true, json!({}))])),
                expect: CrdChanges {
                    versions_changed: vec![VersionChange {
                        name: "v1".into(),
                        fields_changed: vec![],
                        schema: vec![SchemaChange {
                            path: "properties.size".into(),
                            kind: SchemaChangeKind::Removed,
                        }],
                    }],
                    ..Default::default()
                },
            },
            Case {
                name: "served flag and scope changed",
                desired: {
                    let mut s = spec(json!([{"name": "v1", "served": false, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                        "properties": {"size": {"type": "integer"}}}}}]));
                    s["scope"] = json!("Cluster");
                    s
                },
                expect: CrdChanges {
                    versions_changed: vec![VersionChange {
                        name: "v1".into(),
                        fields_changed: vec!["served".into()],
                        schema: vec![],
                    }],
                    spec_fields_changed: vec!["scope".into()],
                    ..Default::default()
                },
            },
        ];
        let live = live_of(&base);
        for case in cases {
            assert_eq!(
                diff_spec(&case.desired, &live),
                case.expect,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn explicit_defaults_equal_omitted_ones() {
        let mut desired = spec(json!([v("v1", true, json!({}))]));
        desired["preserveUnknownFields"] = json!(false);
        desired["conversion"] = json!({"strategy": "None"});
        let live = live_of(&spec(json!([v("v1", true, json!({}))])));
        assert!(diff_spec(&desired, &live).is_empty());
    }

    #[test]
    fn metadata_maps_are_compared() {
        let meta = |labels: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        let live = meta(&[("a", "1"), ("other", "x")]);
        // The dry-run answer: exact, a removed label counts.
        assert_eq!(
            diff_metadata(Some(&meta(&[("a", "1")])), &meta(&[]), &live),
            ["labels"]
        );
        assert!(diff_metadata(Some(&live), &meta(&[]), &live).is_empty());
        // Without one: the manifest's entries, others' labels left alone.
        assert!(diff_metadata(None, &meta(&[("a", "1")]), &live).is_empty());
        assert_eq!(diff_metadata(None, &meta(&[("a", "2")]), &live), ["labels"]);
    }

    #[test]
    fn non_default_names_are_compared() {
        let mut desired = spec(json!([v("v1", true, json!({}))]));
        desired["names"]["shortNames"] = json!(["wd"]);
        let live = live_of(&spec(json!([v("v1", true, json!({}))])));
        assert_eq!(
            diff_spec(&desired, &live).spec_fields_changed,
            vec!["names"]
        );
    }
}
