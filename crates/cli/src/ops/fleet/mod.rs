//! One upgrade over many clusters: a plan for every cluster first, then the canary cluster(s)
//! alone, then the rest in waves, each cluster gated on the readiness of its new revision.
//!
//! The rules, each in one place here:
//! - every cluster is planned before any changes ([`plan`]); a cluster whose plan is refused
//!   (pre-flight, CRD plan, missing images) counts as a failure before anything starts;
//! - the canary cluster(s) go first, alone; any canary failure stops the rollout;
//! - the others go in waves of at most `max_parallel`; the rollout stops once failures exceed
//!   `max_failures`, and the clusters not started are left untouched (state `not_started`);
//! - a cluster that cannot be reached is not a failure of the module: it is deferred to the
//!   end, tried once more, and reported `unreachable` when still down;
//! - a cluster already up to date is `done` without a change, so a re-run after a partial
//!   rollout goes on with the rest only.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::fleet::{self, FleetCluster, FleetOptions};
//! use kantup::ops::upgrade::UpgradeOptions;
//! let upgrade = UpgradeOptions::new("kant.bundle.tar", "kant", "kant-system");
//! let clusters = ["edge-a", "edge-b", "edge-c"]
//!     .map(|context| FleetCluster::from_context(None, context))
//!     .to_vec();
//! let mut options = FleetOptions::new(upgrade, clusters);
//! options.canary = vec!["edge-a".into()];
//! options.max_parallel = 2;
//! let prepared = fleet::plan(&options).await;
//! let report = fleet::execute(prepared, |line| println!("{} {}", line.name, line.state)).await;
//! assert!(report.all_done());
//! # Ok(()) }
//! ```

mod file;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use file::{FleetCluster, FleetFileError, read_fleet_file, select};

use crate::ops::image_check::{self, ImageCheckOptions};
use crate::ops::progress::Silent;
use crate::ops::readiness_gate::{self, GateOptions};
use crate::ops::upgrade::{self, PreparedUpgrade, UpgradeOptions, UpgradePlan};

/// How long kantup waits for a cluster's API server to answer before calling it unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// What to upgrade where, and how the rollout proceeds.
#[derive(Clone)]
pub struct FleetOptions {
    /// The upgrade, as for one cluster; its cluster and namespace are each cluster's, its
    /// backup directory gets a subdirectory per cluster.
    pub upgrade: UpgradeOptions,
    /// The clusters, in order.
    pub clusters: Vec<FleetCluster>,
    /// The clusters upgraded first, alone; any failure among them stops the rollout.
    pub canary: Vec<String>,
    /// At most this many clusters upgrade at once (at least 1).
    pub max_parallel: usize,
    /// The rollout stops once more clusters than this have failed.
    pub max_failures: usize,
    /// Roll a cluster back when helm fails or its revision is not ready.
    pub rollback_on_failure: bool,
    /// Wait for each cluster's new revision to be ready (the gate); `false` trusts helm.
    pub wait: bool,
    /// Ask the registries for the chart's images before any change; `None` skips it.
    pub image_check: Option<ImageCheckOptions>,
}

impl FleetOptions {
    /// `upgrade` on `clusters`, one at a time, no canary, stopping at the first failure,
    /// waiting for readiness, checking images with `sync`'s credentials.
    pub fn new(upgrade: UpgradeOptions, clusters: Vec<FleetCluster>) -> Self {
        Self {
            upgrade,
            clusters,
            canary: Vec::new(),
            max_parallel: 1,
            max_failures: 0,
            rollback_on_failure: false,
            wait: true,
            image_check: Some(ImageCheckOptions::default()),
        }
    }

    /// The upgrade options for `cluster`.
    fn for_cluster(&self, cluster: &FleetCluster) -> UpgradeOptions {
        let mut options = self.upgrade.clone();
        options.cluster = cluster.access.clone();
        if let Some(namespace) = &cluster.namespace {
            options.release.namespace = namespace.clone();
        }
        // One cluster's backups never overwrite another's.
        options.backup_dir = self.upgrade.backup_dir.join(&cluster.name);
        options
    }
}

