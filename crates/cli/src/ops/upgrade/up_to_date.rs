//! When an upgrade has nothing to do, and otherwise why helm runs.
//!
//! The release is up to date when its latest revision is deployed with this chart (name and
//! version), the chart defaults Helm stores for it, these user values, and every CRD is
//! unchanged. The defaults are compared as Helm stores them: after its dependency processing,
//! which folds the subcharts' defaults (and imported values) into the parent's
//! ([`kantup_helm_values::upgrade::stored_chart_values`]), not as the chart's `values.yaml`
//! reads.

use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::crd::{CrdPlan, PlanAction};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus};
use serde::Serialize;
use serde_json::{Map, Value};

/// Why kantup will run helm (when a plan has none, the release is up to date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum HelmReason {
    /// The release does not exist.
    NotInstalled,
    /// Its latest revision is not deployed.
    NotDeployed {
        /// The latest revision's status.
        status: String,
    },
    /// Another chart or chart version.
    ChartVersion {
        /// What is deployed (`name version`).
        deployed: String,
        /// What will be (`name version`).
        new: String,
    },
    /// The same chart version with other default values (a chart relocated by `sync`).
    ChartDefaults {
        /// The values paths whose defaults differ.
        paths: Vec<String>,
    },
    /// Other user-supplied values.
    Values {
        /// The values paths that differ.
        paths: Vec<String>,
    },
    /// CRDs to create or change.
    Crds {
        /// Their names.
        names: Vec<String>,
    },
}

impl std::fmt::Display for HelmReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelmReason::NotInstalled => f.write_str("the release is not installed"),
            HelmReason::NotDeployed { status } => {
                write!(f, "the latest revision is {status}, not deployed")
            }
            HelmReason::ChartVersion { deployed, new } => {
                write!(f, "chart {deployed} -> {new}")
            }
            HelmReason::ChartDefaults { paths } => {
                write!(f, "chart defaults changed: {}", list(paths))
            }
            HelmReason::Values { paths } => write!(f, "values changed: {}", list(paths)),
            HelmReason::Crds { names } => write!(f, "CRDs changed: {}", list(names)),
        }
    }
}

/// At most 8 items, then how many more.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// Why helm must run to bring `current` to `chart` with the user values `merged` and the
/// CRD plans `crds`; empty when the release is up to date.
pub(super) fn helm_reasons(
    current: Option<&ReleaseRecord>,
    chart: &kantup_bundle::chart::Chart,
    merged: &Map<String, Value>,
    crds: &[CrdPlan],
    helm: HelmVersion,
) -> Vec<HelmReason> {
    let Some(current) = current else {
        return vec![HelmReason::NotInstalled];
    };
    let mut reasons = Vec::new();
    let status = current.release.status();
    if status != ReleaseStatus::Deployed {
        reasons.push(HelmReason::NotDeployed {
            status: status.to_string(),
        });
    }
    let new = format!("{} {}", chart.name(), chart.metadata.version);
    let deployed = current
        .release
        .chart_metadata()
        .map(|m| format!("{} {}", m.name, m.version));
    if deployed.as_deref() != Some(new.as_str()) {
        reasons.push(HelmReason::ChartVersion {
            deployed: deployed.unwrap_or_else(|| "(unknown)".into()),
            new,
        });
    } else {
        // The same version can carry other defaults (a chart relocated by `sync` keeps its
        // version): compare what Helm stored of the deployed chart's values with what it will
        // store of this one's.
        let deployed_defaults = current
            .release
            .chart
            .as_ref()
            .and_then(|c| c.values.clone())
            .unwrap_or_default();
        let paths = match stored_defaults(chart, merged, helm) {
            Ok(new) => changed_paths(&deployed_defaults, &new),
            Err(e) => vec![format!("(the new chart's values cannot be read: {e})")],
        };
        if !paths.is_empty() {
            reasons.push(HelmReason::ChartDefaults { paths });
        }
    }
    let previous = current.release.config.clone().unwrap_or_default();
    let paths = changed_paths(&previous, merged);
    if !paths.is_empty() {
        reasons.push(HelmReason::Values { paths });
    }
    let names: Vec<String> = crds
        .iter()
        .filter(|p| p.action != PlanAction::Unchanged || p.rejected.is_some())
        .map(|p| p.name.clone())
        .collect();
    if !names.is_empty() {
        reasons.push(HelmReason::Crds { names });
    }
    reasons
}

/// The chart defaults Helm stores in the release record for `chart` installed with `user`.
fn stored_defaults(
    chart: &kantup_bundle::chart::Chart,
    user: &Map<String, Value>,
    helm: HelmVersion,
) -> Result<Map<String, Value>, kantup_helm_values::Error> {
    let view = kantup_helm_values::chart::Chart::from_chart(chart)?;
    kantup_helm_values::upgrade::stored_chart_values(&view, user, helm)
}

/// The values paths that differ, numbers compared as Helm sees them.
fn changed_paths(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    super::values::diff_values(old, new)
        .into_iter()
        .map(|c| c.path)
        .collect()
}
