//! Relocation naming: where an image of a bundle goes in the target registry (the rule
//! relok8s and charts-syncer share).

/// The target of relocation: `containerRegistry` and `containerRepository` of a
/// charts-syncer config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocationRule {
    /// Target registry host (`reg.example:5000`).
    pub registry: String,
    /// Repository prefix (`library/kant`); may be empty.
    pub repository_prefix: String,
}

impl RelocationRule {
    pub fn new(registry: impl Into<String>, repository_prefix: impl Into<String>) -> Self {
        Self {
            registry: registry.into(),
            repository_prefix: repository_prefix.into().trim_matches('/').to_string(),
        }
    }

    /// Target repository path for a source repository path: the prefix, `/`, and the last
    /// path segment of the source.
    ///
    /// ```
    /// use kantup_registry::RelocationRule;
    /// let rule = RelocationRule::new("reg.local:5000", "kant/apps");
    /// assert_eq!(rule.repository_for("library/busybox"), "kant/apps/busybox");
    /// assert_eq!(rule.repository_for("bitnami/wordpress"), "kant/apps/wordpress");
    /// ```
    pub fn repository_for(&self, source_repository: &str) -> String {
        let last = source_repository
            .trim_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(source_repository);
        if self.repository_prefix.is_empty() {
            last.to_string()
        } else {
            format!("{}/{last}", self.repository_prefix)
        }
    }

    /// Full target name: `registry/repository:tag`, or `registry/repository@digest` when the
    /// image is pinned (no tag).
    pub fn target_name(&self, source_repository: &str, tag: Option<&str>, digest: &str) -> String {
        let repo = self.repository_for(source_repository);
        match tag {
            Some(tag) => format!("{}/{repo}:{tag}", self.registry),
            None => format!("{}/{repo}@{digest}", self.registry),
        }
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
}
