//! create -> open -> verify -> unpack round trips, and the OCI layout writer.

use std::path::{Path, PathBuf};

use kantup_bundle::archive::{Compression, ImageArchive, oci_layout};
use kantup_bundle::create::{CreateOptions, create};
use kantup_bundle::{Bundle, CHECKSUMS_MEMBER, Digest, UnpackOptions, VerifyOptions};
use kantup_test_support::{relok8s_fixtures, workspace_root};

fn testchart_bundle() -> PathBuf {
    workspace_root().join("examples/bundles/testchart.bundle.tar")
}

/// Copies `images.tar` out of the example bundle.
fn images_tar(dir: &Path) -> PathBuf {
    let b = Bundle::open(testchart_bundle()).unwrap();
    let out = dir.join("images.tar");
    std::io::copy(
        &mut b.open_member("images.tar").unwrap(),
        &mut std::fs::File::create(&out).unwrap(),
    )
    .unwrap();
    out
}

fn options(
    dir: &Path,
    images: Option<PathBuf>,
    output: &str,
    compression: Compression,
) -> CreateOptions {
    CreateOptions {
        chart: relok8s_fixtures().join("testchart"),
        hints: relok8s_fixtures().join("testchart.images.yaml"),
        images,
        output: dir.join(output),
        compression,
        base: None,
    }
}

#[test]
fn create_is_reproducible_and_verifies_in_every_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let images = images_tar(tmp.path());
    let original = ImageArchive::open(&images).unwrap();
    for (compression, name) in [
        (Compression::None, "b.tar"),
        (Compression::Gzip, "b.tar.gz"),
        (Compression::Zstd, "b.tar.zst"),
    ] {
        let opts = options(tmp.path(), Some(images.clone()), name, compression);
        let first = create(&opts, &mut |_| {}).unwrap();
        let bytes1 = std::fs::read(&opts.output).unwrap();
        let second = create(&opts, &mut |_| {}).unwrap();
        assert_eq!(
            bytes1,
            std::fs::read(&opts.output).unwrap(),
            "{name}: same inputs, same bytes"
        );
        assert_eq!(first.digest, second.digest);
        assert_eq!(
            (first.chart.as_str(), first.hints, first.images),
            ("testchart", 4, 2)
        );

        let bundle = Bundle::open(&opts.output).unwrap();
        assert_eq!(bundle.compression(), compression);
        let names: Vec<String> = bundle.members().into_iter().map(|m| m.name).collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("hints.yaml"),
            "hints first"
        );
        assert_eq!(names.last().map(String::as_str), Some(CHECKSUMS_MEMBER));
        let report = bundle
            .verify(
                VerifyOptions {
                    deep: true,
                    ..VerifyOptions::default()
                },
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(report.images, 2);
        assert_eq!(report.diff_ids_checked, 1);
        assert!(report.checksummed_members > 10);
        // Manifest digests survive the trip through kantup's images.tar.
        let archive = bundle.image_archive().unwrap().unwrap();
        let got: Vec<(String, Digest)> = archive
            .images()
            .iter()
            .map(|i| (i.display_name(), i.manifest_digest))
            .collect();
        let want: Vec<(String, Digest)> = original
            .images()
            .iter()
            .map(|i| (i.display_name(), i.manifest_digest))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn charts_only_bundle_from_tgz() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = CreateOptions {
        chart: relok8s_fixtures().join("wordpress-11.0.4.tgz"),
        hints: relok8s_fixtures().join("wordpress-11.0.4.images.yaml"),
        images: None,
        output: tmp.path().join("wp.tar"),
        compression: Compression::None,
        base: None,
    };
    create(&opts, &mut |_| {}).unwrap();
    let bundle = Bundle::open(&opts.output).unwrap();
    assert!(bundle.image_archive().unwrap().is_none());
    assert_eq!(bundle.chart().unwrap().name(), "wordpress");
    // The chart needs images the bundle does not carry: refused, naming them...
    let refused = bundle
        .verify(VerifyOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the chart needs (listed by hints.yaml) are not in the bundle"),
        "{refused}"
    );
    assert!(
        refused.contains("docker.io/bitnami/wordpress:"),
        "{refused}"
    );
    // ...unless that is on purpose (the images come from elsewhere): listed, not refused.
    let report = bundle
        .verify(
            VerifyOptions {
                allow_missing_images: true,
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.images, 0);
    assert!(!report.images_missing.is_empty());
    assert_eq!(report.images_missing.len(), report.images_needed);
}

#[test]
fn unpack_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::open(testchart_bundle()).unwrap();
    let target = tmp.path().join("out");
    let report = bundle
        .unpack(&target, UnpackOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.files, bundle.members().len());
    assert!(target.join("original-chart/Chart.yaml").is_file());
    assert_eq!(
        std::fs::read(target.join("hints.yaml")).unwrap(),
        bundle.read_small("hints.yaml").unwrap()
    );
    // The unpacked images.tar is a readable archive; the staging dir is gone.
    assert_eq!(
        ImageArchive::open(target.join("images.tar"))
            .unwrap()
            .images()
            .len(),
        2
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("out")]);
    // A non-empty target is refused.
    let err = bundle
        .unpack(&target, UnpackOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn oci_layout_directory_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::open(testchart_bundle()).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    let images: Vec<_> = archive.images().iter().collect();
    let layout = tmp.path().join("layout");
    let mut copied = 0;
    let report = oci_layout::write_images(&layout, &archive, &images, |n| copied += n).unwrap();
    assert_eq!(report.blobs_written, 5, "2 configs + 1 layer + 2 manifests");
    assert_eq!(copied, images.iter().map(|i| i.total_size()).sum::<u64>());
    // Again: nothing copied, index entries replaced rather than duplicated.
    let again = oci_layout::write_images(&layout, &archive, &images, |_| {}).unwrap();
    assert_eq!((again.blobs_written, again.blobs_present), (0, 5));
    let back = ImageArchive::open(&layout).unwrap();
    assert_eq!(back.images().len(), 2);
    for (a, b) in archive.images().iter().zip(back.images()) {
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.references, b.references);
        assert_eq!(a.layers, b.layers);
    }
    let mut report = kantup_bundle::VerifyReport::default();
    kantup_bundle::verify_archive(
        &back,
        VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
        &mut |_| {},
        &mut report,
    )
    .unwrap();
    assert_eq!(report.blobs, 3);
}
