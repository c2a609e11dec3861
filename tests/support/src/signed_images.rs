//! Images signed, attested and given SBOMs by the real `cosign`, in a real docker-registry, then
//! brought out into OCI layouts the way users bring them into an air gap.
//!
//! [`SignedImages::create`] generates two images with [`crate::image_gen`] (a chart and relok8s
//! hints naming them come with it): `gen-app-00`, a single-platform image, and `gen-app-01`, a
//! two-platform index (linux/amd64 and linux/arm64). Both are pushed digest-exact (skopeo
//! `--preserve-digests`) into a [`RegistryServer`], then cosign, with a fresh key pair and no
//! transparency log (nothing leaves loopback: an empty trusted root and a signing config without
//! services), makes:
//!
//! - single image: a classic signature (`sha256-<hex>.sig`), SPDX and CycloneDX attestations
//!   (`.att`, one layer each), an SPDX SBOM attachment (`.sbom`, `cosign attach sbom`), and a
//!   Sigstore bundle signature and SPDX attestation as OCI 1.1 referrers (docker-registry 2.8
//!   has no referrers API, so they are listed by the fallback index tagged `sha256-<hex>`);
//! - index: classic and Sigstore bundle signatures of the index and of each platform manifest
//!   (`cosign sign --recursive`), and a classic SPDX attestation of each platform manifest.
//!
//! Then it writes two forms of OCI layout:
//!
//! - [`SignedImages::cosign_saved`]: what `cosign save --dir` wrote for each image, untouched.
//!   cosign 3.1 writes one image per directory (a second save replaces the first), marks
//!   entries with the `kind` annotation (`dev.cosignproject.cosign/image`, `/imageIndex`,
//!   `/sigs`, `/atts`, `/sboms`), names none of them, and keeps only the top manifest's classic
//!   attachments: no referrers, no platform manifests' signatures.
//! - [`SignedImages::layout`]: the generated layout (images named by their source references)
//!   plus every attachment the registry holds, each manifest and blob byte for byte as the
//!   registry serves it, named by its tag (`example.com/kantup/gen-app-00:sha256-<hex>.sig`, the
//!   fallback index `...:sha256-<hex>`), as a registry-to-layout copy (`oras copy -r`,
//!   `regctl image copy --referrers`) leaves them.
//!
//! [`SignedImages::attachments`] lists every attachment the registry holds, for tests to check
//! a reader against.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::image_gen::{GenBundleInputs, GenSpec, generate_bundle_inputs};
use crate::registry_server::RegistryServer;
use crate::tools::{cosign as cosign_binary, require_tool};

/// The cosign `kind` annotation values of `cosign save` (cosign's `pkg/oci/layout`).
pub const KIND_IMAGE: &str = "dev.cosignproject.cosign/image";
/// `kind` of an index `cosign save` wrote.
pub const KIND_IMAGE_INDEX: &str = "dev.cosignproject.cosign/imageIndex";
/// `kind` of a `.sig` manifest `cosign save` wrote.
pub const KIND_SIGS: &str = "dev.cosignproject.cosign/sigs";
/// `kind` of a `.att` manifest `cosign save` wrote.
pub const KIND_ATTS: &str = "dev.cosignproject.cosign/atts";

/// An empty Sigstore trusted root: with it cosign fetches no TUF root.
const TRUSTED_ROOT: &str =
    r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;
/// A signing config without services: cosign 3 signs in the Sigstore bundle format, offline.
const SIGNING_CONFIG: &str = r#"{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","rekorTlogConfig":{},"tsaConfig":{}}"#;
/// The flags of a classic (`.sig` / `.att`) cosign signature without a transparency log.
const CLASSIC: [&str; 5] = [
    "--tlog-upload=false",
    "--use-signing-config=false",
    "--new-bundle-format=false",
    "--trusted-root",
    "trusted-root.json",
];
/// The flags of a Sigstore bundle signature (an OCI 1.1 referrer), offline.
const BUNDLE_FORMAT: [&str; 4] = [
    "--signing-config",
    "signing-config.json",
    "--trusted-root",
    "trusted-root.json",
];

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The SPDX document the single image is attested and attached with.
pub const SPDX_SBOM: &str = r#"{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"gen-app-00","documentNamespace":"https://example.com/kantup/gen-app-00","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: kantup-tests"]},"packages":[{"name":"gen-app","SPDXID":"SPDXRef-gen-app","versionInfo":"1.0.0","downloadLocation":"NOASSERTION"}]}"#;
/// The CycloneDX document the single image is attested with.
pub const CYCLONEDX_SBOM: &str = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[{"type":"application","name":"gen-app","version":"1.0.0"}]}"#;

