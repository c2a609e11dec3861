//! `kantup sync` of bundles `kantup bundle create` made from images cosign signed, attested and
//! gave SBOMs and Sigstore bundle referrers (the `signed_images` fixture: real cosign, a real
//! docker-registry), into a second real docker-registry under relocated names: every attachment
//! lands next to its image at the source's digest (read back with skopeo `inspect --raw`, byte
//! for byte; the `sha256-<hex>` fallback index listing the same referrers), cosign verifies what
//! kantup pushed with the key and refuses another key, a dry run pushes nothing, and a second
//! sync pushes nothing. Two sources: the fixture's layout holding every attachment by tag, and
//! what `cosign save --dir` wrote; and a target with the referrers API, where no fallback index
//! is written.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_bundle::{Bundle, Digest};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::registry_server::referrers::ReferrersRegistry;
use kantup_test_support::signed_images::{
    FixtureKind, KIND_IMAGE, KIND_IMAGE_INDEX, SignedImage, SignedImages,
};
use kantup_test_support::skopeo;
use serde_json::Value;

use common::{kantup_isolated as kantup, text};

/// `kantup bundle create` (relok8s format) of the fixture's chart and hints with `images`.
fn bundle_of(fixture: &SignedImages, images: &Path, dir: &Path) -> PathBuf {
    let bundles = dir.join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let bundle = bundles.join("signed.bundle.tar");
    let out = kantup(&[
        "bundle",
        "create",
        bundle.to_str().unwrap(),
        "--chart",
        fixture.inputs.chart_dir.to_str().unwrap(),
        "--hints",
        fixture.inputs.hints.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--format",
        "relok8s",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "bundle create: {}", text(&out));
    bundle
}

/// The attachments `bundle` carries, as its reader sees them.
fn carried(bundle: &Path) -> u64 {
    let bundle = Bundle::open(bundle).unwrap();
    bundle.image_archive().unwrap().unwrap().attachments().len() as u64
}

/// One OCI layout holding both `cosign save --dir` outputs (cosign 3.1 saves one image per
/// directory): their blobs together, their `index.json` entries concatenated, each image (the
/// entry `cosign save` marks `kind: dev.cosignproject.cosign/image` or `/imageIndex`) named by
/// its reference in the chart, since `cosign save` names none.
fn merged_cosign_saves(fixture: &SignedImages, dir: &Path) -> PathBuf {
    let merged = dir.join("cosign-saved");
    let mut entries = Vec::new();
    for (reference, saved) in &fixture.cosign_saved {
        let status = Command::new("cp")
            .arg("-rT")
            .arg(saved)
            .arg(&merged)
            .status()
            .unwrap();
        assert!(status.success());
        let index: Value =
            serde_json::from_slice(&std::fs::read(saved.join("index.json")).unwrap()).unwrap();
        for mut entry in index["manifests"].as_array().unwrap().iter().cloned() {
            let kind = entry["annotations"]["kind"].as_str().unwrap_or_default();
            if kind == KIND_IMAGE || kind == KIND_IMAGE_INDEX {
                entry["annotations"]["org.opencontainers.image.ref.name"] =
                    Value::String(reference.clone());
            }
            entries.push(entry);
        }
    }
    let named = entries
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"].is_string())
        .count();
    assert_eq!(named, 2, "{entries:#?}");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    std::fs::write(
        merged.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    merged
}

fn config(dir: &Path, bundles: &Path, host: &str) -> PathBuf {
    let config = dir.join("load-image.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  intermediateBundlesPath: {}\n\
             target:\n  containerRegistry: {host}\n  containerRepository: mirror/apps\n  repo:\n    \
             kind: LOCAL\n    path: {}\n",
            bundles.display(),
            dir.join("charts").display()
        ),
    )
    .unwrap();
    config
}

fn raw(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ])
}

