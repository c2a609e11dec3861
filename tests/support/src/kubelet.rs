//! Acting as the kubelet on a test cluster (`../shared/kube/README.md`): no kubelet or
//! scheduler runs there, so a test binds a workload's pods to a Node object and writes their
//! status through the `pods/status` subresource the way a kubelet would: Running and Ready, a
//! container waiting in `ImagePullBackOff` with the kubelet's message, a crash loop, a pod
//! that failed or succeeded. With the real controller-manager, Deployment, ReplicaSet and Job
//! status then follow from these pod statuses.
//!
//! ```no_run
//! use kantup_test_support::{kube_cluster, kubelet::Kubelet};
//! let cluster = kube_cluster::shared_cluster_with_controllers().unwrap();
//! let kubelet = Kubelet::new(cluster);
//! let pods = kubelet.wait_for_pods("shop", "app=web", 2, std::time::Duration::from_secs(20));
//! for pod in &pods {
//!     kubelet.run_ready("shop", pod);
//! }
//! ```

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kube_cluster::{KubeCluster, unique_name};

/// A fake kubelet with its own Node.
pub struct Kubelet<'a> {
    cluster: &'a KubeCluster,
    node: String,
}

impl<'a> Kubelet<'a> {
    /// A kubelet on a new Node of `cluster` (named uniquely: tests share the cluster).
    pub fn new(cluster: &'a KubeCluster) -> Self {
        let node = unique_name("node");
        let output = cluster.kubectl_output(
            &["create", "-f", "-"],
            Some(
                &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
                    .to_string(),
            ),
        );
        assert!(
            output.status.success(),
            "create Node {node}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self { cluster, node }
    }

    /// The Node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The names of the pods in `namespace` matching `selector` (`app=web`), sorted.
    pub fn pods(&self, namespace: &str, selector: &str) -> Vec<String> {
        let out = self.cluster.kubectl(&[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        let mut names: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        names.sort();
        names
    }

    /// Waits (polling, this is test support) until at least `count` pods match `selector`;
    /// returns them. Panics after `timeout`, naming what it saw.
    pub fn wait_for_pods(
        &self,
        namespace: &str,
        selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.pods(namespace, selector);
            if pods.len() >= count {
                return pods;
            }
            assert!(
                Instant::now() < deadline,
                "{count} pods matching {selector} in {namespace} within {timeout:?}: saw {pods:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pod as JSON.
    pub fn pod(&self, namespace: &str, pod: &str) -> Value {
        let out = self
            .cluster
            .kubectl(&["get", "pod", pod, "-n", namespace, "-o", "json"]);
        serde_json::from_str(&out).expect("kubectl prints a pod as JSON")
    }

    /// Binds the pod to this kubelet's Node (what the scheduler does); a bound pod is left as is.
    pub fn bind(&self, namespace: &str, pod: &str) {
        if self
            .pod(namespace, pod)
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            return;
        }
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
                             "target": {"kind": "Node", "name": self.node}});
        let output = self.cluster.kubectl_output(
            &[
                "create",
                "--raw",
                &format!("/api/v1/namespaces/{namespace}/pods/{pod}/binding"),
                "-f",
                "-",
            ],
            Some(&binding.to_string()),
        );
        assert!(
            output.status.success(),
            "bind pod {namespace}/{pod}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Writes `status` (merged) through the pods/status subresource.
    pub fn patch_status(&self, namespace: &str, pod: &str, status: Value) {
        self.cluster.kubectl(&[
            "patch",
            "pod",
            pod,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &json!({ "status": status }).to_string(),
        ]);
    }

    /// (name, image) of each container of the pod's spec.
    fn containers(&self, namespace: &str, pod: &str) -> Vec<(String, String)> {
        self.pod(namespace, pod)
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (text("name"), text("image"))
            })
            .collect()
    }

    /// Binds the pod and reports it Running with every container ready.
    pub fn run_ready(&self, namespace: &str, pod: &str) {
        self.bind(namespace, pod);
        let now = now();
        let statuses: Vec<Value> = self
            .containers(namespace, pod)
            .into_iter()
            .map(|(name, image)| {
                json!({"name": name, "image": image, "imageID": "", "ready": true, "started": true,
                       "restartCount": 0, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        self.patch_status(
            namespace,
            pod,
            json!({"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.1", "startTime": now,
                   "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                       {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                       {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                       {"type": "Ready", "status": "True", "lastTransitionTime": now}],
                   "containerStatuses": statuses}),
        );
    }

    /// Binds the pod and reports every container waiting with `reason` and `message`, as the
    /// kubelet does for an image it cannot pull (`ImagePullBackOff`, `Back-off pulling image
    /// "IMAGE"`).
    pub fn waiting(&self, namespace: &str, pod: &str, reason: &str, message: &str) {
        self.bind(namespace, pod);
        let now = now();
        let statuses: Vec<Value> = self
            .containers(namespace, pod)
            .into_iter()
            .map(|(name, image)| {
                json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
                       "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}})
            })
            .collect();
        self.patch_status(
            namespace,
            pod,
            json!({"phase": "Pending", "hostIP": "10.0.0.1", "startTime": now,
                   "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                       {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                       {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                        "message": "containers with unready status", "lastTransitionTime": now},
                       {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                        "message": "containers with unready status", "lastTransitionTime": now}],
                   "containerStatuses": statuses}),
        );
    }

    /// `ImagePullBackOff` with the kubelet's message for each container's image.
    pub fn image_pull_back_off(&self, namespace: &str, pod: &str) {
        let image = self
            .containers(namespace, pod)
            .first()
            .map(|(_, image)| image.clone())
            .unwrap_or_default();
        self.waiting(
            namespace,
            pod,
            "ImagePullBackOff",
            &format!("Back-off pulling image \"{image}\""),
        );
    }

    /// Binds the pod and reports it ended: `Failed` (every container exited 1) or `Succeeded`.
    pub fn finish(&self, namespace: &str, pod: &str, succeeded: bool) {
        self.bind(namespace, pod);
        let now = now();
        let code = if succeeded { 0 } else { 1 };
        let reason = if succeeded { "Completed" } else { "Error" };
        let statuses: Vec<Value> = self
            .containers(namespace, pod)
            .into_iter()
            .map(|(name, image)| {
                json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
                       "restartCount": 0, "state": {"terminated": {"exitCode": code, "reason": reason,
                       "startedAt": now, "finishedAt": now}}})
            })
            .collect();
        self.patch_status(
            namespace,
            pod,
            json!({"phase": if succeeded { "Succeeded" } else { "Failed" }, "startTime": now,
                   "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                       {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}],
                   "containerStatuses": statuses}),
        );
    }

    /// Runs as the kubelet of `namespace` until `stop` is set: each new pod is handed once to
    /// `act` (which binds it and sets its status, e.g. with [`Kubelet::run_ready`]), and each
    /// pod being deleted is confirmed deleted, as a kubelet does once its containers stopped
    /// (a rollout's old pods would stay Terminating otherwise). Polls every 200 ms.
    pub fn serve(
        &self,
        namespace: &str,
        stop: &std::sync::atomic::AtomicBool,
        act: impl Fn(&Self, &str, &Value),
    ) {
        let mut handled = std::collections::HashSet::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let out = self
                .cluster
                .kubectl_output(&["get", "pods", "-n", namespace, "-o", "json"], None);
            let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            for pod in list["items"].as_array().into_iter().flatten() {
                let name = pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if pod["metadata"].get("deletionTimestamp").is_some() {
                    let _ = self.cluster.kubectl_output(
                        &[
                            "delete",
                            "pod",
                            &name,
                            "-n",
                            namespace,
                            "--grace-period=0",
                            "--force",
                            "--wait=false",
                        ],
                        None,
                    );
                } else if handled.insert(name.clone()) {
                    let acted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        act(self, &name, pod)
                    }));
                    // A pod the controllers deleted meanwhile cannot be acted on: that is fine.
                    if let Err(panic) = acted {
                        let gone = !self
                            .cluster
                            .kubectl_output(&["get", "pod", &name, "-n", namespace], None)
                            .status
                            .success();
                        if !gone {
                            std::panic::resume_unwind(panic);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Force-deletes every pod of `namespace` bound to this Node, as the kubelet confirms a
    /// deletion (a namespace holding bound pods never finishes deleting otherwise).
    pub fn release_pods(&self, namespace: &str) {
        let _ = self.cluster.kubectl_output(
            &[
                "delete",
                "pods",
                "-n",
                namespace,
                "--all",
                "--grace-period=0",
                "--force",
                "--wait=false",
            ],
            None,
        );
    }
}

/// Now in RFC 3339, seconds precision, as the API server writes times.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
