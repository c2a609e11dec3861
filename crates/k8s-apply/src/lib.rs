//! kantup: the Kubernetes API side.
//!
//! - [`crd`]: load a chart's CustomResourceDefinitions, plan them against the cluster
//!   (new / changed / unchanged, with a structural schema diff), server-side apply them as
//!   field manager `kantup` and wait until they are `Established`.
//! - [`release`]: read Helm 3 and Helm 4 release records (Secret or ConfigMap storage). What
//!   their values mean (`helm get values`) is `kantup-helm-values`' `release` module.
//! - [`preflight`]: checks that a release is safe to upgrade.
//! - [`readiness`]: kstatus's readiness of any object, and a waiter that watches objects until
//!   they are ready, saying what is wrong underneath those that are not.
//! - [`ClusterAccess`]: kubeconfig / context / in-cluster resolution as kubectl does it.
//!
//! Everything takes a [`kube::Client`], so tests can hand in a mocked service.

#![warn(missing_docs)]

mod access;
mod conflicts;
pub mod crd;
mod error;
pub mod preflight;
pub mod readiness;
pub mod release;

pub use access::{API_RETRIES, ClusterAccess};
pub use conflicts::describe_conflicts;
pub use error::{ApiCause, ApiError, Error, Result};
/// The `kube` crate this one is built on, so callers use the same `Client` type.
pub use kube;
