//! Which scheme a registry is spoken to with.
//!
//! Every host is tried over HTTPS first, private and loopback addresses included, with
//! certificate verification on. Plain HTTP is used only
//! - with `--plain-http` ([`crate::net::HttpOptions::plain_http`]), or
//! - for a loopback, private or `.local` address ([`may_fall_back_to_http`]) whose server does
//!   not answer the TLS handshake in TLS, as docker does for insecure registries; kantup says
//!   so in a warning.
//!
//! A server that speaks TLS with a certificate kantup does not trust is never retried in plain
//! HTTP: that is an error naming the host and `--ca-file`.

use std::net::IpAddr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// TLS.
    Https,
    /// Plain HTTP (`--plain-http`, or a local address without TLS).
    Http,
}

impl Scheme {
    /// `"https"` or `"http"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `host` (optionally with `:port`) may fall back to plain HTTP after its TLS
/// handshake fails: `localhost`, loopback (`127.*`, `::1`), RFC 1918 private (`10.*`,
/// `172.16-31.*`, `192.168.*`), IPv6 unique-local (`fc00::/7`) and `*.local` names.
///
/// ```
/// use kantup_registry::scheme::may_fall_back_to_http;
/// assert!(may_fall_back_to_http("127.0.0.1:5000"));
/// assert!(may_fall_back_to_http("10.16.10.111"));
/// assert!(!may_fall_back_to_http("registry.example.com"));
/// ```
pub fn may_fall_back_to_http(host: &str) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".local") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.is_unique_local(),
        Err(_) => false,
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port or [v6]
        return rest.split(']').next().unwrap_or(rest);
    }
    // A bare IPv6 address has several colons and no port.
    if host.matches(':').count() > 1 {
        return host;
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_table() {
        let cases = [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1", true),
            ("127.1.2.3:443", true),
            ("[::1]:5000", true),
            ("::1", true),
            ("[fd00::5]:5000", true),
            ("10.0.0.5:5000", true),
            ("10.16.10.111", true),
            ("172.16.0.1", true),
            ("172.31.255.255:80", true),
            ("172.32.0.1", false),
            ("172.15.0.1", false),
            ("192.168.1.10:5000", true),
            ("192.169.1.10", false),
            ("registry.local", true),
            ("registry.local:5000", true),
            ("registry.localdomain", false),
            ("docker.io", false),
            ("harbor.example.com:8443", false),
            ("8.8.8.8", false),
            ("[2001:db8::1]:5000", false),
        ];
        for (host, want) in cases {
            assert_eq!(may_fall_back_to_http(host), want, "host {host}");
        }
    }
}
