//! CRDs: loading them from files (pure), then planning and server-side applying them against
//! the real kube-apiserver (see `common`): CRDs created by `helm install` (helm 3 and 4) and by
//! `kubectl apply`, field conflicts, what the server rejects, sizes past kubectl's annotation
//! limit and etcd's request limit, names conflicts, stored versions, RBAC and the one-line
//! error text. Each test gives its CRDs a group of its own: the tests share one server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kantup_k8s_apply::Error;
use kantup_k8s_apply::crd::{
    ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, ETCD_REQUEST_LIMIT, FieldConflict,
    PlanAction, SchemaChange, SchemaChangeKind, load_crd_dir, load_crd_documents,
};
use kantup_k8s_apply::release::StorageDriver;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Loading (pure)

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
        (
            "crds/twostorage.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: sprockets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Sprocket, plural: sprockets}, versions: [{name: v1, served: true, storage: true}, {name: v2, served: true, storage: true}]}\n",
            "crds/twostorage.yaml: document 0: invalid CustomResourceDefinition: sprockets.example.com: exactly one version must have storage: true, found 2",
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

// ---------------------------------------------------------------------------------------------
// Against the real API server

/// The fixture `crds/` directory (two files, three CRDs, one cluster-scoped with a short name)
/// moved into `group`.
fn fixture_crds(group: &str) -> Vec<CrdDocument> {
    let dir = fixture_path("crds");
    let files = ["02-sprockets.json", "10-widgets.yaml", "README.md"].map(|file| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        (file.to_string(), text.replace("example.com", group))
    });
    load_crd_documents(files).unwrap()
}

fn refusing() -> ApplyOptions {
    ApplyOptions {
        conflicts: ConflictPolicy::Refuse,
        ..Default::default()
    }
}

