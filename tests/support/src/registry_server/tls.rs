//! A test certificate authority made with the `openssl` command line tool: a self-signed CA
//! and server certificates it signs, for `127.0.0.1`, `localhost` or any other names. The CA
//! is what a private registry's users pass as `--ca-file`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::require_tool;

/// A CA's certificate and key on disk.
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A server certificate and its key (PEM).
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new(require_tool("openssl"))
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

impl TestCa {
    /// Creates a CA named `common_name` in `dir` (`certs/ca.crt`, `ca.key`), valid for two
    /// days.
    pub fn create(dir: &Path, common_name: &str) -> Self {
        // The certificate alone in its directory: skopeo's --cert-dir takes every `*.key` there
        // for a client key.
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).expect("CA dir");
        let cert = certs.join("ca.crt");
        let key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={common_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            path(&key),
            "-out",
            path(&cert),
        ]);
        Self {
            dir: certs,
            cert,
            key,
        }
    }

    /// The CA certificate (PEM): the `--ca-file` of the servers it signed.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The directory holding `ca.crt` alone: what `skopeo --cert-dir` reads (`*.crt` files
    /// are CAs there).
    pub fn cert_dir(&self) -> &Path {
        &self.dir
    }

    /// Issues a server certificate for `names` (IP addresses and DNS names) into `dir`
    /// (`server.crt`, `server.key`).
    pub fn issue(&self, dir: &Path, names: &[&str]) -> ServerCert {
        std::fs::create_dir_all(dir).expect("cert dir");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.crt");
        let ext = dir.join("server.ext");
        let alt_names: Vec<String> = names
            .iter()
            .map(|name| {
                if name.parse::<std::net::IpAddr>().is_ok() {
                    format!("IP:{name}")
                } else {
                    format!("DNS:{name}")
                }
            })
            .collect();
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                alt_names.join(",")
            ),
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={}", names.first().copied().unwrap_or("localhost")),
            "-keyout",
            path(&key),
            "-out",
            path(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.cert),
            "-CAkey",
            path(&self.key),
            "-CAserial",
            path(&self.key.with_extension("srl")),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            path(&ext),
            "-out",
            path(&cert),
        ]);
        ServerCert { cert, key }
    }
}
