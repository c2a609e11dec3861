//! Push one image of a bundle to a registry.
//!
//! ```text
//! cargo run -p kantup-examples --example push_image -- BUNDLE REGISTRY [IMAGE] [REPOSITORY_PREFIX]
//! cargo run -p kantup-examples --example push_image -- \
//!     examples/bundles/testchart.bundle.tar 127.0.0.1:5000 busybox:1.33.1 kant
//! ```
//!
//! IMAGE picks the image by (part of) its name; the first image when omitted. The image lands
//! at `REGISTRY/REPOSITORY_PREFIX/<last path segment>:<tag>`. Credentials come from
//! `TARGET_CONTAINERS_AUTH_USERNAME`/`_PASSWORD` or the docker config (kantup's one resolver);
//! `KANTUP_CA_FILE` names a CA to trust. HTTPS is tried first; a loopback or private address
//! without TLS falls back to plain HTTP with a warning.

use std::sync::Arc;

use anyhow::{Context, bail};
use kantup_bundle::Bundle;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::credentials::{CredentialResolver, EnvPair};
use kantup_registry::net::HttpOptions;
use kantup_registry::{ClientOptions, PushOptions, RegistryClient, RelocationRule, push_images};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(bundle_path), Some(registry)) = (args.first(), args.get(1)) else {
        bail!("usage: push_image BUNDLE REGISTRY [IMAGE] [REPOSITORY_PREFIX]");
    };
    let wanted = args.get(2).map(String::as_str).unwrap_or("");
    let prefix = args.get(3).cloned().unwrap_or_default();

    let bundle = Bundle::open(bundle_path)?;
    let archive = bundle
        .image_archive()?
        .with_context(|| format!("{bundle_path} has no images"))?;
    let rule = RelocationRule::new(registry.as_str(), prefix);
    let all = plan_archive(Arc::new(archive), &rule)?;
    let push = all
        .into_iter()
        .find(|p| p.source_name.contains(wanted))
        .with_context(|| format!("no image matching {wanted:?} in {bundle_path}"))?;

    let credentials = CredentialResolver::new()
        .env(EnvPair::TARGET_CONTAINERS)
        .docker_config()
        .resolve(registry)?;
    let http = HttpOptions::with_tls(
        std::env::var_os("KANTUP_CA_FILE").map(Into::into),
        false,
        false,
    );
    let client = RegistryClient::new(
        registry,
        ClientOptions {
            http,
            credentials,
            ..ClientOptions::default()
        },
    )?;
    let target = push.target_name(client.host());
    let report = push_images(&client, &[push], &PushOptions::default(), None).await;
    let image = &report.images[0];
    if let Some(e) = &image.error {
        bail!("{} -> {target}: {e}", image.source);
    }
    println!(
        "{} -> {target} ({}), {} blobs uploaded ({} bytes), {} already there",
        image.source,
        image.action,
        report.blobs.uploaded,
        report.blobs.bytes_uploaded,
        report.blobs.skipped
    );
    Ok(())
}
