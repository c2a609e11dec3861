//! Relocation of the relok8s fixtures: values edited where relok8s edits them, with the values
//! relok8s writes (its internal/testdata/applyoutput expectations for 3-levels-chart), every
//! other line of every values.yaml byte-for-byte unchanged (comments kept).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kantup_bundle::hints::parse_hints;
use kantup_helm_values::relocate::{RelocationRule, apply_value_edits, relocate_chart_dir};

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
    let rules = RelocationRule {
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
    let rules = RelocationRule {
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
    let rules = RelocationRule {
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
    let err = relocate_chart_dir(&dir, &hints, &RelocationRule::default(), &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains(".nope.image"), "{err}");
    // Nothing was written.
    assert_eq!(
        read(&dir.join("values.yaml")),
        read(&kantup_test_support::relok8s_fixtures().join("testchart/values.yaml"))
    );
}

/// Writes `files` (path -> content) under `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Packs the chart directory `src` as `helm package` would, into `dest_dir/<name>-<version>.tgz`.
fn pack_into(src: &Path, dest_dir: &Path) -> PathBuf {
    let chart = kantup_bundle::chart::Chart::load_dir(src).unwrap();
    let out = dest_dir.join(chart.archive_name());
    std::fs::create_dir_all(dest_dir).unwrap();
    std::fs::write(&out, kantup_bundle::chart::package(&chart).unwrap()).unwrap();
    out
}

const BACKEND_VALUES: &str = "# backend defaults\nimage:\n  # where the app comes from\n  registry: docker.io\n  repository: acme/app # the app\n  tag: \"2.0\"\nreplicas: 1\n";
const SIDECAR_VALUES: &str = "# a whole reference\nimage: docker.io/library/busybox:1.36\n";

/// `umbrella` with `charts/backend-1.2.3.tgz` (aliased `api`; it packs
/// `charts/sidecar-0.0.1.tgz`) and a plain directory subchart `charts/frontend/`.
fn umbrella_with_packed_subcharts(tmp: &Path) -> PathBuf {
    let src = tmp.join("src");
    write_tree(
        &src.join("sidecar"),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: sidecar\nversion: 0.0.1\n",
            ),
            ("values.yaml", SIDECAR_VALUES),
            (
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sidecar\ndata:\n  image: {{ .Values.image | quote }}\n",
            ),
        ],
    );
    write_tree(
        &src.join("backend"),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: backend\nversion: 1.2.3\ndependencies:\n- name: sidecar\n  version: 0.0.1\n",
            ),
            ("values.yaml", BACKEND_VALUES),
            (
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backend\ndata:\n  image: \"{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
            ),
        ],
    );
    pack_into(&src.join("sidecar"), &src.join("backend/charts"));
    let dir = tmp.join("umbrella");
    write_tree(
        &dir,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n- name: backend\n  version: 1.2.3\n  alias: api\n- name: frontend\n  version: 0.1.0\n",
            ),
            ("values.yaml", "# umbrella\napi:\n  replicas: 2\n"),
            (
                "charts/frontend/Chart.yaml",
                "apiVersion: v2\nname: frontend\nversion: 0.1.0\n",
            ),
            (
                "charts/frontend/values.yaml",
                "image:\n  repository: docker.io/acme/web\n  tag: \"3\"\n",
            ),
            (
                "charts/frontend/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frontend\ndata:\n  image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
            ),
        ],
    );
    pack_into(&src.join("backend"), &dir.join("charts"));
    dir
}

