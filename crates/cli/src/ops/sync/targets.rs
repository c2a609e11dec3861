//! Where a sync sends things, from the config's `target`: the image target (a registry, with
//! its credentials, or an OCI image layout) and the chart target (OCI, LOCAL, HARBOR,
//! CHARTMUSEUM), each with charts-syncer's credential order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kantup_registry::chart_target::ChartTarget;
use kantup_registry::credentials::{CredentialResolver, EnvPair};
use kantup_registry::location::{OciLocation, url_authority};
use kantup_registry::{ClientOptions, Credentials, RegistryClient, RelocationRule, UploadSessions};

use super::config::{AuthConfig, TargetConfig};
use super::{SyncError, SyncOptions};

/// Where images go.
pub(super) enum ImageTarget {
    /// A registry, and where in it.
    Registry(Arc<RegistryClient>, RelocationRule),
    /// An OCI image layout directory.
    Layout(PathBuf),
}

fn client_options(options: &SyncOptions, credentials: Option<Credentials>) -> ClientOptions {
    ClientOptions {
        http: options.http.clone(),
        credentials,
        upload_sessions: options
            .upload_cache
            .clone()
            .or_else(UploadSessions::default_dir)
            .map(UploadSessions::new),
        ..ClientOptions::default()
    }
}

/// The container registry's credentials: `target.containers.auth` (when its `registry` is
/// empty or this host), then charts-syncer's `TARGET_CONTAINERS_AUTH_*`, then docker's
/// `config.json`.
fn registry_resolver(target: &TargetConfig, host: &str) -> CredentialResolver {
    let from_config = target
        .containers
        .as_ref()
        .and_then(|c| c.auth.as_ref())
        .filter(|a| {
            a.registry
                .as_deref()
                .is_none_or(|r| r.is_empty() || r == host)
        })
        .and_then(AuthConfig::credentials);
    CredentialResolver::new()
        .given_credentials("target.containers.auth", from_config)
        .env(EnvPair::TARGET_CONTAINERS)
        .docker_config()
}

pub(super) fn image_target(
    target: &TargetConfig,
    options: &SyncOptions,
    base: &Path,
) -> Result<ImageTarget, SyncError> {
    if let Some(dir) = &options.to_oci_layout {
        return Ok(ImageTarget::Layout(dir.clone()));
    }
    let registry = target
        .container_registry
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            SyncError::Target(
                "target.containerRegistry is required (a registry host, or oci-layout:/path)"
                    .into(),
            )
        })?;
    if let Some(dir) = registry.strip_prefix("oci-layout:") {
        return Ok(ImageTarget::Layout(base.join(dir)));
    }
    // A host, as the registry location parser reads it (`http://` means plain HTTP); a path
    // is refused by the client, which names it.
    let location = OciLocation::parse(registry).ok_or_else(|| {
        SyncError::Target(format!(
            "target.containerRegistry {registry:?} names no host"
        ))
    })?;
    let host = match location.path.as_str() {
        "" => location.host,
        path => format!("{}/{path}", location.host),
    };
    let credentials = registry_resolver(target, &host).resolve(&host)?;
    let mut client_options = client_options(options, credentials);
    client_options.http.plain_http |= location.plain_http;
    let client = RegistryClient::new(&host, client_options)?;
    Ok(ImageTarget::Registry(
        Arc::new(client),
        RelocationRule::new(host, target.container_repository().to_string()),
    ))
}

pub(super) fn chart_target(
    target: &TargetConfig,
    options: &SyncOptions,
    base: &Path,
    images: &ImageTarget,
) -> Result<Option<ChartTarget>, SyncError> {
    let Some(repo) = &target.repo else {
        return Ok(None);
    };
    // `target.repo.auth`, then charts-syncer's `TARGET_REPO_AUTH_*`.
    let repo_given = repo.auth.as_ref().and_then(AuthConfig::credentials);
    let repo_resolver = CredentialResolver::new()
        .given_credentials("target.repo.auth", repo_given)
        .env(EnvPair::TARGET_REPO);
    let url = repo.url();
    Ok(Some(match repo.kind().as_str() {
        "OCI" => {
            let location = OciLocation::parse(url).ok_or_else(|| {
                SyncError::Target(format!(
                    "target.repo.url {url:?} must name a registry (oci://host/path)"
                ))
            })?;
            let (host, prefix) = (location.host.as_str(), location.path.as_str());
            let repo_credentials = repo_resolver.resolve(host)?;
            // Reuse the image registry's client (and its tokens) when it is the same host.
            if let ImageTarget::Registry(client, _) = images
                && client.host() == host
                && repo_credentials.is_none()
            {
                return Ok(Some(ChartTarget::Oci {
                    client: client.clone(),
                    repository_prefix: prefix.to_string(),
                }));
            }
            let credentials = match repo_credentials {
                Some(c) => Some(c),
                None => registry_resolver(target, host).resolve(host)?,
            };
            let mut client_options = client_options(options, credentials);
            client_options.http.plain_http |= location.plain_http;
            ChartTarget::Oci {
                client: Arc::new(RegistryClient::new(host, client_options)?),
                repository_prefix: prefix.to_string(),
            }
        }
        "LOCAL" => {
            let dir = repo
                .path
                .clone()
                .or_else(|| (!url.is_empty()).then(|| PathBuf::from(url)))
                .ok_or_else(|| {
                    SyncError::Target("target.repo.path is required for kind LOCAL".into())
                })?;
            ChartTarget::Local {
                dir: base.join(dir),
            }
        }
        kind @ ("HARBOR" | "CHARTMUSEUM" | "HELM") => {
            let host = url_authority(url);
            ChartTarget::http_repo(
                kind == "HARBOR",
                url,
                &options.http,
                repo_resolver.resolve(&host)?,
            )?
        }
        other => {
            return Err(SyncError::Target(format!(
                "target.repo.kind {other:?} is not supported (OCI, LOCAL, HARBOR, CHARTMUSEUM)"
            )));
        }
    }))
}
