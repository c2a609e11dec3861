//! The kant module as the seed ships it, for the tests that run against the real API server:
//! chart versions 0.4.0 and 0.5.0 (0.5.0 changes the `widgets` CRD and adds a `gadgets` CRD
//! larger than kubectl's 256 KiB annotation limit), bundles made with `kantup bundle create`,
//! and a runner for the kantup binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::kube_cluster::KubeCluster;

/// The registry the seed's `--set global.imageRegistry=$reg` names (a private address).
pub const REGISTRY: &str = "10.16.10.111:5000";

/// The image the kant chart's values name (`docker.io/kant/gen-app-00:1.0.0`, as
/// kantup-test-support's image generator names its first image).
pub const KANT_IMAGE_REPOSITORY: &str = "kant/gen-app-00";
/// Its tag.
pub const KANT_IMAGE_TAG: &str = "1.0.0";

/// What differs between the chart versions a test writes.
#[derive(Debug, Clone)]
pub struct KantChart {
    /// The chart version (`0.4.0`, `0.5.0`).
    pub version: String,
    /// The API group of the CRDs, unique per test (CRDs are cluster-wide).
    pub group: String,
    /// `crds/widgets.yaml`: `v1alpha1` only (0.4.0) or with a `color` property and a served
    /// `v1beta1` (0.5.0).
    pub widgets_v2: bool,
    /// `crds/gadgets.yaml`, a CRD of about 400 KiB (320 KiB as JSON).
    pub big_gadgets: bool,
    /// A template the API server rejects (an invalid ConfigMap name): `helm upgrade` fails.
    pub broken_template: bool,
    /// A subchart `addon` with its own `crds/`, enabled by `addon.enabled`.
    pub addon: bool,
}

impl KantChart {
    /// kant 0.4.0: one CRD.
    pub fn v040(group: &str) -> Self {
        Self {
            version: "0.4.0".into(),
            group: group.into(),
            widgets_v2: false,
            big_gadgets: false,
            broken_template: false,
            addon: false,
        }
    }

    /// kant 0.5.0: the widgets CRD changed, a new CRD over 256 KiB.
    pub fn v050(group: &str) -> Self {
        Self {
            version: "0.5.0".into(),
            widgets_v2: true,
            big_gadgets: true,
            ..Self::v040(group)
        }
    }

    /// The widgets CRD's name.
    pub fn widgets(&self) -> String {
        format!("widgets.{}", self.group)
    }

    /// The gadgets CRD's name.
    pub fn gadgets(&self) -> String {
        format!("gadgets.{}", self.group)
    }

    /// Writes the chart directory `dir/kant-<version>` and returns it.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let chart = dir.join(format!("kant-{}", self.version));
        let write = |name: &str, text: &str| {
            let path = chart.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let mut chart_yaml = format!(
            "apiVersion: v2\nname: kant\nversion: {}\nappVersion: v{}\n",
            self.version, self.version
        );
        if self.addon {
            chart_yaml.push_str(
                "dependencies:\n- name: addon\n  version: 0.1.0\n  condition: addon.enabled\n",
            );
        }
        write("Chart.yaml", &chart_yaml);
        write(
            "values.yaml",
            &format!(
                "global:\n  imageRegistry: docker.io\nimage:\n  repository: {KANT_IMAGE_REPOSITORY}\n  \
                 tag: \"{KANT_IMAGE_TAG}\"\nreplicas: 1\naddon:\n  enabled: false\n"
            ),
        );
        write(
            "templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n\
             data:\n  image: \"{{ .Values.global.imageRegistry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n  \
             replicas: \"{{ .Values.replicas }}\"\n",
        );
        write(
            "templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-controller\n\
             spec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels: {app: kant}\n  \
             template:\n    metadata:\n      labels: {app: kant}\n    spec:\n      containers:\n      \
             - name: controller\n        image: \"{{ .Values.global.imageRegistry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
        );
        if self.broken_template {
            write(
                "templates/broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\ndata: {}\n",
            );
        }
        write(
            "crds/widgets.yaml",
            &widgets_crd(&self.group, self.widgets_v2),
        );
        if self.big_gadgets {
            write(
                "crds/gadgets.yaml",
                &big_crd(&self.group, "Gadget", "gadgets", 400 * 1024),
            );
        }
        if self.addon {
            write(
                "charts/addon/Chart.yaml",
                "apiVersion: v2\nname: addon\nversion: 0.1.0\n",
            );
            write("charts/addon/values.yaml", "enabled: false\n");
            write(
                "charts/addon/crds/sprockets.yaml",
                &small_crd(&self.group, "Sprocket", "sprockets"),
            );
        }
        chart
    }

