//! `kantup crds apply`, `values backup` and `preflight` end to end over HTTP against a small
//! scripted API server on 127.0.0.1 (no Kubernetes API server can run here; the requests and
//! answers follow the Kubernetes API reference, see crates/k8s-apply/tests/fixtures).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

type Route = dyn Fn(&str, &str, &[u8]) -> (u16, Value) + Send + Sync;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    content_type: Option<String>,
}

/// The fake API server; stops when dropped.
struct FakeApi {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl FakeApi {
    fn start(route: Box<Route>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::from(route);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (route, seen) = (route.clone(), seen2.clone());
                std::thread::spawn(move || serve(stream, &*route, &seen));
            }
        });
        FakeApi { port, seen, stop }
    }

    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: dev\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: dev, namespace: kant-system}}\ncurrent-context: fake\n",
                self.port
            ),
        )
        .unwrap();
        path
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, route: &Route, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // Bounded: a client keeps a connection for at most a few hundred requests in these tests.
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (mut length, mut content_type) = (0usize, None);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            content_type,
        });
        let (status, answer) = route(&method, &target, &body);
        let bytes = serde_json::to_vec(&answer).unwrap();
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s-apply/tests/fixtures")
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

fn not_found(name: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("customresourcedefinitions.apiextensions.k8s.io \"{name}\" not found"),
               "reason": "NotFound", "code": 404}),
    )
}

/// A CRD as the server holds it after apply: the manifest plus accepted conditions.
fn established(manifest: &Value) -> Value {
    let mut crd = manifest.clone();
    crd["metadata"]["resourceVersion"] = json!("77");
    crd["status"] = json!({"storedVersions": ["v1"], "acceptedNames": crd["spec"]["names"].clone(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}]});
    crd
}

