//! One module per command group; each turns parsed arguments into library calls.

pub mod bundle;
pub mod cluster;
pub mod completions;
pub mod load;
pub mod net_args;
pub mod repo;
pub mod rollback;
pub mod sync;
pub mod upgrade;
pub mod values;
