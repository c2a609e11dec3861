//! `kantup values merge | diff | relocate | backup` as a library: values computed as Helm
//! computes them, two values files compared, a chart directory's image values pointed at
//! another registry through relok8s hints (its values.yaml files edited in place, comments
//! kept), and a release's values read back from the cluster as `helm get values` prints them.
//!
//! ```no_run
//! use kantup::ops::values::{self, RelocateOptions};
//! let report = values::relocate(&RelocateOptions {
//!     registry: Some("reg.local:5000".into()),
//!     ..RelocateOptions::new("charts/kant", "charts/kant/hints.yaml")
//! })?;
//! println!("{} image(s) relocated", report.images.len());
//! # Ok::<(), kantup::ops::values::ValuesOpError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kantup_bundle::atomic::{Access, AtomicDir};
use kantup_helm_values::chart::Chart;
use kantup_helm_values::diff::{Change, diff};
use kantup_helm_values::merge::{ValueOptions, render_owned_values_as};
use kantup_helm_values::relocate::{RelocationReport, RelocationRule, relocate_chart_dir};
use kantup_helm_values::value::Values;
use kantup_helm_values::yaml::parse_values;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::release::{ReleaseStore, StorageDriver};
use serde_json::Value;

use crate::ops::release::ReleaseId;

