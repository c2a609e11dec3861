//! charts-syncer's config file (`load-image.yaml`), read as strictly as charts-syncer reads it.
//!
//! charts-syncer decodes its config with sigs.k8s.io/yaml's `YAMLToJSONStrict` (a key given
//! twice is an error) and then protobuf JSON with unknown fields refused (bitnami's
//! `internal/config`, its DaoCloud fork alike): a key its schema does not have stops it. kantup
//! refuses the same keys, naming the key and the file, so that a typo such as
//! `containerRepositry` never quietly sends images somewhere else. Every key of the schema is
//! accepted in both spellings protobuf JSON accepts (`intermediateBundlesPath` and
//! `intermediate_bundles_path`), including the DaoCloud fork's; the ones kantup does not act on
//! are listed by [`SyncConfig::ignored_keys`] so the caller can say so.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a charts-syncer config (an unknown or repeated key, a wrong type).
    #[error("{}: not a charts-syncer config (charts-syncer refuses unknown keys too)", path.display())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key and its line.
        #[source]
        source: serde_yaml::Error,
    },
}

/// A value kantup accepts because charts-syncer's schema has it, but does not use.
type Unused = Option<serde_yaml::Value>;

/// charts-syncer's v1 config.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    /// Where the bundles are.
    #[serde(default)]
    pub source: SourceConfig,
    /// Where images and charts go.
    #[serde(default)]
    pub target: TargetConfig,
    charts: Unused,
    #[serde(alias = "skip_charts")]
    skip_charts: Unused,
    #[serde(alias = "relocate_container_images")]
    relocate_container_images: Unused,
    #[serde(alias = "container_platforms")]
    container_platforms: Unused,
    #[serde(alias = "skip_artifacts")]
    skip_artifacts: Unused,
    #[serde(alias = "skip_images")]
    skip_images: Unused,
    containers: Unused,
}

/// `source`: the bundles.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfig {
    /// A bundle file, or a directory of bundles (relative to the config's directory).
    #[serde(alias = "intermediate_bundles_path")]
    pub intermediate_bundles_path: Option<PathBuf>,
    repo: Unused,
    containers: Unused,
    #[serde(alias = "ignore_trusted_repos")]
    ignore_trusted_repos: Unused,
}

/// `target`: the registry and the chart repository.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfig {
    /// The registry host (`http://` or `https://` allowed), or `oci-layout:DIR`.
    #[serde(alias = "container_registry")]
    pub container_registry: Option<String>,
    #[serde(alias = "container_repository", default)]
    container_repository: Option<String>,
    /// The chart repository.
    pub repo: Option<RepoConfig>,
    /// The registry's credentials.
    pub containers: Option<ContainersConfig>,
    #[serde(alias = "intermediate_bundles_path")]
    intermediate_bundles_path: Unused,
    #[serde(alias = "repo_name")]
    repo_name: Unused,
    #[serde(alias = "container_prefix_registry")]
    container_prefix_registry: Unused,
    #[serde(alias = "container_prefix_repository")]
    container_prefix_repository: Unused,
    #[serde(alias = "append_origin_registry")]
    append_origin_registry: Unused,
    #[serde(alias = "sync_trusted_repos")]
    sync_trusted_repos: Unused,
}

impl TargetConfig {
    /// `target.containerRepository` (empty when absent or null).
    pub fn container_repository(&self) -> &str {
        self.container_repository.as_deref().unwrap_or_default()
    }
}

/// `target.repo`: the chart repository.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoConfig {
    kind: Option<RepoKind>,
    url: Option<String>,
    /// The directory of a `LOCAL` repository.
    pub path: Option<PathBuf>,
    /// The repository's credentials.
    pub auth: Option<AuthConfig>,
    #[serde(alias = "charts_index")]
    charts_index: Unused,
    #[serde(alias = "use_charts_index")]
    use_charts_index: Unused,
    #[serde(alias = "disable_charts_index")]
    disable_charts_index: Unused,
}

impl RepoConfig {
    /// `kind` in upper case (`OCI`, `LOCAL`, `HARBOR`, ...); empty when absent.
    pub fn kind(&self) -> String {
        self.kind
            .as_ref()
            .map(|k| k.0.to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// `url` (empty when absent or null).
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or_default()
    }
}

/// A repository kind as protobuf JSON reads an enum: its name, or its number.
#[derive(Debug)]
struct RepoKind(String);

impl<'de> Deserialize<'de> for RepoKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 7] = [
            "UNKNOWN",
            "HELM",
            "CHARTMUSEUM",
            "HARBOR",
            "OCI",
            "LOCAL",
            "JFROG",
        ];
        match serde_yaml::Value::deserialize(deserializer)? {
            serde_yaml::Value::String(name) => Ok(RepoKind(name)),
            serde_yaml::Value::Number(n) => n
                .as_u64()
                .and_then(|i| NAMES.get(i as usize))
                .map(|name| RepoKind(name.to_string()))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown repository kind {n}"))),
            other => Err(serde::de::Error::custom(format!(
                "invalid type: {}, expected a repository kind such as OCI or LOCAL",
                describe(&other)
            ))),
        }
    }
}

fn describe(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// `target.containers`: the registry's credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainersConfig {
    /// Username and password.
    pub auth: Option<AuthConfig>,
    url: Unused,
    kind: Unused,
}

