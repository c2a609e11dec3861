//! The readiness waiter against the real kube-apiserver and kube-controller-manager (the test
//! acts as the kubelet through `kantup_test_support::kubelet`): every object ready; pods never
//! scheduled; a pod in `ImagePullBackOff` named with its image and the kubelet's message; a
//! custom resource with `Ready=False` named with its message; a failed Job ending the wait
//! early; absent objects and kinds the cluster does not serve. The tests share one cluster,
//! each in its own namespace, with short timeouts.

use std::time::Duration;

use kantup_k8s_apply::readiness::{ObjectRef, ObjectReport, Status, WaitOptions, Waiter};
use kantup_test_support::kube_cluster::{
    KubeCluster, cluster_with_controllers_or_skip, unique_name,
};
use kantup_test_support::kubelet::Kubelet;

async fn admin_client(cluster: &KubeCluster) -> kube::Client {
    kantup_k8s_apply::ClusterAccess {
        kubeconfig: Some(cluster.kubeconfig().to_path_buf()),
        context: None,
    }
    .client()
    .await
    .expect("admin client")
}

fn deployment(namespace: &str, name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n\
         \x20 template:\n    metadata: {{labels: {{app: {name}}}}}\n\
         \x20   spec: {{containers: [{{name: main, image: \"{image}\"}}]}}\n"
    )
}

fn deployment_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef::new("apps/v1", "Deployment", Some(namespace), name)
}

async fn wait(
    cluster: &KubeCluster,
    objects: &[ObjectRef],
    timeout: Duration,
) -> (Vec<ObjectReport>, bool, Vec<String>) {
    let client = admin_client(cluster).await;
    let mut seen = Vec::new();
    let outcome = Waiter::new(client)
        .wait(objects, &WaitOptions { timeout }, |report| {
            seen.push(format!("{} {}", report.object, report.readiness))
        })
        .await;
    (outcome.objects, outcome.timed_out, seen)
}

fn report<'a>(reports: &'a [ObjectReport], name: &str) -> &'a ObjectReport {
    reports
        .iter()
        .find(|r| r.object.name == name)
        .unwrap_or_else(|| panic!("no report for {name}: {reports:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn all_objects_become_current_as_the_kubelet_runs_their_pods() {
    let Some(cluster) = cluster_with_controllers_or_skip("all_objects_become_current") else {
        return;
    };
    let ns = cluster.namespace("ready-all");
    cluster.apply_yaml(&format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web, namespace: {ns}}}\ndata: {{a: b}}\n",
        deployment(&ns, "web", 2, "registry.invalid/web:1")
    ));
    let kubelet_ns = ns.clone();
    let kubelet = tokio::task::spawn_blocking(move || {
        let kubelet = Kubelet::new(cluster);
        for pod in kubelet.wait_for_pods(&kubelet_ns, "app=web", 2, Duration::from_secs(30)) {
            kubelet.run_ready(&kubelet_ns, &pod);
        }
        kubelet
    });
    let objects = [
        ObjectRef::new("v1", "Service", Some(&ns), "web"),
        ObjectRef::new("v1", "ConfigMap", Some(&ns), "web"),
        deployment_ref(&ns, "web"),
    ];
    let (reports, timed_out, seen) = wait(cluster, &objects, Duration::from_secs(60)).await;
    let kubelet = kubelet.await.unwrap();
    assert!(!timed_out, "timed out: {reports:#?}\nseen: {seen:#?}");
    for r in &reports {
        assert_eq!(r.readiness.status, Status::Current, "{r:?}");
    }
    assert_eq!(reports[2].object.kind, "Deployment");
    assert_eq!(
        reports[2].readiness.message,
        "Deployment is available. Replicas: 2"
    );
    // The Deployment was seen not ready first, then ready: the wait watched it change.
    assert!(
        seen.iter()
            .any(|s| s.starts_with("Deployment/web InProgress")),
        "{seen:#?}"
    );
    kubelet.release_pods(&ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_never_scheduled_time_out_naming_each_deployment_and_why() {
    let Some(cluster) = cluster_with_controllers_or_skip("pods_never_scheduled") else {
        return;
    };
    let ns = cluster.namespace("ready-unscheduled");
    cluster.apply_yaml(&format!(
        "{}---\n{}",
        deployment(&ns, "api", 2, "registry.invalid/api:1"),
        deployment(&ns, "worker", 1, "registry.invalid/worker:1")
    ));
    let objects = [deployment_ref(&ns, "api"), deployment_ref(&ns, "worker")];
    let (reports, timed_out, _) = wait(cluster, &objects, Duration::from_secs(4)).await;
    assert!(timed_out);
    let api = report(&reports, "api");
    assert_eq!(api.readiness.status, Status::InProgress, "{api:?}");
    assert_eq!(api.readiness.message, "Available: 0/2", "{api:?}");
    assert_eq!(
        api.details,
        ["Pending: not scheduled to a node yet (2 pods)"],
        "{api:?}"
    );
    let worker = report(&reports, "worker");
    assert_eq!(worker.readiness.message, "Available: 0/1", "{worker:?}");
    assert_eq!(
        worker.details,
        ["Pending: not scheduled to a node yet"],
        "{worker:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_back_off_is_named_with_image_and_message() {
    let Some(cluster) = cluster_with_controllers_or_skip("image_pull_back_off") else {
        return;
    };
    let ns = cluster.namespace("ready-pull");
    let image = "10.16.10.111/kant/cloudcore:v0.5.0";
    cluster.apply_yaml(&deployment(&ns, "cloudcore", 1, image));
    let kubelet_ns = ns.clone();
    let kubelet = tokio::task::spawn_blocking(move || {
        let kubelet = Kubelet::new(cluster);
        for pod in kubelet.wait_for_pods(&kubelet_ns, "app=cloudcore", 1, Duration::from_secs(30)) {
            kubelet.image_pull_back_off(&kubelet_ns, &pod);
        }
        kubelet
    })
    .await
    .unwrap();
    let (reports, timed_out, _) = wait(
        cluster,
        &[deployment_ref(&ns, "cloudcore")],
        Duration::from_secs(3),
    )
    .await;
    assert!(timed_out);
    let cloudcore = report(&reports, "cloudcore");
    assert_eq!(cloudcore.readiness.status, Status::InProgress);
    assert_eq!(
        cloudcore.details,
        [format!(
            "ImagePullBackOff {image}: Back-off pulling image \"{image}\""
        )],
        "{cloudcore:?}"
    );
    kubelet.release_pods(&ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_resource_with_ready_false_is_named_with_its_message() {
    let Some(cluster) = cluster_with_controllers_or_skip("custom_resource_ready_false") else {
        return;
    };
    let ns = cluster.namespace("ready-cr");
    let group = format!("{}.example.com", unique_name("ready"));
    cluster.apply_yaml(&format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: widgets.{group}}}\n\
         spec:\n  group: {group}\n  scope: Namespaced\n  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    subresources: {{status: {{}}}}\n\
         \x20   schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n"
    ));
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/widgets.{group}"),
        "--timeout=30s",
    ]);
    cluster.apply_yaml(&format!(
        "apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {ns}}}\nspec: {{size: 1}}\n"
    ));
    cluster.kubectl(&[
        "patch", &format!("widgets.{group}"), "w1", "-n", &ns, "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"NoBackend","message":"backend db is down"}]}}"#,
    ]);
    let objects = [
        ObjectRef::new(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            format!("widgets.{group}"),
        ),
        ObjectRef::new(format!("{group}/v1"), "Widget", Some(&ns), "w1"),
    ];
    let (reports, timed_out, _) = wait(cluster, &objects, Duration::from_secs(3)).await;
    assert!(timed_out);
    assert_eq!(
        reports[0].readiness.status,
        Status::Current,
        "{:?}",
        reports[0]
    );
    assert_eq!(reports[0].object.namespace, None);
    let widget = report(&reports, "w1");
    assert_eq!(widget.readiness.status, Status::InProgress);
    assert_eq!(widget.readiness.message, "backend db is down");
    assert_eq!(widget.readiness.reason, "NoBackend");
}

