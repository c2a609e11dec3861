//! A CRD-safe rollback: `helm rollback`, then the CRDs put back as they were when the target
//! revision ran (helm never rolls CRDs back), from the snapshots `kantup upgrade` writes
//! beside its values backups.
//!
//! For every CRD, the snapshot of the earliest upgrade made from the target revision or later
//! that touched it gives its state at the target revision. A changed CRD is restored with a
//! server-side apply (asked of the server first as a dry-run); a CRD those upgrades created is
//! deleted only when no custom object of it exists (deleting a CRD deletes its objects), else
//! left in place and reported. A restore that would remove a version still listed in the CRD's
//! `status.storedVersions` is refused before anything changes: objects stored in that version
//! could no longer be read.
//!
//! The order is the upgrade's, reversed: helm first (the new chart's objects, possibly of the
//! new CRD versions, are replaced by the old chart's), then the CRDs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kantup::ops::rollback::{self, RollbackOptions};
//! let options = RollbackOptions::new("kant", "kant-system");
//! let prepared = rollback::plan(&options).await?;
//! if prepared.plan().blockers.is_empty() {
//!     let done = rollback::execute(prepared).await?;
//!     println!("revision {} runs chart {}", done.revision, done.chart_version);
//! }
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{
    ApplyOptions, ConflictPolicy, CrdApplier, CrdDocument, CrdPlan, CrdSnapshot, check_plans,
    custom_objects_exist, delete_crd,
};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus, ReleaseStore, StorageDriver};
use serde::Serialize;

use crate::ops::helm::{Helm, HelmCommand, HelmError, go_duration};

/// What to roll back, and how.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// The revision to return to; default: the newest earlier revision that was deployed.
    pub to_revision: Option<u32>,
    /// Where `kantup upgrade` wrote its backups and CRD snapshots.
    pub backup_dir: PathBuf,
    /// The helm binary.
    pub helm: PathBuf,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// Helm's storage driver.
    pub driver: StorageDriver,
    /// helm's `--timeout`, and how long to wait for restored CRDs.
    pub timeout: Duration,
    /// helm's `--wait`.
    pub wait: bool,
    /// Leave CRDs as they are (what `helm rollback` alone does).
    pub skip_crds: bool,
}

impl RollbackOptions {
    /// Options with `kantup rollback`'s defaults: the previous deployed revision, backups in
    /// the current directory, `helm` from `PATH`, kubectl's cluster resolution.
    pub fn new(release: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            release: release.into(),
            namespace: namespace.into(),
            to_revision: None,
            backup_dir: PathBuf::from("."),
            helm: PathBuf::from("helm"),
            cluster: ClusterAccess::default(),
            driver: StorageDriver::Secret,
            timeout: Duration::from_secs(300),
            wait: false,
            skip_crds: false,
        }
    }
}

/// Why a rollback cannot be planned or failed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The Kubernetes API, a snapshot file or a CRD restore failed.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// helm could not be run, or failed.
    #[error("{0}")]
    Helm(#[from] HelmError),
    /// There is no earlier revision to return to.
    #[error(
        "release {release} in {namespace}: no earlier deployed revision to roll back to (revisions: {revisions})"
    )]
    NoTarget {
        /// The release.
        release: String,
        /// The namespace.
        namespace: String,
        /// The revisions present.
        revisions: String,
    },
    /// The asked-for revision is not earlier than the current one.
    #[error(
        "release {release}: revision {target} is not earlier than the current revision {current}"
    )]
    NotEarlier {
        /// The release.
        release: String,
        /// The revision asked for.
        target: u32,
        /// The current revision.
        current: u32,
    },
    /// The plan says the rollback must not go ahead.
    #[error("rollback of {release} refused; nothing was changed: {}", blockers.join("; "))]
    Refused {
        /// The release.
        release: String,
        /// Why.
        blockers: Vec<String>,
    },
    /// The backup directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// helm rolled back, but the release is not where it should be.
    #[error(
        "after helm rollback, release {release} is at revision {revision} ({status}, chart {chart_version}), expected a new deployed revision with chart {expected}"
    )]
    NotRolledBack {
        /// The release.
        release: String,
        /// Its latest revision.
        revision: u32,
        /// That revision's status.
        status: String,
        /// That revision's chart version.
        chart_version: String,
        /// The target's chart version.
        expected: String,
    },
    /// helm rolled back but restoring the CRDs failed.
    #[error("helm rolled {release} back to revision {revision}, but restoring CRDs from {} failed: {source}", snapshots.join(", "))]
    CrdsAfterHelm {
        /// The release.
        release: String,
        /// The new revision.
        revision: u32,
        /// The snapshot files used.
        snapshots: Vec<String>,
        /// Why.
        #[source]
        source: Box<kantup_k8s_apply::Error>,
    },
}

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
    pub release: String,
    /// The namespace.
    pub namespace: String,
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
    plan: RollbackPlan,
    client: kantup_k8s_apply::kube::Client,
    helm: Helm,
    helm_command: HelmCommand,
    applier: CrdApplier,
    documents: Vec<CrdDocument>,
    store: ReleaseStore,
}