/// An `auth` section; its password is never printed (not even by `Debug`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    username: Option<String>,
    password: Option<String>,
    /// The host these credentials are for (empty: the target registry).
    pub registry: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("registry", &self.registry)
            .finish()
    }
}

impl AuthConfig {
    /// The user name and password, when a user name is given.
    pub fn credentials(&self) -> Option<kantup_registry::Credentials> {
        let username = self.username.as_deref().unwrap_or_default();
        (!username.is_empty()).then(|| {
            kantup_registry::Credentials::new(
                username,
                self.password.as_deref().unwrap_or_default(),
            )
        })
    }
}

impl SyncConfig {
    /// Reads and checks `path`. Errors name the file and, for an unknown or misplaced key,
    /// the key and its line.
    pub fn load(path: &Path) -> Result<SyncConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses a config document.
    pub fn parse(text: &str) -> Result<SyncConfig, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(SyncConfig::default());
        }
        serde_yaml::from_str(text)
    }

    /// The keys present that charts-syncer knows and kantup does not act on, as dotted paths
    /// (`target.repoName`).
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut note = |present: bool, key: &'static str| {
            if present {
                keys.push(key);
            }
        };
        let set = |v: &Unused| v.as_ref().is_some_and(|v| !v.is_null());
        note(set(&self.charts), "charts");
        note(set(&self.skip_charts), "skipCharts");
        note(
            set(&self.relocate_container_images),
            "relocateContainerImages",
        );
        note(set(&self.container_platforms), "containerPlatforms");
        note(set(&self.skip_artifacts), "skipArtifacts");
        note(set(&self.skip_images), "skipImages");
        note(set(&self.containers), "containers");
        let s = &self.source;
        note(set(&s.repo), "source.repo");
        note(set(&s.containers), "source.containers");
        note(set(&s.ignore_trusted_repos), "source.ignoreTrustedRepos");
        let t = &self.target;
        note(
            set(&t.intermediate_bundles_path),
            "target.intermediateBundlesPath",
        );
        note(set(&t.repo_name), "target.repoName");
        note(
            set(&t.container_prefix_registry),
            "target.containerPrefixRegistry",
        );
        note(
            set(&t.container_prefix_repository),
            "target.containerPrefixRepository",
        );
        note(
            set(&t.append_origin_registry),
            "target.appendOriginRegistry",
        );
        note(set(&t.sync_trusted_repos), "target.syncTrustedRepos");
        if let Some(repo) = &t.repo {
            note(set(&repo.charts_index), "target.repo.chartsIndex");
            note(set(&repo.use_charts_index), "target.repo.useChartsIndex");
            note(
                set(&repo.disable_charts_index),
                "target.repo.disableChartsIndex",
            );
        }
        if let Some(containers) = &t.containers {
            note(set(&containers.url), "target.containers.url");
            note(set(&containers.kind), "target.containers.kind");
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protobuf_spellings_are_read() {
        let camel = SyncConfig::parse(
            "source: {intermediateBundlesPath: b}\ntarget: {containerRegistry: r, containerRepository: p}\n",
        )
        .unwrap();
        let snake = SyncConfig::parse(
            "source: {intermediate_bundles_path: b}\ntarget: {container_registry: r, container_repository: p}\n",
        )
        .unwrap();
        for c in [camel, snake] {
            assert_eq!(
                c.source.intermediate_bundles_path.as_deref(),
                Some(Path::new("b"))
            );
            assert_eq!(c.target.container_registry.as_deref(), Some("r"));
            assert_eq!(c.target.container_repository(), "p");
        }
    }

    #[test]
    fn unknown_and_repeated_keys_are_refused_by_name() {
        let rows: &[(&str, &str)] = &[
            (
                "target:\n  containerRepositry: kant\n",
                "target: unknown field `containerRepositry`",
            ),
            ("sources: {}\n", "unknown field `sources`"),
            (
                "target:\n  repo: {kind: LOCAL, pth: x}\n",
                "target.repo: unknown field `pth`",
            ),
            (
                "target:\n  containers:\n    auth: {user: a}\n",
                "target.containers.auth: unknown field `user`",
            ),
            ("source: {}\nsource: {}\n", "duplicate"),
            (
                "target:\n  containerRepository: [a]\n",
                "target.containerRepository: invalid type: sequence",
            ),
            (
                "target:\n  repo: {kind: [x]}\n",
                "target.repo: invalid type: a list, expected a repository kind",
            ),
        ];
        for (text, want) in rows {
            let err = SyncConfig::parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn known_keys_kantup_does_not_use_are_listed() {
        let c = SyncConfig::parse(
            "source: {intermediateBundlesPath: b}\ntarget:\n  containerRegistry: r\n  repoName: myrepo\n  containerPrefixRegistry: r\n  repo: {kind: 5, path: x, chartsIndex: i}\nskipCharts: [a]\n",
        )
        .unwrap();
        assert_eq!(
            c.ignored_keys(),
            [
                "skipCharts",
                "target.repoName",
                "target.containerPrefixRegistry",
                "target.repo.chartsIndex"
            ]
        );
        assert_eq!(c.target.repo.unwrap().kind(), "LOCAL");
    }
}
