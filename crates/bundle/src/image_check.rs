//! Whether a bundle carries every image its chart needs, under valid names.
//!
//! A bundle whose `images.tar` lacks an image its chart needs (by whichever discovery source
//! lists it: hints, the chart's `.relok8s-images.yaml`, `Images.lock`, annotations) would
//! deploy references the target registry never gets; an archive name that is not a valid
//! reference cannot be relocated. [`check_images`] finds both; [`ImageCheck::require`] turns
//! them into one error naming every image, unless missing images are allowed on purpose (a
//! chart that pulls some images from elsewhere).
//!
//! ```
//! # let root = kantup_test_support::workspace_root();
//! let bundle = kantup_bundle::Bundle::open(root.join("examples/bundles/testchart.bundle.tar"))?;
//! let check = bundle.check_images()?;
//! assert!(check.missing.is_empty() && check.invalid_names.is_empty());
//! check.require(&bundle.path().display().to_string(), false)?;
//! # Ok::<(), kantup_bundle::BundleError>(())
//! ```

use serde::Serialize;

use crate::archive::{ImageArchive, ImageName};
use crate::bundle::Bundle;
use crate::discovery::{Discovery, ImageSource};
use crate::error::BundleError;
pub use crate::error::ImageProblems;
use crate::reference::{Reference, ReferenceError};

/// What [`check_images`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageCheck {
    /// Where the list of needed images came from.
    pub source: ImageSource,
    /// How many images the chart needs.
    pub needed: usize,
    /// Images the chart needs that the bundle does not carry.
    #[serde(serialize_with = "ser_references")]
    pub missing: Vec<Reference>,
    /// Names in the image archive (`RepoTags`, `ref.name`) that are not valid references, each
    /// with the reason.
    pub invalid_names: Vec<String>,
}

fn ser_references<S: serde::Serializer>(refs: &[Reference], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(refs.iter().map(ToString::to_string))
}

/// Compares the images `needed` lists with what `archive` carries (`None`: a bundle without
/// images). An image is carried when the archive names it (same name and tag), or when its
/// reference pins a digest the archive holds.
pub fn check_images(archive: Option<&ImageArchive>, needed: &Discovery) -> ImageCheck {
    let names: Vec<&ImageName> = archive
        .map(|a| {
            a.images()
                .iter()
                .flat_map(|i| &i.references)
                .chain(a.indexes().iter().flat_map(|i| &i.references))
                .collect()
        })
        .unwrap_or_default();
    let invalid_names = names
        .iter()
        .filter_map(|n| match n {
            ImageName::Parsed(_) => None,
            ImageName::Raw(text) => Some(match text.parse::<Reference>() {
                Err(ReferenceError { reason, .. }) => format!("{text:?} ({reason})"),
                Ok(_) => format!("{text:?}"),
            }),
        })
        .collect();
    let carried = |wanted: &Reference| {
        let by_name = names.iter().filter_map(|n| n.reference()).any(|have| {
            have.name() == wanted.name()
                && ((wanted.tag.is_some() && have.tag == wanted.tag)
                    || (wanted.digest.is_some() && have.digest == wanted.digest))
        });
        let by_digest = wanted.digest.is_some_and(|digest| {
            archive.is_some_and(|a| {
                a.images().iter().any(|i| i.manifest_digest == digest)
                    || a.indexes().iter().any(|i| i.digest == digest)
            })
        });
        by_name || by_digest
    };
    ImageCheck {
        source: needed.source,
        needed: needed.images.len(),
        missing: needed
            .images
            .iter()
            .map(|i| &i.reference)
            .filter(|r| !carried(r))
            .cloned()
            .collect(),
        invalid_names,
    }
}

impl ImageCheck {
    /// Ok when every archive name is valid and, unless `allow_missing`, every needed image is
    /// carried; else one error for `bundle` naming every missing and invalid image.
    pub fn require(&self, bundle: &str, allow_missing: bool) -> Result<(), BundleError> {
        let missing = if allow_missing {
            &[][..]
        } else {
            &self.missing
        };
        if missing.is_empty() && self.invalid_names.is_empty() {
            return Ok(());
        }
        Err(BundleError::Images(Box::new(ImageProblems {
            bundle: bundle.to_string(),
            source: self.source,
            missing: missing.iter().map(ToString::to_string).collect(),
            invalid: self.invalid_names.clone(),
        })))
    }
}

impl Bundle {
    /// [`check_images`] for this bundle's chart ([`Bundle::discover_images`]) and image
    /// archive. A hint that does not render to a valid reference is an error.
    pub fn check_images(&self) -> Result<ImageCheck, BundleError> {
        let needed = self.discover_images()?;
        Ok(check_images(self.image_archive()?.as_ref(), &needed))
    }
}
