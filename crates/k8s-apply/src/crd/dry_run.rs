//! What a dry-run apply says: the plan of one CRD from the server's answer, and which answers
//! are refusals rather than failures to ask.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::load::CrdDocument;
use super::plan::{CrdChanges, CrdPlan, PlanAction, diff_metadata, diff_spec};
use crate::conflicts::FieldConflict;
use crate::error::ApiError;

/// etcd's default request limit (`--max-request-bytes`, 1.5 MiB): an object whose stored JSON
/// is larger passes a dry-run (which never reaches etcd) and then fails the real write.
pub const ETCD_REQUEST_LIMIT: usize = 1_572_864;

/// The server's answer to the dry-run apply of one CRD.
pub(super) struct DryRun {
    /// Fields owned by other managers (from the unforced dry-run's 409).
    pub(super) conflicts: Vec<FieldConflict>,
    /// The object as it would be stored, or why the server refuses it.
    pub(super) outcome: std::result::Result<CustomResourceDefinition, Box<ApiError>>,
    /// The refusal only says that versions listed in `status.storedVersions` are missing from
    /// `spec.versions`: the plan's `blocked_versions`, not a rejection.
    pub(super) refuses_only_stored_versions: bool,
}

/// A 422 whose every cause is `status.storedVersions[i]: ... must appear in spec.versions`.
pub(super) fn refuses_only_stored_versions(status: &kube::core::Status) -> bool {
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
pub(super) fn is_refusal(code: Option<u16>) -> bool {
    matches!(code, Some(400 | 409 | 413 | 422 | 500))
}

/// The plan a dry-run answer means: new, unchanged or changed against the live object (the
/// server's stored form when it gave one), the stored versions it would drop, the fields
/// other managers own, and a refusal (the server's, or etcd's size limit ahead).
pub(super) fn plan_one(
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
