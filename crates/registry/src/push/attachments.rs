//! Pushing what travels with an image (its signatures, attestations, SBOMs and other OCI 1.1
//! referrers, see [`kantup_bundle::archive::attachment`]) into the repository the image went
//! to, digest-exact: the manifest bytes unchanged, after their blobs (a manifest whose blobs
//! failed is never pushed), and after the image itself (the caller pushes the image first).
//!
//! - [`Link::Tag`] (cosign's `sha256-<hex>.sig`, `.att`, `.sbom`): the manifest under that
//!   tag, as it is. A tag that points at another manifest is replaced or refused as the run's
//!   [`TagPolicy`] says (the registry keeps the other manifest by its digest).
//! - [`Link::Subject`] (an OCI 1.1 referrer): the manifest by its digest; then, if the registry
//!   has the referrers API (see [`RegistryClient::has_referrers_api`]), nothing more, else
//!   the fallback index tagged `sha256-<hex>` gets a descriptor for it
//!   ([`fallback_index`](super::fallback_index)): merged with what is there, never clobbered.
//!
//! Already present (HEAD by digest, or the tag at the same digest): skipped, so a second run
//! pushes nothing; a referrer that is present is still looked up in the fallback index, which
//! is repaired if a concurrent writer dropped it.
//!
//! Concurrent pushers of the fallback index: the registry offers no transaction, so the
//! update is read, merge, write, read back. The write is conditional (`If-Match` with the
//! `ETag` read, `If-None-Match: *` when there was none): a registry that implements
//! conditional requests refuses a write over a change made since the read (412), and the
//! update starts over from a fresh read. docker-registry ignores the condition; there the
//! read-back after each write finds a descriptor a concurrent writer's older copy replaced,
//! and the update starts over (up to [`FALLBACK_ATTEMPTS`] times). What no client can prevent
//! on such a registry: another writer who read before kantup's write and writes after
//! kantup's read-back drops kantup's entry; the next sync finds it missing and adds it again.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kantup_bundle::archive::attachment::{Attachment, AttachmentKind, Link, fallback_tag};
use kantup_bundle::{Digest, media_types};
use serde::Serialize;

use super::run::Run;
use super::{
    BlobCounts, BlobRef, BlobSource, ImageAction, ImagePush, Observer, PushOptions, action_for,
    fallback_index,
};
use crate::client::{Precondition, RegistryClient};
use crate::error::{RegistryError, Result};

/// How often a fallback index update starts over after a concurrent change.
pub const FALLBACK_ATTEMPTS: u32 = 10;

/// One attachment to push into the repository its image went to.
#[derive(Clone)]
pub struct AttachmentPush {
    /// The image it belongs to, as its source names it (for reports).
    pub image: String,
    /// The target repository (the image's, relocated).
    pub repository: String,
    /// What is pushed, exactly.
    pub attachment: Attachment,
    /// Where its blobs come from.
    pub source: Arc<dyn BlobSource>,
}

impl std::fmt::Debug for AttachmentPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentPush")
            .field("image", &self.image)
            .field("repository", &self.repository)
            .field("kind", &self.attachment.kind)
            .field("digest", &self.attachment.digest)
            .finish()
    }
}

impl AttachmentPush {
    /// The push of its manifest: by its cosign tag, or by digest for a referrer (what
    /// [`push_attachments`] pushes first; e.g. for checking a differential bundle's left-out
    /// blobs with [`ensure_base_blobs`](crate::base_blobs::ensure_base_blobs)).
    pub fn manifest_push(&self) -> ImagePush {
        let a = &self.attachment;
        let mut blobs: Vec<BlobRef> = Vec::new();
        for blob in &a.blobs {
            let blob = BlobRef {
                digest: blob.digest,
                size: blob.size,
            };
            if !blobs.contains(&blob) {
                blobs.push(blob);
            }
        }
        ImagePush {
            source_name: self.image.clone(),
            repository: self.repository.clone(),
            tag: match &a.link {
                Link::Tag(tag) => Some(tag.clone()),
                Link::Subject => None,
            },
            manifest: Bytes::from(a.manifest.clone()),
            manifest_media_type: a.media_type.clone(),
            manifest_digest: a.digest,
            blobs,
            source: self.source.clone(),
        }
    }
}

/// How a referrer is (or would be) listed for its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrerListing {
    /// The registry has the referrers API and lists it itself.
    ReferrersApi,
    /// Added to the fallback index `sha256-<hex>` (or, in a plan, would be).
    FallbackIndexAdded,
    /// The fallback index already listed it.
    FallbackIndexPresent,
}