/// kstatus counts a Job that has started as Current (it is doing what its spec asks); one whose
/// pods failed past its backoff limit is Failed, and a wait ends on it at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_is_failed_with_its_reason_and_ends_the_wait_at_once() {
    let Some(cluster) = cluster_with_controllers_or_skip("failed_job") else {
        return;
    };
    let ns = cluster.namespace("ready-job");
    cluster.apply_yaml(&format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: migrate, namespace: {ns}}}\n\
         spec:\n  backoffLimit: 0\n  template:\n    spec: {{restartPolicy: Never, containers: [{{name: main, image: registry.invalid/migrate:1}}]}}\n"
    ));
    let kubelet_ns = ns.clone();
    let kubelet = tokio::task::spawn_blocking(move || {
        let kubelet = Kubelet::new(cluster);
        for pod in
            kubelet.wait_for_pods(&kubelet_ns, "job-name=migrate", 1, Duration::from_secs(30))
        {
            kubelet.finish(&kubelet_ns, &pod, false);
        }
        cluster.kubectl(&[
            "wait",
            "--for=condition=Failed",
            "job/migrate",
            "-n",
            &kubelet_ns,
            "--timeout=30s",
        ]);
        kubelet
    })
    .await
    .unwrap();
    let timeout = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let (reports, timed_out, _) = wait(
        cluster,
        &[ObjectRef::new("batch/v1", "Job", Some(&ns), "migrate")],
        timeout,
    )
    .await;
    assert!(!timed_out && started.elapsed() < timeout, "{reports:?}");
    let job = &reports[0];
    assert_eq!(job.readiness.status, Status::Failed, "{job:?}");
    assert_eq!(job.readiness.message, "Job Failed. failed: 1/1");
    assert!(
        job.details
            .iter()
            .any(|d| d.starts_with("Failed=True BackoffLimitExceeded")),
        "{job:?}"
    );
    kubelet.release_pods(&ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_reports_absent_objects_and_unserved_kinds() {
    let Some(cluster) = cluster_with_controllers_or_skip("snapshot_absent") else {
        return;
    };
    let ns = cluster.namespace("ready-snapshot");
    cluster.apply_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: present, namespace: {ns}}}\n"
    ));
    let objects = [
        ObjectRef::new("v1", "ConfigMap", Some(&ns), "present"),
        ObjectRef::new("v1", "ConfigMap", Some(&ns), "absent"),
        ObjectRef::new("nothing.example.com/v1", "Gizmo", Some(&ns), "g"),
    ];
    let reports = Waiter::new(admin_client(cluster).await)
        .snapshot(&objects)
        .await;
    let statuses: Vec<Status> = reports.iter().map(|r| r.readiness.status).collect();
    assert_eq!(
        statuses,
        [Status::Current, Status::NotFound, Status::Unknown],
        "{reports:?}"
    );
    assert!(
        reports[2]
            .readiness
            .message
            .contains("kind Gizmo of nothing.example.com/v1 is not served"),
        "{:?}",
        reports[2]
    );
    // A wait on a kind that is not served does not wait for the timeout on it alone.
    let (reports, timed_out, _) = wait(cluster, &objects[2..], Duration::from_secs(30)).await;
    assert!(!timed_out);
    assert_eq!(reports[0].readiness.status, Status::Unknown);
}
