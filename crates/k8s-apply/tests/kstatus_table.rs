//! Differential test against kstatus itself (sigs.k8s.io/cli-utils v0.37.2, built into
//! `.tools/kstatus-oracle` by `scripts/build-go-oracle.sh kstatus-oracle`): for every object of the table,
//! kantup's readiness must have kstatus's status and message. Where kstatus returns an error,
//! kantup must say Unknown.

use std::io::Write;
use std::process::{Command, Stdio};

use kantup_k8s_apply::readiness::{Status, compute};
use serde_json::{Value, json};

/// A creation time long past: kstatus's 15 s schedule window has run out for it.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

fn object(api_version: &str, kind: &str, rest: Value) -> Value {
    let mut object = json!({"apiVersion": api_version, "kind": kind,
                            "metadata": {"name": "x", "namespace": "ns"}});
    for (key, value) in rest.as_object().expect("an object").clone() {
        if key == "metadata" {
            for (k, v) in value.as_object().expect("metadata object") {
                object["metadata"][k] = v.clone();
            }
        } else {
            object[key] = value;
        }
    }
    object
}

fn deployment(rest: Value) -> Value {
    object("apps/v1", "Deployment", rest)
}

fn cases() -> Vec<(&'static str, Value)> {
    let gen1 = json!({"generation": 1});
    let available = json!([
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    ]);
    vec![
        // Generic rules.
        (
            "terminating",
            object(
                "v1",
                "ConfigMap",
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
            ),
        ),
        (
            "generation not observed",
            deployment(json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}})),
        ),
        (
            "generation without observedGeneration",
            object(
                "example.com/v1",
                "Widget",
                json!({"metadata": {"generation": 3}, "status": {}}),
            ),
        ),
        (
            "generation not an integer",
            object(
                "example.com/v1",
                "Widget",
                json!({"metadata": {"generation": "3"}}),
            ),
        ),
        (
            "Reconciling=True on a custom kind",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Reconciling", "status": "True", "reason": "Working", "message": "rolling out"}]}}),
            ),
        ),
        (
            "Stalled=True on a custom kind",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "Broken", "message": "backend refused the config"}]}}),
            ),
        ),
        (
            "Stalled=True beats the Deployment rule",
            deployment(
                json!({"spec": {"replicas": 1}, "status": {"conditions": [{"type": "Stalled", "status": "True", "message": "stuck"}]}}),
            ),
        ),
        (
            "Reconciling=False means nothing",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Reconciling", "status": "False"}]}}),
            ),
        ),
        (
            "Ready=True on a custom kind",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        ),
        (
            "Ready=False on a custom kind",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NoBackend", "message": "backend db is down"}]}}),
            ),
        ),
        (
            "Ready=Unknown on a custom kind",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "Pending", "message": "not checked yet"}]}}),
            ),
        ),
        (
            "custom kind without conditions",
            object("example.com/v1", "Widget", json!({"spec": {"size": 1}})),
        ),
        (
            "conditions not a list",
            object(
                "example.com/v1",
                "Widget",
                json!({"status": {"conditions": "Ready"}}),
            ),
        ),
        (
            "status not an object",
            object("example.com/v1", "Widget", json!({"status": "fine"})),
        ),
        (
            "Ready condition ignored on a typed kind",
            object(
                "v1",
                "Service",
                json!({"spec": {"type": "ClusterIP"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        ),
        (
            "ConfigMap",
            object("v1", "ConfigMap", json!({"data": {"a": "b"}})),
        ),
        ("Secret", object("v1", "Secret", json!({"type": "Opaque"}))),
        (
            "CronJob",
            object("batch/v1", "CronJob", json!({"metadata": gen1})),
        ),
        // Deployment.
        (
            "Deployment available",
            deployment(
                json!({"metadata": gen1, "spec": {"replicas": 2, "progressDeadlineSeconds": 600}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "conditions": available}}),
            ),
        ),
        (
            "Deployment default replicas",
            deployment(
                json!({"spec": {}, "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": available}}),
            ),
        ),
        (
            "Deployment fewer replicas",
            deployment(json!({"spec": {"replicas": 3}, "status": {"replicas": 1}})),
        ),
        (
            "Deployment fewer updated",
            deployment(
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "updatedReplicas": 1}}),
            ),
        ),
        (
            "Deployment extra pods",
            deployment(
                json!({"spec": {"replicas": 1}, "status": {"replicas": 3, "updatedReplicas": 1}}),
            ),
        ),
        (
            "Deployment fewer available",
            deployment(
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "readyReplicas": 2}}),
            ),
        ),
        (
            "Deployment fewer ready",
            deployment(
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 1}}),
            ),
        ),
        (
            "Deployment progress deadline exceeded",
            deployment(
                json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 60}, "status": {"replicas": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]}}),
            ),
        ),
        (
            "Deployment counts fine, ReplicaSet not available",
            deployment(
                json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600}, "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}}),
            ),
        ),
        (
            "Deployment not available",
            deployment(
                json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600}, "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": [{"type": "Available", "status": "False"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}}),
            ),
        ),
        (
            "Deployment without deadline needs no Progressing",
            deployment(
                json!({"spec": {"replicas": 1}, "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}),
            ),
        ),
        (
            "Deployment zero replicas",
            deployment(json!({"spec": {"replicas": 0}, "status": {}})),
        ),
        (
            "Deployment replicas not an integer",
            deployment(
                json!({"spec": {"replicas": "2"}, "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": available}}),
            ),
        ),
        (
            "extensions Deployment",
            object(
                "extensions/v1beta1",
                "Deployment",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 1}}),
            ),
        ),
        // StatefulSet.
        (
            "StatefulSet OnDelete",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete"}}, "status": {}}),
            ),
        ),
        (
            "StatefulSet fewer replicas",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 3}, "status": {"replicas": 2}}),
            ),
        ),
        (
            "StatefulSet fewer ready",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 2}}),
            ),
        ),
        (
            "StatefulSet extra pods",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 1}, "status": {"replicas": 2, "readyReplicas": 2}}),
            ),
        ),
        (
            "StatefulSet partition rolling",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}, "status": {"replicas": 4, "readyReplicas": 4, "updatedReplicas": 1}}),
            ),
        ),
        (
            "StatefulSet partition done",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}, "status": {"replicas": 4, "readyReplicas": 4, "updatedReplicas": 2}}),
            ),
        ),
        (
            "StatefulSet fewer current",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2, "currentReplicas": 1}}),
            ),
        ),
        (
            "StatefulSet revision mismatch",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "currentRevision": "a-1", "updateRevision": "a-2"}}),
            ),
        ),
        (
            "StatefulSet current",
            object(
                "apps/v1",
                "StatefulSet",
                json!({"metadata": gen1, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "currentRevision": "a-2", "updateRevision": "a-2"}}),
            ),
        ),
        // DaemonSet.
        (
            "DaemonSet without generation",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"status": {"desiredNumberScheduled": 1}}),
            ),
        ),
        (
            "DaemonSet not observed",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"desiredNumberScheduled": 1}}),
            ),
        ),
        (
            "DaemonSet no desired number",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1}}),
            ),
        ),
        (
            "DaemonSet fewer scheduled",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 2}}),
            ),
        ),
        (
            "DaemonSet fewer updated",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 1}}),
            ),
        ),
        (
            "DaemonSet fewer available",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
            ),
        ),
        (
            "DaemonSet fewer ready",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 1}}),
            ),
        ),
        (
            "DaemonSet current",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 3}}),
            ),
        ),
        (
            "DaemonSet zero desired",
            object(
                "apps/v1",
                "DaemonSet",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "desiredNumberScheduled": 0}}),
            ),
        ),
        // ReplicaSet.
        (
            "ReplicaSet replica failure",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 1}, "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}]}}),
            ),
        ),
        (
            "ReplicaSet fewer labelled",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "fullyLabeledReplicas": 1}}),
            ),
        ),
        (
            "ReplicaSet fewer available",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 1}}),
            ),
        ),
        (
            "ReplicaSet fewer ready",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 1}}),
            ),
        ),
        (
            "ReplicaSet extra pods",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 3, "fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}}),
            ),
        ),
        (
            "ReplicaSet current",
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}}),
            ),
        ),
        // Pod.
        (
            "Pod succeeded",
            object("v1", "Pod", json!({"status": {"phase": "Succeeded"}})),
        ),
        (
            "Pod failed",
            object("v1", "Pod", json!({"status": {"phase": "Failed"}})),
        ),
        (
            "Pod running and ready",
            object(
                "v1",
                "Pod",
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        ),
        (
            "Pod running, not ready",
            object(
                "v1",
                "Pod",
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        ),
        (
            "Pod crash looping",
            object(
                "v1",
                "Pod",
                json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}},
            {"name": "side", "state": {"running": {}}},
            {"name": "db", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            ),
        ),
        (
            "Pod pending",
            object("v1", "Pod", json!({"status": {"phase": "Pending"}})),
        ),
        (
            "Pod image pull back-off is pending",
            object(
                "v1",
                "Pod",
                json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": "10.16.10.111/kant/cloudcore:v0.5.0", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}),
            ),
        ),
        (
            "Pod unschedulable for long",
            object(
                "v1",
                "Pod",
                json!({"metadata": {"creationTimestamp": LONG_AGO}, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}),
            ),
        ),
        (
            "Pod unschedulable, no creation time",
            object(
                "v1",
                "Pod",
                json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}),
            ),
        ),
        (
            "Pod without phase",
            object("v1", "Pod", json!({"spec": {"containers": []}})),
        ),
        (
            "Pod unknown phase",
            object("v1", "Pod", json!({"status": {"phase": "Unknown"}})),
        ),
        // Job.
        (
            "Job complete",
            object(
                "batch/v1",
                "Job",
                json!({"spec": {"completions": 2}, "status": {"succeeded": 2, "startTime": LONG_AGO, "conditions": [{"type": "Complete", "status": "True"}]}}),
            ),
        ),
        (
            "Job failed",
            object(
                "batch/v1",
                "Job",
                json!({"spec": {"parallelism": 2}, "status": {"failed": 7, "startTime": LONG_AGO, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}),
            ),
        ),
        (
            "Job not started",
            object("batch/v1", "Job", json!({"spec": {}, "status": {}})),
        ),
        (
            "Job running",
            object(
                "batch/v1",
                "Job",
                json!({"spec": {}, "status": {"startTime": LONG_AGO, "active": 1, "failed": 1}}),
            ),
        ),
        (
            "Job suspended",
            object(
                "batch/v1",
                "Job",
                json!({"spec": {"suspend": true}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
            ),
        ),
        // PersistentVolumeClaim.
        (
            "PVC bound",
            object(
                "v1",
                "PersistentVolumeClaim",
                json!({"status": {"phase": "Bound"}}),
            ),
        ),
        (
            "PVC pending",
            object(
                "v1",
                "PersistentVolumeClaim",
                json!({"status": {"phase": "Pending"}}),
            ),
        ),
        (
            "PVC without status",
            object("v1", "PersistentVolumeClaim", json!({"spec": {}})),
        ),
        // Service.
        (
            "Service ClusterIP",
            object("v1", "Service", json!({"spec": {"clusterIP": "10.0.0.1"}})),
        ),
        (
            "Service LoadBalancer without cluster IP",
            object("v1", "Service", json!({"spec": {"type": "LoadBalancer"}})),
        ),
        (
            "Service LoadBalancer with cluster IP",
            object(
                "v1",
                "Service",
                json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.2"}, "status": {"loadBalancer": {}}}),
            ),
        ),
        // PodDisruptionBudget.
        (
            "PDB observed",
            object(
                "policy/v1",
                "PodDisruptionBudget",
                json!({"metadata": gen1, "status": {"observedGeneration": 1, "disruptionsAllowed": 0}}),
            ),
        ),
        (
            "PDB not observed",
            object(
                "policy/v1",
                "PodDisruptionBudget",
                json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}),
            ),
        ),
        // CustomResourceDefinition.
        (
            "CRD established",
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}}),
            ),
        ),
        (
            "CRD names not accepted",
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict", "message": "\"WidgetList\" is already in use"}]}}),
            ),
        ),
        (
            "CRD installing",
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "Established", "status": "False", "reason": "Installing", "message": "the initial names have been accepted"}]}}),
            ),
        ),
        (
            "CRD not established",
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "Established", "status": "False", "reason": "Terminating", "message": "being deleted"}]}}),
            ),
        ),
        (
            "CRD without status",
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"spec": {}}),
            ),
        ),
    ]
}