/// What happened to one attachment.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentResult {
    /// The image it belongs to, as its source names it.
    pub image: String,
    /// What it is.
    pub kind: AttachmentKind,
    /// Where it went: `host/repository:sha256-<hex>.sig` or `host/repository@digest`.
    pub target: String,
    /// Its manifest digest (the same as in the source).
    pub digest: Digest,
    /// The manifest it is about.
    pub subject: Digest,
    /// What happened (or, in a plan, would happen) to its manifest.
    pub action: ImageAction,
    /// For referrers: how the registry lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<ReferrerListing>,
    /// Set when it failed; a failed attachment's manifest (or fallback index entry) may be
    /// missing, nothing else it touched is.
    pub error: Option<String>,
}

/// What a push of attachments did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttachmentReport {
    /// One result per attachment, in the order given.
    pub attachments: Vec<AttachmentResult>,
    /// How their blobs got there.
    #[serde(flatten)]
    pub blobs: BlobCounts,
    /// Attachment manifests PUT.
    pub manifests_pushed: u64,
    /// Fallback indexes written (each after a merge with what was there).
    pub fallback_indexes_written: u64,
}

impl AttachmentReport {
    /// The attachments that failed.
    pub fn failures(&self) -> impl Iterator<Item = &AttachmentResult> {
        self.attachments.iter().filter(|a| a.error.is_some())
    }
}

/// (repository, subject) -> indexes into the attachments of the referrers to list for it.
type SubjectGroups = BTreeMap<(String, Digest), Vec<usize>>;

fn subject_groups(
    attachments: &[AttachmentPush],
    include: impl Fn(usize) -> bool,
) -> SubjectGroups {
    let mut groups = SubjectGroups::new();
    for (i, a) in attachments.iter().enumerate() {
        if a.attachment.link == Link::Subject && include(i) {
            groups
                .entry((a.repository.clone(), a.attachment.subject))
                .or_default()
                .push(i);
        }
    }
    groups
}

fn result_for(
    client: &RegistryClient,
    a: &AttachmentPush,
    action: ImageAction,
) -> AttachmentResult {
    AttachmentResult {
        image: a.image.clone(),
        kind: a.attachment.kind,
        target: a.manifest_push().target_name(client.host()),
        digest: a.attachment.digest,
        subject: a.attachment.subject,
        action,
        referrers: None,
        error: None,
    }
}

/// Pushes `attachments` into `client`'s registry (see the [module](self) for how); push their
/// images first. Failures are in the report, one per attachment.
///
/// ```no_run
/// # async fn demo(attachments: Vec<kantup_registry::push::attachments::AttachmentPush>) -> kantup_registry::Result<()> {
/// use kantup_registry::{ClientOptions, PushOptions, RegistryClient};
/// use kantup_registry::push::attachments::push_attachments;
/// let client = RegistryClient::new("127.0.0.1:5000", ClientOptions::default())?;
/// let report = push_attachments(&client, &attachments, &PushOptions::default(), None).await;
/// assert_eq!(report.failures().count(), 0);
/// # Ok(()) }
/// ```
pub async fn push_attachments(
    client: &RegistryClient,
    attachments: &[AttachmentPush],
    options: &PushOptions,
    observer: Option<Observer>,
) -> AttachmentReport {
    let run = Run::new(client, options, observer);
    let pushes: Vec<ImagePush> = attachments
        .iter()
        .map(AttachmentPush::manifest_push)
        .collect();
    let pushed = futures::future::join_all(
        pushes
            .iter()
            .map(|push| run.push_one(push, options.tag_policy)),
    )
    .await;
    let mut results: Vec<AttachmentResult> = attachments
        .iter()
        .zip(pushed)
        .map(|(a, image)| AttachmentResult {
            error: image.error,
            ..result_for(client, a, image.action)
        })
        .collect();

    let mut indexes_written = 0;
    let groups = subject_groups(attachments, |i| results[i].error.is_none());
    for ((repository, subject), members) in groups {
        let acknowledged = members
            .iter()
            .all(|&i| run.subject_acknowledged(&repository, &attachments[i].attachment.digest));
        let listed = list_referrers(
            client,
            &repository,
            &subject,
            members.iter().map(|&i| &attachments[i].attachment),
            acknowledged,
            false,
        )
        .await;
        match listed {
            Ok((listing, written)) => {
                indexes_written += u64::from(written);
                for &i in &members {
                    results[i].referrers = Some(listing);
                }
            }
            Err(e) => {
                let why = format!(
                    "listing it as a referrer of {subject} in {}/{repository}: {}",
                    client.host(),
                    super::run::error_chain(&e)
                );
                for &i in &members {
                    results[i].error = Some(why.clone());
                }
            }
        }
    }
    let pushed = run.report(Vec::new());
    AttachmentReport {
        attachments: results,
        blobs: pushed.blobs,
        manifests_pushed: pushed.manifests_pushed,
        fallback_indexes_written: indexes_written,
    }
}

