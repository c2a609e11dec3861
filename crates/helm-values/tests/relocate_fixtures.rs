//! Relocation of the relok8s fixtures: values edited where relok8s edits them, with the values
//! relok8s writes (its internal/testdata/applyoutput expectations for 3-levels-chart), every
//! other line of every values.yaml byte-for-byte unchanged (comments kept).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kantup_bundle::hints::parse_hints;
use kantup_helm_values::relocate::{RelocationRules, apply_value_edits, relocate_chart_dir};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn fixture(name: &str, tmp: &Path) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&kantup_test_support::relok8s_fixtures().join(name), &dir);
    dir
}

/// Asserts `after` is `before` with exactly the given (old line -> new line) replacements.
fn assert_only_lines_changed(before: &str, after: &str, changes: &[(&str, &str)], file: &str) {
    let mut expected = before.to_string();
    for (old, new) in changes {
        assert_eq!(
            expected.matches(old).count(),
            1,
            "{file}: line {old:?} must occur once"
        );
        expected = expected.replacen(old, new, 1);
    }
    assert_eq!(after, expected, "{file}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn three_levels_chart_matches_relok8s_apply_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("3-levels-chart", tmp.path());
    let original = kantup_test_support::relok8s_fixtures().join("3-levels-chart");
    let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
    let actions = vec![
        (
            p("subchart-1.image.repository"),
            "changed-subchart".to_string(),
        ),
        (p("subchart-1.image.tag"), "updated-tag".to_string()),
        (
            p("subchart-1.subchart-3.image.repository"),
            "changed-sub-sub-chart".to_string(),
        ),
        (p("subchart-2.image.tag"), "updated-tag".to_string()),
    ];
    let edits = apply_value_edits(&dir, &actions).unwrap();
    assert_eq!(edits.len(), 4);
    // relok8s's expected files differ from the inputs in exactly these lines.
    let files: &[(&str, &[(&str, &str)])] = &[
        ("values.yaml", &[]),
        (
            "charts/subchart-1/values.yaml",
            &[
                ("  repository: nginx\n", "  repository: changed-subchart\n"),
                ("  tag: \"\"\n", "  tag: updated-tag\n"),
            ],
        ),
        (
            "charts/subchart-1/charts/subchart-3/values.yaml",
            &[(
                "  repository: nginx\n",
                "  repository: changed-sub-sub-chart\n",
            )],
        ),
        (
            "charts/subchart-2/values.yaml",
            &[("  tag: \"\"\n", "  tag: updated-tag\n")],
        ),
    ];
    for (file, changes) in files {
        assert_only_lines_changed(
            &read(&original.join(file)),
            &read(&dir.join(file)),
            changes,
            file,
        );
    }
}

#[test]
fn testchart_relocates_with_subchart_routing_and_digest_pinning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("testchart", tmp.path());
    let original = kantup_test_support::relok8s_fixtures().join("testchart");
    let hints = parse_hints(&read(
        &kantup_test_support::relok8s_fixtures().join("testchart.images.yaml"),
    ))
    .unwrap();
    let rules = RelocationRules {
        registry: Some("my.registry.io:5000".into()),
        repository_prefix: Some("my-project".into()),
    };
    let digest = format!("sha256:{}", "ab".repeat(32));
    let digests = HashMap::from([(
        "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest".to_string(),
        digest.clone(),
    )]);
    let report = relocate_chart_dir(&dir, &hints, &rules, &digests).unwrap();
    let pairs: Vec<(String, String)> = report
        .images
        .iter()
        .map(|i| (i.original.clone(), i.relocated.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest".to_string(),
                "my.registry.io:5000/my-project/tiny:tiniest".to_string()
            ),
            (
                "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest".to_string(),
                format!("my.registry.io:5000/my-project/tiny@{digest}")
            ),
            (
                "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1".to_string(),
                "my.registry.io:5000/my-project/busybox:1.33.1".to_string()
            ),
        ],
        "{report:#?}"
    );
    assert_only_lines_changed(
        &read(&original.join("values.yaml")),
        &read(&dir.join("values.yaml")),
        &[
            (
                "  repository: harbor-repo.vmware.com/tanzu_isv_engineering/tiny\n",
                "  repository: \"my.registry.io:5000/my-project/tiny\"\n",
            ),
            (
                "  image: harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest\n",
                &format!("  image: \"my.registry.io:5000/my-project/tiny@{digest}\"\n"),
            ),
            (
                "  image: harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1\n",
                "  image: \"my.registry.io:5000/my-project/busybox:1.33.1\"\n",
            ),
        ],
        "values.yaml",
    );
    assert_only_lines_changed(
        &read(&original.join("charts/subchart/values.yaml")),
        &read(&dir.join("charts/subchart/values.yaml")),
        &[(
            "  name: harbor-repo.vmware.com/tanzu_isv_engineering/tiny\n",
            "  name: \"my.registry.io:5000/my-project/tiny\"\n",
        )],
        "charts/subchart/values.yaml",
    );
    // Helm renders the relocated chart with the new references.
    let values = kantup_helm_values::merge::render_values(
        &kantup_helm_values::chart::Chart::load(&dir).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(values["subchart"]["image"]["tag"], "tiniest");
}

