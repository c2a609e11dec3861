//! `kantup preflight`: whether a release is safe to upgrade, by `kantup-k8s-apply`'s checks,
//! with the cluster reached as every cluster workflow reaches it ([`ClusterAccess`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kantup_k8s_apply::Error> {
//! use kantup::ops::preflight::{self, PreflightOptions};
//! let report = preflight::preflight(&PreflightOptions::new("kant")).await?;
//! println!("passed: {}", report.passed());
//! # Ok(()) }
//! ```

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::preflight::PreflightReport;
use kantup_k8s_apply::release::StorageDriver;

/// Which release to check, and where.
#[derive(Debug, Clone)]
pub struct PreflightOptions {
    /// The release name.
    pub release: String,
    /// Its namespace; the context's namespace when `None`.
    pub namespace: Option<String>,
    /// The chart version about to be installed.
    pub chart_version: Option<String>,
    /// Accept a lower chart version than the deployed one.
    pub allow_downgrade: bool,
    /// Helm's storage driver.
    pub driver: StorageDriver,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
}

impl PreflightOptions {
    /// The defaults of `kantup preflight --release RELEASE`: the context's namespace, the
    /// secret driver, kubectl's cluster resolution.
    pub fn new(release: impl Into<String>) -> Self {
        Self {
            release: release.into(),
            namespace: None,
            chart_version: None,
            allow_downgrade: false,
            driver: StorageDriver::Secret,
            cluster: ClusterAccess::default(),
        }
    }
}

/// Runs the pre-flight checks of the release.
pub async fn preflight(options: &PreflightOptions) -> kantup_k8s_apply::Result<PreflightReport> {
    let (client, namespace) =
        crate::ops::cluster::connect(&options.cluster, options.namespace.as_deref()).await?;
    kantup_k8s_apply::preflight::preflight(
        &client,
        &kantup_k8s_apply::preflight::PreflightOptions {
            release: options.release.clone(),
            namespace,
            chart_version: options.chart_version.clone(),
            allow_downgrade: options.allow_downgrade,
            driver: options.driver,
            ..Default::default()
        },
    )
    .await
}
