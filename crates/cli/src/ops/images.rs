//! Which images a bundle's chart needs when it has no relok8s hints, and relocating its values
//! without them.
//!
//! [`discover`] takes `hints.yaml`, then the chart's `.relok8s-images.yaml`, then
//! `Images.lock`, then the `Chart.yaml` annotations
//! (kantup-bundle's [`discovery`](kantup_bundle::discovery)), and as a last resort, only when
//! the caller names a helm binary, the chart rendered by `helm template` with its default
//! values (every `image:` of the manifests). [`relocate_values`] rewrites the chart's values
//! through the hints, or, without hints, wherever the values name one of the images
//! ([`find_value_images`]), with the one relocation rule; images no value names are reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_bundle::Bundle;
use kantup_bundle::Digest;
use kantup_bundle::chart::Chart;
use kantup_bundle::discovery::{Discovery, ImageSource, from_rendered};
use kantup_bundle::image_check::{ImageCheck, check_images};
use kantup_bundle::reference::Reference;
use kantup_helm_values::relocate::{
    RelocationReport, RelocationRule, find_value_images, relocate_chart,
};
use serde::Serialize;

/// Why images could not be listed or values relocated.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The bundle or chart could not be read.
    #[error(transparent)]
    Bundle(#[from] kantup_bundle::BundleError),
    /// `helm template` could not run or failed.
    #[error("`{command}` failed: {reason}")]
    Render {
        /// The command line.
        command: String,
        /// Its stderr, or why it could not start.
        reason: String,
    },
    /// The rendered manifests are not YAML.
    #[error(transparent)]
    Discovery(#[from] kantup_bundle::discovery::DiscoveryError),
    /// Values could not be relocated.
    #[error("relocating the image values of {chart}: {source}")]
    Relocate {
        /// The chart.
        chart: String,
        /// Why.
        #[source]
        source: kantup_helm_values::Error,
    },
    /// A scratch directory could not be made.
    #[error("{}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The images `bundle`'s chart needs and where the list came from; `helm` (a real helm
/// binary) renders the chart when nothing else lists them.
pub fn discover(bundle: &Bundle, helm: Option<&Path>) -> Result<Discovery, ImagesError> {
    let found = bundle.discover_images()?;
    if found.source != ImageSource::None {
        return Ok(found);
    }
    let Some(helm) = helm else {
        return Ok(found);
    };
    let chart = bundle.chart()?;
    Ok(Discovery {
        source: ImageSource::RenderedManifests,
        images: from_rendered(&chart, &render(&chart, helm)?)?,
    })
}

/// Refuses `bundle` when it lacks an image its chart needs ([`discover`], so `helm` renders a
/// chart nothing else lists the images of), unless `allow_missing`, or when its image archive
/// names an image invalidly: one error naming every such image. Allowed missing images are
/// warned about.
pub fn require_images(
    bundle: &Bundle,
    helm: Option<&Path>,
    allow_missing: bool,
) -> Result<ImageCheck, ImagesError> {
    let needed = discover(bundle, helm)?;
    let check = check_images(bundle.image_archive()?.as_ref(), &needed);
    check.require(&bundle.path().display().to_string(), allow_missing)?;
    for image in &check.missing {
        tracing::warn!(
            "{}: the chart needs {image}, which is not in the bundle (--allow-missing-images)",
            bundle.path().display()
        );
    }
    Ok(check)
}

/// `helm template` of `chart` with its default values: the manifests' text.
pub fn render(chart: &Chart, helm: &Path) -> Result<String, ImagesError> {
    let scratch = tempfile::tempdir().map_err(|source| ImagesError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = scratch.path().join(chart.name());
    chart.write_dir(&dir)?;
    let command = format!(
        "{} template kantup-discovery {}",
        helm.display(),
        dir.display()
    );
    let output = Command::new(helm)
        .args(["template", "kantup-discovery"])
        .arg(&dir)
        .output()
        .map_err(|e| ImagesError::Render {
            command: command.clone(),
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(ImagesError::Render {
            command,
            reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What [`relocate_values`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValuesRelocation {
    /// Where the image list came from.
    pub source: Option<ImageSource>,
    /// Images and edited values.
    pub report: RelocationReport,
    /// Images no value names (they keep their original registry).
    pub unmapped: Vec<String>,
}

/// Rewrites the image values of `chart` (in memory) by `rule`: through the bundle's hints
/// when it has any, else wherever its values name one of the images [`discover`] lists.
/// Hints without a tag are pinned to `digests` (original reference -> manifest digest); values
/// found without hints keep their tags.
pub fn relocate_values(
    bundle: &Bundle,
    chart: &mut Chart,
    rule: &RelocationRule,
    digests: &HashMap<Reference, Digest>,
    helm: Option<&Path>,
) -> Result<ValuesRelocation, ImagesError> {
    let relocate_error = |chart: &Chart, source| ImagesError::Relocate {
        chart: chart.name().to_string(),
        source,
    };
    // The bundle's hints, else the chart's own hints file: both are relok8s patterns.
    let (hints, hints_source) = match bundle.hints()? {
        hints if !hints.is_empty() => (hints, ImageSource::Hints),
        _ => (
            kantup_bundle::discovery::chart_hints(chart)?.unwrap_or_default(),
            ImageSource::ChartHints,
        ),
    };
    // Without hints every pattern comes from a value that names its tag (or is a whole
    // reference with one): the tag is kept, nothing is pinned.
    let no_digests = HashMap::new();
    let (patterns, source, unmapped, digests) = if hints.is_empty() {
        let found = discover(bundle, helm)?;
        if found.images.is_empty() {
            return Ok(ValuesRelocation {
                source: Some(found.source),
                ..ValuesRelocation::default()
            });
        }
        let images: Vec<Reference> = found.images.iter().map(|i| i.reference.clone()).collect();
        let value_images =
            find_value_images(chart, &images).map_err(|e| relocate_error(chart, e))?;
        (
            value_images.patterns,
            Some(found.source),
            value_images.unmapped,
            &no_digests,
        )
    } else {
        (hints, Some(hints_source), Vec::new(), digests)
    };
    let report =
        relocate_chart(chart, &patterns, rule, digests).map_err(|e| relocate_error(chart, e))?;
    Ok(ValuesRelocation {
        source,
        report,
        unmapped,
    })
}
