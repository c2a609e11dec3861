//! Signatures, attestations, SBOMs and referrers made by the real cosign (the `signed_images`
//! fixture) are read from OCI layouts as attachments of their images, byte-exact, in each form
//! they come in: `cosign save`'s `kind` annotations, manifests named by cosign's tags, the
//! referrers fallback index, and referrers listed on their own.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use kantup_bundle::archive::ImageArchive;
use kantup_bundle::archive::attachment::{Attachment, AttachmentKind, Link};
use kantup_bundle::{BundleError, Digest};
use kantup_test_support::signed_images::{FixtureKind, SignedImages};
use serde_json::Value;

/// `(subject, digest, link)` of each attachment, comparable with the fixture's list.
fn summary(attachments: &[Attachment]) -> BTreeSet<(String, String, String)> {
    attachments
        .iter()
        .map(|a| {
            let link = match &a.link {
                Link::Tag(tag) => tag.clone(),
                Link::Subject => "referrer".to_string(),
            };
            (a.subject.to_string(), a.digest.to_string(), link)
        })
        .collect()
}

fn expected(fixture: &SignedImages) -> BTreeSet<(String, String, String)> {
    fixture
        .attachments
        .iter()
        .map(|a| {
            let link = if a.kind == FixtureKind::Referrer {
                "referrer".to_string()
            } else {
                a.tag.clone()
            };
            (a.subject.clone(), a.digest.clone(), link)
        })
        .collect()
}

/// Every attachment's manifest is byte-exact and each of its blobs reads back at its digest.
fn check_bytes(archive: &ImageArchive) {
    for a in archive.attachments() {
        assert_eq!(Digest::of(&a.manifest), a.digest, "{}", a.describe());
        let mut manifest = Vec::new();
        archive
            .open_blob(&a.digest)
            .unwrap()
            .read_to_end(&mut manifest)
            .unwrap();
        assert_eq!(manifest, a.manifest, "{}", a.describe());
        assert!(!a.blobs.is_empty());
        for b in &a.blobs {
            let bytes = archive.read_blob(&b.digest).unwrap();
            assert_eq!(Digest::of(&bytes), b.digest, "{} blob", a.describe());
            assert_eq!(bytes.len() as u64, b.size);
        }
    }
}