fn resource_version(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `crd` with `spec.size` of type `string` and a new property `color`.
fn widget_changed(group: &str) -> Value {
    let mut changed = widget_crd(group, "string");
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["color"] = json!({"type": "string"});
    changed
}

fn sorted_schema_changes(plan: &kantup_k8s_apply::crd::CrdPlan) -> Vec<(String, SchemaChangeKind)> {
    let mut changes: Vec<(String, SchemaChangeKind)> = plan
        .changes
        .versions_changed
        .iter()
        .flat_map(|v| v.schema.iter())
        .map(|SchemaChange { path, kind }| (path.clone(), *kind))
        .collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}

#[tokio::test]
async fn new_crds_are_applied_served_and_established() {
    let Some(cluster) = cluster_or_skip("crd_apply::new_crds_are_applied_served_and_established")
    else {
        return;
    };
    let group = unique_group("new");
    let crds = fixture_crds(&group);
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());

    let plans = applier.plan(&crds).await.unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("sprockets.{group}"),
            format!("widgets.{group}"),
            format!("gadgets.{group}")
        ]
    );
    for plan in &plans {
        assert_eq!(plan.action, PlanAction::New, "{plan:?}");
        assert!(
            plan.conflicts.is_empty() && plan.rejected.is_none(),
            "{plan:?}"
        );
        assert!(plan.stored_bytes.unwrap() > 300, "{plan:?}");
        assert!(
            !exists(cluster, "crd", &plan.name, None),
            "the plan created {}",
            plan.name
        );
    }

    let applied = applier.apply(&crds).await.unwrap();
    assert_eq!(applied.len(), 3);
    for (done, crd) in applied.iter().zip(&crds) {
        assert_eq!(
            (done.name.as_str(), &done.action),
            (crd.name.as_str(), &PlanAction::New)
        );
        assert!(done.taken_over.is_empty());
        // The resourceVersion of the apply; the server's conditions come in a later write.
        assert!(done.resource_version.is_some());
        let live = live_crd(cluster, &crd.name);
        assert_eq!(condition(&live, "Established"), "True", "{live}");
        assert_eq!(condition(&live, "NamesAccepted"), "True", "{live}");
        assert_eq!(
            owners_of_versions(&live),
            [("kantup".to_string(), "Apply".to_string())]
        );
        assert_eq!(live["metadata"].get("annotations"), None, "{live}");
    }

    // Served, with the schema as written: a valid object is stored, an invalid one refused by
    // the server (kubectl's own validation off: it may or may not know the new schema yet).
    let ns = cluster.namespace("crd-new");
    let stored = kubectl_custom(
        cluster,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {ns}}}\nspec: {{size: 3}}\n"
        )),
    );
    succeeded("kubectl apply a Widget", &stored);
    let refused = kubectl_custom(
        cluster,
        &["create", "--validate=false", "-f", "-"],
        Some(&format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w2, namespace: {ns}}}\nspec: {{size: three}}\n"
        )),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("spec.size in body must be of type integer"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_applied_crd_plans_unchanged_and_is_not_written_again() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::an_applied_crd_plans_unchanged_and_is_not_written_again")
    else {
        return;
    };
    let group = unique_group("same");
    // Everything the API server defaults or normalises left to it: names.singular/listKind,
    // conversion (a webhook without a port), column and schema details.
    let mut manifest = crd_manifest(
        &group,
        "Widget",
        "widgets",
        json!([
            {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
             "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            {"name": "v1", "served": true, "storage": true,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                       "statusReplicasPath": ".status.replicas"}},
             "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                 "spec": {"type": "object", "properties": {
                     "size": {"type": "integer", "default": 1, "minimum": 0},
                     "replicas": {"type": "integer"},
                     "port": {"x-kubernetes-int-or-string": true},
                     "mode": {"type": "string", "enum": ["a", "b"], "nullable": true},
                     "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                 "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}}
        ]),
    );
    manifest["spec"]["names"]["shortNames"] = json!(["wd"]);
    manifest["spec"]["names"]["categories"] = json!(["kantup-test"]);
    manifest["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "kube-system", "name": "widgets-conversion", "path": "/convert"}}}});
    let crds = documents(&[("crds/widgets.yaml", &manifest)]);
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());
    let first = applier.apply(&crds).await.unwrap();
    assert_eq!(first[0].action, PlanAction::New);
    let live = live_crd(cluster, &crds[0].name);
    assert_eq!(
        live["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"], 443,
        "the server defaults the port"
    );

    let plan = applier.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Unchanged, "{:?}", plan.changes);
    assert!(plan.changes.is_empty() && plan.conflicts.is_empty() && plan.rejected.is_none());

    let again = applier.apply(&crds).await.unwrap();
    assert_eq!(again[0].action, PlanAction::Unchanged);
    assert_eq!(
        again[0].resource_version, None,
        "an unchanged CRD is not written"
    );
    let after = live_crd(cluster, &crds[0].name);
    assert_eq!(resource_version(&after), resource_version(&live));
    assert_eq!(
        after["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );

    // A real change to a field the server defaults is seen.
    manifest["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] = json!(8443);
    let plan = applier
        .plan(&documents(&[("crds/widgets.yaml", &manifest)]))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(plan.action, PlanAction::Changed);
    assert_eq!(plan.changes.spec_fields_changed, ["conversion"]);
}

#[tokio::test]
async fn a_change_to_labels_or_annotations_alone_is_applied() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::a_change_to_labels_or_annotations_alone_is_applied")
    else {
        return;
    };
    let group = unique_group("meta");
    let mut manifest = widget_crd(&group, "integer");
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());
    applier
        .apply(&documents(&[("crds/widgets.yaml", &manifest)]))
        .await
        .unwrap();
    // The next chart version labels its CRD and names a CA to inject (cert-manager's
    // cainjector reads such annotations): the spec is the same.
    manifest["metadata"]["labels"] = json!({"app.kubernetes.io/version": "2.0.0"});
    manifest["metadata"]["annotations"] =
        json!({"cert-manager.io/inject-ca-from": "kant-system/kant-webhook"});
    let crds = documents(&[("crds/widgets.yaml", &manifest)]);
    let plan = applier.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Changed, "{plan:?}");
    assert_eq!(
        plan.changes.metadata_fields_changed,
        ["annotations", "labels"]
    );
    applier.apply(&crds).await.unwrap();
    let live = live_crd(cluster, &crds[0].name);
    assert_eq!(
        live["metadata"]["labels"]["app.kubernetes.io/version"],
        "2.0.0"
    );
    assert_eq!(
        live["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "kant-system/kant-webhook"
    );
    let plan = applier.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Unchanged, "{plan:?}");
}

