//! A scripted API server for tests: kube-rs's documented mock (`tower_test::mock::pair` wrapped
//! in `kube::Client::new`). Each request is recorded (method, path, query, content type, body)
//! and answered with the next scripted response; a request beyond the script fails the client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::pin::pin;

use base64::Engine;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the API server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A status response: the code is the fixture's `code` field (Status objects) or 200.
pub fn reply(body: Value) -> (u16, Value) {
    let code = body
        .get("code")
        .and_then(Value::as_u64)
        .filter(|_| body.get("kind") == Some(&json!("Status")))
        .unwrap_or(200) as u16;
    (code, body)
}

/// A client whose requests are answered from `script`, and a handle yielding what was seen.
pub fn scripted(script: Vec<(u16, Value)>) -> (kube::Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let mut seen = Vec::new();
        for (status, body) in script {
            let Some((request, send)) = handle.next_request().await else {
                break;
            };
            let (parts, body_in) = request.into_parts();
            let bytes = body_in.collect().await.expect("request body").to_bytes();
            let query = parts
                .uri
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            seen.push(Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query,
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_string()),
                body: bytes.to_vec(),
            });
            let response = Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        seen
    });
    (kube::Client::new(service, "default"), task)
}

/// `base64(gzip(json))` exactly as Helm's `encodeRelease` (gzip.BestCompression, StdEncoding),
/// written independently of the crate's own encoder.
pub fn helm_encode(release: &Value) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&serde_json::to_vec(release).unwrap()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// A release-record Secret as Helm's secret driver creates it (`newSecretsObject`): the API
/// returns `data` values base64-encoded once more.
pub fn helm_secret(release: &Value, status: &str) -> Value {
    let name = release["name"].as_str().unwrap();
    let version = release["version"].as_u64().unwrap();
    let namespace = release["namespace"].as_str().unwrap();
    let encoded = helm_encode(release);
    json!({
        "metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{version}"),
            "namespace": namespace,
            "uid": format!("00000000-0000-0000-0000-00000000000{version}"),
            "resourceVersion": format!("{}", 500 + version),
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "labels": {"modifiedAt": "1764064800", "name": name, "owner": "helm",
                       "status": status, "version": version.to_string()}
        },
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(encoded)},
        "type": "helm.sh/release.v1"
    })
}

/// The same record as Helm's configmap driver writes it (`data.release` is the text itself).
pub fn helm_configmap(release: &Value, status: &str) -> Value {
    let name = release["name"].as_str().unwrap();
    let version = release["version"].as_u64().unwrap();
    json!({
        "metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{version}"),
            "namespace": release["namespace"],
            "labels": {"name": name, "owner": "helm", "status": status,
                       "version": version.to_string()}
        },
        "data": {"release": helm_encode(release)}
    })
}

/// A list response page (`SecretList`/`ConfigMapList`) with an optional continue token.
pub fn list_page(kind: &str, items: Vec<Value>, next: Option<&str>) -> Value {
    let mut metadata = json!({"resourceVersion": "9000"});
    if let Some(token) = next {
        metadata["continue"] = json!(token);
    }
    json!({"kind": kind, "apiVersion": "v1", "metadata": metadata, "items": items})
}

/// A revision of the fixture release with the given revision number and status.
pub fn revision(
    fixture_name: &str,
    name: &str,
    namespace: &str,
    version: u64,
    status: &str,
) -> Value {
    let mut release = fixture(fixture_name);
    release["name"] = json!(name);
    release["namespace"] = json!(namespace);
    release["version"] = json!(version);
    release["info"]["status"] = json!(status);
    release
}

/// A SelfSubjectAccessReview answer.
pub fn access_review(allowed: bool, reason: &str) -> Value {
    json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
           "metadata": {"creationTimestamp": null},
           "spec": {"resourceAttributes": {}},
           "status": {"allowed": allowed, "reason": reason}})
}