fn sync_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--config", config.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    let out = kantup(&args);
    assert!(out.status.success(), "kantup {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The repository name `sync` relocates `example.com/kantup/<name>` to.
fn relocated(host: &str, fixture_repository: &str) -> String {
    let name = fixture_repository.rsplit('/').next().unwrap();
    format!("{host}/mirror/apps/{name}")
}

/// `cosign verify` (classic with `--new-bundle-format=false`, else Sigstore bundles) of
/// `reference` with `key`, offline.
fn cosign_verify(fixture: &SignedImages, key: &Path, format: &[&str], reference: &str) -> Output {
    let mut args = vec![
        "verify",
        "--key",
        key.to_str().unwrap(),
        "--insecure-ignore-tlog=true",
        "--trusted-root",
        fixture.trusted_root.to_str().unwrap(),
    ];
    args.extend(format);
    args.push(reference);
    fixture.cosign(&args)
}

/// cosign accepts `reference` with the fixture's key (and names `digest`), refuses it with the
/// other key.
fn assert_verifies(fixture: &SignedImages, format: &[&str], reference: &str, digest: &str) {
    let accepted = cosign_verify(fixture, &fixture.public_key, format, reference);
    assert!(
        accepted.status.success(),
        "cosign verify {format:?} {reference}: {}",
        text(&accepted)
    );
    assert!(String::from_utf8_lossy(&accepted.stdout).contains(digest));
    let refused = cosign_verify(fixture, &fixture.other_public_key, format, reference);
    assert!(
        !refused.status.success(),
        "another key accepted {reference}"
    );
}

/// `cosign verify-attestation --type predicate` of `reference` (classic `.att`), offline.
fn assert_attested(fixture: &SignedImages, predicate: &str, reference: &str) {
    let attested = fixture.cosign(&[
        "verify-attestation",
        "--key",
        fixture.public_key.to_str().unwrap(),
        "--type",
        predicate,
        "--new-bundle-format=false",
        "--insecure-ignore-tlog=true",
        "--trusted-root",
        fixture.trusted_root.to_str().unwrap(),
        reference,
    ]);
    assert!(
        attested.status.success(),
        "verify-attestation {predicate} {reference}: {}",
        text(&attested)
    );
}

/// The fixture image an attachment about `subject` belongs to (a platform manifest's are the
/// index's).
fn image_of<'a>(fixture: &'a SignedImages, subject: &str) -> &'a SignedImage {
    if subject == fixture.single.digest {
        &fixture.single
    } else {
        &fixture.index
    }
}

#[test]
fn sync_pushes_every_attachment_next_to_its_image_and_cosign_verifies_them() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_of(&fixture, &fixture.layout, dir.path());
    let carried = carried(&bundle);
    assert_eq!(
        carried,
        fixture.attachments.len() as u64,
        "the bundle carries every attachment"
    );
    let target = RegistryServer::start();
    let host = target.host();
    let config = config(dir.path(), bundle.parent().unwrap(), &host);

    // A dry run plans every attachment and pushes nothing.
    let plan = sync_json(&config, &["--dry-run"]);
    assert_eq!(plan["attachments_pushed"], carried, "{plan}");
    assert_eq!(plan["fallback_indexes_written"], 0);
    let catalog = Command::new("curl")
        .args(["-sf", &format!("http://{host}/v2/_catalog")])
        .output()
        .unwrap();
    let catalog: Value = serde_json::from_slice(&catalog.stdout).unwrap();
    assert_eq!(
        catalog["repositories"],
        Value::Array(vec![]),
        "dry run pushed"
    );

    let report = sync_json(&config, &[]);
    eprintln!(
        "first sync: {} attachments pushed, {} fallback indexes written, {} images pushed",
        report["attachments_pushed"], report["fallback_indexes_written"], report["images_pushed"]
    );
    assert_eq!(report["attachments_pushed"], carried, "{report}");
    assert_eq!(report["attachments_failed"], 0, "{report}");
    let subjects_with_referrers: BTreeSet<&str> = fixture
        .attachments
        .iter()
        .filter(|a| a.kind == FixtureKind::Referrer)
        .map(|a| a.subject.as_str())
        .collect();
    assert_eq!(
        report["fallback_indexes_written"],
        subjects_with_referrers.len() as u64,
        "{report}"
    );

    // Every tag the fixture's registry holds for an attachment, at the same bytes; the
    // fallback indexes list the same referrers (plus the annotations the spec has the client
    // copy, which cosign leaves out).
    let mut tags_checked = BTreeMap::new();
    for a in &fixture.attachments {
        let image = image_of(&fixture, &a.subject);
        let source = format!("{}:{}", image.pushed_repository, a.tag);
        let pushed = format!("{}:{}", relocated(&host, &image.pushed_repository), a.tag);
        let (source_bytes, pushed_bytes) = (raw(&source), raw(&pushed));
        if a.kind == FixtureKind::Referrer {
            let mut index: Value = serde_json::from_slice(&pushed_bytes).unwrap();
            for entry in index["manifests"].as_array_mut().unwrap() {
                entry.as_object_mut().unwrap().remove("annotations");
            }
            assert_eq!(
                serde_json::to_vec(&index).unwrap(),
                source_bytes,
                "{pushed}"
            );
            let by_digest = format!(
                "{}@{}",
                relocated(&host, &image.pushed_repository),
                a.digest
            );
            assert_eq!(
                raw(&by_digest),
                raw(&format!("{}@{}", image.pushed_repository, a.digest)),
                "{by_digest}"
            );
        } else {
            assert_eq!(pushed_bytes, source_bytes, "{pushed}");
        }
        tags_checked.insert(pushed, a.kind);
    }
    assert!(tags_checked.len() >= 8, "{tags_checked:?}");

    // cosign verifies what kantup pushed, at the bundle's digests, under the new names.
    let mut checked = Vec::new();
    for image in [&fixture.single, &fixture.index] {
        let repo = relocated(&host, &image.pushed_repository);
        let digests = std::iter::once(image.digest.clone())
            .chain(image.platforms.iter().map(|p| p.digest.clone()));
        for digest in digests {
            let reference = format!("{repo}@{digest}");
            for format in [&[][..], &["--new-bundle-format=false"][..]] {
                assert_verifies(&fixture, format, &reference, &digest);
                checked.push(reference.clone());
            }
        }
    }
    let single = format!(
        "{}@{}",
        relocated(&host, &fixture.single.pushed_repository),
        fixture.single.digest
    );
    for predicate in ["spdxjson", "cyclonedx"] {
        assert_attested(&fixture, predicate, &single);
    }
    eprintln!(
        "cosign verified {} image/format pairs; {} attachment tags compared",
        checked.len(),
        tags_checked.len()
    );

    // A second sync pushes nothing.
    let again = sync_json(&config, &[]);
    assert_eq!(again["images_pushed"], 0, "{again}");
    assert_eq!(again["attachments_pushed"], 0, "{again}");
    assert_eq!(again["attachments_skipped"], carried, "{again}");
    assert_eq!(again["fallback_indexes_written"], 0, "{again}");
    assert_eq!(again["blobs_uploaded"], 0, "{again}");

    // The text report counts them.
    let out = kantup(&["sync", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains(&format!(
            "attachments (signatures, attestations, SBOMs, referrers) 0 pushed, {carried} skipped, 0 overwritten, 0 failed; fallback indexes 0 written"
        )),
        "{stdout}"
    );
}

