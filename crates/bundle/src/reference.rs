//! Image references in the docker/distribution grammar, normalized the way Docker does.
//!
//! `busybox` becomes `docker.io/library/busybox:latest`; the first path component is a registry
//! only when it contains `.` or `:` or is `localhost` (distribution's `splitDockerDomain`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;

/// The registry Docker assumes when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// A normalized image reference: `registry/repository[:tag][@digest]`.
///
/// ```
/// use kantup_bundle::reference::Reference;
/// let r: Reference = "busybox".parse().unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
/// let r: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
/// assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
///            ("localhost:5000", "team/app", Some("1.0")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`).
    pub repository: String,
    /// Tag; `latest` is filled in when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Manifest digest, when pinned.
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The shortest form Docker would print (`busybox:latest`, `quay.io/x/y:1`), as
    /// `docker images` shows it.
    pub fn familiar(&self) -> String {
        let mut name = if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        };
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }

    /// The same reference with a different registry (and optional repository prefix), as
    /// relocation does.
    pub fn with_registry(&self, registry: &str) -> Reference {
        Reference {
            registry: registry.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A domain: host components `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`, or a
/// bracketed IPv6 address, then an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|c| {
                    let b = c.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                })
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        if input.trim() != input {
            return Err(err("leading or trailing whitespace"));
        }
        let (rest, digest) = match input.rsplit_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| err(&format!("bad digest: {}", e.reason)))?,
                ),
            ),
            None => (input, None),
        };
        // A tag is a `:` after the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err(&format!(
                "invalid tag {t:?} (allowed: letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)"
            )));
        }
        if name.is_empty() {
            return Err(err("empty repository name"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_domain(first) {
                    return Err(err(&format!("invalid registry {first:?}")));
                }
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if let Some(c) = repository.split('/').find(|c| !valid_path_component(c)) {
            return Err(err(&format!(
                "invalid repository path component {c:?} (lowercase letters, digits and single `.`, `_`, `__` or `-` runs between them)"
            )));
        }
        if digest.is_none()
            && tag.is_none()
            && repository.len() == 64
            && repository.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(err("cannot be a 64-character hexadecimal string"));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{repository}")
        } else {
            repository
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(err("repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_table() {
        let cases: &[(&str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.33.1", "docker.io/library/busybox:1.33.1"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            (
                "bitnami/wordpress:5.7.2",
                "docker.io/bitnami/wordpress:5.7.2",
            ),
            ("index.docker.io/bitnami/x", "docker.io/bitnami/x:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1"),
            ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
            ("[::1]:5000/app:1", "[::1]:5000/app:1"),
            (
                "quay.io/jetstack/cert-manager-controller:v1.5.3",
                "quay.io/jetstack/cert-manager-controller:v1.5.3",
            ),
            (
                "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1",
                "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1",
            ),
            ("my_registry/app", "docker.io/my_registry/app:latest"),
            ("a__b/c-d--e/f.g", "docker.io/a__b/c-d--e/f.g:latest"),
            ("MyRegistry.io/app", "MyRegistry.io/app:latest"),
        ];
        for (input, want) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *want, "{input}");
            // Display output parses back to the same value.
            assert_eq!(want.parse::<Reference>().unwrap(), r);
        }
    }

    #[test]
    fn digest_references() {
        let r: Reference = format!("busybox@{D}").parse().unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r: Reference = format!("quay.io/a/b:1.0@{D}").parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.familiar(), format!("quay.io/a/b:1.0@{D}"));
    }

    #[test]
    fn rejects_table() {
        let cases: &[(&str, &str)] = &[
            ("", "empty reference"),
            ("Busybox", "repository name must be lowercase"),
            ("busybox:", "invalid tag"),
            ("busybox:-x", "invalid tag"),
            ("busybox@sha256:abc", "bad digest"),
            ("a//b", "invalid repository path component"),
            ("a/b/", "invalid repository path component"),
            ("-a/b", "invalid repository path component"),
            ("a..b", "invalid repository path component"),
            ("bad_host.io:port/x", "invalid registry"),
            (" busybox", "whitespace"),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "hexadecimal",
            ),
            (":tag", "empty repository name"),
        ];
        for (input, want) in cases {
            let e = input.parse::<Reference>().expect_err(input);
            assert!(e.reason.contains(want), "{input}: got {:?}", e.reason);
            assert!(
                e.to_string().contains(&format!("{input:?}")),
                "quotes input: {e}"
            );
        }
    }

    #[test]
    fn familiar_form() {
        let r: Reference = "busybox:1".parse().unwrap();
        assert_eq!(r.familiar(), "busybox:1");
        let r: Reference = "bitnami/x".parse().unwrap();
        assert_eq!(r.familiar(), "bitnami/x:latest");
        assert_eq!(
            r.with_registry("reg.local:5000").to_string(),
            "reg.local:5000/bitnami/x:latest"
        );
    }
}
