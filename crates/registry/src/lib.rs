//! kantup-registry: an OCI distribution client for pushing bundles into air-gapped
//! registries, and chart repository targets.
//!
//! - [`RegistryClient`]: one registry host; scheme chosen like go-containerregistry
//!   ([`scheme::default_scheme`]), custom CA, explicit insecure mode; anonymous, basic and
//!   bearer-token auth ([`auth`]); retries with backoff on 5xx, 429 and dropped connections.
//! - [`push_images`]: blobs first (HEAD, cross-repository mount, monolithic or chunked upload
//!   streamed from a [`BlobSource`]), then the manifest, with bounded concurrency.
//! - [`RelocationRule`]: the relok8s/charts-syncer target naming.
//! - [`chart_target`]: Helm chart uploads to OCI, Harbor, ChartMuseum and local repositories.

pub mod auth;
pub mod bundle_source;
pub mod chart_index;
pub mod chart_target;
pub mod client;
pub mod error;
pub mod push;
pub mod relocate;
pub mod scheme;

pub use auth::{Credentials, DockerConfig};
pub use client::{
    BlobOutcome, ClientOptions, ManifestInfo, RegistryClient, RetryPolicy, sha256_digest,
};
pub use error::{RegistryError, Result};
pub use push::{
    BlobRef, BlobSource, ImageAction, ImagePush, ImageResult, MemoryBlobs, Observer, PushEvent,
    PushOptions, PushReport, TagPolicy, plan, push_images,
};
pub use relocate::RelocationRule;
