//! Shared helpers for the k8s-apply tests.
//!
//! The tests run against the real kube-apiserver v1.23.5 with etcd of
//! `kantup_test_support::kube_cluster` (one server per test binary, shared by the tests that run
//! in parallel: every test works in its own namespace and gives its CRDs a group of its own),
//! with releases made by the real helm 3.17 and 4.1 binaries through both of Helm's storage
//! drivers. Without a server they record themselves as skipped.
//!
//! [`scripted`] (kube-rs's documented tower-test mock) is kept only for what a real server
//! cannot be made to do: answer 5xx, drop the connection, or never finish a condition; each
//! test using it says so.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{Request, Response};
use http_body_util::BodyExt;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{CrdDocument, load_crd_documents};
use kantup_k8s_apply::release::{ReleaseStatus, StorageDriver, decode_release, encode_release};
use kantup_test_support::kube_cluster::KubeCluster;
use kube::client::Body;
use serde_json::{Value, json};

pub use kantup_test_support::kube_cluster::{Rule, cluster_or_skip, unique_name};

// ---------------------------------------------------------------------------------------------
// The real cluster

/// A client for the cluster `kubeconfig` names, resolved as kubectl would.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    ClusterAccess {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    }
    .client()
    .await
    .unwrap_or_else(|e| panic!("client for {}: {e}", kubeconfig.display()))
}

/// A cluster-admin client.
pub async fn admin_client(cluster: &KubeCluster) -> kube::Client {
    client_for(cluster.kubeconfig()).await
}

/// `kubectl ARGS -o json` as admin, parsed.
pub fn kubectl_json(cluster: &KubeCluster, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", "json"]);
    let text = cluster.kubectl(&all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}: {text}"))
}

/// Whether `kubectl get KIND NAME [-n NS]` finds the object.
pub fn exists(cluster: &KubeCluster, kind: &str, name: &str, namespace: Option<&str>) -> bool {
    let mut args = vec!["get", kind, name];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    let output = cluster.kubectl_output(&args, None);
    if output.status.success() {
        return true;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NotFound"), "kubectl {args:?}: {stderr}");
    false
}

/// `kubectl ARGS` (with `stdin`) about custom objects of a CRD that just became `Established`:
/// the API server publishes new resources in its discovery documents asynchronously, so
/// kubectl may not map the kind for a moment; retried for up to 10 s while it says so.
pub fn kubectl_custom(cluster: &KubeCluster, args: &[&str], stdin: Option<&str>) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let output = cluster.kubectl_output(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let unmapped = stderr.contains("no matches for kind")
            || stderr.contains("resource mapping not found")
            || stderr.contains("the server doesn't have a resource type");
        if output.status.success() || !unmapped || std::time::Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs a command's `Output` check: panics with the command and its stderr unless it succeeded.
pub fn succeeded(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Helm

/// One of the two real helm binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helm {
    /// helm 3.17
    V3,
    /// helm 4.1
    V4,
}

impl Helm {
    pub fn path(self) -> PathBuf {
        match self {
            Helm::V3 => kantup_test_support::helm3(),
            Helm::V4 => kantup_test_support::helm4(),
        }
    }
}

/// Four tests, `<module>::helm{3,4}_{secret,configmap}`, each running `scenario(test name,
/// helm, storage driver)`: one per helm binary and storage driver.
#[allow(unused_macros)]
macro_rules! for_each_helm_and_driver {
    ($module:ident, $scenario:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn helm3_secret() {
                let test = concat!(stringify!($module), "::helm3_secret");
                $scenario(test, Helm::V3, StorageDriver::Secret).await
            }

            #[tokio::test]
            async fn helm3_configmap() {
                let test = concat!(stringify!($module), "::helm3_configmap");
                $scenario(test, Helm::V3, StorageDriver::ConfigMap).await
            }

            #[tokio::test]
            async fn helm4_secret() {
                let test = concat!(stringify!($module), "::helm4_secret");
                $scenario(test, Helm::V4, StorageDriver::Secret).await
            }

            #[tokio::test]
            async fn helm4_configmap() {
                let test = concat!(stringify!($module), "::helm4_configmap");
                $scenario(test, Helm::V4, StorageDriver::ConfigMap).await
            }
        }
    };
}

/// `HELM_DRIVER` for a storage driver.
pub fn helm_driver(driver: StorageDriver) -> &'static str {
    match driver {
        StorageDriver::Secret => "secret",
        StorageDriver::ConfigMap => "configmap",
    }
}

