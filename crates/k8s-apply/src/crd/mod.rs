//! CustomResourceDefinitions: load them from a chart, plan against the cluster, server-side
//! apply them and wait until the API server serves them.
//!
//! Helm installs a chart's `crds/` once and never upgrades them; kantup does the upgrade with
//! server-side apply, which has no `last-applied-configuration` annotation and therefore no
//! 256 KiB limit.

mod apply;
mod dry_run;
mod load;
mod plan;
mod ready;
mod snapshot;

pub use crate::conflicts::{FieldConflict, group_conflicts};
pub use apply::{AppliedCrd, ApplyOptions, ConflictPolicy, CrdApplier, FIELD_MANAGER, check_plans};
pub use dry_run::ETCD_REQUEST_LIMIT;
pub use load::{CrdDocument, chart_crds, load_crd_dir, load_crd_documents};
pub use plan::{
    CrdChanges, CrdPlan, PlanAction, SchemaChange, SchemaChangeKind, VersionChange, diff_spec,
    diff_written_specs,
};
pub use snapshot::{
    CrdSnapshot, SNAPSHOT_API_VERSION, SNAPSHOT_KIND, custom_objects_exist, delete_crd,
};