fn kantup(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .env_remove("HELM_DRIVER")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn crds_plan_and_apply_over_http() {
    let crds_dir = fixtures().join("crds");
    // widgets exists unchanged, the other two are new; PATCH answers with the applied object.
    let route = |method: &str, target: &str, body: &[u8]| -> (u16, Value) {
        let name = target
            .split('?')
            .next()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        match method {
            "GET" if name == "widgets.example.com" => {
                (200, fixture("crd-widgets-established.json"))
            }
            "GET" => not_found(&name),
            "PATCH" => (200, established(&serde_json::from_slice(body).unwrap())),
            _ => (405, json!({})),
        }
    };
    // The GET after a PATCH must see the applied CRD: remember what was applied.
    let applied: Arc<Mutex<Vec<String>>> = Arc::default();
    let applied2 = applied.clone();
    let api = FakeApi::start(Box::new(move |method: &str, target: &str, body: &[u8]| {
        if method == "PATCH" {
            let manifest: Value = serde_json::from_slice(body).unwrap();
            applied2.lock().unwrap().push(manifest.to_string());
            return route(method, target, body);
        }
        if method == "GET" {
            for manifest in applied2.lock().unwrap().iter() {
                let manifest: Value = serde_json::from_str(manifest).unwrap();
                if target.contains(manifest["metadata"]["name"].as_str().unwrap()) {
                    return (200, established(&manifest));
                }
            }
        }
        route(method, target, body)
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let kc = kubeconfig.to_str().unwrap();
    let dir_arg = crds_dir.to_str().unwrap();

    let out = kantup(&[
        "crds",
        "apply",
        dir_arg,
        "--plan",
        "--kubeconfig",
        kc,
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plans: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<(String, String)> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("sprockets.example.com".to_string(), "new".to_string()),
            ("widgets.example.com".into(), "unchanged".into()),
            ("gadgets.example.com".into(), "new".into()),
        ]
    );
    assert!(
        api.seen().iter().all(|s| s.method == "GET"),
        "plan changed something"
    );

    let out = kantup(&["crds", "apply", dir_arg, "--kubeconfig", kc]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in [
        "sprockets.example.com",
        "widgets.example.com",
        "gadgets.example.com",
    ] {
        assert!(stdout.contains(name), "{stdout}");
    }
    let patches: Vec<Seen> = api
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 3);
    for patch in patches {
        assert!(patch.target.contains("fieldManager=kantup"), "{patch:?}");
        assert!(!patch.target.contains("force="), "{patch:?}");
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
}

#[test]
fn invalid_crds_fail_before_any_request_naming_the_file() {
    let api = FakeApi::start(Box::new(|_: &str, _: &str, _: &[u8]| (500, json!({}))));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let crds = dir.path().join("crds");
    std::fs::create_dir(&crds).unwrap();
    std::fs::write(
        crds.join("a.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = kantup(&[
        "crds",
        "apply",
        crds.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a.yaml: document 0: expected apiextensions.k8s.io/v1 CustomResourceDefinition, found v1 Service"), "{stderr}");
    assert!(api.seen().is_empty());

    let missing = dir.path().join("no-such-kubeconfig");
    let out = kantup(&[
        "preflight",
        "-r",
        "kant",
        "--kubeconfig",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-kubeconfig"),
        "{}",
        text(&out.stderr)
    );
}

fn release_record(version: u32, status: &str, chart_version: &str) -> Value {
    let release: kantup_k8s_apply::release::Release = serde_json::from_value(json!({
        "name": "kant", "namespace": "kant-system", "version": version,
        "info": {"status": status, "description": "Install complete"},
        "chart": {"metadata": {"name": "kant", "version": chart_version},
                  "values": {"image": {"repository": "nginx", "tag": ""}, "replicaCount": 1}},
        "config": {"image": {"tag": "1.2.3"}, "replicaCount": 2}
    }))
    .unwrap();
    json!({
        "metadata": {"name": format!("sh.helm.release.v1.kant.v{version}"), "namespace": "kant-system",
                     "labels": {"owner": "helm", "name": "kant", "status": status, "version": version.to_string()}},
        "data": {"release": kantup_k8s_apply::release::encode_release(&release).unwrap()}
    })
}

fn helm_api(statuses: &'static [&'static str]) -> FakeApi {
    FakeApi::start(Box::new(move |method: &str, target: &str, _: &[u8]| {
        let path = target.split('?').next().unwrap();
        match (method, path) {
            ("GET", "/api/v1/namespaces/kant-system/configmaps") => {
                let items: Vec<Value> = statuses
                    .iter()
                    .enumerate()
                    .map(|(i, s)| release_record(i as u32 + 1, s, "1.0.0"))
                    .collect();
                (
                    200,
                    json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": items}),
                )
            }
            ("GET", "/api/v1/namespaces/kant-system") => {
                (200, fixture("namespace-kant-system.json"))
            }
            ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => (
                201,
                json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                       "metadata": {}, "spec": {}, "status": {"allowed": true}}),
            ),
            _ => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": format!("{path} not found")}),
            ),
        }
    }))
}

#[test]
fn values_backup_writes_what_helm_get_values_prints() {
    let api = helm_api(&["superseded", "deployed"]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let file = dir.path().join("bak.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args([
            "values",
            "backup",
            "-r",
            "kant",
            "-f",
            file.to_str().unwrap(),
        ])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .env("HELM_DRIVER", "configmap")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "image:\n  tag: 1.2.3\nreplicaCount: 2\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The namespace came from the kubeconfig context.
    assert!(api.seen().iter().any(|s| {
        s.target
            .contains("labelSelector=owner%3Dhelm%2Cname%3Dkant")
    }));

    let out = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args([
            "values",
            "backup",
            "-r",
            "kant",
            "--all",
            "-o",
            "json",
            "--revision",
            "1",
        ])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .env("HELM_DRIVER", "configmap")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["revision"], 1);
    assert_eq!(
        result["values"],
        json!({"image": {"tag": "1.2.3", "repository": "nginx"}, "replicaCount": 2})
    );
}

#[test]
fn preflight_passes_an_upgrade_and_fails_a_downgrade() {
    let api = helm_api(&["superseded", "deployed"]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let run = |version: &str| {
        Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args([
                "preflight",
                "-r",
                "kant",
                "-n",
                "kant-system",
                "--chart-version",
                version,
            ])
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--helm-driver",
                "configmap",
            ])
            .output()
            .unwrap()
    };
    let out = run("1.1.0");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("upgrade 1.0.0 -> 1.1.0"),
        "{}",
        text(&out.stdout)
    );

    let out = run("0.9.0");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains("0.9.0 is lower than the deployed 1.0.0"),
        "{stdout}"
    );
    assert!(stdout.contains("--allow-downgrade"), "{stdout}");
}