fn rewrite_index(layout: &Path, edit: impl FnOnce(&mut Vec<Value>)) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(index["manifests"].as_array_mut().unwrap());
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn cosign_attachments_are_read_in_every_form() {
    let fixture = SignedImages::create();

    // Tags and the fallback index: everything the registry holds, nothing taken for an image.
    let archive = ImageArchive::open(&fixture.layout).unwrap();
    assert_eq!(archive.images().len(), 3, "{:#?}", archive.images());
    assert_eq!(archive.indexes().len(), 1);
    assert_eq!(summary(archive.attachments()), expected(&fixture));
    check_bytes(&archive);
    let kinds = |digest: &str| -> Vec<AttachmentKind> {
        let d: Digest = digest.parse().unwrap();
        let mut v: Vec<AttachmentKind> = archive.attachments_of(&d).map(|a| a.kind).collect();
        v.sort();
        v
    };
    use AttachmentKind::*;
    // The Sigstore bundles are a signature and an SPDX attestation.
    assert_eq!(
        kinds(&fixture.single.digest),
        [Signature, Signature, Attestation, Attestation, Sbom]
    );
    assert_eq!(kinds(&fixture.index.digest), [Signature, Signature]);
    for p in &fixture.index.platforms {
        assert_eq!(
            kinds(&p.digest),
            [Signature, Signature, Attestation],
            "{p:?}"
        );
    }

    // Referrers listed on their own (no fallback index): the same attachments.
    let scratch = tempfile::tempdir().unwrap();
    let listed = scratch.path().join("listed");
    copy_dir(&fixture.layout, &listed);
    rewrite_index(&listed, |entries| {
        let mut children = Vec::new();
        entries.retain(|e| {
            let fallback = e["mediaType"] == "application/vnd.oci.image.index.v1+json"
                && e["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .is_some_and(|n| !n.ends_with(":1.0.0"));
            if fallback {
                let hex = e["digest"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("sha256:")
                    .unwrap();
                let index: Value = serde_json::from_slice(
                    &std::fs::read(listed.join("blobs/sha256").join(hex)).unwrap(),
                )
                .unwrap();
                children.extend(index["manifests"].as_array().unwrap().iter().cloned());
            }
            !fallback
        });
        assert!(!children.is_empty());
        entries.extend(children);
    });
    let archive = ImageArchive::open(&listed).unwrap();
    assert_eq!(archive.images().len(), 3);
    assert_eq!(summary(archive.attachments()), expected(&fixture));

    // cosign save: `kind` annotations, no names; the attachments are the saved image's.
    let (_, single_dir) = &fixture.cosign_saved[0];
    let saved = ImageArchive::open(single_dir).unwrap();
    assert_eq!(saved.images().len(), 1);
    assert_eq!(
        saved.images()[0].manifest_digest.to_string(),
        fixture.single.digest
    );
    let from_registry: BTreeSet<_> = expected(&fixture)
        .into_iter()
        .filter(|(s, _, link)| {
            s == &fixture.single.digest && (link.ends_with(".sig") || link.ends_with(".att"))
        })
        .collect();
    assert_eq!(summary(saved.attachments()), from_registry);
    check_bytes(&saved);
    let (_, index_dir) = &fixture.cosign_saved[1];
    let saved = ImageArchive::open(index_dir).unwrap();
    assert_eq!(saved.indexes().len(), 1);
    assert_eq!(saved.indexes()[0].digest.to_string(), fixture.index.digest);
    let kinds: Vec<_> = saved
        .attachments()
        .iter()
        .map(|a| (a.kind, a.subject.to_string()))
        .collect();
    assert_eq!(kinds, [(Signature, fixture.index.digest.clone())]);

    // Two saved layouts merged into one: the subjects come from the signed payloads.
    let merged = scratch.path().join("merged");
    copy_dir(single_dir, &merged);
    copy_dir(index_dir, &merged);
    let read = |dir: &Path| -> Vec<Value> {
        let v: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        v["manifests"].as_array().unwrap().clone()
    };
    let mut all = read(single_dir);
    all.extend(read(index_dir));
    rewrite_index(&merged, |entries| *entries = all);
    let archive = ImageArchive::open(&merged).unwrap();
    let mut subjects: Vec<_> = archive
        .attachments()
        .iter()
        .map(|a| (a.subject.to_string(), a.kind))
        .collect();
    subjects.sort();
    let mut want = vec![
        (fixture.single.digest.clone(), Signature),
        (fixture.single.digest.clone(), Attestation),
        (fixture.index.digest.clone(), Signature),
    ];
    want.sort();
    assert_eq!(subjects, want);

    // A signature whose image is not in the layout is refused, naming both.
    let orphan = scratch.path().join("orphan");
    copy_dir(single_dir, &orphan);
    rewrite_index(&orphan, |entries| {
        entries.retain(|e| e["annotations"]["kind"] != "dev.cosignproject.cosign/image")
    });
    let err = ImageArchive::open(&orphan).unwrap_err();
    assert!(
        matches!(&err, BundleError::AttachmentWithoutSubject { subject, .. } if subject.to_string() == fixture.single.digest),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("signature sha256:") && message.contains(&fixture.single.digest),
        "{message}"
    );
}

/// The attachments of `archive` by digest, with their manifest bytes and subject.
fn by_digest(archive: &ImageArchive) -> Vec<(String, String, Vec<u8>)> {
    let mut v: Vec<_> = archive
        .attachments()
        .iter()
        .map(|a| {
            (
                a.digest.to_string(),
                a.subject.to_string(),
                a.manifest.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_relok8s_bundle_carries_every_attachment_and_the_index() {
    let fixture = SignedImages::create();
    let source = ImageArchive::open(&fixture.layout).unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("signed.bundle.tar");
    let report = kantup_bundle::create::create(
        &kantup_bundle::create::CreateOptions {
            chart: fixture.inputs.chart_dir.clone(),
            hints: fixture.inputs.hints.clone(),
            images: Some(fixture.layout.clone()),
            output: bundle.clone(),
            compression: kantup_bundle::archive::Compression::None,
            base: None,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.images, 3);
    assert_eq!(report.attachments, fixture.attachments.len());

    let opened = kantup_bundle::Bundle::open(&bundle).unwrap();
    opened
        .verify(kantup_bundle::VerifyOptions::default(), &mut |_| {})
        .unwrap();
    let archive = opened.image_archive().unwrap().unwrap();
    assert_eq!(summary(archive.attachments()), expected(&fixture));
    assert_eq!(by_digest(&archive), by_digest(&source));
    check_bytes(&archive);
    // The index travels too, at its digest, so its signature still names it.
    let index: Vec<String> = archive
        .indexes()
        .iter()
        .map(|i| i.digest.to_string())
        .collect();
    assert_eq!(index, std::slice::from_ref(&fixture.index.digest));
    assert_eq!(archive.images().len(), 3);
    let names: Vec<String> = archive
        .indexes()
        .iter()
        .flat_map(|i| i.references.iter().map(ToString::to_string))
        .collect();
    assert_eq!(names, std::slice::from_ref(&fixture.index.reference));
}

/// A wrap keeps every attachment in `helm dt`'s `artifacts/images/<chart>/<name>/` layouts
/// (`<tag>.sig/`, per platform `<tag>.<os>_<arch>.sig/`, and likewise `.att`, `.sbom`,
/// `.referrers`) and the index it signs; reading it back gives the same attachments, byte for
/// byte, about the same digests.
#[test]
fn a_wrap_carries_every_attachment_in_dt_artifact_layouts() {
    use kantup_bundle::wrap::{WrapOptions, create_wrap};
    let fixture = SignedImages::create();
    let source = ImageArchive::open(&fixture.layout).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = |name: &str| WrapOptions {
        chart: fixture.inputs.chart_dir.clone(),
        images: Some(fixture.layout.clone()),
        output: out.path().join(name),
    };
    let report = create_wrap(&options("a.wrap.tgz"), &mut |_| {}).unwrap();
    assert_eq!(report.images, 3);
    assert_eq!(report.attachments, fixture.attachments.len());
    assert!(report.dropped.is_empty(), "{:?}", report.dropped);
    let again = create_wrap(&options("b.wrap.tgz"), &mut |_| {}).unwrap();
    assert_eq!(report.digest, again.digest, "same inputs, same bytes");

    let opened = kantup_bundle::Bundle::open(&report.output).unwrap();
    opened
        .verify(kantup_bundle::VerifyOptions::default(), &mut |_| {})
        .unwrap();
    let archive = opened.image_archive().unwrap().unwrap();
    assert_eq!(summary(archive.attachments()), expected(&fixture));
    assert_eq!(by_digest(&archive), by_digest(&source));
    check_bytes(&archive);
    // The index is the one that was signed, not one rebuilt from the lock.
    let indexes: Vec<(String, Vec<String>)> = archive
        .indexes()
        .iter()
        .map(|i| {
            (
                i.digest.to_string(),
                i.references.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        indexes,
        [(
            fixture.index.digest.clone(),
            vec![fixture.index.reference.clone()]
        )]
    );
    assert_eq!(archive.images().len(), 3);

    // Where dt looks: the single image's .sig as a layout of that one manifest.
    let lock = opened.images_lock().unwrap().unwrap();
    let root = format!("{}-{}", lock.chart.name, lock.chart.version);
    let dir_of = |reference: &str| {
        let (repository, tag) = reference.rsplit_once(':').unwrap();
        let name = repository.rsplit('/').next().unwrap();
        let entry = lock.images.iter().find(|e| e.image == reference).unwrap();
        format!("{root}/artifacts/images/{}/{name}/{tag}", entry.chart)
    };
    let layout_index = |dir: &str| -> Value {
        serde_json::from_slice(&opened.read_small(&format!("{dir}/index.json")).unwrap()).unwrap()
    };
    let sig_of = |subject: &str| {
        fixture
            .attachments
            .iter()
            .find(|a| a.subject == subject && a.tag.ends_with(".sig"))
            .unwrap()
            .digest
            .clone()
    };
    let single = layout_index(&format!("{}.sig", dir_of(&fixture.single.reference)));
    assert_eq!(single["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        single["manifests"][0]["digest"],
        sig_of(&fixture.single.digest)
    );
    let index_dir = dir_of(&fixture.index.reference);
    let index_sig = layout_index(&format!("{index_dir}.sig"));
    assert_eq!(
        index_sig["manifests"][0]["digest"],
        sig_of(&fixture.index.digest)
    );
    for p in &fixture.index.platforms {
        let platform = p.platform.replace('/', "_");
        let att = layout_index(&format!("{index_dir}.{platform}.att"));
        assert_eq!(att["manifests"].as_array().unwrap().len(), 1, "{platform}");
    }
    let kept = opened
        .read_small(&format!("{index_dir}.index.json"))
        .unwrap();
    assert_eq!(Digest::of(&kept).to_string(), fixture.index.digest);
}

/// A wrap keeps attachments beside the images its `Images.lock` lists: when the chart's own
/// lock leaves an image out, that image's attachments would be lost, and `create_wrap` refuses,
/// naming them, unless told to drop them.
#[test]
fn a_wrap_refuses_to_lose_attachments_of_images_its_lock_leaves_out() {
    use kantup_bundle::create::LostAttachments;
    use kantup_bundle::wrap::{WrapOptions, create_wrap, create_wrap_carrying};
    let fixture = SignedImages::create();
    let out = tempfile::tempdir().unwrap();
    let full = create_wrap(
        &WrapOptions {
            chart: fixture.inputs.chart_dir.clone(),
            images: Some(fixture.layout.clone()),
            output: out.path().join("full.wrap.tgz"),
        },
        &mut |_| {},
    )
    .unwrap();
    let mut lock = kantup_bundle::Bundle::open(&full.output)
        .unwrap()
        .images_lock()
        .unwrap()
        .unwrap();
    lock.images.retain(|e| e.image == fixture.single.reference);
    assert_eq!(lock.images.len(), 1);
    let chart = out.path().join("chart");
    copy_dir(&fixture.inputs.chart_dir, &chart);
    std::fs::write(chart.join("Images.lock"), lock.to_yaml()).unwrap();
    let options = WrapOptions {
        chart,
        images: Some(fixture.layout.clone()),
        output: out.path().join("part.wrap.tgz"),
    };
    let err = create_wrap(&options, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, BundleError::AttachmentsNotKept { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&fixture.index.digest), "{message}");
    assert!(message.contains("--drop-signatures"), "{message}");
    assert!(!message.contains(&fixture.single.digest), "{message}");
    assert!(!options.output.exists());

    let report = create_wrap_carrying(&options, LostAttachments::Drop, &mut |_| {}).unwrap();
    let of_index = fixture
        .attachments
        .iter()
        .filter(|a| {
            a.subject == fixture.index.digest
                || fixture
                    .index
                    .platforms
                    .iter()
                    .any(|p| p.digest == a.subject)
        })
        .count();
    assert_eq!(report.dropped.len(), of_index, "{:?}", report.dropped);
    assert_eq!(report.attachments, fixture.attachments.len() - of_index);
    let archive = kantup_bundle::Bundle::open(&options.output)
        .unwrap()
        .image_archive()
        .unwrap()
        .unwrap();
    assert!(
        archive
            .attachments()
            .iter()
            .all(|a| a.subject.to_string() == fixture.single.digest)
    );
    assert_eq!(archive.attachments().len(), report.attachments);
}

/// A wrap as `helm dt wrap --fetch-artifacts` leaves it: only `.sig` layouts, each listing its
/// one manifest unnamed (crane's `SaveOCI`), and no kept index (dt rebuilds it). The platform
/// signatures are read, their images found from the signed payloads; the index's signature,
/// about an index the wrap does not hold, is left out.
#[test]
fn a_wrap_as_helm_dt_keeps_it_gives_its_platform_signatures() {
    use kantup_bundle::wrap::{WrapOptions, create_wrap};
    let fixture = SignedImages::create();
    let out = tempfile::tempdir().unwrap();
    let report = create_wrap(
        &WrapOptions {
            chart: fixture.inputs.chart_dir.clone(),
            images: Some(fixture.layout.clone()),
            output: out.path().join("ours.wrap.tgz"),
        },
        &mut |_| {},
    )
    .unwrap();
    let tree = out.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let run = |cmd: &mut std::process::Command| assert!(cmd.status().unwrap().success());
    run(std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&report.output)
        .arg("-C")
        .arg(&tree));
    let root = std::fs::read_dir(&tree)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let artifacts = tree.join(&root).join("artifacts/images");
    let mut stack = vec![artifacts.clone()];
    let mut sig_layouts = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() {
                if name.ends_with(".index.json") {
                    std::fs::remove_file(&path).unwrap();
                }
            } else if name.ends_with(".sig") {
                rewrite_index(&path, |entries| {
                    for e in entries.iter_mut() {
                        e.as_object_mut().unwrap().remove("annotations");
                    }
                });
                sig_layouts += 1;
            } else if name.contains('.') {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                stack.push(path);
            }
        }
    }
    assert_eq!(
        sig_layouts, 4,
        "the single image, the index and its two platforms"
    );
    // dt's index is rebuilt from the lock: listing the platforms in another order than the
    // signed index does makes it another index, as dt's usually is.
    let lock_path = tree.join(&root).join("chart/Images.lock");
    let mut lock = kantup_bundle::images_lock::ImagesLock::parse(
        "Images.lock",
        &std::fs::read_to_string(&lock_path).unwrap(),
    )
    .unwrap();
    let entry = lock
        .images
        .iter_mut()
        .find(|e| e.image == fixture.index.reference)
        .unwrap();
    assert_eq!(entry.digests.len(), 2);
    entry.digests.reverse();
    std::fs::write(&lock_path, lock.to_yaml()).unwrap();
    let dt = out.path().join("dt.wrap.tgz");
    run(std::process::Command::new("tar")
        .arg("-czf")
        .arg(&dt)
        .arg("-C")
        .arg(&tree)
        .arg(&root));

    let opened = kantup_bundle::Bundle::open(&dt).unwrap();
    let archive = opened.image_archive().unwrap().unwrap();
    let wanted: BTreeSet<_> = expected(&fixture)
        .into_iter()
        .filter(|(subject, _, link)| link.ends_with(".sig") && subject != &fixture.index.digest)
        .collect();
    assert_eq!(wanted.len(), 3);
    assert_eq!(summary(archive.attachments()), wanted);
    check_bytes(&archive);
    assert_eq!(archive.indexes().len(), 1);
    assert_ne!(
        archive.indexes()[0].digest.to_string(),
        fixture.index.digest
    );
}

#[test]
fn what_the_attachments_say_signers_predicates_and_sboms() {
    use kantup_bundle::archive::attachment_info::{
        SbomFormat, SbomSource, SignatureFormat, attached_to,
    };
    let fixture = SignedImages::create();
    let archive = ImageArchive::open(&fixture.layout).unwrap();
    let single: Digest = fixture.single.digest.parse().unwrap();
    let info = attached_to(&archive, &single).unwrap();
    let formats: Vec<SignatureFormat> = info.signatures.iter().map(|s| s.format).collect();
    assert!(
        formats.contains(&SignatureFormat::Cosign)
            && formats.contains(&SignatureFormat::SigstoreBundle)
            && formats.len() == 2,
        "{info:#?}"
    );
    assert!(
        info.signatures.iter().all(|s| s.signer.starts_with("key")),
        "{info:#?}"
    );
    let mut predicates: Vec<&str> = info
        .attestations
        .iter()
        .map(|a| a.predicate_type.as_str())
        .collect();
    predicates.sort();
    assert_eq!(
        predicates,
        [
            "https://cyclonedx.org/bom",
            "https://spdx.dev/Document",
            "https://spdx.dev/Document"
        ]
    );
    let mut sboms: Vec<(SbomFormat, SbomSource)> =
        info.sboms.iter().map(|s| (s.format, s.source)).collect();
    sboms.sort_by_key(|(f, s)| (*f, format!("{s:?}")));
    assert_eq!(
        sboms,
        [
            (SbomFormat::SpdxJson, SbomSource::Attachment),
            (SbomFormat::SpdxJson, SbomSource::Attestation),
            (SbomFormat::SpdxJson, SbomSource::Attestation),
            (SbomFormat::CyclonedxJson, SbomSource::Attestation),
        ]
    );
    // Each SBOM is the document cosign was given.
    let spdx: Value = serde_json::from_str(kantup_test_support::signed_images::SPDX_SBOM).unwrap();
    let cdx: Value =
        serde_json::from_str(kantup_test_support::signed_images::CYCLONEDX_SBOM).unwrap();
    for s in &info.sboms {
        let doc: Value = serde_json::from_slice(&s.bytes).unwrap();
        let want = if s.format == SbomFormat::SpdxJson {
            &spdx
        } else {
            &cdx
        };
        assert_eq!(&doc, want, "{:?} from {}", s.format, s.attachment);
    }

    // A signature with a certificate (cosign sign --certificate, the certificate made by
    // openssl with an e-mail SAN, as Fulcio issues them) names that identity.
    let dir = fixture.dir().join("cosign");
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(&dir)
            .env("COSIGN_PASSWORD", "")
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ],
    );
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ec.pem",
            "-days",
            "30",
            "-subj",
            "/O=kantup test",
            "-addext",
            "subjectAltName=email:signer@example.com",
            "-out",
            "cert.pem",
        ],
    );
    let out = fixture.cosign(&[
        "import-key-pair",
        "--key",
        "ec.pem",
        "--output-key-prefix",
        "cert",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fixture.cosign(&[
        "sign",
        "--key",
        "cert.key",
        "--certificate",
        "cert.pem",
        "--yes",
        "--tlog-upload=false",
        "--use-signing-config=false",
        "--new-bundle-format=false",
        "--trusted-root",
        "trusted-root.json",
        "--allow-http-registry",
        &fixture.single.pushed_by_digest(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = fixture.dir().join("saved-with-certificate");
    let out = fixture.cosign(&[
        "save",
        "--allow-http-registry",
        "--dir",
        saved.to_str().unwrap(),
        &fixture.single.pushed_by_digest(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = ImageArchive::open(&saved).unwrap();
    let mut signers: Vec<String> = attached_to(&archive, &single)
        .unwrap()
        .signatures
        .into_iter()
        .map(|s| s.signer)
        .collect();
    signers.sort();
    assert_eq!(signers, ["key", "signer@example.com"]);
}

/// How several signed images get into one layout (what the README tells): `cosign save` keeps
/// one image per directory (a second save into it replaces the first), while `skopeo copy
/// --preserve-digests` adds each image and each cosign tag (`sha256-<hex>.sig`, `.att`) to one
/// `oci:` layout, where kantup reads the tagged manifests as the images' attachments.
#[test]
fn several_signed_images_go_into_one_layout_with_skopeo() {
    let fixture = SignedImages::create();
    let saved = fixture.dir().join("saved-together");
    for image in [&fixture.single, &fixture.index] {
        let out = fixture.cosign(&[
            "save",
            "--allow-http-registry",
            "--dir",
            saved.to_str().unwrap(),
            &image.pushed_by_digest(),
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    let archive = ImageArchive::open(&saved).unwrap();
    let indexes: Vec<String> = archive
        .indexes()
        .iter()
        .map(|i| i.digest.to_string())
        .collect();
    assert_eq!(indexes, std::slice::from_ref(&fixture.index.digest));
    assert!(
        !archive
            .images()
            .iter()
            .any(|i| i.manifest_digest.to_string() == fixture.single.digest),
        "the second cosign save replaced the first"
    );

    let layout = fixture.dir().join("copied-together");
    let copy = |from: &str, name: &str, all: bool| {
        let mut args = vec!["copy", "--preserve-digests", "--src-tls-verify=false"];
        if all {
            args.push("--all");
        }
        let dest = format!("oci:{}:{name}", layout.display());
        args.extend([from, dest.as_str()]);
        kantup_test_support::tools::skopeo(&args);
    };
    let mut wanted = BTreeSet::new();
    for image in [&fixture.single, &fixture.index] {
        let repository = image.reference.rsplit_once(':').unwrap().0;
        copy(
            &format!("docker://{}", image.pushed_by_digest()),
            &image.reference,
            std::ptr::eq(image, &fixture.index),
        );
        for a in fixture.attachments.iter().filter(|a| {
            a.subject == image.digest && (a.tag.ends_with(".sig") || a.tag.ends_with(".att"))
        }) {
            copy(
                &format!("docker://{}:{}", image.pushed_repository, a.tag),
                &format!("{repository}:{}", a.tag),
                false,
            );
            wanted.insert((a.subject.clone(), a.digest.clone(), a.tag.clone()));
        }
    }
    let archive = ImageArchive::open(&layout).unwrap();
    assert_eq!(archive.images().len(), 3);
    assert_eq!(
        archive
            .indexes()
            .iter()
            .map(|i| i.digest.to_string())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&fixture.index.digest)
    );
    assert_eq!(summary(archive.attachments()), wanted);
    check_bytes(&archive);
}
