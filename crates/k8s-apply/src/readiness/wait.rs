//! Reading and watching objects on a cluster for their readiness.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;

use super::explain::{explain, has_pods};
use super::{ObjectRef, Readiness, Status, compute};

/// How long to wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The whole wait's limit (default 5 minutes, as `helm --wait`).
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
        }
    }
}

/// One object's readiness and what is wrong underneath it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectReport {
    /// The object (cluster-scoped objects without a namespace).
    pub object: ObjectRef,
    /// kstatus's status and message.
    #[serde(flatten)]
    pub readiness: Readiness,
    /// For an object that is not Current: its bad conditions and its pods' problems
    /// (`ImagePullBackOff 10.16.10.111/kant/cloudcore:v0.5.0: Back-off pulling image`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl ObjectReport {
    fn new(object: ObjectRef, readiness: Readiness) -> Self {
        Self {
            object,
            readiness,
            details: Vec::new(),
        }
    }

    /// Whether the object is Current.
    pub fn is_current(&self) -> bool {
        self.readiness.status == Status::Current
    }
}

/// The end of a wait.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaitOutcome {
    /// Every object, in the order asked.
    pub objects: Vec<ObjectReport>,
    /// Whether the timeout ended the wait (rather than every object being Current or Failed).
    pub timed_out: bool,
}

impl WaitOutcome {
    /// Whether every object is Current.
    pub fn all_current(&self) -> bool {
        self.objects.iter().all(ObjectReport::is_current)
    }

    /// The objects that are not Current.
    pub fn not_ready(&self) -> impl Iterator<Item = &ObjectReport> {
        self.objects.iter().filter(|o| !o.is_current())
    }
}

/// Reads or watches objects and judges them with kstatus's rules ([`super::compute`]).
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use kantup_k8s_apply::readiness::{ObjectRef, WaitOptions, Waiter};
/// let objects = [ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web")];
/// let outcome = Waiter::new(client)
///     .wait(&objects, &WaitOptions::default(), |report| {
///         println!("{} {}", report.object, report.readiness)
///     })
///     .await;
/// for report in outcome.not_ready() {
///     println!("{}: {} {:?}", report.object, report.readiness, report.details);
/// }
/// # }
/// ```
pub struct Waiter {
    client: kube::Client,
}

/// An object's resource on this cluster, or why it has none.
type Resolved = Result<(ApiResource, ApiCapabilities), String>;