/// A CRD that `helm install` created from the chart's `crds/`: unchanged, it is not written
/// (kantup does not even join its managers); changed, the unforced dry-run names helm as the
/// owner of `.spec.versions`, `Refuse` changes nothing and the default takes it over.
async fn helm_made_crd_is_taken_over(test: &str, helm: Helm, helm_operation: &str) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("crd-helm");
    let group = unique_group("helm");
    let name = format!("widgets.{group}");
    let original = widget_crd(&group, "integer");
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(
        dir.path(),
        "0.1.0",
        &[("widgets.yaml", serde_yaml::to_string(&original).unwrap())],
    );
    HelmRun::new(cluster, helm, StorageDriver::Secret, &ns).run(&[
        "install",
        "demo",
        chart.to_str().unwrap(),
    ]);
    let before = live_crd(cluster, &name);
    assert_eq!(
        owners_of_versions(&before),
        [("helm".to_string(), helm_operation.to_string())]
    );
    let client = admin_client(cluster).await;
    let taking_over = CrdApplier::new(client.clone(), ApplyOptions::default());

    // The chart's CRD as helm installed it: the same values, no conflict, nothing written.
    let same = documents(&[("crds/widgets.yaml", &original)]);
    let plan = taking_over.plan(&same).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Unchanged, "{:?}", plan.changes);
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let applied = taking_over.apply(&same).await.unwrap();
    assert_eq!(applied[0].resource_version, None);
    let unchanged = live_crd(cluster, &name);
    assert_eq!(resource_version(&unchanged), resource_version(&before));
    assert!(!managers(&unchanged).contains(&"kantup".to_string()));

    // Changed in the next chart version.
    let changed = widget_changed(&group);
    let crds = documents(&[("crds/widgets.yaml", &changed)]);
    let plan = taking_over.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Changed);
    assert_eq!(
        sorted_schema_changes(&plan),
        [
            (
                "properties.spec.properties.color".to_string(),
                SchemaChangeKind::Added
            ),
            (
                "properties.spec.properties.size.type".to_string(),
                SchemaChangeKind::Changed
            )
        ]
    );
    let helm_owns_versions = vec![FieldConflict {
        manager: "helm".into(),
        fields: vec![".spec.versions".into()],
    }];
    assert_eq!(plan.conflicts, helm_owns_versions);
    assert_eq!(plan.rejected, None);

    let err = CrdApplier::new(client.clone(), refusing())
        .apply(&crds)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CrdConflicts { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "CustomResourceDefinition {name}: fields owned by other field managers: helm \
             (.spec.versions); nothing was applied (the chart's CRDs belong to the chart: drop \
             --refuse-conflicts to take them over)"
        )
    );
    let refused = live_crd(cluster, &name);
    assert_eq!(resource_version(&refused), resource_version(&before));
    assert_eq!(refused["spec"], before["spec"]);

    let applied = taking_over.apply(&crds).await.unwrap();
    assert_eq!(applied[0].action, PlanAction::Changed);
    assert_eq!(applied[0].taken_over, helm_owns_versions);
    let after = live_crd(cluster, &name);
    assert_eq!(Some(resource_version(&after)), applied[0].resource_version);
    assert_eq!(
        after["spec"]["versions"][0]["schema"],
        changed["spec"]["versions"][0]["schema"]
    );
    assert_eq!(
        owners_of_versions(&after),
        [("kantup".to_string(), "Apply".to_string())]
    );
    let plan = taking_over.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Unchanged);
    assert!(plan.conflicts.is_empty());
}

#[tokio::test]
async fn a_crd_installed_by_helm3_is_taken_over_or_refused() {
    // helm 3 creates the chart's CRDs with a plain create (an `Update` entry).
    helm_made_crd_is_taken_over(
        "crd_apply::a_crd_installed_by_helm3_is_taken_over_or_refused",
        Helm::V3,
        "Update",
    )
    .await;
}

#[tokio::test]
async fn a_crd_installed_by_helm4_is_taken_over_or_refused() {
    // helm 4 server-side applies them as field manager `helm` (an `Apply` entry).
    helm_made_crd_is_taken_over(
        "crd_apply::a_crd_installed_by_helm4_is_taken_over_or_refused",
        Helm::V4,
        "Apply",
    )
    .await;
}

