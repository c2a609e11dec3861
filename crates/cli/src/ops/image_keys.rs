//! `--image-key`: every image a bundle carries (every platform manifest of a multi-platform
//! image) needs at least one valid signature by one of the given public keys, checked offline
//! from the signatures the bundle carries, before anything is pushed, loaded or applied.
//! `bundle verify`, `sync`, `load` and `upgrade` call [`require_signed`]; `bundle sbom` refuses
//! nothing but marks each SBOM with [`sbom_verification`].
//!
//! The verifier is [`kantup_bundle::image_signature`]; this module loads the keys, runs it over
//! a bundle's image archive and turns refusals into one error naming each image and why
//! ([`ImageKeysError::Refused`], exit 3). No network is used.

use std::path::PathBuf;

use kantup_bundle::archive::attachment_info::{SbomDocument, SbomFormat, SbomSource};
use kantup_bundle::image_signature::{
    ImageVerdict, ImagesNotVerified, Outcome, SbomRef, SignatureCheck, require_verified,
    verify_archive,
};
use kantup_bundle::signature::{SignatureError, VerifyingKey};
use kantup_bundle::{Bundle, BundleError, Digest};
use serde::Serialize;

/// Why `--image-key` stopped a command.
#[derive(Debug, thiserror::Error)]
pub enum ImageKeysError {
    /// A key file could not be read or is not a P-256 public key in PEM (boxed, as the
    /// bundle error: this error travels inside every command's error).
    #[error("--image-key: {0}")]
    Key(#[source] Box<SignatureError>),
    /// The bundle's images could not be read.
    #[error("{}: {source}", path.display())]
    Bundle {
        /// The bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<BundleError>,
    },
    /// Some image has no valid signature by any key; nothing was changed.
    #[error("{}: refused, nothing changed: {source}", path.display())]
    Refused {
        /// The bundle.
        path: PathBuf,
        /// Each refused image and why.
        #[source]
        source: ImagesNotVerified,
    },
}

/// Reads the public keys (PEM, as `cosign generate-key-pair` and `openssl ec -pubout` write).
pub fn load_keys(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>, ImageKeysError> {
    paths
        .iter()
        .map(|p| VerifyingKey::read(p).map_err(|e| ImageKeysError::Key(Box::new(e))))
        .collect()
}

/// The verdict on every image of `bundle` with `keys` (none refused or not: see
/// [`require_signed`]); empty for a bundle without images.
pub fn verdicts(bundle: &Bundle, keys: &[VerifyingKey]) -> Result<Vec<ImageVerdict>, BundleError> {
    Ok(match bundle.image_archive()? {
        Some(archive) => verify_archive(&archive, keys),
        None => Vec::new(),
    })
}

/// With keys given (`key_paths` not empty): every image of `bundle` must be signed by one of
/// them, else [`ImageKeysError::Refused`] naming each image and why. Returns the verdicts
/// (empty when no key is given: nothing is checked).
pub fn require_signed(
    bundle: &Bundle,
    key_paths: &[PathBuf],
) -> Result<Vec<ImageVerdict>, ImageKeysError> {
    if key_paths.is_empty() {
        return Ok(Vec::new());
    }
    let keys = load_keys(key_paths)?;
    let path = bundle.path().to_path_buf();
    let verdicts = verdicts(bundle, &keys).map_err(|source| ImageKeysError::Bundle {
        path: path.clone(),
        source: Box::new(source),
    })?;
    require_verified(&verdicts).map_err(|source| ImageKeysError::Refused {
        path: path.clone(),
        source,
    })?;
    for verdict in &verdicts {
        tracing::info!(image = %verdict.name, digest = %verdict.image, "{}", verdict.summary());
    }
    Ok(verdicts)
}

/// One image an upgrade deployed, as its record beside the values backup keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedImage {
    /// The image's name in the bundle (and platform).
    pub image: String,
    /// Its manifest digest.
    pub digest: Digest,
    /// `verified` (with the key), `refused` (with the reasons) or `not-checked` (no
    /// `--image-key`).
    pub signature: SignatureVerdict,
    /// The SBOMs the bundle carries for it.
    pub sboms: Vec<SbomRef>,
}

/// What the signature check said about one deployed image.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum SignatureVerdict {
    /// A given key verified a signature over it.
    Verified {
        /// The key file.
        key: String,
        /// The attachment holding the signature.
        attachment: Digest,
    },
    /// No key verified it (only with a failed check, which stops the upgrade first).
    Refused {
        /// Why, per signature.
        reasons: Vec<String>,
    },
    /// No `--image-key` was given.
    NotChecked,
}

