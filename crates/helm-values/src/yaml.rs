//! Values files read and written the way Helm reads them.
//!
//! Helm reads values with `sigs.k8s.io/yaml`: go-yaml v2 decodes the YAML (YAML 1.1 scalar
//! resolution: `yes`/`on`/`y` are booleans, `0x1F` and `017` are ints, `~` is null, plain
//! timestamps stay strings), the result is encoded to JSON and decoded again, so every number
//! becomes a float64 and every key a string (`1: a` has key `"1"`, `yes: a` key `"true"`).
//! [`parse_values`] reproduces that; [`to_yaml`] writes values so that Helm reading the file
//! gets the same values back (strings YAML 1.1 would re-type are quoted).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Value};

use crate::value::{MAX_DEPTH, Values, float};

mod fast;
mod split;

/// A parsed YAML node with its position (char indices into the source).
#[derive(Debug, Clone)]
#[allow(dead_code)] // spans are used by relocation
pub(crate) enum Node {
    Scalar {
        text: String,
        style: ScalarStyle,
        tag: Option<String>,
        span: Span,
    },
    Seq {
        items: Vec<Node>,
        span: Span,
    },
    Map {
        entries: Vec<(Node, Node)>,
        span: Span,
    },
    /// A node with an anchor (`&name`), shared with the aliases that name it.
    Anchored(Rc<Node>),
    /// An alias (`*name`): the anchored node, shared rather than copied, so a document of
    /// nested aliases costs what its text costs until it is expanded (with a budget).
    Alias {
        target: Rc<Node>,
        span: Span,
    },
}

#[allow(dead_code)]
impl Node {
    /// Where the node is written (for an alias: the `*name` itself).
    pub(crate) fn span(&self) -> Span {
        match self {
            Node::Scalar { span, .. }
            | Node::Seq { span, .. }
            | Node::Map { span, .. }
            | Node::Alias { span, .. } => *span,
            Node::Anchored(node) => node.span(),
        }
    }

    /// The node itself, through its anchor or alias.
    pub(crate) fn resolved(&self) -> &Node {
        match self {
            Node::Anchored(node) | Node::Alias { target: node, .. } => node.resolved(),
            other => other,
        }
    }

    /// The node without its anchor (an alias stays an alias).
    fn unanchored(&self) -> &Node {
        match self {
            Node::Anchored(node) => node,
            other => other,
        }
    }
}

/// Parses the first document of `text` into a node tree (`None` for an empty stream).
/// Refuses nesting deeper than [`MAX_DEPTH`].
pub(crate) fn parse_node(text: &str) -> Result<Option<Node>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    // Open collections: (node under construction, anchor id, pending key for maps).
    let mut stack: Vec<(Node, usize, Option<Node>)> = Vec::new();
    let mut root: Option<Node> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            if e.info() == "recursion limit exceeded" {
                // The YAML reader counts flow levels in a byte.
                format!(
                    "yaml: line {}: flow collections ([...] and {{...}}) nested deeper than 255 (the YAML reader's limit; helm's is 10000)",
                    e.marker().line()
                )
            } else {
                format!("yaml: line {}: {}", e.marker().line(), e.info())
            }
        })?;
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || matches!(event, Event::StreamEnd) {
                    break;
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t: Cow<'_, saphyr_parser::Tag>| {
                    if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
                        format!("!!{}", t.suffix)
                    } else {
                        format!("{}{}", t.handle, t.suffix)
                    }
                });
                Some((
                    Node::Scalar {
                        text: text.into_owned(),
                        style,
                        tag,
                        span,
                    },
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let target = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("yaml: line {}: unknown anchor", span.start.line()))?;
                Some((Node::Alias { target, span }, 0))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(Some(span.start.line())));
                }
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq {
                        items: Vec::new(),
                        span,
                    }
                } else {
                    Node::Map {
                        entries: Vec::new(),
                        span,
                    }
                };
                stack.push((node, anchor, None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor, _) = stack.pop().ok_or("yaml: unbalanced collection")?;
                match &mut node {
                    Node::Seq { span: s, .. } | Node::Map { span: s, .. } => s.end = span.end,
                    _ => {}
                }
                Some((node, anchor))
            }
        };
        if let Some((mut node, anchor)) = finished {
            if anchor != 0 {
                let shared = Rc::new(node);
                anchors.insert(anchor, shared.clone());
                node = Node::Anchored(shared);
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some((Node::Seq { items, .. }, _, _)) => items.push(node),
                Some((Node::Map { entries, .. }, _, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                Some(_) => unreachable!("only sequences and maps are open"),
            }
        }
    }
    Ok(root)
}

