//! What is wrong underneath an object that is not ready, as pure functions of JSON: a pod's
//! waiting or failing containers (with their images), an unscheduled pod, the message of a
//! condition that is not as it should be.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compute::conditions;

/// The problems of one pod, one line each; empty for a running, ready or finished pod.
///
/// ```
/// let pod = serde_json::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cloudcore-0"},
///     "spec": {"nodeName": "edge-1", "containers": [{"name": "cloudcore",
///              "image": "10.16.10.111/kant/cloudcore:v0.5.0"}]},
///     "status": {"phase": "Pending", "containerStatuses": [{"name": "cloudcore",
///         "image": "10.16.10.111/kant/cloudcore:v0.5.0", "ready": false,
///         "state": {"waiting": {"reason": "ImagePullBackOff",
///                               "message": "Back-off pulling image"}}}]},
/// });
/// assert_eq!(
///     kantup_k8s_apply::readiness::explain::pod_problems(&pod),
///     ["ImagePullBackOff 10.16.10.111/kant/cloudcore:v0.5.0: Back-off pulling image"]
/// );
/// ```
pub fn pod_problems(pod: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let status = pod.get("status").unwrap_or(&Value::Null);
    let phase = status.get("phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" {
        return problems;
    }
    let conditions = conditions(pod).unwrap_or_default();
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !bound {
        match conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        {
            Some(c) => problems.push(with_message(
                if c.reason.is_empty() {
                    "Unschedulable"
                } else {
                    &c.reason
                },
                &c.message,
            )),
            None => problems.push("Pending: not scheduled to a node yet".to_string()),
        }
        return problems;
    }
    if phase == "Failed" {
        let reason = status.get("reason").and_then(Value::as_str).unwrap_or("");
        let message = status.get("message").and_then(Value::as_str).unwrap_or("");
        problems.push(with_message(
            &format!("Failed{}", prefixed(" ", reason)),
            message,
        ));
    }
    for key in ["initContainerStatuses", "containerStatuses"] {
        for container in status
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(problem) = container_problem(pod, container) {
                problems.push(problem);
            }
        }
    }
    if problems.is_empty()
        && phase == "Running"
        && let Some(ready) = conditions.iter().find(|c| c.type_ == "Ready")
        && ready.status != "True"
    {
        problems.push(with_message(
            &format!("Running, not Ready{}", prefixed(" ", &ready.reason)),
            &ready.message,
        ));
    }
    problems
}

/// One container's problem: waiting for a reason other than plain creation, or last ended in
/// an error while now waiting to restart.
fn container_problem(pod: &Value, container: &Value) -> Option<String> {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    let waiting = container.pointer("/state/waiting")?;
    let reason = waiting.get("reason").and_then(Value::as_str).unwrap_or("");
    if matches!(reason, "" | "ContainerCreating" | "PodInitializing") {
        return None;
    }
    let message = waiting.get("message").and_then(Value::as_str).unwrap_or("");
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .or_else(|| spec_image(pod, name));
    let mut line = match reason {
        // Image problems are about the image; name it the way the operator will look it up.
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
            with_message(
                &format!("{reason} {}", image.as_deref().unwrap_or(name)),
                message,
            )
        }
        _ => with_message(&format!("{reason} container {name}"), message),
    };
    if let Some(last) = container.pointer("/lastState/terminated") {
        let code = last.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        let why = last.get("reason").and_then(Value::as_str).unwrap_or("");
        line.push_str(&format!(" (last exit code {code}{})", prefixed(", ", why)));
    }
    Some(line)
}

