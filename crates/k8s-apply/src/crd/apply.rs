//! Server-side apply of CRDs and waiting for them to be served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;

use super::load::CrdDocument;
use super::plan::{
    CrdChanges, CrdPlan, FieldConflict, PlanAction, diff_metadata, diff_spec, group_conflicts,
};
use crate::error::{ApiError, Error, Result};

/// The field manager kantup applies as.
pub const FIELD_MANAGER: &str = "kantup";

/// etcd's default request limit (`--max-request-bytes`, 1.5 MiB): an object whose stored JSON
/// is larger passes a dry-run (which never reaches etcd) and then fails the real write.
pub const ETCD_REQUEST_LIMIT: usize = 1_572_864;

/// What to do with fields another field manager owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// Take them over (server-side apply `force=true`): the chart's CRDs belong to the chart,
    /// as with the seed's `kubectl apply -f crds`. The plan and the result name the managers.
    #[default]
    TakeOver,
    /// Refuse, before any change, naming the managers and fields.
    Refuse,
}

/// How CRDs are applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Fields owned by other field managers: taken over (default) or refused.
    pub conflicts: ConflictPolicy,
    /// Allow removing versions still listed in `status.storedVersions` (their objects are
    /// migrated): they are removed from `status.storedVersions` first, as the API server
    /// requires.
    pub allow_version_removal: bool,
    /// How long to wait for each CRD to become `Established` and `NamesAccepted`.
    pub timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            conflicts: ConflictPolicy::TakeOver,
            allow_version_removal: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The outcome for one applied CRD.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedCrd {
    /// The CRD name.
    pub name: String,
    /// What the plan said before applying (an `unchanged` CRD is not written).
    pub action: PlanAction,
    /// The `resourceVersion` after applying.
    pub resource_version: Option<String>,
    /// Fields taken over from other field managers.
    pub taken_over: Vec<FieldConflict>,
}

/// Plans and applies CRDs through one client.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> kantup_k8s_apply::Result<()> {
/// use kantup_k8s_apply::crd::{load_crd_dir, ApplyOptions, CrdApplier};
/// let crds = load_crd_dir("chart/crds".as_ref())?;
/// let applier = CrdApplier::new(client, ApplyOptions::default());
/// for plan in applier.plan(&crds).await? { println!("{} {:?}", plan.name, plan.action); }
/// applier.apply(&crds).await?;
/// # Ok(()) }
/// ```
pub struct CrdApplier {
    api: Api<CustomResourceDefinition>,
    options: ApplyOptions,
}

impl CrdApplier {
    /// The options this applier applies with.
    pub fn options(&self) -> &ApplyOptions {
        &self.options
    }

    /// An applier using `client`.
    pub fn new(client: kube::Client, options: ApplyOptions) -> Self {
        Self {
            api: Api::all(client),
            options,
        }
    }

    /// Asks the API server what applying each CRD would do, changing nothing: the live object
    /// (a GET), then a server-side apply with `dryRun=All` (without `force`, which reports the
    /// fields other managers own; then with `force`, which gives the object as it would be
    /// stored, or the server's refusal: a schema it rejects, a request too large).
    pub async fn plan(&self, crds: &[CrdDocument]) -> Result<Vec<CrdPlan>> {
        let mut plans = Vec::with_capacity(crds.len());
        for crd in crds {
            let live =
                self.api.get_opt(&crd.name).await.map_err(|e| {
                    Error::api(format!("get CustomResourceDefinition {}", crd.name), e)
                })?;
            let dry_run = self.dry_run(crd).await?;
            plans.push(plan_one(crd, live.as_ref(), dry_run));
        }
        Ok(plans)
    }