fn helm_template(chart: &Path) -> String {
    let out = std::process::Command::new(kantup_test_support::helm3())
        .args(["template", "x"])
        .arg(chart)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn packed_subcharts_are_unpacked_and_relocated_nested_and_aliased() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella_with_packed_subcharts(tmp.path());
    let before = helm_template(&dir);
    for old in [
        "image: \"docker.io/acme/app:2.0\"",
        "image: \"docker.io/library/busybox:1.36\"",
        "image: \"docker.io/acme/web:3\"",
    ] {
        assert!(before.contains(old), "{before}");
    }

    let hints = parse_hints(
        "- \"{{ .api.image.registry }}/{{ .api.image.repository }}:{{ .api.image.tag }}\"\n\
         - \"{{ .api.sidecar.image }}\"\n\
         - \"{{ .frontend.image.repository }}:{{ .frontend.image.tag }}\"\n",
    )
    .unwrap();
    let rules = RelocationRule {
        registry: Some("reg.local:5000".into()),
        repository_prefix: Some("mirror".into()),
    };
    let report = relocate_chart_dir(&dir, &hints, &rules, &HashMap::new()).unwrap();
    let pairs: Vec<(&str, &str)> = report
        .images
        .iter()
        .map(|i| (i.original.as_str(), i.relocated.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("docker.io/acme/app:2.0", "reg.local:5000/mirror/app:2.0"),
            (
                "docker.io/library/busybox:1.36",
                "reg.local:5000/mirror/busybox:1.36"
            ),
            ("docker.io/acme/web:3", "reg.local:5000/mirror/web:3"),
        ]
    );

    // The archives became directories named after the chart (not the alias).
    assert!(!dir.join("charts/backend-1.2.3.tgz").exists());
    assert!(!dir.join("charts/backend/charts/sidecar-0.0.1.tgz").exists());
    assert!(dir.join("charts/backend/templates/cm.yaml").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut leftovers = leftovers;
    leftovers.sort();
    assert_eq!(leftovers, ["backend", "frontend"]);

    // Only the image lines changed; comments stay.
    assert_only_lines_changed(
        BACKEND_VALUES,
        &read(&dir.join("charts/backend/values.yaml")),
        &[
            (
                "  registry: docker.io\n",
                "  registry: \"reg.local:5000\"\n",
            ),
            (
                "  repository: acme/app # the app\n",
                "  repository: mirror/app # the app\n",
            ),
        ],
        "backend/values.yaml",
    );
    assert_only_lines_changed(
        SIDECAR_VALUES,
        &read(&dir.join("charts/backend/charts/sidecar/values.yaml")),
        &[(
            "image: docker.io/library/busybox:1.36\n",
            "image: \"reg.local:5000/mirror/busybox:1.36\"\n",
        )],
        "sidecar/values.yaml",
    );
    assert_eq!(
        read(&dir.join("values.yaml")),
        "# umbrella\napi:\n  replicas: 2\n"
    );

    // Helm renders the relocated images, and nothing of the old ones.
    let after = helm_template(&dir);
    for new in [
        "image: \"reg.local:5000/mirror/app:2.0\"",
        "image: \"reg.local:5000/mirror/busybox:1.36\"",
        "image: \"reg.local:5000/mirror/web:3\"",
    ] {
        assert!(after.contains(new), "{after}");
    }
    assert!(!after.contains("docker.io"), "{after}");
}

#[test]
fn packed_subchart_not_routed_into_stays_packed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella_with_packed_subcharts(tmp.path());
    let archive = read_bytes(&dir.join("charts/backend-1.2.3.tgz"));
    let hints =
        parse_hints("- \"{{ .frontend.image.repository }}:{{ .frontend.image.tag }}\"\n").unwrap();
    let rules = RelocationRule {
        registry: Some("reg.local:5000".into()),
        repository_prefix: None,
    };
    relocate_chart_dir(&dir, &hints, &rules, &HashMap::new()).unwrap();
    assert_eq!(read_bytes(&dir.join("charts/backend-1.2.3.tgz")), archive);
    assert!(!dir.join("charts/backend").exists());
    assert!(helm_template(&dir).contains("image: \"reg.local:5000/acme/web:3\""));
}

fn read_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A gzip tar holding `members` (raw names, so `..` can be written).
fn raw_tgz(members: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in members {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, content.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn unsafe_subchart_archive_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("parent");
    write_tree(
        &dir,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: parent\nversion: 1.0.0\n",
            ),
            ("values.yaml", "image: docker.io/acme/top:1\n"),
        ],
    );
    let evil = dir.join("charts/evil-1.0.0.tgz");
    std::fs::create_dir_all(evil.parent().unwrap()).unwrap();
    std::fs::write(
        &evil,
        raw_tgz(&[
            (
                "evil/Chart.yaml",
                "apiVersion: v2\nname: evil\nversion: 1.0.0\n",
            ),
            ("evil/values.yaml", "image: docker.io/acme/evil:1\n"),
            ("evil/../../escaped.txt", "outside\n"),
        ]),
    )
    .unwrap();
    let hints = parse_hints("- \"{{ .evil.image }}\"\n").unwrap();
    let rules = RelocationRule {
        registry: Some("reg.local:5000".into()),
        repository_prefix: None,
    };
    let err = relocate_chart_dir(&dir, &hints, &rules, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("evil-1.0.0.tgz") && err.contains(".."),
        "{err}"
    );
    assert!(evil.is_file());
    assert!(!dir.join("charts/evil").exists());
    assert!(!tmp.path().join("escaped.txt").exists());
    assert_eq!(
        read(&dir.join("values.yaml")),
        "image: docker.io/acme/top:1\n"
    );
}

#[test]
fn packed_subchart_whose_directory_name_is_taken_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella_with_packed_subcharts(tmp.path());
    // Not a chart (no Chart.yaml), but it holds the name the archive would unpack to.
    write_tree(&dir, &[("charts/backend/notes.txt", "keep me\n")]);
    let archive = read_bytes(&dir.join("charts/backend-1.2.3.tgz"));
    let hints = parse_hints("- \"{{ .api.sidecar.image }}\"\n").unwrap();
    let err = relocate_chart_dir(&dir, &hints, &RelocationRule::default(), &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("backend-1.2.3.tgz") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(read_bytes(&dir.join("charts/backend-1.2.3.tgz")), archive);
    assert_eq!(read(&dir.join("charts/backend/notes.txt")), "keep me\n");
    assert!(!dir.join("charts/backend/values.yaml").exists());
    let hidden: Vec<_> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}
