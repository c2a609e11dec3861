//! CRD loading, planning and server-side apply against a scripted API server.

mod common;

use std::time::Duration;

use common::{fixture, fixture_path, reply, scripted};
use kantup_k8s_apply::Error;
use kantup_k8s_apply::crd::{
    ApplyOptions, CrdApplier, PlanAction, SchemaChangeKind, load_crd_dir, load_crd_documents,
};

const CRD_PATH: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com";

fn widgets() -> Vec<kantup_k8s_apply::crd::CrdDocument> {
    let all = load_crd_dir(&fixture_path("crds")).unwrap();
    all.into_iter()
        .filter(|c| c.name == "widgets.example.com")
        .collect()
}

fn applier(client: kube::Client, options: ApplyOptions) -> CrdApplier {
    CrdApplier::new(client, options)
}

#[test]
fn loads_in_helm_order_skipping_empty_documents_and_non_manifests() {
    let crds = load_crd_dir(&fixture_path("crds")).unwrap();
    let got: Vec<(String, String, usize)> = crds
        .iter()
        .map(|c| (c.name.clone(), c.file.clone(), c.index))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "sprockets.example.com".into(),
                "02-sprockets.json".into(),
                0
            ),
            ("widgets.example.com".into(), "10-widgets.yaml".into(), 0),
            ("gadgets.example.com".into(), "10-widgets.yaml".into(), 2),
        ]
    );
}

#[test]
fn rejects_documents_that_are_not_v1_crds_naming_file_and_index() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "crds/mixed.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: sprockets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Sprocket, plural: sprockets}, versions: [{name: v1, served: true, storage: true}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "crds/mixed.yaml: document 1: expected apiextensions.k8s.io/v1 CustomResourceDefinition, found v1 ConfigMap",
        ),
        (
            "crds/old.yaml",
            "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata: {name: a.b}\n",
            "crds/old.yaml: document 0: expected apiextensions.k8s.io/v1 CustomResourceDefinition, found apiextensions.k8s.io/v1beta1 CustomResourceDefinition",
        ),
        (
            "crds/broken.yaml",
            "apiVersion: [unclosed\n",
            "crds/broken.yaml: document 0: not valid YAML",
        ),
        (
            "crds/badname.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: wrong.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Sprocket, plural: sprockets}, versions: [{name: v1, served: true, storage: true}]}\n",
            "crds/badname.yaml: document 0: invalid CustomResourceDefinition: metadata.name \"wrong.example.com\" must be",
        ),
        (
            "crds/nostorage.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: sprockets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Sprocket, plural: sprockets}, versions: [{name: v1, served: true, storage: false}]}\n",
            "exactly one version must have storage: true, found 0",
        ),
    ];
    for (file, text, expected) in cases {
        let err = load_crd_documents([(file, text.as_bytes())])
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{file}: got {err}");
    }
}

#[test]
fn in_memory_files_are_filtered_and_sorted_by_name() {
    let sprocket = std::fs::read(fixture_path("crds/02-sprockets.json")).unwrap();
    let widgets = std::fs::read(fixture_path("crds/10-widgets.yaml")).unwrap();
    let crds = load_crd_documents(vec![
        ("crds/b.yaml".to_string(), widgets),
        ("crds/NOTES.txt".to_string(), b"apiVersion: nope".to_vec()),
        ("crds/a.json".to_string(), sprocket),
    ])
    .unwrap();
    let names: Vec<&str> = crds.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sprockets.example.com",
            "widgets.example.com",
            "gadgets.example.com"
        ]
    );
}

