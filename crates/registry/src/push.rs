//! Pushing images: blobs first (HEAD, cross-repository mount, upload), manifest last, with
//! bounded concurrency across blobs and images.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{OnceCell, Semaphore};

use crate::client::{BlobOutcome, RegistryClient};
use crate::error::{RegistryError, Result};

/// Where blob bytes come from. Implemented for the bundle's image archive; anything that can
/// open a blob by digest as a stream can be pushed.
pub trait BlobSource: Send + Sync {
    /// Opens blob `digest` (`sha256:<hex>`) for reading from its start.
    fn open_blob(&self, digest: &str) -> std::io::Result<Box<dyn Read + Send>>;
}

/// One blob an image needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

/// An image to push into the client's registry.
#[derive(Clone)]
pub struct ImagePush {
    /// How the image is called at its source (for reports).
    pub source_name: String,
    /// Target repository path within the registry (`ns/app`).
    pub repository: String,
    /// Target tag; `None` pushes by digest only.
    pub tag: Option<String>,
    /// Manifest bytes, pushed unchanged.
    pub manifest: Bytes,
    pub manifest_media_type: String,
    /// `sha256:<hex>` of `manifest`.
    pub manifest_digest: String,
    /// Config and layers.
    pub blobs: Vec<BlobRef>,
    pub source: Arc<dyn BlobSource>,
}

impl std::fmt::Debug for ImagePush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePush")
            .field("source_name", &self.source_name)
            .field("target", &self.target_name(""))
            .field("manifest_digest", &self.manifest_digest)
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

impl ImagePush {
    /// `host/repo:tag` or `host/repo@digest`.
    pub fn target_name(&self, host: &str) -> String {
        let prefix = if host.is_empty() {
            self.repository.clone()
        } else {
            format!("{host}/{}", self.repository)
        };
        match &self.tag {
            Some(tag) => format!("{prefix}:{tag}"),
            None => format!("{prefix}@{}", self.manifest_digest),
        }
    }

    fn reference(&self) -> &str {
        self.tag.as_deref().unwrap_or(&self.manifest_digest)
    }
}

/// What happens (or happened) to an image's target tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageAction {
    /// Not in the target yet.
    Push,
    /// Already there with the same digest.
    Skip,
    /// The tag points at another digest, which is replaced.
    Overwrite { previous: String },
}

impl std::fmt::Display for ImageAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageAction::Push => f.write_str("push"),
            ImageAction::Skip => f.write_str("skip"),
            ImageAction::Overwrite { previous } => write!(f, "overwrite (was {previous})"),
        }
    }
}

/// What to do when a tag already points at another digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagPolicy {
    /// Replace it and report [`ImageAction::Overwrite`].
    #[default]
    Overwrite,
    /// Fail that image with [`RegistryError::TagConflict`].
    Refuse,
}

/// Settings of [`push_images`].
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blob transfers in flight at once (across all images).
    pub blob_concurrency: usize,
    /// Images worked on at once.
    pub image_concurrency: usize,
    pub tag_policy: TagPolicy,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            blob_concurrency: 4,
            image_concurrency: 3,
            tag_policy: TagPolicy::Overwrite,
        }
    }
}

/// Progress events, for bars.
#[derive(Debug, Clone)]
pub enum PushEvent {
    /// Bytes the registry accepted.
    Bytes(u64),
    /// A blob is done (however it got there).
    BlobDone {
        digest: String,
        outcome: BlobOutcome,
    },
    /// An image is done (`error` set when it failed).
    ImageDone {
        target: String,
        error: Option<String>,
    },
}

/// A progress callback.
pub type Observer = Arc<dyn Fn(PushEvent) + Send + Sync>;

/// The result of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub source: String,
    pub target: String,
    pub digest: String,
    pub action: ImageAction,
    /// Set when the image failed; its manifest was not pushed.
    pub error: Option<String>,
}

/// Counts of a push run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub images: Vec<ImageResult>,
    /// Blobs whose bytes were sent.
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Blobs already present.
    pub blobs_skipped: u64,
    /// Bytes sent for blobs in this run.
    pub bytes_uploaded: u64,
    /// Blobs whose upload continued a session an interrupted attempt or run left (counted in
    /// `blobs_uploaded` too).
    pub blobs_resumed: u64,
    /// Bytes those sessions already held, not sent again.
    pub bytes_resumed: u64,
    /// Manifests PUT.
    pub manifests_pushed: u64,
}

impl PushReport {
    /// The images that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ImageResult> {
        self.images.iter().filter(|i| i.error.is_some())
    }
}

/// Decides per image whether it would be pushed, skipped or overwritten, touching nothing.
pub async fn plan(client: &RegistryClient, images: &[ImagePush]) -> Result<Vec<ImageAction>> {
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        out.push(action_for(client, image).await?);
    }
    Ok(out)
}

async fn action_for(client: &RegistryClient, image: &ImagePush) -> Result<ImageAction> {
    Ok(
        match client
            .head_manifest(&image.repository, image.reference())
            .await?
        {
            None => ImageAction::Push,
            Some(info) if info.digest == image.manifest_digest => ImageAction::Skip,
            Some(info) if info.digest.is_empty() => ImageAction::Overwrite {
                previous: "unknown".into(),
            },
            Some(info) => ImageAction::Overwrite {
                previous: info.digest,
            },
        },
    )
}