/// One platform manifest of the index.
#[derive(Debug, Clone)]
pub struct PlatformManifest {
    /// `linux/amd64`, `linux/arm64`.
    pub platform: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// One signed image (or index) of the fixture.
#[derive(Debug, Clone)]
pub struct SignedImage {
    /// Its source reference in [`SignedImages::layout`] and in the chart
    /// (`example.com/kantup/gen-app-00:1.0.0`).
    pub reference: String,
    /// Its repository in the registry (`127.0.0.1:PORT/kantup/gen-app-00`).
    pub pushed_repository: String,
    /// The manifest (or index) digest, `sha256:<hex>`.
    pub digest: String,
    /// For the index: its platform manifests, in index order; empty for a single image.
    pub platforms: Vec<PlatformManifest>,
}

impl SignedImage {
    /// `repository@digest` in the registry.
    pub fn pushed_by_digest(&self) -> String {
        format!("{}@{}", self.pushed_repository, self.digest)
    }
}

/// What an attachment the registry holds is, as the fixture made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FixtureKind {
    /// `.sig`.
    Signature,
    /// `.att`.
    Attestation,
    /// `.sbom`.
    Sbom,
    /// A Sigstore bundle referrer (signature or attestation), listed by the fallback index.
    Referrer,
}

/// One attachment in the registry (and in [`SignedImages::layout`]).
#[derive(Debug, Clone)]
pub struct FixtureAttachment {
    pub kind: FixtureKind,
    /// The image manifest or index it is about, `sha256:<hex>`.
    pub subject: String,
    /// The attachment manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// Its tag (`sha256-<hex>.sig`) for classic ones; for referrers the fallback tag listing it.
    pub tag: String,
    /// Predicate types of its attestation layers (classic `.att`: the `predicateType`
    /// annotations), or the `artifactType` of a referrer.
    pub detail: Vec<String>,
}

/// The fixture: keep it alive while the registry and files are needed.
pub struct SignedImages {
    /// The registry holding the images and everything cosign made (kept running).
    pub registry: RegistryServer,
    dir: tempfile::TempDir,
    /// Chart, hints and generated layout (the images alone, unsigned) for `bundle create`.
    pub inputs: GenBundleInputs,
    /// The single-platform image (`gen-app-00`).
    pub single: SignedImage,
    /// The two-platform index (`gen-app-01`).
    pub index: SignedImage,
    /// One OCI layout holding the images and every attachment, named by tags (see the module
    /// documentation).
    pub layout: PathBuf,
    /// `cosign save --dir` output for each image, as cosign wrote it: `(reference, dir)`, the
    /// single image first, then the index.
    pub cosign_saved: Vec<(String, PathBuf)>,
    /// cosign's private key (`cosign.key`, empty password).
    pub private_key: PathBuf,
    /// The public key the images are signed with (`cosign.pub`, PEM).
    pub public_key: PathBuf,
    /// Another key pair's public key, which signed nothing.
    pub other_public_key: PathBuf,
    /// The empty trusted root cosign is given (`--trusted-root`), for `cosign verify`.
    pub trusted_root: PathBuf,
    /// Every attachment in the registry, sorted by subject, kind and digest.
    pub attachments: Vec<FixtureAttachment>,
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("sha256 digest")
}

/// `sha256-<hex>` (cosign's and the referrers fallback scheme).
fn fallback_tag(digest: &str) -> String {
    format!("sha256-{}", hex_of(digest))
}

