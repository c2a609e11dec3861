//! kantup: the Kubernetes API side.
//!
//! Work in progress; see the crate README and the workspace README.