/// (repository, digest).
type RepoBlob = (String, String);

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
struct Run<'a> {
    client: &'a RegistryClient,
    blob_slots: Semaphore,
    /// digest -> repository that holds it (filled once the first copy is in).
    homes: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
    /// (repo, digest) -> done.
    done: Mutex<HashMap<RepoBlob, Arc<OnceCell<()>>>>,
    counters: Counters,
    observer: Option<Observer>,
    /// Set once the registry stopped answering (retries ran out on a dropped connection,
    /// 5xx or 429): work not yet started is not attempted, and says why.
    gave_up: OnceLock<String>,
}

impl Run<'_> {
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

    fn record(&self, digest: &str, outcome: BlobOutcome) {
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
            digest: digest.to_string(),
            outcome,
        });
    }

    async fn ensure(&self, image: &ImagePush, blob: &BlobRef) -> Result<()> {
        let key = (image.repository.clone(), blob.digest.clone());
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
            .entry(blob.digest.clone())
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
        let digest = blob.digest.clone();
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

    async fn push_one(&self, image: &ImagePush, policy: TagPolicy) -> ImageResult {
        let target = image.target_name(self.client.host());
        let mut result = ImageResult {
            source: image.source_name.clone(),
            target: target.clone(),
            digest: image.manifest_digest.clone(),
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
        result.action = action_for(self.client, image).await?;
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
                    existing: previous.clone(),
                    new: image.manifest_digest.clone(),
                });
            }
            _ => {}
        }
        let blobs =
            futures::future::join_all(image.blobs.iter().map(|b| self.ensure(image, b))).await;
        if let Some(err) = blobs.into_iter().find_map(|r| r.err()) {
            return Err(err);
        }
        let pushed = self
            .client
            .put_manifest(
                &image.repository,
                image.reference(),
                &image.manifest_media_type,
                image.manifest.clone(),
            )
            .await?;
        self.counters.manifests.fetch_add(1, Ordering::Relaxed);
        if pushed != image.manifest_digest {
            return Err(RegistryError::Invalid(format!(
                "{}: registry stored manifest as {pushed}, expected {}",
                result.target, image.manifest_digest
            )));
        }
        Ok(())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
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

/// Pushes `images` into `client`'s registry. Every image is attempted until the registry stops
/// answering (retries ran out on dropped connections, 5xx or 429): images not started by then
/// fail at once with [`RegistryError::NotAttempted`] instead of each waiting out its own
/// retries. Failures are in the report (see [`PushReport::failures`]), and a failed image's
/// manifest is never pushed.
///
/// ```no_run
/// # async fn demo(images: Vec<kantup_registry::ImagePush>) -> kantup_registry::Result<()> {
/// use kantup_registry::{ClientOptions, PushOptions, RegistryClient, push_images};
/// let client = RegistryClient::new("127.0.0.1:5000", ClientOptions::default())?;
/// let report = push_images(&client, &images, &PushOptions::default(), None).await;
/// println!("{} blobs uploaded", report.blobs_uploaded);
/// # Ok(()) }
/// ```
pub async fn push_images(
    client: &RegistryClient,
    images: &[ImagePush],
    options: &PushOptions,
    observer: Option<Observer>,
) -> PushReport {
    let run = Run {
        client,
        blob_slots: Semaphore::new(options.blob_concurrency.max(1)),
        homes: Mutex::new(HashMap::new()),
        done: Mutex::new(HashMap::new()),
        counters: Counters::default(),
        observer,
        gave_up: OnceLock::new(),
    };
    let policy = options.tag_policy;
    let mut indexed: Vec<(usize, ImageResult)> = futures::stream::iter(images.iter().enumerate())
        .map(|(i, image)| {
            let run = &run;
            async move { (i, run.push_one(image, policy).await) }
        })
        .buffer_unordered(options.image_concurrency.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    let c = &run.counters;
    PushReport {
        images: indexed.into_iter().map(|(_, r)| r).collect(),
        blobs_uploaded: c.uploaded.load(Ordering::Relaxed),
        blobs_mounted: c.mounted.load(Ordering::Relaxed),
        blobs_skipped: c.skipped.load(Ordering::Relaxed),
        bytes_uploaded: c.bytes.load(Ordering::Relaxed),
        blobs_resumed: c.resumed.load(Ordering::Relaxed),
        bytes_resumed: c.bytes_resumed.load(Ordering::Relaxed),
        manifests_pushed: c.manifests.load(Ordering::Relaxed),
    }
}

/// A [`BlobSource`] over in-memory blobs (tests, charts, generated content).
#[derive(Debug, Default, Clone)]
pub struct MemoryBlobs(pub HashMap<String, Bytes>);

impl MemoryBlobs {
    /// Adds `data`, returning its descriptor.
    pub fn add(&mut self, data: impl Into<Bytes>) -> BlobRef {
        let data = data.into();
        let digest = crate::client::sha256_digest(&data);
        let size = data.len() as u64;
        self.0.insert(digest.clone(), data);
        BlobRef { digest, size }
    }
}

impl BlobSource for MemoryBlobs {
    fn open_blob(&self, digest: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let data = self.0.get(digest).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no blob {digest}"))
        })?;
        Ok(Box::new(std::io::Cursor::new(data)))
    }
}
