//! kantup: the offline bundle format.
//!
//! Work in progress; see the crate README and the workspace README.