impl SignedImages {
    /// Makes everything (a few seconds: about twenty cosign runs against loopback).
    pub fn create() -> SignedImages {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = RegistryServer::start();
        let host = registry.host();
        let spec = GenSpec {
            images: 2,
            base_layers: 1,
            base_layer_size: 4096,
            own_layer_size: 2048,
            seed: 23,
            source_prefix: "example.com/kantup".into(),
        };
        let inputs = generate_bundle_inputs(&dir.path().join("inputs"), &spec).expect("gen");
        let platforms = make_two_platform_index(&inputs.layout, &inputs.images[1].reference);

        let single_ref = inputs.images[0].reference.clone();
        let index_ref = inputs.images[1].reference.clone();
        let pushed = |n: usize| format!("{host}/{}", inputs.images[n].repository);
        for (reference, repository, all) in [
            (&single_ref, pushed(0), false),
            (&index_ref, pushed(1), true),
        ] {
            let mut args = vec!["copy", "--preserve-digests", "--dest-tls-verify=false"];
            if all {
                args.push("--all");
            }
            let src = format!("oci:{}:{reference}", inputs.layout.display());
            let dest = format!("docker://{repository}:{}", inputs.images[0].tag);
            args.extend([src.as_str(), dest.as_str()]);
            crate::tools::skopeo(&args);
        }
        let single = SignedImage {
            digest: manifest_digest_in(&inputs.layout, &single_ref),
            reference: single_ref,
            pushed_repository: pushed(0),
            platforms: Vec::new(),
        };
        let index = SignedImage {
            digest: manifest_digest_in(&inputs.layout, &index_ref),
            reference: index_ref,
            pushed_repository: pushed(1),
            platforms,
        };

        let home = dir.path().join("cosign");
        std::fs::create_dir_all(&home).unwrap();
        let cosign = Cosign { home: home.clone() };
        cosign.ok(&["generate-key-pair"]);
        cosign.ok(&["generate-key-pair", "--output-key-prefix", "other"]);
        std::fs::write(home.join("trusted-root.json"), TRUSTED_ROOT).unwrap();
        std::fs::write(home.join("signing-config.json"), SIGNING_CONFIG).unwrap();
        std::fs::write(home.join("spdx.json"), SPDX_SBOM).unwrap();
        std::fs::write(home.join("cyclonedx.json"), CYCLONEDX_SBOM).unwrap();

        let single_at = single.pushed_by_digest();
        cosign.sign(&single_at, &CLASSIC, false);
        cosign.sign(&single_at, &BUNDLE_FORMAT, false);
        cosign.attest(&single_at, &CLASSIC, "spdxjson", "spdx.json");
        cosign.attest(&single_at, &CLASSIC, "cyclonedx", "cyclonedx.json");
        cosign.attest(&single_at, &BUNDLE_FORMAT, "spdxjson", "spdx.json");
        cosign.ok(&[
            "attach",
            "sbom",
            "--sbom",
            "spdx.json",
            "--type",
            "spdx",
            "--allow-http-registry",
            &single_at,
        ]);
        let index_at = index.pushed_by_digest();
        cosign.sign(&index_at, &CLASSIC, true);
        cosign.sign(&index_at, &BUNDLE_FORMAT, true);
        for p in &index.platforms {
            let at = format!("{}@{}", index.pushed_repository, p.digest);
            cosign.attest(&at, &CLASSIC, "spdxjson", "spdx.json");
        }

        let mut cosign_saved = Vec::new();
        for (n, image) in [&single, &index].into_iter().enumerate() {
            let out = dir.path().join(format!("cosign-save-{n}"));
            cosign.ok(&[
                "save",
                "--allow-http-registry",
                "--dir",
                out.to_str().unwrap(),
                &image.pushed_by_digest(),
            ]);
            cosign_saved.push((image.reference.clone(), out));
        }

        // The combined layout: the generated one plus what the registry holds.
        let layout = dir.path().join("layout");
        copy_dir(&inputs.layout, &layout);
        let mut attachments = Vec::new();
        let mut fetcher = Fetcher {
            host: host.clone(),
            layout: layout.clone(),
            entries: Vec::new(),
        };
        for image in [&single, &index] {
            let (registry_repo, name_repo) = (
                image
                    .pushed_repository
                    .strip_prefix(&format!("{host}/"))
                    .unwrap()
                    .to_string(),
                image.reference.rsplit_once(':').unwrap().0.to_string(),
            );
            let tags = fetcher.tags(&registry_repo);
            let mut subjects = vec![image.digest.clone()];
            subjects.extend(image.platforms.iter().map(|p| p.digest.clone()));
            for subject in &subjects {
                for (suffix, kind) in [
                    ("sig", FixtureKind::Signature),
                    ("att", FixtureKind::Attestation),
                    ("sbom", FixtureKind::Sbom),
                ] {
                    let tag = format!("{}.{suffix}", fallback_tag(subject));
                    if !tags.contains(&tag) {
                        continue;
                    }
                    let (digest, manifest) = fetcher.copy(&registry_repo, &tag);
                    fetcher.name(&manifest, &digest, &format!("{name_repo}:{tag}"));
                    let detail = manifest["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|l| l["annotations"]["predicateType"].as_str())
                        .map(str::to_string)
                        .collect();
                    attachments.push(FixtureAttachment {
                        kind,
                        subject: subject.clone(),
                        digest,
                        tag,
                        detail,
                    });
                }
                let tag = fallback_tag(subject);
                if tags.contains(&tag) {
                    let (digest, referrers) = fetcher.copy(&registry_repo, &tag);
                    fetcher.name(&referrers, &digest, &format!("{name_repo}:{tag}"));
                    for r in referrers["manifests"].as_array().into_iter().flatten() {
                        attachments.push(FixtureAttachment {
                            kind: FixtureKind::Referrer,
                            subject: subject.clone(),
                            digest: r["digest"].as_str().unwrap().to_string(),
                            tag: tag.clone(),
                            detail: r["artifactType"]
                                .as_str()
                                .map(str::to_string)
                                .into_iter()
                                .collect(),
                        });
                    }
                }
            }
        }
        fetcher.write_index();
        attachments
            .sort_by(|a, b| (&a.subject, a.kind, &a.digest).cmp(&(&b.subject, b.kind, &b.digest)));

        SignedImages {
            private_key: home.join("cosign.key"),
            public_key: home.join("cosign.pub"),
            other_public_key: home.join("other.pub"),
            trusted_root: home.join("trusted-root.json"),
            registry,
            dir,
            inputs,
            single,
            index,
            layout,
            cosign_saved,
            attachments,
        }
    }

    /// The fixture's scratch directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the real cosign with the fixture's home (keys, trusted root and signing config
    /// are in its working directory), no password and no docker credentials.
    pub fn cosign(&self, args: &[&str]) -> Output {
        Cosign {
            home: self.dir.path().join("cosign"),
        }
        .run(args)
    }

    /// The attachments whose subject is `digest`.
    pub fn attachments_of(&self, digest: &str) -> Vec<&FixtureAttachment> {
        self.attachments
            .iter()
            .filter(|a| a.subject == digest)
            .collect()
    }
}

struct Cosign {
    home: PathBuf,
}

impl Cosign {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(cosign_binary())
            .args(args)
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("TUF_ROOT", self.home.join("tuf"))
            .env("COSIGN_PASSWORD", "")
            .env("DOCKER_CONFIG", self.home.join("docker"))
            .output()
            .expect("run cosign")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "cosign {args:?}: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn sign(&self, at: &str, format: &[&str], recursive: bool) {
        let mut args = vec![
            "sign",
            "--key",
            "cosign.key",
            "--yes",
            "--allow-http-registry",
        ];
        if recursive {
            args.push("--recursive");
        }
        args.extend(format);
        args.push(at);
        self.ok(&args);
    }