/// Where a cluster is in the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Planned, not started yet.
    Planned,
    /// CRDs and helm running.
    Upgrading,
    /// Waiting for the new revision to be ready.
    Waiting,
    /// The new revision is ready (or the release was already up to date).
    Done,
    /// The upgrade failed, or its revision did not become ready; no rollback ran or it failed.
    Failed,
    /// The upgrade failed and was rolled back (`--rollback-on-failure`).
    RolledBack,
    /// The cluster could not be reached, at plan time and once more at the end.
    Unreachable,
    /// Left untouched: the rollout stopped before it.
    NotStarted,
}

impl std::fmt::Display for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Planned => "planned",
            Self::Upgrading => "upgrading",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::RolledBack => "rolled back",
            Self::Unreachable => "unreachable",
            Self::NotStarted => "not started",
        })
    }
}

impl ClusterState {
    /// Whether the cluster stays in this state for the rest of the rollout.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Planned | Self::Upgrading | Self::Waiting)
    }

    /// Whether the state counts against `max_failures`.
    fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::RolledBack)
    }
}

/// One cluster's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// The cluster's name.
    pub name: String,
    /// Where it is.
    pub state: ClusterState,
    /// When its upgrade started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When its upgrade (and wait, and rollback) ended (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// The release's revision there now (the new one, the rolled-back one, or the deployed
    /// one when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// Why it is in this state (failure, up to date, not started, unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ClusterReport {
    fn new(name: &str, state: ClusterState) -> Self {
        Self {
            name: name.to_string(),
            state,
            started_at: None,
            ended_at: None,
            revision: None,
            reason: None,
        }
    }

    fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// What the rollout did, a line per cluster in the fleet's order.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// The clusters.
    pub clusters: Vec<ClusterReport>,
    /// Why the rollout stopped early, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl FleetReport {
    /// Whether every cluster is done.
    pub fn all_done(&self) -> bool {
        self.clusters.iter().all(|c| c.state == ClusterState::Done)
    }
}

/// One cluster's plan: what would change, or why it cannot go.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    /// The cluster's name.
    pub name: String,
    /// Whether its API server answered.
    pub reachable: bool,
    /// The upgrade's plan, when one could be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<UpgradePlan>,
    /// Why the upgrade would be refused there (pre-flight, CRDs, images, planning errors).
    pub blockers: Vec<String>,
}

impl ClusterPlan {
    /// Whether the cluster would be upgraded (reachable, not refused, not up to date).
    pub fn would_change(&self) -> bool {
        self.reachable
            && self.blockers.is_empty()
            && self.plan.as_ref().is_some_and(|p| !p.up_to_date)
    }
}

/// Every cluster planned, ready for [`execute`].
pub struct PreparedFleet {
    options: FleetOptions,
    plans: Vec<ClusterPlan>,
    prepared: Vec<Option<PreparedUpgrade>>,
}

impl PreparedFleet {
    /// The plan of every cluster, in the fleet's order.
    pub fn plans(&self) -> &[ClusterPlan] {
        &self.plans
    }

    /// Whether every cluster can be reached and none would be refused.
    pub fn passed(&self) -> bool {
        self.plans
            .iter()
            .all(|p| p.reachable && p.blockers.is_empty())
    }
}

/// Plans the upgrade on every cluster, `max_parallel` at once (read-only: changes nothing,
/// writes no file).
pub async fn plan(options: &FleetOptions) -> PreparedFleet {
    let shared = Arc::new(options.clone());
    let handle = tokio::runtime::Handle::current();
    let mut plans = Vec::new();
    let mut prepared = Vec::new();
    let indices: Vec<usize> = (0..options.clusters.len()).collect();
    for chunk in indices.chunks(options.max_parallel.max(1)) {
        // helm runs as a blocking child process while planning too: a thread per cluster.
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&index| {
                let (options, handle) = (Arc::clone(&shared), handle.clone());
                tokio::task::spawn_blocking(move || {
                    handle.block_on(plan_cluster(&options, &options.clusters[index]))
                })
            })
            .collect();
        for (&index, task) in chunk.iter().zip(tasks) {
            let (plan, upgrade) = task.await.unwrap_or_else(|panic| {
                let plan = ClusterPlan {
                    name: options.clusters[index].name.clone(),
                    reachable: true,
                    plan: None,
                    blockers: vec![format!("planning: the task failed: {panic}")],
                };
                (plan, None)
            });
            plans.push(plan);
            prepared.push(upgrade);
        }
    }
    PreparedFleet {
        options: options.clone(),
        plans,
        prepared,
    }
}

