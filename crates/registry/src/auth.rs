//! Registry credentials: basic, docker `config.json` (with credential helpers), charts-syncer's
//! environment variables, and parsing of `WWW-Authenticate` challenges.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{RegistryError, Result};

/// A username and password (or identity token). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
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

/// charts-syncer's environment variables for the target container registry
/// (`TARGET_CONTAINERS_AUTH_USERNAME` / `TARGET_CONTAINERS_AUTH_PASSWORD`).
pub fn target_containers_from_env() -> Option<Credentials> {
    pair_from_env(
        "TARGET_CONTAINERS_AUTH_USERNAME",
        "TARGET_CONTAINERS_AUTH_PASSWORD",
    )
}

/// charts-syncer's environment variables for the target chart repository
/// (`TARGET_REPO_AUTH_USERNAME` / `TARGET_REPO_AUTH_PASSWORD`).
pub fn target_repo_from_env() -> Option<Credentials> {
    pair_from_env("TARGET_REPO_AUTH_USERNAME", "TARGET_REPO_AUTH_PASSWORD")
}

fn pair_from_env(user: &str, pass: &str) -> Option<Credentials> {
    let username = std::env::var(user).ok().filter(|s| !s.is_empty())?;
    let password = std::env::var(pass).unwrap_or_default();
    Some(Credentials { username, password })
}

/// The parts of a docker `config.json` used for registry auth.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
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
    pub fn load_default() -> Result<Self> {
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
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| RegistryError::File {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| {
            RegistryError::Invalid(format!("{}: not a docker config: {e}", path.display()))
        })
    }

    /// Credentials for `registry` (`host[:port]`): a `credHelpers` entry first, then `auths`,
    /// then `credsStore`.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.cred_helpers.get(registry) {
            return run_helper(helper, registry);
        }
        for (key, entry) in &self.auths {
            if auth_key_host(key) == registry {
                return decode_entry(key, entry).map(Some);
            }
        }
        if let Some(store) = &self.creds_store {
            return run_helper(store, registry);
        }
        Ok(None)
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

fn decode_entry(key: &str, entry: &DockerAuthEntry) -> Result<Credentials> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = STANDARD.decode(auth.trim()).map_err(|_| {
            RegistryError::Invalid(format!("docker config auths.{key}.auth is not base64"))
        })?;
        let raw = String::from_utf8(raw).map_err(|_| {
            RegistryError::Invalid(format!("docker config auths.{key}.auth is not UTF-8"))
        })?;
        let (user, pass) = raw.split_once(':').ok_or_else(|| {
            RegistryError::Invalid(format!(
                "docker config auths.{key}.auth is not username:password"
            ))
        })?;
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

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let err = |reason: String| RegistryError::CredentialHelper {
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
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("unreadable answer: {e}")))?;
    Ok(Some(Credentials::new(answer.username, answer.secret)))
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a header value such as `Bearer realm="https://auth",service="reg",scope="a:b:c"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `k="v",k2="v, with comma",k3=v3`
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases = [
            ("Basic realm=\"Registry Realm\"", Some(Challenge::Basic)),
            (
                "Bearer realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:a/b:pull,push\"",
                Some(Challenge::Bearer {
                    realm: "https://auth.example/token".into(),
                    service: Some("reg".into()),
                    scope: Some("repository:a/b:pull,push".into()),
                }),
            ),
            (
                "Bearer realm=http://127.0.0.1:1/t, service=x",
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: Some("x".into()),
                    scope: None,
                }),
            ),
            ("Bearer service=\"no-realm\"", None),
            ("Negotiate abc", None),
        ];
        for (header, want) in cases {
            assert_eq!(Challenge::parse(header), want, "{header}");
        }
    }

    #[test]
    fn debug_redacts_password() {
        let c = Credentials::new("alice", "s3cr3t-pw");
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let encoded = STANDARD.encode("bob:pa:ss");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"reg.example:5000":{{"auth":"{encoded}"}},
                "https://index.docker.io/v1/":{{"username":"u","password":"p"}}}},
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
