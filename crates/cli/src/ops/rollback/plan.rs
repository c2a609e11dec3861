//! The read-only half of a rollback: the history, the target revision, the CRD snapshots, and
//! what the server says restoring the CRDs would do.

use std::path::PathBuf;

use kantup_k8s_apply::crd::{
    ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, CrdPlan, check_plans,
    custom_objects_exist,
};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore};
use serde::Serialize;

use super::snapshots::collect_snapshots;
use super::{RollbackError, RollbackOptions, chart_version};
use crate::ops::helm::{Helm, HelmCommand, go_duration};
use crate::ops::release::ReleaseId;

/// What happens to a CRD an upgrade since the target revision created.
#[derive(Debug, Clone, Serialize)]
pub struct AddedCrd {
    /// The CRD.
    pub name: String,
    /// Whether custom objects of it exist.
    pub has_objects: bool,
    /// `delete` (no objects), `keep` (objects exist: deleting would delete them) or `absent`.
    pub action: &'static str,
}

/// Everything the rollback will do.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPlan {
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseId,
    /// The current revision.
    pub current_revision: u32,
    /// Its chart version.
    pub current_chart_version: String,
    /// The revision to return to.
    pub target_revision: u32,
    /// Its chart version.
    pub target_chart_version: String,
    /// The snapshot files the CRDs come from, oldest revision first.
    pub snapshots: Vec<PathBuf>,
    /// What restoring each changed CRD does, as the server answered a dry-run.
    pub crds: Vec<CrdPlan>,
    /// The CRDs created by upgrades since the target revision.
    pub added_crds: Vec<AddedCrd>,
    /// The helm command.
    pub helm_command: String,
    /// A note when CRDs are left as they are (no snapshot, or `skip_crds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crd_note: Option<String>,
    /// Why the rollback would be refused; empty when it goes ahead.
    pub blockers: Vec<String>,
}

/// A planned rollback.
pub struct PreparedRollback {
    pub(super) plan: RollbackPlan,
    pub(super) client: kantup_k8s_apply::kube::Client,
    pub(super) helm: Helm,
    pub(super) helm_command: HelmCommand,
    pub(super) applier: CrdApplier,
    pub(super) documents: Vec<CrdDocument>,
    pub(super) store: ReleaseStore,
}

impl PreparedRollback {
    /// What would be done.
    pub fn plan(&self) -> &RollbackPlan {
        &self.plan
    }
}

/// Plans the rollback: reads the history, finds the snapshots, asks the server what restoring
/// the CRDs would do. Changes nothing.
pub async fn plan(options: &RollbackOptions) -> Result<PreparedRollback, RollbackError> {
    let client = options.cluster.client().await?;
    let helm = Helm::detect(&options.helm, &options.cluster, options.driver)?;
    let store = ReleaseStore::new(
        client.clone(),
        options.release.namespace.clone(),
        options.driver,
    );
    let history = store.history(&options.release.name).await?;
    let current =
        history
            .last()
            .cloned()
            .ok_or_else(|| kantup_k8s_apply::Error::ReleaseNotFound {
                name: options.release.name.clone(),
                namespace: options.release.namespace.clone(),
                driver: format!("{}s", options.driver.kind()),
            })?;
    let target = target_revision(options, &history, &current)?;

    let mut blockers = Vec::new();
    let (snapshots, documents, added, crd_note) = if options.skip_crds {
        (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Some("CRDs are left as they are (--skip-crds)".to_string()),
        )
    } else {
        collect_snapshots(options, target.revision, current.revision)?
    };
    let applier = CrdApplier::new(
        client.clone(),
        ApplyOptions {
            conflicts: ConflictPolicy::TakeOver,
            allow_version_removal: false,
            timeout: options.timeout,
        },
    );
    let crds = applier.plan(&documents).await?;
    for crd in crds.iter().filter(|c| !c.blocked_versions.is_empty()) {
        blockers.push(format!(
            "restoring CustomResourceDefinition {} as revision {} had it would remove version(s) \
             {}, which objects are stored in (status.storedVersions): they could no longer be \
             read; migrate those objects to a version revision {} serves and remove the version \
             from status.storedVersions first",
            crd.name,
            target.revision,
            crd.blocked_versions.join(", "),
            target.revision
        ));
    }
    if let Err(refused @ kantup_k8s_apply::Error::CrdsRejected(_)) =
        check_plans(&crds, applier.options())
    {
        blockers.push(format!(
            "{refused} (restoring the CRDs of revision {})",
            target.revision
        ));
    }
    let mut added_crds = Vec::new();
    for name in added {
        let objects = custom_objects_exist(&client, &name).await?;
        added_crds.push(AddedCrd {
            action: match objects {
                None => "absent",
                Some(false) => "delete",
                Some(true) => "keep",
            },
            has_objects: objects == Some(true),
            name,
        });
    }
    let mut helm_command = helm.rollback_command(
        &options.release.name,
        target.revision,
        &options.release.namespace,
    );
    helm_command
        .args
        .extend(["--timeout".to_string(), go_duration(options.timeout)]);
    if options.wait {
        helm_command.args.push("--wait".to_string());
    }
    let plan = RollbackPlan {
        release: options.release.clone(),
        current_revision: current.revision,
        current_chart_version: chart_version(&current),
        target_revision: target.revision,
        target_chart_version: chart_version(target),
        snapshots,
        crds,
        added_crds,
        helm_command: helm_command.to_string(),
        crd_note,
        blockers,
    };
    Ok(PreparedRollback {
        plan,
        client,
        helm,
        helm_command,
        applier,
        documents,
        store,
    })
}

fn target_revision<'a>(
    options: &RollbackOptions,
    history: &'a [ReleaseRecord],
    current: &ReleaseRecord,
) -> Result<&'a ReleaseRecord, RollbackError> {
    match options.to_revision {
        Some(revision) => {
            if revision >= current.revision {
                return Err(RollbackError::NotEarlier {
                    release: options.release.name.clone(),
                    target: revision,
                    current: current.revision,
                });
            }
            history
                .iter()
                .find(|r| r.revision == revision)
                .ok_or_else(|| {
                    kantup_k8s_apply::Error::RevisionNotFound {
                        name: options.release.name.clone(),
                        namespace: options.release.namespace.clone(),
                        revision,
                        latest: current.revision,
                    }
                    .into()
                })
        }
        None => history
            .iter()
            .rev()
            .filter(|r| r.revision < current.revision)
            .find(|r| {
                matches!(
                    r.release.status(),
                    ReleaseStatus::Deployed | ReleaseStatus::Superseded
                )
            })
            .ok_or_else(|| RollbackError::NoTarget {
                release: options.release.name.clone(),
                namespace: options.release.namespace.clone(),
                revisions: history
                    .iter()
                    .map(|r| format!("{} {}", r.revision, r.release.status()))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
    }
}
