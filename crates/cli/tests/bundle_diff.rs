//! `kantup bundle diff OLD NEW` on generated bundles whose images share base layers: the image
//! changes and the blobs a registry holding OLD still needs are checked against the generator's
//! own record of every blob; the chart version, a CRD change and a default-value change against
//! what the test wrote.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, widgets_crd};
use kantup_test_support::image_gen::{GenImage, GenSpec, generate_bundle_inputs};
use serde_json::Value;

/// A bundle of `spec`'s images; the chart at `version` with `tag` as a default value and the
/// widgets CRD (`v2` or not).
fn bundle(
    dir: &Path,
    name: &str,
    spec: &GenSpec,
    version: &str,
    v2: bool,
) -> (PathBuf, Vec<GenImage>) {
    let work = dir.join(name);
    let inputs = generate_bundle_inputs(&work, spec).unwrap();
    std::fs::write(
        inputs.chart_dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: genchart\nversion: {version}\n"),
    )
    .unwrap();
    let values = std::fs::read_to_string(inputs.chart_dir.join("values.yaml")).unwrap();
    std::fs::write(
        inputs.chart_dir.join("values.yaml"),
        format!("{values}replicas: {}\n", if v2 { 2 } else { 1 }),
    )
    .unwrap();
    std::fs::create_dir_all(inputs.chart_dir.join("crds")).unwrap();
    std::fs::write(
        inputs.chart_dir.join("crds/widgets.yaml"),
        widgets_crd("diff.kant.test", v2),
    )
    .unwrap();
    let path = dir.join(format!("{name}.bundle.tar"));
    inputs.create_bundle(Path::new(env!("CARGO_BIN_EXE_kantup")), &path);
    (path, inputs.images)
}

fn diff(old: &Path, new: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(["bundle", "diff"])
        .arg(old)
        .arg(new)
        .args(["-o", "json"])
        .output()
        .unwrap();
    serde_json::from_str(&ok(out, "bundle diff")).unwrap()
}

/// Blobs of `new` that are not among `old`'s: (count, bytes), from the generator's record.
fn expected_transfer(old: &[GenImage], new: &[GenImage]) -> (u64, u64) {
    let held: BTreeSet<&str> = old
        .iter()
        .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
        .map(|b| b.digest.as_str())
        .collect();
    let mut seen = BTreeSet::new();
    let (mut count, mut bytes) = (0, 0);
    for blob in new
        .iter()
        .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
    {
        if seen.insert(blob.digest.clone()) && !held.contains(blob.digest.as_str()) {
            count += 1;
            bytes += blob.size;
        }
    }
    (count, bytes)
}

#[test]
fn images_blobs_chart_crds_and_values_between_two_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let small = |images, own_layer_size| GenSpec {
        images,
        base_layers: 2,
        base_layer_size: 64 * 1024,
        own_layer_size,
        seed: 11,
        source_prefix: "example.com/kant".into(),
    };
    let (old, old_images) = bundle(dir.path(), "old", &small(3, 16 * 1024), "0.4.0", false);
    // One image more, the same content otherwise: three unchanged, one added.
    let (grown, grown_images) = bundle(dir.path(), "grown", &small(4, 16 * 1024), "0.5.0", true);
    // Every image's own layer differs, the base layers do not: four changed... of which the
    // fourth is new, so three changed and one added.
    let (rebuilt, rebuilt_images) =
        bundle(dir.path(), "rebuilt", &small(4, 24 * 1024), "0.5.0", true);

    let d = diff(&old, &grown);
    assert_eq!(d["chart"]["old_version"], "0.4.0", "{d}");
    assert_eq!(d["chart"]["new_version"], "0.5.0", "{d}");
    assert_eq!(d["images"]["unchanged"], 3, "{d}");
    assert_eq!(d["images"]["added"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        d["images"]["added"][0]["repository"],
        format!("example.com/{}", grown_images[3].repository),
        "{d}"
    );
    assert_eq!(
        d["images"]["added"][0]["digest"],
        grown_images[3].manifest_digest.as_str()
    );
    let (count, bytes) = expected_transfer(&old_images, &grown_images);
    assert_eq!(d["transfer"]["blobs_needed"], count, "{d}");
    assert_eq!(d["transfer"]["bytes_needed"], bytes, "{d}");
    assert_eq!(count, 2, "the new image's config and own layer");

    // The CRD gained v1beta1 and a property; the default replicas changed.
    let crd = &d["crds"][0];
    assert_eq!(crd["name"], "widgets.diff.kant.test", "{d}");
    assert_eq!(crd["change"], "changed", "{d}");
    assert_eq!(crd["changes"]["versions_added"][0], "v1beta1", "{d}");
    assert_eq!(
        crd["changes"]["versions_changed"][0]["schema"][0]["path"],
        "properties.spec.properties.color",
        "{d}"
    );
    let replicas = d["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "replicas")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(replicas["old"], 1.0);
    assert_eq!(replicas["new"], 2.0);

    // Reversed: the image is removed, the CRD version removed.
    let back = diff(&grown, &old);
    assert_eq!(
        back["images"]["removed"].as_array().unwrap().len(),
        1,
        "{back}"
    );
    assert_eq!(back["transfer"]["blobs_needed"], 0, "{back}");
    assert_eq!(back["crds"][0]["changes"]["versions_removed"][0], "v1beta1");

    // Rebuilt images: changed by digest, only their own layers and configs to send.
    let d = diff(&old, &rebuilt);
    assert_eq!(d["images"]["changed"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["images"]["unchanged"], 0, "{d}");
    let (count, bytes) = expected_transfer(&old_images, &rebuilt_images);
    assert_eq!(d["transfer"]["blobs_needed"], count, "{d}");
    assert_eq!(d["transfer"]["bytes_needed"], bytes, "{d}");
    assert_eq!(
        count, 8,
        "4 configs and 4 own layers; the 2 base layers are held"
    );
    let total: u64 = d["images"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["blobs_needed"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 6, "{d}");

    // The text form says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(["bundle", "diff"])
        .arg(&old)
        .arg(&rebuilt)
        .output()
        .unwrap();
    let shown = ok(out, "bundle diff (text)");
    assert!(
        shown.contains("chart: genchart 0.4.0 -> genchart 0.5.0"),
        "{shown}"
    );
    assert!(
        shown.contains("images: 1 added, 0 removed, 3 changed, 0 unchanged"),
        "{shown}"
    );
    assert!(
        shown.contains("to a registry holding OLD: 8 of 10 blobs"),
        "{shown}"
    );
    assert!(
        shown.contains("~ widgets.diff.kant.test +versions v1beta1"),
        "{shown}"
    );
    assert!(shown.contains("KiB"), "byte counts are readable: {shown}");
}
