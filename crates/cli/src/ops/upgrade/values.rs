//! The values an upgrade hands helm, and how they differ from the release's.

use std::path::Path;

use kantup_helm_values::diff::Change;
use kantup_helm_values::merge::ValueOptions;
use kantup_helm_values::strvals::HelmVersion;
use serde::Serialize;
use serde_json::{Map, Value};

use super::UpgradeError;

/// The values helm gets: the backup first (`backup`, the text of the backup file named
/// `backup_file`, read in memory exactly as `-f bak.yaml` would read it), then the user's files,
/// then the `--set` family in Helm's order, then `global.imageRegistry` as a string.
pub fn compute_values(
    inputs: &ValueOptions,
    image_registry: Option<&str>,
    backup: &str,
    backup_file: &Path,
    helm: HelmVersion,
) -> Result<Map<String, Value>, UpgradeError> {
    let mut options = inputs.clone();
    options.helm = helm;
    if let Some(registry) = image_registry {
        // Last of all, and never re-typed: a registry such as `10.16.10.111` stays a string.
        // --set-literal is applied after every other flag group, so it wins.
        if registry.contains(',') || registry.trim().is_empty() {
            return Err(UpgradeError::BadImageRegistry(registry.to_string()));
        }
        options
            .literal_values
            .push(format!("global.imageRegistry={registry}"));
    }
    Ok(options.merge_values_after(backup, &backup_file.display().to_string())?)
}

/// One changed path in the user-supplied values.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueChange {
    /// The dotted path.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The previous value (redacted under credential-like keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The new value (redacted under credential-like keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Changed paths between the previous and the new user-supplied values (helm-values' diff,
/// where numbers compare as Helm sees them). Values under a secret-looking key (password,
/// token, ...) are reported as changed but never shown.
pub fn diff_values(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<ValueChange> {
    let changes =
        kantup_helm_values::diff::diff(&Value::Object(old.clone()), &Value::Object(new.clone()));
    changes
        .into_iter()
        .map(|change| {
            let mut change = match change {
                Change::Added { path, new } => ValueChange {
                    path,
                    change: "added",
                    old: None,
                    new: Some(new),
                },
                Change::Removed { path, old } => ValueChange {
                    path,
                    change: "removed",
                    old: Some(old),
                    new: None,
                },
                Change::Changed { path, old, new } => ValueChange {
                    path,
                    change: "changed",
                    old: Some(old),
                    new: Some(new),
                },
            };
            let whole = looks_secret(&change.path);
            for value in [&mut change.old, &mut change.new].into_iter().flatten() {
                redact(value, whole);
            }
            change
        })
        .collect()
}

/// Replaces `value` (when `whole`) or every value under a secret-looking key inside it.
fn redact(value: &mut Value, whole: bool) {
    if whole {
        *value = Value::String(REDACTED.to_string());
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                redact(child, looks_secret(key));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, false)),
        _ => {}
    }
}

const REDACTED: &str = "(redacted)";

