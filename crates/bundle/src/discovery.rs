//! Which images a chart needs, without a bundle's `hints.yaml`.
//!
//! Sources, in the order [`discover`] tries them (a bundle's own `hints.yaml` comes before all
//! of them, see [`crate::Bundle::discover_images`]):
//!
//! 1. the chart's own relok8s hints file, `.relok8s-images.yaml` beside `Chart.yaml` (where
//!    relok8s itself looks), rendered against the chart's default values;
//! 2. `Images.lock` beside `Chart.yaml` (Bitnami's distribution tooling): every image with its
//!    per-platform digests;
//! 3. the `Chart.yaml` annotations `images` (the tooling's key) and `artifacthub.io/images`
//!    (Artifact Hub's), in the chart and in every subchart;
//! 4. as a last resort, and only when the caller renders the chart (with the real helm binary),
//!    every `image:` value in the rendered manifests: [`images_in_manifests`].
//!
//! ```
//! use kantup_bundle::discovery::{discover, ImageSource};
//! let files = [
//!     ("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\nannotations:\n  images: |\n    - name: nginx\n      image: docker.io/bitnami/nginx:1.25.3\n"),
//!     ("values.yaml", "image: {registry: docker.io, repository: bitnami/nginx, tag: 1.25.3}\n"),
//! ];
//! let files = files.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect();
//! let chart = kantup_bundle::chart::Chart::from_files("web", files).unwrap();
//! let found = discover(&chart).unwrap();
//! assert_eq!(found.source, ImageSource::Annotations);
//! assert_eq!(found.images[0].reference.to_string(), "docker.io/bitnami/nginx:1.25.3");
//! ```

use serde::Serialize;

use crate::chart::Chart;
pub use crate::error::DiscoveryError;
use crate::hints::{ImagePattern, parse_hints};
pub use crate::image_source::ImageSource;
use crate::images_lock::{IMAGES_LOCK_FILE, ImagesLock, ImagesLockError, LockedDigest};
use crate::reference::Reference;

/// The chart's own relok8s hints file, beside `Chart.yaml`.
pub const CHART_HINTS_FILE: &str = ".relok8s-images.yaml";

/// The `Chart.yaml` annotation keys that list images, in the order they are read.
pub const ANNOTATION_KEYS: [&str; 2] = ["images", "artifacthub.io/images"];

/// One image a chart needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredImage {
    /// Short name (`nginx`); the repository's last segment when the source has none.
    pub name: String,
    /// The reference, normalized.
    #[serde(serialize_with = "crate::discovery::ser_display")]
    pub reference: Reference,
    /// The chart or subchart that lists it.
    pub chart: String,
    /// Per-platform digests (from `Images.lock` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<LockedDigest>,
}

pub(crate) fn ser_display<S: serde::Serializer, T: std::fmt::Display>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A chart's images and where the list came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The source used.
    pub source: ImageSource,
    /// The images, duplicates (same reference) removed, in source order.
    pub images: Vec<DiscoveredImage>,
}

/// The images of `chart` from its `.relok8s-images.yaml`, else `Images.lock`, else its
/// annotations (chart and subcharts). [`ImageSource::None`] with no images when none lists
/// any.
pub fn discover(chart: &Chart) -> Result<Discovery, DiscoveryError> {
    if let Some(hints) = chart_hints(chart)?
        && !hints.is_empty()
    {
        let file = format!("{}/{CHART_HINTS_FILE}", chart.name());
        return Ok(Discovery {
            source: ImageSource::ChartHints,
            images: render_hints(chart, &hints, &file)?,
        });
    }
    if let Some(lock) = images_lock(chart)? {
        let images = lock
            .images
            .iter()
            .map(|i| DiscoveredImage {
                name: i.name.clone(),
                reference: i.reference().expect("checked when parsed"),
                chart: i.chart.clone(),
                digests: i.digests.clone(),
            })
            .collect();
        return Ok(Discovery {
            source: ImageSource::ImagesLock,
            images: dedup(images),
        });
    }
    let images = from_annotations(chart)?;
    let source = if images.is_empty() {
        ImageSource::None
    } else {
        ImageSource::Annotations
    };
    Ok(Discovery { source, images })
}