fn too_deep(line: Option<usize>) -> String {
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    format!(
        "yaml: {at}nested deeper than {MAX_DEPTH} maps and lists (kantup's limit; helm's is 10000)"
    )
}

/// A scalar as go-yaml v2 resolves it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// The text itself, a string.
    Str,
}

/// go-yaml v2's `resolve` for a plain (untagged, unquoted) scalar.
pub(crate) fn resolve_plain(s: &str) -> Resolved {
    // Every word below and every number starts with one of these (most keys and strings do not).
    let first = s.as_bytes().first().copied().unwrap_or(b'~');
    if !matches!(
        first,
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O'
    ) && !matches!(first, b'~' | b'.' | b'+' | b'-' | b'0'..=b'9')
    {
        return Resolved::Str;
    }
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    if first == b'.' {
        if let Some(f) = go_parse_float(s) {
            return Resolved::Float(f);
        }
    } else if first.is_ascii_digit() || first == b'+' || first == b'-' {
        if looks_like_timestamp(s) {
            return Resolved::Str;
        }
        let plain: Cow<'_, str> = if s.contains('_') {
            Cow::Owned(s.chars().filter(|&c| c != '_').collect())
        } else {
            Cow::Borrowed(s)
        };
        if let Some(i) = go_parse_int_base0(&plain) {
            return Resolved::Int(i);
        }
        if is_yaml_style_float(&plain)
            && let Some(f) = go_parse_float(&plain)
        {
            return Resolved::Float(f);
        }
    }
    Resolved::Str
}

/// go-yaml v2 only tries timestamps for strings starting `YYYY-`; they stay strings when
/// decoded into `interface{}`. We keep any such candidate a string (a date that fails to parse
/// as one is a string too, unless it is a number, which `YYYY-` never is).
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint(s, 0, 64)`: sign, then `0x`/`0o`/`0b`
/// prefix or a leading `0` for octal.
fn go_parse_int_base0(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = match body.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &body[2..]),
        [b'0', b'o' | b'O', ..] => (8, &body[2..]),
        [b'0', b'b' | b'B', ..] => (2, &body[2..]),
        [b'0', _, ..] => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()? as i128;
    let v = if neg { -mag } else { mag };
    if neg {
        (v >= i64::MIN as i128).then_some(v)
    } else if v <= i64::MAX as i128 {
        Some(v)
    } else if s.starts_with('+') {
        // ParseUint accepts no sign.
        None
    } else {
        Some(v)
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input; out-of-range is an error there.
fn go_parse_float(s: &str) -> Option<f64> {
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Parses a values document as Helm does (see the module docs). `origin` names the file in
/// errors. An empty document is an empty map; a document that is not a map is an error.
///
/// ```
/// let v = kantup_helm_values::yaml::parse_values("a: yes\nb: 0x1F\nc: ~\n", "values.yaml").unwrap();
/// assert_eq!(serde_json::Value::Object(v), serde_json::json!({"a": true, "b": 31.0, "c": null}));
/// ```
pub fn parse_values(text: &str, origin: &str) -> crate::Result<Values> {
    // The fast path first; when it declines, entry by entry: what the fast path does not read
    // then costs the general reader only the top-level entries holding it.
    if let Some(values) = fast::read(text).or_else(|| split::read(text)) {
        return Ok(values);
    }
    read_general(text).map_err(|message| crate::Error::Yaml {
        origin: origin.to_string(),
        message,
    })
}

/// [`parse_values`] through the general reader: saphyr's events, a node tree, decoding.
fn read_general(text: &str) -> Result<Values, String> {
    read_general_counting(text).map(|(values, _)| values)
}