impl PreparedRollback {
    /// What would be done.
    pub fn plan(&self) -> &RollbackPlan {
        &self.plan
    }
}

/// What a finished rollback reports.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackSummary {
    /// The release.
    pub release: String,
    /// The namespace.
    pub namespace: String,
    /// The revision helm wrote for the rollback.
    pub revision: u32,
    /// The revision rolled back to.
    pub target_revision: u32,
    /// The chart version now running.
    pub chart_version: String,
    /// CRDs restored from the snapshots.
    pub crds_restored: Vec<String>,
    /// CRDs deleted (created since the target revision, without objects).
    pub crds_deleted: Vec<String>,
    /// CRDs left in place (created since the target revision, with objects).
    pub crds_kept: Vec<String>,
}

/// Plans the rollback: reads the history, finds the snapshots, asks the server what restoring
/// the CRDs would do. Changes nothing.
pub async fn plan(options: &RollbackOptions) -> Result<PreparedRollback, RollbackError> {
    let client = options.cluster.client().await?;
    let helm = Helm::detect(&options.helm, &options.cluster, options.driver)?;
    let store = ReleaseStore::new(client.clone(), options.namespace.clone(), options.driver);
    let history = store.history(&options.release).await?;
    let current =
        history
            .last()
            .cloned()
            .ok_or_else(|| kantup_k8s_apply::Error::ReleaseNotFound {
                name: options.release.clone(),
                namespace: options.namespace.clone(),
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
    let mut helm_command =
        helm.rollback_command(&options.release, target.revision, &options.namespace);
    helm_command
        .args
        .extend(["--timeout".to_string(), go_duration(options.timeout)]);
    if options.wait {
        helm_command.args.push("--wait".to_string());
    }
    let chart_version = |r: &ReleaseRecord| {
        r.release
            .chart_metadata()
            .map(|m| m.version.clone())
            .unwrap_or_default()
    };
    let plan = RollbackPlan {
        release: options.release.clone(),
        namespace: options.namespace.clone(),
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

/// Carries out the plan: refuses when it has blockers; else `helm rollback`, a check that the
/// new revision is deployed with the target's chart, then the CRDs restored and the created
/// ones without objects deleted.
pub async fn execute(prepared: PreparedRollback) -> Result<RollbackSummary, RollbackError> {
    let PreparedRollback {
        plan,
        client,
        helm,
        helm_command,
        applier,
        documents,
        store,
    } = prepared;
    if !plan.blockers.is_empty() {
        return Err(RollbackError::Refused {
            release: plan.release,
            blockers: plan.blockers,
        });
    }
    helm.run(&helm_command)?;
    let latest = store.latest(&plan.release).await?;
    let status = latest.release.status();
    let chart_version = latest
        .release
        .chart_metadata()
        .map(|m| m.version.clone())
        .unwrap_or_default();
    if latest.revision <= plan.current_revision
        || status != ReleaseStatus::Deployed
        || chart_version != plan.target_chart_version
    {
        return Err(RollbackError::NotRolledBack {
            release: plan.release,
            revision: latest.revision,
            status: status.to_string(),
            chart_version,
            expected: plan.target_chart_version,
        });
    }
    let crd_failure = |source: kantup_k8s_apply::Error| RollbackError::CrdsAfterHelm {
        release: plan.release.clone(),
        revision: latest.revision,
        snapshots: plan
            .snapshots
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        source: Box::new(source),
    };
    let restored = applier
        .apply_planned(&documents, plan.crds.clone())
        .await
        .map_err(crd_failure)?;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for added in &plan.added_crds {
        match added.action {
            "delete" => {
                // Objects may have appeared since the plan: look again right before deleting.
                match custom_objects_exist(&client, &added.name)
                    .await
                    .map_err(crd_failure)?
                {
                    Some(false) => {
                        delete_crd(&client, &added.name)
                            .await
                            .map_err(crd_failure)?;
                        deleted.push(added.name.clone());
                    }
                    Some(true) => kept.push(added.name.clone()),
                    None => {}
                }
            }
            "keep" => kept.push(added.name.clone()),
            _ => {}
        }
    }
    Ok(RollbackSummary {
        release: plan.release,
        namespace: plan.namespace,
        revision: latest.revision,
        target_revision: plan.target_revision,
        chart_version,
        crds_restored: restored
            .into_iter()
            .filter(|c| c.resource_version.is_some())
            .map(|c| c.name)
            .collect(),
        crds_deleted: deleted,
        crds_kept: kept,
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
                    release: options.release.clone(),
                    target: revision,
                    current: current.revision,
                });
            }
            history
                .iter()
                .find(|r| r.revision == revision)
                .ok_or_else(|| {
                    kantup_k8s_apply::Error::RevisionNotFound {
                        name: options.release.clone(),
                        namespace: options.namespace.clone(),
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
                release: options.release.clone(),
                namespace: options.namespace.clone(),
                revisions: history
                    .iter()
                    .map(|r| format!("{} {}", r.revision, r.release.status()))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
    }
}

type Collected = (Vec<PathBuf>, Vec<CrdDocument>, Vec<String>, Option<String>);

/// The snapshots of this release taken at revisions `target..current`, and from them each
/// CRD's state at `target` (its first mention) and the CRDs created since.
fn collect_snapshots(
    options: &RollbackOptions,
    target: u32,
    current: u32,
) -> Result<Collected, RollbackError> {
    let dir = &options.backup_dir;
    let entries = std::fs::read_dir(dir).map_err(|source| RollbackError::Io {
        path: dir.clone(),
        source,
    })?;
    let prefix = format!("{}-{}-rev", options.release, options.namespace);
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".crds.yaml"))
        })
        .collect();
    // Names carry a sortable timestamp: oldest first within a revision.
    files.sort();
    let mut snapshots: Vec<(CrdSnapshot, PathBuf)> = Vec::new();
    for file in files {
        let snapshot = CrdSnapshot::read(&file)?;
        if snapshot.release == options.release
            && snapshot.namespace == options.namespace
            && (target..current).contains(&snapshot.revision)
        {
            snapshots.push((snapshot, file));
        }
    }
    snapshots.sort_by_key(|(s, _)| s.revision);
    if snapshots.is_empty() {
        return Ok((
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Some(format!(
                "no CRD snapshot of revisions {target}..{} in {}: CRDs are left as they are \
                 (helm rollback never changes CRDs)",
                current - 1,
                dir.display()
            )),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut documents = Vec::new();
    let mut added = Vec::new();
    let mut used = Vec::new();
    for (snapshot, file) in &snapshots {
        let mut used_this = false;
        for document in snapshot.documents(&file.display().to_string())? {
            if !seen.contains(&document.name) {
                seen.push(document.name.clone());
                documents.push(document);
                used_this = true;
            }
        }
        for name in &snapshot.added {
            if !seen.contains(name) {
                seen.push(name.clone());
                added.push(name.clone());
                used_this = true;
            }
        }
        if used_this {
            used.push(file.clone());
        }
    }
    Ok((used, documents, added, None))
}
