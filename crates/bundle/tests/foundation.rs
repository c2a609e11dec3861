//! The foundational types against the real relok8s fixtures and the real helm.

use std::io::Read;
use std::process::Command;

use kantup_bundle::chart::Chart;
use kantup_bundle::hints::parse_hints;
use kantup_bundle::{Bundle, Digest};
use kantup_test_support::{helm3, helm4, relok8s_fixtures, workspace_root};

fn testchart_bundle() -> std::path::PathBuf {
    workspace_root().join("examples/bundles/testchart.bundle.tar")
}

/// (file, text, pattern count, (index, registry, repository, tag))
type HintRow = (
    &'static str,
    String,
    usize,
    (
        usize,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
    ),
);

#[test]
fn fixture_hint_files_parse() {
    let dir = relok8s_fixtures();
    let intermediate_hints = {
        let b = Bundle::open(dir.join("testchart-intermediate.tar")).unwrap();
        b.hints_text().unwrap()
    };
    // (file, text, number of patterns, (index, registry, repository, tag))
    let rows: Vec<HintRow> = vec![
        (
            "testchart.images.yaml",
            std::fs::read_to_string(dir.join("testchart.images.yaml")).unwrap(),
            4,
            (3, None, ".subchart.image.name", Some(".subchart.image.tag")),
        ),
        (
            "wordpress-11.0.4.images.yaml",
            std::fs::read_to_string(dir.join("wordpress-11.0.4.images.yaml")).unwrap(),
            8,
            (
                3,
                Some(".mariadb.image.registry"),
                ".mariadb.image.repository",
                Some(".mariadb.image.tag"),
            ),
        ),
        (
            "complex-chart/.relok8s-images.yaml",
            std::fs::read_to_string(dir.join("complex-chart/.relok8s-images.yaml")).unwrap(),
            10,
            (
                9,
                Some(".global.imageRegistry"),
                ".subchart-10.deployment.imageName",
                Some(".subchart-10.deployment.dockerTag"),
            ),
        ),
        (
            "testchart-intermediate.tar!hints.yaml",
            intermediate_hints,
            4,
            (2, None, ".singleImageReference.image", None),
        ),
    ];
    for (file, text, count, (i, registry, repository, tag)) in rows {
        let patterns = parse_hints(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(patterns.len(), count, "{file}");
        let p = &patterns[i];
        assert_eq!(
            p.registry.as_ref().map(|x| x.to_string()).as_deref(),
            registry,
            "{file}"
        );
        assert_eq!(p.repository.to_string(), repository, "{file}");
        assert_eq!(
            p.tag.as_ref().map(|x| x.to_string()).as_deref(),
            tag,
            "{file}"
        );
        assert!(p.digest.is_none());
    }
}

#[test]
fn hints_render_against_fixture_values() {
    let dir = relok8s_fixtures();
    let chart = Chart::load_dir(dir.join("testchart")).unwrap();
    let hints =
        parse_hints(&std::fs::read_to_string(dir.join("testchart.images.yaml")).unwrap()).unwrap();
    let rendered: Vec<String> = hints
        .iter()
        .filter(|h| h.repository.segments()[0] != "subchart")
        .map(|h| h.render(&chart.values).unwrap())
        .collect();
    assert!(!rendered.is_empty());
    for r in &rendered {
        r.parse::<kantup_bundle::reference::Reference>()
            .unwrap_or_else(|e| panic!("rendered hint is not a reference: {e}"));
    }
}

#[test]
fn opens_testchart_bundle() {
    let bundle = Bundle::open(testchart_bundle()).unwrap();
    assert_eq!(bundle.hints().unwrap().len(), 4);
    let chart = bundle.chart().unwrap();
    assert_eq!(chart.name(), "testchart");
    assert_eq!(chart.subcharts.len(), 1);
    assert_eq!(chart.subcharts[0].name(), "subchart");
    let archive = bundle.image_archive().unwrap().expect("images.tar");
    let images = archive.images();
    assert_eq!(images.len(), 2);
    assert_eq!(
        images[0].references[0].to_string(),
        "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1"
    );
    assert_eq!(
        images[1].references[0].to_string(),
        "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest"
    );
    assert_eq!(images[0].layers.len(), 1);
    assert_eq!(images[1].layers.len(), 0);
    let layer = &images[0].layers[0];
    assert_eq!(
        layer.digest.to_string(),
        "sha256:24fb2886d6f6c5d16481dd7608b47e78a8e92a13d6e64d87d57cb16d5f766d63"
    );
    assert_eq!(
        layer.media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(layer.size, 767322);
    // Every blob read back hashes to its digest and size.
    for image in images {
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            let (d, n) = Digest::of_reader(archive.open_blob(&blob.digest).unwrap()).unwrap();
            assert_eq!((d, n), (blob.digest, blob.size));
        }
        assert_eq!(Digest::of(&image.manifest), image.manifest_digest);
        let m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(m["config"]["digest"], image.config.digest.to_string());
        assert_eq!(image.platform.as_ref().unwrap().to_string(), "linux/amd64");
    }
    // Zero layers serialize as Go's nil slice, as go-containerregistry writes it.
    assert!(String::from_utf8_lossy(&images[1].manifest).ends_with(r#""layers":null}"#));
    assert!(String::from_utf8_lossy(&images[0].manifest).starts_with(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1456,"digest":"sha256:16ea53ea"#
    ));
}

#[test]
fn blobs_read_from_several_threads() {
    let bundle = Bundle::open(testchart_bundle()).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    let layer = archive.images()[0].layers[0].clone();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    Digest::of_reader(archive.open_blob(&layer.digest).unwrap())
                        .unwrap()
                        .0
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), layer.digest);
        }
    });
}