#[test]
fn duplicate_crd_names_are_rejected() {
    let widgets = std::fs::read(fixture_path("crds/10-widgets.yaml")).unwrap();
    let err = load_crd_documents(vec![("a.yaml", widgets.clone()), ("b.yaml", widgets)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("widgets.example.com is defined twice: in a.yaml#0 and in b.yaml#0"),
        "{err}"
    );
}

#[tokio::test]
async fn applies_a_new_crd_server_side_and_waits_until_established() {
    let crds = widgets();
    let (client, seen) = scripted(vec![
        reply(fixture("status-404-crd-widgets.json")),
        reply(fixture("crd-widgets-just-applied.json")),
        reply(fixture("crd-widgets-just-applied.json")),
        reply(fixture("crd-widgets-established.json")),
    ]);
    let applied = applier(client, ApplyOptions::default())
        .apply(&crds)
        .await
        .unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].action, PlanAction::New);
    assert_eq!(applied[0].resource_version.as_deref(), Some("1001"));

    let seen = seen.await.unwrap();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["GET", "PATCH", "GET", "GET"]);
    assert!(seen.iter().all(|s| s.path == CRD_PATH), "{seen:?}");
    let patch = &seen[1];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(patch.query_value("fieldManager"), Some("kantup"));
    assert_eq!(
        patch.query_value("force"),
        None,
        "force must not be sent unless asked"
    );
    assert_eq!(
        patch.json(),
        crds[0].manifest,
        "the manifest is applied as written"
    );
}

#[tokio::test]
async fn force_is_sent_only_when_asked() {
    let crds = widgets();
    let (client, seen) = scripted(vec![
        reply(fixture("crd-widgets-established.json")),
        reply(fixture("crd-widgets-established.json")),
        reply(fixture("crd-widgets-established.json")),
    ]);
    let options = ApplyOptions {
        conflicts: kantup_k8s_apply::crd::ConflictPolicy::TakeOver,
        ..Default::default()
    };
    let applied = applier(client, options).apply(&crds).await.unwrap();
    assert_eq!(applied[0].action, PlanAction::Unchanged);
    let seen = seen.await.unwrap();
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].query_value("force"), Some("true"));
    assert_eq!(seen[1].query_value("fieldManager"), Some("kantup"));
}

#[tokio::test]
async fn api_errors_name_the_crd_and_carry_the_servers_reason() {
    let cases = [
        (
            "status-409-apply-conflict.json",
            409,
            vec![
                "apply CustomResourceDefinition widgets.example.com from 10-widgets.yaml#0",
                "--force-conflicts",
                "conflict with \"kubectl-client-side-apply\"",
                "(409 Conflict)",
            ],
        ),
        (
            "status-403-crd-patch.json",
            403,
            vec![
                "apply CustomResourceDefinition widgets.example.com",
                "cannot patch resource \"customresourcedefinitions\"",
                "(403 Forbidden)",
            ],
        ),
        (
            "status-422-crd-invalid.json",
            422,
            vec![
                "apply CustomResourceDefinition widgets.example.com",
                "Unsupported value: \"int\"",
                "(422 Invalid)",
            ],
        ),
    ];
    for (status_fixture, code, expected) in cases {
        let (client, seen) = scripted(vec![
            reply(fixture("status-404-crd-widgets.json")),
            reply(fixture(status_fixture)),
        ]);
        let err = applier(client, ApplyOptions::default())
            .apply(&widgets())
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(code), "{status_fixture}");
        let text = err.to_string();
        for needle in expected {
            assert!(
                text.contains(needle),
                "{status_fixture}: {needle:?} not in {text}"
            );
        }
        assert_eq!(
            seen.await.unwrap().len(),
            2,
            "nothing after the failed apply"
        );
    }
}

#[tokio::test]
async fn a_names_conflict_fails_at_once_with_the_conditions_reason() {
    let (client, seen) = scripted(vec![
        reply(fixture("status-404-crd-widgets.json")),
        reply(fixture("crd-widgets-just-applied.json")),
        reply(fixture("crd-widgets-names-conflict.json")),
    ]);
    let err = applier(client, ApplyOptions::default())
        .apply(&widgets())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CrdNotReady { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("CustomResourceDefinition widgets.example.com is not ready")
            && text.contains("condition NamesAccepted is False")
            && text.contains("ListKindConflict: \"WidgetList\" is already in use"),
        "{text}"
    );
    assert_eq!(seen.await.unwrap().len(), 3);
}

