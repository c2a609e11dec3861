//! Helm 3 / Helm 4 release records: decoding (pure, from fixtures), and reading the records the
//! real helm 3.17 and 4.1 write through both storage drivers on the real kube-apiserver (see
//! `common`): history with real paging, values backups against `helm get values`, and errors.
//!
//! `fixtures/release-helm4.json` is real output of `helm 4.1 install demo ./demo
//! --dry-run=client -o json --set replicaCount=2 --set image.tag=1.2.3` (the chart from
//! `helm create demo`, templates trimmed to two) — the same `release/v1` JSON the storage
//! driver gzips. `release-helm3.json` is that record reshaped to Helm 3's struct: no
//! `apply_method`, no `modtime` fields, and `info.deleted` written as the zero time.

#[macro_use]
mod common;

use base64::Engine;
use common::*;
use kantup_helm_values::release::StoredValues;
use kantup_k8s_apply::release::{
    Release, ReleaseStatus, ReleaseStore, StorageDriver, decode_release,
};
use serde_json::json;

/// The values a record stores, read by helm-values' rules for the Helm that wrote it.
fn stored(release: &Release) -> StoredValues<'_> {
    StoredValues::of_record(
        release.chart_values(),
        release.config.as_ref(),
        release.written_by_helm4(),
    )
}

/// What `helm get values [--all]` shows for `release`, as JSON.
fn release_values(release: &Release, all: bool) -> serde_json::Value {
    stored(release).values(all)
}

/// What `helm get values [--all] -o yaml` prints for `release`.
fn values_yaml(release: &Release, all: bool) -> kantup_helm_values::Result<String> {
    stored(release).to_yaml(&release.name, all)
}

const NS: &str = "kant-system";

// ---------------------------------------------------------------------------------------------
// Decoding (pure)

#[test]
fn decodes_helm3_and_helm4_records() {
    for (file, apply_method) in [
        ("release-helm3.json", None),
        ("release-helm4.json", Some("ssa")),
    ] {
        let encoded = helm_encode(&fixture(file));
        let release = decode_release(encoded.as_bytes()).unwrap();
        assert_eq!(release.name, "demo", "{file}");
        assert_eq!(release.version, 1, "{file}");
        assert_eq!(release.namespace, "demo-ns", "{file}");
        assert_eq!(release.status(), ReleaseStatus::PendingInstall, "{file}");
        let meta = release.chart_metadata().unwrap();
        assert_eq!(
            (meta.name.as_str(), meta.version.as_str()),
            ("demo", "0.1.0")
        );
        assert_eq!(meta.app_version, "1.16.0");
        assert_eq!(release.apply_method.as_deref(), apply_method, "{file}");
        assert_eq!(
            release_values(&release, false),
            json!({"image": {"tag": "1.2.3"}, "replicaCount": 2}),
            "{file}"
        );
    }
}

#[test]
fn every_helm_status_decodes() {
    let statuses = [
        ("deployed", ReleaseStatus::Deployed),
        ("superseded", ReleaseStatus::Superseded),
        ("failed", ReleaseStatus::Failed),
        ("uninstalled", ReleaseStatus::Uninstalled),
        ("uninstalling", ReleaseStatus::Uninstalling),
        ("pending-install", ReleaseStatus::PendingInstall),
        ("pending-upgrade", ReleaseStatus::PendingUpgrade),
        ("pending-rollback", ReleaseStatus::PendingRollback),
        ("something-new", ReleaseStatus::Unknown),
    ];
    for (text, expected) in statuses {
        let release = revision("release-helm4.json", "r", NS, 1, text);
        let decoded = decode_release(helm_encode(&release).as_bytes()).unwrap();
        assert_eq!(decoded.status(), expected, "{text}");
        if expected != ReleaseStatus::Unknown {
            assert_eq!(decoded.status().as_str(), text);
        }
    }
}