#[test]
fn complex_chart_global_registry_and_ten_subcharts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("complex-chart", tmp.path());
    let original = kantup_test_support::relok8s_fixtures().join("complex-chart");
    let hints = parse_hints(&read(&dir.join(".relok8s-images.yaml"))).unwrap();
    let rules = RelocationRules {
        registry: Some("registry.local".into()),
        repository_prefix: Some("mirror/apps".into()),
    };
    let report = relocate_chart_dir(&dir, &hints, &rules, &HashMap::new()).unwrap();
    assert!(!report.images.is_empty());
    for image in &report.images {
        assert!(
            image.relocated.starts_with("registry.local/mirror/apps/"),
            "{image:?}"
        );
    }
    assert_only_lines_changed(
        &read(&original.join("values.yaml")),
        &read(&dir.join("values.yaml")),
        &[(
            "  imageRegistry: harbor-repo.vmware.com/tanzu_isv_engineering\n",
            "  imageRegistry: registry.local\n",
        )],
        "values.yaml",
    );
    for n in 1..=9 {
        let file = format!("charts/subchart-{n}/values.yaml");
        let before = read(&original.join(&file));
        let name_line = before
            .lines()
            .find(|l| l.trim_start().starts_with("imageName:"))
            .unwrap();
        let name = name_line
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .trim_matches('"');
        let indent = &name_line[..name_line.len() - name_line.trim_start().len()];
        let new_line = format!("{indent}imageName: mirror/apps/{name}\n");
        assert_only_lines_changed(
            &before,
            &read(&dir.join(&file)),
            &[(&format!("{name_line}\n"), &new_line)],
            &file,
        );
    }
}

#[test]
fn wordpress_registry_repository_tag_triples_into_subcharts() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = std::fs::read(kantup_test_support::relok8s_fixtures().join("wordpress-11.0.4.tgz"))
        .unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]))
        .unpack(tmp.path())
        .unwrap();
    let dir = tmp.path().join("wordpress");
    let before_parent = read(&dir.join("values.yaml"));
    let before_mariadb = read(&dir.join("charts/mariadb/values.yaml"));
    let hints = parse_hints(&read(
        &kantup_test_support::relok8s_fixtures().join("wordpress-11.0.4.images.yaml"),
    ))
    .unwrap();
    let rules = RelocationRules {
        registry: Some("reg.example:443".into()),
        repository_prefix: Some("airgap".into()),
    };
    let report = relocate_chart_dir(&dir, &hints, &rules, &HashMap::new()).unwrap();
    // 8 hints, 7 distinct images (bitnami-shell serves wordpress and mariadb), 16 values
    // (registry and repository of each hint; tags stay).
    assert_eq!(report.images.len(), 7, "{report:#?}");
    assert_eq!(report.edits.len(), 16, "{report:#?}");
    for image in &report.images {
        assert!(
            image.original.starts_with("docker.io/bitnami/"),
            "{image:?}"
        );
        let tag = image.original.rsplit(':').next().unwrap();
        assert!(
            image.relocated.starts_with("reg.example:443/airgap/"),
            "{image:?}"
        );
        assert!(
            image.relocated.ends_with(&format!(":{tag}")),
            "tags are kept: {image:?}"
        );
    }
    // Parent: three registries and three repositories changed, nothing else.
    let after_parent = read(&dir.join("values.yaml"));
    let changed: Vec<(&str, &str)> = before_parent
        .lines()
        .zip(after_parent.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before_parent.lines().count(), after_parent.lines().count());
    assert_eq!(changed.len(), 6, "{changed:#?}");
    for (old, new) in &changed {
        assert!(
            (old.trim_start().starts_with("registry: docker.io")
                && new.trim_start() == "registry: \"reg.example:443\"")
                || (old.trim_start().starts_with("repository: bitnami/")
                    && new.trim_start().starts_with("repository: airgap/")),
            "{old} -> {new}"
        );
    }
    // Subchart values went into the subchart's own values.yaml; comments kept.
    let after_mariadb = read(&dir.join("charts/mariadb/values.yaml"));
    assert_ne!(before_mariadb, after_mariadb);
    let comments = |t: &str| {
        t.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(comments(&before_mariadb), comments(&after_mariadb));
    assert_eq!(comments(&before_parent), comments(&after_parent));
    let values = kantup_helm_values::merge::render_values(
        &kantup_helm_values::chart::Chart::load(&dir).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(values["mariadb"]["image"]["registry"], "reg.example:443");
    assert_eq!(values["mariadb"]["image"]["repository"], "airgap/mariadb");
}

#[test]
fn bad_hint_names_the_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("testchart", tmp.path());
    let hints = parse_hints("- \"{{ .nope.image }}:{{ .image.tag }}\"\n").unwrap();
    let err = relocate_chart_dir(&dir, &hints, &RelocationRules::default(), &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains(".nope.image"), "{err}");
    // Nothing was written.
    assert_eq!(
        read(&dir.join("values.yaml")),
        read(&kantup_test_support::relok8s_fixtures().join("testchart/values.yaml"))
    );
}
