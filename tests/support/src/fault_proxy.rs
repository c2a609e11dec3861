//! A fault-injecting HTTP proxy for tests: sits in front of a registry on 127.0.0.1 and, driven
//! by a seeded generator and a bounded budget, drops connections (before the upstream sees the
//! request, in the middle of its body, or after the upstream handled it), answers 500, or
//! answers 429 with `Retry-After` (the seed picks which requests; the kinds come in turn). It
//! can also fail every request after the first N (a network that dies), hold every request
//! with a body once N body bytes went through (a network that hangs: nothing more reaches the
//! registry), refuse everything while set down, and hand requests to a [`Tamper`] function
//! that answers or rewrites them (a registry that misbehaves in ways docker-registry cannot be
//! made to).
//!
//! Bodies are streamed, never held whole, and the request body bytes that reached the upstream
//! are counted ([`FaultStats::body_bytes_forwarded`]).
//!
//! One request per connection: the proxy adds `Connection: close` both ways, so every request
//! is seen and decided on separately. Request bodies must carry `Content-Length` (kantup's and
//! curl's do); chunked request bodies are not supported.

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
    /// Percent of requests with a body cut in the middle of it (half the body reaches the
    /// upstream, then both connections close), on top of `fault_percent` and outside its
    /// `max_faults` budget.
    pub mid_body_percent: u32,
    /// When set, once this many request body bytes reached the upstream, every further
    /// request with a body is held: read from the client but never forwarded nor answered,
    /// until the proxy is dropped.
    pub stall_after_body_bytes: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            fault_percent: 20,
            max_faults: 40,
            fail_after_requests: None,
            mid_body_percent: 0,
            stall_after_body_bytes: None,
        }
    }
}

impl FaultConfig {
    /// No faults at all: a counting pass-through (combine with the other fields).
    pub fn clean() -> Self {
        Self {
            fault_percent: 0,
            max_faults: 0,
            ..Self::default()
        }
    }
}

/// Counts of what happened.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub requests: AtomicU64,
    pub dropped_before: AtomicU64,
    /// Connections cut after part of the request body reached the upstream.
    pub dropped_mid_body: AtomicU64,
    pub dropped_after: AtomicU64,
    pub status_500: AtomicU64,
    pub status_429: AtomicU64,
    pub forwarded: AtomicU64,
    /// Requests held by `stall_after_body_bytes`.
    pub stalled: AtomicU64,
    /// Requests answered or rewritten by the [`Tamper`] function.
    pub tampered: AtomicU64,
    /// Request body bytes that reached the upstream (what the registry received).
    pub body_bytes_forwarded: AtomicU64,
}

impl FaultStats {
    /// Random faults injected (not counting `fail_after_requests` refusals or stalls).
    pub fn faults(&self) -> u64 {
        self.dropped_before.load(Ordering::Relaxed)
            + self.dropped_mid_body.load(Ordering::Relaxed)
            + self.dropped_after.load(Ordering::Relaxed)
            + self.status_500.load(Ordering::Relaxed)
            + self.status_429.load(Ordering::Relaxed)
    }

    /// Request body bytes that reached the upstream so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes_forwarded.load(Ordering::Relaxed)
    }
}

/// The request line of a request the proxy handles.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
}