impl Waiter {
    /// A waiter on `client`'s cluster.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    async fn resolve_all(&self, objects: &[ObjectRef]) -> Vec<(ObjectRef, Resolved)> {
        let mut kinds: HashMap<(String, String), Resolved> = HashMap::new();
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            let key = (object.api_version.clone(), object.kind.clone());
            if !kinds.contains_key(&key) {
                let (group, version) = match object.api_version.rsplit_once('/') {
                    Some((group, version)) => (group, version),
                    None => ("", object.api_version.as_str()),
                };
                let gvk = GroupVersionKind::gvk(group, version, &object.kind);
                let resolved = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(|e| {
                        format!(
                            "kind {} of {} is not served by the cluster: {e}",
                            object.kind, object.api_version
                        )
                    });
                kinds.insert(key.clone(), resolved);
            }
            let resolved = kinds[&key].clone();
            let mut object = object.clone();
            if let Ok((_, caps)) = &resolved
                && caps.scope == Scope::Cluster
            {
                object.namespace = None;
            }
            out.push((object, resolved));
        }
        out
    }

    fn api(&self, object: &ObjectRef, resource: &ApiResource) -> Api<DynamicObject> {
        match &object.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    fn pods_api(&self, namespace: &str) -> Api<DynamicObject> {
        let pods =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods");
        Api::namespaced_with(self.client.clone(), namespace, &pods)
    }

    /// Every object's readiness as it is now (one GET each, one pod list per namespace that
    /// holds a workload), changing nothing.
    pub async fn snapshot(&self, objects: &[ObjectRef]) -> Vec<ObjectReport> {
        let resolved = self.resolve_all(objects).await;
        let mut found: Vec<(ObjectRef, Result<Option<Value>, String>)> = Vec::new();
        for (object, resolved) in resolved {
            let got = match resolved {
                Err(e) => Err(e),
                Ok((resource, _)) => self
                    .api(&object, &resource)
                    .get_opt(&object.name)
                    .await
                    .map_err(|e| format!("get {object}: {e}"))
                    .map(|o| o.and_then(|o| typed_json(o, &object))),
            };
            found.push((object, got));
        }
        let mut pods: Vec<Value> = Vec::new();
        let namespaces: BTreeSet<String> = found
            .iter()
            .filter(|(_, got)| matches!(got, Ok(Some(o)) if has_pods(o)))
            .filter_map(|(object, _)| object.namespace.clone())
            .collect();
        let mut pod_errors = BTreeMap::new();
        for namespace in namespaces {
            match self.pods_api(&namespace).list(&ListParams::default()).await {
                Ok(list) => pods.extend(list.items.into_iter().filter_map(|p| to_json(p).ok())),
                Err(e) => {
                    pod_errors.insert(namespace, format!("list pods: {e}"));
                }
            }
        }
        found
            .into_iter()
            .map(|(object, got)| {
                let mut report = judge(object.clone(), got.as_ref().map(Option::as_ref), &pods);
                if !report.is_current()
                    && let Some(ns) = &object.namespace
                    && let Some(e) = pod_errors.get(ns)
                    && got.as_ref().is_ok_and(|o| o.as_ref().is_some_and(has_pods))
                {
                    report.details.push(e.clone());
                }
                report
            })
            .collect()
    }

    /// Watches `objects` (and the pods of the namespaces that hold workloads) until every one is
    /// Current, every one that is not has Failed (or cannot be judged at all), or
    /// `options.timeout` passes. `on_change` hears each object's report whenever its status,
    /// message or details change (the first time included).
    pub async fn wait(
        &self,
        objects: &[ObjectRef],
        options: &WaitOptions,
        mut on_change: impl FnMut(&ObjectReport),
    ) -> WaitOutcome {
        let deadline = tokio::time::Instant::now() + options.timeout;
        let resolved = self.resolve_all(objects).await;
        let mut states: Vec<ObjectState> = Vec::with_capacity(resolved.len());
        let mut streams: Vec<BoxStream<'static, (Source, WatchItem)>> = Vec::new();
        for (index, (object, resolved)) in resolved.into_iter().enumerate() {
            let state = match resolved {
                Err(message) => ObjectState::unresolvable(object, message),
                Ok((resource, _)) => {
                    let config = watcher::Config::default()
                        .fields(&format!("metadata.name={}", object.name));
                    streams.push(
                        watcher::watcher(self.api(&object, &resource), config)
                            .default_backoff()
                            .map(move |item| (Source::Object(index), item))
                            .boxed(),
                    );
                    ObjectState::new(object, resource.kind == "Pod" || is_workload(&resource))
                }
            };
            states.push(state);
        }
        let pod_namespaces: BTreeSet<String> = states
            .iter()
            .filter(|s| s.wants_pods)
            .filter_map(|s| s.report.object.namespace.clone())
            .collect();
        for namespace in &pod_namespaces {
            let ns = namespace.clone();
            streams.push(
                watcher::watcher(self.pods_api(namespace), watcher::Config::default())
                    .default_backoff()
                    .map(move |item| (Source::Pods(ns.clone()), item))
                    .boxed(),
            );
        }
        let mut pods = PodCache::default();
        let mut events = futures::stream::select_all(streams);
        // Time alone moves a Pending pod from "not scheduled yet" to "unschedulable": judge again
        // now and then from what the watches hold (no API calls).
        let mut rejudge = tokio::time::interval(Duration::from_secs(5));
        rejudge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timed_out = false;
        loop {
            for state in &mut states {
                if state.rejudge(&pods) {
                    on_change(&state.report);
                }
            }
            if states.iter().all(ObjectState::settled) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    break;
                }
                _ = rejudge.tick() => {}
                next = events.next() => match next {
                    Some((Source::Object(index), item)) => states[index].apply(item),
                    Some((Source::Pods(namespace), item)) => pods.apply(&namespace, item),
                    None => break,
                },
            }
        }
        WaitOutcome {
            objects: states.into_iter().map(|s| s.report).collect(),
            timed_out,
        }
    }
}

type WatchItem = Result<Event<DynamicObject>, watcher::Error>;

enum Source {
    Object(usize),
    Pods(String),
}

fn is_workload(resource: &ApiResource) -> bool {
    matches!(
        (resource.group.as_str(), resource.kind.as_str()),
        (
            "apps" | "extensions",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) | ("batch", "Job")
    )
}

fn to_json(object: DynamicObject) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| format!("encode object: {e}"))
}

/// `object` as JSON with its `apiVersion` and `kind` (the items of a list, which a watch
/// starts with, come without them; the rules need them).
fn typed_json(object: DynamicObject, reference: &ObjectRef) -> Option<Value> {
    let mut value = to_json(object).ok()?;
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(reference.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::String(reference.kind.clone()));
    }
    Some(value)
}

/// The report for an object read (`Ok(Some)`), absent (`Ok(None)`) or unreadable (`Err`).
fn judge(object: ObjectRef, got: Result<Option<&Value>, &String>, pods: &[Value]) -> ObjectReport {
    match got {
        Err(message) => {
            ObjectReport::new(object, Readiness::new(Status::Unknown, "", message.clone()))
        }
        Ok(None) => ObjectReport::new(
            object,
            Readiness::new(Status::NotFound, "", "Resource not found"),
        ),
        Ok(Some(value)) => {
            let readiness = compute(value);
            let details = if readiness.status == Status::Current {
                Vec::new()
            } else {
                explain(value, pods)
                    .into_iter()
                    .filter(|line| *line != readiness.message)
                    .collect()
            };
            ObjectReport {
                object,
                readiness,
                details,
            }
        }
    }
}

