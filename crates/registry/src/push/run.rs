//! One push run: blobs shared between images go up once (the first repository to need a
//! digest uploads it, the others mount it from there), each image's manifest only after all
//! its blobs are in, and work not started yet is given up once the registry stops answering.
//!
//! Every image's blobs queue for the same [`PushOptions::blob_concurrency`] transfer slots
//! from the start: an image waiting for a shared layer that another image is uploading does
//! not keep the images after it from using the free slots. Only the manifest requests of an
//! image (looking its tag up, pushing it) are limited to [`PushOptions::image_concurrency`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use kantup_bundle::Digest;
use tokio::sync::{OnceCell, Semaphore};

use super::{
    BlobCounts, BlobRef, ImageAction, ImagePush, ImageResult, Observer, PushEvent, PushOptions,
    PushReport, TagPolicy, action_for,
};
use crate::client::{BlobOutcome, Precondition, RegistryClient};
use crate::error::{RegistryError, Result};
use std::sync::Arc;

/// (repository, digest).
type RepoBlob = (String, Digest);

#[derive(Default)]
struct Counters {
    uploaded: AtomicU64,
    mounted: AtomicU64,
    skipped: AtomicU64,
    bytes: AtomicU64,
    resumed: AtomicU64,
    bytes_resumed: AtomicU64,
    manifests: AtomicU64,
}