/// The images a bundle's chart needs: by its hints (from `hints_file`) when there are any, else
/// as [`discover`] finds them in the chart.
pub fn needed_images(
    chart: &Chart,
    hints: &[ImagePattern],
    hints_file: &str,
) -> Result<Discovery, DiscoveryError> {
    if hints.is_empty() {
        return discover(chart);
    }
    Ok(Discovery {
        source: ImageSource::Hints,
        images: render_hints(chart, hints, hints_file)?,
    })
}

/// The patterns of the chart's own `.relok8s-images.yaml`, if it has one.
pub fn chart_hints(chart: &Chart) -> Result<Option<Vec<ImagePattern>>, DiscoveryError> {
    let Some(bytes) = chart.files.get(CHART_HINTS_FILE) else {
        return Ok(None);
    };
    let file = format!("{}/{CHART_HINTS_FILE}", chart.name());
    let text = std::str::from_utf8(bytes).map_err(|_| DiscoveryError::HintsFile {
        file: file.clone(),
        source: crate::hints::HintsError::Yaml("not UTF-8".into()),
    })?;
    parse_hints(text)
        .map(Some)
        .map_err(|source| DiscoveryError::HintsFile { file, source })
}

/// The images `hints` (from `file`) name, rendered against the default values of `chart` and
/// its subcharts as relok8s renders them, duplicates removed. A hint that does not render to a
/// valid reference is an error naming every such hint and what it rendered to.
///
/// ```
/// use kantup_bundle::discovery::render_hints;
/// let files = [
///     ("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n"),
///     ("values.yaml", "image: {repository: nginx, tag: 1.25.3}\nbad: {repository: NOT_VALID}\n"),
/// ];
/// let files = files.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect();
/// let chart = kantup_bundle::chart::Chart::from_files("web", files).unwrap();
/// let good = kantup_bundle::hints::parse_hints("- '{{ .image.repository }}:{{ .image.tag }}'").unwrap();
/// let found = render_hints(&chart, &good, "hints.yaml").unwrap();
/// assert_eq!(found[0].reference.to_string(), "docker.io/library/nginx:1.25.3");
/// let bad = kantup_bundle::hints::parse_hints("- '{{ .bad.repository }}'").unwrap();
/// let err = render_hints(&chart, &bad, "hints.yaml").unwrap_err().to_string();
/// assert!(err.contains("renders to \"NOT_VALID\""), "{err}");
/// ```
pub fn render_hints(
    chart: &Chart,
    hints: &[ImagePattern],
    file: &str,
) -> Result<Vec<DiscoveredImage>, DiscoveryError> {
    let values = chart.all_default_values();
    let mut images = Vec::new();
    let mut problems = Vec::new();
    for hint in hints {
        let text = match hint.render(&values) {
            Ok(text) => text,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        match text.parse::<Reference>() {
            Ok(reference) => images.push(DiscoveredImage {
                name: last_segment(&reference.repository).to_string(),
                reference,
                chart: chart.name().to_string(),
                digests: Vec::new(),
            }),
            Err(e) => problems.push(format!(
                "hint {:?} renders to {text:?}: {}",
                hint.template, e.reason
            )),
        }
    }
    if !problems.is_empty() {
        return Err(DiscoveryError::BadHints {
            file: file.to_string(),
            problems,
        });
    }
    Ok(dedup(images))
}

/// The chart's `Images.lock`, if it has one.
pub fn images_lock(chart: &Chart) -> Result<Option<ImagesLock>, DiscoveryError> {
    let Some(bytes) = chart.files.get(IMAGES_LOCK_FILE) else {
        return Ok(None);
    };
    let path = format!("{}/{IMAGES_LOCK_FILE}", chart.name());
    let text = std::str::from_utf8(bytes).map_err(|_| ImagesLockError::Invalid {
        path: path.clone(),
        reason: "not UTF-8".into(),
    })?;
    Ok(Some(ImagesLock::parse(&path, text)?))
}

/// The images the `images` and `artifacthub.io/images` annotations of `chart` and of every
/// subchart list (duplicates removed).
pub fn from_annotations(chart: &Chart) -> Result<Vec<DiscoveredImage>, DiscoveryError> {
    let mut out = Vec::new();
    collect_annotations(chart, &mut out)?;
    Ok(dedup(out))
}

fn collect_annotations(
    chart: &Chart,
    out: &mut Vec<DiscoveredImage>,
) -> Result<(), DiscoveryError> {
    let annotations = chart
        .metadata
        .extra
        .get("annotations")
        .and_then(|a| a.as_mapping());
    for key in ANNOTATION_KEYS {
        let Some(text) = annotations.and_then(|a| a.get(key)) else {
            continue;
        };
        let bad = |reason: String| DiscoveryError::Annotation {
            chart: chart.name().to_string(),
            key: key.to_string(),
            reason,
        };
        let text = text
            .as_str()
            .ok_or_else(|| bad("must be a string holding a YAML list".into()))?;
        let items: Vec<serde_yaml::Value> = match serde_yaml::from_str(text) {
            Ok(serde_yaml::Value::Null) => Vec::new(),
            Ok(serde_yaml::Value::Sequence(items)) => items,
            Ok(_) => return Err(bad("not a YAML list of {name, image}".into())),
            Err(e) => return Err(bad(e.to_string())),
        };
        for (i, item) in items.iter().enumerate() {
            let image = item
                .get("image")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(format!("item {} has no `image` string", i + 1)))?;
            let reference: Reference = image
                .parse()
                .map_err(|e: crate::reference::ReferenceError| bad(e.to_string()))?;
            let name = item
                .get("name")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| last_segment(&reference.repository).to_string());
            out.push(DiscoveredImage {
                name,
                reference,
                chart: chart.name().to_string(),
                digests: Vec::new(),
            });
        }
    }
    for sub in &chart.subcharts {
        collect_annotations(sub, out)?;
    }
    Ok(())
}

