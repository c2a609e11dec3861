//! `Images.lock`, the image list Bitnami's distribution tooling (`helm dt images lock`,
//! `helm dt wrap`) writes beside `Chart.yaml`: every image of the chart and its subcharts, each
//! with one manifest digest per platform.
//!
//! ```yaml
//! apiVersion: v0
//! kind: ImagesLock
//! metadata: {generatedAt: "2023-08-04T13:36:09Z", generatedBy: Distribution Tooling for Helm}
//! chart: {name: mariadb, version: 13.0.0, appVersion: 11.0.2}
//! images:
//!   - name: mariadb
//!     image: docker.io/bitnami/mariadb:11.0.2-debian-11-r2
//!     chart: mariadb
//!     digests:
//!       - digest: sha256:d3006a4d980d82a28f433ae7af316c698738ba29a5a598d527751cb9139ab7ff
//!         arch: linux/amd64
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::reference::Reference;

/// The file name, beside `Chart.yaml`.
pub const IMAGES_LOCK_FILE: &str = "Images.lock";
/// The `kind` the tooling writes.
pub const IMAGES_LOCK_KIND: &str = "ImagesLock";
/// The only `apiVersion` there is.
pub const IMAGES_LOCK_API_VERSION: &str = "v0";

/// Why an `Images.lock` cannot be used. Messages name the file and the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagesLockError {
    /// Not YAML of the expected shape.
    #[error("{path}: not an Images.lock: {reason}")]
    Invalid {
        /// The file or member.
        path: String,
        /// The decoder's message.
        reason: String,
    },
    /// An image entry is unusable.
    #[error("{path}: image {name:?} ({image}): {reason}")]
    Image {
        /// The file or member.
        path: String,
        /// The entry's `name`.
        name: String,
        /// The entry's `image`.
        image: String,
        /// What is wrong.
        reason: String,
    },
}

/// The chart an `Images.lock` was made for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockChart {
    /// Chart name.
    #[serde(default)]
    pub name: String,
    /// Chart version.
    #[serde(default)]
    pub version: String,
    /// The chart's appVersion (may be empty).
    #[serde(default)]
    pub app_version: String,
}

/// One platform's manifest of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDigest {
    /// The platform manifest's digest.
    pub digest: Digest,
    /// `os/architecture` (`linux/amd64`).
    pub arch: String,
}

/// One image of the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedImage {
    /// Short name (`mariadb`).
    pub name: String,
    /// The reference the chart deploys (`docker.io/bitnami/mariadb:11.0.2-debian-11-r2`).
    pub image: String,
    /// The chart (or subchart) that uses it.
    #[serde(default)]
    pub chart: String,
    /// One manifest digest per platform.
    #[serde(default)]
    pub digests: Vec<LockedDigest>,
}

impl LockedImage {
    /// `image`, parsed and normalized.
    pub fn reference(&self) -> Result<Reference, crate::reference::ReferenceError> {
        self.image.parse()
    }
}

/// A parsed `Images.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesLock {
    /// `v0`.
    pub api_version: String,
    /// `ImagesLock`.
    pub kind: String,
    /// `generatedAt`, `generatedBy`, ...
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The chart it belongs to.
    #[serde(default)]
    pub chart: LockChart,
    /// The images.
    #[serde(default)]
    pub images: Vec<LockedImage>,
}

impl ImagesLock {
    /// Parses the lock's text; `path` names it in errors. Every image must parse as a
    /// reference and name at least one digest.
    ///
    /// ```
    /// use kantup_bundle::images_lock::ImagesLock;
    /// let lock = ImagesLock::parse("Images.lock", "apiVersion: v0\nkind: ImagesLock\nchart: {name: a, version: 1.0.0}\nimages:\n- name: app\n  image: reg.example/ns/app:1.0\n  chart: a\n  digests:\n  - digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n    arch: linux/amd64\n").unwrap();
    /// assert_eq!(lock.images[0].digests[0].arch, "linux/amd64");
    /// ```
    pub fn parse(path: &str, text: &str) -> Result<ImagesLock, ImagesLockError> {
        let lock: ImagesLock =
            serde_yaml::from_str(text).map_err(|e| ImagesLockError::Invalid {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        if lock.kind != IMAGES_LOCK_KIND {
            return Err(ImagesLockError::Invalid {
                path: path.to_string(),
                reason: format!("kind is {:?}, expected {IMAGES_LOCK_KIND:?}", lock.kind),
            });
        }
        for image in &lock.images {
            let bad = |reason: String| ImagesLockError::Image {
                path: path.to_string(),
                name: image.name.clone(),
                image: image.image.clone(),
                reason,
            };
            image.reference().map_err(|e| bad(e.reason))?;
            if image.digests.is_empty() {
                return Err(bad("no digests".to_string()));
            }
        }
        Ok(lock)
    }

    /// The YAML text, in the tooling's field order.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("an Images.lock serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "apiVersion: v0\nkind: ImagesLock\nmetadata:\n  generatedAt: \"2023-07-13T16:30:33.284125307Z\"\n  generatedBy: Distribution Tooling for Helm\nchart:\n  name: wordpress\n  version: 1.0.0\n  appVersion: \"\"\nimages:\n  - name: wordpress\n    image: reg.example/bitnami/wordpress:6.2.2-debian-11-r11\n    chart: wordpress\n    digests:\n      - digest: sha256:a410341508b8823774448bc457730e38d2f047497ffddf090553845493c62e0f\n        arch: linux/amd64\n      - digest: sha256:1e5991a54bc98871e61dd7f94697f86b5dc4e2b2560d5590ff292038a6434ba7\n        arch: linux/arm64\n";

    #[test]
    fn reads_the_tooling_layout_and_writes_it_back() {
        let lock = ImagesLock::parse("Images.lock", LOCK).unwrap();
        assert_eq!(lock.chart.name, "wordpress");
        assert_eq!(lock.images[0].digests.len(), 2);
        assert_eq!(lock.images[0].digests[1].arch, "linux/arm64");
        let again = ImagesLock::parse("again", &lock.to_yaml()).unwrap();
        assert_eq!(again, lock);
        assert!(lock.to_yaml().contains("appVersion: ''"));
    }

    #[test]
    fn bad_entries_name_the_file_and_image() {
        let no_digests = LOCK.replace("    digests:\n", "    digests: []\n    x:\n");
        let err = ImagesLock::parse("w/Images.lock", &no_digests).unwrap_err();
        assert!(err.to_string().starts_with("w/Images.lock: "), "{err}");
        let bad_ref = LOCK.replace("reg.example/bitnami/wordpress", "UPPER/Case");
        let err = ImagesLock::parse("w/Images.lock", &bad_ref).unwrap_err();
        assert!(err.to_string().contains("\"wordpress\""), "{err}");
        let err = ImagesLock::parse("w/Images.lock", "kind: Other\napiVersion: v0\n").unwrap_err();
        assert!(err.to_string().contains("expected \"ImagesLock\""), "{err}");
    }
}