/// True when any segment of a dotted values path names a credential.
pub fn looks_secret(path: &str) -> bool {
    const WORDS: [&str; 9] = [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "credential",
        "privatekey",
        "private_key",
    ];
    path.split('.').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace('-', "_");
        WORDS.iter().any(|w| segment.contains(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A chart whose one template prints every value it was given, so two `helm template`
    /// runs render the same manifest exactly when they got the same values.
    fn values_echo_chart(dir: &Path) -> std::path::PathBuf {
        let chart = dir.join("echo");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: echo\nversion: 1.1.0\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("values.yaml"),
            "global:\n  imageRegistry: docker.io\n  pullPolicy: IfNotPresent\n\
             image:\n  repository: bitnami/nginx\n  tag: \"1.25\"\n\
             replicas: 1\nextra: {}\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("templates/values.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: echo\n\
             data:\n  values: {{ toJson .Values | quote }}\n",
        )
        .unwrap();
        chart
    }

    fn helm_template(helm: &Path, chart: &Path, extra: &[String]) -> String {
        let output = std::process::Command::new(helm)
            .args(["template", "rel"])
            .arg(chart)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} template {extra:?}: {}",
            helm.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The seed's `helm upgrade -f bak.yaml [-f user.yaml] [--set ...] --set
    /// global.imageRegistry=REG` and kantup's one computed values file must render the same.
    #[test]
    fn computed_values_render_like_the_seed_command_with_real_helm() {
        let dir = tempfile::tempdir().unwrap();
        let chart = values_echo_chart(dir.path());
        // The previous release's user values, as `helm get values -o yaml` prints them.
        let backup = dir.path().join("bak.yaml");
        std::fs::write(
            &backup,
            "global:\n  imageRegistry: old.example:5000\nreplicas: 3\n\
             image:\n  tag: \"1.24\"\nextra:\n  keep: kept\n  drop: me\n",
        )
        .unwrap();
        let backup_text = std::fs::read_to_string(&backup).unwrap();
        let user = dir.path().join("user.yaml");
        std::fs::write(&user, "image:\n  tag: \"1.26\"\nextra:\n  drop: null\n").unwrap();
        let registry = "10.16.10.111:5000";
        let with_user = |extra: ValueOptions| ValueOptions {
            value_files: vec![user.clone()],
            ..extra
        };
        let cases: Vec<(&str, ValueOptions, Vec<String>)> = vec![
            ("backup only", ValueOptions::default(), vec![]),
            (
                "backup and a values file",
                with_user(ValueOptions::default()),
                vec!["-f".into(), user.display().to_string()],
            ),
            (
                "values file and --set family",
                with_user(ValueOptions {
                    values: vec!["replicas=5,image.pullSecrets[0]=regcred".into()],
                    string_values: vec!["extra.port=8080".into()],
                    json_values: vec![r#"extra.list=[1,"two"]"#.into()],
                    ..Default::default()
                }),
                vec![
                    "-f".into(),
                    user.display().to_string(),
                    "--set".into(),
                    "replicas=5,image.pullSecrets[0]=regcred".into(),
                    "--set-string".into(),
                    "extra.port=8080".into(),
                    "--set-json".into(),
                    r#"extra.list=[1,"two"]"#.into(),
                ],
            ),
            (
                "a --set that names the registry too",
                ValueOptions {
                    values: vec!["global.imageRegistry=x.io".into()],
                    ..Default::default()
                },
                vec!["--set".into(), "global.imageRegistry=x.io".into()],
            ),
        ];
        for (helm_name, helm, version) in [
            ("helm 3", kantup_test_support::helm3(), HelmVersion::V3),
            ("helm 4", kantup_test_support::helm4(), HelmVersion::V4),
        ] {
            for (case, inputs, flags) in &cases {
                let merged =
                    compute_values(inputs, Some(registry), &backup_text, &backup, version).unwrap();
                let computed = dir.path().join("computed.yaml");
                std::fs::write(
                    &computed,
                    kantup_helm_values::yaml::to_yaml(&Value::Object(merged)),
                )
                .unwrap();
                let ours = helm_template(
                    &helm,
                    &chart,
                    &["-f".into(), computed.display().to_string()],
                );

                let mut seed: Vec<String> = vec!["-f".into(), backup.display().to_string()];
                seed.extend(flags.iter().cloned());
                seed.extend(["--set".into(), format!("global.imageRegistry={registry}")]);
                let theirs = helm_template(&helm, &chart, &seed);
                assert_eq!(ours, theirs, "{helm_name}, {case}");
                assert!(ours.contains(registry), "{helm_name}, {case}: {ours}");
            }
        }
    }

    #[test]
    fn a_registry_that_is_not_a_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("bak.yaml");
        std::fs::write(&backup, "").unwrap();
        for bad in ["", "a,b"] {
            let err = compute_values(
                &ValueOptions::default(),
                Some(bad),
                "",
                &backup,
                HelmVersion::V3,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("--image-registry"), "{err}");
        }
    }

    #[test]
    fn numbers_from_values_files_equal_the_stored_release_numbers() {
        // A release stored `replicas: 3`; the values file read back gives 3.0.
        let stored = json!({"replicas": 3, "ports": [80, 443], "ratio": 0.5});
        let from_file = json!({"replicas": 3.0, "ports": [80.0, 443.0], "ratio": 0.5});
        let map = |v: &Value| v.as_object().unwrap().clone();
        assert!(diff_values(&map(&stored), &map(&from_file)).is_empty());
        for different in [
            json!({"replicas": 4, "ports": [80, 443], "ratio": 0.5}),
            json!({"replicas": "3", "ports": [80, 443], "ratio": 0.5}),
            json!({"replicas": 3, "ports": [80], "ratio": 0.5}),
            json!({"replicas": 3, "ports": [80, 443], "ratio": 0.5, "extra": null}),
        ] {
            assert!(
                !diff_values(&map(&stored), &map(&different)).is_empty(),
                "{different}"
            );
        }
    }

    #[test]
    fn value_changes_never_show_credentials() {
        let old = json!({"auth": {"rootPassword": "hunter2", "user": "a"}, "apiToken": "t1"});
        let new =
            json!({"auth": {"rootPassword": "s3cret!", "user": "b"}, "tls": {"privateKey": "k"}});
        let changes = diff_values(old.as_object().unwrap(), new.as_object().unwrap());
        let text = serde_json::to_string(&changes).unwrap();
        for secret in ["hunter2", "s3cret!", "t1", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["apiToken", "auth.rootPassword", "auth.user", "tls"],
            "every change is still listed"
        );
        assert_eq!(
            changes[2].new,
            Some(json!("b")),
            "ordinary values are shown"
        );
        assert!(looks_secret("existingSecret") && !looks_secret("image.tag"));
    }

    #[test]
    fn value_changes_list_leaf_paths() {
        let old = json!({"global": {"imageRegistry": "a"}, "keep": 1, "gone": true});
        let new = json!({"global": {"imageRegistry": "b"}, "keep": 1, "extra": [1]});
        let changes = diff_values(old.as_object().unwrap(), new.as_object().unwrap());
        let summary: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("extra", "added"),
                ("global.imageRegistry", "changed"),
                ("gone", "removed")
            ]
        );
    }
}