impl DeployedImage {
    /// The record of `verdict`; `checked` says whether keys were given.
    pub fn from_verdict(verdict: &ImageVerdict, checked: bool) -> DeployedImage {
        let signature = match verdict.verified_by() {
            Some(check) if checked => {
                let Outcome::Verified { key } = &check.outcome else {
                    unreachable!("verified_by returns a verified check")
                };
                SignatureVerdict::Verified {
                    key: key.clone(),
                    attachment: check.attachment,
                }
            }
            None if checked => SignatureVerdict::Refused {
                reasons: verdict.refusals().map(ToString::to_string).collect(),
            },
            _ => SignatureVerdict::NotChecked,
        };
        DeployedImage {
            image: verdict.name.clone(),
            digest: verdict.image,
            signature,
            sboms: verdict.sboms.clone(),
        }
    }
}

/// The deployed-images record of `bundle`: with `key_paths`, the images are checked (and a
/// refused one stops here, [`ImageKeysError::Refused`]); without, their digests and SBOMs
/// are recorded as not checked.
pub fn deployed_images(
    bundle: &Bundle,
    key_paths: &[PathBuf],
) -> Result<Vec<DeployedImage>, ImageKeysError> {
    let checked = !key_paths.is_empty();
    let verdicts = if checked {
        require_signed(bundle, key_paths)?
    } else {
        verdicts(bundle, &[]).map_err(|source| ImageKeysError::Bundle {
            path: bundle.path().to_path_buf(),
            source: Box::new(source),
        })?
    };
    Ok(verdicts
        .iter()
        .map(|v| DeployedImage::from_verdict(v, checked))
        .collect())
}

/// Whether a given `--image-key` verified the signature over one SBOM (`bundle sbom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum SbomVerification {
    /// No `--image-key` was given.
    NotChecked,
    /// The attestation holding it is signed over its image by this key (its file).
    Verified {
        /// The key file.
        key: String,
    },
    /// No given key verified it.
    NotVerified {
        /// Why.
        reason: String,
    },
}

/// What the signature checks of `sbom`'s image (`checks`, from
/// [`kantup_bundle::image_signature::verify_image`] with the given keys) say about `sbom`: an
/// attestation's SBOM is verified when the check of its attestation (same attachment, an SBOM
/// predicate of the same format) verified. One attachment can hold several attestations of one
/// format, which only their order tells apart: such an SBOM counts as verified only when every
/// one of them is. cosign's `.sbom` attachments carry no signature of their own.
pub fn sbom_verification(checks: &[SignatureCheck], sbom: &SbomDocument) -> SbomVerification {
    if sbom.source == SbomSource::Attachment {
        return SbomVerification::NotVerified {
            reason: "an .sbom attachment carries no signature".to_string(),
        };
    }
    let holding: Vec<&SignatureCheck> = checks
        .iter()
        .filter(|c| {
            c.attachment == sbom.attachment
                && c.predicate_type
                    .as_deref()
                    .and_then(SbomFormat::of_predicate)
                    == Some(sbom.format)
        })
        .collect();
    let refused = holding.iter().find_map(|c| match &c.outcome {
        Outcome::Refused(refusal) => Some(refusal.to_string()),
        Outcome::Verified { .. } => None,
    });
    match (refused, holding.first().map(|c| &c.outcome)) {
        (Some(reason), _) => SbomVerification::NotVerified { reason },
        (None, Some(Outcome::Verified { key })) => SbomVerification::Verified { key: key.clone() },
        _ => SbomVerification::NotVerified {
            reason: format!(
                "no signature check of attestation {} found",
                sbom.attachment
            ),
        },
    }
}
