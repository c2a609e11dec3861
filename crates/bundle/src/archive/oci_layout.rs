//! Writing images as an OCI image layout: into a directory ([`write_images`]), or as a tar
//! that is both an OCI layout and a docker-archive ([`write_archive_tar`], the layout
//! Docker 25+ `docker save` produces, which `docker load`, `podman load`, skopeo and
//! go-containerregistry's `tarball` package all read).
//!
//! Manifests are written byte for byte as the source archive gives them, so digests survive.
//! Every blob is hashed while it is copied and a mismatch fails the write.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::attachment::{Attachment, Link};
use super::oci::{CONTAINERD_NAME, REF_NAME, blob_path};
use super::{BlobInfo, Image, ImageArchive, ImageIndex, ImageName, media_types};
use crate::atomic::{self, Access, AtomicFile};
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::error::BundleError;
use crate::write::deterministic_header;

pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What [`write_images`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LayoutReport {
    /// Blobs copied (config, layers, manifests).
    pub blobs_written: usize,
    /// Blobs already present (skipped, not re-hashed).
    pub blobs_present: usize,
    /// Bytes copied.
    pub bytes_written: u64,
    /// index.json entries added or replaced.
    pub refs: Vec<String>,
}

fn descriptor_for(image: &Image, name: Option<&ImageName>) -> Value {
    let mut d = json!({
        "mediaType": image.manifest_media_type,
        "digest": image.manifest_digest.to_string(),
        "size": image.manifest.len(),
    });
    if let Some(n) = name {
        d["annotations"] = json!({
            REF_NAME: n.to_string(),
            CONTAINERD_NAME: n.to_string(),
        });
    }
    if let Some(p) = &image.platform {
        d["platform"] = serde_json::to_value(p).expect("platform serializes");
    }
    d
}

/// The top-level index entries for `images`: one per reference (or one unnamed).
fn index_entries(images: &[&Image]) -> Vec<Value> {
    let mut out = Vec::new();
    for image in images {
        if image.references.is_empty() {
            out.push(descriptor_for(image, None));
        }
        for r in &image.references {
            out.push(descriptor_for(image, Some(r)));
        }
    }
    out
}

fn copy_verified(
    archive: &ImageArchive,
    blob: &BlobInfo,
    image: &Image,
    mut out: impl Write,
) -> Result<u64, BundleError> {
    let reader = archive.open_blob(&blob.digest)?;
    let mut w = DigestWriter::new(&mut out);
    io::copy(&mut reader.take(blob.size + 1), &mut w)
        .map_err(|e| BundleError::io(format!("{}!{}", archive.label(), blob.digest), e))?;
    let (_, digest, size) = w.finish();
    out.flush()
        .map_err(|e| BundleError::io(format!("{}!{}", archive.label(), blob.digest), e))?;
    check_copied_blob(archive, blob, digest, size, || {
        format!("image {}", image.display_name())
    })?;
    Ok(size)
}

/// A blob copied out of `archive` must have the size and digest its descriptor names; the
/// error says whose blob it is (`whose`: `image <name>`, an attachment's description).
pub(crate) fn check_copied_blob(
    archive: &ImageArchive,
    blob: &BlobInfo,
    digest: Digest,
    size: u64,
    whose: impl Fn() -> String,
) -> Result<(), BundleError> {
    let what = || format!("{}: blob of {}", archive.label(), whose());
    if size != blob.size {
        return Err(BundleError::SizeMismatch {
            what: what(),
            expected: blob.size,
            actual: size,
        });
    }
    if digest != blob.digest {
        return Err(BundleError::DigestMismatch {
            what: what(),
            expected: blob.digest,
            actual: digest,
        });
    }
    Ok(())
}

/// The repository (`registry/path`) a manifest is known by in `archive`: its own first parsed
/// name, else that of an index listing it.
pub(crate) fn repository_of(archive: &ImageArchive, digest: &Digest) -> Option<String> {
    let from = |names: &[ImageName]| {
        names.iter().find_map(|n| {
            n.reference()
                .map(|r| format!("{}/{}", r.registry, r.repository))
        })
    };
    if let Some(name) = archive
        .images()
        .iter()
        .filter(|i| &i.manifest_digest == digest)
        .find_map(|i| from(&i.references))
    {
        return Some(name);
    }
    archive.indexes().iter().find_map(|index| {
        let lists = index.digest == *digest || index.children().contains(digest);
        if lists { from(&index.references) } else { None }
    })
}

/// What [`write_images`] would do to one image of a layout directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutAction {
    /// The image is not (wholly) there: blobs or names are added.
    Add,
    /// Its manifest, config and layers are there and `index.json` names it (each of its
    /// references) at its digest: nothing would change.
    Present,
    /// A name of the image points at another manifest, which is replaced.
    Replace {
        /// The digest the name pointed at; `None` when `index.json` names no valid digest.
        previous: Option<Digest>,
    },
}

