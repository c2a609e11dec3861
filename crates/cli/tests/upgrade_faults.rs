//! Faults the real API server cannot be made to produce, so these tests use a fake one (the
//! rest of the upgrade's tests run against the real kube-apiserver in `upgrade_cluster.rs`):
//! a 503 answer and a connection closed without an answer. Either way the upgrade stops with
//! one readable line naming the request, and nothing is written.

mod common;

use std::net::TcpListener;

use common::{KantChart, text};
use kantup_test_support::fake_apiserver::FakeApiServer;

fn upgrade(kubeconfig: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    let chart = KantChart::v050("faults.kant.test").write(dir);
    std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(["upgrade", chart.to_str().unwrap(), "--release", "kant"])
        .args(["-n", "kant-system", "--yes", "--helm"])
        .arg(kantup_test_support::helm3())
        .arg("--backup-dir")
        .arg(dir.join("backups"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .unwrap()
}

/// A real server answers 503 only when it is overloaded or its storage is down; the fake one
/// answers the release listing with a 503 Status.
#[test]
fn a_503_answer_stops_the_upgrade_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeApiServer::start();
    server.namespace("kant-system");
    server.route(
        "GET",
        "/api/v1/namespaces/kant-system/secrets",
        503,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: leader changed","reason":"ServiceUnavailable","code":503}"#,
    );
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig);
    let output = upgrade(&kubeconfig, dir.path());
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].contains("503 ServiceUnavailable: etcdserver: leader changed"),
        "{stderr}"
    );
    assert!(
        error_lines[0].contains("Secret"),
        "names the request: {stderr}"
    );
    assert!(!stderr.contains("Status {"), "no debug dump: {stderr}");
    assert!(!dir.path().join("backups").exists(), "nothing written");
    assert!(server.writes().is_empty(), "{:?}", server.writes());
    // Retried a few times within seconds (not kube's default of 15 retries over minutes).
    let listings = server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/kant-system/secrets")
        .count();
    assert_eq!(
        listings,
        1 + kantup_k8s_apply::API_RETRIES as usize,
        "{:?}",
        server.requests()
    );
}

/// A connection closed without an answer (a proxy or load balancer dropping it) cannot be
/// asked of a real server: a listener that accepts and closes stands in.
#[test]
fn a_dropped_connection_stops_the_upgrade_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let output = upgrade(&kubeconfig, dir.path());
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].contains("get Namespace kant-system"),
        "{stderr}"
    );
    assert!(
        error_lines[0].contains("hint: check that the API server in the kubeconfig is reachable"),
        "{stderr}"
    );
    assert!(!dir.path().join("backups").exists(), "nothing written");
}