fn helm_accepts(helm: &std::path::Path, tgz: &std::path::Path, name: &str) {
    let out = Command::new(helm)
        .arg("show")
        .arg("chart")
        .arg(tgz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} show chart: {}",
        helm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("name: {name}")));
    let out = Command::new(helm)
        .arg("template")
        .arg("x")
        .arg(tgz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} template: {}",
        helm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn package_is_accepted_by_real_helm_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = relok8s_fixtures();
    for (chart, name) in [
        (Chart::load_dir(dir.join("testchart")).unwrap(), "testchart"),
        (
            Chart::load_dir(dir.join("3-levels-chart")).unwrap(),
            "3-levels-chart",
        ),
        (
            Bundle::open(testchart_bundle()).unwrap().chart().unwrap(),
            "testchart",
        ),
        (
            Chart::load_tgz(dir.join("wordpress-11.0.4.tgz")).unwrap(),
            "wordpress",
        ),
    ] {
        let bytes = kantup_bundle::chart::package(&chart).unwrap();
        assert_eq!(
            bytes,
            kantup_bundle::chart::package(&chart).unwrap(),
            "deterministic"
        );
        let tgz = tmp.path().join(chart.archive_name());
        std::fs::write(&tgz, &bytes).unwrap();
        helm_accepts(&helm3(), &tgz, name);
        helm_accepts(&helm4(), &tgz, name);
        // Round trip through the archive and a directory keeps every file.
        let back = Chart::load_tgz(&tgz).unwrap();
        assert_eq!(back.files, chart.files);
        let out = tmp.path().join(format!("dir-{name}"));
        back.write_dir(&out).unwrap();
        assert_eq!(Chart::load_dir(&out).unwrap().metadata, chart.metadata);
    }
}

#[test]
fn wordpress_tgz_model() {
    let chart = Chart::load_tgz(relok8s_fixtures().join("wordpress-11.0.4.tgz")).unwrap();
    assert_eq!(chart.metadata.version.to_string(), "11.0.4");
    assert_eq!(chart.metadata.api_version, "v2");
    let deps: Vec<(&str, Option<&str>)> = chart
        .metadata
        .dependencies
        .iter()
        .map(|d| (d.name.as_str(), d.condition.as_deref()))
        .collect();
    assert!(
        deps.contains(&("mariadb", Some("mariadb.enabled"))),
        "{deps:?}"
    );
    let sub: Vec<&str> = chart.subcharts.iter().map(|c| c.name()).collect();
    assert!(sub.contains(&"mariadb"), "{sub:?}");
    let mut buf = String::new();
    std::io::Cursor::new(&chart.files["Chart.yaml"])
        .read_to_string(&mut buf)
        .unwrap();
    assert!(buf.contains("wordpress"));
}
