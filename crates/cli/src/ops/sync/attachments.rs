//! The signatures, attestations, SBOMs and referrers a bundle carries, pushed next to their
//! images: into every repository the image (or the index, or the image a platform manifest
//! belongs to) went to, after it, and only where it went in.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kantup_bundle::Digest;
use kantup_bundle::archive::ImageArchive;
use kantup_bundle::archive::attachment::Link;
use kantup_registry::{AttachmentPush, AttachmentResult, ImageAction, ImagePush, ImageResult};

/// The repositories a manifest went to: `(repository, image name)` per digest, from the
/// image and index pushes of a bundle.
pub(super) struct Destinations(HashMap<Digest, BTreeSet<(String, String)>>);

impl Destinations {
    pub(super) fn of<'a>(pushes: impl Iterator<Item = &'a ImagePush>) -> Self {
        let mut map: HashMap<Digest, BTreeSet<(String, String)>> = HashMap::new();
        for push in pushes {
            map.entry(push.manifest_digest)
                .or_default()
                .insert((push.repository.clone(), push.source_name.clone()));
        }
        Destinations(map)
    }

    /// Where an attachment of `subject` goes: the repositories of its subject, or, for an
    /// attachment of an attachment (a signature of a signature), of that one's subject.
    fn of_subject(&self, archive: &ImageArchive, subject: &Digest) -> BTreeSet<(String, String)> {
        let mut subject = *subject;
        // Bounded: attachment chains are short, and a cycle must not loop.
        for _ in 0..8 {
            if let Some(found) = self.0.get(&subject) {
                return found.clone();
            }
            match archive.attachments().iter().find(|a| a.digest == subject) {
                Some(parent) => subject = parent.subject,
                None => break,
            }
        }
        BTreeSet::new()
    }
}

/// Every attachment of `archive`, once per repository its subject went to.
pub(super) fn plan(
    archive: &Arc<ImageArchive>,
    destinations: &Destinations,
) -> Vec<AttachmentPush> {
    let mut out = Vec::new();
    for attachment in archive.attachments() {
        let targets = destinations.of_subject(archive, &attachment.subject);
        if targets.is_empty() {
            tracing::warn!(
                "{}: {} {} of {} belongs to no image being pushed; not pushed",
                archive.label(),
                kind_name(attachment),
                attachment.digest,
                attachment.subject
            );
        }
        for (repository, image) in targets {
            out.push(AttachmentPush {
                image,
                repository,
                attachment: attachment.clone(),
                source: archive.clone(),
            });
        }
    }
    out
}

fn kind_name(attachment: &kantup_bundle::archive::attachment::Attachment) -> String {
    serde_json::to_value(attachment.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The attachments whose image did not go in (it failed, or, for an index, its platform
/// manifests did), as failed results; the rest, to push. `pushed` pairs each image push with
/// its result (an index push that was not attempted has none).
pub(super) fn split_by_image_outcome(
    plan: Vec<AttachmentPush>,
    pushed: &[(&ImagePush, Option<&ImageResult>)],
    host: &str,
) -> (Vec<AttachmentPush>, Vec<AttachmentResult>) {
    let went_in: BTreeSet<(String, Digest)> = pushed
        .iter()
        .filter(|(_, result)| result.is_some_and(|r| r.error.is_none()))
        .map(|(push, _)| (push.repository.clone(), push.manifest_digest))
        .collect();
    let known: BTreeSet<(String, Digest)> = pushed
        .iter()
        .map(|(push, _)| (push.repository.clone(), push.manifest_digest))
        .collect();
    let mut push = Vec::new();
    let mut failed = Vec::new();
    for a in plan {
        let key = (a.repository.clone(), a.attachment.subject);
        // A subject that is itself an attachment goes in with this run's attachments.
        if went_in.contains(&key) || !known.contains(&key) {
            push.push(a);
            continue;
        }
        failed.push(AttachmentResult {
            image: a.image.clone(),
            kind: a.attachment.kind,
            target: match &a.attachment.link {
                Link::Tag(tag) => format!("{host}/{}:{tag}", a.repository),
                Link::Subject => format!("{host}/{}@{}", a.repository, a.attachment.digest),
            },
            digest: a.attachment.digest,
            subject: a.attachment.subject,
            action: ImageAction::Push,
            referrers: None,
            error: Some(format!(
                "not pushed: {} did not go into {host}/{}",
                a.attachment.subject, a.repository
            )),
        });
    }
    (push, failed)
}