    fn attest(&self, at: &str, format: &[&str], kind: &str, predicate: &str) {
        let mut args = vec![
            "attest",
            "--key",
            "cosign.key",
            "--yes",
            "--allow-http-registry",
            "--type",
            kind,
            "--predicate",
            predicate,
        ];
        args.extend(format);
        args.push(at);
        self.ok(&args);
    }
}

/// Copies manifests and blobs from the registry into an OCI layout, byte for byte.
struct Fetcher {
    host: String,
    layout: PathBuf,
    /// index.json entries to add.
    entries: Vec<Value>,
}

impl Fetcher {
    fn get(&self, path: &str, accept: &str) -> Vec<u8> {
        let url = format!("http://{}/v2/{path}", self.host);
        let out = Command::new(require_tool("curl"))
            .args(["-sSf", "-H", &format!("Accept: {accept}"), &url])
            .output()
            .expect("run curl");
        assert!(out.status.success(), "GET {url}: {}", text(&out));
        out.stdout
    }

    fn tags(&self, repo: &str) -> BTreeSet<String> {
        let list: Value =
            serde_json::from_slice(&self.get(&format!("{repo}/tags/list"), "*/*")).unwrap();
        list["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    fn put(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        std::fs::write(
            self.layout.join("blobs/sha256").join(hex_of(&digest)),
            bytes,
        )
        .unwrap();
        digest
    }

