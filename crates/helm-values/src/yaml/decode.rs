//! Decoding the general reader's node tree into values, counting nodes as go-yaml v2 does
//! for its alias budget.

use saphyr_parser::ScalarStyle;
use serde_json::{Map, Value};

use super::node::{Node, parse_node, too_deep};
use super::resolve::{plain_key, scalar_value};
use crate::value::{MAX_DEPTH, Values};

fn key_string(node: &Node) -> Result<String, String> {
    let Node::Scalar {
        text, style, tag, ..
    } = node.resolved()
    else {
        return Err("yaml: invalid map key: a collection cannot be a key".into());
    };
    match (style, tag.as_deref()) {
        (_, Some("!!str")) => Ok(text.clone()),
        (ScalarStyle::Plain, _) => plain_key(text),
        _ => Ok(text.clone()),
    }
}

/// Up to this many decoded nodes go-yaml allows its highest alias ratio; past it the allowed
/// ratio falls.
pub(crate) const ALIAS_BUDGET_FLAT_UP_TO: u64 = 400_000;

/// go-yaml's alias budget (`allowedAliasRatio`, the fix for CVE-2019-11253): a decode may
/// come from alias expansion for 99% of its nodes up to 400,000 decoded nodes, scaling down
/// to 10% at 4,000,000.
fn allowed_alias_ratio(decode_count: u64) -> f64 {
    const LOW: u64 = ALIAS_BUDGET_FLAT_UP_TO;
    const HIGH: u64 = 4_000_000;
    if decode_count <= LOW {
        0.99
    } else if decode_count >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decode_count - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// go-yaml's "excessive aliasing" rule, checked after each node it decodes: `aliased` of the
/// `decoded` nodes so far came through aliases.
pub(crate) fn alias_budget_exceeded(aliased: u64, decoded: u64) -> bool {
    aliased > 100
        && decoded > 1000
        && aliased as f64 / decoded as f64 > allowed_alias_ratio(decoded)
}

/// Turns a node tree into values as sigs.k8s.io/yaml hands them to Helm, counting nodes the
/// way go-yaml v2's decoder does (every node decoded, keys included; an alias's target once
/// per alias), so that a document Helm refuses for "excessive aliasing" (billion laughs) is
/// refused here too, after a bounded amount of work.
#[derive(Default)]
pub(super) struct Decoder {
    decode_count: u64,
    alias_count: u64,
    alias_depth: u32,
}

const EXCESSIVE_ALIASING: &str = "yaml: document contains excessive aliasing";

impl Decoder {
    /// go-yaml's `unmarshal` bookkeeping for one node.
    fn count(&mut self) -> Result<(), String> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        if alias_budget_exceeded(self.alias_count, self.decode_count) {
            return Err(EXCESSIVE_ALIASING.to_string());
        }
        Ok(())
    }

    /// The value of `node`, a collection `depth` levels down (the root map is at 1).
    fn value(&mut self, node: &Node, depth: usize) -> Result<Value, String> {
        let node = node.unanchored();
        self.count()?;
        match node {
            Node::Alias { target, .. } => {
                self.alias_depth += 1;
                let value = self.value(target, depth);
                self.alias_depth -= 1;
                value
            }
            Node::Scalar {
                text, style, tag, ..
            } => scalar_value(text, *style, tag.as_deref()),
            Node::Seq { items, .. } => {
                if depth > MAX_DEPTH {
                    return Err(too_deep(None));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.value(item, depth + 1)?);
                }
                Ok(Value::Array(out))
            }
            Node::Map { entries, .. } => {
                if depth > MAX_DEPTH {
                    return Err(too_deep(None));
                }
                let mut map = Map::with_capacity(entries.len());
                self.entries_into(&mut map, entries, depth)?;
                Ok(Value::Object(map))
            }
            Node::Anchored(_) => unreachable!("unanchored above"),
        }
    }

    /// Sets a map node's entries into `map` in order (later keys win), merging `<<` in place
    /// as go-yaml v2 does.
    fn entries_into(
        &mut self,
        map: &mut Values,
        entries: &[(Node, Node)],
        depth: usize,
    ) -> Result<(), String> {
        for (k, v) in entries {
            if let Node::Scalar {
                text,
                style: ScalarStyle::Plain,
                tag: None,
                ..
            } = k.unanchored()
                && text == "<<"
            {
                self.merge(map, v, depth)?;
                continue;
            }
            self.key(k)?;
            let key = key_string(k)?;
            let value = self.value(v, depth + 1)?;
            map.insert(key, value);
        }
        Ok(())
    }

    /// Counts a key node (a collection key is refused by `key_string`).
    fn key(&mut self, node: &Node) -> Result<(), String> {
        self.count()?;
        if let Node::Alias { .. } = node.unanchored() {
            // The alias, then its target, as go-yaml decodes it.
            self.alias_depth += 1;
            let counted = self.count();
            self.alias_depth -= 1;
            counted?;
        }
        Ok(())
    }

    /// go-yaml v2's `<<` merge: a map (or an alias of one), or a list of them merged last to
    /// first so that earlier ones win.
    fn merge(&mut self, map: &mut Values, src: &Node, depth: usize) -> Result<(), String> {
        const WANT_MAP: &str = "yaml: map merge requires map or sequence of maps as the value";
        let is_map = |n: &Node| matches!(n.resolved(), Node::Map { .. });
        match src.unanchored() {
            Node::Map { .. } | Node::Alias { .. } if is_map(src) => self.merge_map(map, src, depth),
            Node::Seq { items, .. } => {
                for item in items.iter().rev() {
                    if !is_map(item) {
                        return Err(WANT_MAP.into());
                    }
                    self.merge_map(map, item, depth)?;
                }
                Ok(())
            }
            _ => Err(WANT_MAP.into()),
        }
    }

    /// Decodes a map node (directly or through aliases) into `map`, counting as go-yaml does.
    fn merge_map(&mut self, map: &mut Values, node: &Node, depth: usize) -> Result<(), String> {
        let node = node.unanchored();
        self.count()?;
        match node {
            Node::Alias { target, .. } => {
                self.alias_depth += 1;
                let merged = self.merge_map(map, target, depth);
                self.alias_depth -= 1;
                merged
            }
            Node::Map { entries, .. } => self.entries_into(map, entries, depth),
            _ => unreachable!("checked to be a map"),
        }
    }
}

/// [`super::parse_values`] through the general reader (saphyr's events, a node tree,
/// decoding), also giving how many nodes were decoded through aliases.
pub(super) fn read_general_counting(text: &str) -> Result<(Values, u64), String> {
    let Some(node) = parse_node(text)? else {
        return Ok((Map::new(), 0));
    };
    let mut decoder = Decoder::default();
    // The document node counts once, as in go-yaml.
    decoder.count()?;
    let value = decoder.value(&node, 1)?;
    let aliased = decoder.alias_count;
    match value {
        Value::Object(m) => Ok((m, aliased)),
        Value::Null => Ok((Map::new(), aliased)),
        other => Err(format!(
            "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "object",
    }
}
