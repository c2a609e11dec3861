//! What changes between two bundles, before anything is touched: images added, removed and
//! changed (by manifest digest, with the blobs and bytes a registry that already holds the old
//! bundle's images would still need), the chart version, the CRDs (versions and schema fields,
//! through the CRD plan's own spec diff) and the chart's default values (helm-values' diff).
//!
//! ```no_run
//! let diff = kantup::ops::bundle_diff::diff_bundles(
//!     "kant-0.4.0.bundle.tar".as_ref(),
//!     "kant-0.5.0.bundle.tar".as_ref(),
//!     &kantup_bundle::OpenOptions::default(),
//! )?;
//! println!("{} bytes to send to a registry holding 0.4.0", diff.transfer.bytes_needed);
//! # Ok::<(), kantup::ops::bundle_diff::DiffError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kantup_bundle::archive::{Image, ImageArchive};
use kantup_bundle::chart::Chart;
use kantup_bundle::{Bundle, BundleError, Digest, OpenOptions};
use kantup_helm_values::deps::enabled_subcharts;
use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::crd::{CrdChanges, CrdDocument, chart_crds, diff_written_specs};
use serde::Serialize;

use crate::ops::upgrade::{ValueChange, diff_values};

/// Why two bundles could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A bundle could not be read.
    #[error("{}: {source}", path.display())]
    Bundle {
        /// The bundle.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: BundleError,
    },
    /// A chart's CRDs could not be read.
    #[error("{}: {source}", path.display())]
    Crds {
        /// The bundle.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<kantup_k8s_apply::Error>,
    },
    /// A chart's `values.yaml` could not be read as Helm reads it.
    #[error("{}: {source}", path.display())]
    Values {
        /// The bundle.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: kantup_helm_values::Error,
    },
}

/// Everything that differs between two bundles.
#[derive(Debug, Clone, Serialize)]
pub struct BundleDiff {
    /// The old bundle.
    pub old: String,
    /// The new bundle.
    pub new: String,
    /// The chart, old and new.
    pub chart: ChartChange,
    /// Images by repository.
    pub images: ImageChanges,
    /// What a registry that holds the old bundle's images needs of the new one.
    pub transfer: Transfer,
    /// CRDs by name (unchanged ones left out).
    pub crds: Vec<CrdChange>,
    /// The chart's default values, old -> new.
    pub values: Vec<ValueChange>,
}

/// The chart's name and version in each bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ChartChange {
    /// The old chart's name.
    pub old_name: String,
    /// The new chart's name.
    pub new_name: String,
    /// The old version.
    pub old_version: String,
    /// The new version.
    pub new_version: String,
}

/// Images added, removed and changed, matched by repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageChanges {
    /// In the new bundle only.
    pub added: Vec<ImageEntry>,
    /// In the old bundle only.
    pub removed: Vec<ImageEntry>,
    /// In both, with another manifest digest.
    pub changed: Vec<ImageChange>,
    /// In both with the same manifest digest.
    pub unchanged: usize,
}

/// One image of one bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ImageEntry {
    /// `registry/repository`.
    pub repository: String,
    /// Its tags in the bundle.
    pub tags: Vec<String>,
    /// The manifest digest.
    pub digest: Digest,
    /// Config and layers, in bytes.
    pub size: u64,
}

/// An image whose manifest changed.
#[derive(Debug, Clone, Serialize)]
pub struct ImageChange {
    /// `registry/repository`.
    pub repository: String,
    /// Tags in the old bundle.
    pub old_tags: Vec<String>,
    /// Tags in the new bundle.
    pub new_tags: Vec<String>,
    /// The old manifest digest.
    pub old_digest: Digest,
    /// The new manifest digest.
    pub new_digest: Digest,
    /// Blobs (config and layers) of the new image that the old bundle does not hold.
    pub blobs_needed: usize,
    /// Their bytes.
    pub bytes_needed: u64,
}

/// The new bundle's blobs against the old bundle's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transfer {
    /// Distinct blobs of the new bundle.
    pub blobs_total: usize,
    /// Their bytes.
    pub bytes_total: u64,
    /// Those the old bundle does not hold.
    pub blobs_needed: usize,
    /// Their bytes.
    pub bytes_needed: u64,
}

/// One CRD that differs.
#[derive(Debug, Clone, Serialize)]
pub struct CrdChange {
    /// The CRD name.
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// For `changed`: versions and schema fields (the new spec against the old).
    pub changes: CrdChanges,
}

/// Compares the bundles at `old` and `new` (read, not verified).
pub fn diff_bundles(old: &Path, new: &Path, open: &OpenOptions) -> Result<BundleDiff, DiffError> {
    let old_side = Side::open(old, open)?;
    let new_side = Side::open(new, open)?;
    let (images, transfer) = diff_images(&old_side.images, &new_side.images);
    Ok(BundleDiff {
        old: old.display().to_string(),
        new: new.display().to_string(),
        chart: ChartChange {
            old_name: old_side.chart.name().to_string(),
            new_name: new_side.chart.name().to_string(),
            old_version: old_side.chart.metadata.version.to_string(),
            new_version: new_side.chart.metadata.version.to_string(),
        },
        images,
        transfer,
        crds: diff_crds(&old_side.crds, &new_side.crds),
        values: diff_values(&old_side.values, &new_side.values),
    })
}

