//! Server-side apply of CRDs and waiting for them to be served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;

use super::dry_run::{DryRun, is_refusal, plan_one, refuses_only_stored_versions};
use super::load::CrdDocument;
use super::plan::{CrdPlan, PlanAction};
use crate::conflicts::{FieldConflict, group_conflicts};
use crate::error::{Error, Result};

/// The field manager kantup applies as.
pub const FIELD_MANAGER: &str = "kantup";

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
    pub(super) api: Api<CustomResourceDefinition>,
    pub(super) options: ApplyOptions,
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
