//! Charts in an OCI registry as helm pushes them: the chart's `Chart.yaml` as the config blob,
//! the archive as the one layer, tagged with the version (`+` as `_`).

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::chart::oci_tag;
use kantup_bundle::media_types;

use super::PackagedChart;
use crate::client::RegistryClient;
use crate::error::{RegistryError, Result};

/// The digest of the chart layer the OCI manifest `manifest` lists, if it lists one.
pub(super) fn chart_layer_digest(manifest: &serde_json::Value) -> Option<Digest> {
    manifest["layers"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|d| d["mediaType"] == media_types::HELM_CHART_CONTENT)
        })
        .and_then(|d| d["digest"].as_str())
        .and_then(|d| d.parse::<Digest>().ok())
}

pub(super) async fn push_oci(
    client: &RegistryClient,
    repo: &str,
    chart: &PackagedChart,
) -> Result<()> {
    let config = Bytes::from(
        serde_json::to_vec(&chart.metadata)
            .map_err(|e| RegistryError::Invalid(format!("chart metadata: {e}")))?,
    );
    let config_size = config.len();
    let (config_digest, _) = client.ensure_blob_bytes(repo, config).await?;
    let layer_size = chart.tgz.len();
    let (layer_digest, _) = client.ensure_blob_bytes(repo, chart.tgz.clone()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {
            "mediaType": media_types::HELM_CONFIG,
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": media_types::HELM_CHART_CONTENT,
            "digest": layer_digest,
            "size": layer_size,
        }],
        "annotations": {
            "org.opencontainers.image.title": chart.name,
            "org.opencontainers.image.version": chart.version,
        }
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("json value serializes"));
    client
        .put_manifest(
            repo,
            &oci_tag(&chart.version),
            media_types::OCI_MANIFEST,
            bytes,
        )
        .await?;
    Ok(())
}
