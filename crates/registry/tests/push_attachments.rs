//! Pushing signatures, attestations and referrers next to their images, against real
//! docker-registries and the real cosign (`.tools/cosign/cosign`, offline: a key, no
//! transparency log, an empty trusted root).
//!
//! cosign signs and attests an image in a source registry in both of its formats (the classic
//! `sha256-<hex>.sig` / `.att` tags, and a Sigstore bundle stored as an OCI 1.1 referrer,
//! which docker-registry 2.8 lists in the fallback index tagged `sha256-<hex>`). The test
//! reads those manifests and blobs back, builds `Attachment` values from them, and kantup
//! pushes them into a second registry where the image went under another name: skopeo reads
//! the same bytes back, and cosign verifies what kantup pushed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use kantup_bundle::Digest;
use kantup_bundle::archive::attachment::{
    Attachment, AttachmentKind, Link, cosign_tag, fallback_tag,
};
use kantup_bundle::archive::{BlobInfo, Compression, ImageArchive, media_types};
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::{
    AttachmentPush, AttachmentReport, ClientOptions, ImageAction, MemoryBlobs, PushOptions,
    ReferrerListing, RegistryClient, RelocationRule, TagPolicy, plan_attachments, push_attachments,
    push_images,
};
use kantup_test_support::image_gen::{GenSpec, generate_layout};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::registry_server::referrers::ReferrersRegistry;
use kantup_test_support::skopeo;
use serde_json::Value;

/// cosign with its home, caches and keys in `home`, no password on the keys.
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
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

/// A cosign home with two key pairs (`cosign`, `other`), an empty trusted root and a signing
/// config without services (so cosign stays on loopback), and an SPDX document to attest.
fn cosign_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("cosign");
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
    std::fs::write(
        home.join("sbom.spdx.json"),
        r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"gen-app-00","dataLicense":"CC0-1.0"}"#,
    )
    .unwrap();
    home
}

/// cosign's flags for the classic format (`.sig`/`.att` tags), offline: no transparency log.
const CLASSIC: [&str; 5] = [
    "--tlog-upload=false",
    "--use-signing-config=false",
    "--new-bundle-format=false",
    "--trusted-root",
    "trusted-root.json",
];

/// Classic cosign signature (`.sig`) of `image` with `key`.
fn sign_classic(home: &Path, image: &str, key: &str) {
    let mut sign = vec!["sign", "--key", key, "--yes"];
    sign.extend(CLASSIC);
    sign.push(image);
    cosign_ok(home, &sign);
}

/// Signs `image` (`host/repo@digest`) the classic way (`.sig`), attests an SPDX SBOM (`.att`)
/// and signs it as a Sigstore bundle referrer, all with `key`.
fn sign_all_ways(home: &Path, image: &str, key: &str) {
    sign_classic(home, image, key);
    let mut attest = vec![
        "attest",
        "--key",
        key,
        "--yes",
        "--type",
        "spdxjson",
        "--predicate",
        "sbom.spdx.json",
    ];
    attest.extend(CLASSIC);
    attest.push(image);
    cosign_ok(home, &attest);
    sign_as_referrer(home, image, key);
}

fn sign_as_referrer(home: &Path, image: &str, key: &str) {
    cosign_ok(
        home,
        &[
            "sign",
            "--key",
            key,
            "--yes",
            "--signing-config",
            "signing-config.json",
            "--trusted-root",
            "trusted-root.json",
            image,
        ],
    );
}

/// `cosign verify` (or `verify-attestation`) of `image` with `key`, offline.
fn verify(home: &Path, command: &str, image: &str, key: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        command,
        "--key",
        key,
        "--insecure-ignore-tlog=true",
        "--trusted-root",
        "trusted-root.json",
    ];
    args.extend(extra);
    args.push(image);
    cosign(home, &args)
}

fn client(host: &str) -> RegistryClient {
    RegistryClient::new(host, ClientOptions::default()).unwrap()
}

/// One generated image pushed into `registry` under `prefix`: (repository, manifest digest).
async fn push_image(
    archive: &Arc<ImageArchive>,
    registry: &RegistryServer,
    prefix: &str,
) -> (String, Digest) {
    push_image_to(archive, &registry.host(), prefix).await
}

