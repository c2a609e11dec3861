//! The SBOMs a bundle carries with its images: SPDX or CycloneDX documents from the images'
//! in-toto attestations (the predicate) or cosign's `.sbom` attachments, listed, or written one
//! file per document, each named so a user can tell the image, the platform, where it came
//! from and its format.
//!
//! Each entry names the attachment manifest it came from
//! ([`SbomEntry::attachment`]), the key a signature check reports on.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kantup_bundle::Bundle;
use kantup_bundle::Digest;
use kantup_bundle::archive::attachment_info::{SbomFormat, SbomSource, by_image};
use kantup_bundle::archive::{ImageName, Platform};
use serde::Serialize;

use super::BundleOpError;

/// What [`sboms`] does.
#[derive(Debug, Clone)]
pub struct SbomOptions {
    /// The bundle.
    pub bundle: PathBuf,
    /// Only the SBOMs of this image: its name as `bundle inspect` shows it (with or without
    /// the tag) or a manifest / index digest.
    pub image: Option<String>,
    /// Write each SBOM into this directory (created when missing); `None` only lists them.
    pub output_dir: Option<PathBuf>,
    /// How the bundle is opened.
    pub open: kantup_bundle::OpenOptions,
}

/// One SBOM of the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct SbomEntry {
    /// The image it describes.
    pub image: String,
    /// The manifest or index digest it is about.
    pub digest: Digest,
    /// The platform, for a platform manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Its format.
    pub format: SbomFormat,
    /// An attestation's predicate, or an `.sbom` attachment.
    pub source: SbomSource,
    /// The attachment manifest it is in.
    pub attachment: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The file name it is (or would be) written as.
    pub file_name: String,
    /// Where it was written (with an output directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<PathBuf>,
}

/// What [`sboms`] found (and wrote).
#[derive(Debug, Clone, Serialize)]
pub struct SbomReport {
    /// The bundle.
    pub bundle: PathBuf,
    /// Every SBOM, in `bundle inspect`'s image order.
    pub sboms: Vec<SbomEntry>,
}

/// Lists the bundle's SBOMs (those of `options.image` only, when given), and writes them into
/// `options.output_dir` when one is given. An image asked for that the bundle does not carry
/// is an error; one without SBOMs gives an empty list.
pub fn sboms(options: &SbomOptions) -> Result<SbomReport, BundleOpError> {
    let bundle = Bundle::open_with(&options.bundle, &options.open)?;
    let archive = bundle.image_archive()?;
    let Some(archive) = archive else {
        return Err(BundleOpError::NoImages(options.bundle.clone()));
    };
    if let Some(wanted) = &options.image
        && !carries(&archive, wanted)
    {
        return Err(BundleOpError::ImageNotFound {
            image: wanted.clone(),
            bundle: options.bundle.clone(),
        });
    }
    let mut taken = BTreeSet::new();
    let mut entries = Vec::new();
    for image in by_image(&archive)? {
        if let Some(wanted) = &options.image
            && !names(wanted, &image.image, &image.digest)
        {
            continue;
        }
        for sbom in &image.attached.sboms {
            let file_name = unique(
                &mut taken,
                file_stem(
                    &image.image,
                    image.platform.as_ref(),
                    sbom.source,
                    &sbom.attachment,
                ),
                sbom.format.extension(),
            );
            let written = match &options.output_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|source| BundleOpError::Scratch {
                        action: "creating the SBOM directory",
                        source,
                    })?;
                    let path = dir.join(&file_name);
                    kantup_bundle::atomic::write(&path, &sbom.bytes)?;
                    Some(path)
                }
                None => None,
            };
            entries.push(SbomEntry {
                image: image.image.clone(),
                digest: image.digest,
                platform: image.platform.clone(),
                format: sbom.format,
                source: sbom.source,
                attachment: sbom.attachment,
                size: sbom.bytes.len() as u64,
                file_name,
                written,
            });
        }
    }
    Ok(SbomReport {
        bundle: options.bundle.clone(),
        sboms: entries,
    })
}

/// Whether `wanted` names `image` (listed as `name`, at `digest`): the digest, the name, or
/// the name without its tag.
fn names(wanted: &str, name: &str, digest: &Digest) -> bool {
    wanted == digest.to_string()
        || wanted == name
        || name
            .rsplit_once(':')
            .is_some_and(|(repository, tag)| !tag.contains('/') && repository == wanted)
}

/// Whether the archive carries an image or index `wanted` names.
fn carries(archive: &kantup_bundle::archive::ImageArchive, wanted: &str) -> bool {
    let named = |refs: &[ImageName], digest: &Digest| {
        refs.iter().any(|r| names(wanted, &r.to_string(), digest)) || names(wanted, "", digest)
    };
    archive
        .images()
        .iter()
        .any(|i| named(&i.references, &i.manifest_digest))
        || archive
            .indexes()
            .iter()
            .any(|i| named(&i.references, &i.digest))
}

/// `example.com_kantup_app_1.0.0[_linux-arm64]_attestation-<12 hex>`: the image, its
/// platform, where the SBOM came from and the attachment, in characters safe in a file name.
fn file_stem(
    image: &str,
    platform: Option<&Platform>,
    source: SbomSource,
    attachment: &Digest,
) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut stem = safe(image);
    if let Some(p) = platform {
        stem.push('_');
        stem.push_str(&safe(&p.to_string()).replace('_', "-"));
    }
    let source = match source {
        SbomSource::Attestation => "attestation",
        SbomSource::Attachment => "attachment",
    };
    format!("{stem}_{source}-{}", &attachment.hex()[..12])
}

/// `stem.ext`, or `stem-2.ext` ... when taken (one attachment can hold several documents).
fn unique(taken: &mut BTreeSet<String>, stem: String, extension: &str) -> String {
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{n}.{extension}")
        };
        if taken.insert(name.clone()) {
            return name;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_image_platform_source_and_format_apart() {
        let d = Digest::of(b"x");
        let arm = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: None,
        };
        let stem = file_stem(
            "example.com/kantup/app:1.0.0",
            Some(&arm),
            SbomSource::Attestation,
            &d,
        );
        assert_eq!(
            stem,
            format!(
                "example.com_kantup_app_1.0.0_linux-arm64_attestation-{}",
                &d.hex()[..12]
            )
        );
        let mut taken = BTreeSet::new();
        assert_eq!(unique(&mut taken, "a".into(), "spdx.json"), "a.spdx.json");
        assert_eq!(unique(&mut taken, "a".into(), "spdx.json"), "a-2.spdx.json");
        assert_eq!(unique(&mut taken, "a".into(), "cdx.json"), "a.cdx.json");
    }

    #[test]
    fn an_image_is_named_by_digest_name_or_repository() {
        let d = Digest::of(b"x");
        let name = "example.com/kantup/app:1.0.0";
        assert!(names(name, name, &d));
        assert!(names("example.com/kantup/app", name, &d));
        assert!(names(&d.to_string(), name, &d));
        assert!(!names("example.com/kantup/other", name, &d));
        assert!(!names("example.com", "example.com:5000/app", &d));
    }
}
