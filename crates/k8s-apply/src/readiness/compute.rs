//! kstatus's rules, as pure functions of an object's JSON.
//!
//! The order is kstatus's: deletion, then `observedGeneration` against `generation`, then the
//! `Reconciling` / `Stalled` conditions of any kind, then the rule of the object's type, then a
//! `Ready` condition, and last "current" for a kind no rule knows. The messages are kstatus's
//! own words, so a report reads the same as Helm 4's or Flux's.

use serde_json::Value;

use super::{Readiness, Status};

/// How long a Pod may be unschedulable before kstatus calls it Failed (its `ScheduleWindow`).
pub const SCHEDULE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15);

/// The readiness of `object` (JSON as the API server returns it), judged now.
///
/// ```
/// use kantup_k8s_apply::readiness::{compute, Status};
/// let deployment = serde_json::json!({
///     "apiVersion": "apps/v1", "kind": "Deployment",
///     "metadata": {"name": "web", "generation": 2},
///     "spec": {"replicas": 2},
///     "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
///                "readyReplicas": 1, "availableReplicas": 1},
/// });
/// let readiness = compute(&deployment);
/// assert_eq!(readiness.status, Status::InProgress);
/// assert_eq!(readiness.message, "Available: 1/2");
/// ```
pub fn compute(object: &Value) -> Readiness {
    compute_at(object, jiff::Timestamp::now())
}

/// [`compute`] with the clock given: only a Pod's schedule window depends on it.
pub fn compute_at(object: &Value, now: jiff::Timestamp) -> Readiness {
    match generic(object).and_then(|decided| match decided {
        Some(readiness) => Ok(readiness),
        None => by_type(object, now),
    }) {
        Ok(readiness) => readiness,
        Err(message) => Readiness::new(Status::Unknown, "", message),
    }
}

type Rule = Result<Readiness, String>;

fn current(message: impl Into<String>) -> Readiness {
    Readiness::new(Status::Current, "", message)
}

fn in_progress(reason: &str, message: impl Into<String>) -> Readiness {
    Readiness::new(Status::InProgress, reason, message)
}

fn failed(reason: &str, message: impl Into<String>) -> Readiness {
    Readiness::new(Status::Failed, reason, message)
}

fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// The API group of `apiVersion` (`""` for the core group).
pub(crate) fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// The value at `path`, `None` when a step is missing or not an object (as kstatus's lookups).
fn field<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

/// An integer field, or `default` when absent or not an integer (kstatus's `GetIntField`).
fn int(object: &Value, path: &[&str], default: i64) -> i64 {
    field(object, path)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// A string field, or `default` when absent or not a string (kstatus's `GetStringField`).
fn string<'a>(object: &'a Value, path: &[&str], default: &'a str) -> &'a str {
    field(object, path)
        .and_then(Value::as_str)
        .unwrap_or(default)
}

/// An integer that must be one when present: `Err` names the field otherwise.
fn strict_int(object: &Value, path: &[&str]) -> Result<Option<i64>, String> {
    match field(object, path) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            format!(
                "looking up {} from resource: {value} is not an integer",
                path.join(".")
            )
        }),
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// `type`.
    pub type_: String,
    /// `status`: `True`, `False` or `Unknown`.
    pub status: String,
    /// `reason` (empty when absent).
    pub reason: String,
    /// `message` (empty when absent).
    pub message: String,
}

/// `status.conditions` of `object`; `Err` when they are not a list of objects with string fields.
pub fn conditions(object: &Value) -> Result<Vec<Condition>, String> {
    let status = match object.get("status") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(status)) => status,
        Some(other) => return Err(format!("status is not an object: {other}")),
    };
    let entries = match status.get("conditions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(other) => return Err(format!("status.conditions is not a list: {other}")),
    };
    let text = |entry: &serde_json::Map<String, Value>, key: &str| match entry.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "status.conditions[].{key} is not a string: {other}"
        )),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Value::Null => out.push(Condition::default()),
            Value::Object(entry) => out.push(Condition {
                type_: text(entry, "type")?,
                status: text(entry, "status")?,
                reason: text(entry, "reason")?,
                message: text(entry, "message")?,
            }),
            other => return Err(format!("status.conditions has a non-object entry: {other}")),
        }
    }
    Ok(out)
}

fn has_condition(conditions: &[Condition], type_: &str, status: &str) -> Option<Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .cloned()
}

