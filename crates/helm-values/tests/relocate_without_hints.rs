//! Relocation without hints: the images a chart lists (annotations, Images.lock) are found in
//! its values (registry/repository/tag maps, single `image` strings, a subchart's values) and
//! rewritten with the one relocation rule; what real helm 3 and 4 render afterwards names the
//! relocated images, and an image no value names is reported, its manifest left alone.

use std::path::Path;
use std::process::Command;

use kantup_bundle::reference::Reference;
use kantup_helm_values::relocate::{RelocationRule, find_value_images, relocate_chart_dir};

fn load(dir: &Path) -> kantup_bundle::chart::Chart {
    kantup_bundle::chart::Chart::load(dir).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn chart(dir: &Path) {
    write(
        dir,
        "Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"1.25\"\ndependencies:\n- name: db\n  version: 2.0.0\n  alias: database\n",
    );
    write(
        dir,
        "values.yaml",
        "# the web server\nimage:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: 1.25.3  # pinned\n  pullPolicy: IfNotPresent\nsidecar:\n  image: quay.io/team/sidecar:2.0\nhelper:\n  image:\n    repository: ghcr.io/team/helper\n    tag: \"7\"\nunrelated:\n  image: not-in-the-list:1\n",
    );
    write(
        dir,
        "templates/pods.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: web\n    image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n  - name: sidecar\n    image: {{ .Values.sidecar.image }}\n  - name: helper\n    image: {{ .Values.helper.image.repository }}:{{ .Values.helper.image.tag }}\n  - name: fixed\n    image: registry.k8s.io/pause:3.9\n",
    );
    write(
        dir,
        "charts/db/Chart.yaml",
        "apiVersion: v2\nname: db\nversion: 2.0.0\n",
    );
    write(
        dir,
        "charts/db/values.yaml",
        "image:\n  registry: docker.io\n  repository: bitnami/mariadb\n  tag: \"11.2\"\n",
    );
    write(
        dir,
        "charts/db/templates/pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db}\nspec:\n  containers:\n  - name: db\n    image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
    );
}

fn images() -> Vec<Reference> {
    [
        "docker.io/bitnami/nginx:1.25.3",
        "quay.io/team/sidecar:2.0",
        "ghcr.io/team/helper:7",
        "docker.io/bitnami/mariadb:11.2",
        "registry.k8s.io/pause:3.9",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn rendered_images(helm: &Path, dir: &Path) -> Vec<String> {
    let out = Command::new(helm)
        .args(["template", "rel"])
        .arg(dir)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut found: Vec<String> = kantup_bundle::discovery::images_in_manifests(&text)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    found.sort();
    found
}

#[test]
fn finds_every_form_and_helm_renders_the_relocated_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("web");
    chart(&dir);
    let found = find_value_images(&load(&dir), &images()).unwrap();
    let templates: Vec<&str> = found.patterns.iter().map(|p| p.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}",
            "{{ .sidecar.image }}",
            "{{ .helper.image.repository }}:{{ .helper.image.tag }}",
            "{{ .database.image.registry }}/{{ .database.image.repository }}:{{ .database.image.tag }}",
        ]
    );
    assert_eq!(found.unmapped, ["registry.k8s.io/pause:3.9"]);

    let rules = RelocationRule {
        registry: Some("reg.local:5000".into()),
        repository_prefix: Some("mirror".into()),
    };
    let report = relocate_chart_dir(&dir, &found.patterns, &rules, &Default::default()).unwrap();
    assert_eq!(report.images.len(), 4);
    let values = std::fs::read_to_string(dir.join("values.yaml")).unwrap();
    assert!(values.contains("  tag: 1.25.3  # pinned\n"), "{values}");
    assert!(values.contains("# the web server\n"), "{values}");
    for helm in [kantup_test_support::helm3(), kantup_test_support::helm4()] {
        assert_eq!(
            rendered_images(&helm, &dir),
            [
                "reg.local:5000/mirror/helper:7",
                "reg.local:5000/mirror/mariadb:11.2",
                "reg.local:5000/mirror/nginx:1.25.3",
                "reg.local:5000/mirror/sidecar:2.0",
                "registry.k8s.io/pause:3.9",
            ],
            "{}",
            helm.display()
        );
    }
}

#[test]
fn a_repository_alone_is_not_taken_for_a_whole_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bare");
    write(
        &dir,
        "Chart.yaml",
        "apiVersion: v2\nname: bare\nversion: 1.0.0\n",
    );
    // The tag comes from the template (`default .Chart.AppVersion`): writing a whole reference
    // into `repository` would break the rendered image, so this value is not used.
    write(
        &dir,
        "values.yaml",
        "image:\n  repository: bitnami/nginx\n  tag: \"\"\n",
    );
    let images = vec!["docker.io/bitnami/nginx:1.25".parse().unwrap()];
    let found = find_value_images(&load(&dir), &images).unwrap();
    assert!(found.patterns.is_empty(), "{:?}", found.patterns);
    assert_eq!(found.unmapped, ["docker.io/bitnami/nginx:1.25"]);
}
