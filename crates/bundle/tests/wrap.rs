//! Wrapped charts (`helm dt wrap` layout): a wrap built as the tooling lays it out (GNU tar,
//! from generated images) opens as a bundle, its images named through `Images.lock` and
//! verified blob by blob; kantup's own `create_wrap` writes the same members, reproducibly;
//! damaged wraps fail naming the image and file. Charts with annotations and no hints list
//! their images too.

use std::collections::BTreeSet;
use std::path::Path;

use kantup_bundle::discovery::ImageSource;
use kantup_bundle::wrap::{WrapOptions, create_wrap};
use kantup_bundle::{Bundle, Layout, VerifyOptions};
use kantup_test_support::dt_wrap::{annotated_chart, dt_wrap};
use kantup_test_support::image_gen::GenSpec;

fn spec() -> GenSpec {
    GenSpec {
        images: 3,
        base_layer_size: 4096,
        own_layer_size: 2048,
        ..GenSpec::default()
    }
}

fn file_members(bundle: &Bundle) -> BTreeSet<String> {
    bundle
        .members()
        .into_iter()
        .filter(|m| m.kind == "file")
        .map(|m| m.name)
        .collect()
}

#[test]
fn a_dt_wrap_opens_as_a_bundle_named_through_its_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let wrap = dt_wrap(tmp.path(), &spec(), "webapp", "1.2.3").unwrap();
    let bundle = Bundle::open(&wrap.path).unwrap();
    assert_eq!(
        bundle.layout(),
        &Layout::Wrap {
            root: "webapp-1.2.3".into()
        }
    );
    assert_eq!(bundle.chart().unwrap().name(), "webapp");
    assert!(bundle.hints().unwrap().is_empty());
    assert!(!bundle.has_hints());
    let found = bundle.discover_images().unwrap();
    assert_eq!(found.source, ImageSource::ImagesLock);
    assert_eq!(found.images.len(), 3);

    let archive = bundle.image_archive().unwrap().expect("images");
    let mut got: Vec<(String, String)> = archive
        .images()
        .iter()
        .map(|i| (i.display_name(), i.manifest_digest.to_string()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = wrap
        .images
        .iter()
        .map(|i| (i.reference.clone(), i.manifest_digest.clone()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    for (image, generated) in archive.images().iter().zip(&wrap.images) {
        assert_eq!(image.manifest_digest.to_string(), generated.manifest_digest);
        assert_eq!(image.config.digest.to_string(), generated.config.digest);
        let mut blob = Vec::new();
        std::io::Read::read_to_end(
            &mut archive.open_blob(&image.layers[2].digest).unwrap(),
            &mut blob,
        )
        .unwrap();
        assert_eq!(blob.len() as u64, generated.layers[2].size);
    }

    let report = bundle
        .verify(
            VerifyOptions {
                deep: true,
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.images, 3);
    assert_eq!(report.chart.as_deref(), Some("webapp"));
    assert!(report.blobs >= 8, "{report:?}");
}

#[test]
fn create_wrap_writes_the_dt_layout_reproducibly() {
    let tmp = tempfile::tempdir().unwrap();
    let theirs = dt_wrap(&tmp.path().join("dt"), &spec(), "webapp", "1.2.3").unwrap();
    let inputs = annotated_chart(&tmp.path().join("ours"), &spec(), "webapp", "1.2.3").unwrap();
    let options = |out: &Path| WrapOptions {
        chart: inputs.chart_dir.clone(),
        images: Some(inputs.layout.clone()),
        output: out.to_path_buf(),
    };
    let first = create_wrap(&options(&tmp.path().join("a.wrap.tgz")), &mut |_| {}).unwrap();
    let second = create_wrap(&options(&tmp.path().join("b.wrap.tgz")), &mut |_| {}).unwrap();
    assert_eq!(first.digest, second.digest, "same inputs, same bytes");
    assert_eq!(first.images, 3);

    let ours = Bundle::open(&first.output).unwrap();
    let dt = Bundle::open(&theirs.path).unwrap();
    assert_eq!(file_members(&ours), file_members(&dt));
    // The lock kantup made from the annotations names the same images and digests.
    let (a, b) = (
        ours.images_lock().unwrap().unwrap(),
        dt.images_lock().unwrap().unwrap(),
    );
    assert_eq!(a.images, b.images);
    assert_eq!(a.chart, b.chart);
    ours.verify(VerifyOptions::default(), &mut |_| {}).unwrap();
    // Each layout holds exactly the manifest it is named for, unnamed as crane leaves it.
    for image in &theirs.images {
        let hex = image.manifest_digest.trim_start_matches("sha256:");
        let member = format!("webapp-1.2.3/images/{hex}.layout/index.json");
        let ours_index: serde_json::Value =
            serde_json::from_slice(&ours.read_small(&member).unwrap()).unwrap();
        assert_eq!(ours_index["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(ours_index["manifests"][0]["digest"], image.manifest_digest);
        assert!(ours_index["manifests"][0].get("annotations").is_none());
    }
}

#[test]
fn an_annotated_chart_without_hints_lists_its_images() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = annotated_chart(tmp.path(), &spec(), "webapp", "1.2.3").unwrap();
    let chart = kantup_bundle::chart::Chart::load_dir(&inputs.chart_dir).unwrap();
    let found = kantup_bundle::discovery::discover(&chart).unwrap();
    assert_eq!(found.source, ImageSource::Annotations);
    let got: Vec<String> = found
        .images
        .iter()
        .map(|i| i.reference.to_string())
        .collect();
    let want: Vec<String> = inputs.images.iter().map(|i| i.reference.clone()).collect();
    assert_eq!(got, want);
}

#[test]
fn damaged_wraps_name_the_image_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let wrap = dt_wrap(tmp.path(), &spec(), "webapp", "1.2.3").unwrap();
    let stage = tmp.path().join("stage/webapp-1.2.3");
    // A lock digest without its layout.
    let gone = wrap.images[1].manifest_digest.trim_start_matches("sha256:");
    std::fs::remove_dir_all(stage.join(format!("images/{gone}.layout"))).unwrap();
    let broken = tmp.path().join("broken.wrap.tgz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&broken)
        .arg("-C")
        .arg(tmp.path().join("stage"))
        .arg("webapp-1.2.3")
        .status()
        .unwrap();
    assert!(status.success());
    let err = Bundle::open(&broken)
        .unwrap()
        .image_archive()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chart/Images.lock")
            && err.contains("gen-app-01")
            && err.contains(&format!("images/{gone}.layout")),
        "{err}"
    );
    // A layout named for another manifest than it holds.
    let other = wrap.images[0].manifest_digest.trim_start_matches("sha256:");
    std::fs::rename(
        stage.join(format!("images/{other}.layout")),
        stage.join(format!("images/{gone}.layout")),
    )
    .unwrap();
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&broken)
        .arg("-C")
        .arg(tmp.path().join("stage"))
        .arg("webapp-1.2.3")
        .status()
        .unwrap();
    assert!(status.success());
    let err = Bundle::open(&broken)
        .unwrap()
        .image_archive()
        .unwrap_err()
        .to_string();
    assert!(err.contains("is named for manifest"), "{err}");
}

#[test]
fn a_layout_that_already_holds_the_images_plans_present() {
    use kantup_bundle::archive::oci_layout::{LayoutAction, plan_images, write_images};
    let tmp = tempfile::tempdir().unwrap();
    let wrap = dt_wrap(tmp.path(), &spec(), "webapp", "1.2.3").unwrap();
    let bundle = Bundle::open(&wrap.path).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    let images: Vec<_> = archive.images().iter().collect();
    let dir = tmp.path().join("layout");
    assert_eq!(
        plan_images(&dir, &images).unwrap(),
        vec![LayoutAction::Add; 3]
    );
    write_images(&dir, &archive, &images, |_| {}).unwrap();
    assert_eq!(
        plan_images(&dir, &images).unwrap(),
        vec![LayoutAction::Present; 3]
    );
    // A missing blob makes the image Add again; a name on another digest is Replace.
    let layer = images[0].layers[2].digest.hex().to_string();
    std::fs::remove_file(dir.join("blobs/sha256").join(layer)).unwrap();
    let index_path = dir.join("index.json");
    let text = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(
        &index_path,
        text.replace(
            &wrap.images[1].manifest_digest,
            &wrap.images[2].manifest_digest,
        ),
    )
    .unwrap();
    let plan = plan_images(&dir, &images).unwrap();
    assert_eq!(plan[0], LayoutAction::Add);
    assert_eq!(
        plan[1],
        LayoutAction::Replace {
            previous: Some(wrap.images[2].manifest_digest.parse().unwrap())
        }
    );
    assert_eq!(plan[2], LayoutAction::Present);
}
