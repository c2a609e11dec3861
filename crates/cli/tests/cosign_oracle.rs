//! cosign (the real one, `go install`ed by `scripts/install-test-tools.sh`) as the oracle for
//! what `kantup sync` pushes: the images of the relok8s fixture bundle, pushed into a real
//! docker-registry, are signed by cosign with a key and no transparency log, in both of
//! cosign 3's formats (the classic `sha256-<hex>.sig` tag and a Sigstore bundle stored as an
//! OCI 1.1 referrer, which docker-registry 2.8 keeps under the `sha256-<hex>` fallback tag);
//! `cosign verify --key` accepts them at the bundle's own manifest digests and refuses another
//! key; a second `kantup sync` skips every image and leaves the signatures as cosign wrote them.
//!
//! cosign never leaves loopback here: an empty `--trusted-root` and a signing config without
//! services keep it from fetching Sigstore's TUF root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_bundle::Bundle;
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::{skopeo, skopeo_manifest_digest, workspace_root};
use serde_json::Value;

use common::kantup_isolated as kantup;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// cosign with its caches and configuration inside `home`, no password on the key, and no
/// docker credentials.
fn cosign(home: &Path, args: &[&str]) -> Output {
    Command::new(kantup_test_support::tools::cosign())
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("TUF_ROOT", home.join("tuf"))
        .env("COSIGN_PASSWORD", "")
        .env("DOCKER_CONFIG", home.join("docker"))
        .output()
        .expect("run cosign")
}

fn cosign_ok(home: &Path, args: &[&str]) -> String {
    let output = cosign(home, args);
    assert!(
        output.status.success(),
        "cosign {args:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `(pushed repository, manifest digest)` of each image of the fixture bundle, relocated under
/// `host/kant/apps` as `sync` relocates them.
fn pushed_images(bundle: &Path, host: &str) -> Vec<(String, String)> {
    let bundle = Bundle::open(bundle).unwrap();
    let archive = bundle.image_archive().unwrap().unwrap();
    archive
        .images()
        .iter()
        .map(|image| {
            let reference = image.references[0].reference().unwrap();
            let tail = reference.repository.rsplit('/').next().unwrap().to_string();
            (
                format!("{host}/kant/apps/{tail}"),
                image.manifest_digest.to_string(),
            )
        })
        .collect()
}

fn tags(repository: &str) -> Vec<String> {
    let listed: Value = serde_json::from_slice(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{repository}"),
    ]))
    .unwrap();
    let mut tags: Vec<String> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

/// The `docker-manifest-digest` of every payload `cosign verify` printed.
fn verified_digests(stdout: &str) -> Vec<String> {
    let payloads: Value = serde_json::from_str(stdout.trim()).expect("cosign verify prints JSON");
    payloads
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["critical"]["image"]["docker-manifest-digest"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn cosign_signs_and_verifies_what_kantup_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryServer::start();
    let host = registry.host();
    let bundles = dir.path().join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let bundle: PathBuf = bundles.join("kant.bundle.tar");
    std::fs::copy(
        workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &bundle,
    )
    .unwrap();
    let config = dir.path().join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\n  repo:\n    kind: LOCAL\n    path: /unused\n\
             target:\n  containerRegistry: {host}\n  containerRepository: kant/apps\n  repo:\n    \
             kind: LOCAL\n    path: {}\n",
            bundles.display(),
            dir.path().join("charts").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let first = kantup(&["sync", "--config", config]);
    assert!(first.status.success(), "kantup sync: {}", text(&first));

    let home = dir.path().join("cosign");
    std::fs::create_dir_all(&home).unwrap();
    cosign_ok(&home, &["generate-key-pair"]);
    cosign_ok(
        &home,
        &["generate-key-pair", "--output-key-prefix", "other"],
    );
    std::fs::write(
        home.join("trusted-root.json"),
        r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
    )
    .unwrap();
    std::fs::write(
        home.join("signing-config.json"),
        r#"{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","rekorTlogConfig":{},"tsaConfig":{}}"#,
    )
    .unwrap();

    let images = pushed_images(&bundle, &host);
    assert_eq!(images.len(), 2, "{images:?}");
    let mut signature_tags = Vec::new();
    for (n, (repository, digest)) in images.iter().enumerate() {
        let by_digest = format!("{repository}@{digest}");
        let fallback_tag = digest.replace(':', "-");
        // The first image the classic way (simple signing under `.sig`), the second as a
        // Sigstore bundle referrer (cosign 3's default format).
        let (sign_args, tag): (Vec<&str>, String) = if n == 0 {
            (
                vec![
                    "--tlog-upload=false",
                    "--use-signing-config=false",
                    "--new-bundle-format=false",
                ],
                format!("{fallback_tag}.sig"),
            )
        } else {
            (
                vec!["--signing-config", "signing-config.json"],
                fallback_tag.clone(),
            )
        };
        let mut args = vec!["sign", "--key", "cosign.key", "--yes"];
        args.extend(sign_args);
        args.extend(["--trusted-root", "trusted-root.json", &by_digest]);
        cosign_ok(&home, &args);
        assert!(
            tags(repository).contains(&tag),
            "{repository}: no {tag} in {:?}",
            tags(repository)
        );

        let verify = |key: &str| {
            cosign(
                &home,
                &[
                    "verify",
                    "--key",
                    key,
                    "--insecure-ignore-tlog=true",
                    "--trusted-root",
                    "trusted-root.json",
                    &by_digest,
                ],
            )
        };
        let accepted = verify("cosign.pub");
        assert!(
            accepted.status.success(),
            "cosign verify {by_digest}: {}",
            text(&accepted)
        );
        let digests = verified_digests(&String::from_utf8_lossy(&accepted.stdout));
        assert!(!digests.is_empty());
        assert!(
            digests.iter().all(|d| d == digest),
            "{by_digest}: cosign verified {digests:?}, the bundle holds {digest}"
        );
        let refused = verify("other.pub");
        assert!(
            !refused.status.success(),
            "cosign verify with another key accepted {by_digest}: {}",
            text(&refused)
        );
        let signature = format!("{repository}:{tag}");
        signature_tags.push((signature.clone(), skopeo_manifest_digest(&signature)));
    }

    // kantup finds its images in place and leaves cosign's signatures alone.
    let second = kantup(&["sync", "--config", config, "-o", "json"]);
    assert!(second.status.success(), "second sync: {}", text(&second));
    let report: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(
        report["images_skipped"] == 2 && report["images_pushed"] == 0,
        "second sync pushed again: {report}"
    );
    for (signature, digest) in &signature_tags {
        assert_eq!(&skopeo_manifest_digest(signature), digest, "{signature}");
    }
}
