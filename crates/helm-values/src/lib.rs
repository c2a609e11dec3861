//! kantup: Helm values semantics.
//!
//! Work in progress; see the crate README and the workspace README.