    async fn dry_run(&self, crd: &CrdDocument) -> Result<DryRun> {
        let mut conflicts = Vec::new();
        for force in [false, true] {
            let answer = self.patch_request(crd, force, true).await;
            let refuses_only_stored_versions = matches!(
                &answer,
                Err(kube::Error::Api(status)) if refuses_only_stored_versions(status)
            );
            match answer.map_err(|e| patch_error(crd, true, e)) {
                Ok(stored) => {
                    return Ok(DryRun {
                        conflicts,
                        outcome: Ok(stored),
                        refuses_only_stored_versions,
                    });
                }
                Err(Error::Api(api)) if api.code == Some(409) && !force => {
                    conflicts = group_conflicts(api.field_conflicts());
                }
                Err(Error::Api(api)) if is_refusal(api.code) => {
                    return Ok(DryRun {
                        conflicts,
                        outcome: Err(api),
                        refuses_only_stored_versions,
                    });
                }
                Err(other) => return Err(other),
            }
        }
        unreachable!("the forced dry-run either succeeds or fails")
    }

    /// Plans (asking the server), then refuses before changing anything when a CRD would be
    /// rejected, would drop a stored version (unless allowed) or would take over another
    /// manager's fields under [`ConflictPolicy::Refuse`]; then server-side applies every CRD
    /// that is new or changed and waits until each is `Established` and `NamesAccepted`.
    pub async fn apply(&self, crds: &[CrdDocument]) -> Result<Vec<AppliedCrd>> {
        let plans = self.plan(crds).await?;
        self.apply_planned(crds, plans).await
    }

    /// [`CrdApplier::apply`] with plans already made by [`CrdApplier::plan`] for `crds`.
    pub async fn apply_planned(
        &self,
        crds: &[CrdDocument],
        plans: Vec<CrdPlan>,
    ) -> Result<Vec<AppliedCrd>> {
        check_plans(&plans, &self.options)?;
        // Versions still stored that may go (allowed): the server must accept forgetting
        // them before anything is written.
        for plan in plans.iter().filter(|p| !p.blocked_versions.is_empty()) {
            self.forget_stored_versions(&plan.name, &plan.blocked_versions, true)
                .await?;
        }
        let mut applied = Vec::with_capacity(crds.len());
        for (crd, plan) in crds.iter().zip(plans) {
            if !plan.blocked_versions.is_empty() {
                self.forget_stored_versions(&plan.name, &plan.blocked_versions, false)
                    .await?;
            }
            let resource_version = if plan.action == PlanAction::Unchanged {
                None
            } else {
                let force = self.options.conflicts == ConflictPolicy::TakeOver;
                self.patch(crd, force, false)
                    .await?
                    .metadata
                    .resource_version
            };
            applied.push(AppliedCrd {
                name: crd.name.clone(),
                action: plan.action,
                resource_version,
                taken_over: plan.conflicts,
            });
        }
        for crd in crds {
            self.wait_ready(&crd.name).await?;
        }
        Ok(applied)
    }

    /// One server-side apply request (`PATCH` with `application/apply-patch+yaml`, field
    /// manager `kantup`) of `crd` as written, without server-owned bookkeeping.
    async fn patch(
        &self,
        crd: &CrdDocument,
        force: bool,
        dry_run: bool,
    ) -> Result<CustomResourceDefinition> {
        self.patch_request(crd, force, dry_run)
            .await
            .map_err(|e| patch_error(crd, dry_run, e))
    }

