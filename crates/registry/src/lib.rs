//! kantup-registry: an OCI distribution client for pushing bundles into air-gapped
//! registries, chart repositories to read from, and chart targets to upload to.
//!
//! - [`net::HttpOptions`]: the one set of HTTP settings (CA file, insecure mode, plain HTTP,
//!   proxy, timeouts, user agent) every client here is built from; TLS failures become one
//!   clear error naming the host ([`net::TlsError`]).
//! - [`credentials::CredentialResolver`]: given credentials, then environment variables, then
//!   docker's `config.json`; credentials go only to their own host.
//! - [`RegistryClient`]: one registry host; HTTPS first, plain HTTP only with `--plain-http` or
//!   for a local address without TLS ([`scheme`]); anonymous, basic and bearer-token auth;
//!   retries with backoff on 5xx, 429 and dropped connections.
//! - [`push_images`]: blobs first (HEAD, cross-repository mount, monolithic or chunked upload
//!   streamed from a [`BlobSource`]), then the manifest, with bounded concurrency; uploads
//!   continue where the registry stands after a failure, also in the next run
//!   ([`UploadSessions`], [`client::upload`]).
//! - [`push_attachments`]: an image's signatures, attestations, SBOMs and referrers next to it,
//!   digest-exact (cosign's tags as they are; referrers through the referrers API, else the
//!   merged `sha256-<hex>` fallback index).
//! - [`RelocationRule`]: the relok8s/charts-syncer target naming.
//! - [`chart_repo::ChartRepository`]: list and pull (digest-verified) charts from HTTP(S)
//!   repositories (Harbor, ChartMuseum, static), directories and `oci://` registries.
//! - [`location`]: the one parser of chart locations (`oci://`, `http(s)://`, a directory).
//! - [`chart_target`]: Helm chart uploads to OCI, Harbor, ChartMuseum and local repositories.
//! - [`chart_http::ChartRepoClient`]: the one HTTP client of chart repositories, for reading
//!   and for uploads; credentials only to the repository's own origin.
//! - [`chart_index`]: the `index.yaml` model, and building indexes like `helm repo index`.

#![warn(missing_docs)]

pub mod base_blobs;
pub mod bundle_source;
pub mod chart_http;
pub mod chart_index;
pub mod chart_repo;
pub mod chart_target;
pub mod client;
pub mod credentials;
pub mod error;
pub mod location;
pub mod net;
pub mod push;
pub mod relocate;
mod resolve;
pub mod scheme;
pub mod upload_sessions;

pub use client::{
    BlobOutcome, ClientOptions, DEFAULT_CHUNK_SIZE, ManifestInfo, ManifestPut, Precondition,
    RegistryClient, RetryPolicy,
};
pub use credentials::{CredentialResolver, Credentials, CredentialsError, DockerConfig};
pub use error::{RegistryError, Result};
pub use net::{HttpOptions, TlsError};
pub use push::attachments::{
    AttachmentPush, AttachmentReport, AttachmentResult, ReferrerListing, plan_attachments,
    push_attachments,
};
pub use push::{
    BlobCounts, BlobRef, BlobSource, ImageAction, ImagePush, ImageResult, MemoryBlobs, Observer,
    PushEvent, PushOptions, PushReport, TagPolicy, plan, push_images,
};
pub use relocate::RelocationRule;
pub use upload_sessions::UploadSessions;