/// Every string value under a key named `image` in the YAML documents of `manifests` (what
/// `helm template` prints), parsed, duplicates removed, in order. Values that are not image
/// references are skipped.
///
/// ```
/// let text = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n---\nkind: Pod\nspec: {initContainers: [{image: \"busybox\"}]}\n";
/// let refs = kantup_bundle::discovery::images_in_manifests(text).unwrap();
/// let names: Vec<String> = refs.iter().map(ToString::to_string).collect();
/// assert_eq!(names, ["docker.io/library/nginx:1.25", "docker.io/library/busybox:latest"]);
/// ```
pub fn images_in_manifests(manifests: &str) -> Result<Vec<Reference>, DiscoveryError> {
    use serde::Deserialize;
    let mut out: Vec<Reference> = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(manifests) {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| DiscoveryError::Manifests(e.to_string()))?;
        walk_images(&value, &mut out);
    }
    Ok(out)
}

fn walk_images(value: &serde_yaml::Value, out: &mut Vec<Reference>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                if k.as_str() == Some("image")
                    && let Some(text) = v.as_str()
                    && let Ok(r) = text.trim().parse::<Reference>()
                {
                    if !out.contains(&r) {
                        out.push(r);
                    }
                    continue;
                }
                walk_images(v, out);
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|v| walk_images(v, out)),
        serde_yaml::Value::Tagged(t) => walk_images(&t.value, out),
        _ => {}
    }
}

/// Images from rendered manifests, as [`DiscoveredImage`]s of `chart`.
pub fn from_rendered(
    chart: &Chart,
    manifests: &str,
) -> Result<Vec<DiscoveredImage>, DiscoveryError> {
    Ok(images_in_manifests(manifests)?
        .into_iter()
        .map(|reference| DiscoveredImage {
            name: last_segment(&reference.repository).to_string(),
            reference,
            chart: chart.name().to_string(),
            digests: Vec::new(),
        })
        .collect())
}

fn last_segment(repository: &str) -> &str {
    repository.rsplit('/').next().unwrap_or(repository)
}