#[test]
fn uncompressed_and_broken_records() {
    // Helm falls back to plain JSON when the gzip magic is missing.
    let plain = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&fixture("release-helm3.json")).unwrap());
    assert_eq!(decode_release(plain.as_bytes()).unwrap().name, "demo");

    let cases = [
        ("!!not base64!!".to_string(), "not base64"),
        (
            base64::engine::general_purpose::STANDARD.encode([0x1f, 0x8b, 0x08, 0, 1, 2]),
            "not valid gzip",
        ),
        (
            base64::engine::general_purpose::STANDARD.encode(b"{\"name\": 5"),
            "does not parse",
        ),
    ];
    for (data, expected) in cases {
        let err = decode_release(data.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{data}: {err}");
    }
}

#[test]
fn helm_driver_values() {
    for (value, expected) in [
        (None, Some(StorageDriver::Secret)),
        (Some(""), Some(StorageDriver::Secret)),
        (Some("secrets"), Some(StorageDriver::Secret)),
        (Some("configmap"), Some(StorageDriver::ConfigMap)),
        (Some("configmaps"), Some(StorageDriver::ConfigMap)),
        (Some("sql"), None),
        (Some("memory"), None),
    ] {
        assert_eq!(
            StorageDriver::from_helm_driver(value).ok(),
            expected,
            "{value:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Records the real helm writes, read from the real API server

/// `helm install` writes one record; kantup decodes it as helm reports it.
async fn installed_record(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("rec");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "1.3.0", &[]);
    run.run(&[
        "install",
        "demo",
        chart.to_str().unwrap(),
        "--set",
        "replicaCount=2,image.tag=1.2.3",
    ]);

    let object = record_object(&run, "demo", 1);
    let labels = &object["metadata"]["labels"];
    assert_eq!(
        (
            &labels["owner"],
            &labels["name"],
            &labels["status"],
            &labels["version"]
        ),
        (
            &json!("helm"),
            &json!("demo"),
            &json!("deployed"),
            &json!("1")
        )
    );
    if driver == StorageDriver::Secret {
        assert_eq!(object["type"], "helm.sh/release.v1");
    }

    let store = ReleaseStore::new(admin_client(cluster).await, &ns, driver);
    let latest = store.latest("demo").await.unwrap();
    assert_eq!(latest.object_name, "sh.helm.release.v1.demo.v1");
    assert_eq!(latest.revision, 1);
    let release = &latest.release;
    assert_eq!(
        (release.name.as_str(), release.namespace.as_str()),
        ("demo", ns.as_str())
    );
    assert_eq!(release.status(), ReleaseStatus::Deployed);
    let meta = release.chart_metadata().unwrap();
    assert_eq!(
        (
            meta.name.as_str(),
            meta.version.as_str(),
            meta.app_version.as_str()
        ),
        ("demo", "1.3.0", "2.4.1")
    );
    // Only helm 4 records how it applied (server-side by default).
    let expected_method = match helm {
        Helm::V3 => None,
        Helm::V4 => Some("ssa"),
    };
    assert_eq!(release.apply_method.as_deref(), expected_method);
    assert_eq!(
        release_values(release, false),
        json!({"replicaCount": 2, "image": {"tag": "1.2.3"}})
    );
    // helm's own view of the same record.
    let status: serde_json::Value =
        serde_json::from_str(&run.run(&["status", "demo", "-o", "json"])).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(
        release.info.as_ref().unwrap().last_deployed.as_deref(),
        status["info"]["last_deployed"].as_str()
    );
}

for_each_helm_and_driver!(helm_records_decode, installed_record);

/// Several upgrades, read one object per page: every revision comes back, in order, as
/// `helm history` lists them; other releases in the namespace are not mixed in.
async fn paged_history(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("rec-history");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "0.1.0", &[]);
    let chart = chart.to_str().unwrap();
    run.run(&["install", "demo", chart]);
    run.run(&["install", "demo-2", chart]);
    for i in 2..=5 {
        run.run(&[
            "upgrade",
            "demo",
            chart,
            "--set",
            &format!("replicaCount={i}"),
        ]);
    }
    run.run(&["upgrade", "demo-2", chart]);

    let store = ReleaseStore::new(admin_client(cluster).await, &ns, driver).with_page_size(1);
    let history = store.history("demo").await.unwrap();
    let got: Vec<(u32, String, String)> = history
        .iter()
        .map(|r| {
            (
                r.revision,
                r.release.status().to_string(),
                r.object_name.clone(),
            )
        })
        .collect();
    let helm_history: serde_json::Value =
        serde_json::from_str(&run.run(&["history", "demo", "-o", "json"])).unwrap();
    let expected: Vec<(u32, String, String)> = helm_history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let revision = h["revision"].as_u64().unwrap() as u32;
            (
                revision,
                h["status"].as_str().unwrap().to_string(),
                format!("sh.helm.release.v1.demo.v{revision}"),
            )
        })
        .collect();
    assert_eq!(expected.len(), 5);
    assert_eq!(got, expected);
    assert_eq!(
        release_values(&history[4].release, false),
        json!({"replicaCount": 5})
    );
    assert_eq!(store.revision("demo", 3).await.unwrap().revision, 3);
    let other: Vec<u32> = store
        .history("demo-2")
        .await
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(other, [1, 2]);
}

