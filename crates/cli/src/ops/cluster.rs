//! How every cluster workflow reaches the cluster: a [`ClusterAccess`] (kubeconfig, context,
//! in-cluster, as kubectl resolves them) it is given as a value, turned into a client here.

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::kube::Client;

/// A client for `access`, and `namespace` or else the context's namespace (as kubectl's `-n`).
pub async fn connect(
    access: &ClusterAccess,
    namespace: Option<&str>,
) -> kantup_k8s_apply::Result<(Client, String)> {
    let client = access.client().await?;
    let namespace =
        namespace.map_or_else(|| client.default_namespace().to_string(), str::to_string);
    Ok((client, namespace))
}