/// Why values could not be computed, compared or relocated.
#[derive(Debug, thiserror::Error)]
pub enum ValuesOpError {
    /// Neither a registry nor a repository prefix to relocate to.
    #[error("nothing to do: give --registry and/or --repository-prefix")]
    NothingToRelocate,
    /// A file could not be read, or a directory created or copied.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hints file is not a relok8s hints list.
    #[error("parsing hints {}", path.display())]
    Hints {
        /// The hints file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kantup_bundle::hints::HintsError,
    },
    /// A `--digest` is not `IMAGE=sha256:...`.
    #[error("--digest {0:?}: expected IMAGE=sha256:...")]
    DigestSyntax(String),
    /// A `--digest`'s image is not an image reference.
    #[error("--digest {digest:?}")]
    DigestImage {
        /// The `--digest` as given.
        digest: String,
        /// Why the image is not a reference.
        #[source]
        source: kantup_bundle::reference::ReferenceError,
    },
    /// The copy's directory is already there.
    #[error("--out {} already exists", .0.display())]
    OutExists(PathBuf),
    /// Helm's values rules refused the input.
    #[error("{0}")]
    Values(#[from] kantup_helm_values::Error),
    /// The release record could not be read.
    #[error("{0}")]
    Kube(#[from] kantup_k8s_apply::Error),
    /// The backup could not be written.
    #[error(transparent)]
    Write(#[from] kantup_bundle::FileError),
}

/// The values Helm would compute from `options` (`-f` files, then the `--set` family) and,
/// with `chart`, the chart's defaults, subcharts and globals coalesced under them.
pub fn merge(options: &ValueOptions, chart: Option<&Path>) -> Result<Values, ValuesOpError> {
    let user = options.merge_values()?;
    Ok(match chart {
        Some(path) => render_owned_values_as(&Chart::load(path)?, user, options.helm)?,
        None => user,
    })
}

/// What changes from the values file `old` to `new`: added, removed and changed paths.
pub fn diff_files(old: &Path, new: &Path) -> Result<Vec<Change>, ValuesOpError> {
    Ok(diff(&read_values(old)?, &read_values(new)?))
}

fn read_values(path: &Path) -> Result<Value, ValuesOpError> {
    let text = std::fs::read_to_string(path).map_err(|source| ValuesOpError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Value::Object(parse_values(
        &text,
        &path.display().to_string(),
    )?))
}

/// What [`relocate`] rewrites, and to where.
#[derive(Debug, Clone)]
pub struct RelocateOptions {
    /// The chart directory.
    pub chart: PathBuf,
    /// The relok8s hints file.
    pub hints: PathBuf,
    /// The new registry host (with port).
    pub registry: Option<String>,
    /// The new repository prefix: each repository becomes PREFIX/<its last segment>.
    pub repository_prefix: Option<String>,
    /// Write the relocated chart here (a copy, which must not exist) instead of editing
    /// `chart` in place. The copy is relocated in a staging directory beside it and renamed
    /// into place ([`kantup_bundle::atomic::AtomicDir`]): it appears relocated or not at all.
    pub out: Option<PathBuf>,
    /// `IMAGE=sha256:...`: digests that pin hints without a tag placeholder.
    pub digests: Vec<String>,
}

impl RelocateOptions {
    /// `chart` edited in place through `hints`; set a registry and/or a repository prefix.
    pub fn new(chart: impl Into<PathBuf>, hints: impl Into<PathBuf>) -> Self {
        Self {
            chart: chart.into(),
            hints: hints.into(),
            registry: None,
            repository_prefix: None,
            out: None,
            digests: Vec::new(),
        }
    }
}

/// Rewrites the chart's image values through the hints with the one relocation rule (registry,
/// repository prefix, last path segment).
pub fn relocate(options: &RelocateOptions) -> Result<RelocationReport, ValuesOpError> {
    if options.registry.is_none() && options.repository_prefix.is_none() {
        return Err(ValuesOpError::NothingToRelocate);
    }
    let hints_text =
        std::fs::read_to_string(&options.hints).map_err(|source| ValuesOpError::Io {
            action: "reading",
            path: options.hints.clone(),
            source,
        })?;
    let patterns =
        kantup_bundle::hints::parse_hints(&hints_text).map_err(|source| ValuesOpError::Hints {
            path: options.hints.clone(),
            source,
        })?;
    let mut digests = HashMap::new();
    for d in &options.digests {
        let (image, digest) = d
            .rsplit_once('=')
            .ok_or_else(|| ValuesOpError::DigestSyntax(d.clone()))?;
        let image: kantup_bundle::reference::Reference =
            image.parse().map_err(|source| ValuesOpError::DigestImage {
                digest: d.clone(),
                source,
            })?;
        digests.insert(image.to_string(), digest.to_string());
    }
    let rule = RelocationRule {
        registry: options.registry.clone(),
        repository_prefix: options.repository_prefix.clone(),
    };
    let Some(out) = &options.out else {
        return Ok(relocate_chart_dir(
            &options.chart,
            &patterns,
            &rule,
            &digests,
        )?);
    };
    if out.symlink_metadata().is_ok() {
        return Err(ValuesOpError::OutExists(out.clone()));
    }
    // The copy is relocated where it is staged and appears whole, or not at all.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ValuesOpError::Io {
            action: "creating",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let staged = AtomicDir::create(out)?;
    let staging = staged.staging().to_path_buf();
    copy_dir(&options.chart, &staging)?;
    let mut report = relocate_chart_dir(&staging, &patterns, &rule, &digests)?;
    staged.commit()?;
    for edit in &mut report.edits {
        if let Ok(inside) = edit.file.strip_prefix(&staging) {
            edit.file = out.join(inside);
        }
    }
    Ok(report)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), ValuesOpError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ValuesOpError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(to).map_err(io("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(io("reading", from))? {
        let entry = entry.map_err(io("reading", from))?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .map_err(io("reading", &entry.path()))?
            .is_dir()
        {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io("copying", &entry.path()))?;
        }
    }
    Ok(())
}

/// Which release's values [`backup`] reads, and where it writes them.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The release name.
    pub release: String,
    /// Its namespace; the context's namespace when `None`.
    pub namespace: Option<String>,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// A revision other than the latest.
    pub revision: Option<u32>,
    /// The computed values (chart defaults coalesced with the user values, `helm get values
    /// --all`) instead of the user-supplied ones.
    pub all: bool,
    /// Write them to this file (atomically, mode 0600).
    pub file: Option<PathBuf>,
    /// Helm's storage driver.
    pub driver: StorageDriver,
}

/// A release's values as [`backup`] read them.
#[derive(Debug, Clone)]
pub struct ValuesBackup {
    /// The release read.
    pub release: ReleaseId,
    /// The revision read.
    pub revision: u32,
    /// The values as `helm get values -o yaml` prints them (what was written to the file).
    pub yaml: String,
    /// The same values as JSON.
    pub values: Value,
}

/// Reads the values of a release revision (the latest by default) and, when a file is named,
/// writes them there (mode 0600: values may hold secrets).
pub async fn backup(options: &BackupOptions) -> Result<ValuesBackup, ValuesOpError> {
    let (client, namespace) =
        crate::ops::cluster::connect(&options.cluster, options.namespace.as_deref()).await?;
    let release = ReleaseId::new(&options.release, namespace);
    let store = ReleaseStore::new(client, release.namespace.clone(), options.driver);
    let record = match options.revision {
        Some(revision) => store.revision(&release.name, revision).await?,
        None => store.latest(&release.name).await?,
    };
    let stored = crate::ops::release::stored_values(&record.release);
    let yaml = stored.to_yaml(&record.release.name, options.all)?;
    if let Some(file) = &options.file {
        kantup_bundle::atomic::write_with(file, yaml.as_bytes(), Access::Private)?;
    }
    Ok(ValuesBackup {
        release,
        revision: record.revision,
        values: stored.values(options.all),
        yaml,
    })
}
