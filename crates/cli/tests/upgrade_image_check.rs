//! `kantup upgrade`'s image check before any change, against a real docker-registry and the
//! real kube-apiserver with helm 3.17: images missing from the registry are refused naming the
//! image, its registry and its workload, with nothing changed (revision and CRDs as before);
//! `--plan` shows the same refusal; a registry that asks for credentials is reported as access
//! denied, not as missing; once the image is pushed, the upgrade goes ahead.

mod common;

use std::process::Output;

use common::{KANT_IMAGE_REPOSITORY, KANT_IMAGE_TAG, KantChart, resource_version, text};
use kantup_test_support::image_gen::{GenSpec, generate_layout};
use kantup_test_support::kube_cluster::{KubeCluster, cluster_or_skip, unique_name};
use kantup_test_support::registry_server::RegistryServer;

struct Site {
    cluster: &'static KubeCluster,
    ns: String,
    group: String,
    dir: tempfile::TempDir,
}

impl Site {
    fn new(test: &str) -> Option<Self> {
        let cluster = cluster_or_skip(test)?;
        Some(Self {
            ns: cluster.namespace("images"),
            group: format!("{}.kant.test", unique_name("img")),
            cluster,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn install_040(&self, registry: &str) {
        let chart = KantChart::v040(&self.group).write(self.dir.path());
        self.cluster.helm(
            &kantup_test_support::helm3(),
            &[
                "install",
                "kant",
                chart.to_str().unwrap(),
                "-n",
                &self.ns,
                "--set",
                &format!("global.imageRegistry={registry}"),
            ],
        );
    }

    /// `kantup upgrade` to kant 0.5.0 with its images at `registry` (plain HTTP), the image
    /// check on and no wait (this cluster runs no controllers).
    fn upgrade_050(&self, registry: &str, extra: &[&str]) -> Output {
        let chart = KantChart::v050(&self.group).write(self.dir.path());
        let helm = kantup_test_support::helm3();
        std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args([
                "upgrade",
                chart.to_str().unwrap(),
                "--release",
                "kant",
                "-n",
                &self.ns,
            ])
            .args(["--image-registry", registry, "--plain-http", "--no-wait"])
            .arg("--backup-dir")
            .arg(self.dir.path().join("backups"))
            .arg("--helm")
            .arg(helm)
            .args(extra)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .env("HELM_CACHE_HOME", self.dir.path().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.path().join("helm-data"))
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env_remove("HELM_DRIVER")
            .env_remove("KANTUP_SKIP_IMAGE_CHECK")
            .env_remove("TARGET_CONTAINERS_AUTH_USERNAME")
            .env_remove("TARGET_CONTAINERS_AUTH_PASSWORD")
            .output()
            .expect("run kantup")
    }

    fn revisions(&self) -> String {
        self.cluster.helm(
            &kantup_test_support::helm3(),
            &["history", "kant", "-n", &self.ns, "-o", "json"],
        )
    }
}

/// Pushes a generated image to `registry` under the name the kant chart's values give its
/// image (`KANT_IMAGE_REPOSITORY:KANT_IMAGE_TAG`).
fn push_controller(registry: &str, dir: &std::path::Path) {
    let layout = dir.join("layout");
    let images = generate_layout(
        &layout,
        &GenSpec {
            images: 1,
            base_layers: 1,
            base_layer_size: 1024,
            own_layer_size: 1024,
            ..GenSpec::default()
        },
    )
    .unwrap();
    kantup_test_support::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{}", layout.display(), images[0].reference),
        &format!("docker://{registry}/{KANT_IMAGE_REPOSITORY}:{KANT_IMAGE_TAG}"),
    ]);
}

#[test]
fn missing_images_are_refused_before_any_change_then_pushed_ones_pass() {
    let Some(site) = Site::new("upgrade_image_check") else {
        return;
    };
    let registry = RegistryServer::start();
    let host = registry.host();
    site.install_040(&host);
    let widgets = KantChart::v040(&site.group).widgets();
    let crd_version = resource_version(site.cluster, "crd", &widgets, None);
    let history = site.revisions();

    let plan = site.upgrade_050(&host, &["--plan"]);
    let image = format!("{host}/{KANT_IMAGE_REPOSITORY}:{KANT_IMAGE_TAG}");
    let refusal =
        format!("image {image} (registry {host}, used by Deployment/kant-controller): missing");
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!("would refuse: {refusal}")),
        "{}",
        text(&plan)
    );

    let refused = site.upgrade_050(&host, &["--yes"]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(all.contains(&refusal), "{all}");
    assert!(all.contains("nothing was changed"), "{all}");
    assert_eq!(site.revisions(), history, "no helm run");
    assert_eq!(
        resource_version(site.cluster, "crd", &widgets, None),
        crd_version,
        "CRD untouched"
    );
    let gadgets = KantChart::v050(&site.group).gadgets();
    assert!(
        !site
            .cluster
            .kubectl_output(&["get", "crd", &gadgets], None)
            .status
            .success(),
        "no CRD created"
    );
    assert!(!site.dir.path().join("backups").exists(), "no file written");

    push_controller(&host, site.dir.path());
    let upgraded = site.upgrade_050(&host, &["--yes"]);
    let all = text(&upgraded);
    assert_eq!(upgraded.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!(
            "image {image} (registry {host}, used by Deployment/kant-controller): present"
        )),
        "{all}"
    );
    assert!(all.contains("revision 1 -> 2"), "{all}");
}

