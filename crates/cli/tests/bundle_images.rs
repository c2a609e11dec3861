//! Which images a bundle must carry, against a real docker-registry.
//!
//! relok8s-layout bundles without a `hints.yaml` member (as other tools and hands make them):
//! their images are found as a chart's are (the chart's own `.relok8s-images.yaml`, then
//! `Images.lock`, then `Chart.yaml` annotations), and they inspect, verify and sync.
//!
//! Bundles that do not carry what their chart needs: an `images.tar` with an empty
//! `manifest.json` while four hints name images, a hint that renders to an unparsable
//! reference, an archive entry whose `RepoTags` name is not a reference. `bundle verify`
//! refuses each, and `sync`, `load` and `upgrade` refuse them before any change (nothing
//! reaches the registry, the runtime or the cluster), naming the images;
//! `--allow-missing-images` lets a bundle that lacks images on purpose through.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::dt_wrap::annotated_chart;
use kantup_test_support::image_gen::{GenImage, GenSpec, generate_bundle_inputs};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{helm3, skopeo_manifest_digest, workspace_root};
use serde_json::Value;

use common::kantup_isolated as kantup;

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts failure and returns stdout and stderr.
fn refused(out: Output) -> String {
    assert!(!out.status.success(), "{}", text(&out));
    text(&out)
}

/// Copies the tar `from` to `to`, member by member: `edit(name, bytes)` returns the new bytes,
/// or `None` to leave the member out.
/// What a rewrite does to one member: its new bytes, or `None` to leave it out.
type EditMember<'a> = dyn FnMut(&str, Vec<u8>) -> Option<Vec<u8>> + 'a;

fn rewrite_tar(from: &[u8], edit: &mut EditMember<'_>) -> Vec<u8> {
    let mut archive = tar::Archive::new(from);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut header = entry.header().clone();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if header.entry_type().is_dir() {
            out.append(&header, &[][..]).unwrap();
            continue;
        }
        let Some(bytes) = edit(&name, bytes) else {
            continue;
        };
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        out.append(&header, &bytes[..]).unwrap();
    }
    out.into_inner().unwrap()
}

/// Writes `to`: the plain-tar bundle `from` with its checksum member left out (it would no
/// longer match) and `edit` applied to every other member.
fn rewrite_bundle(from: &Path, to: &Path, mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let bytes = std::fs::read(from).unwrap();
    let out = rewrite_tar(&bytes, &mut |name, data| {
        if name == kantup_bundle::CHECKSUMS_MEMBER {
            return None;
        }
        edit(name, data)
    });
    std::fs::write(to, out).unwrap();
}

fn config(root: &Path, source: &Path, host: &str) -> PathBuf {
    let path = root.join("load-image.yaml");
    std::fs::write(
        &path,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    kind: OCI\n    url: http://{host}/charts\n",
            source.display()
        ),
    )
    .unwrap();
    path
}

fn spec(seed: u64) -> GenSpec {
    GenSpec {
        images: 3,
        base_layer_size: 32 * 1024,
        own_layer_size: 8 * 1024,
        seed,
        source_prefix: "upstream.example/team".into(),
        ..GenSpec::default()
    }
}

fn relocated(host: &str, image: &GenImage) -> String {
    let last = image.repository.rsplit('/').next().unwrap();
    format!("{host}/kant/apps/{last}:{}", image.tag)
}

/// `helm show values` of the synced chart, pulled from the registry by helm 3.
fn synced_values(root: &Path, host: &str, chart: &str, version: &str) -> String {
    let work = root.join(format!("helm-{chart}"));
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new(helm3())
        .args([
            "show",
            "values",
            &format!("oci://{host}/charts/{chart}"),
            "--version",
            version,
            "--plain-http",
        ])
        .env("HELM_CONFIG_HOME", work.join("config"))
        .env("HELM_CACHE_HOME", work.join("cache"))
        .env("HELM_DATA_HOME", work.join("data"))
        .output()
        .unwrap();
    ok(out)
}

