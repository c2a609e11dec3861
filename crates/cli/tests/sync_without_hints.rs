//! Charts without relok8s hints through `kantup sync` against a real docker-registry: a bundle
//! whose chart lists its images only in `Chart.yaml` annotations, and a wrapped chart laid out
//! as `helm dt wrap` lays it out (and one kantup wrote with `bundle create --format wrap`).
//! skopeo reads every pushed image back digest-exact; helm 3 and 4 render the relocated chart
//! with the pushed names. Also the output polish: a second sync into an OCI layout reports
//! `skip`, byte counts are printed as MiB/GiB.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::dt_wrap::{annotated_chart, dt_wrap};
use kantup_test_support::image_gen::{GenImage, GenSpec};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{helm3, helm4, require_tool, skopeo_manifest_digest};
use serde_json::Value;

use common::kantup_isolated as kantup;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn spec() -> GenSpec {
    GenSpec {
        images: 3,
        base_layer_size: 64 * 1024,
        own_layer_size: 16 * 1024,
        seed: 13,
        source_prefix: "upstream.example/team".into(),
        ..GenSpec::default()
    }
}

fn config(root: &Path, source: &Path, host: &str) -> PathBuf {
    let path = root.join("load-image.yaml");
    std::fs::write(
        &path,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{host}/charts\n",
            source.display()
        ),
    )
    .unwrap();
    path
}

/// Pulls `chart` from the OCI target with helm 3 and 4 and returns what each renders as the
/// images of its manifests (sorted).
fn helm_images(root: &Path, host: &str, chart: &str, version: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for (n, binary) in [helm3(), helm4()].iter().enumerate() {
        let work = root.join(format!("helm-{chart}-{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(binary)
                .args(args)
                .current_dir(&work)
                .env("HELM_CONFIG_HOME", work.join(".helm/config"))
                .env("HELM_CACHE_HOME", work.join(".helm/cache"))
                .env("HELM_DATA_HOME", work.join(".helm/data"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} {args:?}: {}",
                binary.display(),
                text(&out.stderr)
            );
            text(&out.stdout)
        };
        run(&[
            "pull",
            &format!("oci://{host}/charts/{chart}"),
            "--version",
            version,
            "--plain-http",
        ]);
        let rendered = run(&["template", "x", &format!("{chart}-{version}.tgz")]);
        let mut images: Vec<String> = kantup_bundle::discovery::images_in_manifests(&rendered)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        images.sort();
        all.push(images);
    }
    all
}

fn relocated(host: &str, image: &GenImage) -> String {
    let last = image.repository.rsplit('/').next().unwrap();
    format!("{host}/kant/apps/{last}:{}", image.tag)
}

/// Sync, then check: every image at its relocated name with the generated manifest digest,
/// helm 3 and 4 rendering exactly those names, and a second sync skipping everything.
fn sync_and_check(root: &Path, source: &Path, chart: &str, images: &[GenImage]) {
    let registry = RegistryServer::start();
    let host = registry.host();
    let config = config(root, source, &host);
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["images_pushed"], images.len(), "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");
    assert_eq!(
        summary["bundles"][0]["values"]["unmapped"],
        serde_json::json!([]),
        "{summary:#}"
    );
    for image in images {
        assert_eq!(
            skopeo_manifest_digest(&relocated(&host, image)),
            image.manifest_digest,
            "{}",
            image.reference
        );
    }
    let mut want: Vec<String> = images.iter().map(|i| relocated(&host, i)).collect();
    want.sort();
    for rendered in helm_images(root, &host, chart, "1.2.3") {
        assert_eq!(rendered, want);
    }
    let again = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(&again)).unwrap();
    assert_eq!(summary["images_skipped"], images.len(), "{summary:#}");
    assert_eq!(summary["charts_skipped"], 1, "{summary:#}");
}

