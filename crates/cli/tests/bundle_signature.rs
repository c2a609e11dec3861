//! Signed bundles, offline, with openssl as the oracle both ways: what `openssl dgst -sha256
//! -sign` writes (DER) and what cosign writes (base64 of the DER) verify with kantup; what
//! `kantup bundle sign` writes verifies with `openssl dgst -verify`. `load`, `upgrade` and `sync` with
//! `--verify-key` refuse an unsigned, tampered or wrongly signed bundle before anything else.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{KantChart, text};

fn openssl(args: &[&str]) -> Output {
    Command::new(kantup_test_support::require_tool("openssl"))
        .args(args)
        .output()
        .unwrap()
}

fn openssl_ok(args: &[&str]) {
    let output = openssl(args);
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        text(&output)
    );
}

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .output()
        .unwrap()
}

struct Keys {
    sec1: PathBuf,
    pkcs8: PathBuf,
    public: PathBuf,
    other_public: PathBuf,
}

fn keys(dir: &Path) -> Keys {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    openssl_ok(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &p("key.pem"),
    ]);
    openssl_ok(&["ec", "-in", &p("key.pem"), "-pubout", "-out", &p("pub.pem")]);
    openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &p("key.pem"),
        "-out",
        &p("key8.pem"),
    ]);
    openssl_ok(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &p("other.pem"),
    ]);
    openssl_ok(&[
        "ec",
        "-in",
        &p("other.pem"),
        "-pubout",
        "-out",
        &p("other-pub.pem"),
    ]);
    Keys {
        sec1: dir.join("key.pem"),
        pkcs8: dir.join("key8.pem"),
        public: dir.join("pub.pem"),
        other_public: dir.join("other-pub.pem"),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn openssl_and_cosign_format_signatures_verify_and_ours_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let bundle = KantChart::v040("sig.kant.test").bundle(dir.path());

    // openssl signs (DER); kantup verifies, DER and base64 (cosign's format) alike.
    let der = dir.path().join("openssl.sig");
    openssl_ok(&[
        "dgst",
        "-sha256",
        "-sign",
        s(&keys.sec1),
        "-out",
        s(&der),
        s(&bundle),
    ]);
    let b64 = dir.path().join("cosign-style.sig");
    openssl_ok(&["base64", "-A", "-in", s(&der), "-out", s(&b64)]);
    for signature in [&der, &b64] {
        let out = kantup(&[
            "bundle",
            "verify",
            s(&bundle),
            "--key",
            s(&keys.public),
            "--signature",
            s(signature),
        ]);
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        assert!(all.contains("OK signature verified with"), "{all}");
    }

    // kantup signs (with a SEC1 and a PKCS#8 key); openssl verifies.
    for key in [&keys.sec1, &keys.pkcs8] {
        let out = kantup(&["bundle", "sign", s(&bundle), "--key", s(key)]);
        assert!(out.status.success(), "{}", text(&out));
        let ours = PathBuf::from(format!("{}.sig", bundle.display()));
        let decoded = dir.path().join("ours.der");
        openssl_ok(&["base64", "-d", "-A", "-in", s(&ours), "-out", s(&decoded)]);
        let verified = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            s(&keys.public),
            "-signature",
            s(&decoded),
            s(&bundle),
        ]);
        assert!(
            String::from_utf8_lossy(&verified.stdout).contains("Verified OK"),
            "{}",
            text(&verified)
        );
        // And the default signature path is what verify reads.
        let out = kantup(&["bundle", "verify", s(&bundle), "--key", s(&keys.public)]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

#[test]
fn unsigned_tampered_and_wrongly_signed_bundles_are_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let bundle = KantChart::v040("sig2.kant.test").bundle(dir.path());
    let unsigned = kantup(&["bundle", "verify", s(&bundle), "--key", s(&keys.public)]);
    assert_eq!(unsigned.status.code(), Some(3), "{}", text(&unsigned));
    assert!(
        text(&unsigned).contains(".sig"),
        "names the missing file: {}",
        text(&unsigned)
    );

    assert!(
        kantup(&["bundle", "sign", s(&bundle), "--key", s(&keys.sec1)])
            .status
            .success()
    );
    let wrong = kantup(&[
        "bundle",
        "verify",
        s(&bundle),
        "--key",
        s(&keys.other_public),
    ]);
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("does not verify with the key in"),
        "{}",
        text(&wrong)
    );

    let mut bytes = std::fs::read(&bundle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bundle, bytes).unwrap();
    let tampered = kantup(&["bundle", "verify", s(&bundle), "--key", s(&keys.public)]);
    assert_eq!(tampered.status.code(), Some(3), "{}", text(&tampered));
    assert!(
        text(&tampered).contains("the bundle was changed or signed with another key"),
        "{}",
        text(&tampered)
    );
}

