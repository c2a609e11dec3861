//! Where a wrap keeps its images' signatures, attestations, SBOMs and referrers:
//! `helm dt`'s `artifacts/images/<chart>/<image>/` directory, one OCI layout per cosign tag.
//!
//! ```text
//! artifacts/images/<chart>/<name>/<tag>.sig/                the image's (or index's) .sig
//! artifacts/images/<chart>/<name>/<tag>.<os>_<arch>.sig/    a platform manifest's .sig (dt#149)
//! artifacts/images/<chart>/<name>/<tag>[.<os>_<arch>].att/  .att, likewise (kantup)
//! artifacts/images/<chart>/<name>/<tag>[.<os>_<arch>].sbom/ .sbom, likewise (kantup)
//! artifacts/images/<chart>/<name>/<tag>[...].referrers/     OCI 1.1 referrers (kantup)
//! artifacts/images/<chart>/<name>/<tag>.index.json          the image's own index (kantup)
//! ```
//!
//! `<chart>`, `<name>` and `<tag>` come from the image's `Images.lock` entry (`<tag>` is the
//! digest's hex for an image pinned by digest, as dt names it). A `.sig`, `.att` or `.sbom`
//! layout lists its one manifest as dt saves it, plus a `ref.name` annotation with the cosign
//! tag; a `.referrers` layout lists each referrer, which names its image in `subject`. The
//! index file keeps a multi-platform image's index byte for byte, so signatures of the index
//! stay valid: without it a reader rebuilds an index from the lock, with another digest.

use std::collections::{BTreeMap, HashSet};

use crate::archive::attachment::{Attachment, AttachmentKind, Link};
use crate::archive::{ImageArchive, ImageIndex, children_of};
use crate::digest::Digest;
use crate::images_lock::{ImagesLock, LockedImage};

/// The artifacts directory inside a wrap's top directory.
pub const WRAP_ARTIFACTS_IMAGES_DIR: &str = "artifacts/images";
/// The suffix of kantup's layout of an image's OCI 1.1 referrers.
pub const REFERRERS_SUFFIX: &str = "referrers";
/// The suffix of the file keeping an image's own index.
pub const INDEX_SUFFIX: &str = "index.json";

/// `<chart>/<name>/<tag>` for a lock entry, with `.<os>_<arch>[_<variant>]` for one platform
/// of it; path separators in the parts become `_`.
pub(crate) fn artifact_base(entry: &LockedImage, platform: Option<&str>) -> String {
    let clean = |s: &str| s.replace(['/', '\\'], "_").replace("..", "_");
    let tag = match entry.reference() {
        Ok(r) => match (r.tag, r.digest) {
            (Some(t), _) => t,
            (None, Some(d)) => d.hex().to_string(),
            (None, None) => "latest".to_string(),
        },
        Err(_) => "latest".to_string(),
    };
    let mut base = format!(
        "{}/{}/{}",
        clean(&entry.chart),
        clean(&entry.name),
        clean(&tag)
    );
    if let Some(p) = platform {
        base.push('.');
        base.push_str(&p.replace('/', "_"));
    }
    base
}

/// The directory suffix of an attachment: its cosign tag's (`sig`, `att`, `sbom`) or
/// `referrers`.
pub(crate) fn suffix_of(a: &Attachment) -> &'static str {
    match (&a.link, a.kind.cosign_suffix()) {
        (Link::Tag(_), Some(suffix)) => suffix,
        _ => REFERRERS_SUFFIX,
    }
}

/// The kind an unnamed manifest in a layout with this directory suffix is (`helm dt` names
/// nothing in its `.sig` layouts); `None` for referrers (told apart by `subject`) and for
/// directories that hold no image attachments (dt's `.metadata`).
pub(crate) fn kind_of_dir(dir_name: &str) -> Option<Option<AttachmentKind>> {
    if dir_name.contains(".metadata") {
        return None;
    }
    let (_, suffix) = dir_name.rsplit_once('.')?;
    match suffix {
        "sig" => Some(Some(AttachmentKind::Signature)),
        "att" => Some(Some(AttachmentKind::Attestation)),
        "sbom" => Some(Some(AttachmentKind::Sbom)),
        REFERRERS_SUFFIX => Some(None),
        _ => None,
    }
}