fn spec_image(pod: &Value, container: &str) -> Option<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|key| {
            pod.pointer(&format!("/spec/{key}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|c| c.get("image").and_then(Value::as_str))
        .map(str::to_string)
}

fn with_message(head: &str, message: &str) -> String {
    if message.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {message}")
    }
}

fn prefixed(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}

/// The conditions of `object` that say something is wrong, as `Type=Status reason: message`:
/// `Ready`, `Available`, `Progressing`, `Established`, `NamesAccepted` that are not `True`, and
/// `Failed`, `ReplicaFailure`, `Stalled` that are.
pub fn condition_problems(object: &Value) -> Vec<String> {
    bad_conditions(object).map(|(_, line)| line).collect()
}

/// [`condition_problems`] with whether each is decisive: a failure that no pod explains
/// better (`Failed`, `ReplicaFailure`, `Stalled`, a progress deadline exceeded), as opposed to
/// a symptom (`Available=False` while pods are pending).
fn bad_conditions(object: &Value) -> impl Iterator<Item = (bool, String)> {
    conditions(object)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let decisive = match c.type_.as_str() {
                "Ready" | "Available" | "Progressing" | "Established" | "NamesAccepted"
                    if c.status == "False" || c.status == "Unknown" =>
                {
                    c.reason == "ProgressDeadlineExceeded"
                }
                "Failed" | "ReplicaFailure" | "Stalled" if c.status == "True" => true,
                _ => return None,
            };
            let line = with_message(
                &format!("{}={}{}", c.type_, c.status, prefixed(" ", &c.reason)),
                &c.message,
            );
            Some((decisive, line))
        })
}

/// Whether a workload's pods are found through `spec.selector` (Deployment, StatefulSet,
/// DaemonSet, ReplicaSet, Job).
pub fn has_pods(object: &Value) -> bool {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    matches!(
        (super::compute::api_group(api_version), kind),
        (
            "apps" | "extensions",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) | ("batch", "Job")
    )
}

/// Whether `labels` (an object's `metadata.labels`) match a LabelSelector (`matchLabels` and
/// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`). An empty selector matches
/// nothing here: a workload always has one, and matching every pod would mislead.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| label(key) == value.as_str());
    let expressions_ok = expressions.into_iter().flatten().all(|expression| {
        let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match expression.get("operator").and_then(Value::as_str) {
            Some("In") => label(key).is_some_and(|v| values.contains(&v)),
            Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
            Some("Exists") => label(key).is_some(),
            Some("DoesNotExist") => label(key).is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// The pods of `workload` among `pods` (same namespace, labels matching its selector).
pub fn pods_of<'a>(workload: &Value, pods: impl IntoIterator<Item = &'a Value>) -> Vec<&'a Value> {
    let Some(selector) = workload.pointer("/spec/selector") else {
        return Vec::new();
    };
    let namespace = workload.pointer("/metadata/namespace");
    pods.into_iter()
        .filter(|pod| pod.pointer("/metadata/namespace") == namespace)
        .filter(|pod| {
            selector_matches(
                selector,
                pod.pointer("/metadata/labels").unwrap_or(&Value::Null),
            )
        })
        .collect()
}

/// What is wrong under `object`: its bad conditions, then its pods' problems, each distinct
/// line once with the number of pods that share it (`... (2 pods)`). When pods say what is
/// wrong, only the decisive conditions are kept (`Available=False` says nothing more then).
pub fn explain<'a>(object: &Value, pods: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut pod_lines = Vec::new();
    if has_pods(object) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut order = Vec::new();
        for pod in pods_of(object, pods) {
            for problem in pod_problems(pod) {
                let count = counts.entry(problem.clone()).or_insert(0);
                if *count == 0 {
                    order.push(problem);
                }
                *count += 1;
            }
        }
        for problem in order {
            match counts[&problem] {
                1 => pod_lines.push(problem),
                n => pod_lines.push(format!("{problem} ({n} pods)")),
            }
        }
    }
    let mut lines: Vec<String> = bad_conditions(object)
        .filter(|(decisive, _)| *decisive || pod_lines.is_empty())
        .map(|(_, line)| line)
        .collect();
    lines.extend(pod_lines);
    lines
}
