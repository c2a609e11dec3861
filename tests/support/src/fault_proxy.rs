//! A fault-injecting HTTP proxy for tests: sits in front of a registry on 127.0.0.1 and, driven
//! by a seeded generator and a bounded budget, drops connections (before or after the upstream
//! handled the request), answers 500, or answers 429 with `Retry-After`. It can also fail every
//! request after the first N, to simulate an interrupted transfer.
//!
//! One request per connection: the proxy adds `Connection: close` both ways, so every request
//! is seen and decided on separately.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does wrong, and how often.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Seed of the fault generator (same seed, same decisions in the same order).
    pub seed: u64,
    /// Chance of a fault per request, in percent.
    pub fault_percent: u32,
    /// At most this many random faults in total; afterwards everything passes.
    pub max_faults: u64,
    /// When set, every request after the first N is answered with a dropped connection.
    pub fail_after_requests: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            fault_percent: 20,
            max_faults: 40,
            fail_after_requests: None,
        }
    }
}

/// Counts of what happened.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub requests: AtomicU64,
    pub dropped_before: AtomicU64,
    pub dropped_after: AtomicU64,
    pub status_500: AtomicU64,
    pub status_429: AtomicU64,
    pub forwarded: AtomicU64,
}

impl FaultStats {
    /// Random faults injected (not counting `fail_after_requests` refusals).
    pub fn faults(&self) -> u64 {
        self.dropped_before.load(Ordering::Relaxed)
            + self.dropped_after.load(Ordering::Relaxed)
            + self.status_500.load(Ordering::Relaxed)
            + self.status_429.load(Ordering::Relaxed)
    }
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    stats: Arc<FaultStats>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    DropBefore,
    DropAfter,
    Status500,
    Status429,
}

struct Decider {
    state: u64,
    config: FaultConfig,
    faults: u64,
    requests: u64,
}

impl Decider {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `Err(())` = refuse (interrupted mode); `Ok(Some)` = fault; `Ok(None)` = forward.
    fn decide(&mut self) -> Result<Option<Fault>, ()> {
        self.requests += 1;
        if let Some(n) = self.config.fail_after_requests
            && self.requests > n
        {
            return Err(());
        }
        let roll = self.next();
        if self.faults >= self.config.max_faults || (roll % 100) as u32 >= self.config.fault_percent
        {
            return Ok(None);
        }
        self.faults += 1;
        Ok(Some(match (roll >> 8) % 4 {
            0 => Fault::DropBefore,
            1 => Fault::DropAfter,
            2 => Fault::Status500,
            _ => Fault::Status429,
        }))
    }
}

impl FaultProxy {
    /// Proxies 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub fn start(upstream: &str, config: FaultConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(FaultStats::default());
        let decider = Arc::new(Mutex::new(Decider {
            state: config.seed.max(1),
            config,
            faults: 0,
            requests: 0,
        }));
        let upstream = upstream.to_string();
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let upstream = upstream.clone();
                            let stats = stats.clone();
                            let decider = decider.clone();
                            workers.push(std::thread::spawn(move || {
                                let _ = handle(client, &upstream, &stats, &decider);
                            }));
                            workers.retain(|w: &JoinHandle<()>| !w.is_finished());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        FaultProxy {
            port,
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads a message head (up to the blank line); returns head and any body bytes read after it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 256 * 1024 {
            return Err(std::io::Error::other("head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "eof in head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Rewrites the head: drops `Connection`/`Keep-Alive`, adds `Connection: close`.
fn close_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn content_length(head: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn handle(
    mut client: TcpStream,
    upstream: &str,
    stats: &FaultStats,
    decider: &Mutex<Decider>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, mut body) = read_head(&mut client)?;
    let want = content_length(&head) as usize;
    while body.len() < want {
        let mut chunk = vec![0u8; (want - body.len()).min(1 << 20)];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let decision = decider.lock().expect("decider").decide();
    let fault = match decision {
        Err(()) => {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Ok(f) => f,
    };
    match fault {
        Some(Fault::DropBefore) => {
            stats.dropped_before.fetch_add(1, Ordering::Relaxed);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Status500) => {
            stats.status_500.fetch_add(1, Ordering::Relaxed);
            let body = "injected fault";
            write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return Ok(());
        }
        Some(Fault::Status429) => {
            stats.status_429.fetch_add(1, Ordering::Relaxed);
            write!(
                client,
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(&close_head(&head))?;
    up.write_all(&body)?;
    up.flush()?;
    let (resp_head, mut resp_rest) = read_head(&mut up)?;
    up.read_to_end(&mut resp_rest)?;
    if let Some(Fault::DropAfter) = fault {
        // The upstream did the work; the client never hears about it.
        stats.dropped_after.fetch_add(1, Ordering::Relaxed);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    stats.forwarded.fetch_add(1, Ordering::Relaxed);
    client.write_all(&close_head(&resp_head))?;
    client.write_all(&resp_rest)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}
