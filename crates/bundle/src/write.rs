//! What the bundle writers share: deterministic tar headers and the report of what was
//! written.

use std::path::PathBuf;

use serde::Serialize;

use crate::differential::BaseRecord;
use crate::digest::Digest;

/// The fixed modification time kantup writes (2000-01-01T00:00:00Z): same inputs, same bytes.
pub(crate) const FIXED_MTIME: u64 = 946_684_800;

/// A ustar file header with fixed owner, group, mtime and the given size and mode.
pub(crate) fn deterministic_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(FIXED_MTIME);
    h
}

/// What a bundle writer wrote ([`crate::create::create`], [`crate::wrap::create_wrap`]).
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    /// The bundle file.
    pub output: PathBuf,
    /// Chart name.
    pub chart: String,
    /// Number of hint patterns.
    pub hints: usize,
    /// Number of images.
    pub images: usize,
    /// Number of signatures, attestations, SBOMs and referrers carried with them.
    pub attachments: usize,
    /// Signatures, attestations and SBOMs left out because the bundle could not keep them
    /// ([`LostAttachments::Drop`](crate::create::LostAttachments::Drop)), described.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Images the chart needs (by hints, `Images.lock` or annotations) that the image archive
    /// does not name: `sync` and `upgrade` refuse such a bundle. The usual cause is a layout
    /// whose images carry no `org.opencontainers.image.ref.name` (as `cosign save` writes one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_images: Vec<String>,
    /// Size of the written file.
    pub size: u64,
    /// Digest of the written file.
    pub digest: Digest,
    /// For a differential bundle: its base and the blobs left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRecord>,
}