    /// Writes the chart and packs it as a relok8s bundle with `kantup bundle create`, with the
    /// image its values name (a small generated one): a bundle carries what its chart needs.
    pub fn bundle(&self, dir: &Path) -> PathBuf {
        let chart = self.write(dir);
        let images = dir.join(format!("images-{}", self.version));
        let generated = kantup_test_support::image_gen::generate_layout(
            &images,
            &kantup_test_support::image_gen::GenSpec {
                images: 1,
                base_layers: 1,
                base_layer_size: 4 * 1024,
                own_layer_size: 1024,
                seed: 3,
                source_prefix: "docker.io/kant".into(),
            },
        )
        .unwrap();
        assert_eq!(
            generated[0].reference,
            format!("docker.io/{KANT_IMAGE_REPOSITORY}:{KANT_IMAGE_TAG}")
        );
        let hints = dir.join(format!("hints-{}.yaml", self.version));
        std::fs::write(
            &hints,
            "- \"{{ .global.imageRegistry }}/{{ .image.repository }}:{{ .image.tag }}\"\n",
        )
        .unwrap();
        let bundle = dir.join(format!("kant-{}.bundle.tar", self.version));
        let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
            .arg("bundle")
            .arg("create")
            .arg(&bundle)
            .arg("--chart")
            .arg(&chart)
            .arg("--hints")
            .arg(&hints)
            .arg("--images")
            .arg(&images)
            .output()
            .unwrap();
        assert!(output.status.success(), "bundle create: {}", text(&output));
        bundle
    }
}

/// The widgets CRD: `v1alpha1` with `spec.size`; `v2` adds `spec.color` and a served
/// `v1beta1`.
pub fn widgets_crd(group: &str, v2: bool) -> String {
    let mut crd = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
"#
    );
    if v2 {
        crd.push_str(
            r#"              color:
                type: string
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#,
        );
    }
    crd
}

/// A minimal valid CRD `plural.group` of kind `kind`.
pub fn small_crd(group: &str, kind: &str, plural: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    \
         kind: {kind}\n    plural: {plural}\n  versions:\n  - name: v1\n    served: true\n    \
         storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        \
         x-kubernetes-preserve-unknown-fields: true\n"
    )
}

/// A valid CRD of at least `size` bytes: many described string properties.
pub fn big_crd(group: &str, kind: &str, plural: &str, size: usize) -> String {
    let mut properties = String::new();
    let mut n = 0;
    while properties.len() < size {
        properties.push_str(&format!(
            "              field{n:05}:\n                type: string\n                \
             description: \"{}\"\n",
            "a documented field of a large custom resource ".repeat(2)
        ));
        n += 1;
    }
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    \
         kind: {kind}\n    plural: {plural}\n  versions:\n  - name: v1\n    served: true\n    \
         storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        \
         properties:\n          spec:\n            type: object\n            properties:\n{properties}"
    )
}

/// stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `kantup ARGS` with `KUBECONFIG` set to `kubeconfig` and helm's caches kept in `home`.
pub fn kantup(kubeconfig: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .env_remove("HELM_DRIVER")
        // These tests' clusters run no kubelet (or no controllers): nothing would become ready.
        // The readiness wait has tests of its own (upgrade_wait_cluster.rs).
        .env("KANTUP_NO_WAIT", "true")
        // Their charts name images at a private address no registry here serves; the image
        // check has tests of its own (upgrade_image_check.rs).
        .env("KANTUP_SKIP_IMAGE_CHECK", "true")
        .output()
        .expect("run kantup")
}

/// `kantup ARGS` isolated from the caller's registry credentials (`TARGET_*`, `KANTUP_REPO_*`,
/// docker's config) and log settings, for tests against a local registry.
pub fn kantup_isolated_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kantup"));
    command
        .args(args)
        .env_remove("TARGET_CONTAINERS_AUTH_USERNAME")
        .env_remove("TARGET_REPO_AUTH_USERNAME")
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("RUST_LOG")
        .env("DOCKER_CONFIG", "/nonexistent-kantup-docker-config");
    command
}

/// Runs [`kantup_isolated_command`].
pub fn kantup_isolated(args: &[&str]) -> Output {
    kantup_isolated_command(args).output().expect("run kantup")
}

/// Asserts success and returns stdout.
pub fn ok(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what}: {}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// A CRD's spec as the server stores it (JSON), for comparing two clusters.
pub fn crd_spec(cluster: &KubeCluster, name: &str) -> serde_json::Value {
    let json = cluster.kubectl(&["get", "crd", name, "-o", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["spec"].clone()
}

/// The field managers of a CRD (`metadata.managedFields[].manager`).
pub fn crd_managers(cluster: &KubeCluster, name: &str) -> Vec<String> {
    let json = cluster.kubectl(&["get", "crd", name, "-o", "json", "--show-managed-fields"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap().to_string())
        .collect()
}

/// The CRD's `metadata.resourceVersion`.
pub fn resource_version(cluster: &KubeCluster, kind: &str, name: &str, ns: Option<&str>) -> String {
    let mut args = vec![
        "get",
        kind,
        name,
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    cluster.kubectl(&args)
}

/// Writes one kubeconfig with a context (and cluster and user) named after each server: the
/// fleet of the fleet upgrade's test and bench.
pub fn combined_kubeconfig(path: &Path, servers: &[(&str, &KubeCluster)]) {
    let (mut clusters, mut users, mut contexts) = (Vec::new(), Vec::new(), Vec::new());
    for (name, server) in servers {
        let one: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(server.kubeconfig()).unwrap()).unwrap();
        clusters.push(
            serde_json::json!({"name": name, "cluster": yaml_json(&one["clusters"][0]["cluster"])}),
        );
        users.push(serde_json::json!({"name": name, "user": yaml_json(&one["users"][0]["user"])}));
        contexts
            .push(serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": servers[0].0,
        "clusters": clusters, "users": users, "contexts": contexts,
    });
    std::fs::write(path, serde_json::to_string(&config).unwrap()).unwrap();
}

fn yaml_json(value: &serde_yaml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}
