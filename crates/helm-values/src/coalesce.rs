//! Coalescing user values with chart defaults (Helm's pkg/chartutil/coalesce.go).
//!
//! User values win; maps merge; lists and scalars replace; a user `null` deletes the default
//! key (when coalescing, not when merging); `global` flows from a parent into each subchart;
//! each subchart's values live under its name (or alias) in the parent's values.

use std::cell::RefCell;
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::chart::Chart;
use crate::strvals::HelmVersion;
use crate::value::Values;

const GLOBAL_KEY: &str = "global";

/// Helm's `CoalesceValues(chart, vals)`: the values a chart is rendered with.
pub fn coalesce_values(chart: &Chart, vals: &Values, helm: HelmVersion) -> crate::Result<Values> {
    run_pass(Co { merge: false, helm }, chart, vals)
}

/// Helm's `MergeValues(chart, vals)`: like [`coalesce_values`] but user nulls are kept.
pub fn merge_values_with_chart(
    chart: &Chart,
    vals: &Values,
    helm: HelmVersion,
) -> crate::Result<Values> {
    run_pass(Co { merge: true, helm }, chart, vals)
}

/// One coalescing pass: merging (keep nulls) or coalescing, as a given Helm version does it.
///
/// The pass runs on [`Shared`] tables rather than on owned values because Helm's result depends
/// on Go maps being references: `coalesceGlobals` gives each subchart a *shallow* copy of every
/// table under the parent's `global`, so the nested tables (`global.x.y`, deeper) are the same
/// objects in the parent and in the subchart. Whatever the subchart's own globals then add to
/// them (a key the parent lacks, a `null` the parent's coalescing already deleted) also shows in
/// the parent's `.Values.global`, and in every later subchart's copy.
#[derive(Clone, Copy)]
struct Co {
    merge: bool,
    helm: HelmVersion,
}

impl Co {
    fn coalesce(self, chart: &Chart, dest: &Table) -> crate::Result<()> {
        self.coalesce_chart_values(chart, dest);
        self.coalesce_deps(chart, dest)
    }

    fn coalesce_deps(self, chart: &Chart, dest: &Table) -> crate::Result<()> {
        for sub in &chart.dependencies {
            let name = sub.name.as_str();
            let existing = dest.borrow().get(name).cloned();
            let dv = match existing {
                None => {
                    let t = new_table();
                    dest.borrow_mut()
                        .insert(name.to_string(), Shared::Table(t.clone()));
                    t
                }
                Some(Shared::Table(t)) => t,
                Some(Shared::Plain(v)) => {
                    return Err(crate::Error::Coalesce(format!(
                        "type mismatch on {name}: %!t({}={})",
                        crate::value::go_type_name(&v),
                        crate::value::to_go_json(&v)
                    )));
                }
            };
            Self::coalesce_globals(&dv, dest);
            self.coalesce(sub, &dv)?;
        }
        Ok(())
    }

    /// Helm's `coalesceGlobals`: the parent's `global` into the child's, the parent winning on
    /// conflicts, maps merged. Each parent table is copied one level deep only (Go's `copyMap`);
    /// the tables below it stay shared with the parent.
    fn coalesce_globals(dest: &Table, src: &Table) {
        let dg = match dest.borrow().get(GLOBAL_KEY) {
            None => new_table(),
            Some(Shared::Table(t)) => t.clone(),
            Some(Shared::Plain(_)) => return, // "skipping globals because destination global is not a table"
        };
        let sg = match src.borrow().get(GLOBAL_KEY) {
            None => new_table(),
            Some(Shared::Table(t)) => t.clone(),
            Some(Shared::Plain(_)) => return,
        };
        let keys: Vec<String> = sg.borrow().keys().cloned().collect();
        for key in keys {
            let Some(val) = sg.borrow().get(&key).cloned() else {
                continue;
            };
            let current = dg.borrow().get(&key).cloned();
            match val {
                Shared::Table(parent_table) => {
                    let vv: Table = Rc::new(RefCell::new(parent_table.borrow().clone()));
                    match current {
                        None => {
                            dg.borrow_mut().insert(key, Shared::Table(vv));
                        }
                        Some(Shared::Table(child_table)) => {
                            // The parent's table wins: the child's merged under it (nulls kept).
                            coalesce_shared(&vv, &child_table, true, HelmVersion::V3);
                            dg.borrow_mut().insert(key, Shared::Table(vv));
                        }
                        Some(Shared::Plain(_)) => {} // "cannot merge map onto non-map"
                    }
                }
                plain => {
                    if !matches!(current, Some(Shared::Table(_))) {
                        dg.borrow_mut().insert(key, plain);
                    } // else "key is table. Skipping"
                }
            }
        }
        dest.borrow_mut()
            .insert(GLOBAL_KEY.to_string(), Shared::Table(dg));
    }