/// A response as the proxy received it from the upstream, for a [`Tamper`] to edit.
#[derive(Debug, Clone)]
pub struct ResponseParts {
    /// `HTTP/1.1 200 OK`.
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ResponseParts {
    /// Sets (replaces) a header, case-insensitively.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`Tamper`] function does with a request.
pub enum TamperAction {
    /// Forward it untouched (faults still apply).
    Forward,
    /// Do not forward; answer these raw bytes (status line, headers, body: anything, a lie
    /// included) and close.
    Respond(Vec<u8>),
    /// Forward it, then let the function edit the whole response before the client sees it
    /// (`Content-Length` is set to the edited body's length unless the function set one).
    Edit(Box<dyn FnOnce(&mut ResponseParts) + Send>),
}

/// Decides, per request, what the proxy does instead of forwarding faithfully.
pub type Tamper = Arc<dyn Fn(&RequestHead) -> TamperAction + Send + Sync>;

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    /// `stall_after_body_bytes`, `u64::MAX` for none.
    stall_after: Arc<AtomicU64>,
    stats: Arc<FaultStats>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    DropBefore,
    DropMidBody,
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
    fn decide(&mut self, has_body: bool) -> Result<Option<Fault>, ()> {
        self.requests += 1;
        if let Some(n) = self.config.fail_after_requests
            && self.requests > n
        {
            return Err(());
        }
        let roll = self.next();
        if has_body && ((roll >> 16) % 100) < u64::from(self.config.mid_body_percent) {
            return Ok(Some(Fault::DropMidBody));
        }
        if self.faults >= self.config.max_faults || (roll % 100) as u32 >= self.config.fault_percent
        {
            return Ok(None);
        }
        // The kinds in turn, so that every kind shows up once a few faults were injected.
        let kind = self.faults % 5;
        self.faults += 1;
        Ok(Some(match kind {
            0 => Fault::DropBefore,
            1 => Fault::DropMidBody,
            2 => Fault::DropAfter,
            3 => Fault::Status500,
            _ => Fault::Status429,
        }))
    }
}

struct Shared {
    upstream: String,
    stats: Arc<FaultStats>,
    decider: Mutex<Decider>,
    stall_after: Arc<AtomicU64>,
    tamper: Option<Tamper>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Proxies 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub fn start(upstream: &str, config: FaultConfig) -> Self {
        Self::start_with(upstream, config, None)
    }

    /// Like [`FaultProxy::start`], with every request first shown to `tamper`.
    pub fn start_tampering(upstream: &str, config: FaultConfig, tamper: Tamper) -> Self {
        Self::start_with(upstream, config, Some(tamper))
    }

