//! Differential bundles in a registry: the layers such a bundle leaves out (its base holds
//! them, see `kantup_bundle::differential`) must already be in the target registry. This
//! checks that before anything is pushed, mounting a blob from the base's repositories into
//! an image's repository when only the base's repository has it.

use std::collections::{BTreeSet, HashSet};

use kantup_bundle::Digest;
use kantup_bundle::differential::BaseRecord;
use kantup_bundle::reference::Reference;
use serde::Serialize;

use crate::client::{BlobOutcome, RegistryClient};
use crate::error::Result;
use crate::push::ImagePush;
use crate::relocate::RelocationRule;

/// A left-out blob the target registry does not have where an image needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingBaseBlob {
    /// The image that needs it (as the bundle names it).
    pub image: String,
    /// The target repository it must be in.
    pub repository: String,
    /// The blob.
    pub digest: Digest,
}

/// What [`ensure_base_blobs`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BaseBlobCheck {
    /// (repository, blob) pairs already in place.
    pub present: usize,
    /// Pairs mounted from one of the base's repositories.
    pub mounted: usize,
    /// Pairs missing: the bundle cannot be pushed while this is not empty.
    pub missing: Vec<MissingBaseBlob>,
}

/// The target repositories of the base's images under `rule` (the same rule that placed them
/// when the base was synced), sorted; names that do not parse are skipped.
pub fn base_repositories(record: &BaseRecord, rule: &RelocationRule) -> Vec<String> {
    record
        .base
        .images
        .iter()
        .filter_map(|name| name.parse::<Reference>().ok())
        .map(|r| rule.repository_for(&r.repository))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Checks that every blob in `omitted` that a push names is in that push's repository. When
/// `mount` is set, a blob found in one of `base_repositories` instead is mounted into the
/// push's repository (a registry-side link, no bytes move); without it (dry runs) it only
/// counts as present.
pub async fn ensure_base_blobs(
    client: &RegistryClient,
    pushes: &[ImagePush],
    omitted: &HashSet<Digest>,
    base_repositories: &[String],
    mount: bool,
) -> Result<BaseBlobCheck> {
    let mut check = BaseBlobCheck::default();
    let mut done: HashSet<(String, Digest)> = HashSet::new();
    for push in pushes {
        for blob in push.blobs.iter().filter(|b| omitted.contains(&b.digest)) {
            if !done.insert((push.repository.clone(), blob.digest)) {
                continue;
            }
            if client.blob_exists(&push.repository, &blob.digest).await? {
                check.present += 1;
                continue;
            }
            let mut found = false;
            for from in base_repositories.iter().filter(|r| **r != push.repository) {
                if !client.blob_exists(from, &blob.digest).await? {
                    continue;
                }
                if !mount {
                    found = true;
                    break;
                }
                let refuse_upload = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
                    Err(std::io::Error::other(
                        "left out of the differential bundle; the registry did not mount it",
                    ))
                };
                match client
                    .ensure_blob(
                        &push.repository,
                        &blob.digest,
                        blob.size,
                        Some(from),
                        &refuse_upload,
                        &|_| {},
                    )
                    .await
                {
                    Ok(BlobOutcome::Mounted | BlobOutcome::Existed) => {
                        found = true;
                        break;
                    }
                    // The registry would not mount it (it offered an upload, which the bundle
                    // cannot feed): try the next repository, else report it missing.
                    Ok(BlobOutcome::Uploaded(_) | BlobOutcome::Resumed { .. }) | Err(_) => {}
                }
            }
            if found {
                check.mounted += 1;
            } else {
                check.missing.push(MissingBaseBlob {
                    image: push.source_name.clone(),
                    repository: push.repository.clone(),
                    digest: blob.digest,
                });
            }
        }
    }
    Ok(check)
}
