//! kantup as a library: the workflows behind the `kantup` commands, for Rust tools that embed
//! them. Each workflow takes a plain options struct and returns typed results; the binary only
//! binds flags to these options, prints the results and picks the exit code.
//!
//! - [`ops::upgrade`]: install or upgrade a release from a bundle or chart (plan, then execute).
//! - [`ops::sync`]: charts-syncer's job for offline bundles: push the images, relocate the
//!   chart's values, upload the chart.
//! - [`ops::bundle`]: inspect, verify, unpack, create, sign a bundle; export its images.
//! - [`ops::bundle_diff`]: what changes between two bundles (images, blobs to send, chart, CRDs,
//!   default values).
//! - [`ops::crds`]: apply a chart's CRDs (planned by a server-side dry-run first).
//! - [`ops::values`]: values merged as Helm merges them, compared, relocated in a chart.
//! - [`ops::rollback`]: `helm rollback` with the CRDs put back as the target revision had them.
//! - [`ops::status`]: the readiness of a release's objects (kstatus's rules), read once or
//!   waited for.
//! - [`ops::load`]: load a bundle's images into containerd, docker or podman and re-tag them.
//! - [`ops::repo`]: list a chart repository's versions, pull a verified chart archive.
//! - [`ops::helm`]: the helm binary, as every workflow runs it.
//! - [`ops::duration`]: durations on the command line, one rule everywhere.

#![warn(missing_docs)]

pub mod ops;