fn dedup(images: Vec<DiscoveredImage>) -> Vec<DiscoveredImage> {
    let mut out: Vec<DiscoveredImage> = Vec::new();
    for image in images {
        if !out.iter().any(|i| i.reference == image.reference) {
            out.push(image);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(files: &[(&str, &str)]) -> Chart {
        let files = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect();
        Chart::from_files("test", files).unwrap()
    }

    #[test]
    fn annotations_of_chart_and_subcharts_both_keys() {
        let c = chart(&[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: top\nversion: 1.0.0\nannotations:\n  images: |\n    - name: web\n      image: reg.example/a/web:1\n  artifacthub.io/images: |\n    - name: web\n      image: reg.example/a/web:1\n    - name: side\n      image: quay.io/b/side:2\n      whitelisted: true\n",
            ),
            (
                "charts/db/Chart.yaml",
                "apiVersion: v2\nname: db\nversion: 2.0.0\nannotations:\n  images: |\n    - image: docker.io/bitnami/mariadb:11\n",
            ),
        ]);
        let found = discover(&c).unwrap();
        assert_eq!(found.source, ImageSource::Annotations);
        let got: Vec<(String, String, String)> = found
            .images
            .iter()
            .map(|i| (i.name.clone(), i.reference.to_string(), i.chart.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("web".into(), "reg.example/a/web:1".into(), "top".into()),
                ("side".into(), "quay.io/b/side:2".into(), "top".into()),
                (
                    "mariadb".into(),
                    "docker.io/bitnami/mariadb:11".into(),
                    "db".into()
                ),
            ]
        );
    }

    #[test]
    fn the_lock_wins_over_annotations() {
        let c = chart(&[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: top\nversion: 1.0.0\nannotations:\n  images: |\n    - name: web\n      image: reg.example/a/web:1\n",
            ),
            (
                "Images.lock",
                "apiVersion: v0\nkind: ImagesLock\nchart: {name: top, version: 1.0.0}\nimages:\n- name: web\n  image: reg.example/a/web:1\n  chart: top\n  digests:\n  - {digest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111', arch: linux/amd64}\n",
            ),
        ]);
        let found = discover(&c).unwrap();
        assert_eq!(found.source, ImageSource::ImagesLock);
        assert_eq!(found.images[0].digests.len(), 1);
    }

    #[test]
    fn nothing_listed_is_source_none_and_bad_annotations_name_chart_and_key() {
        let c = chart(&[("Chart.yaml", "apiVersion: v2\nname: top\nversion: 1.0.0\n")]);
        assert_eq!(discover(&c).unwrap().source, ImageSource::None);
        let c = chart(&[(
            "Chart.yaml",
            "apiVersion: v2\nname: top\nversion: 1.0.0\nannotations:\n  images: |\n    - name: web\n",
        )]);
        let err = discover(&c).unwrap_err().to_string();
        assert_eq!(
            err,
            "chart top: Chart.yaml annotation \"images\": item 1 has no `image` string"
        );
    }

    #[test]
    fn the_charts_relok8s_images_file_comes_first_and_names_every_bad_hint() {
        let values = "image: {registry: reg.example, repository: a/web, tag: '1'}\nbad: {repository: 'Not A Ref'}\n";
        let chart_yaml = "apiVersion: v2\nname: top\nversion: 1.0.0\nannotations:\n  images: |\n    - name: other\n      image: reg.example/a/other:2\n";
        let c = chart(&[
            ("Chart.yaml", chart_yaml),
            ("values.yaml", values),
            (
                CHART_HINTS_FILE,
                "- '{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}'\n",
            ),
        ]);
        let found = discover(&c).unwrap();
        assert_eq!(found.source, ImageSource::ChartHints);
        assert_eq!(found.images.len(), 1);
        assert_eq!(found.images[0].reference.to_string(), "reg.example/a/web:1");

        let c = chart(&[
            ("Chart.yaml", chart_yaml),
            ("values.yaml", values),
            (
                CHART_HINTS_FILE,
                "- '{{ .bad.repository }}'\n- '{{ .missing.repository }}'\n- '{{ .image.registry }}/{{ .image.repository }}'\n",
            ),
        ]);
        let err = discover(&c).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "top/.relok8s-images.yaml: 2 hint(s) do not render to a valid image reference: "
            ),
            "{err}"
        );
        assert!(
            err.contains("hint \"{{ .bad.repository }}\" renders to \"Not A Ref\""),
            "{err}"
        );
        assert!(
            err.contains("value .missing.repository is missing"),
            "{err}"
        );
    }

    #[test]
    fn rendered_manifests_skip_non_references() {
        let text = "a:\n  image: {repository: x}\nb:\n  image: \"Not A Ref\"\nc:\n  image: reg.example/x/y:1\n";
        let refs = images_in_manifests(text).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].to_string(), "reg.example/x/y:1");
    }
}