/// What a wait knows of one object.
struct ObjectState {
    report: ObjectReport,
    /// The object as last seen; `None` when absent.
    current: Option<Value>,
    /// Whether the first list has answered.
    listed: bool,
    /// Objects received since the watch (re)started, until its list is complete.
    relisting: Option<Option<Value>>,
    /// The last watch error (cleared by the next answer).
    error: Option<String>,
    /// No watch can judge it (its kind is not served).
    unresolvable: bool,
    wants_pods: bool,
    /// The report last handed to `on_change`.
    told: Option<ObjectReport>,
}

impl ObjectState {
    fn new(object: ObjectRef, wants_pods: bool) -> Self {
        Self {
            report: ObjectReport::new(
                object,
                Readiness::new(Status::Unknown, "", "Waiting for the first answer"),
            ),
            current: None,
            listed: false,
            relisting: None,
            error: None,
            unresolvable: false,
            wants_pods,
            told: None,
        }
    }

    fn unresolvable(object: ObjectRef, message: String) -> Self {
        let mut state = Self::new(object, false);
        state.report.readiness = Readiness::new(Status::Unknown, "", message);
        state.unresolvable = true;
        state
    }

    fn apply(&mut self, item: WatchItem) {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                self.error = Some(format!("watch {}: {e}", self.report.object));
                return;
            }
        };
        self.error = None;
        match event {
            Event::Init => self.relisting = Some(None),
            Event::InitApply(object) => {
                self.relisting = Some(typed_json(object, &self.report.object));
            }
            Event::InitDone => {
                self.current = self.relisting.take().flatten();
                self.listed = true;
            }
            Event::Apply(object) => self.current = typed_json(object, &self.report.object),
            Event::Delete(_) => self.current = None,
        }
    }

    /// Judges the object again; whether its report changed since last told.
    fn rejudge(&mut self, pods: &PodCache) -> bool {
        if !self.unresolvable {
            self.report = if let Some(error) = &self.error {
                ObjectReport::new(
                    self.report.object.clone(),
                    Readiness::new(Status::Unknown, "", error.clone()),
                )
            } else if !self.listed {
                // Nothing known yet: nothing to tell.
                return false;
            } else {
                let pods = if self.wants_pods {
                    pods.in_namespace(self.report.object.namespace.as_deref())
                } else {
                    Vec::new()
                };
                judge(self.report.object.clone(), Ok(self.current.as_ref()), &pods)
            };
        }
        if self.told.as_ref() == Some(&self.report) {
            return false;
        }
        self.told = Some(self.report.clone());
        true
    }

    /// Whether waiting longer cannot change the answer for now.
    fn settled(&self) -> bool {
        self.unresolvable
            || matches!(
                self.report.readiness.status,
                Status::Current | Status::Failed
            ) && self.error.is_none()
                && self.listed
    }
}

/// The pods the watches have seen, by namespace.
#[derive(Default)]
struct PodCache {
    by_namespace: HashMap<String, BTreeMap<String, Value>>,
    relisting: HashMap<String, BTreeMap<String, Value>>,
}

impl PodCache {
    fn apply(&mut self, namespace: &str, item: WatchItem) {
        let Ok(event) = item else { return };
        let name = |o: &DynamicObject| o.metadata.name.clone().unwrap_or_default();
        match event {
            Event::Init => {
                self.relisting
                    .insert(namespace.to_string(), BTreeMap::new());
            }
            Event::InitApply(pod) => {
                let key = name(&pod);
                if let Ok(value) = to_json(pod) {
                    self.relisting
                        .entry(namespace.to_string())
                        .or_default()
                        .insert(key, value);
                }
            }
            Event::InitDone => {
                let listed = self.relisting.remove(namespace).unwrap_or_default();
                self.by_namespace.insert(namespace.to_string(), listed);
            }
            Event::Apply(pod) => {
                let key = name(&pod);
                if let Ok(value) = to_json(pod) {
                    self.by_namespace
                        .entry(namespace.to_string())
                        .or_default()
                        .insert(key, value);
                }
            }
            Event::Delete(pod) => {
                if let Some(pods) = self.by_namespace.get_mut(namespace) {
                    pods.remove(&name(&pod));
                }
            }
        }
    }

    fn in_namespace(&self, namespace: Option<&str>) -> Vec<Value> {
        namespace
            .and_then(|ns| self.by_namespace.get(ns))
            .map(|pods| pods.values().cloned().collect())
            .unwrap_or_default()
    }
}
