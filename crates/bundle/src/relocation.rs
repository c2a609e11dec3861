//! Where a bundle's images go: the relocation rule relok8s and charts-syncer share. The one
//! place the rule lives: images are pushed by it (`kantup-registry`), tagged by it on nodes
//! (`kantup load --retag`) and the chart's image values are rewritten by it
//! (`kantup-helm-values`), so a chart always names the images where they were pushed.
//!
//! The rule: the registry becomes the target registry; the repository becomes the target
//! repository prefix, `/`, and the last path segment of the source repository
//! (`harbor.example/proxy/library/busybox` -> `reg.local:5000/kant/busybox`); tags and digests
//! stay.

use crate::reference::Reference;

/// The target of relocation: `containerRegistry` and `containerRepository` of a
/// charts-syncer config. Either part may be left out (`kantup values relocate --registry` or
/// `--repository-prefix` alone): what is left out stays as the image has it.
///
/// ```
/// use kantup_bundle::relocation::RelocationRule;
/// let rule = RelocationRule::new("reg.local:5000", "kant/apps");
/// let image = "harbor.example/proxy/library/busybox:1.33.1".parse().unwrap();
/// assert_eq!(rule.relocate(&image).to_string(), "reg.local:5000/kant/apps/busybox:1.33.1");
/// let prefix_only = RelocationRule { registry: None, repository_prefix: Some("mirror".into()) };
/// let image = "docker.io/bitnami/nginx:1.25".parse().unwrap();
/// assert_eq!(prefix_only.relocate(&image).to_string(), "docker.io/mirror/nginx:1.25");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelocationRule {
    /// Target registry host (`reg.example:5000`); `None` keeps each image's registry.
    pub registry: Option<String>,
    /// Repository prefix (`library/kant`; slashes at either end are ignored; empty for none:
    /// the last path segment alone); `None` keeps each image's repository.
    pub repository_prefix: Option<String>,
}

impl RelocationRule {
    /// A rule sending images to `registry`, under `repository_prefix` (slashes at either end
    /// are dropped; empty for none).
    pub fn new(registry: impl Into<String>, repository_prefix: impl Into<String>) -> Self {
        Self {
            registry: Some(registry.into()),
            repository_prefix: Some(repository_prefix.into().trim_matches('/').to_string()),
        }
    }

    /// Target repository path for a source repository path: the prefix, `/`, and the last
    /// path segment of the source (the source's own path when the rule has no prefix).
    ///
    /// ```
    /// use kantup_bundle::relocation::RelocationRule;
    /// let rule = RelocationRule::new("reg.local:5000", "kant/apps");
    /// assert_eq!(rule.repository_for("library/busybox"), "kant/apps/busybox");
    /// assert_eq!(RelocationRule::new("reg", "").repository_for("bitnami/wordpress"), "wordpress");
    /// ```
    pub fn repository_for(&self, source_repository: &str) -> String {
        match &self.repository_prefix {
            Some(prefix) => repository_under(prefix, source_repository),
            None => source_repository.to_string(),
        }
    }

    /// The reference `source` gets: this rule's registry and repository, the same tag and
    /// digest.
    pub fn relocate(&self, source: &Reference) -> Reference {
        Reference {
            registry: self
                .registry
                .clone()
                .unwrap_or_else(|| source.registry.clone()),
            repository: self.repository_for(&source.repository),
            tag: source.tag.clone(),
            digest: source.digest,
        }
    }

    /// Full target name: `registry/repository:tag`, or `registry/repository@digest` when the
    /// image is pinned (no tag); without a registry in the rule, the repository alone leads.
    pub fn target_name(&self, source_repository: &str, tag: Option<&str>, digest: &str) -> String {
        let repo = self.repository_for(source_repository);
        let name = match &self.registry {
            Some(registry) => format!("{registry}/{repo}"),
            None => repo,
        };
        match tag {
            Some(tag) => format!("{name}:{tag}"),
            None => format!("{name}@{digest}"),
        }
    }
}

/// `prefix/<last path segment of source_repository>`, or the last segment alone when `prefix`
/// is empty. Slashes at either end of both are ignored.
///
/// ```
/// use kantup_bundle::relocation::repository_under;
/// assert_eq!(repository_under("mirror/", "bitnami/wordpress"), "mirror/wordpress");
/// assert_eq!(repository_under("", "tiny"), "tiny");
/// ```
pub fn repository_under(prefix: &str, source_repository: &str) -> String {
    let source = source_repository.trim_matches('/');
    let last = source.rsplit('/').next().unwrap_or(source);
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        last.to_string()
    } else {
        format!("{prefix}/{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_table() {
        let cases = [
            (
                "reg:5000",
                "kant",
                "library/busybox",
                Some("1.33.1"),
                "reg:5000/kant/busybox:1.33.1",
            ),
            (
                "reg:5000",
                "/a/b/",
                "tiny",
                Some("tiniest"),
                "reg:5000/a/b/tiny:tiniest",
            ),
            (
                "reg:5000",
                "",
                "bitnami/wordpress",
                Some("5"),
                "reg:5000/wordpress:5",
            ),
            ("reg:5000", "x", "a/b/c/d", None, "reg:5000/x/d@sha256:00"),
        ];
        for (reg, prefix, src, tag, want) in cases {
            let rule = RelocationRule::new(reg, prefix);
            assert_eq!(rule.target_name(src, tag, "sha256:00"), want, "{src}");
        }
    }

    #[test]
    fn relocate_keeps_tag_and_digest() {
        let rule = RelocationRule::new("reg.local", "");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let source: Reference = format!("docker.io/bitnami/nginx:1.25@{digest}")
            .parse()
            .unwrap();
        let moved = rule.relocate(&source);
        assert_eq!(moved.to_string(), format!("reg.local/nginx:1.25@{digest}"));
    }
}