async fn plan_cluster(
    options: &FleetOptions,
    cluster: &FleetCluster,
) -> (ClusterPlan, Option<PreparedUpgrade>) {
    let mut plan = ClusterPlan {
        name: cluster.name.clone(),
        reachable: true,
        plan: None,
        blockers: Vec::new(),
    };
    match reach(cluster).await {
        Ok(Ok(())) => {}
        Ok(Err(config)) => {
            plan.blockers.push(format!("the kubeconfig: {config}"));
            return (plan, None);
        }
        Err(down) => {
            plan.reachable = false;
            plan.blockers.push(down);
            return (plan, None);
        }
    }
    let prepared = match upgrade::plan(&options.for_cluster(cluster), &Silent).await {
        Ok(prepared) => prepared,
        Err(error) => {
            plan.blockers.push(format!("planning: {error}"));
            return (plan, None);
        }
    };
    plan.blockers = prepared.blockers();
    let upgrade_plan = prepared.plan();
    if let Some(check) = options.image_check.as_ref().filter(|_| {
        plan.blockers.is_empty() && !upgrade_plan.up_to_date && upgrade_plan.preflight.passed()
    }) {
        match image_check::check_upgrade(&prepared, check).await {
            Ok(checks) => plan.blockers.extend(
                checks
                    .iter()
                    .filter(|c| !c.passed())
                    .map(|c| format!("image {c}")),
            ),
            Err(error) => plan.blockers.push(format!("image check: {error}")),
        }
    }
    plan.plan = Some(upgrade_plan.clone());
    (plan, Some(prepared))
}

