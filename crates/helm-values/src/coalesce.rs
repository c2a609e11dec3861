//! Coalescing user values with chart defaults (Helm's pkg/chartutil/coalesce.go).
//!
//! User values win; maps merge; lists and scalars replace; a user `null` deletes the default
//! key (when coalescing, not when merging); `global` flows from a parent into each subchart;
//! each subchart's values live under its name (or alias) in the parent's values.

use serde_json::{Map, Value};

use crate::chart::Chart;
use crate::strvals::HelmVersion;
use crate::value::{Values, is_table};

const GLOBAL_KEY: &str = "global";

/// Helm's `CoalesceValues(chart, vals)`: the values a chart is rendered with.
pub fn coalesce_values(chart: &Chart, vals: &Values, helm: HelmVersion) -> crate::Result<Values> {
    let mut dest = vals.clone();
    Co { merge: false, helm }.coalesce(chart, &mut dest)?;
    Ok(dest)
}

/// Helm's `MergeValues(chart, vals)`: like [`coalesce_values`] but user nulls are kept.
pub fn merge_values_with_chart(
    chart: &Chart,
    vals: &Values,
    helm: HelmVersion,
) -> crate::Result<Values> {
    let mut dest = vals.clone();
    Co { merge: true, helm }.coalesce(chart, &mut dest)?;
    Ok(dest)
}

/// One coalescing pass: merging (keep nulls) or coalescing, as a given Helm version does it.
#[derive(Clone, Copy)]
struct Co {
    merge: bool,
    helm: HelmVersion,
}

impl Co {
    fn coalesce(self, chart: &Chart, dest: &mut Values) -> crate::Result<()> {
        self.coalesce_chart_values(chart, dest);
        self.coalesce_deps(chart, dest)
    }

    fn coalesce_deps(self, chart: &Chart, dest: &mut Values) -> crate::Result<()> {
        for sub in &chart.dependencies {
            let name = sub.name.as_str();
            match dest.get(name) {
                None => {
                    dest.insert(name.to_string(), Value::Object(Map::new()));
                }
                Some(v) if !is_table(v) => {
                    return Err(crate::Error::Coalesce(format!(
                        "type mismatch on {name}: %!t({}={})",
                        crate::value::go_type_name(v),
                        crate::value::to_go_json(v)
                    )));
                }
                Some(_) => {}
            }
            let parent_global = dest.get(GLOBAL_KEY).cloned();
            let Some(Value::Object(dv)) = dest.get_mut(name) else {
                unreachable!("ensured a table above")
            };
            Self::coalesce_globals(dv, parent_global.as_ref(), self.helm);
            self.coalesce(sub, dv)?;
        }
        Ok(())
    }

    /// Copies the parent's `global` into the child's, the parent winning on conflicts, maps merged.
    fn coalesce_globals(dest: &mut Values, src_global: Option<&Value>, helm: HelmVersion) {
        let mut dg = match dest.get(GLOBAL_KEY) {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return, // "skipping globals because destination global is not a table"
        };
        let sg = match src_global {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return,
        };
        for (key, val) in sg {
            if let Value::Object(vv) = &val {
                let mut vv = vv.clone();
                match dg.get(&key) {
                    None => {
                        dg.insert(key, Value::Object(vv));
                    }
                    Some(Value::Object(destv)) => {
                        // Parent's table wins: coalesce the child's under it, merging (keep nulls).
                        coalesce_tables(&mut vv, destv.clone(), true, helm);
                        dg.insert(key, Value::Object(vv));
                    }
                    Some(_) => {} // "cannot merge map onto non-map"
                }
            } else if dg.get(&key).is_some_and(is_table) {
                // "key is table. Skipping"
            } else {
                dg.insert(key, val);
            }
        }
        dest.insert(GLOBAL_KEY.to_string(), Value::Object(dg));
    }

    /// Fills `v` with the chart's defaults where the user gave nothing.
    fn coalesce_chart_values(self, chart: &Chart, v: &mut Values) {
        for (key, default) in &chart.values {
            match v.get_mut(key) {
                Some(Value::Null) if !self.merge => {
                    v.remove(key);
                }
                Some(Value::Object(dest)) => {
                    if let Value::Object(src) = default {
                        let merge = self.merge || chart.dependencies.iter().any(|d| &d.name == key);
                        coalesce_tables(dest, src.clone(), merge, self.helm);
                    }
                }
                Some(_) => {}
                None => {
                    v.insert(key.clone(), default.clone());
                }
            }
        }
    }
}

/// Helm's `coalesceTablesFullKey`: `dst` (higher precedence) gets what it lacks from `src`.
///
/// When coalescing (not merging), a `null` in `dst` deletes the key where `src` has it; in
/// Helm 4.1 only where `src` has a non-null value (a null in both stays). A `null` for a key
/// `src` lacks stays in both versions.
pub(crate) fn coalesce_tables(dst: &mut Values, src: Values, merge: bool, helm: HelmVersion) {
    for (key, val) in src {
        match dst.get_mut(&key) {
            Some(Value::Null) if !merge && (helm == HelmVersion::V3 || !val.is_null()) => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, val);
            }
            Some(dv) => {
                // A table over a non-table is skipped ("cannot overwrite table with non table").
                if let (Value::Object(sv), Value::Object(dm)) = (val, dv) {
                    coalesce_tables(dm, sv, merge, helm);
                }
            }
        }
    }
}

/// Helm's `CoalesceTables(dst, src)`: `dst` wins, maps merge, a `null` in `dst` deletes.
pub fn coalesce_tables_pub(dst: &mut Values, src: &Values, helm: HelmVersion) {
    coalesce_tables(dst, src.clone(), false, helm);
}