/// [`read_general`], also giving how many nodes were decoded through aliases.
fn read_general_counting(text: &str) -> Result<(Values, u64), String> {
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

fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    match (style, tag) {
        (_, Some("!!str")) => Ok(Value::String(text.to_string())),
        (ScalarStyle::Plain, _) => plain_value(text),
        (_, Some(t)) if t.starts_with("!!") && t != "!!binary" => plain_value(text),
        _ => Ok(Value::String(text.to_string())),
    }
}

/// The value of a plain scalar (or one tagged with a YAML type) as Helm reads it.
fn plain_value(text: &str) -> Result<Value, String> {
    Ok(match resolve_plain(text) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => float(i as f64).expect("finite"),
        Resolved::Float(f) => {
            float(f).ok_or_else(|| format!("json: unsupported value: {}", go_special(f)))?
        }
        Resolved::Str => Value::String(text.to_string()),
    })
}

fn go_special(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

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

/// A plain scalar as a map key: the string sigs.k8s.io/yaml makes of what go-yaml resolved.
fn plain_key(text: &str) -> Result<String, String> {
    Ok(match resolve_plain(text) {
        Resolved::Str => text.to_string(),
        Resolved::Int(i) => i.to_string(),
        Resolved::Bool(b) => b.to_string(),
        Resolved::Float(f) if f.is_nan() => ".nan".into(),
        Resolved::Float(f) if f.is_infinite() => {
            if f > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            }
        }
        Resolved::Float(f) => go_format_g32(f),
        Resolved::Null => {
            return Err("unsupported map key of type: %!s(<nil>)".into());
        }
    })
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`.
fn go_format_g32(f: f64) -> String {
    let f = f as f32;
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) || exp >= 21 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
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
struct Decoder {
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

/// Writes values as YAML that Helm reads back to the same values. Keys are sorted (as
/// `helm get values` writes them); strings that YAML 1.1 would read as something else, or that
/// need escapes, are double-quoted.
///
/// ```
/// let v = serde_json::json!({"on": "yes", "n": 3, "s": "plain"});
/// let text = kantup_helm_values::yaml::to_yaml(&v);
/// assert_eq!(text, "\"n\": 3\n\"on\": \"yes\"\ns: plain\n");
/// ```
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            write_scalar(&mut out, other);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, m: &Values, ind: usize) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        write_yaml_string(out, k);
        out.push(':');
        write_child(out, &m[k], ind + 2, false);
    }
}

fn write_seq(out: &mut String, a: &[Value], ind: usize) {
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push('-');
        write_child(out, item, ind + 2, true);
    }
}

