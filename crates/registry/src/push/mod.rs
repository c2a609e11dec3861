//! Pushing images: blobs first (HEAD, cross-repository mount, upload), manifest last, with
//! bounded concurrency across blobs and images; then what travels with them (signatures,
//! attestations, SBOMs, referrers: [`attachments`]).

pub mod attachments;
pub mod fallback_index;
mod memory;
mod run;

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use kantup_bundle::Digest;

use crate::client::{BlobOutcome, RegistryClient};
use crate::error::{DigestOrUnknown, Result};

pub use memory::MemoryBlobs;
use run::Run;

/// Where blob bytes come from. Implemented for the bundle's image archive; anything that can
/// open a blob by digest as a stream can be pushed.
pub trait BlobSource: Send + Sync {
    /// Opens blob `digest` for reading from its start.
    fn open_blob(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>>;
}

/// One blob an image needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// The blob's content digest.
    pub digest: Digest,
    /// Its size in bytes.
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
    /// The manifest's media type (its `Content-Type` when pushed).
    pub manifest_media_type: String,
    /// The digest of `manifest`.
    pub manifest_digest: Digest,
    /// Config and layers.
    pub blobs: Vec<BlobRef>,
    /// Where the blob bytes come from.
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

    /// The tag, else the manifest digest: what the manifest is pushed and looked up under.
    fn reference(&self) -> String {
        match &self.tag {
            Some(tag) => tag.clone(),
            None => self.manifest_digest.to_string(),
        }
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
    Overwrite {
        /// The digest the tag pointed at; `None` when the registry did not say (serialized
        /// and shown as `unknown`).
        #[serde(serialize_with = "serialize_previous")]
        previous: Option<Digest>,
    },
}

impl std::fmt::Display for ImageAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageAction::Push => f.write_str("push"),
            ImageAction::Skip => f.write_str("skip"),
            ImageAction::Overwrite { previous } => {
                write!(f, "overwrite (was {})", DigestOrUnknown(previous.as_ref()))
            }
        }
    }
}

fn serialize_previous<S: serde::Serializer>(
    previous: &Option<Digest>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(&DigestOrUnknown(previous.as_ref()))
}

/// What to do when a tag already points at another digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagPolicy {
    /// Replace it and report [`ImageAction::Overwrite`].
    #[default]
    Overwrite,
    /// Fail that image with [`RegistryError::TagConflict`](crate::RegistryError::TagConflict).
    Refuse,
}

/// Settings of [`push_images`].
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blob transfers in flight at once (across all images, which all queue for them from the
    /// start).
    pub blob_concurrency: usize,
    /// Images whose manifest requests (looking the tag up, pushing the manifest) are in flight
    /// at once.
    pub image_concurrency: usize,
    /// What to do when a tag already points at another digest.
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
        /// The blob.
        digest: Digest,
        /// How it got there.
        outcome: BlobOutcome,
    },
    /// An image is done (`error` set when it failed).
    ImageDone {
        /// `host/repository:tag` or `host/repository@digest`.
        target: String,
        /// Why it failed, with its causes; `None` when it is in place.
        error: Option<String>,
    },
}

/// A progress callback.
pub type Observer = Arc<dyn Fn(PushEvent) + Send + Sync>;

/// The result of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    /// The image as its source names it ([`ImagePush::source_name`]).
    pub source: String,
    /// Where it went: `host/repository:tag` or `host/repository@digest`.
    pub target: String,
    /// Its manifest digest.
    pub digest: Digest,
    /// What happened (or, in a plan, would happen) to the tag.
    pub action: ImageAction,
    /// Set when the image failed; its manifest was not pushed.
    pub error: Option<String>,
}

/// How the blobs of a run got into place, and the bytes that took. Serialized flat, with the
/// field names prefixed (`blobs_uploaded`, `bytes_uploaded`, ...), as reports embed it.
///
/// ```
/// use kantup_registry::BlobCounts;
/// let mut total = BlobCounts::default();
/// total += BlobCounts { uploaded: 2, bytes_uploaded: 100, ..Default::default() };
/// total += BlobCounts { uploaded: 1, skipped: 3, bytes_uploaded: 50, ..Default::default() };
/// assert_eq!((total.uploaded, total.skipped, total.bytes_uploaded), (3, 3, 150));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    /// Blobs whose bytes were sent.
    #[serde(rename = "blobs_uploaded")]
    pub uploaded: u64,
    /// Blobs mounted from another repository.
    #[serde(rename = "blobs_mounted")]
    pub mounted: u64,
    /// Blobs already present.
    #[serde(rename = "blobs_skipped")]
    pub skipped: u64,
    /// Bytes sent for blobs in this run.
    pub bytes_uploaded: u64,
    /// Blobs whose upload continued a session an interrupted attempt or run left (counted in
    /// `uploaded` too).
    #[serde(rename = "blobs_resumed")]
    pub resumed: u64,
    /// Bytes those sessions already held, not sent again.
    pub bytes_resumed: u64,
}

impl std::ops::AddAssign for BlobCounts {
    fn add_assign(&mut self, other: Self) {
        self.uploaded += other.uploaded;
        self.mounted += other.mounted;
        self.skipped += other.skipped;
        self.bytes_uploaded += other.bytes_uploaded;
        self.resumed += other.resumed;
        self.bytes_resumed += other.bytes_resumed;
    }
}

/// Counts of a push run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    /// One result per image, in the order the images were given.
    pub images: Vec<ImageResult>,
    /// How the blobs got there.
    #[serde(flatten)]
    pub blobs: BlobCounts,
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
            .head_manifest(&image.repository, &image.reference())
            .await?
        {
            None => ImageAction::Push,
            Some(info) if info.digest == Some(image.manifest_digest) => ImageAction::Skip,
            Some(info) => ImageAction::Overwrite {
                previous: info.digest,
            },
        },
    )
}

/// Pushes `images` into `client`'s registry. Every image is attempted until the registry stops
/// answering (retries ran out on dropped connections, 5xx or 429): blob transfers and manifest
/// requests not started by then fail at once with
/// [`RegistryError::NotAttempted`](crate::RegistryError::NotAttempted), so their images fail
/// without each waiting out its own retries. Failures are in the report (see [`PushReport::failures`]), and a failed image's
/// manifest is never pushed.
///
/// ```no_run
/// # async fn demo(images: Vec<kantup_registry::ImagePush>) -> kantup_registry::Result<()> {
/// use kantup_registry::{ClientOptions, PushOptions, RegistryClient, push_images};
/// let client = RegistryClient::new("127.0.0.1:5000", ClientOptions::default())?;
/// let report = push_images(&client, &images, &PushOptions::default(), None).await;
/// println!("{} blobs uploaded", report.blobs.uploaded);
/// # Ok(()) }
/// ```
pub async fn push_images(
    client: &RegistryClient,
    images: &[ImagePush],
    options: &PushOptions,
    observer: Option<Observer>,
) -> PushReport {
    let run = Run::new(client, options, observer);
    let policy = options.tag_policy;
    // All at once: the run's slots bound the requests (see `run`).
    let results =
        futures::future::join_all(images.iter().map(|image| run.push_one(image, policy))).await;
    run.report(results)
}