#[test]
fn a_registry_that_wants_credentials_is_reported_as_denied_not_missing() {
    let Some(site) = Site::new("upgrade_image_check_denied") else {
        return;
    };
    let registry = RegistryServer::start_basic("kant", "s3cret-pass");
    let host = registry.host();
    site.install_040(&host);
    let refused = site.upgrade_050(&host, &["--yes"]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("image {host}/{KANT_IMAGE_REPOSITORY}:{KANT_IMAGE_TAG} (registry {host}, used by Deployment/kant-controller): access denied")),
        "{all}"
    );
    assert!(!all.contains("): missing"), "{all}");
}

/// An image from the bundle must be in the registry at the bundle's digest: another image
/// pushed under the same tag is refused (here in `--plan`, which changes nothing anyway).
#[test]
fn an_image_at_another_digest_than_the_bundles_is_refused() {
    let Some(cluster) = cluster_or_skip("upgrade_image_check_digest") else {
        return;
    };
    let ns = cluster.namespace("images-digest");
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryServer::start();
    let host = registry.host();
    let generated = |name: &str, seed: u64| {
        let layout = dir.path().join(name);
        let images = generate_layout(
            &layout,
            &GenSpec {
                images: 1,
                base_layers: 1,
                base_layer_size: 1024,
                own_layer_size: 1024,
                seed,
                source_prefix: "example.com/kantup".into(),
            },
        )
        .unwrap();
        (layout, images.into_iter().next().unwrap())
    };
    let (layout, image) = generated("bundle-images", 11);
    let (other_layout, other) = generated("other-images", 12);
    assert_eq!(image.reference, other.reference);
    assert_ne!(image.manifest_digest, other.manifest_digest);
    // A chart running the bundle's image, relocated by global.imageRegistry.
    let chart = dir.path().join("app");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "global:\n  imageRegistry: example.com\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  \
         template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n      \
         - {name: app, image: \"{{ .Values.global.imageRegistry }}/kantup/gen-app-00:1.0.0\"}\n",
    )
    .unwrap();
    let hints = dir.path().join("hints.yaml");
    std::fs::write(
        &hints,
        "- \"{{ .global.imageRegistry }}/kantup/gen-app-00:1.0.0\"\n",
    )
    .unwrap();
    let bundle = dir.path().join("app.bundle.tar");
    ok_status(
        std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args(["bundle", "create"])
            .arg(&bundle)
            .arg("--chart")
            .arg(&chart)
            .arg("--hints")
            .arg(&hints)
            .arg("--images")
            .arg(&layout)
            .output()
            .unwrap(),
    );
    let target = format!("{host}/kantup/gen-app-00:1.0.0");
    kantup_test_support::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &format!("oci:{}:{}", other_layout.display(), other.reference),
        &format!("docker://{target}"),
    ]);
    let plan = |_: ()| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args([
                "upgrade",
                bundle.to_str().unwrap(),
                "--release",
                "app",
                "-n",
                &ns,
            ])
            .args(["--image-registry", &host, "--plain-http", "--plan"])
            .arg("--helm")
            .arg(kantup_test_support::helm3())
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .env_remove("KANTUP_SKIP_IMAGE_CHECK")
            .env_remove("TARGET_CONTAINERS_AUTH_USERNAME")
            .output()
            .unwrap()
    };
    let refused = plan(());
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "would refuse: image {target} (registry {host}, used by Deployment/app): at digest {}, but the bundle has {}",
            other.manifest_digest, image.manifest_digest
        )),
        "{all}"
    );
    // The bundle's own image under that tag passes.
    kantup_test_support::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &format!("oci:{}:{}", layout.display(), image.reference),
        &format!("docker://{target}"),
    ]);
    let passed = plan(());
    let all = text(&passed);
    assert_eq!(passed.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!(
            "image {target} (registry {host}, used by Deployment/app): present"
        )),
        "{all}"
    );
}

fn ok_status(output: Output) {
    assert!(output.status.success(), "{}", text(&output));
}
