//! Differential bundles: a bundle made with a base (`kantup bundle create --base OLD`) leaves
//! out the layer blobs the base already holds and records, in [`BASE_MEMBER`], which base it
//! was made against and which blobs it left out. It is only usable where the base's images are
//! already present (a registry the base was synced into); readers check that first.
//!
//! Only layers are left out: configs and manifests are small and readers need them (platforms,
//! diff IDs, digests), so every image in a differential bundle is still fully described.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::BundleError;

/// The member of a differential bundle that names its base and the blobs it leaves out.
pub const BASE_MEMBER: &str = "kantup-base.json";

/// The base a differential bundle was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseBundle {
    /// Digest of the base bundle file.
    pub digest: Digest,
    /// The base file's name when the differential bundle was made (for messages).
    pub file: String,
    /// The base's chart name.
    pub chart: String,
    /// The base's chart version.
    pub chart_version: String,
    /// The base's images (their names in its archive), where the left-out blobs can be found.
    pub images: Vec<String>,
}

impl std::fmt::Display for BaseBundle {
    /// `kant-0.4.0.bundle.tar (kant 0.4.0, sha256:...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {}, {})",
            self.file, self.chart, self.chart_version, self.digest
        )
    }
}

/// One layer blob a differential bundle leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OmittedBlob {
    /// The blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The images of this bundle whose manifests name it.
    pub images: Vec<String>,
}

/// The content of [`BASE_MEMBER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRecord {
    /// Format version of this record (1).
    pub version: u32,
    /// The base bundle.
    pub base: BaseBundle,
    /// Layer blobs left out, sorted by digest.
    pub omitted: Vec<OmittedBlob>,
}

impl BaseRecord {
    /// The digests of the left-out blobs.
    pub fn omitted_digests(&self) -> HashSet<Digest> {
        self.omitted.iter().map(|b| b.digest).collect()
    }

    /// Total size of the left-out blobs.
    pub fn omitted_bytes(&self) -> u64 {
        self.omitted.iter().map(|b| b.size).sum()
    }

    /// Parses the member's bytes; `label` names it in errors.
    pub fn parse(bytes: &[u8], label: &str) -> Result<BaseRecord, BundleError> {
        let record: BaseRecord =
            serde_json::from_slice(bytes).map_err(|e| BundleError::json(label, e))?;
        if record.version != 1 {
            return Err(BundleError::Document {
                path: label.to_string(),
                format: "kantup-base.json",
                reason: format!(
                    "version {} is not supported (this kantup reads version 1)",
                    record.version
                ),
            });
        }
        Ok(record)
    }
}
