//! Are the chart's images in the registry, before anything changes? The rendered manifest
//! (`helm template` with the values the upgrade will use) names every container image of every
//! workload; each image's registry is asked for its manifest (a HEAD through kantup-registry,
//! with the credentials, CA, TLS and plain-HTTP rules of `sync`). An image that came from the
//! bundle must be there at the bundle's digest.

use std::collections::BTreeMap;

use kantup_bundle::Digest;
use kantup_bundle::reference::Reference;
use kantup_registry::credentials::CredentialResolver;
use kantup_registry::{ClientOptions, HttpOptions, RegistryClient, RegistryError};
use serde::Serialize;
use serde_json::Value;

/// One image of the manifest and the workloads that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// The image as the manifest writes it.
    pub image: String,
    /// `Deployment/web`, ... (sorted, each once).
    pub workloads: Vec<String>,
}

/// Where a workload kind keeps its pod spec.
fn pod_spec(object: &Value) -> Option<&Value> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    match kind {
        "Pod" => object.get("spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => object.pointer("/spec/template/spec"),
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every container image (containers, init and ephemeral containers) of every workload of a
/// multi-document manifest, in first-seen order.
///
/// ```
/// let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n\
///     spec: {template: {spec: {initContainers: [{name: i, image: reg/init:1}],\n\
///                             containers: [{name: c, image: reg/web:1}]}}}\n";
/// let images = kantup::ops::image_check::images_of_manifest(manifest).unwrap();
/// assert_eq!(images[0].image, "reg/init:1");
/// assert_eq!(images[1].workloads, ["Deployment/web"]);
/// ```
pub fn images_of_manifest(manifest: &str) -> Result<Vec<ImageUse>, serde_yaml::Error> {
    use serde::Deserialize;
    let mut order: Vec<String> = Vec::new();
    let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for document in serde_yaml::Deserializer::from_str(manifest) {
        let value = serde_yaml::Value::deserialize(document)?;
        let Ok(object) = serde_json::to_value(&value) else {
            continue;
        };
        let Some(spec) = pod_spec(&object) else {
            continue;
        };
        let workload = format!(
            "{}/{}",
            object["kind"].as_str().unwrap_or_default(),
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            for container in spec
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(image) = container.get("image").and_then(Value::as_str) else {
                    continue;
                };
                let users = uses.entry(image.to_string()).or_default();
                if users.is_empty() {
                    order.push(image.to_string());
                }
                if !users.contains(&workload) {
                    users.push(workload.clone());
                    users.sort();
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|image| ImageUse {
            workloads: uses.remove(&image).unwrap_or_default(),
            image,
        })
        .collect())
}

/// What the registry said about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ImageAnswer {
    /// There, at this digest (when the registry named one).
    Present {
        /// The manifest digest.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// Not there (404).
    Missing,
    /// There, but not at the digest the bundle holds for it.
    DigestDiffers {
        /// The bundle's digest.
        expected: String,
        /// The registry's.
        found: String,
    },
    /// The registry refused to say (401/403): credentials are missing or not allowed to read.
    Denied {
        /// What the registry said.
        reason: String,
    },
    /// The registry could not be asked (unreachable, TLS, a bad answer, a bad reference).
    Error {
        /// What went wrong.
        reason: String,
    },
}

/// One image's check.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCheck {
    /// The image and its workloads.
    #[serde(flatten)]
    pub image: ImageUse,
    /// Its registry host.
    pub registry: String,
    /// The answer.
    #[serde(flatten)]
    pub answer: ImageAnswer,
}

impl ImageCheck {
    /// Whether the image is there as it should be.
    pub fn passed(&self) -> bool {
        matches!(self.answer, ImageAnswer::Present { .. })
    }
}

impl std::fmt::Display for ImageCheck {
    /// `image 10.16.10.111/kant/cloudcore:v0.5.0 (registry 10.16.10.111, used by
    /// Deployment/cloudcore): missing`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "image {} (registry {}, used by {}): ",
            self.image.image,
            self.registry,
            self.image.workloads.join(", ")
        )?;
        match &self.answer {
            ImageAnswer::Present { .. } => f.write_str("present"),
            ImageAnswer::Missing => f.write_str("missing"),
            ImageAnswer::DigestDiffers { expected, found } => {
                write!(f, "at digest {found}, but the bundle has {expected}")
            }
            ImageAnswer::Denied { reason } => write!(f, "access denied: {reason}"),
            ImageAnswer::Error { reason } => write!(f, "cannot check: {reason}"),
        }
    }
}

