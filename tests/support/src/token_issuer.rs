//! A small token server for distribution's `auth: token` mode: answers
//! `GET /token?service=..&scope=..` (basic auth checked) with an RS256 JWT whose `kid` is the
//! libtrust key ID of a key in the registry's `rootcertbundle`. Keys, certificate and
//! signatures come from the `openssl` command line tool.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::tools::require_tool;

/// A running token issuer; stopped on drop.
pub struct TokenIssuer {
    port: u16,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

const SERVICE: &str = "kantup-test-registry";
const ISSUER: &str = "kantup-test-issuer";

struct Config {
    key: PathBuf,
    kid: String,
    username: String,
    password: String,
}

impl TokenIssuer {
    /// Generates a key pair and certificate in `dir` and starts serving on 127.0.0.1.
    pub fn start(dir: &Path, username: &str, password: &str) -> Self {
        let openssl = require_tool("openssl");
        let key = dir.join("issuer-key.pem");
        let cert = dir.join("issuer-cert.pem");
        run(Command::new(&openssl)
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"));
        run(Command::new(&openssl)
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=kantup-test-issuer",
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run(Command::new(&openssl)
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key));
        let kid = libtrust_key_id(&der);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token issuer");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(Config {
            key,
            kid,
            username: username.into(),
            password: password.into(),
        });
        let thread = {
            let stop = stop.clone();
            let issued = issued.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                            if serve(stream, &config) {
                                issued.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TokenIssuer {
            port,
            cert,
            stop,
            issued,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn service(&self) -> &'static str {
        SERVICE
    }

    pub fn issuer(&self) -> &'static str {
        ISSUER
    }

    /// The certificate the registry trusts (`rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Tokens handed out so far.
    pub fn tokens_issued(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// libtrust's key ID: sha256 of the DER public key, first 240 bits, base32, in groups of
/// four joined by `:`.
pub fn libtrust_key_id(public_key_der: &[u8]) -> String {
    let hash = sha256(public_key_der);
    let encoded = base32(&hash[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":")
}

fn sha256(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(require_tool("openssl"))
        .args(["dgst", "-sha256", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("openssl dgst");
    assert_eq!(out.stdout.len(), 32);
    out.stdout
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Serves one request; true when a token was issued.
fn serve(stream: TcpStream, config: &Config) -> bool {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return false,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return false;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    let mut stream = stream;
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        let _ = respond(&mut stream, "404 Not Found", "{}");
        return false;
    }
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", config.username, config.password))
    );
    if authorization.as_deref() != Some(expected.as_str()) {
        let _ = respond(
            &mut stream,
            "401 Unauthorized",
            r#"{"error":"bad credentials"}"#,
        );
        return false;
    }
    let mut access = Vec::new();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "scope" {
            continue;
        }
        let scope = percent_decode(v);
        // repository:name/with/slashes:pull,push
        let mut parts = scope.splitn(2, ':');
        let kind = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("");
        if let Some((name, actions)) = rest.rsplit_once(':') {
            let actions: Vec<String> = actions.split(',').map(|a| format!("\"{a}\"")).collect();
            access.push(format!(
                r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                actions.join(",")
            ));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#, config.kid);
    let claims = format!(
        r#"{{"iss":"{ISSUER}","sub":"{}","aud":"{SERVICE}","exp":{},"nbf":{},"iat":{},"jti":"{}-{}","access":[{}]}}"#,
        config.username,
        now + 300,
        now - 10,
        now - 10,
        now,
        std::process::id(),
        access.join(",")
    );
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut child = match Command::new(require_tool("openssl"))
        .args(["dgst", "-sha256", "-sign"])
        .arg(&config.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes());
    let signature = match child.wait_with_output() {
        Ok(o) if o.status.success() => o.stdout,
        _ => return false,
    };
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let body = format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
    respond(&mut stream, "200 OK", &body).is_ok()
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("repository%3Aa%2Fb%3Apull%2Cpush"),
            "repository:a/b:pull,push"
        );
    }
}