#[derive(Debug, serde::Deserialize)]
struct Verdict {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

fn kstatus(objects: &[Value]) -> Vec<Verdict> {
    let mut child = Command::new(kantup_test_support::tools::kstatus_oracle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kstatus-oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(objects).expect("encode"))
        .expect("write objects");
    let output = child.wait_with_output().expect("wait for kstatus-oracle");
    assert!(
        output.status.success(),
        "kstatus-oracle: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("kstatus-oracle prints JSON")
}

#[test]
fn readiness_equals_kstatus_for_every_case() {
    let cases = cases();
    let objects: Vec<Value> = cases.iter().map(|(_, o)| o.clone()).collect();
    let verdicts = kstatus(&objects);
    assert_eq!(verdicts.len(), cases.len());
    let mut disagreements = Vec::new();
    for ((name, object), verdict) in cases.iter().zip(&verdicts) {
        let ours = compute(object);
        let agrees = if verdict.error.is_empty() {
            ours.status.as_str() == verdict.status && ours.message == verdict.message
        } else {
            ours.status == Status::Unknown
        };
        if !agrees {
            disagreements.push(format!(
                "{name}: kantup {ours:?}, kstatus {verdict:?}\n  {object}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases differ from kstatus:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    // The table covers every status compute can give.
    for status in [
        Status::Current,
        Status::InProgress,
        Status::Failed,
        Status::Terminating,
        Status::Unknown,
    ] {
        assert!(
            cases.iter().any(|(_, o)| compute(o).status == status),
            "no case gives {status}"
        );
    }
}

/// A pod created just now is inside kstatus's schedule window: not yet Failed.
#[test]
fn fresh_unschedulable_pod_is_in_progress_like_kstatus() {
    let now = jiff::Timestamp::now().to_string();
    let pod = object(
        "v1",
        "Pod",
        json!({"metadata": {"creationTimestamp": now}, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}),
    );
    let verdict = &kstatus(std::slice::from_ref(&pod))[0];
    let ours = compute(&pod);
    assert_eq!(
        (ours.status.as_str(), ours.message.as_str()),
        (verdict.status.as_str(), verdict.message.as_str())
    );
    assert_eq!(ours.status, Status::InProgress);
}
