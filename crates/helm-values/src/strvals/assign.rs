//! Setting what a `--set` expression says into the values: `a.b=v` into nested maps, `a[i]=v`
//! into lists (grown with nulls, as Helm does), within Helm's nesting and index limits.

use serde_json::{Map, Value};

use super::scanner::{ListErr, Parser, Step, Stop, err, q};
use super::{MAX_INDEX, MAX_NESTED_NAME_LEVEL, SetError, SetKind};
use crate::value::{MAX_DEPTH, Values, go_type_name};

/// Go's panic text when a value is not the map or list a key needs (Helm recovers it as the
/// error).
fn panic_msg(got: &Value, want: &str) -> Stop {
    Stop::Err(SetError::Syntax(format!(
        "unable to parse key: interface conversion: interface {{}} is {}, not {want}",
        go_type_name(got)
    )))
}

const MAP_T: &str = "map[string]interface {}";
const LIST_T: &str = "[]interface {}";

impl Parser<'_, '_> {
    pub(super) fn key(&mut self, data: &mut Values, level: usize) -> Step<()> {
        self.nested(|p| p.key_inner(data, level))
    }

    pub(super) fn list_item(&mut self, list: &mut Vec<Value>, i: i64, level: usize) -> Step<()> {
        self.nested(|p| p.list_item_inner(list, i, level))
    }

    /// Runs one level of nesting, refusing more than [`MAX_DEPTH`].
    fn nested(&mut self, step: impl FnOnce(&mut Self) -> Step<()>) -> Step<()> {
        if self.depth >= MAX_DEPTH {
            return err(format!(
                "value nested deeper than {MAX_DEPTH} maps and lists (kantup's limit)"
            ));
        }
        self.depth += 1;
        let result = step(self);
        self.depth -= 1;
        result
    }