/// Inspects, verifies and syncs `bundle` (no `hints.yaml`), then checks every image at its
/// relocated name, digest-exact, and the synced chart's values naming them.
fn inspect_verify_sync(root: &Path, bundle: &Path, source: &str, chart: &str, images: &[GenImage]) {
    let listed = tar::Archive::new(std::fs::File::open(bundle).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(!listed.iter().any(|n| n == "hints.yaml"), "{listed:?}");

    let shown = ok(kantup(&["bundle", "inspect", bundle.to_str().unwrap()]));
    assert!(
        shown.contains(&format!(
            "Chart images ({}), listed by {source}:",
            images.len()
        )),
        "{shown}"
    );
    let verified = ok(kantup(&["bundle", "verify", bundle.to_str().unwrap()]));
    assert!(
        verified.contains(&format!(
            "the chart needs {} image(s) (listed by {source}): {} in the bundle",
            images.len(),
            images.len()
        )),
        "{verified}"
    );

    let registry = RegistryServer::start();
    let host = registry.host();
    let config = config(root, bundle, &host);
    let out = kantup(&["sync", "--config", config.to_str().unwrap(), "-o", "json"]);
    let summary: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(summary["images_pushed"], images.len(), "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");
    let values = synced_values(
        root,
        &host,
        chart,
        summary["bundles"][0]["chart"]
            .as_str()
            .unwrap()
            .rsplit_once('-')
            .unwrap()
            .1,
    );
    for image in images {
        assert_eq!(
            skopeo_manifest_digest(&relocated(&host, image)),
            image.manifest_digest,
            "{}",
            image.reference
        );
        assert!(!values.contains("upstream.example"), "{values}");
    }
    assert!(values.contains(&host), "{values}");
}

#[test]
fn a_bundle_without_hints_yaml_finds_its_images_in_the_charts_relok8s_images_file() {
    let root = tempfile::tempdir().unwrap();
    let inputs = generate_bundle_inputs(&root.path().join("gen"), &spec(41)).unwrap();
    // The chart carries its own hints, where relok8s looks for them.
    std::fs::copy(&inputs.hints, inputs.chart_dir.join(".relok8s-images.yaml")).unwrap();
    let made = root.path().join("made.bundle.tar");
    ok(kantup(&[
        "bundle",
        "create",
        made.to_str().unwrap(),
        "--chart",
        inputs.chart_dir.to_str().unwrap(),
        "--images",
        inputs.layout.to_str().unwrap(),
    ]));
    let bundle = root.path().join("no-hints.bundle.tar");
    rewrite_bundle(&made, &bundle, |name, data| {
        (name != "hints.yaml").then_some(data)
    });
    inspect_verify_sync(
        root.path(),
        &bundle,
        "the chart's .relok8s-images.yaml",
        "genchart",
        &inputs.images,
    );
}

#[test]
fn a_bundle_without_hints_yaml_finds_its_images_in_chart_annotations() {
    let root = tempfile::tempdir().unwrap();
    let inputs =
        annotated_chart(&root.path().join("gen"), &spec(42), "annotated", "1.2.3").unwrap();
    let made = root.path().join("made.bundle.tar");
    ok(kantup(&[
        "bundle",
        "create",
        made.to_str().unwrap(),
        "--chart",
        inputs.chart_dir.to_str().unwrap(),
        "--images",
        inputs.layout.to_str().unwrap(),
    ]));
    let bundle = root.path().join("no-hints.bundle.tar");
    rewrite_bundle(&made, &bundle, |name, data| {
        (name != "hints.yaml").then_some(data)
    });
    inspect_verify_sync(
        root.path(),
        &bundle,
        "Chart.yaml annotations",
        "annotated",
        &inputs.images,
    );
}

/// The example bundle (4 hints naming 2 images, both in `images.tar`) with `images.tar`
/// rewritten by `edit`.
fn example_with_images(
    dir: &Path,
    name: &str,
    mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>,
) -> PathBuf {
    let bundle = dir.join(name);
    rewrite_bundle(
        &workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
        |member, data| {
            if member == "images.tar" {
                Some(rewrite_tar(&data, &mut edit))
            } else {
                Some(data)
            }
        },
    );
    bundle
}

/// `sync`, `load` and `upgrade` of `bundle` each fail naming every one of `named`, and
/// change nothing: no blob reaches the registry, the runtime CLI never runs, no cluster is
/// reached (the kubeconfig does not exist).
fn refused_everywhere(dir: &Path, bundle: &Path, named: &[&str]) {
    let registry = RegistryServer::start();
    let config = config(dir, bundle, &registry.host());
    let runtime = dir.join("runtime.sh");
    let ran = dir.join("runtime-ran");
    std::fs::write(
        &runtime,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", ran.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = bundle.to_str().unwrap();
    let runs: [(&str, Vec<&str>); 3] = [
        ("sync", vec!["sync", "--config", config.to_str().unwrap()]),
        (
            "load",
            vec![
                "load",
                b,
                "--runtime",
                "docker",
                "--runtime-bin",
                runtime.to_str().unwrap(),
            ],
        ),
        (
            "upgrade",
            vec![
                "upgrade",
                b,
                "--release",
                "kant",
                "-n",
                "kant-system",
                "--yes",
                "--helm",
                "/nonexistent/helm",
            ],
        ),
    ];
    for (what, args) in runs {
        let out = common::kantup_isolated_command(&args)
            .env("KUBECONFIG", dir.join("no-kubeconfig"))
            .output()
            .unwrap();
        let all = refused(out);
        for image in named {
            assert!(all.contains(image), "{what} names {image}: {all}");
        }
    }
    assert_eq!(registry.stored_blob_count(), 0, "nothing was pushed");
    assert!(
        !registry
            .storage()
            .join("docker/registry/v2/repositories")
            .exists(),
        "no repository was made"
    );
    assert!(!ran.exists(), "the runtime CLI never ran");
}

#[test]
fn an_empty_image_archive_under_four_hints_is_refused_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = example_with_images(dir.path(), "empty.bundle.tar", |name, data| match name {
        "manifest.json" => Some(b"[]".to_vec()),
        "repositories" => None,
        _ => Some(data),
    });
    let missing = [
        "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest",
        "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1",
    ];
    let b = bundle.to_str().unwrap();
    let all = refused(kantup(&["bundle", "verify", b]));
    assert!(
        all.contains("2 image(s) the chart needs (listed by hints.yaml) are not in the bundle"),
        "{all}"
    );
    for image in missing {
        assert!(all.contains(image), "{all}");
    }
    assert!(all.contains("--allow-missing-images"), "{all}");
    refused_everywhere(dir.path(), &bundle, &missing);

    // On purpose: passes, and still says what is missing.
    let passed = ok(kantup(&["bundle", "verify", b, "--allow-missing-images"]));
    assert!(
        passed.contains("the chart needs 2 image(s) (listed by hints.yaml): 0 in the bundle"),
        "{passed}"
    );
    assert!(passed.contains(missing[0]), "{passed}");
    let registry = RegistryServer::start();
    let config = config(dir.path(), &bundle, &registry.host());
    let out = kantup(&[
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--allow-missing-images",
        "-o",
        "json",
    ]);
    let summary: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(summary["images_pushed"], 0, "{summary:#}");
    assert_eq!(summary["charts_uploaded"], 1, "{summary:#}");
}

#[test]
fn a_hint_rendering_to_an_unparsable_reference_is_refused_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bad-hint.bundle.tar");
    rewrite_bundle(
        &workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
        |name, data| match name {
            // The value the second hint renders: not a reference (upper case, a space).
            "original-chart/values.yaml" => Some(
                String::from_utf8(data)
                    .unwrap()
                    .replace(
                        "image: harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest",
                        "image: \"Not A/Reference\"",
                    )
                    .into_bytes(),
            ),
            _ => Some(data),
        },
    );
    let b = bundle.to_str().unwrap();
    let all = refused(kantup(&["bundle", "verify", b]));
    assert!(
        all.contains(
            "hint \"{{ .sameImageButNoTagRequirement.image }}\" renders to \"Not A/Reference\""
        ),
        "{all}"
    );
    // Not a missing image: the flag does not let it through.
    refused(kantup(&["bundle", "verify", b, "--allow-missing-images"]));
    refused_everywhere(dir.path(), &bundle, &["Not A/Reference"]);
}

#[test]
fn an_invalid_repo_tags_name_is_refused_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = example_with_images(dir.path(), "bad-tag.bundle.tar", |name, data| {
        if name != "manifest.json" {
            return Some(data);
        }
        let mut manifest: Value = serde_json::from_slice(&data).unwrap();
        manifest[1]["RepoTags"]
            .as_array_mut()
            .unwrap()
            .push(Value::from("Tiny:Bad Tag"));
        Some(serde_json::to_vec(&manifest).unwrap())
    });
    let b = bundle.to_str().unwrap();
    let all = refused(kantup(&["bundle", "verify", b]));
    assert!(
        all.contains(
            "1 image name(s) in the image archive are not valid references: \"Tiny:Bad Tag\""
        ),
        "{all}"
    );
    refused(kantup(&["bundle", "verify", b, "--allow-missing-images"]));
    refused_everywhere(dir.path(), &bundle, &["Tiny:Bad Tag"]);
}
