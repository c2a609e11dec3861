//! The referrers fallback index (the distribution spec's "referrers tag schema"): on a
//! registry without the referrers API, the referrers of a manifest are listed by an OCI index
//! tagged `sha256-<hex>` in its repository, which every client that pushes a referrer
//! updates: read what is there, add a descriptor for each new referrer, push it back.
//!
//! The descriptor of a referrer is the spec's: `mediaType`, `digest` and `size` of the pushed
//! manifest, its `artifactType` (the config's media type when the manifest has none), and all
//! of the manifest's annotations. Existing entries are kept as they are (fields kantup does not
//! know included); entries are sorted by digest as go-containerregistry (and so cosign) sorts
//! them, so two pushers adding the same referrers in another order write the same bytes.

use kantup_bundle::{Digest, media_types};
use serde_json::{Map, Value};

/// The fallback-index entry of a referrer: a descriptor of `manifest` (whose media type is
/// `media_type`), with the spec's `artifactType` and `annotations`.
///
/// ```
/// use kantup_registry::push::fallback_index::referrer_descriptor;
/// let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json"},"artifactType":"application/example","annotations":{"b":"2","a":"1"}}"#;
/// let d = referrer_descriptor(manifest, "application/vnd.oci.image.manifest.v1+json").unwrap();
/// assert_eq!(d["artifactType"], "application/example");
/// assert_eq!(d["annotations"]["a"], "1");
/// assert_eq!(d["size"], manifest.len());
/// ```
pub fn referrer_descriptor(manifest: &[u8], media_type: &str) -> Result<Value, String> {
    let parsed: Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("the referrer manifest is not JSON: {e}"))?;
    let non_empty = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let artifact_type = parsed
        .get("artifactType")
        .and_then(non_empty)
        .or_else(|| parsed.pointer("/config/mediaType").and_then(non_empty));
    // Field order as go-containerregistry's `v1.Descriptor` serializes it, annotations sorted
    // as Go sorts map keys.
    let mut out = Map::new();
    out.insert("mediaType".into(), Value::from(media_type));
    out.insert("size".into(), Value::from(manifest.len() as u64));
    out.insert(
        "digest".into(),
        Value::from(Digest::of(manifest).to_string()),
    );
    if let Some(annotations) = parsed.get("annotations").and_then(Value::as_object)
        && !annotations.is_empty()
    {
        let mut sorted: Vec<(&String, &Value)> = annotations.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        out.insert(
            "annotations".into(),
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        );
    }
    if let Some(artifact_type) = artifact_type {
        out.insert("artifactType".into(), Value::from(artifact_type));
    }
    Ok(Value::Object(out))
}