/// One helm binary with one storage driver, in one namespace of the cluster.
pub struct HelmRun<'a> {
    pub cluster: &'a KubeCluster,
    pub helm: Helm,
    pub driver: StorageDriver,
    pub namespace: String,
}

impl<'a> HelmRun<'a> {
    pub fn new(
        cluster: &'a KubeCluster,
        helm: Helm,
        driver: StorageDriver,
        namespace: &str,
    ) -> Self {
        Self {
            cluster,
            helm,
            driver,
            namespace: namespace.to_string(),
        }
    }

    /// `helm ARGS -n NAMESPACE` with `HELM_DRIVER` set; the output whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-n", &self.namespace]);
        self.cluster.helm_output_with_env(
            &self.helm.path(),
            &[("HELM_DRIVER", helm_driver(self.driver))],
            &all,
        )
    }

    /// `helm ARGS -n NAMESPACE`; panics with helm's stderr unless it succeeds; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        succeeded(&format!("{:?} {args:?}", self.helm), &self.output(args))
    }
}

/// Writes a chart `demo` version `version` into `dir/demo`: `values.yaml` with nested defaults,
/// a ConfigMap template holding the values, a second ConfigMap named by `extraName` when set
/// (an invalid name makes the API server refuse the release), and `crds` as `crds/<file>`.
pub fn write_chart(dir: &Path, version: &str, crds: &[(&str, String)]) -> PathBuf {
    let chart = dir.join("demo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: demo\nversion: {version}\nappVersion: \"2.4.1\"\n"),
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), CHART_VALUES).unwrap();
    std::fs::write(chart.join("templates/configmap.yaml"), CHART_TEMPLATE).unwrap();
    if !crds.is_empty() {
        std::fs::create_dir_all(chart.join("crds")).unwrap();
        for (file, text) in crds {
            std::fs::write(chart.join("crds").join(file), text).unwrap();
        }
    }
    chart
}

const CHART_VALUES: &str = r#"replicaCount: 1
image:
  repository: nginx
  tag: ""
  pullPolicy: IfNotPresent
service:
  type: ClusterIP
  port: 80
resources: {}
tolerations: []
podAnnotations:
  team: platform
nullable: ~
tree:
  leaf: ~
global:
  region: eu
extraName: ""
"#;

const CHART_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
data:
  values.json: {{ toJson .Values | quote }}
{{- if .Values.extraName }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.extraName }}
data: {}
{{- end }}
"#;

// ---------------------------------------------------------------------------------------------
// Release records in the cluster

/// The `release` text of a record object as Helm wrote it (the Secret API's own base64 removed).
pub fn record_text(object: &Value, driver: StorageDriver) -> String {
    let data = object["data"]["release"]
        .as_str()
        .unwrap_or_else(|| panic!("no data.release in {object}"));
    match driver {
        StorageDriver::Secret => String::from_utf8(STANDARD.decode(data).unwrap()).unwrap(),
        StorageDriver::ConfigMap => data.to_string(),
    }
}

/// The record object `sh.helm.release.v1.<release>.v<revision>`, as the API returns it.
pub fn record_object(run: &HelmRun, release: &str, revision: u32) -> Value {
    kubectl_json(
        run.cluster,
        &[
            "get",
            &run.driver.kind().to_lowercase(),
            &format!("sh.helm.release.v1.{release}.v{revision}"),
            "-n",
            &run.namespace,
        ],
    )
}

/// Sets the status of a real, helm-made record: decodes it with `decode_release`, changes
/// `info.status`, encodes it with `encode_release` and replaces the object with kubectl,
/// updating its `status` label as Helm does. The server and its storage stay real; only the
/// status is ours. (The re-encoded record keeps the fields kantup models, which is all that
/// `helm history` and `helm status` need, as the callers check.)
pub fn set_record_status(run: &HelmRun, release: &str, revision: u32, status: ReleaseStatus) {
    let mut object = record_object(run, release, revision);
    let mut record = decode_release(record_text(&object, run.driver).as_bytes()).unwrap();
    record.info.as_mut().expect("helm writes info").status = status.clone();
    let encoded = encode_release(&record).unwrap();
    object["data"]["release"] = json!(match run.driver {
        StorageDriver::Secret => STANDARD.encode(encoded),
        StorageDriver::ConfigMap => encoded,
    });
    object["metadata"]["labels"]["status"] = json!(status.as_str());
    let output = run
        .cluster
        .kubectl_output(&["replace", "-f", "-"], Some(&object.to_string()));
    succeeded("kubectl replace release record", &output);
}