/// How to reach the registries (the rules of `sync`), and the images the bundle holds.
#[derive(Clone)]
pub struct ImageCheckOptions {
    /// TLS trust, plain HTTP, proxy, timeouts.
    pub http: HttpOptions,
    /// Credentials by registry host.
    pub credentials: CredentialResolver,
    /// The bundle's images (each name it gives them) and their manifest digests; empty for a
    /// chart without a bundle.
    pub bundle_images: Vec<(Reference, Digest)>,
}

impl Default for ImageCheckOptions {
    /// `sync`'s credentials: charts-syncer's `TARGET_CONTAINERS_AUTH_*`, then docker's
    /// `config.json`; default TLS.
    fn default() -> Self {
        Self {
            http: HttpOptions::default(),
            credentials: CredentialResolver::new()
                .env(kantup_registry::credentials::EnvPair::TARGET_CONTAINERS)
                .docker_config(),
            bundle_images: Vec::new(),
        }
    }
}

/// The images of the bundle at `path` and their manifest digests (none when it has no image
/// archive).
pub fn bundle_images(
    path: &std::path::Path,
) -> Result<Vec<(Reference, Digest)>, kantup_bundle::BundleError> {
    let bundle = kantup_bundle::Bundle::open(path)?;
    let Some(archive) = bundle.image_archive()? else {
        return Ok(Vec::new());
    };
    Ok(archive
        .images()
        .iter()
        .flat_map(|image| {
            image
                .references
                .iter()
                .filter_map(|name| name.reference().cloned())
                .map(|reference| (reference, image.manifest_digest))
        })
        .collect())
}

/// The digest the bundle holds for `image`, when it holds exactly one: a bundle image with the
/// same tag whose repository path is the image's, or a suffix of it after relocation
/// (`docker.io/kant/cloudcore:v0.5.0` for `10.16.10.111/kant/cloudcore:v0.5.0`, or under a
/// prefix such as `10.16.10.111/mirror/kant/cloudcore:v0.5.0`). The registry is not compared:
/// relocation changes it.
///
/// ```
/// use kantup::ops::image_check::bundle_digest;
/// let digest: kantup_bundle::Digest =
///     "sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap();
/// let bundle = vec![("docker.io/kant/cloudcore:v0.5.0".parse().unwrap(), digest)];
/// let relocated = "10.16.10.111/kant/cloudcore:v0.5.0".parse().unwrap();
/// assert_eq!(bundle_digest(&relocated, &bundle), Some(&digest));
/// let other_tag = "10.16.10.111/kant/cloudcore:v0.6.0".parse().unwrap();
/// assert_eq!(bundle_digest(&other_tag, &bundle), None);
/// ```
pub fn bundle_digest<'a>(
    image: &Reference,
    bundle: &'a [(Reference, Digest)],
) -> Option<&'a Digest> {
    let suffix_of = |long: &str, short: &str| long == short || long.ends_with(&format!("/{short}"));
    let mut found: Option<&Digest> = None;
    for (reference, digest) in bundle {
        let same_tag = reference.tag.is_some() && reference.tag == image.tag;
        let same_path = suffix_of(&image.repository, &reference.repository)
            || suffix_of(&reference.repository, &image.repository);
        if same_tag && same_path {
            match found {
                // Several images under one name (platforms): no single digest to expect.
                Some(other) if other != digest => return None,
                _ => found = Some(digest),
            }
        }
    }
    found
}

