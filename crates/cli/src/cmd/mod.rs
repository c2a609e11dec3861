//! One module per command group; each turns parsed arguments into library calls.

pub mod bundle;
pub mod cluster;
pub mod sync;
pub mod values;