/// Writes a child after `key:` or `-`.
fn write_child(out: &mut String, v: &Value, ind: usize, in_seq: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            if in_seq {
                out.push(' ');
                write_map(out, m, ind);
            } else {
                out.push('\n');
                indent(out, ind);
                write_map(out, m, ind);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            indent(out, ind);
            write_seq(out, a, ind);
        }
        other => {
            out.push(' ');
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                // Debug keeps a fraction or exponent, so the number reads back as a float
                // ("-0.0" stays negative zero, 1e21 stays 1e21).
                let _ = write!(out, "{:?}", n.as_f64().unwrap_or(0.0));
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_yaml_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Paths of integers that no values file can carry: Helm reads every number in a file as a
/// float64, so an int64 from `--set` beyond ±2^53 changes when written to a file. Callers
/// warn about these (or pass them as `--set` instead).
pub fn lossy_in_file(v: &Value) -> Vec<String> {
    fn walk(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::Number(n) if !n.is_f64() => {
                let exact = n.as_i64().is_some_and(|i| i.unsigned_abs() <= 1 << 53);
                if !exact {
                    out.push(path);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}[{i}]"), out);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(x, p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// A string as a YAML scalar: plain when that is unambiguous, else double-quoted.
pub(crate) fn yaml_string(s: &str) -> String {
    let mut out = String::new();
    write_yaml_string(&mut out, s);
    out
}

fn write_yaml_string(out: &mut String, s: &str) {
    if is_safe_plain(s) {
        out.push_str(s);
    } else {
        write_double_quoted(out, s);
    }
}

fn is_safe_plain(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == b'_' || first == b'/') {
        return false;
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
    {
        return false;
    }
    matches!(resolve_plain(s), Resolved::Str) && !looks_like_timestamp(s)
}

/// A YAML double-quoted scalar; escapes everything YAML would not read back verbatim.
fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_yaml_printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

fn is_yaml_printable(c: char) -> bool {
    let u = c as u32;
    // NEL, LS, PS are printable but are line breaks in YAML 1.1: escape them.
    matches!(u, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && !matches!(u, 0x2028 | 0x2029 | 0xFEFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::to_go_json;

    /// (YAML scalar as written, toJson of the value Helm reads).
    const SCALARS: &[(&str, &str)] = &[
        ("yes", "true"),
        ("Yes", "true"),
        ("YES", "true"),
        ("y", "true"),
        ("Y", "true"),
        ("on", "true"),
        ("ON", "true"),
        ("no", "false"),
        ("n", "false"),
        ("off", "false"),
        ("tRUE", r#""tRUE""#),
        ("~", "null"),
        ("", "null"),
        ("Null", "null"),
        ("0x1F", "31"),
        ("0o17", "15"),
        ("017", "15"),
        ("08", "8"),
        ("0b101", "5"),
        ("-0x1F", "-31"),
        ("1_000", "1000"),
        ("1e3", "1000"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("1e21", "1e+21"),
        ("12345678901234567890", "12345678901234567000"),
        ("9007199254740993", "9007199254740992"),
        ("2001-12-14", r#""2001-12-14""#),
        (
            "2001-12-14t21:59:43.10-05:00",
            r#""2001-12-14t21:59:43.10-05:00""#,
        ),
        ("1e400", r#""1e400""#),
        ("'yes'", r#""yes""#),
        ("\"0x1F\"", r#""0x1F""#),
        ("!!str 12", r#""12""#),
        ("1.0", "1"),
        ("-0.0", "-0"),
        ("+12", "12"),
        ("_1", r#""_1""#),
        ("0.", "0"),
        ("1:2", r#""1:2""#),
    ];

    #[test]
    fn yaml11_scalars_table() {
        for (scalar, want) in SCALARS {
            let doc = format!("k: {scalar}\n");
            let v = parse_values(&doc, "t").unwrap_or_else(|e| panic!("{scalar}: {e}"));
            assert_eq!(to_go_json(&v["k"]), *want, "scalar {scalar:?}");
        }
    }

    #[test]
    fn keys_become_strings() {
        let v = parse_values("1: a\nyes: b\n~x: c\n1.5: d\n", "t").unwrap();
        assert_eq!(
            to_go_json(&Value::Object(v)),
            r#"{"1":"a","1.5":"d","true":"b","~x":"c"}"#
        );
    }

    #[test]
    fn not_a_map_is_an_error_naming_the_file() {
        let err = parse_values("- a\n", "my-values.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("my-values.yaml"), "{err}");
        assert!(parse_values("a: .nan\n", "f").is_err());
        assert!(parse_values("a: [\n", "f").is_err());
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = parse_values("base: &b {x: 1, z: 2}\nd:\n  <<: *b\n  z: 3\n", "t").unwrap();
        assert_eq!(to_go_json(&v["d"]), r#"{"x":1,"z":3}"#);
    }

    #[test]
    fn written_yaml_reads_back_identically() {
        let v = serde_json::json!({
            "s": ["yes", "on", "0x1F", "017", "1e3", "", "null", "~", "2001-01-01", "a: b",
                   "- x", "#c", "multi\nline", "tab\t", "\u{85}nel", "é", "true", "1_000", ".5"],
            "n": [1, -5, 1.5, 1e21, 1e-7, -0.0, 9007199254740993i64],
            "e": {}, "l": [], "nested": [{"a": [1, {"b": null}]}, [[]]],
            "yes": true, "1": "x",
        });
        let text = to_yaml(&v);
        let back = parse_values(&text, "t").unwrap();
        let mut want = v.clone();
        crate::value::numbers_to_float(&mut want);
        assert_eq!(
            to_go_json(&Value::Object(back)),
            to_go_json(&want),
            "{text}"
        );
    }
}