#[tokio::test]
async fn a_crd_applied_by_kubectl_is_taken_over_or_refused() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::a_crd_applied_by_kubectl_is_taken_over_or_refused")
    else {
        return;
    };
    let group = unique_group("kubectl");
    let name = format!("widgets.{group}");
    // The seed's manual step: `kubectl apply -f crds` (client-side apply).
    cluster.apply_yaml(&widget_crd(&group, "integer").to_string());
    let before = live_crd(cluster, &name);
    assert_eq!(
        owners_of_versions(&before),
        [(
            "kubectl-client-side-apply".to_string(),
            "Update".to_string()
        )]
    );

    // Two fields kubectl owns change: the versions and a name the server defaulted for it.
    let mut changed = widget_changed(&group);
    changed["spec"]["names"]["singular"] = json!("wdgt");
    let crds = documents(&[("crds/widgets.yaml", &changed)]);
    let client = admin_client(cluster).await;
    let plan = CrdApplier::new(client.clone(), ApplyOptions::default())
        .plan(&crds)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(plan.action, PlanAction::Changed);
    assert_eq!(plan.changes.spec_fields_changed, ["names"]);
    assert_eq!(plan.conflicting_managers(), ["kubectl-client-side-apply"]);
    let mut fields = plan.conflicts[0].fields.clone();
    fields.sort();
    assert_eq!(fields, [".spec.names.singular", ".spec.versions"]);

    let err = CrdApplier::new(client.clone(), refusing())
        .apply(&crds)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "CustomResourceDefinition {name}: fields owned by other field managers: \
             kubectl-client-side-apply ({})",
            plan.conflicts[0].fields.join(", ")
        )),
        "{err}"
    );
    let refused = live_crd(cluster, &name);
    assert_eq!(resource_version(&refused), resource_version(&before));
    assert_eq!(refused["spec"], before["spec"]);

    let applied = CrdApplier::new(client, ApplyOptions::default())
        .apply(&crds)
        .await
        .unwrap();
    assert_eq!(applied[0].taken_over, plan.conflicts);
    let after = live_crd(cluster, &name);
    assert_eq!(after["spec"]["names"]["singular"], "wdgt");
    assert_eq!(
        owners_of_versions(&after),
        [("kantup".to_string(), "Apply".to_string())]
    );
}

#[tokio::test]
async fn crds_the_server_rejects_are_refused_before_any_change() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::crds_the_server_rejects_are_refused_before_any_change")
    else {
        return;
    };
    let group = unique_group("reject");
    let valid = widget_crd(&group, "integer");
    let bad_type = crd_manifest(
        &group,
        "Gizmo",
        "gizmos",
        json!([crd_version("v1", true, json!({"size": {"type": "foo"}}))]),
    );
    let no_schema = crd_manifest(
        &group,
        "Gadget",
        "gadgets",
        json!([{"name": "v1", "served": true, "storage": true}]),
    );
    let crds = documents(&[
        ("crds/a-widgets.yaml", &valid),
        ("crds/b-gizmos.yaml", &bad_type),
        ("crds/c-gadgets.yaml", &no_schema),
    ]);
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());
    let plans = applier.plan(&crds).await.unwrap();
    assert_eq!(plans[0].action, PlanAction::New);
    assert_eq!(plans[0].rejected, None);
    let bad_type_reason = format!(
        "dry-run apply CustomResourceDefinition gizmos.{group} from crds/b-gizmos.yaml#0: 422 \
         Invalid: CustomResourceDefinition.apiextensions.k8s.io \"gizmos.{group}\" is invalid: \
         spec.validation.openAPIV3Schema.properties[spec].properties[size].type: Unsupported \
         value: \"foo\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \
         \"object\", \"string\""
    );
    let no_schema_reason = format!(
        "dry-run apply CustomResourceDefinition gadgets.{group} from crds/c-gadgets.yaml#0: 422 \
         Invalid: CustomResourceDefinition.apiextensions.k8s.io \"gadgets.{group}\" is invalid: \
         spec.versions[0].schema.openAPIV3Schema: Required value"
    );
    assert_eq!(plans[1].rejected.as_deref(), Some(bad_type_reason.as_str()));
    assert_eq!(
        plans[2].rejected.as_deref(),
        Some(no_schema_reason.as_str())
    );
    assert_one_line(&bad_type_reason);

    let err = applier.apply(&crds).await.unwrap_err();
    assert!(matches!(err, Error::CrdsRejected(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the API server refuses 2 CustomResourceDefinition(s); nothing was applied: \
             {bad_type_reason}; {no_schema_reason}"
        )
    );
    for crd in &crds {
        assert!(
            !exists(cluster, "crd", &crd.name, None),
            "{} exists",
            crd.name
        );
    }
}