/// A bundle made by `kantup bundle create` from what `cosign save --dir` wrote (the two saved
/// layouts in one): cosign save keeps the top manifest's classic `.sig` and `.att` only, and
/// `sync` pushes exactly those, byte for byte at the same tags, where cosign verifies them.
#[test]
fn sync_of_a_bundle_from_cosign_save_pushes_the_saved_signatures() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let saved = merged_cosign_saves(&fixture, dir.path());
    let bundle = bundle_of(&fixture, &saved, dir.path());
    let expected: Vec<_> = fixture
        .attachments
        .iter()
        .filter(|a| {
            matches!(a.kind, FixtureKind::Signature | FixtureKind::Attestation)
                && (a.subject == fixture.single.digest || a.subject == fixture.index.digest)
        })
        .collect();
    assert_eq!(carried(&bundle), expected.len() as u64, "{expected:#?}");
    let target = RegistryServer::start();
    let host = target.host();
    let config = config(dir.path(), bundle.parent().unwrap(), &host);

    let report = sync_json(&config, &[]);
    assert_eq!(report["attachments_pushed"], expected.len(), "{report}");
    assert_eq!(report["attachments_failed"], 0, "{report}");
    assert_eq!(report["fallback_indexes_written"], 0, "{report}");
    for a in &expected {
        let image = image_of(&fixture, &a.subject);
        let pushed = format!("{}:{}", relocated(&host, &image.pushed_repository), a.tag);
        let bytes = raw(&pushed);
        assert_eq!(
            bytes,
            raw(&format!("{}:{}", image.pushed_repository, a.tag)),
            "{pushed}"
        );
        assert_eq!(Digest::of(&bytes).to_string(), a.digest, "{pushed}");
    }

    for image in [&fixture.single, &fixture.index] {
        let reference = format!(
            "{}@{}",
            relocated(&host, &image.pushed_repository),
            image.digest
        );
        assert_verifies(
            &fixture,
            &["--new-bundle-format=false"],
            &reference,
            &image.digest,
        );
    }
    let single = format!(
        "{}@{}",
        relocated(&host, &fixture.single.pushed_repository),
        fixture.single.digest
    );
    assert_attested(&fixture, "spdxjson", &single);
    assert_attested(&fixture, "cyclonedx", &single);

    let again = sync_json(&config, &[]);
    assert_eq!(again["images_pushed"], 0, "{again}");
    assert_eq!(again["attachments_pushed"], 0, "{again}");
    assert_eq!(again["attachments_skipped"], expected.len(), "{again}");
    assert_eq!(again["blobs_uploaded"], 0, "{again}");
    eprintln!(
        "cosign-saved bundle: {} attachments pushed, then {} skipped",
        report["attachments_pushed"], again["attachments_skipped"]
    );
}

