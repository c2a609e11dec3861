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
    run_pass(Co { merge: false, helm }, chart, table_from(vals))
}

/// [`coalesce_values`] taking the values over: nothing of them is copied (for big values,
/// that is most of the work).
///
/// ```
/// use kantup_helm_values::{chart::Chart, coalesce::coalesce_owned_values, strvals::HelmVersion};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("Chart.yaml"), "apiVersion: v2\nname: c\nversion: 1.0.0\n").unwrap();
/// std::fs::write(dir.path().join("values.yaml"), "a: 1\nb: {c: 2}\n").unwrap();
/// let chart = Chart::load(dir.path()).unwrap();
/// let user = kantup_helm_values::yaml::parse_values("b: {d: 3}\n", "user.yaml").unwrap();
/// let values = coalesce_owned_values(&chart, user, HelmVersion::V3).unwrap();
/// assert_eq!(serde_json::Value::Object(values), serde_json::json!({"a": 1.0, "b": {"c": 2.0, "d": 3.0}}));
/// ```
pub fn coalesce_owned_values(
    chart: &Chart,
    vals: Values,
    helm: HelmVersion,
) -> crate::Result<Values> {
    run_pass(Co { merge: false, helm }, chart, table_from_owned(vals))
}

/// Helm's `MergeValues(chart, vals)`: like [`coalesce_values`] but user nulls are kept.
pub fn merge_values_with_chart(
    chart: &Chart,
    vals: &Values,
    helm: HelmVersion,
) -> crate::Result<Values> {
    run_pass(Co { merge: true, helm }, chart, table_from(vals))
}

/// One coalescing pass: merging (keep nulls) or coalescing, as a given Helm version does it.
///
/// The pass runs on [`Shared`] tables rather than on owned values because Helm's result depends
/// on Go maps being references: `coalesceGlobals` gives each subchart a *shallow* copy of every
/// table under the parent's `global`, so the nested tables (`global.x.y`, deeper) are the same
/// objects in the parent and in the subchart. Whatever the subchart's own globals then add to
/// them (a key the parent lacks, a `null` the parent's coalescing already deleted) also shows in
/// the parent's `.Values.global`, and in every later subchart's copy.
///
/// Tables are opened lazily: a map of the inputs stays as it is there ([`Shared::Ref`],
/// [`Shared::Own`]) until the pass looks into it, so a pass costs what the chart's defaults
/// touch, not the size of the user's values (which are moved into the result when they were
/// handed over, copied once when they were lent).
#[derive(Clone, Copy)]
struct Co {
    merge: bool,
    helm: HelmVersion,
}

