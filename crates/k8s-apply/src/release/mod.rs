//! Helm release records: the storage objects Helm 3 and Helm 4 write for every revision, and
//! how to decode them.
//!
//! Both Helm 3 and Helm 4 (`pkg/storage/driver`) store revision `N` of release `R` as a Secret
//! (default driver) of type `helm.sh/release.v1` named `sh.helm.release.v1.R.vN`, or as a
//! ConfigMap of that name with `HELM_DRIVER=configmap`, labelled
//! `owner=helm,name=R,status=<status>,version=N`. The `release` key holds
//! `base64(gzip(json(Release)))`; for a Secret the API adds its own base64 on top, which the
//! client removes. Helm 4 keeps the `release/v1` JSON field names of Helm 3, omits zero
//! timestamps instead of writing `0001-01-01T00:00:00Z`, and adds `apply_method`
//! (`"csa"`/`"ssa"`).

mod codec;
mod model;
mod store;

pub use crate::error::CodecError;
pub use codec::{decode_release, encode_release};
pub use model::{ChartMetadata, Release, ReleaseChart, ReleaseInfo, ReleaseStatus};
pub use store::{ReleaseRecord, ReleaseStore, StorageDriver};
