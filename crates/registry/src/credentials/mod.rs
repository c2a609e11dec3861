//! Credentials for registries and chart repositories, and the one rule for where they come
//! from ([`CredentialResolver`]): credentials given explicitly (command-line flags, a config
//! file's `auth` section, user-info in a URL) win over environment variables
//! (`KANTUP_REPO_USERNAME`/`KANTUP_REPO_PASSWORD`, charts-syncer's `TARGET_*_AUTH_*`), which
//! win over docker's `config.json` (with its credential helpers).
//!
//! Credentials belong to one host: the clients attach them only to requests to that host and
//! port, so a redirect elsewhere (object storage behind a registry) never carries them.
//! Neither `Debug` nor any error shows a password or token.
//!
//! ```
//! use kantup_registry::credentials::{CredentialResolver, EnvPair};
//! let resolver = CredentialResolver::new()
//!     .given("--username/--password", Some("alice".into()), Some("pw".into()))?
//!     .env(EnvPair::KANTUP_REPO)
//!     .docker_config();
//! let credentials = resolver.resolve("reg.example:5000")?.expect("given ones win");
//! assert_eq!(credentials.username, "alice");
//! # Ok::<(), kantup_registry::credentials::CredentialsError>(())
//! ```

mod docker_config;

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use docker_config::DockerConfig;

/// A username and password (or identity token). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (`<token>` for docker identity tokens).
    pub username: String,
    /// The password or token; never shown.
    pub password: String,
}

impl Credentials {
    /// A pair from its parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization: Basic ...` header value.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials could not be resolved. Messages name the flag, variable, file or helper, never
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Only one half of a username/password pair was given.
    #[error("{0}: a username needs a password and a password needs a username")]
    Incomplete(String),
    /// The docker config file could not be read.
    #[error("docker config {}: {source}", .path.display())]
    DockerConfigRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The docker config file is not valid.
    #[error("docker config {}: {reason}", .path.display())]
    DockerConfigInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A credential helper (`docker-credential-<name>`) failed.
    #[error("credential helper docker-credential-{helper} for {registry}: {reason}")]
    Helper {
        /// The helper name (`docker-credential-<helper>`).
        helper: String,
        /// The registry asked for.
        registry: String,
        /// What went wrong (it could not run, its exit status, an answer that is not the
        /// expected JSON); never the answer itself, which holds the secret.
        reason: String,
    },
}

/// A pair of environment variables holding a username and a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvPair {
    /// The variable holding the username.
    pub username: &'static str,
    /// The variable holding the password.
    pub password: &'static str,
}

impl EnvPair {
    /// `KANTUP_REPO_USERNAME` / `KANTUP_REPO_PASSWORD` (`kantup repo`).
    pub const KANTUP_REPO: EnvPair = EnvPair {
        username: "KANTUP_REPO_USERNAME",
        password: "KANTUP_REPO_PASSWORD",
    };
    /// charts-syncer's target container registry variables.
    pub const TARGET_CONTAINERS: EnvPair = EnvPair {
        username: "TARGET_CONTAINERS_AUTH_USERNAME",
        password: "TARGET_CONTAINERS_AUTH_PASSWORD",
    };
    /// charts-syncer's target chart repository variables.
    pub const TARGET_REPO: EnvPair = EnvPair {
        username: "TARGET_REPO_AUTH_USERNAME",
        password: "TARGET_REPO_AUTH_PASSWORD",
    };

    fn read(&self) -> Result<Option<Credentials>, CredentialsError> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        pair(
            get(self.username),
            get(self.password),
            &format!("{}/{}", self.username, self.password),
        )
    }
}