impl Co {
    fn coalesce<'a>(self, chart: &'a Chart, dest: &Table<'a>) -> crate::Result<()> {
        self.coalesce_chart_values(chart, dest);
        self.coalesce_deps(chart, dest)
    }

    fn coalesce_deps<'a>(self, chart: &'a Chart, dest: &Table<'a>) -> crate::Result<()> {
        for sub in &chart.dependencies {
            let name = sub.name.as_str();
            let dv = match find(dest, name) {
                Found::Missing => {
                    let t = new_table();
                    dest.borrow_mut()
                        .insert(name.to_string(), Shared::Table(t.clone()));
                    t
                }
                Found::Table(t) => t,
                Found::Null | Found::Other => {
                    let map = dest.borrow();
                    let v = map[name].value().expect("not a table");
                    return Err(crate::Error::Coalesce(format!(
                        "type mismatch on {name}: %!t({}={})",
                        crate::value::go_type_name(v),
                        crate::value::to_go_json(v)
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
    fn coalesce_globals<'a>(dest: &Table<'a>, src: &Table<'a>) {
        let dg = match find(dest, GLOBAL_KEY) {
            Found::Missing => new_table(),
            Found::Table(t) => t,
            Found::Null | Found::Other => return, // "skipping globals because destination global is not a table"
        };
        let sg = match find(src, GLOBAL_KEY) {
            Found::Missing => new_table(),
            Found::Table(t) => t,
            Found::Null | Found::Other => return,
        };
        let keys: Vec<String> = sg.borrow().keys().cloned().collect();
        for key in keys {
            let Some(val) = entry(&sg, &key) else {
                continue;
            };
            let current = find(&dg, &key);
            match val {
                Shared::Table(parent_table) => {
                    let vv: Table = Rc::new(RefCell::new(shallow_copy(&parent_table)));
                    match current {
                        Found::Missing => {
                            dg.borrow_mut().insert(key, Shared::Table(vv));
                        }
                        Found::Table(child_table) => {
                            // The parent's table wins: the child's merged under it (nulls kept).
                            coalesce_shared(&vv, &child_table, true, HelmVersion::V3);
                            dg.borrow_mut().insert(key, Shared::Table(vv));
                        }
                        Found::Null | Found::Other => {} // "cannot merge map onto non-map"
                    }
                }
                plain => {
                    if !matches!(current, Found::Table(_)) {
                        dg.borrow_mut().insert(key, plain);
                    } // else "key is table. Skipping"
                }
            }
        }
        dest.borrow_mut()
            .insert(GLOBAL_KEY.to_string(), Shared::Table(dg));
    }

    /// Fills `v` with the chart's defaults where the user gave nothing.
    fn coalesce_chart_values<'a>(self, chart: &'a Chart, v: &Table<'a>) {
        // Defaults go in as references to the chart's values, a fresh copy each time they are
        // opened (Helm's `copystructure.Copy(c.Values)`).
        for (key, default) in &chart.values {
            match find(v, key) {
                Found::Null if !self.merge => {
                    v.borrow_mut().shift_remove(key);
                }
                Found::Table(dest) => {
                    if let Value::Object(src) = default {
                        let merge = self.merge || chart.dependencies.iter().any(|d| &d.name == key);
                        coalesce_shared(&dest, &table_from(src), merge, self.helm);
                    }
                }
                Found::Missing => {
                    v.borrow_mut().insert(key.clone(), Shared::Ref(default));
                }
                Found::Null | Found::Other => {}
            }
        }
    }
}

/// A table as a Go `map[string]interface{}`: a reference, possibly held in several places.
type Table<'a> = Rc<RefCell<IndexMap<String, Shared<'a>>>>;

/// A value during coalescing. Not `Clone`: [`entry`] hands out a table's entries the way Go
/// would, tables by reference and other values by copy.
enum Shared<'a> {
    /// A table the pass has opened: a reference, shared where Go shares the map.
    Table(Table<'a>),
    /// A value of lent inputs (the chart's defaults, values passed by reference).
    Ref(&'a Value),
    /// A value of inputs handed over.
    Own(Value),
}

impl Shared<'_> {
    fn value(&self) -> Option<&Value> {
        match self {
            Shared::Table(_) => None,
            Shared::Ref(v) => Some(v),
            Shared::Own(v) => Some(v),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.value(), Some(Value::Null))
    }
}

fn new_table<'a>() -> Table<'a> {
    Rc::new(RefCell::new(IndexMap::new()))
}

/// A new table holding `m`'s entries, its own maps not opened yet.
fn table_from<'a>(m: &'a Values) -> Table<'a> {
    Rc::new(RefCell::new(
        m.iter().map(|(k, v)| (k.clone(), Shared::Ref(v))).collect(),
    ))
}

/// [`table_from`] for values handed over: moved, not copied.
fn table_from_owned<'a>(m: Values) -> Table<'a> {
    Rc::new(RefCell::new(
        m.into_iter().map(|(k, v)| (k, Shared::Own(v))).collect(),
    ))
}

/// The table in `slot`, opened in place if it was not yet (a map of the inputs nobody looked
/// into); `None` when it holds no map.
fn open<'a>(slot: &mut Shared<'a>) -> Option<Table<'a>> {
    let table = match slot {
        Shared::Table(t) => return Some(t.clone()),
        Shared::Ref(Value::Object(m)) => table_from(m),
        Shared::Own(Value::Object(m)) => table_from_owned(std::mem::take(m)),
        _ => return None,
    };
    *slot = Shared::Table(table.clone());
    Some(table)
}