#[tokio::test]
async fn waiting_gives_up_after_the_timeout_naming_the_missing_condition() {
    let mut script = vec![
        reply(fixture("status-404-crd-widgets.json")),
        reply(fixture("crd-widgets-just-applied.json")),
    ];
    // More answers than the wait can use; the mock stops when the client is dropped.
    script.extend((0..50).map(|_| reply(fixture("crd-widgets-just-applied.json"))));
    let (client, _seen) = scripted(script);
    let options = ApplyOptions {
        timeout: Duration::from_millis(250),
        ..Default::default()
    };
    let err = applier(client, options)
        .apply(&widgets())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("widgets.example.com is not ready after 250ms")
            && text.contains("condition NamesAccepted is missing"),
        "{text}"
    );
}

#[tokio::test]
async fn plan_reports_new_unchanged_and_schema_changes() {
    let crds = widgets();
    let cases = [
        ("status-404-crd-widgets.json", PlanAction::New),
        ("crd-widgets-established.json", PlanAction::Unchanged),
        ("crd-widgets-size-string.json", PlanAction::Changed),
    ];
    for (live, expected) in cases {
        let (client, seen) = scripted(vec![reply(fixture(live))]);
        let plans = applier(client, ApplyOptions::default())
            .plan(&crds)
            .await
            .unwrap();
        assert_eq!(plans[0].action, expected, "{live}: {:?}", plans[0].changes);
        let seen = seen.await.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "GET", "plan only reads");
        if expected == PlanAction::Changed {
            let version = &plans[0].changes.versions_changed[0];
            assert_eq!(version.name, "v1");
            assert_eq!(version.schema.len(), 1);
            assert_eq!(
                version.schema[0].path,
                "properties.spec.properties.size.type"
            );
            assert_eq!(version.schema[0].kind, SchemaChangeKind::Changed);
        }
    }
}

#[tokio::test]
async fn removing_a_stored_version_is_refused_before_any_change() {
    let (client, seen) = scripted(vec![reply(fixture("crd-widgets-v1alpha1-stored.json"))]);
    let err = applier(client, ApplyOptions::default())
        .apply(&widgets())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "widgets.example.com: refusing to remove version(s) v1alpha1 still listed in status.storedVersions"
        ),
        "{err}"
    );
    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 1, "only the plan's GET: {seen:?}");

    let (client, seen) = scripted(vec![
        reply(fixture("crd-widgets-v1alpha1-stored.json")),
        reply(fixture("crd-widgets-established.json")),
        reply(fixture("crd-widgets-established.json")),
    ]);
    let options = ApplyOptions {
        allow_version_removal: true,
        ..Default::default()
    };
    let plans = applier(client, options).apply(&widgets()).await.unwrap();
    assert_eq!(plans[0].action, PlanAction::Changed);
    assert_eq!(seen.await.unwrap()[1].method, "PATCH");
}

#[tokio::test]
async fn a_crd_larger_than_the_annotation_limit_is_applied_without_last_applied() {
    // kubectl's client-side apply fails here: its last-applied annotation passes 256 KiB.
    let mut properties = serde_json::Map::new();
    for i in 0..4000 {
        properties.insert(
            format!("field{i:05}"),
            serde_json::json!({"type": "string", "description": "x".repeat(64)}),
        );
    }
    let manifest = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}}}]}});
    let text = serde_json::to_vec(&manifest).unwrap();
    assert!(text.len() > 256 * 1024, "{}", text.len());
    let crds = load_crd_documents([("crds/big.json", text)]).unwrap();
    let (client, seen) = scripted(vec![
        reply(fixture("status-404-crd-widgets.json")),
        reply(fixture("crd-widgets-established.json")),
        reply(fixture("crd-widgets-established.json")),
    ]);
    applier(client, ApplyOptions::default())
        .apply(&crds)
        .await
        .unwrap();
    let seen = seen.await.unwrap();
    let body = seen[1].json();
    assert!(seen[1].body.len() > 256 * 1024);
    assert_eq!(body["metadata"].get("annotations"), None);
    assert_eq!(body, manifest);
}