/// What pushing `attachments` would do, touching nothing: each manifest's action and, for
/// referrers, whether the fallback index would get it (read, not written).
pub async fn plan_attachments(
    client: &RegistryClient,
    attachments: &[AttachmentPush],
) -> Result<Vec<AttachmentResult>> {
    let mut results = Vec::with_capacity(attachments.len());
    for a in attachments {
        let action = action_for(client, &a.manifest_push()).await?;
        results.push(result_for(client, a, action));
    }
    for ((repository, subject), members) in subject_groups(attachments, |_| true) {
        let (listing, _) = list_referrers(
            client,
            &repository,
            &subject,
            members.iter().map(|&i| &attachments[i].attachment),
            false,
            true,
        )
        .await?;
        for i in members {
            results[i].referrers = Some(listing);
        }
    }
    Ok(results)
}

/// Makes the registry list `referrers` of `subject`: nothing to do where it has the referrers
/// API (`acknowledged`: it said so when they were pushed), else they are merged into the
/// fallback index (with `dry_run`, only looked up). Returns how they are listed and whether
/// an index was written.
async fn list_referrers<'a>(
    client: &RegistryClient,
    repository: &str,
    subject: &Digest,
    referrers: impl Iterator<Item = &'a Attachment>,
    acknowledged: bool,
    dry_run: bool,
) -> Result<(ReferrerListing, bool)> {
    if acknowledged || client.has_referrers_api(repository, subject).await? {
        return Ok((ReferrerListing::ReferrersApi, false));
    }
    let tag = fallback_tag(subject);
    let descriptors = referrers
        .map(|a| {
            fallback_index::referrer_descriptor(&a.manifest, &a.media_type)
                .map_err(|e| RegistryError::Invalid(format!("referrer {}: {e}", a.digest)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut written = false;
    for attempt in 0..FALLBACK_ATTEMPTS {
        if attempt > 0 {
            // Writers that collided start over at different times (spread by what each adds).
            let spread = descriptors
                .first()
                .and_then(|d| d["digest"].as_str())
                .and_then(|d| d.bytes().last())
                .map_or(0, |b| u64::from(b) % 40);
            let delay = 20 * u64::from(attempt) + spread;
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let current = client.get_manifest_if_present(repository, &tag).await?;
        let merged = fallback_index::merge(current.as_ref().map(|(b, _)| &b[..]), &descriptors)
            .map_err(|why| {
                RegistryError::Invalid(format!(
                    "the referrers fallback tag {}/{repository}:{tag} is not kantup's to replace: {why}",
                    client.host()
                ))
            })?;
        let Some(merged) = merged else {
            let listing = if written {
                ReferrerListing::FallbackIndexAdded
            } else {
                ReferrerListing::FallbackIndexPresent
            };
            return Ok((listing, written));
        };
        if dry_run {
            return Ok((ReferrerListing::FallbackIndexAdded, false));
        }
        let precondition = match current {
            None => Precondition::IfAbsent,
            Some((_, info)) => info.etag.map_or(Precondition::None, Precondition::IfMatch),
        };
        match client
            .put_manifest_if(
                repository,
                &tag,
                media_types::OCI_INDEX,
                Bytes::from(merged),
                &precondition,
            )
            .await
        {
            // Read back on the next turn: a concurrent writer's older copy may have won.
            Ok(_) => written = true,
            Err(RegistryError::Status { status: 412, .. }) => {
                tracing::debug!("{repository}:{tag} changed since it was read; merging again");
            }
            Err(e) => return Err(e),
        }
    }
    Err(RegistryError::Invalid(format!(
        "the referrers fallback tag {}/{repository}:{tag} kept changing under kantup ({FALLBACK_ATTEMPTS} attempts): another client is writing it",
        client.host()
    )))
}
