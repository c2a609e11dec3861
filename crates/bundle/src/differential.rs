//! Differential bundles: a bundle made with a base (`kantup bundle create --base OLD`) leaves
//! out the layer blobs the base already holds and records, in [`BASE_MEMBER`], which base it
//! was made against and which blobs it left out. It is only usable where the base's images are
//! already present (a registry the base was synced into); readers check that first.
//!
//! Only layers are left out: configs and manifests are small and readers need them (platforms,
//! diff IDs, digests), so every image in a differential bundle is still fully described.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::archive::ImageArchive;
use crate::bundle::Bundle;
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

/// What a base bundle provides to a differential one made against it.
#[derive(Debug, Clone)]
pub(crate) struct BaseContent {
    pub(crate) record: BaseBundle,
    /// Every layer digest the base's images name (including those a differential base itself
    /// left out: where the base was synced, its registry has them all).
    pub(crate) layers: HashSet<Digest>,
}

impl BaseContent {
    pub(crate) fn read(path: &Path) -> Result<BaseContent, BundleError> {
        let bundle = Bundle::open(path)?;
        let chart = bundle.chart()?;
        let file = std::fs::File::open(path).map_err(|e| BundleError::io(path, e))?;
        let (digest, _) = Digest::of_reader(file).map_err(|e| BundleError::io(path, e))?;
        let archive = bundle.image_archive()?;
        let images = archive.as_ref().map(|a| a.images()).unwrap_or_default();
        let layers = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest))
            .collect();
        Ok(BaseContent {
            record: BaseBundle {
                digest,
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                chart: chart.name().to_string(),
                chart_version: chart.metadata.version.to_string(),
                images: images.iter().map(|i| i.display_name()).collect(),
            },
            layers,
        })
    }

    /// The record for a differential bundle of `archive`'s images against this base.
    pub(crate) fn record_for(&self, archive: &ImageArchive) -> BaseRecord {
        let mut omitted: BTreeMap<Digest, OmittedBlob> = BTreeMap::new();
        for image in archive.images() {
            for layer in image
                .layers
                .iter()
                .filter(|l| self.layers.contains(&l.digest))
            {
                let entry = omitted.entry(layer.digest).or_insert_with(|| OmittedBlob {
                    digest: layer.digest,
                    size: layer.size,
                    images: Vec::new(),
                });
                let name = image.display_name();
                if !entry.images.contains(&name) {
                    entry.images.push(name);
                }
            }
        }
        BaseRecord {
            version: 1,
            base: self.record.clone(),
            omitted: omitted.into_values().collect(),
        }
    }
}

/// The blobs of a differential bundle's images that must already be in place, grouped by
/// image: what `sync` checks in the target registry before pushing anything.
pub fn needed_by_image(record: &BaseRecord) -> BTreeMap<String, BTreeSet<Digest>> {
    let mut by_image: BTreeMap<String, BTreeSet<Digest>> = BTreeMap::new();
    for blob in &record.omitted {
        for image in &blob.images {
            by_image
                .entry(image.clone())
                .or_default()
                .insert(blob.digest);
        }
    }
    by_image
}