#[tokio::test]
async fn history_follows_continue_tokens_helm3_secret() {
    paged_history(
        "history_follows_continue_tokens_helm3_secret",
        Helm::V3,
        StorageDriver::Secret,
    )
    .await;
}

#[tokio::test]
async fn history_follows_continue_tokens_helm4_configmap() {
    paged_history(
        "history_follows_continue_tokens_helm4_configmap",
        Helm::V4,
        StorageDriver::ConfigMap,
    )
    .await;
}

/// Revision by revision, kantup's values backup equals `helm get values [--all] -o yaml` of the
/// same helm, compared as parsed YAML: no user values (helm prints `null`), `--set` and `-f`
/// values with nulls that delete chart defaults (and nulls over null defaults, which helm 4
/// keeps in nested tables only), lists, nested maps, globals and big numbers.
async fn values_backup(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("rec-values");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "0.1.0", &[]);
    let chart = chart.to_str().unwrap();
    let values_file = dir.path().join("values.yaml");
    std::fs::write(
        &values_file,
        "image:\n  tag: \"1.2\"\n  pullPolicy: null\nservice: {port: 8080}\ntolerations:\n- key: a\n  operator: Exists\n\
         podAnnotations: null\nglobal: {region: us, extra: {deep: [1, 2.5, true]}}\nbig: 12345678901234567890\n\
         huge: 1e+30\nquoted: \"007\"\nnullable: null\ntree: {leaf: null}\n",
    )
    .unwrap();
    run.run(&["install", "demo", chart]);
    run.run(&[
        "upgrade",
        "demo",
        chart,
        "-f",
        values_file.to_str().unwrap(),
    ]);
    run.run(&[
        "upgrade",
        "demo",
        chart,
        "--reuse-values",
        "--set",
        "replicaCount=3,service.type=null,resources.limits.cpu=100m,nullable=set",
        "--set-string",
        "image.tag=02",
    ]);
    run.run(&[
        "upgrade",
        "demo",
        chart,
        "--set-json",
        r#"extra={"a":[{"b":null}],"c":{}}"#,
    ]);

    let store = ReleaseStore::new(admin_client(cluster).await, &ns, driver);
    for revision in 1..=4u32 {
        let record = store.revision("demo", revision).await.unwrap();
        for all in [false, true] {
            let mut args = vec!["get", "values", "demo", "-o", "yaml"];
            let rev = revision.to_string();
            args.extend(["--revision", &rev]);
            if all {
                args.push("--all");
            }
            let helm_text = run.run(&args);
            let ours = values_yaml(&record.release, all).unwrap();
            let parse = |text: &str| -> serde_yaml::Value { serde_yaml::from_str(text).unwrap() };
            assert_eq!(
                parse(&ours),
                parse(&helm_text),
                "revision {revision}, all={all}:\nkantup:\n{ours}\nhelm:\n{helm_text}"
            );
            if revision == 1 && !all {
                assert_eq!(helm_text.trim(), "null");
                assert_eq!(ours, "null\n");
            }
        }
    }
}