#[test]
fn an_annotated_chart_without_hints_syncs_and_renders_the_pushed_images() {
    let root = tempfile::tempdir().unwrap();
    let inputs = annotated_chart(&root.path().join("gen"), &spec(), "annotated", "1.2.3").unwrap();
    let bundle = root.path().join("annotated.bundle.tar");
    // No --hints: the bundle carries an empty list.
    ok(&kantup(&[
        "bundle",
        "create",
        bundle.to_str().unwrap(),
        "--chart",
        inputs.chart_dir.to_str().unwrap(),
        "--images",
        inputs.layout.to_str().unwrap(),
    ]));
    let shown = ok(&kantup(&["bundle", "inspect", bundle.to_str().unwrap()]));
    assert!(
        shown.contains("Chart images (3), listed by Chart.yaml annotations:"),
        "{shown}"
    );
    sync_and_check(root.path(), &bundle, "annotated", &inputs.images);
}

#[test]
fn a_dt_wrap_syncs_digest_exact_and_renders_the_pushed_images() {
    let root = tempfile::tempdir().unwrap();
    let wrap = dt_wrap(&root.path().join("dt"), &spec(), "wrapped", "1.2.3").unwrap();
    let shown = ok(&kantup(&["bundle", "inspect", wrap.path.to_str().unwrap()]));
    assert!(shown.contains("wrapped chart wrapped-1.2.3"), "{shown}");
    assert!(
        shown.contains("Chart images (3), listed by Images.lock:"),
        "{shown}"
    );
    let verified = ok(&kantup(&["bundle", "verify", wrap.path.to_str().unwrap()]));
    assert!(verified.contains("3 images"), "{verified}");
    sync_and_check(root.path(), &wrap.path, "wrapped", &wrap.images);
}

#[test]
fn kantup_writes_a_wrap_that_syncs_like_a_dt_wrap() {
    let root = tempfile::tempdir().unwrap();
    let inputs = annotated_chart(&root.path().join("gen"), &spec(), "ourwrap", "1.2.3").unwrap();
    let wrap = root.path().join("ourwrap-1.2.3.wrap.tgz");
    let created = ok(&kantup(&[
        "bundle",
        "create",
        wrap.to_str().unwrap(),
        "--format",
        "wrap",
        "--chart",
        inputs.chart_dir.to_str().unwrap(),
        "--images",
        inputs.layout.to_str().unwrap(),
    ]));
    assert!(created.contains("3 images"), "{created}");
    // The export is read back by skopeo from the layout, digest-exact.
    let layout = root.path().join("export");
    ok(&kantup(&[
        "bundle",
        "export-images",
        wrap.to_str().unwrap(),
        "--oci-layout",
        layout.to_str().unwrap(),
    ]));
    let out = Command::new(require_tool("skopeo"))
        .args(["inspect", "--raw"])
        .arg(format!(
            "oci:{}:{}",
            layout.display(),
            inputs.images[0].reference
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        kantup_bundle::Digest::of(&out.stdout).to_string(),
        inputs.images[0].manifest_digest
    );
    sync_and_check(root.path(), &wrap, "ourwrap", &inputs.images);
}

#[test]
fn a_second_sync_into_an_oci_layout_skips_and_counts_bytes_in_units() {
    let root = tempfile::tempdir().unwrap();
    let wrap = dt_wrap(&root.path().join("dt"), &spec(), "wrapped", "1.2.3").unwrap();
    let layout = root.path().join("layout");
    let config = root.path().join("serverless.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: oci-layout:{}\n  repo:\n    kind: LOCAL\n    path: {}\n",
            wrap.path.display(),
            layout.display(),
            root.path().join("repo").display()
        ),
    )
    .unwrap();
    let first = ok(&kantup(&["sync", "--config", config.to_str().unwrap()]));
    assert!(first.contains("(push)"), "{first}");
    // 3 images of 2 x 64 KiB shared and 16 KiB own layers: the total is in KiB, not raw bytes.
    assert!(first.contains(" KiB)"), "{first}");
    assert!(!first.contains(" bytes)"), "{first}");
    let second = ok(&kantup(&["sync", "--config", config.to_str().unwrap()]));
    assert_eq!(second.matches("(skip)").count(), 4, "{second}");
    assert!(!second.contains("(push)"), "{second}");
    assert!(second.contains("all skipped"), "{second}");
    let json = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(&json)).unwrap();
    assert_eq!(summary["images_pushed"], 0, "{summary:#}");
    assert_eq!(summary["images_skipped"], 3, "{summary:#}");
    assert_eq!(summary["blobs_uploaded"], 0, "{summary:#}");
}