async fn push_image_to(archive: &Arc<ImageArchive>, host: &str, prefix: &str) -> (String, Digest) {
    let plan = plan_archive(archive.clone(), &RelocationRule::new(host, prefix)).unwrap();
    assert_eq!(plan.len(), 1);
    let report = push_images(&client(host), &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{report:?}");
    (plan[0].repository.clone(), plan[0].manifest_digest)
}

/// Reads one attached manifest (by tag or digest) and its blobs from `client`'s `repo`: the
/// `Attachment` a bundle would carry for it.
async fn fetch_attachment(
    client: &RegistryClient,
    repo: &str,
    reference: &str,
    kind: AttachmentKind,
    subject: Digest,
    link: Link,
    blobs: &mut MemoryBlobs,
) -> Attachment {
    let (bytes, info) = client.get_manifest(repo, reference).await.unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let mut infos = Vec::new();
    let descriptors = std::iter::once(&manifest["config"]).chain(
        manifest["layers"]
            .as_array()
            .map(|l| l.iter())
            .into_iter()
            .flatten(),
    );
    for d in descriptors {
        let digest: Digest = d["digest"].as_str().unwrap().parse().unwrap();
        let data = client.get_blob(repo, &digest).await.unwrap();
        assert_eq!(blobs.add(data).digest, digest);
        infos.push(BlobInfo {
            digest,
            size: d["size"].as_u64().unwrap(),
            media_type: d["mediaType"].as_str().unwrap().to_string(),
            diff_id: None,
            compression: Compression::None,
        });
    }
    let annotations: BTreeMap<String, String> = manifest["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Attachment {
        kind,
        subject,
        link,
        digest: Digest::of(&bytes),
        manifest: bytes.to_vec(),
        media_type: info.media_type,
        artifact_type: manifest["artifactType"]
            .as_str()
            .or(manifest["config"]["mediaType"].as_str())
            .map(str::to_string),
        blobs: infos,
        annotations,
    }
}

/// Everything cosign attached to `subject` in `repo`: the `.sig` and `.att` manifests and
/// every referrer its fallback index lists.
async fn fetch_all(
    client: &RegistryClient,
    repo: &str,
    subject: Digest,
    blobs: &mut MemoryBlobs,
) -> Vec<Attachment> {
    let mut out = Vec::new();
    for kind in [AttachmentKind::Signature, AttachmentKind::Attestation] {
        let tag = cosign_tag(&subject, kind).unwrap();
        out.push(
            fetch_attachment(
                client,
                repo,
                &tag,
                kind,
                subject,
                Link::Tag(tag.clone()),
                blobs,
            )
            .await,
        );
    }
    let (index, _) = client
        .get_manifest(repo, &fallback_tag(&subject))
        .await
        .unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        out.push(
            fetch_attachment(
                client,
                repo,
                digest,
                AttachmentKind::Signature,
                subject,
                Link::Subject,
                blobs,
            )
            .await,
        );
    }
    out
}

fn pushes(
    attachments: &[Attachment],
    repository: &str,
    blobs: &MemoryBlobs,
) -> Vec<AttachmentPush> {
    let source = Arc::new(blobs.clone());
    attachments
        .iter()
        .map(|a| AttachmentPush {
            image: "gen-app-00".into(),
            repository: repository.to_string(),
            attachment: a.clone(),
            source: source.clone(),
        })
        .collect()
}

fn raw(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ])
}

fn generated(dir: &Path) -> Arc<ImageArchive> {
    let layout = dir.join("layout");
    generate_layout(
        &layout,
        &GenSpec {
            images: 1,
            base_layers: 1,
            base_layer_size: 4096,
            own_layer_size: 2048,
            ..GenSpec::default()
        },
    )
    .unwrap();
    Arc::new(ImageArchive::open(&layout).unwrap())
}

