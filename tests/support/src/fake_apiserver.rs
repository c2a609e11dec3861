//! A small fake Kubernetes API server for tests that cannot reach a real cluster: plain HTTP on
//! 127.0.0.1, one request per connection, answering from a route table with bodies shaped like
//! a real API server's (Namespace, SelfSubjectAccessReview, SecretList, CustomResourceDefinition,
//! `Status` for errors). Every request is recorded so a test can prove what was (not) written.
//!
//! Routes match on method and path (the query string is recorded, not matched); anything not
//! routed gets the API server's `404 NotFound` Status. A SelfSubjectAccessReview `POST` is
//! always allowed unless a route overrides it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const SSAR_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
/// Bodies beyond this are not something a kantup test sends.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// True for anything that could change the cluster: every PATCH, PUT, DELETE, and every
    /// POST except a SelfSubjectAccessReview (which only asks a question).
    pub fn is_write(&self) -> bool {
        match self.method.as_str() {
            "GET" | "HEAD" | "OPTIONS" => false,
            "POST" => self.path != SSAR_PATH,
            _ => true,
        }
    }
}

/// Computes a response from the request and every request seen before it (oldest first), for
/// state that changes as the client writes (e.g. a CRD that exists once it was applied).
pub type Responder = Arc<dyn Fn(&SeenRequest, &[SeenRequest]) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
enum Reply {
    Fixed(u16, String),
    Computed(Responder),
}

#[derive(Clone)]
struct Route {
    method: String,
    path: String,
    reply: Reply,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    seen: Vec<SeenRequest>,
}

/// The running server; stopped when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Starts the server on an OS-assigned port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = thread_state.clone();
                        std::thread::spawn(move || serve(stream, &state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
        });
        Self {
            addr,
            state,
            stop,
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `method path` (path without query) with `status` and a JSON `body`; a later
    /// route for the same method and path replaces the earlier one.
    pub fn route(&self, method: &str, path: &str, status: u16, body: impl Into<String>) {
        self.add_route(method, path, Reply::Fixed(status, body.into()));
    }

    /// Answers `method path` with whatever `responder` computes at request time.
    pub fn route_fn(
        &self,
        method: &str,
        path: &str,
        responder: impl Fn(&SeenRequest, &[SeenRequest]) -> (u16, String) + Send + Sync + 'static,
    ) {
        self.add_route(method, path, Reply::Computed(Arc::new(responder)));
    }

    fn add_route(&self, method: &str, path: &str, reply: Reply) {
        let mut state = self.state.lock().unwrap();
        state
            .routes
            .retain(|r| !(r.method == method && r.path == path));
        state.routes.push(Route {
            method: method.to_string(),
            path: path.to_string(),
            reply,
        });
    }

    /// Serves `GET /api/v1/namespaces/NAME` as an existing, active namespace.
    pub fn namespace(&self, name: &str) {
        self.route(
            "GET",
            &format!("/api/v1/namespaces/{name}"),
            200,
            format!(
                r#"{{"kind":"Namespace","apiVersion":"v1","metadata":{{"name":"{name}","uid":"4f1c2b7e-0000-4000-8000-000000000001","resourceVersion":"1","labels":{{"kubernetes.io/metadata.name":"{name}"}}}},"spec":{{"finalizers":["kubernetes"]}},"status":{{"phase":"Active"}}}}"#
            ),
        );
    }

    /// Serves `GET /api/v1/namespaces/NS/secrets` (any label selector) as a `SecretList`
    /// holding `items` (each a Secret JSON object).
    pub fn secrets(&self, namespace: &str, items: &[String]) {
        self.route(
            "GET",
            &format!("/api/v1/namespaces/{namespace}/secrets"),
            200,
            format!(
                r#"{{"kind":"SecretList","apiVersion":"v1","metadata":{{"resourceVersion":"100"}},"items":[{}]}}"#,
                items.join(",")
            ),
        );
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests that could have changed the cluster (see [`SeenRequest::is_write`]).
    pub fn writes(&self) -> Vec<SeenRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_write())
            .collect()
    }

    /// Writes a kubeconfig whose current context points at this server without credentials.
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The API server's `404 NotFound` Status for a path.
pub fn not_found_status(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or_default();
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"the server could not find the requested resource ({path})","reason":"NotFound","details":{{"name":"{name}"}},"code":404}}"#
    )
}

fn ssar_allowed() -> String {
    r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{},"status":{"allowed":true,"reason":"fake API server allows everything"}}"#.to_string()
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length.min(MAX_BODY)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let request = SeenRequest {
        method: method.clone(),
        path: path.clone(),
        query,
        body,
    };
    let (route, earlier) = {
        let mut state = state.lock().unwrap();
        let earlier = state.seen.clone();
        state.seen.push(request.clone());
        let route = state
            .routes
            .iter()
            .find(|r| r.method == method && r.path == path)
            .map(|r| r.reply.clone());
        (route, earlier)
    };
    // A computed reply runs outside the lock: it may inspect the file system at leisure.
    let (status, reply) = match route {
        Some(Reply::Fixed(status, body)) => (status, body),
        Some(Reply::Computed(responder)) => responder(&request, &earlier),
        None if method == "POST" && path == SSAR_PATH => (201, ssar_allowed()),
        None => (404, not_found_status(&path)),
    };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        _ => "Status",
    };
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = out.flush();
}

/// A Helm release Secret as Helm's secret driver stores it (`sh.helm.release.v1.NAME.vREV`,
/// type `helm.sh/release.v1`, labels `owner=helm,name,status,version`). `release_data` is the
/// Helm-encoded release (`base64(gzip(json))`, e.g. from `kantup_k8s_apply::release::
/// encode_release`); the Secret API's own base64 is added here.
pub fn helm_release_secret(
    namespace: &str,
    name: &str,
    revision: u32,
    status: &str,
    release_data: &str,
) -> String {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(release_data);
    format!(
        r#"{{"kind":"Secret","apiVersion":"v1","metadata":{{"name":"sh.helm.release.v1.{name}.v{revision}","namespace":"{namespace}","resourceVersion":"{rv}","labels":{{"owner":"helm","name":"{name}","status":"{status}","version":"{revision}"}}}},"type":"helm.sh/release.v1","data":{{"release":"{data}"}}}}"#,
        rv = 10 + revision
    )
}