/// Into a registry with the OCI 1.1 referrers API (go-containerregistry's): the Sigstore bundle
/// referrers are pushed by digest and the registry lists them itself, so no `sha256-<hex>`
/// fallback index is written; the classic tags land as elsewhere; cosign verifies both formats;
/// a re-run pushes nothing.
#[test]
fn sync_into_a_registry_with_the_referrers_api_writes_no_fallback_index() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_of(&fixture, &fixture.layout, dir.path());
    let carried = carried(&bundle);
    let target = ReferrersRegistry::start();
    let host = target.host();
    let config = config(dir.path(), bundle.parent().unwrap(), &host);

    let report = sync_json(&config, &[]);
    assert_eq!(report["attachments_pushed"], carried, "{report}");
    assert_eq!(report["attachments_failed"], 0, "{report}");
    assert_eq!(report["fallback_indexes_written"], 0, "{report}");
    let listings: Vec<&Value> = report["bundles"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.get("referrers"))
        .collect();
    let referrers: Vec<_> = fixture
        .attachments
        .iter()
        .filter(|a| a.kind == FixtureKind::Referrer)
        .collect();
    assert_eq!(listings.len(), referrers.len(), "{report}");
    assert!(
        listings.iter().all(|l| *l == "referrers-api"),
        "{listings:?}"
    );

    for a in &fixture.attachments {
        let image = image_of(&fixture, &a.subject);
        let repo = relocated(&host, &image.pushed_repository);
        if a.kind == FixtureKind::Referrer {
            let path = repo.strip_prefix(&format!("{host}/")).unwrap();
            let listed = Command::new("curl")
                .args([
                    "-sf",
                    &format!("http://{host}/v2/{path}/referrers/{}", a.subject),
                ])
                .output()
                .unwrap();
            let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
            assert!(
                listed["manifests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["digest"] == a.digest.as_str()),
                "{} not listed for {}: {listed}",
                a.digest,
                a.subject
            );
            let fallback = skopeo_output(&format!("{repo}:{}", a.tag));
            assert!(!fallback.status.success(), "{repo}:{} exists", a.tag);
        } else {
            let pushed = format!("{repo}:{}", a.tag);
            assert_eq!(
                raw(&pushed),
                raw(&format!("{}:{}", image.pushed_repository, a.tag)),
                "{pushed}"
            );
        }
    }

    for image in [&fixture.single, &fixture.index] {
        let reference = format!(
            "{}@{}",
            relocated(&host, &image.pushed_repository),
            image.digest
        );
        for format in [&[][..], &["--new-bundle-format=false"][..]] {
            assert_verifies(&fixture, format, &reference, &image.digest);
        }
    }

    let again = sync_json(&config, &[]);
    assert_eq!(again["images_pushed"], 0, "{again}");
    assert_eq!(again["attachments_pushed"], 0, "{again}");
    assert_eq!(again["attachments_skipped"], carried, "{again}");
    eprintln!(
        "referrers-API registry: {} attachments pushed ({} referrers listed by the registry), then {} skipped",
        report["attachments_pushed"],
        referrers.len(),
        again["attachments_skipped"]
    );
}

/// `skopeo inspect --raw` of `reference`, whatever its outcome.
fn skopeo_output(reference: &str) -> Output {
    Command::new(kantup_test_support::tools::require_tool("skopeo"))
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap()
}

/// `cosign save --dir` names none of the images it writes, so a bundle made from its layout as
/// it is carries the signatures but not the images under the names the chart's hints give:
/// `bundle create` says which, on stderr and in `-o json`, before `sync` would refuse them.
#[test]
fn bundle_create_from_an_unnamed_cosign_save_names_the_images_the_chart_will_miss() {
    let fixture = SignedImages::create();
    let dir = tempfile::tempdir().unwrap();
    let (reference, saved) = &fixture.cosign_saved[0];
    let bundle = dir.path().join("unnamed.bundle.tar");
    let out = kantup(&[
        "bundle",
        "create",
        bundle.to_str().unwrap(),
        "--chart",
        fixture.inputs.chart_dir.to_str().unwrap(),
        "--hints",
        fixture.inputs.hints.to_str().unwrap(),
        "--images",
        saved.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "bundle create: {}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing: Vec<&str> = report["missing_images"]
        .as_array()
        .unwrap_or_else(|| panic!("no missing_images: {report:#}"))
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing.iter().any(|m| m == reference),
        "{reference} not among {missing:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not named in the image archive") && stderr.contains(reference.as_str()),
        "{stderr}"
    );
    assert!(report["attachments"].as_u64().unwrap() > 0, "{report:#}");
}