/// `existing` (the bytes tagged `sha256-<hex>`, if any) with every descriptor of `add` whose
/// digest it does not list yet; `Ok(None)` when it already lists them all (nothing to push).
/// Every existing entry is kept. An `existing` that is not an OCI index of schema version 2
/// is an error: that tag holds something else, which is not replaced.
///
/// ```
/// use kantup_registry::push::fallback_index::merge;
/// let a = serde_json::json!({"mediaType": "m", "size": 1, "digest": "sha256:aa"});
/// let b = serde_json::json!({"mediaType": "m", "size": 2, "digest": "sha256:bb"});
/// let first = merge(None, &[b.clone()]).unwrap().unwrap();
/// let both = merge(Some(&first), &[a.clone(), b.clone()]).unwrap().unwrap();
/// assert_eq!(merge(Some(&both), &[a, b]).unwrap(), None);
/// ```
pub fn merge(existing: Option<&[u8]>, add: &[Value]) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        None => {
            let mut index = Map::new();
            index.insert("schemaVersion".into(), Value::from(2));
            index.insert("mediaType".into(), Value::from(media_types::OCI_INDEX));
            index.insert("manifests".into(), Value::Array(Vec::new()));
            index
        }
        Some(bytes) => {
            let Ok(Value::Object(index)) = serde_json::from_slice::<Value>(bytes) else {
                return Err("it holds something that is not a JSON object".into());
            };
            if index.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
                return Err(format!(
                    "it holds schemaVersion {}, not an OCI index of schema version 2",
                    index.get("schemaVersion").unwrap_or(&Value::Null)
                ));
            }
            let media_type = index.get("mediaType").and_then(Value::as_str);
            if media_type != Some(media_types::OCI_INDEX) {
                return Err(format!(
                    "it holds a manifest of media type {media_type:?}, not an OCI index"
                ));
            }
            if !index.get("manifests").is_none_or(Value::is_array) {
                return Err("its `manifests` is not a list".into());
            }
            index
        }
    };
    let manifests = index
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .expect("checked to be a list");
    let listed = |manifests: &[Value], digest: &Value| {
        manifests.iter().any(|m| m.get("digest") == Some(digest))
    };
    let mut changed = false;
    for descriptor in add {
        let digest = descriptor.get("digest").unwrap_or(&Value::Null);
        if !listed(manifests, digest) {
            manifests.push(descriptor.clone());
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let key = |m: &Value| {
        m.get("digest")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    manifests.sort_by_key(key);
    Ok(Some(
        serde_json::to_vec(&Value::Object(index)).expect("JSON values serialize"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_index_is_what_go_containerregistry_writes_for_an_unannotated_referrer() {
        // The bytes cosign (go-containerregistry) writes for one referrer without annotations.
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"artifactType":"application/x"}"#;
        let d = referrer_descriptor(manifest, media_types::OCI_MANIFEST).unwrap();
        let index = merge(None, &[d]).unwrap().unwrap();
        let want = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":{},"digest":"{}","artifactType":"application/x"}}]}}"#,
            manifest.len(),
            Digest::of(manifest)
        );
        assert_eq!(String::from_utf8(index).unwrap(), want);
    }

    #[test]
    fn artifact_type_falls_back_to_the_config_media_type() {
        let d = referrer_descriptor(
            br#"{"config":{"mediaType":"application/vnd.example.config"}}"#,
            media_types::OCI_MANIFEST,
        )
        .unwrap();
        assert_eq!(d["artifactType"], "application/vnd.example.config");
        assert!(d.get("annotations").is_none());
        let d = referrer_descriptor(br#"{"layers":[]}"#, media_types::OCI_MANIFEST).unwrap();
        assert!(d.get("artifactType").is_none());
        assert!(referrer_descriptor(b"not json", media_types::OCI_MANIFEST).is_err());
    }

    #[test]
    fn merging_keeps_every_existing_entry_and_field() {
        let existing = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": [
                {"mediaType": "m", "size": 9, "digest": "sha256:ff", "x-other": {"kept": true}},
                {"mediaType": "m", "size": 8, "digest": "sha256:ff"}
            ],
            "annotations": {"owner": "someone else"}
        });
        let existing = serde_json::to_vec(&existing).unwrap();
        let add = json!({"mediaType": "m", "size": 1, "digest": "sha256:00"});
        let merged: Value = serde_json::from_slice(
            &merge(Some(&existing), std::slice::from_ref(&add))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let manifests = merged["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 3);
        assert_eq!(manifests[0], add);
        assert_eq!(manifests[1]["x-other"]["kept"], true);
        assert_eq!(merged["annotations"]["owner"], "someone else");
        // Already listed (by digest): nothing to push.
        let again = serde_json::to_vec(&merged).unwrap();
        assert_eq!(merge(Some(&again), &[add]).unwrap(), None);
    }

    #[test]
    fn a_tag_holding_something_else_is_not_replaced() {
        let add = [json!({"mediaType": "m", "size": 1, "digest": "sha256:00"})];
        for other in [
            json!({"schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST, "layers": []}),
            json!({"schemaVersion": 2, "mediaType": media_types::DOCKER_MANIFEST_LIST, "manifests": []}),
            json!({"schemaVersion": 1, "mediaType": media_types::OCI_INDEX}),
            json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": {}}),
            json!([1, 2]),
        ] {
            let bytes = serde_json::to_vec(&other).unwrap();
            assert!(merge(Some(&bytes), &add).is_err(), "{other}");
        }
    }
}