/// Whether an index lists exactly the platform manifests of a lock entry.
pub(crate) fn index_matches(manifest: &[u8], entry: &LockedImage) -> bool {
    let children: HashSet<Digest> = children_of(manifest).into_iter().collect();
    let locked: HashSet<Digest> = entry.digests.iter().map(|d| d.digest).collect();
    !locked.is_empty() && children == locked
}

/// Where a wrap puts the attachments of `archive`'s images.
#[derive(Debug, Default)]
pub(crate) struct Placement<'a> {
    /// Layout directory (relative to the artifacts directory, with its suffix) -> what it holds.
    pub(crate) layouts: BTreeMap<String, Vec<&'a Attachment>>,
    /// Index files (relative to the artifacts directory) -> the index they keep.
    pub(crate) indexes: BTreeMap<String, &'a ImageIndex>,
    /// Attachments about no image the lock lists.
    pub(crate) unplaced: Vec<&'a Attachment>,
}

/// Places each of `attachments` by the lock entry of its image: an index's (and the index
/// itself) at the entry's `<tag>`, a platform manifest's at `<tag>.<os>_<arch>` when the
/// image has several platforms or an index, else at `<tag>`. An image the lock lists twice
/// is placed at its first entry.
pub(crate) fn place<'a>(
    lock: &ImagesLock,
    archive: &'a ImageArchive,
    attachments: &[&'a Attachment],
) -> Placement<'a> {
    let mut placement = Placement::default();
    let index_of = |entry: &LockedImage| {
        archive
            .indexes()
            .iter()
            .find(|i| index_matches(&i.manifest, entry))
    };
    let mut base_of: BTreeMap<Digest, String> = BTreeMap::new();
    for entry in &lock.images {
        let index = index_of(entry);
        if let Some(index) = index
            && !base_of.contains_key(&index.digest)
        {
            let base = artifact_base(entry, None);
            placement
                .indexes
                .insert(format!("{base}.{INDEX_SUFFIX}"), index);
            base_of.insert(index.digest, base);
        }
        let per_platform = index.is_some() || entry.digests.len() > 1;
        for d in &entry.digests {
            base_of
                .entry(d.digest)
                .or_insert_with(|| artifact_base(entry, per_platform.then_some(d.arch.as_str())));
        }
    }
    for a in attachments {
        match base_of.get(&a.subject) {
            Some(base) => placement
                .layouts
                .entry(format!("{base}.{}", suffix_of(a)))
                .or_default()
                .push(a),
            None => placement.unplaced.push(a),
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images_lock::LockedDigest;

    #[test]
    fn bases_follow_dt_naming() {
        let digest = Digest::of(b"x");
        let entry = |image: &str| LockedImage {
            name: "web".into(),
            image: image.into(),
            chart: "app".into(),
            digests: vec![LockedDigest {
                digest,
                arch: "linux/amd64".into(),
            }],
        };
        assert_eq!(
            artifact_base(&entry("docker.io/bitnami/web:1.2.3"), None),
            "app/web/1.2.3"
        );
        assert_eq!(
            artifact_base(
                &entry("docker.io/bitnami/web:1.2.3"),
                Some("linux/arm64/v8")
            ),
            "app/web/1.2.3.linux_arm64_v8"
        );
        assert_eq!(
            artifact_base(&entry(&format!("docker.io/bitnami/web@{digest}")), None),
            format!("app/web/{}", digest.hex())
        );
        assert_eq!(
            kind_of_dir("1.2.3.linux_amd64.sig"),
            Some(Some(AttachmentKind::Signature))
        );
        assert_eq!(kind_of_dir("1.2.3.referrers"), Some(None));
        assert_eq!(kind_of_dir("1.2.3.metadata.sig"), None);
        assert_eq!(kind_of_dir("1.2.3.metadata"), None);
    }
}