/// What `t[key]` holds, looked at without copying it (a map is opened in place).
enum Found<'a> {
    Missing,
    Table(Table<'a>),
    Null,
    Other,
}

fn find<'a>(t: &Table<'a>, key: &str) -> Found<'a> {
    let mut map = t.borrow_mut();
    let Some(slot) = map.get_mut(key) else {
        return Found::Missing;
    };
    match open(slot) {
        Some(table) => Found::Table(table),
        None if slot.is_null() => Found::Null,
        None => Found::Other,
    }
}

/// `t[key]` as Go hands it out: a map opened in place and returned by reference (so changing
/// or sharing it is changing or sharing `t`'s), anything else a copy (lists and scalars are
/// never changed in place).
fn entry<'a>(t: &Table<'a>, key: &str) -> Option<Shared<'a>> {
    let mut map = t.borrow_mut();
    let slot = map.get_mut(key)?;
    Some(share(slot))
}

fn share<'a>(slot: &mut Shared<'a>) -> Shared<'a> {
    if let Some(table) = open(slot) {
        return Shared::Table(table);
    }
    match slot {
        Shared::Ref(v) => Shared::Ref(v),
        Shared::Own(v) => Shared::Own(v.clone()),
        Shared::Table(_) => unreachable!("opened above"),
    }
}

/// Go's `copyMap` of a table: a new table with the same entries, tables by reference.
fn shallow_copy<'a>(t: &Table<'a>) -> IndexMap<String, Shared<'a>> {
    t.borrow_mut()
        .iter_mut()
        .map(|(k, slot)| (k.clone(), share(slot)))
        .collect()
}

/// The values as they are now, every reference read out: moved where nothing else holds
/// them, copied where something does.
fn into_values(t: Table<'_>) -> Values {
    match Rc::try_unwrap(t) {
        Ok(cell) => cell
            .into_inner()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Shared::Table(t) => Value::Object(into_values(t)),
                    Shared::Ref(v) => v.clone(),
                    Shared::Own(v) => v,
                };
                (k, v)
            })
            .collect(),
        Err(shared) => shared
            .borrow()
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Shared::Table(t) => Value::Object(into_values(t.clone())),
                    Shared::Ref(v) => (*v).clone(),
                    Shared::Own(v) => v.clone(),
                };
                (k.clone(), v)
            })
            .collect(),
    }
}

/// Runs one pass over `dest` (the values given) and reads the result out.
fn run_pass<'a>(co: Co, chart: &'a Chart, dest: Table<'a>) -> crate::Result<Values> {
    co.coalesce(chart, &dest)?;
    Ok(into_values(dest))
}

/// [`coalesce_tables`] on shared tables: `dst` gets what it lacks from `src`, in place, and
/// tables inserted from `src` are inserted by reference (as Go does).
fn coalesce_shared<'a>(dst: &Table<'a>, src: &Table<'a>, merge: bool, helm: HelmVersion) {
    if Rc::ptr_eq(dst, src) {
        // Go iterating a map while deleting from it: only the nulls go, when coalescing.
        if !merge && helm == HelmVersion::V3 {
            dst.borrow_mut().retain(|_, v| !v.is_null());
        }
        return;
    }
    let keys: Vec<String> = src.borrow().keys().cloned().collect();
    for key in keys {
        let val = find(src, &key);
        match (find(dst, &key), val) {
            (_, Found::Missing) => {}
            (Found::Null, val)
                if !merge && (helm == HelmVersion::V3 || !matches!(val, Found::Null)) =>
            {
                dst.borrow_mut().shift_remove(&key);
            }
            (Found::Missing, _) => {
                if let Some(val) = entry(src, &key) {
                    dst.borrow_mut().insert(key, val);
                }
            }
            // A table over a non-table is skipped ("cannot overwrite table with non table").
            (Found::Table(dm), Found::Table(sm)) => coalesce_shared(&dm, &sm, merge, helm),
            _ => {}
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