fn pair(
    username: Option<String>,
    password: Option<String>,
    label: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        (None, None) => Ok(None),
        _ => Err(CredentialsError::Incomplete(label.to_owned())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DockerConfigSource {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    Default,
    File(PathBuf),
}

/// Resolves the credentials for a host: given ones first (in the order added), then the
/// environment variable pairs (in the order added), then docker's `config.json` when enabled.
#[derive(Clone, Default)]
pub struct CredentialResolver {
    given: Vec<(String, Credentials)>,
    env: Vec<EnvPair>,
    docker_config: Option<DockerConfigSource>,
}

impl fmt::Debug for CredentialResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let given: Vec<&str> = self.given.iter().map(|(label, _)| label.as_str()).collect();
        f.debug_struct("CredentialResolver")
            .field("given", &given)
            .field("env", &self.env)
            .field("docker_config", &self.docker_config)
            .finish()
    }
}

impl CredentialResolver {
    /// A resolver that finds nothing (anonymous access) until sources are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds explicitly given credentials (flags, a config file), named `label` in errors.
    /// Both halves or neither must be given.
    pub fn given(
        self,
        label: &str,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, CredentialsError> {
        let username = username.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.is_empty());
        Ok(self.given_credentials(label, pair(username, password, label)?))
    }

    /// Adds explicitly given credentials, when there are any.
    pub fn given_credentials(mut self, label: &str, credentials: Option<Credentials>) -> Self {
        if let Some(credentials) = credentials {
            self.given.push((label.to_owned(), credentials));
        }
        self
    }

    /// Adds a pair of environment variables, read when resolving.
    pub fn env(mut self, pair: EnvPair) -> Self {
        self.env.push(pair);
        self
    }

    /// Consults docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`) last.
    pub fn docker_config(mut self) -> Self {
        self.docker_config = Some(DockerConfigSource::Default);
        self
    }

    /// Consults this docker config file last.
    pub fn docker_config_file(mut self, path: &Path) -> Self {
        self.docker_config = Some(DockerConfigSource::File(path.to_owned()));
        self
    }

    /// The same resolver without docker's `config.json` (HTTP chart repositories do not use
    /// it, as helm does not).
    pub fn without_docker_config(mut self) -> Self {
        self.docker_config = None;
        self
    }

    /// The credentials for `host` (`name[:port]`), or `None` for anonymous access.
    pub fn resolve(&self, host: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some((label, credentials)) = self.given.first() {
            tracing::debug!("credentials for {host}: {label}");
            return Ok(Some(credentials.clone()));
        }
        for pair in &self.env {
            if let Some(credentials) = pair.read()? {
                tracing::debug!("credentials for {host}: ${}", pair.username);
                return Ok(Some(credentials));
            }
        }
        let config = match &self.docker_config {
            None => return Ok(None),
            Some(DockerConfigSource::Default) => DockerConfig::load_default()?,
            Some(DockerConfigSource::File(path)) => DockerConfig::load(path)?,
        };
        let found = config.credentials_for(host)?;
        if found.is_some() {
            tracing::debug!("credentials for {host}: docker config");
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let c = Credentials::new("alice", "s3cr3t-pw");
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        let resolver = CredentialResolver::new().given_credentials("--password", Some(c));
        assert!(!format!("{resolver:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn given_beats_docker_config_and_halves_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let encoded = STANDARD.encode("from-config:pw");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"reg:5000":{{"auth":"{encoded}"}}}}}}"#),
        )
        .unwrap();
        let only_config = CredentialResolver::new().docker_config_file(&path);
        assert_eq!(
            only_config.resolve("reg:5000").unwrap(),
            Some(Credentials::new("from-config", "pw"))
        );
        assert_eq!(only_config.resolve("other:5000").unwrap(), None);
        let given = only_config
            .clone()
            .given("flags", Some("u".into()), Some("p".into()))
            .unwrap();
        assert_eq!(
            given.resolve("reg:5000").unwrap(),
            Some(Credentials::new("u", "p"))
        );
        let half = CredentialResolver::new().given("--username/--password", Some("u".into()), None);
        let err = half.unwrap_err().to_string();
        assert!(err.contains("--username/--password"), "{err}");
        // Nothing configured: anonymous.
        assert_eq!(CredentialResolver::new().resolve("reg:5000").unwrap(), None);
    }
}
