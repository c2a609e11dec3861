//! A registry that answers wrongly: a real docker-registry behind the fault proxy, whose
//! tamper hook rewrites the answers docker-registry would never give (a manifest over the size
//! limit, a wrong media type, a `Content-Length` that lies, an HTML page). Each case gets one
//! exact error and nothing is written: no chart file from `repo pull`, no blob or manifest in
//! the registry from `sync`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use kantup_test_support::fault_proxy::{
    FaultConfig, FaultProxy, RequestHead, ResponseParts, TamperAction,
};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::workspace_root;

use common::kantup_isolated as kantup;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The example bundle (chart `testchart` 0.1.0 and two images) in a directory of its own.
fn example_bundles(root: &Path) -> PathBuf {
    let dir = root.join("bundles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        dir.join("kant.bundle.tar"),
    )
    .unwrap();
    dir
}

fn sync_config(root: &Path, registry: &str, chart_repo: &str) -> PathBuf {
    let path = root.join(format!("load-image-{}.yaml", registry.replace(':', "_")));
    std::fs::write(
        &path,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {registry}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{chart_repo}/charts\n",
            example_bundles(root).display()
        ),
    )
    .unwrap();
    path
}

/// A registry holding the example bundle's images and chart (`charts/testchart:0.1.0`).
fn registry_with_chart(root: &Path) -> RegistryServer {
    let registry = RegistryServer::start();
    let config = sync_config(root, &registry.host(), &registry.host());
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "--plain-http"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    registry
}

const MANIFEST_PATH: &str = "/v2/charts/testchart/manifests/0.1.0";

/// `kantup repo pull` of the example chart through `proxy` into a fresh directory: the output
/// and whether anything was written there.
fn pull(root: &Path, proxy: &FaultProxy) -> (Output, Vec<PathBuf>) {
    let dest = root.join(format!("pulled-{}", proxy.host().replace(':', "_")));
    std::fs::create_dir_all(&dest).unwrap();
    let out = kantup(&[
        "repo",
        "pull",
        &format!("oci://{}/charts", proxy.host()),
        "testchart",
        "--version",
        "0.1.0",
        "-d",
        dest.to_str().unwrap(),
        "--plain-http",
    ]);
    let written = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    (out, written)
}

/// A proxy that lets `edit` rewrite the answer to the chart's manifest GET.
fn manifest_tamper(
    registry: &RegistryServer,
    edit: impl Fn(&mut ResponseParts) + Send + Sync + Clone + 'static,
) -> FaultProxy {
    FaultProxy::start_tampering(
        &registry.host(),
        FaultConfig::clean(),
        Arc::new(move |request: &RequestHead| {
            if request.method == "GET" && request.target == MANIFEST_PATH {
                let edit = edit.clone();
                TamperAction::Edit(Box::new(move |parts: &mut ResponseParts| edit(parts)))
            } else {
                TamperAction::Forward
            }
        }),
    )
}