/// A schema of `fields` string properties with a 1000-character description each (about 1 KiB
/// of JSON per field; few fields keep the server's schema work small).
fn big_crd(group: &str, fields: usize) -> Value {
    let properties: serde_json::Map<String, Value> = (0..fields)
        .map(|i| {
            (
                format!("field{i:05}"),
                json!({"type": "string", "description": "x".repeat(1000)}),
            )
        })
        .collect();
    widget_crd_with(group, Value::Object(properties))
}

fn widget_crd_with(group: &str, properties: Value) -> Value {
    crd_manifest(
        group,
        "Widget",
        "widgets",
        json!([crd_version("v1", true, properties)]),
    )
}

#[tokio::test]
async fn a_crd_over_the_annotation_limit_is_applied_without_last_applied() {
    let Some(cluster) = cluster_or_skip(
        "crd_apply::a_crd_over_the_annotation_limit_is_applied_without_last_applied",
    ) else {
        return;
    };
    let group = unique_group("big");
    let manifest = big_crd(&group, 300);
    let text = serde_json::to_string(&manifest).unwrap();
    assert!(text.len() > 256 * 1024, "{}", text.len());

    // kubectl's client-side apply cannot: its last-applied annotation passes 256 KiB.
    let csa = cluster.kubectl_output(
        &["apply", "--validate=false", "-f", "-"],
        Some(&text.replace(&group, &format!("csa.{group}"))),
    );
    assert!(!csa.status.success());
    let stderr = String::from_utf8_lossy(&csa.stderr);
    assert!(
        stderr.contains("metadata.annotations: Too long: may not be more than 262144 bytes"),
        "{stderr}"
    );

    let crds = load_crd_documents([("crds/big.json", text)]).unwrap();
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());
    let applied = applier.apply(&crds).await.unwrap();
    assert_eq!(applied[0].action, PlanAction::New);
    let live = live_crd(cluster, &crds[0].name);
    assert_eq!(condition(&live, "Established"), "True");
    assert_eq!(live["metadata"].get("annotations"), None);
    assert_eq!(
        live["spec"]["versions"][0]["schema"],
        manifest["spec"]["versions"][0]["schema"]
    );
    let plan = applier.plan(&crds).await.unwrap().remove(0);
    assert_eq!(plan.action, PlanAction::Unchanged);
}