/// Those of `digests` the layout directory `dir` does not hold (checked by presence under
/// `blobs/`, as [`write_images`] does): for a differential bundle, the left-out layers the
/// layout must already have.
pub fn missing_blobs(dir: impl AsRef<Path>, digests: &[Digest]) -> Vec<Digest> {
    let dir = dir.as_ref();
    digests
        .iter()
        .filter(|d| !dir.join(blob_path(d)).is_file())
        .copied()
        .collect()
}

/// For each of `images`, what writing it into the layout directory `dir` would do (a missing
/// directory or `index.json` means every image is added). Blobs are checked by presence, as
/// [`write_images`] does.
pub fn plan_images(
    dir: impl AsRef<Path>,
    images: &[&Image],
) -> Result<Vec<LayoutAction>, BundleError> {
    let dir = dir.as_ref();
    let index_path = dir.join("index.json");
    let index: Value = match fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| BundleError::json(index_path.display(), e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(vec![LayoutAction::Add; images.len()]);
        }
        Err(e) => return Err(BundleError::io(&index_path, e)),
    };
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    Ok(images
        .iter()
        .map(|image| {
            let digest = image.manifest_digest.to_string();
            for r in &image.references {
                let name = r.to_string();
                if let Some(m) = entries
                    .iter()
                    .find(|m| m["annotations"][REF_NAME].as_str() == Some(name.as_str()))
                    && m["digest"].as_str() != Some(digest.as_str())
                {
                    return LayoutAction::Replace {
                        previous: m["digest"].as_str().and_then(|d| d.parse().ok()),
                    };
                }
            }
            let named = if image.references.is_empty() {
                entries
                    .iter()
                    .any(|m| m["digest"].as_str() == Some(digest.as_str()))
            } else {
                image.references.iter().all(|r| {
                    let name = r.to_string();
                    entries.iter().any(|m| {
                        m["annotations"][REF_NAME].as_str() == Some(name.as_str())
                            && m["digest"].as_str() == Some(digest.as_str())
                    })
                })
            };
            let blobs_there = std::iter::once(&image.manifest_digest)
                .chain(std::iter::once(&image.config.digest))
                .chain(image.layers.iter().map(|l| &l.digest))
                .all(|d| dir.join(blob_path(d)).is_file());
            if named && blobs_there {
                LayoutAction::Present
            } else {
                LayoutAction::Add
            }
        })
        .collect())
}

