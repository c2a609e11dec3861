//! kantup: OCI distribution push and pull.
//!
//! Work in progress; see the crate README and the workspace README.