/// The rules for every kind: `Ok(None)` when they decide nothing.
fn generic(object: &Value) -> Result<Option<Readiness>, String> {
    match field(object, &["metadata", "deletionTimestamp"]) {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(_)) => {
            return Ok(Some(Readiness::new(
                Status::Terminating,
                "",
                "Resource scheduled for deletion",
            )));
        }
        Some(other) => {
            return Err(format!(
                "looking up metadata.deletionTimestamp from resource: {other} is not a string"
            ));
        }
    }
    if let Some(generation) = strict_int(object, &["metadata", "generation"])?
        && let Some(observed) = strict_int(object, &["status", "observedGeneration"])?
        && observed != generation
    {
        return Ok(Some(in_progress(
            "LatestGenerationNotObserved",
            format!(
                "{} generation is {generation}, but latest observed generation is {observed}",
                kind(object)
            ),
        )));
    }
    for condition in conditions(object)? {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Reconciling" => return Ok(Some(in_progress(&condition.reason, condition.message))),
            "Stalled" => return Ok(Some(failed(&condition.reason, condition.message))),
            _ => {}
        }
    }
    Ok(None)
}

fn by_type(object: &Value, now: jiff::Timestamp) -> Rule {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    match (api_group(api_version), kind(object)) {
        ("", "Service") => Ok(service(object)),
        ("", "Pod") => pod(object, now),
        ("", "Secret" | "ConfigMap") | ("batch", "CronJob") => {
            Ok(current("Resource is always ready"))
        }
        ("", "PersistentVolumeClaim") => Ok(persistent_volume_claim(object)),
        ("apps", "StatefulSet") => Ok(stateful_set(object)),
        ("apps" | "extensions", "DaemonSet") => daemon_set(object),
        ("apps" | "extensions", "Deployment") => deployment(object),
        ("apps" | "extensions", "ReplicaSet") => replica_set(object),
        ("policy", "PodDisruptionBudget") => {
            // The generation rule has already run: the controller saw this spec.
            Ok(current("AllowedDisruptions has been computed."))
        }
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => custom_resource_definition(object),
        _ => Ok(ready_condition(object)?.unwrap_or_else(|| current("Resource is current"))),
    }
}