/// Writes `images` (blobs by digest, manifests, and `index.json` entries named with each
/// reference in `org.opencontainers.image.ref.name`) into the OCI layout directory `dir`,
/// creating it or adding to an existing layout (entries with the same name are replaced).
/// Blobs already present are not copied again. Each blob goes to a temporary name and is
/// renamed into place only after its digest checked out.
pub fn write_images(
    dir: impl AsRef<Path>,
    archive: &ImageArchive,
    images: &[&Image],
    mut progress: impl FnMut(u64),
) -> Result<LayoutReport, BundleError> {
    let dir = dir.as_ref();
    let blobs_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(|e| BundleError::io(&blobs_dir, e))?;
    let layout_file = dir.join("oci-layout");
    if !layout_file.exists() {
        fs::write(&layout_file, OCI_LAYOUT).map_err(|e| BundleError::io(&layout_file, e))?;
    }
    let mut report = LayoutReport::default();
    let put = |path: PathBuf,
               report: &mut LayoutReport,
               write: &mut dyn FnMut(&mut dyn Write) -> Result<u64, BundleError>|
     -> Result<u64, BundleError> {
        if path.exists() {
            report.blobs_present += 1;
            return Ok(0);
        }
        let mut file = AtomicFile::create(&path, Access::Normal)?;
        let n = write(&mut file)?;
        file.commit()?;
        report.blobs_written += 1;
        report.bytes_written += n;
        Ok(n)
    };
    for image in images {
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            let n = put(dir.join(blob_path(&blob.digest)), &mut report, &mut |f| {
                copy_verified(archive, blob, image, io::BufWriter::new(f))
            })?;
            progress(n);
        }
        put(
            dir.join(blob_path(&image.manifest_digest)),
            &mut report,
            &mut |f| {
                f.write_all(&image.manifest)
                    .map_err(|e| BundleError::io(dir, e))?;
                Ok(image.manifest.len() as u64)
            },
        )?;
    }
    // Merge into index.json.
    let index_path = dir.join("index.json");
    let mut index: Value = match fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| BundleError::json(index_path.display(), e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": [],
        }),
        Err(e) => return Err(BundleError::io(&index_path, e)),
    };
    let manifests = index["manifests"].as_array_mut().ok_or_else(|| {
        BundleError::archive(index_path.display(), "index.json has no `manifests` list")
    })?;
    for entry in index_entries(images) {
        let name = entry["annotations"][REF_NAME].as_str().map(str::to_string);
        if let Some(n) = &name {
            manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(n));
            report.refs.push(n.clone());
        } else {
            let digest = entry["digest"].clone();
            if manifests.iter().any(|m| m["digest"] == digest) {
                continue;
            }
        }
        manifests.push(entry);
    }
    atomic::write(
        &index_path,
        &serde_json::to_vec_pretty(&index).expect("json"),
    )?;
    Ok(report)
}

/// Writes `images` as one deterministic tar to `out`: `oci-layout`, the blobs under
/// `blobs/sha256/`, `index.json` and a docker `manifest.json` (Docker 25+'s `docker save`
/// layout). Blobs are streamed and verified on the way.
pub fn write_archive_tar<W: Write>(
    out: W,
    archive: &ImageArchive,
    images: &[&Image],
    progress: impl FnMut(u64),
) -> Result<W, BundleError> {
    write_archive_tar_omitting(out, archive, images, &HashSet::new(), progress)
}

/// [`write_archive_tar`] leaving out the blobs in `omit` (a differential bundle's archive:
/// manifests still name them, see [`crate::differential`]).
pub fn write_archive_tar_omitting<W: Write>(
    out: W,
    archive: &ImageArchive,
    images: &[&Image],
    omit: &HashSet<Digest>,
    progress: impl FnMut(u64),
) -> Result<W, BundleError> {
    write_archive_tar_carrying(out, archive, images, &[], &[], omit, progress)
}

