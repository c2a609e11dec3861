//! The subset of Helm's `release/v1` JSON that kantup reads. Unknown fields are ignored, so
//! records from newer Helm versions still decode.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A release revision as Helm stores it (`helm.sh/helm/v{3,4}/pkg/release/v1.Release`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Release {
    /// The release name.
    #[serde(default)]
    pub name: String,
    /// Status and timestamps.
    #[serde(default)]
    pub info: Option<ReleaseInfo>,
    /// The chart that was deployed (metadata and default values).
    #[serde(default)]
    pub chart: Option<ReleaseChart>,
    /// The user-supplied values (`-f`/`--set`); absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
    /// The rendered manifest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    /// The revision number.
    #[serde(default)]
    pub version: u32,
    /// The release namespace.
    #[serde(default)]
    pub namespace: String,
    /// Helm 4 only: `"ssa"` (server-side apply) or `"csa"`; absent means client-side apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_method: Option<String>,
}

impl Release {
    /// The status, `Unknown` when the record has no `info`.
    pub fn status(&self) -> ReleaseStatus {
        self.info
            .as_ref()
            .map(|i| i.status.clone())
            .unwrap_or(ReleaseStatus::Unknown)
    }

    /// The chart's metadata, when the record has a chart.
    pub fn chart_metadata(&self) -> Option<&ChartMetadata> {
        self.chart.as_ref().map(|c| &c.metadata)
    }

    /// The chart's default values, when the record has them.
    pub fn chart_values(&self) -> Option<&Map<String, Value>> {
        self.chart.as_ref().and_then(|c| c.values.as_ref())
    }

    /// Whether Helm 4 wrote the record: only Helm 4 writes `apply_method`.
    pub fn written_by_helm4(&self) -> bool {
        self.apply_method.is_some()
    }
}

/// `release/v1.Info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// RFC 3339; Helm 4 omits zero times, Helm 3 writes `0001-01-01T00:00:00Z`.
    #[serde(default)]
    pub first_deployed: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub last_deployed: Option<String>,
    /// RFC 3339, or the zero time.
    #[serde(default)]
    pub deleted: Option<String>,
    /// Helm's log line for this revision ("Upgrade complete").
    #[serde(default)]
    pub description: String,
    /// The revision's state.
    #[serde(default)]
    pub status: ReleaseStatus,
    /// Rendered NOTES.txt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// Helm's release states (`release/common.Status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    /// The current revision, deployed.
    Deployed,
    /// Uninstalled with `--keep-history`.
    Uninstalled,
    /// An older revision replaced by a newer one.
    Superseded,
    /// The install or upgrade failed.
    Failed,
    /// Being uninstalled.
    Uninstalling,
    /// An install started and did not finish.
    PendingInstall,
    /// An upgrade started and did not finish.
    PendingUpgrade,
    /// A rollback started and did not finish.
    PendingRollback,
    /// Unknown, missing, or a state this version of kantup does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl ReleaseStatus {
    /// The status as Helm prints it (`pending-upgrade`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ReleaseStatus::Unknown => "unknown",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Uninstalled => "uninstalled",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Uninstalling => "uninstalling",
            ReleaseStatus::PendingInstall => "pending-install",
            ReleaseStatus::PendingUpgrade => "pending-upgrade",
            ReleaseStatus::PendingRollback => "pending-rollback",
        }
    }
}

impl std::fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of the stored chart kantup needs (`chart/v2.Chart`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReleaseChart {
    /// `Chart.yaml`.
    #[serde(default)]
    pub metadata: ChartMetadata,
    /// The chart's `values.yaml`, parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Map<String, Value>>,
}

/// `Chart.yaml` fields as Helm serializes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChartMetadata {
    /// Chart name.
    #[serde(default)]
    pub name: String,
    /// Chart version (SemVer 2).
    #[serde(default)]
    pub version: String,
    /// Application version.
    #[serde(
        default,
        rename = "appVersion",
        skip_serializing_if = "String::is_empty"
    )]
    pub app_version: String,
    /// Chart API version (`v2`).
    #[serde(
        default,
        rename = "apiVersion",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
}