#[tokio::test]
async fn a_crd_etcd_would_refuse_is_rejected_by_the_plan() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::a_crd_etcd_would_refuse_is_rejected_by_the_plan")
    else {
        return;
    };
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());

    // Too large for etcd: the dry-run passes (it never reaches etcd), the plan says no.
    let group = unique_group("huge");
    let huge = big_crd(&group, 1_700);
    let crds =
        load_crd_documents([("crds/huge.json", serde_json::to_string(&huge).unwrap())]).unwrap();
    // (Planned once and applied with that plan: dry-runs of 1.7 MB are slow.)
    let plans = applier.plan(&crds).await.unwrap();
    let stored = plans[0].stored_bytes.unwrap();
    assert!(stored > ETCD_REQUEST_LIMIT, "{stored}");
    let reason = plans[0].rejected.clone().expect("rejected");
    assert!(
        reason.starts_with(&format!(
            "CustomResourceDefinition widgets.{group} from crds/huge.json#0 would be stored as \
             {stored} bytes, more than etcd's default request limit of 1572864 bytes"
        )),
        "{reason}"
    );
    let err = applier.apply_planned(&crds, plans).await.unwrap_err();
    assert!(matches!(err, Error::CrdsRejected(_)), "{err:?}");
    assert!(!exists(cluster, "crd", &crds[0].name, None));
    // What the real write would have done:
    let write = cluster.kubectl_output(
        &["create", "--validate=false", "-f", "-"],
        Some(&huge.to_string()),
    );
    assert!(!write.status.success());
    let stderr = String::from_utf8_lossy(&write.stderr);
    assert!(
        stderr.contains("etcdserver: request is too large"),
        "{stderr}"
    );

    // Just under the limit: planned, written and served (the API server keeps CRDs in etcd as
    // JSON, so the plan's measure is the one etcd applies).
    let group = unique_group("large");
    let large = big_crd(&group, 1_460);
    let crds =
        load_crd_documents([("crds/large.json", serde_json::to_string(&large).unwrap())]).unwrap();
    let plans = applier.plan(&crds).await.unwrap();
    assert_eq!(plans[0].rejected, None, "{:?}", plans[0].changes);
    let stored = plans[0].stored_bytes.unwrap();
    assert!(
        (1_500_000..ETCD_REQUEST_LIMIT).contains(&stored),
        "{stored}"
    );
    applier.apply_planned(&crds, plans).await.unwrap();
    let established = cluster.kubectl(&[
        "get",
        "crd",
        &crds[0].name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(established, "True");
}

#[tokio::test]
async fn a_names_conflict_fails_at_once_with_the_conditions_reason() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::a_names_conflict_fails_at_once_with_the_conditions_reason")
    else {
        return;
    };
    let group = unique_group("names");
    let options = ApplyOptions {
        timeout: Duration::from_secs(300),
        ..Default::default()
    };
    let applier = CrdApplier::new(admin_client(cluster).await, options);
    let widgets = widget_crd(&group, "integer");
    applier
        .apply(&documents(&[("crds/widgets.yaml", &widgets)]))
        .await
        .unwrap();
    // Another plural of the same group claiming the kind Widget (and so the list kind
    // WidgetList, the last of the names the server checks, which its reason names).
    let gizmos = crd_manifest(
        &group,
        "Widget",
        "gizmos",
        json!([crd_version("v1", true, json!({}))]),
    );
    let started = Instant::now();
    let err = applier
        .apply(&documents(&[("crds/gizmos.yaml", &gizmos)]))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "waited for the timeout"
    );
    assert!(matches!(err, Error::CrdNotReady { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "CustomResourceDefinition gizmos.{group} is not ready after 300s: condition \
             NamesAccepted is False (ListKindConflict: \"WidgetList\" is already in use)"
        )
    );
    let live = live_crd(cluster, &format!("gizmos.{group}"));
    assert_eq!(condition(&live, "Established"), "False");
}

#[tokio::test]
async fn removing_a_stored_version_is_refused_unless_allowed() {
    let Some(cluster) =
        cluster_or_skip("crd_apply::removing_a_stored_version_is_refused_unless_allowed")
    else {
        return;
    };
    let group = unique_group("stored");
    let name = format!("things.{group}");
    let ns = cluster.namespace("crd-stored");
    let open = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object",
                                              "x-kubernetes-preserve-unknown-fields": true}}})
    };
    let thing = |versions: Value| crd_manifest(&group, "Thing", "things", versions);
    let applier = CrdApplier::new(admin_client(cluster).await, ApplyOptions::default());
    // v1alpha1 holds an object; then v1 becomes the storage version.
    applier
        .apply(&documents(&[(
            "crds/things.yaml",
            &thing(json!([open("v1alpha1", true)])),
        )]))
        .await
        .unwrap();
    succeeded(
        "kubectl apply a Thing",
        &kubectl_custom(
            cluster,
            &["apply", "-f", "-"],
            Some(&format!(
                "apiVersion: {group}/v1alpha1\nkind: Thing\nmetadata: {{name: t1, namespace: {ns}}}\nspec: {{a: 1}}\n"
            )),
        ),
    );
    applier
        .apply(&documents(&[(
            "crds/things.yaml",
            &thing(json!([open("v1alpha1", false), open("v1", true)])),
        )]))
        .await
        .unwrap();
    let before = live_crd(cluster, &name);
    assert_eq!(
        before["status"]["storedVersions"],
        json!(["v1alpha1", "v1"])
    );

    let only_v1 = documents(&[("crds/things.yaml", &thing(json!([open("v1", true)])))]);
    let plan = applier.plan(&only_v1).await.unwrap().remove(0);
    assert_eq!(plan.changes.versions_removed, ["v1alpha1"]);
    assert_eq!(plan.blocked_versions, ["v1alpha1"]);
    assert_eq!(plan.rejected, None, "{plan:?}");
    let err = applier.apply(&only_v1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "CustomResourceDefinition {name}: refusing to remove version(s) v1alpha1 still listed \
             in status.storedVersions; migrate stored objects first or pass \
             --allow-version-removal"
        )
    );
    assert_eq!(
        resource_version(&live_crd(cluster, &name)),
        resource_version(&before)
    );

    // Migrated (the object rewritten in the storage version v1), then allowed.
    let object = succeeded(
        "kubectl get the Thing as v1",
        &kubectl_custom(
            cluster,
            &[
                "get",
                &format!("things.v1.{group}"),
                "t1",
                "-n",
                &ns,
                "-o",
                "json",
            ],
            None,
        ),
    );
    succeeded(
        "kubectl replace",
        &cluster.kubectl_output(&["replace", "-f", "-"], Some(&object)),
    );
    let allowed = CrdApplier::new(
        admin_client(cluster).await,
        ApplyOptions {
            allow_version_removal: true,
            ..Default::default()
        },
    );
    let applied = allowed.apply(&only_v1).await.unwrap();
    assert_eq!(applied[0].action, PlanAction::Changed);
    let after = live_crd(cluster, &name);
    assert_eq!(after["status"]["storedVersions"], json!(["v1"]));
    let versions: Vec<&str> = after["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1"]);
    let kept: Value = serde_json::from_str(&succeeded(
        "kubectl get the Thing",
        &kubectl_custom(
            cluster,
            &[
                "get",
                &format!("things.{group}"),
                "t1",
                "-n",
                &ns,
                "-o",
                "json",
            ],
            None,
        ),
    ))
    .unwrap();
    assert_eq!(kept["spec"]["a"], 1);
}

