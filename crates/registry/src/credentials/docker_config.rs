//! Docker's `config.json`: `auths` entries, `credHelpers` and `credsStore` (credential helpers
//! run as `docker-credential-<name> get`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{Credentials, CredentialsError};

/// The parts of a docker `config.json` used for registry auth.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(skip)]
    path: PathBuf,
    #[serde(default)]
    auths: BTreeMap<String, DockerAuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

impl fmt::Debug for DockerAuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DockerAuthEntry(<redacted>)")
    }
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; an absent file is an empty
    /// config.
    pub fn load_default() -> Result<Self, CredentialsError> {
        let path = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".docker/config.json"),
                None => return Ok(Self::default()),
            },
        };
        if !path.is_file() {
            return Ok(Self::default());
        }
        Self::load(&path)
    }

    /// Reads one `config.json`.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read(path).map_err(|source| CredentialsError::DockerConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Self =
            serde_json::from_slice(&text).map_err(|e| CredentialsError::DockerConfigInvalid {
                path: path.to_path_buf(),
                reason: format!("not a docker config: {e}"),
            })?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    /// Credentials for `registry` (`host[:port]`): a `credHelpers` entry first, then `auths`,
    /// then `credsStore`.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some(helper) = self.cred_helpers.get(registry) {
            return run_helper(helper, registry);
        }
        for (key, entry) in &self.auths {
            if auth_key_host(key) == registry {
                return self.decode_entry(key, entry).map(Some);
            }
        }
        if let Some(store) = &self.creds_store {
            return run_helper(store, registry);
        }
        Ok(None)
    }

    fn decode_entry(
        &self,
        key: &str,
        entry: &DockerAuthEntry,
    ) -> Result<Credentials, CredentialsError> {
        let invalid = |what: &str| CredentialsError::DockerConfigInvalid {
            path: self.path.clone(),
            reason: format!("auths.{key}.auth is {what}"),
        };
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid("not base64"))?;
            let raw = String::from_utf8(raw).map_err(|_| invalid("not UTF-8"))?;
            let (user, pass) = raw
                .split_once(':')
                .ok_or_else(|| invalid("not username:password"))?;
            return Ok(Credentials::new(user, pass));
        }
        if let Some(token) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
            // Docker's convention: an identity token goes as the password of user "<token>".
            return Ok(Credentials::new("<token>", token));
        }
        Ok(Credentials::new(
            entry.username.clone().unwrap_or_default(),
            entry.password.clone().unwrap_or_default(),
        ))
    }
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `host:5000` stays.
fn auth_key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let err = |reason: String| CredentialsError::Helper {
        helper: helper.to_string(),
        registry: registry.to_string(),
        reason,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| err(format!("writing stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting: {e}")))?;
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Helpers answer "credentials not found in native keychain" when they have nothing.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!("exited with {}", out.status)));
    }
    // The answer holds the secret: its parse error must not quote it.
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| err("the answer is not {\"Username\",\"Secret\"} JSON".to_owned()))?;
    Ok(Some(Credentials::new(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let encoded = STANDARD.encode("bob:pa:ss");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"reg.example:5000":{{"auth":"{encoded}"}},
                "https://index.docker.io/v1/":{{"username":"u","password":"p"}},
                "bad.example":{{"auth":"!!"}}}},
                "credHelpers":{{"helper.example":"kantup-test-missing"}}}}"#
            ),
        )
        .unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(
            cfg.credentials_for("reg.example:5000").unwrap(),
            Some(Credentials::new("bob", "pa:ss"))
        );
        assert_eq!(
            cfg.credentials_for("index.docker.io").unwrap(),
            Some(Credentials::new("u", "p"))
        );
        assert_eq!(cfg.credentials_for("other.example").unwrap(), None);
        let err = cfg.credentials_for("helper.example").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-kantup-test-missing"),
            "{err}"
        );
        let err = cfg.credentials_for("bad.example").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("not base64"),
            "{err}"
        );
    }

    #[test]
    fn docker_config_credential_helper() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-kantuptest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\necho \"{\\\"ServerURL\\\":\\\"$host\\\",\\\"Username\\\":\\\"helper-user\\\",\\\"Secret\\\":\\\"helper-secret\\\"}\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg: DockerConfig = serde_json::from_str(r#"{"credsStore":"kantuptest"}"#).unwrap();
        // Run the helper by absolute PATH lookup: prepend the temp dir.
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.path().to_path_buf()];
        paths.extend(std::env::split_paths(&old));
        // SAFETY: this test is the only one in this crate that touches PATH.
        unsafe { std::env::set_var("PATH", std::env::join_paths(paths).unwrap()) };
        let got = cfg.credentials_for("reg.example").unwrap();
        unsafe { std::env::set_var("PATH", old) };
        assert_eq!(got, Some(Credentials::new("helper-user", "helper-secret")));
    }
}