fn counts(report: &AttachmentReport) -> (u64, u64, u64) {
    (
        report.manifests_pushed,
        report.blobs.uploaded,
        report.fallback_indexes_written,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_attachments_pushed_digest_exact_verify_and_a_rerun_pushes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = generated(dir.path());
    let source = RegistryServer::start();
    let target = RegistryServer::start();
    let home = cosign_home(dir.path());

    let (source_repo, digest) = push_image(&archive, &source, "publisher").await;
    sign_all_ways(
        &home,
        &format!("{}/{source_repo}@{digest}", source.host()),
        "cosign.key",
    );
    let source_client = client(&source.host());
    let mut blobs = MemoryBlobs::default();
    let attachments = fetch_all(&source_client, &source_repo, digest, &mut blobs).await;
    assert_eq!(attachments.len(), 3, "{attachments:#?}");

    // The image goes first, relocated under another name; then its attachments.
    let (target_repo, target_digest) = push_image(&archive, &target, "mirror/apps").await;
    assert_eq!(target_digest, digest);
    assert_ne!(target_repo, source_repo);
    let target_client = client(&target.host());
    let plan = pushes(&attachments, &target_repo, &blobs);

    let planned = plan_attachments(&target_client, &plan).await.unwrap();
    assert!(
        planned.iter().all(|a| a.action == ImageAction::Push),
        "{planned:#?}"
    );
    assert_eq!(
        planned[2].referrers,
        Some(ReferrerListing::FallbackIndexAdded)
    );
    let report = push_attachments(&target_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{report:#?}");
    assert_eq!(report.manifests_pushed, 3);
    assert_eq!(report.fallback_indexes_written, 1);
    assert!(report.blobs.uploaded >= 4, "{report:?}");
    assert_eq!(
        report.attachments[2].referrers,
        Some(ReferrerListing::FallbackIndexAdded)
    );

    // skopeo reads the same bytes back: the cosign tags at the source's digests, the
    // referrer by its digest.
    for kind in [AttachmentKind::Signature, AttachmentKind::Attestation] {
        let tag = cosign_tag(&digest, kind).unwrap();
        let pushed = raw(&format!("{}/{target_repo}:{tag}", target.host()));
        let original = raw(&format!("{}/{source_repo}:{tag}", source.host()));
        assert_eq!(pushed, original, "{tag}");
    }
    let referrer = &attachments[2];
    assert_eq!(
        raw(&format!(
            "{}/{target_repo}@{}",
            target.host(),
            referrer.digest
        )),
        referrer.manifest
    );
    // The fallback index lists the referrer as cosign's does, plus the manifest's annotations,
    // which the distribution spec has the client copy (go-containerregistry, and so cosign,
    // leaves them out): without them it is cosign's index byte for byte.
    let tag = fallback_tag(&digest);
    let cosigns = raw(&format!("{}/{source_repo}:{tag}", source.host()));
    let kantups = raw(&format!("{}/{target_repo}:{tag}", target.host()));
    let mut index: Value = serde_json::from_slice(&kantups).unwrap();
    let entry = index["manifests"][0].as_object_mut().unwrap();
    let annotations = entry.remove("annotations").expect("annotations copied");
    let manifest: Value = serde_json::from_slice(&referrer.manifest).unwrap();
    assert_eq!(annotations, manifest["annotations"]);
    assert_eq!(serde_json::to_vec(&index).unwrap(), cosigns);

    // cosign verifies what kantup pushed, at the image's digest, under its new name.
    let image = format!("{}/{target_repo}@{digest}", target.host());
    for extra in [&[][..], &["--new-bundle-format=false"][..]] {
        let accepted = verify(&home, "verify", &image, "cosign.pub", extra);
        assert!(
            accepted.status.success(),
            "verify {extra:?}: {}",
            text(&accepted)
        );
        assert!(
            String::from_utf8_lossy(&accepted.stdout).contains(&digest.to_string()),
            "{}",
            text(&accepted)
        );
        let refused = verify(&home, "verify", &image, "other.pub", extra);
        assert!(
            !refused.status.success(),
            "other key accepted: {}",
            text(&refused)
        );
    }
    let attested = verify(
        &home,
        "verify-attestation",
        &image,
        "cosign.pub",
        &["--type", "spdxjson", "--new-bundle-format=false"],
    );
    assert!(
        attested.status.success(),
        "verify-attestation: {}",
        text(&attested)
    );

    // A second run finds everything in place and pushes nothing.
    let index_before = kantups;
    let again = push_attachments(&target_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(again.failures().count(), 0, "{again:#?}");
    assert_eq!(counts(&again), (0, 0, 0), "{again:?}");
    assert_eq!(again.blobs.bytes_uploaded, 0);
    assert!(
        again
            .attachments
            .iter()
            .all(|a| a.action == ImageAction::Skip)
    );
    assert_eq!(
        again.attachments[2].referrers,
        Some(ReferrerListing::FallbackIndexPresent)
    );
    assert_eq!(
        raw(&format!("{}/{target_repo}:{tag}", target.host())),
        index_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_fallback_index_is_merged_not_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let archive = generated(dir.path());
    let source = RegistryServer::start();
    let target = RegistryServer::start();
    let home = cosign_home(dir.path());

    let (source_repo, digest) = push_image(&archive, &source, "publisher").await;
    sign_as_referrer(
        &home,
        &format!("{}/{source_repo}@{digest}", source.host()),
        "cosign.key",
    );
    let source_client = client(&source.host());
    let mut blobs = MemoryBlobs::default();
    let (index, _) = source_client
        .get_manifest(&source_repo, &fallback_tag(&digest))
        .await
        .unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    let referrer_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let referrer = fetch_attachment(
        &source_client,
        &source_repo,
        referrer_digest,
        AttachmentKind::Signature,
        digest,
        Link::Subject,
        &mut blobs,
    )
    .await;

    // The target already lists another referrer: someone signed the image there with
    // another key.
    let (target_repo, _) = push_image(&archive, &target, "mirror/apps").await;
    let image = format!("{}/{target_repo}@{digest}", target.host());
    sign_as_referrer(&home, &image, "other.key");
    let tag = fallback_tag(&digest);
    let before: Value =
        serde_json::from_slice(&raw(&format!("{}/{target_repo}:{tag}", target.host()))).unwrap();
    let theirs = before["manifests"].as_array().unwrap().clone();
    assert_eq!(theirs.len(), 1);

    let target_client = client(&target.host());
    let report = push_attachments(
        &target_client,
        &pushes(std::slice::from_ref(&referrer), &target_repo, &blobs),
        &PushOptions::default(),
        None,
    )
    .await;
    assert_eq!(report.failures().count(), 0, "{report:#?}");
    assert_eq!(report.fallback_indexes_written, 1);

    let after: Value =
        serde_json::from_slice(&raw(&format!("{}/{target_repo}:{tag}", target.host()))).unwrap();
    let listed = after["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{after}");
    assert!(listed.contains(&theirs[0]), "their entry changed: {after}");
    assert!(
        listed
            .iter()
            .any(|e| e["digest"] == referrer.digest.to_string()),
        "{after}"
    );
    assert_eq!(after["mediaType"], media_types::OCI_INDEX);
    // Both signatures verify: neither clobbered the other.
    for key in ["cosign.pub", "other.pub"] {
        let accepted = verify(&home, "verify", &image, key, &[]);
        assert!(
            accepted.status.success(),
            "verify {key}: {}",
            text(&accepted)
        );
    }
}

/// A referrer of `subject` (an OCI 1.1 artifact with an empty config and one layer).
fn synthetic_referrer(subject: Digest, n: usize, blobs: &mut MemoryBlobs) -> Attachment {
    let config = blobs.add(&b"{}"[..]);
    let layer = blobs.add(format!("note {n}").into_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": "application/vnd.example.note",
        "config": {"mediaType": media_types::OCI_EMPTY, "digest": config.digest.to_string(), "size": config.size},
        "layers": [{"mediaType": "text/plain", "digest": layer.digest.to_string(), "size": layer.size}],
        "subject": {"mediaType": media_types::OCI_MANIFEST, "digest": subject.to_string(), "size": 1},
        "annotations": {"n": n.to_string()}
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    Attachment {
        kind: AttachmentKind::Referrer,
        subject,
        link: Link::Subject,
        digest: Digest::of(&bytes),
        manifest: bytes,
        media_type: media_types::OCI_MANIFEST.into(),
        artifact_type: Some("application/vnd.example.note".into()),
        blobs: [config, layer]
            .iter()
            .zip([media_types::OCI_EMPTY, "text/plain"])
            .map(|(b, t)| BlobInfo {
                digest: b.digest,
                size: b.size,
                media_type: t.into(),
                diff_id: None,
                compression: Compression::None,
            })
            .collect(),
        annotations: BTreeMap::from([("n".to_string(), n.to_string())]),
    }
}

/// Six pushers add a referrer each to the same subject at once (each its own client, as six
/// kantup processes would). docker-registry ignores conditional requests, so the read-back
/// after each write is what keeps most of them; a pusher that read before another's write
/// and wrote after that one's read-back can still drop its entry, which no client can prevent
/// on such a registry: a second run finds what is missing and adds it, leaving the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushers_of_one_fallback_index_end_with_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let archive = generated(dir.path());
    let target = RegistryServer::start();
    let (repo, digest) = push_image(&archive, &target, "mirror/apps").await;
    let mut blobs = MemoryBlobs::default();
    let referrers: Vec<Attachment> = (0..6)
        .map(|n| synthetic_referrer(digest, n, &mut blobs))
        .collect();
    let plans: Vec<Vec<AttachmentPush>> = referrers
        .iter()
        .map(|r| pushes(std::slice::from_ref(r), &repo, &blobs))
        .collect();
    let host = target.host();
    let runs = plans.iter().map(|plan| {
        let host = host.clone();
        async move { push_attachments(&client(&host), plan, &PushOptions::default(), None).await }
    });
    let reports = futures::future::join_all(runs).await;
    for report in &reports {
        assert_eq!(report.failures().count(), 0, "{report:#?}");
    }
    let listed = |bytes: &[u8]| -> Vec<String> {
        let index: Value = serde_json::from_slice(bytes).unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let tag = fallback_tag(&digest);
    let first = listed(&raw(&format!("{host}/{repo}:{tag}")));
    eprintln!(
        "after the concurrent pushes the index lists {} of 6",
        first.len()
    );

    // The second run, one pusher after the other.
    let mut again = Vec::new();
    for plan in &plans {
        again.push(push_attachments(&client(&host), plan, &PushOptions::default(), None).await);
    }
    let mut want: Vec<String> = referrers.iter().map(|r| r.digest.to_string()).collect();
    want.sort();
    let end = listed(&raw(&format!("{host}/{repo}:{tag}")));
    assert_eq!(end, want, "sorted by digest, every entry");
    for (report, referrer) in again.iter().zip(&referrers) {
        assert_eq!(report.failures().count(), 0, "{report:#?}");
        assert_eq!(report.manifests_pushed, 0);
        let was_listed = first.contains(&referrer.digest.to_string());
        assert_eq!(
            report.attachments[0].referrers,
            Some(if was_listed {
                ReferrerListing::FallbackIndexPresent
            } else {
                ReferrerListing::FallbackIndexAdded
            }),
            "{}",
            referrer.digest
        );
    }
}

/// A registry with the referrers API (go-containerregistry's) lists a referrer itself: kantup
/// pushes it by digest and writes no fallback index; cosign finds and verifies it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_the_referrers_api_gets_no_fallback_index() {
    let dir = tempfile::tempdir().unwrap();
    let archive = generated(dir.path());
    let source = RegistryServer::start();
    let home = cosign_home(dir.path());
    let (source_repo, digest) = push_image(&archive, &source, "publisher").await;
    let signed = format!("{}/{source_repo}@{digest}", source.host());
    sign_all_ways(&home, &signed, "cosign.key");
    let mut blobs = MemoryBlobs::default();
    let attachments = fetch_all(&client(&source.host()), &source_repo, digest, &mut blobs).await;

    let target = ReferrersRegistry::start();
    let host = target.host();
    let (target_repo, _) = push_image_to(&archive, &host, "mirror/apps").await;
    let target_client = client(&host);
    assert!(
        target_client
            .has_referrers_api(&target_repo, &digest)
            .await
            .unwrap()
    );
    let plan = pushes(&attachments, &target_repo, &blobs);
    let planned = plan_attachments(&target_client, &plan).await.unwrap();
    assert_eq!(planned[2].referrers, Some(ReferrerListing::ReferrersApi));

    let report = push_attachments(&target_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{report:#?}");
    assert_eq!(report.manifests_pushed, 3);
    assert_eq!(report.fallback_indexes_written, 0);
    assert_eq!(
        report.attachments[2].referrers,
        Some(ReferrerListing::ReferrersApi)
    );
    let tags = target_client.list_tags(&target_repo).await.unwrap();
    assert!(!tags.contains(&fallback_tag(&digest)), "{tags:?}");
    for kind in [AttachmentKind::Signature, AttachmentKind::Attestation] {
        let tag = cosign_tag(&digest, kind).unwrap();
        assert_eq!(
            raw(&format!("{host}/{target_repo}:{tag}")),
            raw(&format!("{}/{source_repo}:{tag}", source.host())),
            "{tag}"
        );
    }
    // The registry lists the referrer at the source's digest.
    let listed: Value = reqwest::get(format!("http://{host}/v2/{target_repo}/referrers/{digest}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![attachments[2].digest.to_string()]);

    let image = format!("{host}/{target_repo}@{digest}");
    for extra in [&[][..], &["--new-bundle-format=false"][..]] {
        let accepted = verify(&home, "verify", &image, "cosign.pub", extra);
        assert!(
            accepted.status.success(),
            "verify {extra:?}: {}",
            text(&accepted)
        );
        let refused = verify(&home, "verify", &image, "other.pub", extra);
        assert!(
            !refused.status.success(),
            "other key accepted: {}",
            text(&refused)
        );
    }

    let again = push_attachments(&target_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(again.failures().count(), 0, "{again:#?}");
    assert_eq!(counts(&again), (0, 0, 0), "{again:?}");
    assert_eq!(
        again.attachments[2].referrers,
        Some(ReferrerListing::ReferrersApi)
    );
}

/// The target already has a `.sig` for the image, made there with another key: kantup's
/// `.sig` replaces it (reported, with the digest it had) or, with `TagPolicy::Refuse`, is
/// refused and the target's stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cosign_tag_pointing_elsewhere_is_overwritten_or_refused_as_the_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let archive = generated(dir.path());
    let source = RegistryServer::start();
    let target = RegistryServer::start();
    let home = cosign_home(dir.path());
    let (source_repo, digest) = push_image(&archive, &source, "publisher").await;
    sign_classic(
        &home,
        &format!("{}/{source_repo}@{digest}", source.host()),
        "cosign.key",
    );
    let tag = cosign_tag(&digest, AttachmentKind::Signature).unwrap();
    let mut blobs = MemoryBlobs::default();
    let signature = fetch_attachment(
        &client(&source.host()),
        &source_repo,
        &tag,
        AttachmentKind::Signature,
        digest,
        Link::Tag(tag.clone()),
        &mut blobs,
    )
    .await;

    let (target_repo, _) = push_image(&archive, &target, "mirror/apps").await;
    let image = format!("{}/{target_repo}@{digest}", target.host());
    sign_classic(&home, &image, "other.key");
    let at_tag = format!("{}/{target_repo}:{tag}", target.host());
    let theirs = Digest::of(&raw(&at_tag));
    assert_ne!(theirs, signature.digest);

    let target_client = client(&target.host());
    let plan = pushes(std::slice::from_ref(&signature), &target_repo, &blobs);
    let refuse = PushOptions {
        tag_policy: TagPolicy::Refuse,
        ..PushOptions::default()
    };
    let refused = push_attachments(&target_client, &plan, &refuse, None).await;
    let error = refused.attachments[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("refusing to overwrite"), "{refused:#?}");
    assert_eq!(refused.manifests_pushed, 0);
    assert_eq!(Digest::of(&raw(&at_tag)), theirs);

    let replaced = push_attachments(&target_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(replaced.failures().count(), 0, "{replaced:#?}");
    assert_eq!(
        replaced.attachments[0].action,
        ImageAction::Overwrite {
            previous: Some(theirs)
        }
    );
    assert_eq!(raw(&at_tag), signature.manifest);
    let accepted = verify(
        &home,
        "verify",
        &image,
        "cosign.pub",
        &["--new-bundle-format=false"],
    );
    assert!(accepted.status.success(), "{}", text(&accepted));
}