/// [`write_archive_tar_omitting`] that also carries `indexes` (named by their references, so
/// a multi-platform image keeps its index digest) and `attachments` (signatures,
/// attestations, SBOMs, referrers), each manifest byte for byte: a cosign-tagged one is named
/// `<repository>:sha256-<hex>.sig` (the repository of its image, or the bare tag when the image
/// has no name), a referrer is listed unnamed (its `subject` says whose it is), as the OCI
/// layout reader ([`ImageArchive::open`]) recognizes them. Attachment blobs are never left
/// out: they are small, and a signature must be checkable from the bundle alone.
pub fn write_archive_tar_carrying<W: Write>(
    out: W,
    archive: &ImageArchive,
    images: &[&Image],
    indexes: &[&ImageIndex],
    attachments: &[&Attachment],
    omit: &HashSet<Digest>,
    mut progress: impl FnMut(u64),
) -> Result<W, BundleError> {
    let label = "image archive being written".to_string();
    let io_err = |e: io::Error| BundleError::io(&label, e);
    let mut tar = tar::Builder::new(out);
    let add = |tar: &mut tar::Builder<W>, name: &str, size: u64, data: &mut dyn Read| {
        let mut h = deterministic_header(size, 0o644);
        tar.append_data(&mut h, name, data)
    };
    add(
        &mut tar,
        "oci-layout",
        OCI_LAYOUT.len() as u64,
        &mut &OCI_LAYOUT[..],
    )
    .map_err(io_err)?;
    let mut written: BTreeMap<Digest, ()> = BTreeMap::new();
    let mut docker_manifest = Vec::new();
    for image in images {
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            if written.insert(blob.digest, ()).is_some() || omit.contains(&blob.digest) {
                continue;
            }
            let reader = archive.open_blob(&blob.digest)?;
            let mut r = DigestReader::new(reader);
            add(&mut tar, &blob_path(&blob.digest), blob.size, &mut r)
                .map_err(|e| BundleError::io(format!("{}!{}", archive.label(), blob.digest), e))?;
            let (digest, size) = r.finish();
            check_copied_blob(archive, blob, digest, size, || {
                format!("image {}", image.display_name())
            })?;
            progress(size);
        }
        if written.insert(image.manifest_digest, ()).is_none() {
            add(
                &mut tar,
                &blob_path(&image.manifest_digest),
                image.manifest.len() as u64,
                &mut image.manifest.as_slice(),
            )
            .map_err(io_err)?;
        }
        docker_manifest.push(json!({
            "Config": blob_path(&image.config.digest),
            "RepoTags": image.references.iter().filter_map(|r| r.reference().map(|r| r.to_string())).collect::<Vec<_>>(),
            "Layers": image.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
        }));
    }
    let mut entries = index_entries(images);
    for index in indexes {
        if written.insert(index.digest, ()).is_none() {
            add(
                &mut tar,
                &blob_path(&index.digest),
                index.manifest.len() as u64,
                &mut index.manifest.as_slice(),
            )
            .map_err(io_err)?;
        }
        let descriptor = json!({
            "mediaType": index.media_type,
            "digest": index.digest.to_string(),
            "size": index.manifest.len(),
        });
        if index.references.is_empty() {
            entries.push(descriptor.clone());
        }
        for r in &index.references {
            let mut d = descriptor.clone();
            d["annotations"] = json!({REF_NAME: r.to_string(), CONTAINERD_NAME: r.to_string()});
            entries.push(d);
        }
    }
    for a in attachments {
        for blob in &a.blobs {
            if written.insert(blob.digest, ()).is_some() {
                continue;
            }
            let reader = archive.open_blob(&blob.digest)?;
            let mut r = DigestReader::new(reader.take(blob.size + 1));
            add(&mut tar, &blob_path(&blob.digest), blob.size, &mut r)
                .map_err(|e| BundleError::io(format!("{}!{}", archive.label(), blob.digest), e))?;
            let (digest, size) = r.finish();
            check_copied_blob(archive, blob, digest, size, || a.describe())?;
        }
        if written.insert(a.digest, ()).is_none() {
            add(
                &mut tar,
                &blob_path(&a.digest),
                a.manifest.len() as u64,
                &mut a.manifest.as_slice(),
            )
            .map_err(io_err)?;
        }
        let mut d = a.descriptor();
        if let Link::Tag(tag) = &a.link {
            let name = match repository_of(archive, &a.subject) {
                Some(repository) => format!("{repository}:{tag}"),
                None => tag.clone(),
            };
            d["annotations"] = json!({ REF_NAME: name });
        }
        entries.push(d);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": entries,
    }))
    .expect("json");
    add(
        &mut tar,
        "index.json",
        index.len() as u64,
        &mut index.as_slice(),
    )
    .map_err(io_err)?;
    let manifest = serde_json::to_vec(&docker_manifest).expect("json");
    add(
        &mut tar,
        "manifest.json",
        manifest.len() as u64,
        &mut manifest.as_slice(),
    )
    .map_err(io_err)?;
    tar.into_inner().map_err(io_err)
}