#[tokio::test]
async fn a_user_without_patch_gets_a_one_line_403() {
    let Some(cluster) = cluster_or_skip("crd_apply::a_user_without_patch_gets_a_one_line_403")
    else {
        return;
    };
    let user = unique_name("crd-reader");
    let kubeconfig = cluster.user(
        &user,
        &[Rule::new(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            &["get", "list", "watch"],
        )],
        None,
    );
    let group = unique_group("rbac");
    let crds = documents(&[("crds/widgets.yaml", &widget_crd(&group, "integer"))]);
    let applier = CrdApplier::new(client_for(&kubeconfig).await, ApplyOptions::default());
    let expected = format!(
        "dry-run apply CustomResourceDefinition widgets.{group} from crds/widgets.yaml#0: 403 \
         Forbidden: customresourcedefinitions.apiextensions.k8s.io \"widgets.{group}\" is \
         forbidden: User \"system:serviceaccount:kantup-test-users:{user}\" cannot patch \
         resource \"customresourcedefinitions\" in API group \"apiextensions.k8s.io\" at the \
         cluster scope; hint: the user lacks this permission; `kantup preflight` lists what an \
         upgrade needs"
    );
    for err in [
        applier.plan(&crds).await.unwrap_err(),
        applier.apply(&crds).await.unwrap_err(),
    ] {
        assert_eq!(err.status_code(), Some(403));
        assert_eq!(err.to_string(), expected);
    }
    assert_one_line(&expected);
    assert!(!exists(cluster, "crd", &crds[0].name, None));
}

#[tokio::test]
async fn not_found_and_conflict_errors_are_one_line() {
    let Some(cluster) = cluster_or_skip("crd_apply::not_found_and_conflict_errors_are_one_line")
    else {
        return;
    };
    let group = unique_group("errors");
    let name = format!("widgets.{group}");
    let client = admin_client(cluster).await;

    // 404
    let err = CrdApplier::new(client.clone(), ApplyOptions::default())
        .wait_ready(&name)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "get CustomResourceDefinition {name}: 404 NotFound: \
             customresourcedefinitions.apiextensions.k8s.io \"{name}\" not found"
        )
    );
    assert_one_line(&text);

    // 409: someone else changes the versions between the plan and the apply; refusing to
    // take fields over, the real apply (not forced) meets the server's conflict.
    let refuse = CrdApplier::new(client, refusing());
    refuse
        .apply(&documents(&[(
            "crds/widgets.yaml",
            &widget_crd(&group, "integer"),
        )]))
        .await
        .unwrap();
    let crds = documents(&[("crds/widgets.yaml", &widget_changed(&group))]);
    let plans = refuse.plan(&crds).await.unwrap();
    assert!(plans[0].conflicts.is_empty(), "{:?}", plans[0].conflicts);
    cluster.kubectl(&[
        "patch",
        "crd",
        &name,
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/size/minimum", "value": 1}]"#,
    ]);
    let patched = live_crd(cluster, &name);
    let err = refuse.apply_planned(&crds, plans).await.unwrap_err();
    assert_eq!(err.status_code(), Some(409));
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "apply CustomResourceDefinition {name} from crds/widgets.yaml#0: 409 Conflict: Apply \
             failed with 1 conflict: conflict with \"kubectl-patch\" using \
             apiextensions.k8s.io/v1: .spec.versions"
        )
    );
    assert_one_line(&text);
    assert_eq!(
        resource_version(&live_crd(cluster, &name)),
        resource_version(&patched)
    );
}

