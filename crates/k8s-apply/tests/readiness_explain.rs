//! What is wrong underneath a workload, from pods and conditions as the API server returns
//! them (pure: JSON in, lines out). The cluster tests (readiness_cluster.rs) show the same
//! lines for pods a test-kubelet really set.

use kantup_k8s_apply::readiness::explain::{explain, pod_problems, selector_matches};
use serde_json::{Value, json};

fn pod(name: &str, labels: Value, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop", "labels": labels},
           "spec": spec, "status": status})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop", "generation": 1},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
           "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                      "conditions": [
                          {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                           "message": "Deployment does not have minimum availability."}]}})
}

#[test]
fn crash_loop_names_the_container_and_its_last_exit() {
    let p = pod(
        "web-1",
        json!({"app": "web"}),
        json!({"nodeName": "n1", "containers": [{"name": "app", "image": "reg/web:1"}]}),
        json!({"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "reg/web:1", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=app"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
    );
    assert_eq!(
        pod_problems(&p),
        [
            "CrashLoopBackOff container app: back-off 5m0s restarting failed container=app (last exit code 137, OOMKilled)"
        ]
    );
}

#[test]
fn an_unschedulable_pod_gives_the_schedulers_message_and_an_unbound_one_says_so() {
    let unschedulable = pod(
        "web-1",
        json!({"app": "web"}),
        json!({"containers": [{"name": "app", "image": "reg/web:1"}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
               "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
    );
    assert_eq!(
        pod_problems(&unschedulable),
        ["Unschedulable: 0/3 nodes are available: 3 Insufficient memory."]
    );
    let unbound = pod(
        "web-2",
        json!({"app": "web"}),
        json!({"containers": []}),
        json!({"phase": "Pending"}),
    );
    assert_eq!(
        pod_problems(&unbound),
        ["Pending: not scheduled to a node yet"]
    );
}

#[test]
fn init_container_image_problems_take_the_image_from_the_spec_when_status_has_none() {
    let p = pod(
        "web-1",
        json!({"app": "web"}),
        json!({"nodeName": "n1", "initContainers": [{"name": "migrate", "image": "reg/migrate:2"}],
               "containers": [{"name": "app", "image": "reg/web:1"}]}),
        json!({"phase": "Pending", "initContainerStatuses": [{
            "name": "migrate", "image": "", "ready": false,
            "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}}],
            "containerStatuses": [{"name": "app", "image": "reg/web:1", "ready": false,
            "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    assert_eq!(
        pod_problems(&p),
        ["ErrImagePull reg/migrate:2: manifest unknown"]
    );
}

#[test]
fn running_and_ready_or_finished_pods_have_no_problems() {
    let ready = pod(
        "web-1",
        json!({"app": "web"}),
        json!({"nodeName": "n1"}),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}),
    );
    assert!(pod_problems(&ready).is_empty());
    let done = pod(
        "job-1",
        json!({}),
        json!({"nodeName": "n1"}),
        json!({"phase": "Succeeded"}),
    );
    assert!(pod_problems(&done).is_empty());
}

#[test]
fn a_workloads_explanation_counts_pods_sharing_a_problem_and_skips_other_workloads_pods() {
    let waiting = |name: &str, app: &str| {
        pod(
            name,
            json!({"app": app}),
            json!({"nodeName": "n1", "containers": [{"name": "app", "image": "reg/web:2"}]}),
            json!({"phase": "Pending", "containerStatuses": [{"name": "app", "image": "reg/web:2",
                   "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"reg/web:2\""}}}]}),
        )
    };
    let pods = [
        waiting("web-1", "web"),
        waiting("web-2", "web"),
        waiting("api-1", "api"),
    ];
    assert_eq!(
        explain(&deployment(), &pods),
        ["ImagePullBackOff reg/web:2: Back-off pulling image \"reg/web:2\" (2 pods)"]
    );
    // Without pods to say why, the condition's message is what there is.
    assert_eq!(
        explain(&deployment(), &[]),
        [
            "Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability."
        ]
    );
}

#[test]
fn selectors_match_labels_and_expressions() {
    let labels = json!({"app": "web", "tier": "front"});
    let selector = |s: Value| selector_matches(&s, &labels);
    assert!(selector(json!({"matchLabels": {"app": "web"}})));
    assert!(!selector(json!({"matchLabels": {"app": "api"}})));
    assert!(selector(
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]})
    ));
    assert!(!selector(
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]})
    ));
    assert!(selector(
        json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]})
    ));
    assert!(selector(
        json!({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]})
    ));
    assert!(
        !selector(json!({})),
        "an empty selector matches nothing here"
    );
}
