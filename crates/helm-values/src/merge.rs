//! Helm's merge order for user-supplied values (pkg/cli/values/options.go `MergeValues`):
//! `-f` files in order (maps merged, everything else replaced), then every `--set-json`,
//! `--set`, `--set-string`, `--set-file` and `--set-literal`, each parsed into the result.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::chart::Chart;
use crate::strvals::{HelmVersion, SetKind, parse_into_as};
use crate::value::Values;
use crate::yaml::parse_values;
use crate::{Error, Result};

/// The values flags of `helm install/upgrade/template`, as given.
#[derive(Debug, Clone, Default)]
pub struct ValueOptions {
    /// `-f/--values` files, in order.
    pub value_files: Vec<PathBuf>,
    /// `--set-json` expressions.
    pub json_values: Vec<String>,
    /// `--set` expressions.
    pub values: Vec<String>,
    /// `--set-string` expressions.
    pub string_values: Vec<String>,
    /// `--set-file` expressions (`key=path`).
    pub file_values: Vec<String>,
    /// `--set-literal` expressions.
    pub literal_values: Vec<String>,
    /// Whose parser quirks to follow (Helm 3 by default).
    pub helm: HelmVersion,
}

impl ValueOptions {
    /// Merges the flags into the user-supplied values, exactly as Helm does before it looks at
    /// the chart.
    ///
    /// ```
    /// use kantup_helm_values::merge::ValueOptions;
    /// let opts = ValueOptions { values: vec!["a.b=1,c={x,y}".into()],
    ///     string_values: vec!["a.d=true".into()], ..Default::default() };
    /// let v = opts.merge_values().unwrap();
    /// assert_eq!(serde_json::Value::Object(v),
    ///     serde_json::json!({"a": {"b": 1, "d": "true"}, "c": ["x", "y"]}));
    /// ```
    pub fn merge_values(&self) -> Result<Values> {
        self.merge_values_onto(Map::new())
    }

    /// [`merge_values`](Self::merge_values) with one values document before the `-f` files:
    /// `text` read exactly as a first `-f` file holding it would be (`origin` names it in
    /// errors). An upgrade gives the release's values backup so, in memory.
    ///
    /// ```
    /// use kantup_helm_values::merge::ValueOptions;
    /// let opts = ValueOptions { values: vec!["tag=2".into()], ..Default::default() };
    /// let v = opts.merge_values_after("tag: 1\nreplicas: 3\n", "backup.yaml").unwrap();
    /// assert_eq!(serde_json::Value::Object(v), serde_json::json!({"tag": 2, "replicas": 3.0}));
    /// ```
    pub fn merge_values_after(&self, text: &str, origin: &str) -> Result<Values> {
        let first = parse_values(text, origin)?;
        self.merge_values_onto(merge_maps(Map::new(), first))
    }

    fn merge_values_onto(&self, mut base: Values) -> Result<Values> {
        for path in &self.value_files {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let current = parse_values(&text, &path.display().to_string())?;
            base = merge_maps(base, current);
        }
        let groups: [(&Vec<String>, SetKind); 5] = [
            (&self.json_values, SetKind::SetJson),
            (&self.values, SetKind::Set),
            (&self.string_values, SetKind::SetString),
            (&self.file_values, SetKind::SetFile),
            (&self.literal_values, SetKind::SetLiteral),
        ];
        for (exprs, kind) in groups {
            for expr in exprs {
                apply_set(&mut base, expr, kind, self.helm)?;
            }
        }
        Ok(base)
    }
}

/// Applies one `--set`-family expression to `base`. `--set-file` paths are read from disk.
pub fn apply_set(base: &mut Values, expr: &str, kind: SetKind, helm: HelmVersion) -> Result<()> {
    let result = if kind == SetKind::SetFile {
        let mut reader = |path: &str| -> std::io::Result<Value> {
            std::fs::read(path).map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
        };
        parse_into_as(expr, kind, base, Some(&mut reader), helm)
    } else {
        parse_into_as(expr, kind, base, None, helm)
    };
    result.map_err(|source| Error::Strvals {
        flag: kind.flag(),
        expr: expr.to_string(),
        source,
    })
}

/// Helm's `mergeMaps`: maps merge recursively, `b` wins everywhere else.
pub fn merge_maps(a: Values, b: Values) -> Values {
    if a.is_empty() {
        return b; // the first values file: nothing to merge into
    }
    let mut out = a;
    for (k, v) in b {
        match (out.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(v)) => {
                let merged = merge_maps(std::mem::take(existing), v);
                *existing = merged;
            }
            (_, v) => {
                out.insert(k, v);
            }
        }
    }
    out
}

/// What `helm template`/`install` renders as `.Values` for `chart` given the user's values:
/// dependencies processed, then chart defaults coalesced under the user's values.
///
/// ```no_run
/// use kantup_helm_values::{chart::Chart, merge::{render_values, ValueOptions}};
/// let chart = Chart::load("mychart").unwrap();
/// let user = ValueOptions { values: vec!["replicas=3".into()], ..Default::default() }
///     .merge_values().unwrap();
/// let values = render_values(&chart, &user).unwrap();
/// ```
pub fn render_values(chart: &Chart, user: &Values) -> Result<Values> {
    render_values_as(chart, user, HelmVersion::V3)
}

/// [`render_values`] as a given Helm major version computes it.
pub fn render_values_as(chart: &Chart, user: &Values, helm: HelmVersion) -> Result<Values> {
    let processed = crate::deps::process_dependencies(chart, user, helm)?;
    crate::coalesce::coalesce_values(&processed, user, helm)
}

/// [`render_values_as`] taking the user's values over: they become the result without being
/// copied, which for big values files is most of the work.
///
/// ```no_run
/// use kantup_helm_values::{chart::Chart, merge::{render_owned_values_as, ValueOptions}};
/// use kantup_helm_values::strvals::HelmVersion;
/// let chart = Chart::load("mychart").unwrap();
/// let user = ValueOptions { values: vec!["replicas=3".into()], ..Default::default() }
///     .merge_values().unwrap();
/// let values = render_owned_values_as(&chart, user, HelmVersion::V3).unwrap();
/// ```
pub fn render_owned_values_as(chart: &Chart, user: Values, helm: HelmVersion) -> Result<Values> {
    let processed = crate::deps::process_dependencies(chart, &user, helm)?;
    crate::coalesce::coalesce_owned_values(&processed, user, helm)
}