#[test]
fn a_two_platform_wrap_pushes_both_manifests_and_an_index_under_the_tag() {
    let root = tempfile::tempdir().unwrap();
    let (wrap, digests) =
        kantup_test_support::dt_wrap::dt_wrap_two_platforms(&root.path().join("dt")).unwrap();
    let registry = RegistryServer::start();
    let host = registry.host();
    let config = config(root.path(), &wrap, &host);
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["images_failed"], 0, "{summary:#}");
    // The tag is an OCI index over exactly the two platform manifests, in lock order.
    let target = format!("docker://{host}/kant/apps/multi:1.0.0");
    let raw = Command::new(require_tool("skopeo"))
        .args(["inspect", "--tls-verify=false", "--raw", &target])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        digests.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(index["manifests"][1]["platform"]["architecture"], "arm64");
    for digest in &digests {
        assert_eq!(
            &skopeo_manifest_digest(&format!("{host}/kant/apps/multi@{digest}")),
            digest
        );
    }
    // The chart's value names the tag, which resolves to the index.
    let rendered = helm_images(root.path(), &host, "multi", "1.0.0");
    for images in rendered {
        assert_eq!(images, [format!("{host}/kant/apps/multi:1.0.0")]);
    }
}

#[test]
fn a_chart_listing_nothing_is_rendered_by_helm_only_when_asked() {
    let root = tempfile::tempdir().unwrap();
    let inputs = annotated_chart(&root.path().join("gen"), &spec(), "bare", "1.2.3").unwrap();
    // The same chart without its annotations: nothing lists its images.
    let chart_yaml = inputs.chart_dir.join("Chart.yaml");
    let text_before = std::fs::read_to_string(&chart_yaml).unwrap();
    let stripped = text_before
        .split("annotations:")
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&chart_yaml, stripped).unwrap();
    let bundle = root.path().join("bare.bundle.tar");
    ok(&kantup(&[
        "bundle",
        "create",
        bundle.to_str().unwrap(),
        "--chart",
        inputs.chart_dir.to_str().unwrap(),
        "--images",
        inputs.layout.to_str().unwrap(),
    ]));
    let shown = ok(&kantup(&["bundle", "inspect", bundle.to_str().unwrap()]));
    assert!(
        shown.contains("Chart images (0), listed by none:"),
        "{shown}"
    );
    let helm = helm3();
    let shown = ok(&kantup(&[
        "bundle",
        "inspect",
        bundle.to_str().unwrap(),
        "--helm",
        helm.to_str().unwrap(),
    ]));
    assert!(
        shown.contains("Chart images (3), listed by rendered manifests (default values):"),
        "{shown}"
    );
    // Sync with --helm relocates the values the rendering found.
    let registry = RegistryServer::start();
    let host = registry.host();
    let config = config(root.path(), &bundle, &host);
    let out = kantup(&[
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--helm",
        helm.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        summary["bundles"][0]["values"]["source"], "rendered-manifests",
        "{summary:#}"
    );
    let mut want: Vec<String> = inputs.images.iter().map(|i| relocated(&host, i)).collect();
    want.sort();
    for rendered in helm_images(root.path(), &host, "bare", "1.2.3") {
        assert_eq!(rendered, want);
    }
}
