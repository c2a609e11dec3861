//! Server-side apply of CRDs and waiting for them to be served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;

use super::load::CrdDocument;
use super::plan::{CrdChanges, CrdPlan, PlanAction, diff_spec};
use crate::error::{Error, Result};

/// The field manager kantup applies as.
pub const FIELD_MANAGER: &str = "kantup";

/// How CRDs are applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over fields owned by another field manager (`force=true`). Off by default: a
    /// conflict is reported instead.
    pub force_conflicts: bool,
    /// Allow removing versions still listed in `status.storedVersions`.
    pub allow_version_removal: bool,
    /// How long to wait for each CRD to become `Established` and `NamesAccepted`.
    pub timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            force_conflicts: false,
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
    /// What the plan said before applying.
    pub action: PlanAction,
    /// The `resourceVersion` after applying.
    pub resource_version: Option<String>,
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
    /// An applier using `client`.
    pub fn new(client: kube::Client, options: ApplyOptions) -> Self {
        Self {
            api: Api::all(client),
            options,
        }
    }

    /// Compares each CRD with the cluster (one GET each); changes nothing.
    pub async fn plan(&self, crds: &[CrdDocument]) -> Result<Vec<CrdPlan>> {
        let mut plans = Vec::with_capacity(crds.len());
        for crd in crds {
            let live =
                self.api.get_opt(&crd.name).await.map_err(|e| {
                    Error::api(format!("get CustomResourceDefinition {}", crd.name), e)
                })?;
            plans.push(plan_one(crd, live.as_ref()));
        }
        Ok(plans)
    }

    /// Plans, refuses (before changing anything) to drop stored versions unless allowed, then
    /// server-side applies every CRD and waits until each is `Established` and `NamesAccepted`.
    pub async fn apply(&self, crds: &[CrdDocument]) -> Result<Vec<AppliedCrd>> {
        let plans = self.plan(crds).await?;
        if !self.options.allow_version_removal
            && let Some(blocked) = plans.iter().find(|p| !p.blocked_versions.is_empty())
        {
            return Err(Error::StoredVersionRemoval {
                name: blocked.name.clone(),
                versions: blocked.blocked_versions.clone(),
            });
        }
        let mut applied = Vec::with_capacity(crds.len());
        for (crd, plan) in crds.iter().zip(plans) {
            let live = self.apply_one(crd).await?;
            applied.push(AppliedCrd {
                name: crd.name.clone(),
                action: plan.action,
                resource_version: live.metadata.resource_version,
            });
        }
        for crd in crds {
            self.wait_ready(&crd.name).await?;
        }
        Ok(applied)
    }

    /// One server-side apply request (`PATCH` with `application/apply-patch+yaml`, field
    /// manager `kantup`, `force` only when [`ApplyOptions::force_conflicts`] is set).
    pub async fn apply_one(&self, crd: &CrdDocument) -> Result<CustomResourceDefinition> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = self.options.force_conflicts;
        let mut manifest = crd.manifest.clone();
        // Apply configurations must not carry server-owned bookkeeping.
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
        tracing::info!(crd = %crd.name, origin = %crd.origin(), "server-side apply");
        self.api
            .patch(&crd.name, &params, &Patch::Apply(&manifest))
            .await
            .map_err(|e| {
                let hint = match &e {
                    kube::Error::Api(s) if s.code == 409 => {
                        " (another field manager owns these fields; re-run with --force-conflicts to take them over)"
                    }
                    _ => "",
                };
                Error::api(
                    format!("apply CustomResourceDefinition {} from {}{hint}", crd.name, crd.origin()),
                    e,
                )
            })
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

fn plan_one(crd: &CrdDocument, live: Option<&CustomResourceDefinition>) -> CrdPlan {
    let Some(live) = live else {
        return CrdPlan {
            name: crd.name.clone(),
            origin: crd.origin(),
            action: PlanAction::New,
            changes: CrdChanges::default(),
            blocked_versions: Vec::new(),
        };
    };
    // Both sides go through the typed spec so that serialization quirks cancel out.
    let desired_spec = serde_json::to_value(&crd.crd.spec).unwrap_or_default();
    let live_spec = serde_json::to_value(&live.spec).unwrap_or_default();
    let changes = diff_spec(&desired_spec, &live_spec);
    let stored = live
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    let blocked_versions = changes
        .versions_removed
        .iter()
        .filter(|v| stored.contains(v))
        .cloned()
        .collect();
    CrdPlan {
        name: crd.name.clone(),
        origin: crd.origin(),
        action: if changes.is_empty() {
            PlanAction::Unchanged
        } else {
            PlanAction::Changed
        },
        changes,
        blocked_versions,
    }
}
