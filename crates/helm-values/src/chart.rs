//! A chart as values computation sees it: name, version, default values (read as Helm reads
//! them), `dependencies` metadata and subcharts. A view of [`kantup_bundle::chart::Chart`],
//! which does all the reading of chart files and archives (size and path checks included);
//! this module only interprets what it read.

use std::path::Path;

use serde_json::Value;

use crate::value::Values;
use crate::yaml::parse_values;
use crate::{Error, Result};

use kantup_bundle::chart::Chart as ChartFiles;

/// A chart as values computation sees it.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// `name` from Chart.yaml (replaced by the alias for an aliased dependency).
    pub name: String,
    /// `version` from Chart.yaml.
    pub version: String,
    /// The chart's `values.yaml`, read as Helm reads it.
    pub values: Values,
    /// `dependencies:` from Chart.yaml.
    pub metadata_dependencies: Vec<Dependency>,
    /// Subcharts found in `charts/` (directories and archives).
    pub dependencies: Vec<Chart>,
}

/// One entry of Chart.yaml `dependencies:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependency {
    /// Chart name.
    pub name: String,
    /// Version constraint.
    pub version: String,
    /// Alias: the name the subchart's values live under.
    pub alias: Option<String>,
    /// Comma-separated value paths whose first boolean enables the dependency.
    pub condition: Option<String>,
    /// Tags: the dependency is disabled when one is false under `tags` and none is true.
    pub tags: Vec<String>,
    /// `import-values` entries: a string (child path under `exports.`) or a child/parent map.
    pub import_values: Vec<Value>,
    /// Computed: whether conditions and tags enable it.
    pub enabled: bool,
}

impl Chart {
    /// Loads a chart directory, or a `.tgz` chart archive.
    ///
    /// ```
    /// # let fixtures = kantup_test_support::relok8s_fixtures();
    /// let chart = kantup_helm_values::chart::Chart::load(fixtures.join("wordpress-11.0.4.tgz"))?;
    /// assert_eq!(chart.name, "wordpress");
    /// assert!(chart.dependencies.iter().any(|d| d.name == "mariadb"));
    /// # Ok::<(), kantup_helm_values::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Chart> {
        let path = path.as_ref();
        let files = ChartFiles::load(path)?;
        view(&files, &path.display().to_string())
    }

    /// The values view of a chart already read.
    pub fn from_chart(chart: &ChartFiles) -> Result<Chart> {
        view(chart, chart.name())
    }
}

/// Interprets `chart` (whose source `origin` names in errors) and its subcharts.
fn view(chart: &ChartFiles, origin: &str) -> Result<Chart> {
    let values = match chart.files.get("values.yaml") {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Error::Chart {
                chart: origin.to_string(),
                message: "values.yaml is not UTF-8".into(),
            })?;
            parse_values(text, &format!("{origin}/values.yaml"))?
        }
        None => Values::new(),
    };
    let metadata_dependencies = chart
        .metadata
        .dependencies
        .iter()
        .map(|d| Dependency {
            name: d.name.clone(),
            version: d.version.clone().unwrap_or_default(),
            alias: d.alias.clone().filter(|a| !a.is_empty()),
            condition: d.condition.clone(),
            tags: d.tags.clone(),
            import_values: match d.extra.get("import-values") {
                Some(serde_yaml::Value::Sequence(entries)) => entries
                    .iter()
                    .filter_map(|e| serde_json::to_value(e).ok())
                    .collect(),
                _ => Vec::new(),
            },
            enabled: true,
        })
        .collect();
    let dependencies = chart
        .subcharts
        .iter()
        .map(|sub| {
            let at = sub.path_in_parent.as_ref().map_or("charts", |p| p.as_str());
            view(sub, &format!("{origin}/{at}"))
        })
        .collect::<Result<_>>()?;
    Ok(Chart {
        name: chart.name().to_string(),
        version: chart.version().to_string(),
        values,
        metadata_dependencies,
        dependencies,
    })
}
