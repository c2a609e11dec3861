//! The workflows (cargo's model: `ops` do the work, the binary's `cmd` modules bind flags).

pub(crate) mod backup_files;
pub mod bundle;
pub mod bundle_diff;
pub mod cluster;
pub mod crds;
pub mod duration;
pub mod fleet;
pub mod helm;
pub mod image_check;
pub mod image_keys;
pub mod images;
pub mod load;
pub mod preflight;
pub mod progress;
pub mod readiness_gate;
pub mod release;
pub mod repo;
pub mod rollback;
pub mod rollback_on_failure;
pub mod status;
pub mod sync;
pub mod upgrade;
pub mod values;