/// Asks each image's registry for its manifest (HEAD); one registry client per host.
pub async fn check_images(images: Vec<ImageUse>, options: &ImageCheckOptions) -> Vec<ImageCheck> {
    let mut clients: BTreeMap<String, Result<RegistryClient, String>> = BTreeMap::new();
    let mut checks = Vec::with_capacity(images.len());
    for image in images {
        let reference: Reference = match image.image.parse() {
            Ok(reference) => reference,
            Err(e) => {
                checks.push(ImageCheck {
                    registry: String::new(),
                    answer: ImageAnswer::Error {
                        reason: format!("{e}"),
                    },
                    image,
                });
                continue;
            }
        };
        let client = clients
            .entry(reference.registry.clone())
            .or_insert_with(|| {
                let credentials = options
                    .credentials
                    .resolve(&reference.registry)
                    .map_err(|e| e.to_string())?;
                RegistryClient::new(
                    &reference.registry,
                    ClientOptions {
                        http: options.http.clone(),
                        credentials,
                        ..ClientOptions::default()
                    },
                )
                .map_err(|e| e.to_string())
            });
        let answer = match client {
            Err(reason) => ImageAnswer::Error {
                reason: reason.clone(),
            },
            Ok(client) => ask(client, &reference, &options.bundle_images).await,
        };
        checks.push(ImageCheck {
            registry: reference.registry.clone(),
            answer,
            image,
        });
    }
    checks
}

async fn ask(
    client: &RegistryClient,
    reference: &Reference,
    bundle: &[(Reference, Digest)],
) -> ImageAnswer {
    let wanted = reference
        .digest
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    match client.head_manifest(&reference.repository, &wanted).await {
        Ok(None) => ImageAnswer::Missing,
        Ok(Some(info)) => match (bundle_digest(reference, bundle), info.digest) {
            (Some(expected), Some(found)) if *expected != found => ImageAnswer::DigestDiffers {
                expected: expected.to_string(),
                found: found.to_string(),
            },
            (_, digest) => ImageAnswer::Present {
                digest: digest.map(|d| d.to_string()),
            },
        },
        Err(RegistryError::Unauthorized { reason, .. }) => ImageAnswer::Denied { reason },
        Err(RegistryError::Status {
            status: status @ (401 | 403),
            ..
        }) => ImageAnswer::Denied {
            reason: format!("HTTP {status}"),
        },
        Err(e) => ImageAnswer::Error {
            reason: e.to_string(),
        },
    }
}

/// Why the images could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ImageCheckError {
    /// `helm template` failed.
    #[error("rendering the chart to find its images: {0}")]
    Render(#[from] crate::ops::helm::HelmError),
    /// The rendered manifest is not YAML.
    #[error("reading the rendered manifest: {0}")]
    Manifest(#[from] serde_yaml::Error),
    /// The values could not be written for helm.
    #[error("writing the values for helm template: {0}")]
    Io(#[from] std::io::Error),
    /// The bundle's image archive could not be read.
    #[error("reading the bundle's images: {0}")]
    Bundle(#[from] kantup_bundle::BundleError),
}

/// Renders the upgrade's chart with the values it will use (`helm template`), then checks every
/// image of its workloads. Changes nothing.
pub async fn check_upgrade(
    prepared: &crate::ops::upgrade::PreparedUpgrade,
    options: &ImageCheckOptions,
) -> Result<Vec<ImageCheck>, ImageCheckError> {
    let (helm, chart, values_yaml) = prepared.render_inputs();
    let plan = prepared.plan();
    let scratch = tempfile::tempdir()?;
    let values = scratch.path().join("values.yaml");
    kantup_bundle::atomic::write_with(
        &values,
        values_yaml.as_bytes(),
        kantup_bundle::atomic::Access::Private,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let manifest = helm.run(&helm.command(vec![
        "template".to_string(),
        plan.release.name.clone(),
        chart.display().to_string(),
        "--namespace".to_string(),
        plan.release.namespace.clone(),
        "--values".to_string(),
        values.display().to_string(),
    ]))?;
    let mut options = options.clone();
    if plan.source_kind == "bundle" && options.bundle_images.is_empty() {
        options.bundle_images = bundle_images(std::path::Path::new(&plan.source))?;
    }
    Ok(check_images(images_of_manifest(&manifest)?, &options).await)
}