    /// Fills `v` with the chart's defaults where the user gave nothing.
    fn coalesce_chart_values(self, chart: &Chart, v: &Table) {
        // A fresh copy of the defaults each time (Helm's `copystructure.Copy(c.Values)`).
        for (key, default) in &chart.values {
            let current = v.borrow().get(key).cloned();
            match current {
                Some(Shared::Plain(Value::Null)) if !self.merge => {
                    v.borrow_mut().shift_remove(key);
                }
                Some(Shared::Table(dest)) => {
                    if let Value::Object(src) = default {
                        let merge = self.merge || chart.dependencies.iter().any(|d| &d.name == key);
                        coalesce_shared(&dest, &Shared::table_from(src), merge, self.helm);
                    }
                }
                Some(_) => {}
                None => {
                    v.borrow_mut()
                        .insert(key.clone(), Shared::from_value(default));
                }
            }
        }
    }
}

/// A table as a Go `map[string]interface{}`: a reference, possibly held in several places.
type Table = Rc<RefCell<IndexMap<String, Shared>>>;

/// A value during coalescing: tables are shared references; lists and scalars are never
/// modified in place by coalescing, so they stay plain values.
#[derive(Clone)]
enum Shared {
    Table(Table),
    Plain(Value),
}

fn new_table() -> Table {
    Rc::new(RefCell::new(IndexMap::new()))
}

impl Shared {
    /// A deep, unshared copy of `v`.
    fn from_value(v: &Value) -> Shared {
        match v {
            Value::Object(m) => Shared::Table(Shared::table_from(m)),
            other => Shared::Plain(other.clone()),
        }
    }

    fn table_from(m: &Values) -> Table {
        Rc::new(RefCell::new(
            m.iter()
                .map(|(k, v)| (k.clone(), Shared::from_value(v)))
                .collect(),
        ))
    }

    /// The values as they are now, every reference read out.
    fn to_values(t: &Table) -> Values {
        t.borrow()
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Shared::Table(t) => Value::Object(Shared::to_values(t)),
                    Shared::Plain(v) => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Runs one pass over a shared copy of `vals` and reads the result out.
fn run_pass(co: Co, chart: &Chart, vals: &Values) -> crate::Result<Values> {
    let dest = Shared::table_from(vals);
    co.coalesce(chart, &dest)?;
    Ok(Shared::to_values(&dest))
}

/// [`coalesce_tables`] on shared tables: `dst` gets what it lacks from `src`, in place, and
/// tables inserted from `src` are inserted by reference (as Go does).
fn coalesce_shared(dst: &Table, src: &Table, merge: bool, helm: HelmVersion) {
    if Rc::ptr_eq(dst, src) {
        // Go iterating a map while deleting from it: only the nulls go, when coalescing.
        if !merge && helm == HelmVersion::V3 {
            dst.borrow_mut()
                .retain(|_, v| !matches!(v, Shared::Plain(Value::Null)));
        }
        return;
    }
    let keys: Vec<String> = src.borrow().keys().cloned().collect();
    for key in keys {
        let Some(val) = src.borrow().get(&key).cloned() else {
            continue;
        };
        let current = dst.borrow().get(&key).cloned();
        match current {
            Some(Shared::Plain(Value::Null))
                if !merge
                    && (helm == HelmVersion::V3 || !matches!(val, Shared::Plain(Value::Null))) =>
            {
                dst.borrow_mut().shift_remove(&key);
            }
            None => {
                dst.borrow_mut().insert(key, val);
            }
            Some(Shared::Table(dm)) => {
                // A table over a non-table is skipped ("cannot overwrite table with non table").
                if let Shared::Table(sm) = val {
                    coalesce_shared(&dm, &sm, merge, helm);
                }
            }
            Some(Shared::Plain(_)) => {}
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