// ---------------------------------------------------------------------------------------------
// Faults a real server cannot be made to produce here: the scripted server

fn widgets_fixture() -> Vec<CrdDocument> {
    load_crd_dir(&fixture_path("crds"))
        .unwrap()
        .into_iter()
        .filter(|c| c.name == "widgets.example.com")
        .collect()
}

#[tokio::test]
async fn waiting_gives_up_after_the_timeout_naming_the_missing_condition() {
    // Scripted: the real server establishes a CRD within milliseconds, and a names conflict
    // fails at once; a CRD whose conditions never come needs a scripted server.
    let just_applied = || Answer::Json(200, fixture("crd-widgets-just-applied.json"));
    let mut script = vec![
        status(
            404,
            "NotFound",
            "customresourcedefinitions.apiextensions.k8s.io \"widgets.example.com\" not found",
        ),
        just_applied(),
        just_applied(),
    ];
    script.extend((0..50).map(|_| just_applied()));
    let (client, _seen) = scripted(script);
    let options = ApplyOptions {
        timeout: Duration::from_millis(250),
        ..Default::default()
    };
    let err = CrdApplier::new(client, options)
        .apply(&widgets_fixture())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CustomResourceDefinition widgets.example.com is not ready after 250ms: condition \
         NamesAccepted is missing"
    );
}

#[tokio::test]
async fn server_errors_and_a_dropped_connection_are_one_line() {
    // Scripted: a real API server cannot be made to answer 5xx or to drop the connection.
    let not_found = || {
        status(
            404,
            "NotFound",
            "customresourcedefinitions.apiextensions.k8s.io \"widgets.example.com\" not found",
        )
    };

    // A 500 to the dry-run: the server would not accept the CRD; nothing is written.
    let (client, seen) = scripted(vec![
        not_found(),
        status(
            500,
            "InternalError",
            "Internal error occurred: conversion webhook for example.com/v1 failed: connection refused",
        ),
    ]);
    let err = CrdApplier::new(client, ApplyOptions::default())
        .apply(&widgets_fixture())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the API server refuses 1 CustomResourceDefinition(s); nothing was applied: dry-run \
         apply CustomResourceDefinition widgets.example.com from 10-widgets.yaml#0: 500 \
         InternalError: Internal error occurred: conversion webhook for example.com/v1 failed: \
         connection refused"
    );
    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 2, "no write after the refusal: {seen:?}");

    // A 503 (the server is not ready) is an error, not a verdict on the CRD.
    let (client, _) = scripted(vec![
        not_found(),
        status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
    ]);
    let err = CrdApplier::new(client, ApplyOptions::default())
        .plan(&widgets_fixture())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(503));
    assert_eq!(
        err.to_string(),
        "dry-run apply CustomResourceDefinition widgets.example.com from 10-widgets.yaml#0: 503 \
         ServiceUnavailable: the server is currently unable to handle the request"
    );

    // The connection drops: no code, the cause in one line, a hint.
    let (client, _) = scripted(vec![Answer::Drop]);
    let err = CrdApplier::new(client, ApplyOptions::default())
        .plan(&widgets_fixture())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), None);
    let text = err.to_string();
    assert!(
        text.starts_with("get CustomResourceDefinition widgets.example.com: ")
            && text.ends_with("; hint: check that the API server in the kubeconfig is reachable"),
        "{text}"
    );
    assert_one_line(&text);
}
