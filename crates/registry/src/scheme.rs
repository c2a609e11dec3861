//! Which scheme (https or http) to use for a registry host.

use std::net::IpAddr;

/// Returns `"http"` for hosts go-containerregistry treats as local (`localhost`, loopback
/// `127.*` and `::1`, RFC 1918 `10.*`, `172.16-31.*`, `192.168.*`, and `*.local`), else
/// `"https"`. `host` may carry a port (`127.0.0.1:5000`, `[::1]:5000`).
///
/// ```
/// use kantup_registry::scheme::default_scheme;
/// assert_eq!(default_scheme("127.0.0.1:5000"), "http");
/// assert_eq!(default_scheme("registry.example.com"), "https");
/// ```
pub fn default_scheme(host: &str) -> &'static str {
    if is_local(host) { "http" } else { "https" }
}

/// Whether `host` (optionally with `:port`) is a loopback, private or `.local` address.
pub fn is_local(host: &str) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".local") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback(),
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
    fn scheme_table() {
        let cases = [
            ("localhost", "http"),
            ("localhost:5000", "http"),
            ("127.0.0.1", "http"),
            ("127.1.2.3:443", "http"),
            ("[::1]:5000", "http"),
            ("::1", "http"),
            ("10.0.0.5:5000", "http"),
            ("172.16.0.1", "http"),
            ("172.31.255.255:80", "http"),
            ("172.32.0.1", "https"),
            ("172.15.0.1", "https"),
            ("192.168.1.10:5000", "http"),
            ("192.169.1.10", "https"),
            ("registry.local", "http"),
            ("registry.local:5000", "http"),
            ("registry.localdomain", "https"),
            ("docker.io", "https"),
            ("harbor.example.com:8443", "https"),
            ("8.8.8.8", "https"),
        ];
        for (host, want) in cases {
            assert_eq!(default_scheme(host), want, "host {host}");
        }
    }
}
