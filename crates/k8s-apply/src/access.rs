//! Cluster access the way kubectl resolves it: `--kubeconfig`, then `$KUBECONFIG` (several
//! paths merged, first wins), then `~/.kube/config`, then the in-cluster service account;
//! `--context` picks a context from whichever kubeconfig is used.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};

/// How often a request answered 429, 503 or 504 is retried.
pub const API_RETRIES: u32 = 4;

/// How to reach the cluster. The default is what plain `kubectl` does.
///
/// ```no_run
/// # async fn demo() -> kantup_k8s_apply::Result<()> {
/// use kantup_k8s_apply::ClusterAccess;
/// let access = ClusterAccess { kubeconfig: None, context: Some("prod".into()) };
/// let client = access.client().await?;
/// # drop(client); Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterAccess {
    /// An explicit kubeconfig file (`--kubeconfig`). Several files may be joined with the
    /// platform's path separator, as in `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// A context name (`--context`); the kubeconfig's current context when `None`.
    pub context: Option<String>,
}

impl ClusterAccess {
    /// Resolves the client configuration.
    pub async fn config(&self) -> Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        if let Some(paths) = &self.kubeconfig {
            let config_error = |reason: String| Error::Config {
                from: Some(paths.clone()),
                reason,
            };
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(paths) {
                if path.as_os_str().is_empty() {
                    continue;
                }
                let next = Kubeconfig::read_from(&path).map_err(|e| Error::Config {
                    from: Some(path.clone()),
                    reason: e.to_string(),
                })?;
                merged = Some(match merged {
                    None => next,
                    Some(first) => first.merge(next).map_err(|e| config_error(e.to_string()))?,
                });
            }
            let kubeconfig =
                merged.ok_or_else(|| config_error("no kubeconfig path given".to_string()))?;
            return kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| config_error(e.to_string()));
        }
        if self.context.is_some() {
            // A context only means something in a kubeconfig: never fall back to in-cluster.
            return kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config {
                    from: None,
                    reason: e.to_string(),
                });
        }
        kube::Config::infer().await.map_err(|e| Error::Config {
            from: None,
            reason: e.to_string(),
        })
    }

    /// Builds a client from [`ClusterAccess::config`], retrying 429, 503 and 504 answers a
    /// few times within seconds ([`API_RETRIES`] times, backoff from 200 ms to 2 s). kube's
    /// default policy retries up to 15 times with a backoff growing to 1000 s, minutes of
    /// silence before a command-line user sees the error.
    pub async fn client(&self) -> Result<kube::Client> {
        let mut config = self.config().await?;
        config.default_retry = false;
        if config.accept_invalid_certs {
            // kube says only "Server cert bypassed", for every client; this names the server.
            tracing::warn!(
                "TLS certificate of the API server {} is not verified (insecure-skip-tls-verify \
                 in the kubeconfig)",
                config.cluster_url
            );
        }
        let builder = kube::client::ClientBuilder::try_from(config).map_err(|e| Error::Config {
            from: self.kubeconfig.clone(),
            reason: e.to_string(),
        })?;
        let policy = kube::client::retry::RetryPolicy::new(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(2),
            API_RETRIES,
            false,
        )
        .expect("constant backoff parameters are valid");
        // The retry layer needs a cloneable service; the buffer makes the boxed stack one.
        Ok(builder
            .with_layer(&tower::buffer::BufferLayer::new(64))
            .with_layer(&tower::retry::RetryLayer::new(policy))
            .build())
    }
}