    fn key_inner(&mut self, data: &mut Values, mut level: usize) -> Step<()> {
        let stop: &[char] = if self.literal() {
            &['=', '[', '.']
        } else {
            &['=', '[', ',', '.']
        };
        let (k, last) = self.runes_until(stop);
        match last {
            None => {
                if k.is_empty() {
                    return Err(Stop::Eof);
                }
                err(format!("key {} has no value", q(&k)))
            }
            Some('[') => {
                let i = self.key_index()?;
                let mut list = match data.get_mut(&k) {
                    Some(Value::Array(l)) => std::mem::take(l),
                    Some(other) => return Err(panic_msg(other, LIST_T)),
                    None => Vec::new(),
                };
                let res = self.list_item(&mut list, i, level);
                set(data, &k, Value::Array(list));
                res
            }
            Some('=') => self.key_value(data, &k),
            Some(',') => {
                set(data, &k, Value::String(String::new()));
                err(format!("key {} has no value (cannot end with ,)", q(&k)))
            }
            Some(_) => {
                // '.'
                level += 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                    ));
                }
                let existed = data.contains_key(&k);
                let mut inner = match data.get_mut(&k) {
                    Some(Value::Object(m)) => std::mem::take(m),
                    Some(other) => return Err(panic_msg(other, MAP_T)),
                    None => Map::new(),
                };
                let res = self.key(&mut inner, level);
                let empty = inner.is_empty();
                if existed || !empty {
                    set(data, &k, Value::Object(inner));
                }
                match res {
                    Ok(()) if empty => err(format!("key map {} has no value", q(&k))),
                    other => other,
                }
            }
        }
    }

    /// After `key=`: read the value as the flag kind wants it.
    fn key_value(&mut self, data: &mut Values, k: &str) -> Step<()> {
        match self.kind {
            SetKind::SetLiteral => {
                let (v, _) = self.runes_until(&[]);
                set(data, k, Value::String(v));
                Ok(())
            }
            SetKind::SetJson => {
                if self.empty_val() {
                    set(data, k, Value::Null);
                    return Ok(());
                }
                let v = self.json_value()?;
                set(data, k, v);
                self.empty_val();
                Ok(())
            }
            _ => match self.val_list() {
                Ok(list) => {
                    set(data, k, Value::Array(list));
                    Ok(())
                }
                Err(ListErr::Eof) => {
                    set(data, k, Value::String(String::new()));
                    Err(Stop::Eof)
                }
                Err(ListErr::NotList) => {
                    let (rs, _) = self.runes_until(&[',']);
                    let v = self.convert(&rs)?;
                    set(data, k, v);
                    Ok(())
                }
                Err(ListErr::Err(e)) => Err(Stop::Err(e)),
            },
        }
    }

    fn list_item_inner(&mut self, list: &mut Vec<Value>, i: i64, level: usize) -> Step<()> {
        if i < 0 {
            return err(format!("negative {i} index not allowed"));
        }
        let (k, last) = self.runes_until(&['[', '.', '=']);
        if !k.is_empty() {
            return err(format!("unexpected data at end of array index: {}", q(&k)));
        }
        match last {
            None => Err(Stop::Eof),
            Some('=') => match self.kind {
                SetKind::SetLiteral => {
                    let (v, _) = self.runes_until(&[]);
                    set_index(list, i, Value::String(v))
                }
                SetKind::SetJson => {
                    if self.empty_val() {
                        return set_index(list, i, Value::Null);
                    }
                    let v = self.json_value()?;
                    set_index(list, i, v)?;
                    self.empty_val();
                    Ok(())
                }
                _ => match self.val_list() {
                    Ok(vl) => set_index(list, i, Value::Array(vl)),
                    Err(ListErr::Eof) => set_index(list, i, Value::String(String::new())),
                    Err(ListErr::NotList) => {
                        let (rs, _) = self.runes_until(&[',']);
                        let v = self.convert(&rs)?;
                        set_index(list, i, v)
                    }
                    Err(ListErr::Err(e)) => Err(Stop::Err(e)),
                },
            },
            Some('[') => {
                let next = self.key_index()?;
                let mut current = Vec::new();
                if let Some(existing) = list.get_mut(i as usize) {
                    match existing {
                        Value::Null => {}
                        Value::Array(l) => current = std::mem::take(l),
                        other => return Err(panic_msg(other, LIST_T)),
                    }
                }
                let res = self.list_item(&mut current, next, level);
                if let Err(e) = res {
                    // Go returns the outer list unchanged; put back what we took.
                    if let Some(Value::Array(l)) = list.get_mut(i as usize) {
                        *l = current;
                    }
                    return Err(e);
                }
                set_index(list, i, Value::Array(current))
            }
            Some(_) => {
                // '.'
                let mut inner = Map::new();
                if let Some(existing) = list.get_mut(i as usize) {
                    match existing {
                        Value::Object(m) => inner = std::mem::take(m),
                        // Indices out of order: Helm replaces whatever is there with a map.
                        other => *other = Value::Object(Map::new()),
                    }
                }
                let res = self.key(&mut inner, level);
                if let Err(e) = res {
                    if let Some(slot) = list.get_mut(i as usize) {
                        *slot = Value::Object(inner);
                    }
                    return Err(e);
                }
                set_index(list, i, Value::Object(inner))
            }
        }
    }
}

fn set(data: &mut Values, key: &str, val: Value) {
    if key.is_empty() {
        return;
    }
    data.insert(key.to_string(), val);
}

fn set_index(list: &mut Vec<Value>, index: i64, val: Value) -> Step<()> {
    if index < 0 {
        return err(format!("negative {index} index not allowed"));
    }
    if index > MAX_INDEX {
        return err(format!(
            "index of {index} is greater than maximum supported index of {MAX_INDEX}"
        ));
    }
    let index = index as usize;
    if list.len() <= index {
        list.resize(index + 1, Value::Null);
    }
    list[index] = val;
    Ok(())
}
