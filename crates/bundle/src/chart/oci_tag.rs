//! How Helm names a chart version in an OCI registry: tags may not contain `+`, so helm
//! stores a SemVer build suffix with `_` instead (`1.2.3+build.4` is tag `1.2.3_build.4`) and
//! reads it back the other way. The one place kantup applies that rule.

/// The OCI tag helm pushes chart `version` under (`+` becomes `_`).
///
/// ```
/// use kantup_bundle::chart::{oci_tag, version_from_oci_tag};
/// assert_eq!(oci_tag("1.2.3+build.4"), "1.2.3_build.4");
/// assert_eq!(version_from_oci_tag("1.2.3_build.4"), "1.2.3+build.4");
/// ```
pub fn oci_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// The chart version an OCI tag stands for (`_` becomes `+`); the inverse of [`oci_tag`].
pub fn version_from_oci_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            ("1.2.3", "1.2.3"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("1.2.3+build.4", "1.2.3_build.4"),
            ("0.1.0-alpha+meta.2", "0.1.0-alpha_meta.2"),
        ];
        for (version, tag) in cases {
            assert_eq!(oci_tag(version), tag, "{version}");
            assert_eq!(version_from_oci_tag(tag), version, "{tag}");
        }
    }
}