/// One bundle's parts the diff looks at.
struct Side {
    chart: Chart,
    images: Vec<Image>,
    crds: Vec<CrdDocument>,
    values: serde_json::Map<String, serde_json::Value>,
}

impl Side {
    fn open(path: &Path, open: &OpenOptions) -> Result<Self, DiffError> {
        let bundle_error = |source| DiffError::Bundle {
            path: path.to_path_buf(),
            source,
        };
        let bundle = Bundle::open_with(path, open).map_err(bundle_error)?;
        let chart = bundle.chart().map_err(bundle_error)?;
        let images = bundle
            .image_archive()
            .map_err(bundle_error)?
            .map(|archive: ImageArchive| archive.images().to_vec())
            .unwrap_or_default();
        let enabled =
            enabled_subcharts(&chart, &Default::default(), HelmVersion::V3).map_err(|source| {
                DiffError::Values {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let crds = chart_crds(&chart, &enabled).map_err(|source| DiffError::Crds {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let values_text = chart
            .files
            .get("values.yaml")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let values = kantup_helm_values::yaml::parse_values(
            &values_text,
            &format!("{}: values.yaml", path.display()),
        )
        .map_err(|source| DiffError::Values {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            chart,
            images,
            crds,
            values,
        })
    }
}

/// Images keyed by `registry/repository` (the first parsed reference), with their tags.
fn by_repository(images: &[Image]) -> BTreeMap<String, (&Image, Vec<String>)> {
    let mut out: BTreeMap<String, (&Image, Vec<String>)> = BTreeMap::new();
    for image in images {
        let references: Vec<_> = image
            .references
            .iter()
            .filter_map(|n| n.reference())
            .collect();
        let key = references
            .first()
            .map(|r| r.name())
            .unwrap_or_else(|| image.display_name());
        let tags = references.iter().filter_map(|r| r.tag.clone()).collect();
        out.entry(key).or_insert((image, tags));
    }
    out
}

fn blobs(image: &Image) -> impl Iterator<Item = (&Digest, u64)> {
    std::iter::once((&image.config.digest, image.config.size))
        .chain(image.layers.iter().map(|l| (&l.digest, l.size)))
}

fn diff_images(old: &[Image], new: &[Image]) -> (ImageChanges, Transfer) {
    let old_blobs: BTreeSet<&Digest> = old.iter().flat_map(|i| blobs(i).map(|(d, _)| d)).collect();
    let old_by = by_repository(old);
    let new_by = by_repository(new);
    let entry = |repository: &str, image: &Image, tags: &[String]| ImageEntry {
        repository: repository.to_string(),
        tags: tags.to_vec(),
        digest: image.manifest_digest,
        size: blobs(image).map(|(_, size)| size).sum(),
    };
    let mut changes = ImageChanges::default();
    for (repository, (image, tags)) in &new_by {
        match old_by.get(repository) {
            None => changes.added.push(entry(repository, image, tags)),
            Some((old_image, _)) if old_image.manifest_digest == image.manifest_digest => {
                changes.unchanged += 1;
            }
            Some((old_image, old_tags)) => {
                let needed: Vec<u64> = blobs(image)
                    .filter(|(d, _)| !old_blobs.contains(d))
                    .map(|(_, size)| size)
                    .collect();
                changes.changed.push(ImageChange {
                    repository: repository.clone(),
                    old_tags: old_tags.clone(),
                    new_tags: tags.clone(),
                    old_digest: old_image.manifest_digest,
                    new_digest: image.manifest_digest,
                    blobs_needed: needed.len(),
                    bytes_needed: needed.iter().sum(),
                });
            }
        }
    }
    for (repository, (image, tags)) in &old_by {
        if !new_by.contains_key(repository) {
            changes.removed.push(entry(repository, image, tags));
        }
    }
    let mut transfer = Transfer::default();
    let mut seen: BTreeSet<&Digest> = BTreeSet::new();
    for (digest, size) in new.iter().flat_map(blobs) {
        if seen.insert(digest) {
            transfer.blobs_total += 1;
            transfer.bytes_total += size;
            if !old_blobs.contains(digest) {
                transfer.blobs_needed += 1;
                transfer.bytes_needed += size;
            }
        }
    }
    (changes, transfer)
}

fn diff_crds(old: &[CrdDocument], new: &[CrdDocument]) -> Vec<CrdChange> {
    let spec = |d: &CrdDocument| serde_json::to_value(&d.crd.spec).unwrap_or_default();
    let mut out = Vec::new();
    for document in new {
        match old.iter().find(|o| o.name == document.name) {
            None => out.push(CrdChange {
                name: document.name.clone(),
                change: "added",
                changes: CrdChanges::default(),
            }),
            Some(previous) => {
                let changes = diff_written_specs(&spec(document), &spec(previous));
                if !changes.is_empty() {
                    out.push(CrdChange {
                        name: document.name.clone(),
                        change: "changed",
                        changes,
                    });
                }
            }
        }
    }
    for document in old {
        if !new.iter().any(|n| n.name == document.name) {
            out.push(CrdChange {
                name: document.name.clone(),
                change: "removed",
                changes: CrdChanges::default(),
            });
        }
    }
    out
}