/// `load` and `upgrade` check the signature before anything else: the container runtime is
/// never run, the cluster is never asked (its kubeconfig does not even exist).
#[test]
fn load_and_upgrade_refuse_a_badly_signed_bundle_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let bundle = KantChart::v040("sig3.kant.test").bundle(dir.path());
    assert!(
        kantup(&["bundle", "sign", s(&bundle), "--key", s(&keys.sec1)])
            .status
            .success()
    );
    let calls = dir.path().join("runtime-calls.log");
    let runtime = dir.path().join("fake-ctr");
    std::fs::write(
        &runtime,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    let missing_kubeconfig = dir.path().join("no-kubeconfig");

    // A key that did not sign it, and a signature file that does not exist.
    let missing_signature = dir.path().join("missing.sig");
    for (key, signature) in [
        (&keys.other_public, None),
        (&keys.public, Some(&missing_signature)),
    ] {
        let signature_args: Vec<&str> = match signature {
            Some(path) => vec!["--signature", s(path)],
            None => Vec::new(),
        };
        let load = kantup(
            &[
                "load",
                s(&bundle),
                "--runtime",
                "containerd",
                "--runtime-bin",
                s(&runtime),
                "--verify-key",
                s(key),
            ]
            .into_iter()
            .chain(signature_args.iter().copied())
            .collect::<Vec<_>>(),
        );
        assert_eq!(load.status.code(), Some(3), "{}", text(&load));
        assert!(!calls.exists(), "the runtime ran");

        let upgrade = kantup(
            &[
                "upgrade",
                s(&bundle),
                "--release",
                "kant",
                "-n",
                "kant-system",
                "--yes",
                "--kubeconfig",
                s(&missing_kubeconfig),
                "--verify-key",
                s(key),
                "--backup-dir",
                s(&dir.path().join("backups")),
            ]
            .into_iter()
            .chain(signature_args.iter().copied())
            .collect::<Vec<_>>(),
        );
        let all = text(&upgrade);
        assert_eq!(upgrade.status.code(), Some(3), "{all}");
        assert!(
            all.contains("does not verify") || all.contains("missing.sig"),
            "{all}"
        );
        assert!(
            !all.contains("no-kubeconfig"),
            "the cluster was not asked: {all}"
        );
        assert!(!dir.path().join("backups").exists());
    }

    // The right key lets the load through to the runtime (a bundle with images this time).
    let with_images = dir.path().join("testchart.bundle.tar");
    std::fs::copy(
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &with_images,
    )
    .unwrap();
    let signed = kantup(&["bundle", "sign", s(&with_images), "--key", s(&keys.sec1)]);
    assert!(signed.status.success(), "{}", text(&signed));
    let load = kantup(&[
        "load",
        s(&with_images),
        "--runtime",
        "containerd",
        "--runtime-bin",
        s(&runtime),
        "--verify-key",
        s(&keys.public),
    ]);
    assert!(
        calls.exists(),
        "the runtime ran after the signature verified: {}",
        text(&load)
    );
}

/// A correctly signed bundle upgrades with `--verify-key` on the real API server.
#[test]
fn a_signed_bundle_upgrades_with_verify_key() {
    let Some(cluster) = kantup_test_support::kube_cluster::cluster_or_skip(
        "a_signed_bundle_upgrades_with_verify_key",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let ns = cluster.namespace("signed");
    let group = format!(
        "{}.kant.test",
        kantup_test_support::kube_cluster::unique_name("signed")
    );
    let helm = kantup_test_support::helm4();
    let v040 = KantChart::v040(&group).write(dir.path());
    cluster.helm(&helm, &["install", "kant", s(&v040), "-n", &ns]);
    let bundle = KantChart::v050(&group).bundle(dir.path());
    assert!(
        kantup(&["bundle", "sign", s(&bundle), "--key", s(&keys.pkcs8)])
            .status
            .success()
    );
    let out = common::kantup(
        cluster.kubeconfig(),
        dir.path(),
        &[
            "upgrade",
            s(&bundle),
            "--release",
            "kant",
            "-n",
            &ns,
            "--yes",
            "--helm",
            s(&helm),
            "--verify-key",
            s(&keys.public),
            "--backup-dir",
            s(&dir.path().join("backups")),
        ],
    );
    let all = common::ok(out, "signed upgrade");
    assert!(all.contains("revision 1 -> 2"), "{all}");
}

/// `sync --verify-key` checks every bundle of the source before any push: one wrongly signed
/// bundle among two stops the sync with exit code 3 and the registry untouched; signed with
/// the right key, both sync.
#[test]
fn sync_refuses_a_badly_signed_bundle_before_any_push() {
    use kantup_test_support::registry_server::RegistryServer;
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let bundles = dir.path().join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let first = bundles.join("testchart.bundle.tar");
    std::fs::copy(
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar"),
        &first,
    )
    .unwrap();
    let second = KantChart::v040("sig4.kant.test").bundle(&bundles);
    for bundle in [&first, &second] {
        let signed = kantup(&["bundle", "sign", s(bundle), "--key", s(&keys.sec1)]);
        assert!(signed.status.success(), "{}", text(&signed));
    }
    // The second bundle changes after signing: one byte of padding at its end.
    let mut bytes = std::fs::read(&second).unwrap();
    let original = bytes.clone();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&second, &bytes).unwrap();

    let registry = RegistryServer::start();
    let config = dir.path().join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\ntarget:\n  containerRegistry: {}\n  containerRepository: kant/apps\n",
            bundles.display(),
            registry.host()
        ),
    )
    .unwrap();
    let sync = |key: &Path| {
        Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args(["sync", "--config", s(&config), "--verify-key", s(key)])
            .env("DOCKER_CONFIG", "/nonexistent-kantup-docker-config")
            .output()
            .unwrap()
    };
    let refused = sync(&keys.public);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        text(&refused).contains(s(&second)),
        "names the bundle: {}",
        text(&refused)
    );
    assert_eq!(registry.stored_blob_count(), 0, "nothing may be pushed");

    std::fs::write(&second, &original).unwrap();
    let wrong_key = sync(&keys.other_public);
    assert_eq!(wrong_key.status.code(), Some(3), "{}", text(&wrong_key));
    assert_eq!(registry.stored_blob_count(), 0, "nothing may be pushed");

    let synced = sync(&keys.public);
    assert!(synced.status.success(), "{}", text(&synced));
    assert!(registry.stored_blob_count() > 0);
}