// ---------------------------------------------------------------------------------------------
// CRDs

/// A group no other test uses: `<prefix>-<pid>-<n>.kantup.test`.
pub fn unique_group(prefix: &str) -> String {
    format!("{}.kantup.test", unique_name(prefix))
}

/// A v1 CRD manifest.
pub fn crd_manifest(group: &str, kind: &str, plural: &str, versions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural},
            "versions": versions
        }
    })
}

/// A served version with `spec.properties` = `properties`.
pub fn crd_version(name: &str, storage: bool, properties: Value) -> Value {
    json!({
        "name": name, "served": true, "storage": storage,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": properties}
        }}}
    })
}

/// `Widget`/`widgets` in `group` with one version `v1` whose `spec.size` has type `size_type`.
pub fn widget_crd(group: &str, size_type: &str) -> Value {
    crd_manifest(
        group,
        "Widget",
        "widgets",
        json!([crd_version(
            "v1",
            true,
            json!({"size": {"type": size_type}})
        )]),
    )
}

/// Loads manifests as CRD documents, one file each (`file` as given).
pub fn documents(files: &[(&str, &Value)]) -> Vec<CrdDocument> {
    load_crd_documents(
        files
            .iter()
            .map(|(file, manifest)| (file.to_string(), serde_yaml::to_string(manifest).unwrap())),
    )
    .unwrap()
}

/// The live CRD as the API returns it.
pub fn live_crd(cluster: &KubeCluster, name: &str) -> Value {
    kubectl_json(cluster, &["get", "crd", name, "--show-managed-fields"])
}

/// The status of condition `kind` of a live CRD.
pub fn condition(crd: &Value, kind: &str) -> String {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "missing".to_string())
}

/// The managers whose managedFields entry (not the status subresource) owns `.spec.versions`,
/// with the operation (`Apply`/`Update`).
pub fn owners_of_versions(crd: &Value) -> Vec<(String, String)> {
    crd["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m.get("subresource").is_none())
        .filter(|m| m["fieldsV1"]["f:spec"].get("f:versions").is_some())
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The names of the managers in a live object's managedFields.
pub fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["manager"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts an error text is one line with none of the debug shapes of kube's errors.
pub fn assert_one_line(text: &str) {
    assert!(!text.contains('\n'), "more than one line: {text}");
    for debug in ["Status {", "ErrorResponse", "Api(", "reason: \"", "code: "] {
        assert!(!text.contains(debug), "debug output {debug:?} in: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures for the pure tests

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

/// `base64(gzip(json))` exactly as Helm's `encodeRelease` (gzip.BestCompression, StdEncoding),
/// written independently of the crate's own encoder.
pub fn helm_encode(release: &Value) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&serde_json::to_vec(release).unwrap()).unwrap();
    STANDARD.encode(gz.finish().unwrap())
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

// ---------------------------------------------------------------------------------------------
// The scripted server, for faults a real server cannot be made to produce

/// What the scripted server does with one request.
pub enum Answer {
    /// Answer with this status code and JSON body.
    Json(u16, Value),
    /// Drop the request without an answer (the connection is lost).
    Drop,
}

/// A `Status` answer as the API server writes one.
pub fn status(code: u16, reason: &str, message: &str) -> Answer {
    Answer::Json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// A client whose requests are answered from `script` (kube-rs's documented mock:
/// `tower_test::mock::pair` wrapped in `kube::Client::new`), and a handle yielding the
/// `METHOD path` of each request seen. A request beyond the script fails the client.
pub fn scripted(script: Vec<Answer>) -> (kube::Client, tokio::task::JoinHandle<Vec<String>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let mut seen = Vec::new();
        for answer in script {
            let Some((request, send)) = handle.next_request().await else {
                break;
            };
            let (parts, body) = request.into_parts();
            let _ = body.collect().await;
            seen.push(format!("{} {}", parts.method, parts.uri.path()));
            match answer {
                Answer::Json(code, body) => send.send_response(
                    Response::builder()
                        .status(code)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                ),
                Answer::Drop => drop(send),
            }
        }
        seen
    });
    (kube::Client::new(service, "default"), task)
}
