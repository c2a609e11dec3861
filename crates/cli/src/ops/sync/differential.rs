//! Differential bundles: the layers a bundle leaves out must already be at the target.

use std::path::Path;

use kantup_bundle::archive::ImageArchive;

use kantup_registry::{ImagePush, RegistryClient, RelocationRule};

use super::SyncError;

/// A differential bundle is pushed only when the target registry already holds every layer
/// it leaves out (mounting from the base's repositories where needed); checked before any
/// push, so a refusal changes nothing.
pub(super) async fn require_base_blobs(
    client: &RegistryClient,
    rule: &RelocationRule,
    pushes: &[ImagePush],
    record: &kantup_bundle::differential::BaseRecord,
    path: &Path,
    dry_run: bool,
) -> Result<(), SyncError> {
    use kantup_registry::base_blobs::{base_repositories, ensure_base_blobs};
    let omitted: std::collections::HashSet<kantup_bundle::Digest> =
        record.omitted.iter().map(|b| b.digest).collect();
    let from = base_repositories(record, rule);
    let check = ensure_base_blobs(client, pushes, &omitted, &from, !dry_run).await?;
    if check.missing.is_empty() {
        tracing::info!(
            "{}: differential bundle; {} left-out layer(s) already in {}, {} mounted from the base's repositories",
            path.display(),
            check.present,
            client.host(),
            check.mounted
        );
        return Ok(());
    }
    Err(SyncError::BaseNotInRegistry {
        bundle: path.to_path_buf(),
        base: record.base.to_string(),
        host: client.host().to_string(),
        missing: check
            .missing
            .iter()
            .map(|m| format!("{} needs {} in {}", m.image, m.digest, m.repository))
            .collect(),
    })
}

/// A differential bundle is written into an OCI layout only when the layout already holds
/// every layer it leaves out.
pub(super) fn require_base_in_layout(
    layout: &Path,
    archive: &ImageArchive,
    bundle: &Path,
) -> Result<(), SyncError> {
    let missing: Vec<String> =
        kantup_bundle::archive::oci_layout::missing_blobs(layout, &archive.omitted_blobs())
            .iter()
            .map(ToString::to_string)
            .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(SyncError::BaseNotInLayout {
        bundle: bundle.to_path_buf(),
        layout: layout.to_path_buf(),
        missing,
    })
}
