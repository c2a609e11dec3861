//! Charts without relok8s hints through `kantup upgrade` on the real API server with helm 3.17
//! and 4.1: a bundle whose chart lists its images only in `Chart.yaml` annotations, and a
//! wrapped chart laid out as `helm dt wrap` lays it out. Each is installed straight from the
//! file (verified, chart taken from the bundle or the wrap's `chart/`), then synced to a real
//! docker-registry and installed by `kantup upgrade` from the OCI chart target: that
//! Deployment runs the pushed images, which skopeo reads back with the wrapped digests.

mod common;

use std::path::Path;

use common::{kantup, ok};
use kantup_test_support::dt_wrap::{annotated_chart, dt_wrap};
use kantup_test_support::image_gen::{GenImage, GenSpec};
use kantup_test_support::kube_cluster::{KubeCluster, cluster_or_skip};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::skopeo_manifest_digest;
use serde_json::Value;

fn spec(seed: u64) -> GenSpec {
    GenSpec {
        images: 3,
        base_layer_size: 32 * 1024,
        own_layer_size: 8 * 1024,
        seed,
        source_prefix: "upstream.example/team".into(),
        ..GenSpec::default()
    }
}

fn deployed_images(cluster: &KubeCluster, ns: &str) -> Vec<String> {
    let json = cluster.kubectl(&["get", "deployment", "app-apps", "-n", ns, "-o", "json"]);
    let value: Value = serde_json::from_str(&json).unwrap();
    let mut images: Vec<String> = value["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect();
    images.sort();
    images
}

/// Installs `source` (a bundle or wrap of chart `chart` 1.2.3) into a new namespace, syncs it
/// to `host`, upgrades to the synced chart and checks the Deployment's images.
fn install_sync_upgrade(
    cluster: &KubeCluster,
    helm: &Path,
    work: &Path,
    source: &Path,
    chart: &str,
    images: &[GenImage],
    host: &str,
) {
    let what = format!("{chart} with {}", helm.display());
    let backups = work.join("backups");
    let upgrade = |ns: &str, from: &str, extra: &[&str]| {
        let mut args = vec![
            "upgrade",
            from,
            "--release",
            "app",
            "-n",
            ns,
            "--helm",
            helm.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--yes",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = ok(kantup(cluster.kubeconfig(), work, &args), &what);
        serde_json::from_str::<Value>(&out).unwrap()
    };

    // 1. Straight from the file: verified, the chart as it was shipped, original image names.
    let ns = cluster.namespace("nohints");
    let installed = upgrade(&ns, source.to_str().unwrap(), &[]);
    assert_eq!(installed["status"], "deployed", "{what}: {installed}");
    assert_eq!(installed["installed"], true, "{what}: {installed}");
    let mut original: Vec<String> = images.iter().map(|i| i.reference.clone()).collect();
    original.sort();
    assert_eq!(deployed_images(cluster, &ns), original, "{what}");

    // 2. Sync (images and the relocated chart), then upgrade to the relocated chart.
    let config = work.join(format!("{chart}-load-image.yaml"));
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{host}/charts\n",
            source.display()
        ),
    )
    .unwrap();
    ok(
        kantup(
            cluster.kubeconfig(),
            work,
            &["sync", "--config", config.to_str().unwrap()],
        ),
        &what,
    );
    // The synced chart is installed in its own namespace, beside the release from the file.
    let ns = cluster.namespace("synced");
    let upgraded = upgrade(
        &ns,
        &format!("oci://{host}/charts"),
        &["--chart", chart, "--version", "1.2.3", "--plain-http"],
    );
    assert_eq!(upgraded["status"], "deployed", "{what}: {upgraded}");
    assert_eq!(upgraded["revision"], 1, "{what}: {upgraded}");
    let mut relocated = Vec::new();
    for image in images {
        let last = image.repository.rsplit('/').next().unwrap();
        let target = format!("{host}/kant/apps/{last}:{}", image.tag);
        assert_eq!(
            skopeo_manifest_digest(&target),
            image.manifest_digest,
            "{what}: {target}"
        );
        relocated.push(target);
    }
    relocated.sort();
    assert_eq!(deployed_images(cluster, &ns), relocated, "{what}");
}

#[test]
fn annotated_chart_and_dt_wrap_install_then_upgrade_to_the_synced_chart() {
    let Some(cluster) =
        cluster_or_skip("annotated_chart_and_dt_wrap_install_then_upgrade_to_the_synced_chart")
    else {
        return;
    };
    let registry = RegistryServer::start();
    let host = registry.host();
    let helms = [
        ("helm3", kantup_test_support::helm3()),
        ("helm4", kantup_test_support::helm4()),
    ];
    for (n, (label, helm)) in helms.iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        // A chart with annotations and no hints, as a bundle kantup made without --hints.
        let chart = format!("annotated-{label}");
        let inputs = annotated_chart(
            &work.path().join("gen"),
            &spec(20 + n as u64),
            &chart,
            "1.2.3",
        )
        .unwrap();
        let bundle = work.path().join(format!("{chart}.bundle.tar"));
        ok(
            kantup(
                cluster.kubeconfig(),
                work.path(),
                &[
                    "bundle",
                    "create",
                    bundle.to_str().unwrap(),
                    "--chart",
                    inputs.chart_dir.to_str().unwrap(),
                    "--images",
                    inputs.layout.to_str().unwrap(),
                ],
            ),
            "bundle create",
        );
        install_sync_upgrade(
            cluster,
            helm,
            work.path(),
            &bundle,
            &chart,
            &inputs.images,
            &host,
        );

        // A wrapped chart, laid out as helm dt wrap lays it out.
        let chart = format!("wrapped-{label}");
        let wrap = dt_wrap(
            &work.path().join("dt"),
            &spec(30 + n as u64),
            &chart,
            "1.2.3",
        )
        .unwrap();
        install_sync_upgrade(
            cluster,
            helm,
            work.path(),
            &wrap.path,
            &chart,
            &wrap.images,
            &host,
        );
    }
}