/// Shared state of one run: where each digest first landed (to mount it elsewhere) and the
/// per-repository blob work already done (so shared layers go up once).
pub(super) struct Run<'a> {
    client: &'a RegistryClient,
    blob_slots: Semaphore,
    /// For the manifest requests of images ([`PushOptions::image_concurrency`]).
    image_slots: Semaphore,
    /// digest -> repository that holds it (filled once the first copy is in).
    homes: Mutex<HashMap<Digest, Arc<OnceCell<String>>>>,
    /// (repo, digest) -> done.
    done: Mutex<HashMap<RepoBlob, Arc<OnceCell<()>>>>,
    /// Manifests whose `PUT` the registry answered with `OCI-Subject`: it lists them as
    /// referrers of their subject itself.
    subject_acknowledged: Mutex<HashSet<RepoBlob>>,
    counters: Counters,
    observer: Option<Observer>,
    /// Set once the registry stopped answering (retries ran out on a dropped connection,
    /// 5xx or 429): work not yet started is not attempted, and says why.
    gave_up: OnceLock<String>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        client: &'a RegistryClient,
        options: &PushOptions,
        observer: Option<Observer>,
    ) -> Self {
        Run {
            client,
            blob_slots: Semaphore::new(options.blob_concurrency.max(1)),
            image_slots: Semaphore::new(options.image_concurrency.max(1)),
            homes: Mutex::new(HashMap::new()),
            done: Mutex::new(HashMap::new()),
            subject_acknowledged: Mutex::new(HashSet::new()),
            counters: Counters::default(),
            observer,
            gave_up: OnceLock::new(),
        }
    }

    /// The report of the run: `images` (in the order given) and the counts.
    pub(super) fn report(&self, images: Vec<ImageResult>) -> PushReport {
        let c = &self.counters;
        PushReport {
            images,
            blobs: BlobCounts {
                uploaded: c.uploaded.load(Ordering::Relaxed),
                mounted: c.mounted.load(Ordering::Relaxed),
                skipped: c.skipped.load(Ordering::Relaxed),
                bytes_uploaded: c.bytes.load(Ordering::Relaxed),
                resumed: c.resumed.load(Ordering::Relaxed),
                bytes_resumed: c.bytes_resumed.load(Ordering::Relaxed),
            },
            manifests_pushed: c.manifests.load(Ordering::Relaxed),
        }
    }

    /// Whether the registry answered the `PUT` of manifest `digest` in `repository` with
    /// `OCI-Subject` in this run.
    pub(super) fn subject_acknowledged(&self, repository: &str, digest: &Digest) -> bool {
        self.subject_acknowledged
            .lock()
            .expect("acknowledged set")
            .contains(&(repository.to_string(), *digest))
    }

    /// Notes an error that means the registry is down, not just this blob or image failing.
    fn note(&self, error: &RegistryError) {
        if let RegistryError::RetriesExhausted { last, .. } = error
            && last.is_retryable()
        {
            let _ = self.gave_up.set(error_chain(error));
        }
    }

    /// The error for work not started after the registry stopped answering.
    fn check_gave_up(&self) -> Result<()> {
        match self.gave_up.get() {
            Some(why) => Err(RegistryError::NotAttempted {
                registry: self.client.host().to_string(),
                reason: why.clone(),
            }),
            None => Ok(()),
        }
    }

    fn emit(&self, event: PushEvent) {
        if let Some(o) = &self.observer {
            o(event);
        }
    }

    fn record(&self, digest: &Digest, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::Existed => self.counters.skipped.fetch_add(1, Ordering::Relaxed),
            BlobOutcome::Mounted => self.counters.mounted.fetch_add(1, Ordering::Relaxed),
            BlobOutcome::Uploaded(n) => {
                self.counters.bytes.fetch_add(n, Ordering::Relaxed);
                self.counters.uploaded.fetch_add(1, Ordering::Relaxed)
            }
            BlobOutcome::Resumed { sent, from } => {
                self.counters.bytes.fetch_add(sent, Ordering::Relaxed);
                self.counters.resumed.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .bytes_resumed
                    .fetch_add(from, Ordering::Relaxed);
                self.counters.uploaded.fetch_add(1, Ordering::Relaxed)
            }
        };
        self.emit(PushEvent::BlobDone {
            digest: *digest,
            outcome,
        });
    }

    async fn ensure(&self, image: &ImagePush, blob: &BlobRef) -> Result<()> {
        let key = (image.repository.clone(), blob.digest);
        let cell = self
            .done
            .lock()
            .expect("done map")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.ensure_in_repo(image, blob))
            .await
            .map(|_| ())
    }

    async fn ensure_in_repo(&self, image: &ImagePush, blob: &BlobRef) -> Result<()> {
        let home = self
            .homes
            .lock()
            .expect("homes map")
            .entry(blob.digest)
            .or_default()
            .clone();
        let repo = image.repository.as_str();
        let mut first = false;
        // The first repository to need a digest transfers it; the others wait and mount.
        let home_repo = home
            .get_or_try_init(|| async {
                first = true;
                self.transfer(image, blob, None).await?;
                Ok::<_, RegistryError>(repo.to_string())
            })
            .await?;
        if first || home_repo == repo {
            return Ok(());
        }
        self.transfer(image, blob, Some(home_repo)).await
    }

    async fn transfer(
        &self,
        image: &ImagePush,
        blob: &BlobRef,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let _permit = self.blob_slots.acquire().await.expect("semaphore open");
        self.check_gave_up()?;
        let source = image.source.clone();
        let digest = blob.digest;
        let open = move || source.open_blob(&digest);
        let outcome = self
            .client
            .ensure_blob(
                &image.repository,
                &blob.digest,
                blob.size,
                mount_from,
                &open,
                &|n| self.emit(PushEvent::Bytes(n)),
            )
            .await
            .inspect_err(|e| self.note(e))?;
        self.record(&blob.digest, outcome);
        Ok(())
    }

    pub(super) async fn push_one(&self, image: &ImagePush, policy: TagPolicy) -> ImageResult {
        let target = image.target_name(self.client.host());
        let mut result = ImageResult {
            source: image.source_name.clone(),
            target: target.clone(),
            digest: image.manifest_digest,
            action: ImageAction::Push,
            error: None,
        };
        let pushed = match self.check_gave_up() {
            Ok(()) => self.push_inner(image, policy, &mut result).await,
            Err(e) => Err(e),
        };
        if let Err(e) = pushed {
            self.note(&e);
            result.error = Some(error_chain(&e));
        }
        self.emit(PushEvent::ImageDone {
            target,
            error: result.error.clone(),
        });
        result
    }

    async fn push_inner(
        &self,
        image: &ImagePush,
        policy: TagPolicy,
        result: &mut ImageResult,
    ) -> Result<()> {
        {
            let _permit = self.image_slots.acquire().await.expect("semaphore open");
            self.check_gave_up()?;
            result.action = action_for(self.client, image).await?;
        }
        match &result.action {
            ImageAction::Skip => {
                for blob in &image.blobs {
                    self.record(&blob.digest, BlobOutcome::Existed);
                }
                return Ok(());
            }
            ImageAction::Overwrite { previous } if policy == TagPolicy::Refuse => {
                return Err(RegistryError::TagConflict {
                    reference: result.target.clone(),
                    existing: *previous,
                    new: image.manifest_digest,
                });
            }
            _ => {}
        }
        let blobs =
            futures::future::join_all(image.blobs.iter().map(|b| self.ensure(image, b))).await;
        if let Some(err) = blobs.into_iter().find_map(|r| r.err()) {
            return Err(err);
        }
        let _permit = self.image_slots.acquire().await.expect("semaphore open");
        let put = self
            .client
            .put_manifest_if(
                &image.repository,
                &image.reference(),
                &image.manifest_media_type,
                image.manifest.clone(),
                &Precondition::None,
            )
            .await?;
        self.counters.manifests.fetch_add(1, Ordering::Relaxed);
        if put.subject.is_some() {
            self.subject_acknowledged
                .lock()
                .expect("acknowledged set")
                .insert((image.repository.clone(), image.manifest_digest));
        }
        let pushed = put.digest;
        if pushed != image.manifest_digest {
            return Err(RegistryError::Invalid(format!(
                "{}: registry stored manifest as {pushed}, expected {}",
                result.target, image.manifest_digest
            )));
        }
        Ok(())
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