#[tokio::test]
async fn values_backup_equals_helm_get_values_helm3() {
    values_backup(
        "values_backup_equals_helm_get_values_helm3",
        Helm::V3,
        StorageDriver::Secret,
    )
    .await;
}

#[tokio::test]
async fn values_backup_equals_helm_get_values_helm4() {
    values_backup(
        "values_backup_equals_helm_get_values_helm4",
        Helm::V4,
        StorageDriver::ConfigMap,
    )
    .await;
}

/// Missing releases and revisions, and a record that is not one, name what they are about.
async fn missing_and_corrupt(test: &str, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("rec-errors");
    let run = HelmRun::new(cluster, Helm::V3, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "0.1.0", &[]);
    run.run(&["install", "demo", chart.to_str().unwrap()]);
    let store = ReleaseStore::new(admin_client(cluster).await, &ns, driver);
    let kind = driver.kind();

    let err = store.latest("nope").await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "release nope not found in namespace {ns} (no {kind}s labelled owner=helm,name=nope)"
        )
    );
    assert_eq!(
        store.revision("nope", 1).await.unwrap_err().to_string(),
        err
    );
    assert!(store.history("nope").await.unwrap().is_empty());
    let err = store.revision("demo", 7).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("release demo in namespace {ns} has no revision 7 (latest is 1)")
    );

    // An object with helm's labels and garbage for a record.
    let object = match driver {
        StorageDriver::Secret => format!(
            "apiVersion: v1\nkind: Secret\ntype: helm.sh/release.v1\nmetadata:\n  name: sh.helm.release.v1.broken.v1\n  namespace: {ns}\n  labels: {{owner: helm, name: broken, status: deployed, version: \"1\"}}\nstringData:\n  release: \"H4sI????\"\n"
        ),
        StorageDriver::ConfigMap => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sh.helm.release.v1.broken.v1\n  namespace: {ns}\n  labels: {{owner: helm, name: broken, status: deployed, version: \"1\"}}\ndata:\n  release: \"H4sI????\"\n"
        ),
    };
    cluster.apply_yaml(&object);
    let err = store.latest("broken").await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{kind} {ns}/sh.helm.release.v1.broken.v1: cannot decode Helm release record: \
             release data is not base64"
        )),
        "{err}"
    );
    // The broken record does not spoil the release next to it.
    assert_eq!(store.latest("demo").await.unwrap().revision, 1);
}

#[tokio::test]
async fn missing_and_corrupt_records_name_the_release_secret() {
    missing_and_corrupt(
        "missing_and_corrupt_records_name_the_release_secret",
        StorageDriver::Secret,
    )
    .await;
}

#[tokio::test]
async fn missing_and_corrupt_records_name_the_release_configmap() {
    missing_and_corrupt(
        "missing_and_corrupt_records_name_the_release_configmap",
        StorageDriver::ConfigMap,
    )
    .await;
}

#[tokio::test]
async fn a_user_who_cannot_list_records_gets_a_one_line_403() {
    let Some(cluster) = cluster_or_skip("a_user_who_cannot_list_records_gets_a_one_line_403")
    else {
        return;
    };
    let ns = cluster.namespace("rec-rbac");
    let user = unique_name("rec-user");
    // get, but not list.
    let kubeconfig = cluster.user(
        &user,
        &[],
        Some((&ns, &[Rule::new(&[""], &["secrets"], &["get"])])),
    );
    let err = ReleaseStore::new(client_for(&kubeconfig).await, &ns, StorageDriver::Secret)
        .latest("demo")
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(403));
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "list Secrets labelled owner=helm,name=demo in namespace {ns}: 403 Forbidden: \
             secrets is forbidden: User \"system:serviceaccount:kantup-test-users:{user}\" \
             cannot list resource \"secrets\" in API group \"\" in the namespace \"{ns}\"; hint: \
             the user lacks this permission; `kantup preflight` lists what an upgrade needs"
        )
    );
    assert_one_line(&text);
}