    /// Copies the manifest at `reference` (and its config, layers and children) into the
    /// layout; returns its digest and parsed body.
    fn copy(&mut self, repo: &str, reference: &str) -> (String, Value) {
        let bytes = self.get(
            &format!("{repo}/manifests/{reference}"),
            &format!("{OCI_MANIFEST}, {OCI_INDEX}"),
        );
        let digest = self.put(&bytes);
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            self.copy(repo, child["digest"].as_str().unwrap());
        }
        let blobs = manifest["config"]
            .as_object()
            .into_iter()
            .map(|c| c["digest"].as_str().unwrap().to_string())
            .chain(
                manifest["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| l["digest"].as_str().unwrap().to_string()),
            )
            .collect::<Vec<_>>();
        for blob in blobs {
            let bytes = self.get(&format!("{repo}/blobs/{blob}"), "*/*");
            assert_eq!(sha256(&bytes), blob, "{repo} blob");
            self.put(&bytes);
        }
        (digest, manifest)
    }

    fn name(&mut self, manifest: &Value, digest: &str, name: &str) {
        let size = std::fs::metadata(self.layout.join("blobs/sha256").join(hex_of(digest)))
            .unwrap()
            .len();
        self.entries.push(serde_json::json!({
            "mediaType": manifest["mediaType"].as_str().unwrap_or(OCI_MANIFEST),
            "digest": digest,
            "size": size,
            "annotations": {REF_NAME: name},
        }));
    }

    fn write_index(&self) {
        let path = self.layout.join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("index.json");
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .extend(self.entries.iter().cloned());
        std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The digest of the manifest `index.json` names `reference`.
fn manifest_digest_in(layout: &Path, reference: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == reference)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("{reference} not in {}", layout.display()))
        .to_string()
}

/// Turns the generated image named `reference` into a two-platform index: its manifest as
/// linux/amd64 and a linux/arm64 sibling (the same layers, a config saying arm64); the index
/// takes the name. Returns the platform manifests.
fn make_two_platform_index(layout: &Path, reference: &str) -> Vec<PlatformManifest> {
    let blobs = layout.join("blobs/sha256");
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(hex_of(&digest)), bytes).unwrap();
        digest
    };
    let read = |digest: &str| std::fs::read(blobs.join(hex_of(digest))).unwrap();
    let amd64 = manifest_digest_in(layout, reference);
    let amd64_bytes = read(&amd64);
    let mut manifest: Value = serde_json::from_slice(&amd64_bytes).unwrap();
    let mut config: Value =
        serde_json::from_slice(&read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    config["architecture"] = "arm64".into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = put(&config_bytes).into();
    manifest["config"]["size"] = config_bytes.len().into();
    let arm64_bytes = serde_json::to_vec(&manifest).unwrap();
    let arm64 = put(&arm64_bytes);
    let index_bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64, "size": amd64_bytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64, "size": arm64_bytes.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let index_digest = put(&index_bytes);
    let path = layout.join("index.json");
    let mut top: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for entry in top["manifests"].as_array_mut().unwrap() {
        if entry["annotations"][REF_NAME] == reference {
            entry["mediaType"] = OCI_INDEX.into();
            entry["digest"] = index_digest.clone().into();
            entry["size"] = index_bytes.len().into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&top).unwrap()).unwrap();
    vec![
        PlatformManifest {
            platform: "linux/amd64".into(),
            digest: amd64,
        },
        PlatformManifest {
            platform: "linux/arm64".into(),
            digest: arm64,
        },
    ]
}
