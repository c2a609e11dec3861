//! A real `docker-registry` (distribution v2.8) for tests: no auth, htpasswd basic auth, or
//! token auth backed by [`crate::token_issuer::TokenIssuer`]; plain HTTP or TLS with a
//! certificate from a test CA ([`tls::TestCa`], made with openssl). Listens on 127.0.0.1 at a
//! free port; killed and its storage removed on drop.
//!
//! [`nginx`] runs the real nginx beside it: a static HTTPS chart repository, and a TLS front
//! that redirects blob downloads to another host (what registries backed by object storage do,
//! which docker-registry's filesystem storage cannot).

pub mod nginx;
pub mod referrers;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::token_issuer::TokenIssuer;
use crate::tools::require_tool;
use tls::TestCa;

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    None,
    /// htpasswd (bcrypt) basic auth.
    Basic {
        username: String,
        password: String,
    },
    /// Bearer tokens from a [`TokenIssuer`] that accepts these credentials.
    Token {
        username: String,
        password: String,
    },
}

/// A DNS name the TLS registry's certificate also carries, for clients that must not see a
/// loopback name: helm talks plain HTTP to `localhost` and loopback IPs whatever its flags, so
/// tests run it with this name mapped to 127.0.0.1 in a private `/etc/hosts` (a mount
/// namespace of its own).
pub const TLS_TEST_NAME: &str = "kantup-registry.test";

/// A running registry; dropped = killed.
pub struct RegistryServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    token_issuer: Option<TokenIssuer>,
    /// The CA that signed the registry's certificate, in TLS mode.
    ca: Option<TestCa>,
}

/// A port the OS considers free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl RegistryServer {
    /// A registry without auth.
    pub fn start() -> Self {
        Self::start_with(RegistryAuth::None)
    }

    /// A registry requiring htpasswd basic auth.
    pub fn start_basic(username: &str, password: &str) -> Self {
        Self::start_with(RegistryAuth::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    /// A registry requiring bearer tokens from a test token issuer.
    pub fn start_token(username: &str, password: &str) -> Self {
        Self::start_with(RegistryAuth::Token {
            username: username.into(),
            password: password.into(),
        })
    }

    /// Starts `docker-registry serve` and waits until `/v2/` answers (a few tries, in case
    /// the free port was taken in between).
    pub fn start_with(auth: RegistryAuth) -> Self {
        Self::start_configured(auth, false)
    }

    /// A registry serving TLS only, with a certificate for `127.0.0.1`, `localhost` and
    /// [`TLS_TEST_NAME`] signed by a fresh test CA ([`RegistryServer::ca_file`]).
    pub fn start_tls(auth: RegistryAuth) -> Self {
        Self::start_configured(auth, true)
    }

    fn start_configured(auth: RegistryAuth, tls: bool) -> Self {
        let mut last_error = String::new();
        for _ in 0..4 {
            match Self::try_start(&auth, tls) {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    fn try_start(auth: &RegistryAuth, tls: bool) -> Result<Self, String> {
        let binary = require_tool("docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca, tls_yaml) = if tls {
            let ca = TestCa::create(&dir.path().join("ca"), "kantup test registry CA");
            let cert = ca.issue(
                &dir.path().join("server"),
                &["127.0.0.1", "localhost", TLS_TEST_NAME],
            );
            let yaml = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.cert.display(),
                cert.key.display()
            );
            (Some(ca), yaml)
        } else {
            (None, String::new())
        };
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage dir");
        let mut token_issuer = None;
        let auth_yaml = match auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Basic { username, password } => {
                let htpasswd = require_tool("htpasswd");
                let out = Command::new(htpasswd)
                    .args(["-Bbn", username, password])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: kantup-test\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token { username, password } => {
                let issuer = TokenIssuer::start(dir.path(), username, password);
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.realm(),
                    issuer.service(),
                    issuer.issuer(),
                    issuer.cert_path().display()
                );
                token_issuer = Some(issuer);
                yaml
            }
        };
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: kantup-test-secret\n{tls_yaml}{auth_yaml}",
                storage.display()
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut server = RegistryServer {
            child,
            dir,
            port,
            token_issuer,
            ca,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(format!("exited with {status}: {log}"));
            }
            // A TLS-only Go server answers a plain HTTP request with 400 ("Client sent an HTTP
            // request to an HTTPS server"): it is up.
            let ready: &[u16] = if self.ca.is_some() {
                &[400]
            } else {
                &[200, 401]
            };
            if let Ok(status) = http_status(&format!("127.0.0.1:{}", self.port), "/v2/")
                && ready.contains(&status)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("timed out waiting for /v2/".into())
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// CPU time (user and system) the registry process has used so far, from
    /// `/proc/PID/stat` (whose clock ticks are 1/100 s on Linux).
    pub fn cpu_time(&self) -> std::time::Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("registry /proc stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat format")
            .1
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        std::time::Duration::from_millis(ticks * 10)
    }

    /// The registry's storage root.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The PEM file of the CA that signed the registry's certificate (TLS mode).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(|ca| ca.cert_path().to_path_buf())
    }

    /// The test CA (TLS mode), to issue more certificates from (an nginx front, a storage host).
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    /// A directory holding the CA as `ca.crt`, the layout `skopeo --cert-dir` and
    /// `/etc/containers/certs.d/<host>/` use (TLS mode).
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(|ca| ca.cert_dir().to_path_buf())
    }

    /// The token issuer, in token mode.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.token_issuer.as_ref()
    }

    /// The number of distinct blobs stored (files named `data` under `blobs/`).
    pub fn stored_blob_count(&self) -> usize {
        fn walk(dir: &Path, count: &mut usize) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, count);
                    } else if p.file_name().is_some_and(|n| n == "data") {
                        *count += 1;
                    }
                }
            }
        }
        let mut count = 0;
        walk(&self.storage().join("docker/registry/v2/blobs"), &mut count);
        count
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET; returns the status code.
pub fn http_status(host: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad answer {head:?}")))
}
