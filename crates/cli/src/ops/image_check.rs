//! Are the chart's images in the registry, before anything changes? The rendered manifest
//! (`helm template` with the values the upgrade will use) names every container image of every
//! workload; each image's registry is asked for its manifest (a HEAD through kantup-registry,
//! with the credentials, CA, TLS and plain-HTTP rules of `sync`). An image that came from the
//! bundle must be there at the bundle's digest.

use std::collections::BTreeMap;

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
            ImageAnswer::Denied { reason } => write!(f, "access denied: {reason}"),
            ImageAnswer::Error { reason } => write!(f, "cannot check: {reason}"),
        }
    }
}

/// How to reach the registries: the rules of `sync`.
#[derive(Clone)]
pub struct ImageCheckOptions {
    /// TLS trust, plain HTTP, proxy, timeouts.
    pub http: HttpOptions,
    /// Credentials by registry host.
    pub credentials: CredentialResolver,
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
        }
    }
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
            Ok(client) => ask(client, &reference).await,
        };
        checks.push(ImageCheck {
            registry: reference.registry.clone(),
            answer,
            image,
        });
    }
    checks
}

async fn ask(client: &RegistryClient, reference: &Reference) -> ImageAnswer {
    let wanted = reference
        .digest
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    match client.head_manifest(&reference.repository, &wanted).await {
        Ok(None) => ImageAnswer::Missing,
        Ok(Some(info)) => ImageAnswer::Present {
            digest: info.digest.map(|d| d.to_string()),
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
    kantup_k8s_apply::write_private_file(&values, values_yaml.as_bytes())
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
    Ok(check_images(images_of_manifest(&manifest)?, options).await)
}
