//! `kantup sync` of a bundle whose chart carries its subchart packed as
//! `charts/<name>-<version>.tgz` (as `helm dependency build` leaves it, and as relok8s
//! intermediate bundles often ship): the subchart's image values are relocated too, and the
//! chart in the LOCAL chart repository renders the relocated images with the real helm.
//!
//! The images go to a real docker-registry: `sync` rewrites chart values only for a registry
//! target (an `oci-layout:` target has no registry host to point the values at).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_bundle::archive::Compression;
use kantup_bundle::chart::{Chart, package};
use kantup_bundle::create::{CreateOptions, create};
use kantup_test_support::helm3;
use kantup_test_support::image_gen::{GenBundleInputs, GenSpec, generate_bundle_inputs};
use kantup_test_support::registry_server::RegistryServer;
use serde_json::Value;

use common::kantup_isolated as kantup;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn helm_template(chart: &Path, cwd: &Path) -> String {
    let out = Command::new(helm3())
        .args(["template", "x"])
        .arg(chart)
        .current_dir(cwd)
        .env("HELM_CONFIG_HOME", cwd.join(".helm/config"))
        .env("HELM_CACHE_HOME", cwd.join(".helm/cache"))
        .env("HELM_DATA_HOME", cwd.join(".helm/data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template {}: {}",
        chart.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A bundle whose chart `umbrella` has the generated 2-image chart `genchart` packed in
/// `charts/genchart-0.1.0.tgz` under the alias `gen`; the hints address its values through the
/// alias, as a relok8s hints file for such a chart does.
fn umbrella_bundle(root: &Path) -> (PathBuf, GenBundleInputs) {
    let inputs = generate_bundle_inputs(
        &root.join("gen"),
        &GenSpec {
            images: 2,
            ..GenSpec::default()
        },
    )
    .unwrap();
    let umbrella = root.join("umbrella");
    std::fs::create_dir_all(umbrella.join("charts")).unwrap();
    std::fs::write(
        umbrella.join("Chart.yaml"),
        "apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n- name: genchart\n  version: 0.1.0\n  alias: gen\n  repository: https://charts.example.com\n",
    )
    .unwrap();
    std::fs::write(umbrella.join("values.yaml"), "# umbrella\ngen: {}\n").unwrap();
    let sub = Chart::load_dir(&inputs.chart_dir).unwrap();
    std::fs::write(
        umbrella.join("charts").join(sub.archive_name()),
        package(&sub).unwrap(),
    )
    .unwrap();
    let hints = std::fs::read_to_string(&inputs.hints)
        .unwrap()
        .replace("{{ .images.", "{{ .gen.images.");
    assert!(hints.contains(".gen.images.app01"), "{hints}");
    let hints_path = root.join("umbrella-hints.yaml");
    std::fs::write(&hints_path, hints).unwrap();

    let bundles = root.join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    create(
        &CreateOptions {
            chart: umbrella,
            hints: hints_path,
            images: Some(inputs.layout.clone()),
            output: bundles.join("umbrella_1.0.0.bundle.tar"),
            compression: Compression::None,
            base: None,
        },
        &mut |_| {},
    )
    .expect("create the umbrella bundle");
    (bundles, inputs)
}

#[test]
fn sync_relocates_the_images_of_a_packed_aliased_subchart() {
    let registry = RegistryServer::start();
    let host = registry.host();
    let root = tempfile::tempdir().unwrap();
    let (bundles, inputs) = umbrella_bundle(root.path());
    let repo = root.path().join("repo");
    let config = root.path().join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: LOCAL\n    path: {}\n",
            bundles.display(),
            repo.display()
        ),
    )
    .unwrap();

    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["images_pushed"], 2, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");

    let tgz = repo.join("umbrella-1.0.0.tgz");
    assert!(tgz.is_file(), "{} missing", tgz.display());

    // The subchart travels unpacked, with its edited values inside the chart.
    let synced = Chart::load_tgz(&tgz).unwrap();
    assert!(
        synced.files.contains_key("charts/genchart/values.yaml"),
        "{:?}",
        synced.files.keys().collect::<Vec<_>>()
    );
    assert!(!synced.files.contains_key("charts/genchart-0.1.0.tgz"));

    // Helm renders the subchart's images at the new registry and repository.
    let rendered = helm_template(&tgz, root.path());
    assert_eq!(inputs.images.len(), 2);
    for image in &inputs.images {
        let tail = image.repository.rsplit('/').next().unwrap();
        let relocated = format!("{host}/kant/apps/{tail}:{}", image.tag);
        assert!(rendered.contains(&relocated), "{relocated}:\n{rendered}");
        assert!(
            !rendered.contains(&image.reference),
            "{} still rendered:\n{rendered}",
            image.reference
        );
    }
}