/// Whether the cluster's API server answers (its version), within [`REACH_TIMEOUT`]: `Err`
/// when it does not, `Ok(Err)` when its kubeconfig or context cannot be used.
async fn reach(cluster: &FleetCluster) -> Result<Result<(), String>, String> {
    // The server's address, for the report; a kubeconfig or context that cannot be read is a
    // mistake in the fleet, not a cluster that is down: that is the caller's refusal.
    let server = match cluster.access.config().await {
        Ok(config) => format!(" {}", config.cluster_url),
        Err(error) => return Ok(Err(error.to_string())),
    };
    let answer = tokio::time::timeout(REACH_TIMEOUT, async {
        let client = cluster.access.client().await.map_err(|e| e.to_string())?;
        client
            .apiserver_version()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    match answer {
        Ok(Ok(())) => Ok(Ok(())),
        Ok(Err(reason)) => Err(format!("cannot reach the API server{server}: {reason}")),
        Err(_) => Err(format!(
            "cannot reach the API server{server}: no answer in {}",
            humantime::format_duration(REACH_TIMEOUT)
        )),
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Runs the rollout; `on_change` hears every cluster's state as it changes (from several
/// threads at once). Never fails: every failure is in its cluster's line.
pub async fn execute(
    prepared: PreparedFleet,
    on_change: impl Fn(&ClusterReport) + Send + Sync + 'static,
) -> FleetReport {
    let on_change: Arc<dyn Fn(&ClusterReport) + Send + Sync> = Arc::new(on_change);
    let PreparedFleet {
        options,
        plans,
        prepared,
    } = prepared;
    let options = Arc::new(options);
    let mut reports: Vec<ClusterReport> = Vec::new();
    let mut waiting: Vec<(usize, PreparedUpgrade)> = Vec::new();
    let mut deferred: Vec<usize> = Vec::new();
    for (index, (plan, upgrade)) in plans.iter().zip(prepared).enumerate() {
        let report = if !plan.reachable {
            deferred.push(index);
            ClusterReport::new(&plan.name, ClusterState::Planned)
                .with_reason("unreachable: deferred to the end")
        } else if !plan.blockers.is_empty() {
            ClusterReport::new(&plan.name, ClusterState::Failed)
                .with_reason(format!("refused: {}", plan.blockers.join("; ")))
        } else {
            let upgrade = upgrade.expect("a plan without blockers was prepared");
            let up_to_date = upgrade.plan().up_to_date;
            let mut report = ClusterReport::new(&plan.name, ClusterState::Planned);
            if up_to_date {
                report.state = ClusterState::Done;
                report.revision = upgrade.plan().deployed_revision;
                report.reason = Some("already up to date: nothing done".into());
            } else {
                waiting.push((index, upgrade));
            }
            report
        };
        on_change(&report);
        reports.push(report);
    }
    let failures =
        |reports: &[ClusterReport]| reports.iter().filter(|r| r.state.is_failure()).count();
    // A canary that cannot go (refused, or unreachable) gates the rest as a failed one would:
    // deferring it would let the others go ungated.
    let blocked_canaries: Vec<&str> = plans
        .iter()
        .filter(|p| options.canary.contains(&p.name) && (!p.reachable || !p.blockers.is_empty()))
        .map(|p| p.name.as_str())
        .collect();
    let mut stopped = (!blocked_canaries.is_empty()).then(|| {
        format!(
            "the canary {} cannot be upgraded",
            blocked_canaries.join(", ")
        )
    });
    let (canaries, rest): (Vec<_>, Vec<_>) = waiting
        .into_iter()
        .partition(|(index, _)| options.canary.contains(&plans[*index].name));
    let max_parallel = options.max_parallel.max(1);
    let mut queue: Vec<(bool, Vec<(usize, PreparedUpgrade)>)> = Vec::new();
    let mut canaries = canaries;
    while !canaries.is_empty() {
        let wave: Vec<_> = canaries.drain(..max_parallel.min(canaries.len())).collect();
        queue.push((true, wave));
    }
    let mut rest = rest;
    while !rest.is_empty() {
        let wave: Vec<_> = rest.drain(..max_parallel.min(rest.len())).collect();
        queue.push((false, wave));
    }
    let mut queue = queue.into_iter();
    for (canary, wave) in queue.by_ref() {
        if stopped.is_some() {
            leave_untouched(&mut reports, wave, &on_change);
            break;
        }
        if failures(&reports) > options.max_failures {
            stopped = Some(format!(
                "{} cluster(s) failed, more than --max-failures {}",
                failures(&reports),
                options.max_failures
            ));
            leave_untouched(&mut reports, wave, &on_change);
            break;
        }
        let results = run_wave(&options, &plans, wave, &on_change).await;
        let canary_failed: Vec<String> = results
            .iter()
            .filter(|r| canary && r.state != ClusterState::Done)
            .map(|r| r.name.clone())
            .collect();
        for report in results {
            let index = reports.iter().position(|r| r.name == report.name).unwrap();
            reports[index] = report;
        }
        if !canary_failed.is_empty() {
            stopped = Some(format!("the canary {} failed", canary_failed.join(", ")));
            break;
        }
    }
    if stopped.is_none() && failures(&reports) > options.max_failures && !deferred.is_empty() {
        stopped = Some(format!(
            "{} cluster(s) failed, more than --max-failures {}",
            failures(&reports),
            options.max_failures
        ));
    }
    for (_, wave) in queue {
        leave_untouched(&mut reports, wave, &on_change);
    }
    for index in deferred {
        let cluster = &options.clusters[index];
        let report = if options.canary.contains(&cluster.name) && stopped.is_some() {
            ClusterReport::new(&cluster.name, ClusterState::Unreachable)
                .with_reason(plans[index].blockers.join("; "))
        } else if stopped.is_some() {
            ClusterReport::new(&cluster.name, ClusterState::NotStarted)
                .with_reason("unreachable at plan time; the rollout stopped before its retry")
        } else {
            retry(
                Arc::clone(&options),
                cluster.clone(),
                Arc::clone(&on_change),
            )
            .await
        };
        on_change(&report);
        reports[index] = report;
    }
    FleetReport {
        clusters: reports,
        stopped,
    }
}

fn leave_untouched(
    reports: &mut [ClusterReport],
    wave: Vec<(usize, PreparedUpgrade)>,
    on_change: &Arc<dyn Fn(&ClusterReport) + Send + Sync>,
) {
    for (index, _) in wave {
        let report = ClusterReport::new(&reports[index].name, ClusterState::NotStarted)
            .with_reason("left untouched: the rollout stopped before it");
        on_change(&report);
        reports[index] = report;
    }
}

/// The deferred cluster, tried once more: planned again, then upgraded when reachable.
async fn retry(
    options: Arc<FleetOptions>,
    cluster: FleetCluster,
    on_change: Arc<dyn Fn(&ClusterReport) + Send + Sync>,
) -> ClusterReport {
    let (plan, upgrade) = plan_cluster(&options, &cluster).await;
    if !plan.reachable {
        return ClusterReport::new(&cluster.name, ClusterState::Unreachable)
            .with_reason(plan.blockers.join("; "));
    }
    if !plan.blockers.is_empty() {
        return ClusterReport::new(&cluster.name, ClusterState::Failed)
            .with_reason(format!("refused: {}", plan.blockers.join("; ")));
    }
    let upgrade = upgrade.expect("a plan without blockers was prepared");
    if upgrade.plan().up_to_date {
        let mut report = ClusterReport::new(&cluster.name, ClusterState::Done)
            .with_reason("already up to date: nothing done");
        report.revision = upgrade.plan().deployed_revision;
        return report;
    }
    let name = cluster.name.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(upgrade_cluster(&options, &name, upgrade, &*on_change))
    })
    .await
    .unwrap_or_else(|panic| {
        ClusterReport::new(&cluster.name, ClusterState::Failed)
            .with_reason(format!("the upgrade task failed: {panic}"))
    })
}

/// Upgrades the clusters of one wave at once (helm runs as a blocking child process, so each
/// cluster gets a thread of its own) and returns their reports.
async fn run_wave(
    options: &Arc<FleetOptions>,
    plans: &[ClusterPlan],
    wave: Vec<(usize, PreparedUpgrade)>,
    on_change: &Arc<dyn Fn(&ClusterReport) + Send + Sync>,
) -> Vec<ClusterReport> {
    let handle = tokio::runtime::Handle::current();
    let tasks: Vec<_> = wave
        .into_iter()
        .map(|(index, upgrade)| {
            let (options, on_change, handle) =
                (Arc::clone(options), Arc::clone(on_change), handle.clone());
            let name = plans[index].name.clone();
            let task = tokio::task::spawn_blocking(move || {
                handle.block_on(upgrade_cluster(&options, &name, upgrade, &*on_change))
            });
            (plans[index].name.clone(), task)
        })
        .collect();
    let mut results = Vec::new();
    for (name, task) in tasks {
        results.push(task.await.unwrap_or_else(|panic| {
            ClusterReport::new(&name, ClusterState::Failed)
                .with_reason(format!("the upgrade task failed: {panic}"))
        }));
    }
    results
}

/// One cluster: CRDs and helm, then the readiness gate (and the rollback when asked).
async fn upgrade_cluster(
    options: &FleetOptions,
    name: &str,
    upgrade: PreparedUpgrade,
    on_change: &(dyn Fn(&ClusterReport) + Send + Sync),
) -> ClusterReport {
    let mut report = ClusterReport::new(name, ClusterState::Upgrading);
    report.started_at = Some(now());
    on_change(&report);
    let deployed = upgrade.plan().deployed_revision;
    let mut gate = GateOptions::new(&upgrade_options_of(options, name), deployed);
    gate.rollback_on_failure = options.rollback_on_failure;
    if !options.wait {
        gate.wait = None;
    }
    let result = upgrade::execute(upgrade).await;
    report.revision = match &result {
        Ok(summary) => Some(summary.revision),
        Err(_) => deployed,
    };
    if result.is_ok() && gate.wait.is_some() {
        report.state = ClusterState::Waiting;
        on_change(&report);
    }
    let outcome = readiness_gate::pass(result, &gate, &mut ()).await;
    match outcome.failure() {
        None => report.state = ClusterState::Done,
        Some(reason) => {
            report.state = ClusterState::Failed;
            report.reason = Some(reason);
        }
    }
    if let Some(rollback) = &outcome.rollback {
        if let Some(done) = &rollback.rollback {
            report.revision = Some(done.revision);
        }
        if rollback.restored() {
            report.state = ClusterState::RolledBack;
        } else if let Some(problem) = rollback.problem() {
            report.reason = Some(format!(
                "{}; rollback on failure: {problem}",
                report.reason.take().unwrap_or_default()
            ));
        }
    }
    report.ended_at = Some(now());
    on_change(&report);
    report
}

fn upgrade_options_of(options: &FleetOptions, name: &str) -> UpgradeOptions {
    let cluster = options
        .clusters
        .iter()
        .find(|c| c.name == name)
        .expect("the cluster is in the fleet");
    options.for_cluster(cluster)
}