fn refused_pull(root: &Path, proxy: &FaultProxy, want: &str) {
    let (out, written) = pull(root, proxy);
    let stderr = text(&out.stderr);
    eprintln!("repo pull: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
    assert!(written.is_empty(), "nothing written: {written:?}");
    assert!(
        proxy
            .stats()
            .tampered
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[test]
fn pull_refuses_bad_manifest_answers_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let registry = registry_with_chart(root.path());

    // The untouched answer pulls fine through the same proxy: the cases below fail because
    // of what was changed, nothing else.
    let clean = manifest_tamper(&registry, |_| {});
    let (out, written) = pull(root.path(), &clean);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(written.len(), 1, "{written:?}");

    // Over the 4 MiB manifest limit (valid JSON, padded with spaces).
    let huge = manifest_tamper(&registry, |parts| {
        parts.body.resize((4 << 20) + 1, b' ');
    });
    refused_pull(
        root.path(),
        &huge,
        &format!(
            "manifest {}/charts/testchart:0.1.0: the registry sends 4194305 bytes, more than the 4194304-byte limit of a manifest",
            huge.host()
        ),
    );

    // Served as a Docker manifest, while the manifest says it is an OCI one.
    let docker_type = manifest_tamper(&registry, |parts| {
        parts.set_header(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v2+json",
        );
    });
    refused_pull(
        root.path(),
        &docker_type,
        "served as \"application/vnd.docker.distribution.manifest.v2+json\" but the manifest says mediaType \"application/vnd.oci.image.manifest.v1+json\"",
    );

    // Not a manifest type at all.
    let octets = manifest_tamper(&registry, |parts| {
        parts.set_header("Content-Type", "application/octet-stream");
    });
    refused_pull(
        root.path(),
        &octets,
        "media type \"application/octet-stream\", not one of the manifest types asked for",
    );

    // A Content-Length larger than the body that comes.
    let short = manifest_tamper(&registry, |parts| {
        let claimed = (parts.body.len() + 100).to_string();
        parts.set_header("Content-Length", &claimed);
    });
    refused_pull(
        root.path(),
        &short,
        &format!(
            "GET http://{}{MANIFEST_PATH}: error decoding response body",
            short.host()
        ),
    );
    let (out, _) = pull(root.path(), &short);
    assert!(
        text(&out.stderr).contains("end of file before message length reached"),
        "{}",
        text(&out.stderr)
    );

    // A login page answering 200.
    let html = manifest_tamper(&registry, |parts| {
        parts.status_line = "HTTP/1.1 200 OK".into();
        parts.set_header("Content-Type", "text/html; charset=utf-8");
        parts.set_header("Docker-Content-Digest", "");
        parts.body =
            b"<html><head><title>Sign in</title></head><body>Sign in</body></html>".to_vec();
    });
    refused_pull(
        root.path(),
        &html,
        &format!(
            "GET http://{}{MANIFEST_PATH}: HTTP 200 with an HTML page, not a registry API answer (is this a registry, or a login page or proxy in front of it?)",
            html.host()
        ),
    );
}

/// `kantup sync` through `proxy` to an empty registry: it must fail (exit 1) with `want`, never
/// say "all skipped", and leave the registry without a blob.
fn refused_sync(root: &Path, registry: &RegistryServer, proxy: &FaultProxy, want: &str) {
    let config = sync_config(root, &proxy.host(), &registry.host());
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "--plain-http"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(want) || stderr.contains(want),
        "want {want:?} in:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("all skipped"), "{stdout}");
    assert_eq!(registry.stored_blob_count(), 0, "nothing written");
}

#[test]
fn sync_refuses_lying_blob_answers_and_html_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();

    // "I have this blob", with a size that is not the blob's: believed, it would make kantup
    // push a manifest whose blobs are not there.
    let registry = RegistryServer::start();
    let lying = FaultProxy::start_tampering(
        &registry.host(),
        FaultConfig::clean(),
        Arc::new(|request: &RequestHead| {
            if request.method == "HEAD" && request.target.contains("/blobs/sha256:") {
                TamperAction::Respond(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Type: application/octet-stream\r\n\r\n"
                        .to_vec(),
                )
            } else {
                TamperAction::Forward
            }
        }),
    );
    refused_sync(
        root.path(),
        &registry,
        &lying,
        "the registry says it holds 7 bytes, the image says",
    );

    // A login page answering 200 to every repository request.
    let registry = RegistryServer::start();
    let html = FaultProxy::start_tampering(
        &registry.host(),
        FaultConfig::clean(),
        Arc::new(|request: &RequestHead| {
            if request.target.starts_with("/v2/kant/") {
                let page = "<html><head><title>Sign in</title></head></html>";
                TamperAction::Respond(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
                        page.len()
                    )
                    .into_bytes(),
                )
            } else {
                TamperAction::Forward
            }
        }),
    );
    refused_sync(
        root.path(),
        &registry,
        &html,
        "HTTP 200 with an HTML page, not a registry API answer",
    );
}