    async fn patch_request(
        &self,
        crd: &CrdDocument,
        force: bool,
        dry_run: bool,
    ) -> kube::Result<CustomResourceDefinition> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        if !dry_run {
            tracing::info!(crd = %crd.name, origin = %crd.origin(), force, "server-side apply");
        }
        self.api
            .patch(&crd.name, &params, &Patch::Apply(&apply_manifest(crd)))
            .await
    }

    /// Removes `versions` from the CRD's `status.storedVersions` (what Kubernetes asks for
    /// before a stored version may leave `spec.versions`, once its objects are migrated), at the
    /// `resourceVersion` last read, so a concurrent change is not overwritten.
    async fn forget_stored_versions(
        &self,
        name: &str,
        versions: &[String],
        dry_run: bool,
    ) -> Result<()> {
        let action = format!(
            "{}remove version(s) {} from status.storedVersions of CustomResourceDefinition {name}",
            if dry_run { "dry-run " } else { "" },
            versions.join(", ")
        );
        let live = self
            .api
            .get(name)
            .await
            .map_err(|e| Error::api(format!("get CustomResourceDefinition {name}"), e))?;
        let remaining: Vec<String> = live
            .status
            .and_then(|s| s.stored_versions)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !versions.contains(v))
            .collect();
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": live.metadata.resource_version},
            "status": {"storedVersions": remaining},
        });
        let params = PatchParams {
            dry_run,
            ..Default::default()
        };
        if !dry_run {
            tracing::info!(crd = %name, ?versions, "removing stored versions");
        }
        self.api
            .patch_status(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api(action, e))?;
        Ok(())
    }

    /// Polls (with backoff, 100 ms doubling up to 2 s) until the CRD's `Established` and
    /// `NamesAccepted` conditions are `True`. Fails at once when `NamesAccepted` is `False` (a
    /// name conflict does not heal by waiting), and after the timeout otherwise, naming the
    /// condition and the server's reason and message.
    pub async fn wait_ready(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let crd = self
                .api
                .get(name)
                .await
                .map_err(|e| Error::api(format!("get CustomResourceDefinition {name}"), e))?;
            let not_ready = first_unready_condition(&crd);
            let Some((condition, status, reason, message)) = not_ready else {
                return Ok(());
            };
            let failed_now = condition == "NamesAccepted" && status == "False";
            let now = tokio::time::Instant::now();
            if failed_now || now >= deadline {
                return Err(Error::CrdNotReady {
                    name: name.to_string(),
                    condition,
                    status,
                    detail: crate::error::detail_suffix(&reason, &message),
                    timeout: self.options.timeout,
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

type Unready = (String, String, Option<String>, Option<String>);

fn first_unready_condition(crd: &CustomResourceDefinition) -> Option<Unready> {
    let conditions = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // NamesAccepted first: when it fails, Established never comes and its reason says why.
    for wanted in ["NamesAccepted", "Established"] {
        match conditions.iter().find(|c| c.type_ == wanted) {
            Some(c) if c.status == "True" => {}
            Some(c) => {
                return Some((
                    wanted.to_string(),
                    c.status.clone(),
                    c.reason.clone().filter(|r| !r.is_empty()),
                    c.message.clone().filter(|m| !m.is_empty()),
                ));
            }
            None => return Some((wanted.to_string(), "missing".to_string(), None, None)),
        }
    }
    None
}

/// The server's answer to the dry-run apply of one CRD.
struct DryRun {
    /// Fields owned by other managers (from the unforced dry-run's 409).
    conflicts: Vec<FieldConflict>,
    /// The object as it would be stored, or why the server refuses it.
    outcome: std::result::Result<CustomResourceDefinition, Box<ApiError>>,
    /// The refusal only says that versions listed in `status.storedVersions` are missing from
    /// `spec.versions`: the plan's `blocked_versions`, not a rejection.
    refuses_only_stored_versions: bool,
}

fn patch_error(crd: &CrdDocument, dry_run: bool, error: kube::Error) -> Error {
    let verb = if dry_run { "dry-run apply" } else { "apply" };
    Error::api(
        format!(
            "{verb} CustomResourceDefinition {} from {}",
            crd.name,
            crd.origin()
        ),
        error,
    )
}

/// A 422 whose every cause is `status.storedVersions[i]: ... must appear in spec.versions`.
fn refuses_only_stored_versions(status: &kube::core::Status) -> bool {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or(&[]);
    status.code == 422
        && !causes.is_empty()
        && causes
            .iter()
            .all(|c| c.field.starts_with("status.storedVersions"))
}

/// Answers that say "this object would not be accepted" (rather than "you may not ask" or
/// "no answer"): the plan reports them and apply refuses to start.
fn is_refusal(code: Option<u16>) -> bool {
    matches!(code, Some(400 | 409 | 413 | 422 | 500))
}

/// The manifest as an apply configuration: no server-owned bookkeeping, no status.
fn apply_manifest(crd: &CrdDocument) -> serde_json::Value {
    let mut manifest = crd.manifest.clone();
    if let Some(meta) = manifest
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            meta.remove(field);
        }
    }
    if let Some(obj) = manifest.as_object_mut() {
        obj.remove("status");
    }
    manifest
}

/// Refuses, before any write, what the plans say must not be applied: a CRD the server
/// rejects, a stored version removed (unless allowed), another manager's fields under
/// [`ConflictPolicy::Refuse`]. [`CrdApplier::apply_planned`] runs it first; a workflow that
/// writes other things before applying CRDs runs it before those.
pub fn check_plans(plans: &[CrdPlan], options: &ApplyOptions) -> Result<()> {
    let rejected: Vec<(String, String)> = plans
        .iter()
        .filter_map(|p| p.rejected.clone().map(|r| (p.name.clone(), r)))
        .collect();
    if !rejected.is_empty() {
        return Err(Error::CrdsRejected(rejected));
    }
    if !options.allow_version_removal
        && let Some(blocked) = plans.iter().find(|p| !p.blocked_versions.is_empty())
    {
        return Err(Error::StoredVersionRemoval {
            name: blocked.name.clone(),
            versions: blocked.blocked_versions.clone(),
        });
    }
    if options.conflicts == ConflictPolicy::Refuse
        && let Some(plan) = plans.iter().find(|p| !p.conflicts.is_empty())
    {
        return Err(Error::CrdConflicts {
            name: plan.name.clone(),
            conflicts: plan.conflicts.clone(),
        });
    }
    Ok(())
}

fn plan_one(
    crd: &CrdDocument,
    live: Option<&CustomResourceDefinition>,
    dry_run: DryRun,
) -> CrdPlan {
    let (stored, mut rejected) = match dry_run.outcome {
        Ok(stored) => (Some(stored), None),
        // Reported as blocked versions below (the live object has the stored versions).
        Err(_) if dry_run.refuses_only_stored_versions && live.is_some() => (None, None),
        Err(api) => (None, Some(api.to_string())),
    };
    let stored_bytes = stored
        .as_ref()
        .and_then(|s| serde_json::to_vec(s).ok())
        .map(|bytes| bytes.len());
    if let Some(bytes) = stored_bytes.filter(|b| *b > ETCD_REQUEST_LIMIT) {
        rejected = Some(format!(
            "CustomResourceDefinition {} from {} would be stored as {bytes} bytes, more than \
             etcd's default request limit of {ETCD_REQUEST_LIMIT} bytes; the server accepts it in \
             a dry-run and then fails to write it",
            crd.name,
            crd.origin()
        ));
    }
    let mut plan = CrdPlan {
        name: crd.name.clone(),
        origin: crd.origin(),
        action: PlanAction::New,
        changes: CrdChanges::default(),
        blocked_versions: Vec::new(),
        conflicts: dry_run.conflicts,
        rejected,
        stored_bytes,
    };
    let Some(live) = live else {
        return plan;
    };
    // The server's own answer when there is one: exact, defaults included.
    let desired_spec = match &stored {
        Some(stored) => serde_json::to_value(&stored.spec),
        None => serde_json::to_value(&crd.crd.spec),
    }
    .unwrap_or_default();
    let live_spec = serde_json::to_value(&live.spec).unwrap_or_default();
    let mut changes = diff_spec(&desired_spec, &live_spec);
    changes.metadata_fields_changed = diff_metadata(
        stored.as_ref().map(|s| &s.metadata),
        &crd.crd.metadata,
        &live.metadata,
    );
    let stored_versions = live
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    plan.blocked_versions = changes
        .versions_removed
        .iter()
        .filter(|v| stored_versions.contains(v))
        .cloned()
        .collect();
    plan.action = if changes.is_empty() {
        PlanAction::Unchanged
    } else {
        PlanAction::Changed
    };
    plan.changes = changes;
    plan
}
