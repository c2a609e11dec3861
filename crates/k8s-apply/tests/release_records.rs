//! Helm 3 / Helm 4 release records: decoding and reading them through the API.
//!
//! `fixtures/release-helm4.json` is real output of `helm 4.1 install demo ./demo
//! --dry-run=client -o json --set replicaCount=2 --set image.tag=1.2.3` (the chart from
//! `helm create demo`, templates trimmed to two) — the same `release/v1` JSON the storage
//! driver gzips. `release-helm3.json` is that record reshaped to Helm 3's struct: no
//! `apply_method`, no `modtime` fields, and `info.deleted` written as the zero time.

mod common;

use base64::Engine;
use common::{
    fixture, helm_configmap, helm_encode, helm_secret, list_page, reply, revision, scripted,
};
use kantup_k8s_apply::release::{ReleaseStatus, ReleaseStore, StorageDriver, decode_release};
use kantup_k8s_apply::{release_values, values_yaml};
use serde_json::json;

const NS: &str = "kant-system";

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
        let err = decode_release(data.as_bytes()).unwrap_err();
        assert!(err.contains(expected), "{data}: {err}");
    }
}

#[tokio::test]
async fn lists_secrets_with_the_helm_selector_and_follows_continue_tokens() {
    let r1 = revision("release-helm3.json", "kant", NS, 1, "superseded");
    let r2 = revision("release-helm3.json", "kant", NS, 2, "superseded");
    let r3 = revision("release-helm4.json", "kant", NS, 3, "deployed");
    let (client, seen) = scripted(vec![
        reply(list_page(
            "SecretList",
            vec![helm_secret(&r3, "deployed"), helm_secret(&r1, "superseded")],
            Some("token-page-2"),
        )),
        reply(list_page(
            "SecretList",
            vec![helm_secret(&r2, "superseded")],
            None,
        )),
    ]);
    let store = ReleaseStore::new(client, NS, StorageDriver::Secret).with_page_size(2);
    let history = store.history("kant").await.unwrap();
    let revisions: Vec<u32> = history.iter().map(|r| r.revision).collect();
    assert_eq!(revisions, [1, 2, 3]);
    assert_eq!(history[2].object_name, "sh.helm.release.v1.kant.v3");
    assert_eq!(history[2].release.status(), ReleaseStatus::Deployed);
    assert_eq!(history[2].release.apply_method.as_deref(), Some("ssa"));

    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/api/v1/namespaces/kant-system/secrets");
        assert_eq!(
            request.query_value("labelSelector"),
            Some("owner=helm,name=kant")
        );
        assert_eq!(request.query_value("limit"), Some("2"));
    }
    assert_eq!(seen[0].query_value("continue"), None);
    assert_eq!(seen[1].query_value("continue"), Some("token-page-2"));
}

#[tokio::test]
async fn reads_the_configmap_driver() {
    let r1 = revision("release-helm3.json", "kant", NS, 1, "deployed");
    let (client, seen) = scripted(vec![reply(list_page(
        "ConfigMapList",
        vec![helm_configmap(&r1, "deployed")],
        None,
    ))]);
    let driver = StorageDriver::from_helm_driver(Some("configmap")).unwrap();
    let latest = ReleaseStore::new(client, NS, driver)
        .latest("kant")
        .await
        .unwrap();
    assert_eq!(latest.revision, 1);
    let seen = seen.await.unwrap();
    assert_eq!(seen[0].path, "/api/v1/namespaces/kant-system/configmaps");
    assert_eq!(
        seen[0].query_value("labelSelector"),
        Some("owner=helm,name=kant")
    );
}

#[test]
fn helm_driver_values() {
    for (value, expected) in [
        (None, Some(StorageDriver::Secret)),
        (Some(""), Some(StorageDriver::Secret)),
        (Some("secrets"), Some(StorageDriver::Secret)),
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

#[tokio::test]
async fn missing_release_revision_forbidden_and_corrupt_record_errors() {
    let (client, _) = scripted(vec![reply(list_page("SecretList", vec![], None))]);
    let err = ReleaseStore::new(client, NS, StorageDriver::Secret)
        .latest("kant")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("release kant not found in namespace kant-system"),
        "{err}"
    );

    let r1 = revision("release-helm3.json", "kant", NS, 1, "deployed");
    let (client, _) = scripted(vec![reply(list_page(
        "SecretList",
        vec![helm_secret(&r1, "deployed")],
        None,
    ))]);
    let err = ReleaseStore::new(client, NS, StorageDriver::Secret)
        .revision("kant", 7)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no revision 7 (latest is 1)"), "{err}");

    let (client, _) = scripted(vec![reply(fixture("status-403-secrets-list.json"))]);
    let err = ReleaseStore::new(client, NS, StorageDriver::Secret)
        .latest("kant")
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(403));
    let text = err.to_string();
    assert!(
        text.contains("list Secrets labelled owner=helm,name=kant in namespace kant-system")
            && text.contains("cannot list resource \"secrets\""),
        "{text}"
    );

    let mut corrupt = helm_secret(&r1, "deployed");
    corrupt["data"]["release"] =
        json!(base64::engine::general_purpose::STANDARD.encode("H4sI????"));
    let (client, _) = scripted(vec![reply(list_page("SecretList", vec![corrupt], None))]);
    let err = ReleaseStore::new(client, NS, StorageDriver::Secret)
        .latest("kant")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "Secret kant-system/sh.helm.release.v1.kant.v1: cannot decode Helm release record"
        ),
        "{err}"
    );
}

#[test]
fn values_backup_matches_helm_get_values() {
    let release = decode_release(helm_encode(&fixture("release-helm3.json")).as_bytes()).unwrap();
    // `helm get values demo -o yaml`: keys sorted as Go's JSON encoder stored them.
    assert_eq!(
        values_yaml(&release, false).unwrap(),
        "image:\n  tag: 1.2.3\nreplicaCount: 2\n"
    );
    // `--all`: chart defaults under the user values.
    let all = release_values(&release, true);
    assert_eq!(all["replicaCount"], json!(2));
    assert_eq!(all["image"]["tag"], json!("1.2.3"));
    assert_eq!(all["image"]["repository"], json!("nginx"));
    assert_eq!(all["service"]["port"], json!(80));

    // No user values: Helm prints `null`.
    let mut bare = fixture("release-helm4.json");
    bare.as_object_mut().unwrap().remove("config");
    let release = decode_release(helm_encode(&bare).as_bytes()).unwrap();
    assert_eq!(values_yaml(&release, false).unwrap(), "null\n");
}
