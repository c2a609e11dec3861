//! When an upgrade has nothing to do.

use kantup_k8s_apply::crd::{CrdPlan, PlanAction};
use kantup_k8s_apply::release::{ReleaseRecord, ReleaseStatus};
use serde_json::{Map, Value};

use super::values;

/// The release is deployed with this chart (name, version and default values), these values,
/// and every CRD is unchanged.
pub(super) fn is_up_to_date(
    current: Option<&ReleaseRecord>,
    chart: &kantup_bundle::chart::Chart,
    merged: &Map<String, Value>,
    crds: &[CrdPlan],
) -> bool {
    let Some(current) = current else {
        return false;
    };
    let deployed = current.release.status() == ReleaseStatus::Deployed;
    let same_chart = current
        .release
        .chart_metadata()
        .is_some_and(|m| m.name == chart.name() && m.version == chart.metadata.version.to_string());
    let same_values =
        values::same_values(&current.release.config.clone().unwrap_or_default(), merged);
    // The same version can carry other defaults (a chart relocated by `sync` keeps its
    // version): compare what Helm stored of the deployed chart's values.yaml with this one's.
    let deployed_defaults = current
        .release
        .chart
        .as_ref()
        .and_then(|c| c.values.clone());
    let same_defaults = match kantup_helm_values::chart::Chart::from_chart(chart) {
        Ok(new) => values::same_values(&deployed_defaults.unwrap_or_default(), &new.values),
        Err(_) => false,
    };
    let crds_unchanged = crds
        .iter()
        .all(|p| p.action == PlanAction::Unchanged && p.rejected.is_none());
    deployed && same_chart && same_defaults && same_values && crds_unchanged
}