/// The `Ready` condition that many custom resources carry (not a Kubernetes convention, but common).
fn ready_condition(object: &Value) -> Result<Option<Readiness>, String> {
    for condition in conditions(object)? {
        if condition.type_ != "Ready" {
            continue;
        }
        match condition.status.as_str() {
            "True" => return Ok(Some(current("Resource is Ready"))),
            "False" | "Unknown" => {
                return Ok(Some(in_progress(&condition.reason, condition.message)));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn deployment(object: &Value) -> Rule {
    // Without a progress deadline the controller never sets `Progressing`: count it as progressing.
    let mut progressing = int(
        object,
        &["spec", "progressDeadlineSeconds"],
        i32::MAX as i64,
    ) == i32::MAX as i64;
    let mut available = false;
    for condition in conditions(object)? {
        match condition.type_.as_str() {
            "Progressing" if condition.reason == "ProgressDeadlineExceeded" => {
                return Ok(failed(&condition.reason, "Progress deadline exceeded"));
            }
            "Progressing" => {
                progressing |=
                    condition.status == "True" && condition.reason == "NewReplicaSetAvailable";
            }
            "Available" => available |= condition.status == "True",
            _ => {}
        }
    }
    let spec = int(object, &["spec", "replicas"], 1);
    let replicas = int(object, &["status", "replicas"], 0);
    let updated = int(object, &["status", "updatedReplicas"], 0);
    let ready = int(object, &["status", "readyReplicas"], 0);
    let available_replicas = int(object, &["status", "availableReplicas"], 0);
    Ok(if spec > replicas {
        in_progress("LessReplicas", format!("Replicas: {replicas}/{spec}"))
    } else if spec > updated {
        in_progress("LessUpdated", format!("Updated: {updated}/{spec}"))
    } else if replicas > spec {
        in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        )
    } else if updated > available_replicas {
        in_progress(
            "LessAvailable",
            format!("Available: {available_replicas}/{updated}"),
        )
    } else if spec > ready {
        in_progress("LessReady", format!("Ready: {ready}/{spec}"))
    } else if !progressing {
        in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available")
    } else if !available {
        in_progress("DeploymentNotAvailable", "Deployment not Available")
    } else {
        current(format!("Deployment is available. Replicas: {replicas}"))
    })
}

fn replica_set(object: &Value) -> Rule {
    if has_condition(&conditions(object)?, "ReplicaFailure", "True").is_some() {
        return Ok(in_progress(
            "ReplicaFailure",
            "Replica Failure condition. Check Pods",
        ));
    }
    let spec = int(object, &["spec", "replicas"], 1);
    let replicas = int(object, &["status", "replicas"], 0);
    let ready = int(object, &["status", "readyReplicas"], 0);
    let available = int(object, &["status", "availableReplicas"], 0);
    let labelled = int(object, &["status", "fullyLabeledReplicas"], 0);
    Ok(if spec > labelled {
        in_progress("LessLabelled", format!("Labelled: {labelled}/{spec}"))
    } else if spec > available {
        in_progress("LessAvailable", format!("Available: {available}/{spec}"))
    } else if spec > ready {
        in_progress("LessReady", format!("Ready: {ready}/{spec}"))
    } else if replicas > spec {
        in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        )
    } else {
        current(format!("ReplicaSet is available. Replicas: {replicas}"))
    })
}

fn stateful_set(object: &Value) -> Readiness {
    // OnDelete: the user replaces pods by hand, so there is no rollout to wait for.
    if string(object, &["spec", "updateStrategy", "type"], "") == "OnDelete" {
        return current("StatefulSet is using the ondelete update strategy");
    }
    let spec = int(object, &["spec", "replicas"], 1);
    let ready = int(object, &["status", "readyReplicas"], 0);
    let current_replicas = int(object, &["status", "currentReplicas"], 0);
    let updated = int(object, &["status", "updatedReplicas"], 0);
    let replicas = int(object, &["status", "replicas"], 0);
    let partition = int(
        object,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        -1,
    );
    if spec > replicas {
        return in_progress("LessReplicas", format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        );
    }
    if partition != -1 {
        // Only the pods at or above the partition ordinal are updated.
        return if updated < spec - partition {
            in_progress(
                "PartitionRollout",
                format!("updated: {updated}/{}", spec - partition),
            )
        } else {
            current(format!("Partition rollout complete. updated: {updated}"))
        };
    }
    if spec > current_replicas {
        return in_progress("LessCurrent", format!("current: {current_replicas}/{spec}"));
    }
    if string(object, &["status", "currentRevision"], "")
        != string(object, &["status", "updateRevision"], "")
    {
        return in_progress(
            "RevisionMismatch",
            "Waiting for updated revision to match current",
        );
    }
    current(format!(
        "All replicas scheduled as expected. Replicas: {replicas}"
    ))
}

fn daemon_set(object: &Value) -> Rule {
    // The DaemonSet controller always writes observedGeneration: its absence means not seen yet.
    if strict_int(object, &["metadata", "generation"])?.is_none() {
        return Ok(in_progress(
            "NoGeneration",
            format!("{} metadata.generation not found", kind(object)),
        ));
    }
    if strict_int(object, &["status", "observedGeneration"])?.is_none() {
        return Ok(in_progress(
            "NoObservedGeneration",
            format!("{} status.observedGeneration not found", kind(object)),
        ));
    }
    let desired = int(object, &["status", "desiredNumberScheduled"], -1);
    let scheduled = int(object, &["status", "currentNumberScheduled"], 0);
    let updated = int(object, &["status", "updatedNumberScheduled"], 0);
    let available = int(object, &["status", "numberAvailable"], 0);
    let ready = int(object, &["status", "numberReady"], 0);
    Ok(if desired == -1 {
        in_progress("NoDesiredNumber", "Missing .status.desiredNumberScheduled")
    } else if desired > scheduled {
        in_progress("LessCurrent", format!("Current: {scheduled}/{desired}"))
    } else if desired > updated {
        in_progress("LessUpdated", format!("Updated: {updated}/{desired}"))
    } else if desired > available {
        in_progress("LessAvailable", format!("Available: {available}/{desired}"))
    } else if desired > ready {
        in_progress("LessReady", format!("Ready: {ready}/{desired}"))
    } else {
        current(format!(
            "All replicas scheduled as expected. Replicas: {desired}"
        ))
    })
}

fn persistent_volume_claim(object: &Value) -> Readiness {
    match string(object, &["status", "phase"], "unknown") {
        "Bound" => current("PVC is Bound"),
        phase => in_progress("NotBound", format!("PVC is not Bound. phase: {phase}")),
    }
}

fn pod(object: &Value, now: jiff::Timestamp) -> Rule {
    let conditions = conditions(object)?;
    Ok(match string(object, &["status", "phase"], "") {
        "Succeeded" => current("Pod has completed successfully"),
        "Failed" => current("Pod has completed, but not successfully"),
        "Running" => {
            if has_condition(&conditions, "Ready", "True").is_some() {
                current("Pod is Ready")
            } else {
                let crash_looping = crash_looping_containers(object);
                if crash_looping.is_empty() {
                    in_progress("PodRunningNotReady", "Pod is running but is not Ready")
                } else {
                    failed(
                        "ContainerCrashLooping",
                        format!("Containers in CrashLoop state: {}", crash_looping.join(",")),
                    )
                }
            }
        }
        "Pending" => match has_condition(&conditions, "PodScheduled", "False") {
            Some(c) if c.reason == "Unschedulable" => {
                // A pod gets a window to be scheduled before it counts as unschedulable; a
                // missing or unreadable creation time counts as long ago.
                let created = string(object, &["metadata", "creationTimestamp"], "")
                    .parse::<jiff::Timestamp>()
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                let window = jiff::SignedDuration::try_from(SCHEDULE_WINDOW)
                    .expect("15 s fits a signed duration");
                if now.checked_sub(window).is_ok_and(|t| t < created) {
                    in_progress("PodNotScheduled", "Pod has not been scheduled")
                } else {
                    failed("PodUnschedulable", "Pod could not be scheduled")
                }
            }
            _ => in_progress("PodPending", "Pod is in the Pending phase"),
        },
        "" => in_progress("PodNotObserved", "Pod phase not available"),
        other => return Err(format!("unknown phase {other}")),
    })
}

/// Names of the containers waiting in `CrashLoopBackOff` (init containers are not counted, as
/// in kstatus).
fn crash_looping_containers(pod: &Value) -> Vec<String> {
    field(pod, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|cs| {
            field(cs, &["state", "waiting", "reason"]).and_then(Value::as_str)
                == Some("CrashLoopBackOff")
        })
        .filter_map(|cs| cs.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn job(object: &Value) -> Rule {
    let parallelism = int(object, &["spec", "parallelism"], 1);
    let completions = int(object, &["spec", "completions"], parallelism);
    let succeeded = int(object, &["status", "succeeded"], 0);
    let active = int(object, &["status", "active"], 0);
    let failed_pods = int(object, &["status", "failed"], 0);
    for condition in conditions(object)? {
        match (condition.type_.as_str(), condition.status.as_str()) {
            ("Complete", "True") => {
                return Ok(current(format!(
                    "Job Completed. succeeded: {succeeded}/{completions}"
                )));
            }
            ("Failed", "True") => {
                return Ok(failed(
                    "JobFailed",
                    format!("Job Failed. failed: {failed_pods}/{completions}"),
                ));
            }
            _ => {}
        }
    }
    Ok(if string(object, &["status", "startTime"], "").is_empty() {
        in_progress("JobNotStarted", "Job not started")
    } else {
        current(format!(
            "Job in progress. success:{succeeded}, active: {active}, failed: {failed_pods}"
        ))
    })
}

fn service(object: &Value) -> Readiness {
    if string(object, &["spec", "type"], "ClusterIP") == "LoadBalancer"
        && string(object, &["spec", "clusterIP"], "").is_empty()
    {
        return in_progress(
            "NoIPAssigned",
            "ClusterIP not set. Service type: LoadBalancer",
        );
    }
    current("Service is ready")
}

fn custom_resource_definition(object: &Value) -> Rule {
    for condition in conditions(object)? {
        match (condition.type_.as_str(), condition.status.as_str()) {
            ("NamesAccepted", "False") => {
                return Ok(failed(&condition.reason, condition.message));
            }
            ("Established", "False") if condition.reason != "Installing" => {
                return Ok(failed(&condition.reason, condition.message));
            }
            ("Established", "True") => return Ok(current("CRD is established")),
            _ => {}
        }
    }
    Ok(in_progress("Installing", "Install in progress"))
}