    fn start_with(upstream: &str, config: FaultConfig, tamper: Option<Tamper>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(FaultStats::default());
        let stall_after = Arc::new(AtomicU64::new(
            config.stall_after_body_bytes.unwrap_or(u64::MAX),
        ));
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            stats: stats.clone(),
            stall_after: stall_after.clone(),
            decider: Mutex::new(Decider {
                state: config.seed.max(1),
                config,
                faults: 0,
                requests: 0,
            }),
            tamper,
            stop: stop.clone(),
        });
        let thread = {
            let stop = stop.clone();
            let down = down.clone();
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) if down.load(Ordering::Relaxed) => {
                            let _ = client.shutdown(Shutdown::Both);
                        }
                        Ok((client, _)) => {
                            let shared = shared.clone();
                            workers.push(std::thread::spawn(move || {
                                let _ = handle(client, &shared);
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
            down,
            stall_after,
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

    /// Changes [`FaultConfig::stall_after_body_bytes`] for the requests that come next
    /// (`None`: the network flows again; requests already held stay held).
    pub fn set_stall_after(&self, body_bytes: Option<u64>) {
        self.stall_after
            .store(body_bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// While set, every new connection is closed at once (a registry that is down).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
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

fn request_head(head: &[u8]) -> RequestHead {
    let text = String::from_utf8_lossy(head);
    let mut parts = text.lines().next().unwrap_or_default().split_whitespace();
    RequestHead {
        method: parts.next().unwrap_or_default().to_string(),
        target: parts.next().unwrap_or_default().to_string(),
    }
}

/// Copies `want` body bytes (after `already`, the ones read with the head) from the client to
/// `sink`, counting those that reached the upstream; stops after `limit` bytes when given.
fn copy_body(
    client: &mut TcpStream,
    already: &[u8],
    want: u64,
    limit: Option<u64>,
    sink: &mut dyn Write,
    counter: Option<&AtomicU64>,
) -> std::io::Result<u64> {
    let stop_at = limit.unwrap_or(want).min(want);
    let mut sent = 0u64;
    let first = (already.len() as u64).min(stop_at) as usize;
    sink.write_all(&already[..first])?;
    sent += first as u64;
    if let Some(c) = counter {
        c.fetch_add(first as u64, Ordering::Relaxed);
    }
    let mut buf = vec![0u8; 256 * 1024];
    while sent < stop_at {
        let n = ((stop_at - sent) as usize).min(buf.len());
        let got = client.read(&mut buf[..n])?;
        if got == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "client closed mid-body",
            ));
        }
        sink.write_all(&buf[..got])?;
        sent += got as u64;
        if let Some(c) = counter {
            c.fetch_add(got as u64, Ordering::Relaxed);
        }
    }
    Ok(sent)
}

fn handle(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let stats = &shared.stats;
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, body_start) = read_head(&mut client)?;
    let want = content_length(&head);
    let request = request_head(&head);
    stats.requests.fetch_add(1, Ordering::Relaxed);

    if want > 0 && stats.body_bytes() >= shared.stall_after.load(Ordering::Relaxed) {
        // A network that hangs: the request goes nowhere and nothing comes back.
        stats.stalled.fetch_add(1, Ordering::Relaxed);
        let mut sink = std::io::sink();
        let _ = copy_body(&mut client, &body_start, want, None, &mut sink, None);
        while !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok(());
    }

    let action = match &shared.tamper {
        Some(tamper) => tamper(&request),
        None => TamperAction::Forward,
    };
    if let TamperAction::Respond(raw) = action {
        stats.tampered.fetch_add(1, Ordering::Relaxed);
        let mut sink = std::io::sink();
        let _ = copy_body(&mut client, &body_start, want, None, &mut sink, None);
        client.write_all(&raw)?;
        client.flush()?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }

    let decision = shared.decider.lock().expect("decider").decide(want > 0);
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
            let mut sink = std::io::sink();
            let _ = copy_body(&mut client, &body_start, want, None, &mut sink, None);
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
            let mut sink = std::io::sink();
            let _ = copy_body(&mut client, &body_start, want, None, &mut sink, None);
            write!(
                client,
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(&shared.upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(120)))?;
    up.write_all(&close_head(&head))?;
    if let Some(Fault::DropMidBody) = fault {
        // Half the body reaches the registry, then both connections die.
        stats.dropped_mid_body.fetch_add(1, Ordering::Relaxed);
        let _ = copy_body(
            &mut client,
            &body_start,
            want,
            Some(want / 2),
            &mut up,
            Some(&stats.body_bytes_forwarded),
        );
        let _ = up.flush();
        let _ = up.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    copy_body(
        &mut client,
        &body_start,
        want,
        None,
        &mut up,
        Some(&stats.body_bytes_forwarded),
    )?;
    up.flush()?;
    if let Some(Fault::DropAfter) = fault {
        // The upstream does the work; the client never hears about it.
        let mut sink = std::io::sink();
        let _ = std::io::copy(&mut up, &mut sink);
        stats.dropped_after.fetch_add(1, Ordering::Relaxed);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let (resp_head, resp_start) = read_head(&mut up)?;
    if let TamperAction::Edit(edit) = action {
        stats.tampered.fetch_add(1, Ordering::Relaxed);
        let mut body = resp_start;
        up.read_to_end(&mut body)?;
        let text = String::from_utf8_lossy(&resp_head).into_owned();
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let mut parts = ResponseParts {
            status_line: lines.next().unwrap_or_default().to_string(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.eq_ignore_ascii_case("connection"))
                .collect(),
            body,
        };
        let before = parts.header("content-length").map(str::to_string);
        edit(&mut parts);
        if request.method != "HEAD" && parts.header("content-length").map(str::to_string) == before
        {
            let len = parts.body.len().to_string();
            parts.set_header("Content-Length", &len);
        }
        let mut out = format!("{}\r\n", parts.status_line);
        for (k, v) in &parts.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        client.write_all(out.as_bytes())?;
        client.write_all(&parts.body)?;
        client.flush()?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    stats.forwarded.fetch_add(1, Ordering::Relaxed);
    client.write_all(&close_head(&resp_head))?;
    client.write_all(&resp_start)?;
    std::io::copy(&mut up, &mut client)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}
