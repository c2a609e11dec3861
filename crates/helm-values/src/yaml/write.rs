//! Writing values as YAML that Helm reads back to the same values.

use std::fmt::Write as _;
use std::io;
use std::ops::{Deref, DerefMut};

use serde_json::Value;

use super::resolve::{Resolved, looks_like_timestamp, resolve_plain};
use crate::value::Values;

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
    let mut out = Out::new(None);
    write_document(&mut out, v);
    out.text
}

/// [`to_yaml`] written to `sink` as it is made, a few dozen KiB at a time, instead of held
/// whole in memory.
///
/// ```
/// let v = serde_json::json!({"a": [1, "yes"], "big": 9007199254740993_i64});
/// let mut out = Vec::new();
/// let written = kantup_helm_values::yaml::write_yaml(&v, &mut out).unwrap();
/// assert_eq!(out, kantup_helm_values::yaml::to_yaml(&v).as_bytes());
/// assert!(written.lossy);
/// ```
pub fn write_yaml(v: &Value, sink: &mut dyn io::Write) -> io::Result<Written> {
    let mut out = Out::new(Some(sink));
    write_document(&mut out, v);
    out.flush();
    match out.failed {
        Some(e) => Err(e),
        None => Ok(Written { lossy: out.lossy }),
    }
}

/// What [`write_yaml`] found while writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Whether the values hold an integer that Helm reading the file gets back changed (see
    /// [`lossy_in_file`], which names where). Found on the way, so that the common case, none,
    /// costs no second pass over the values.
    pub lossy: bool,
}

fn write_document<'v>(out: &mut Out<'_, 'v>, v: &'v Value) {
    match v {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        other => {
            out.write_scalar(other);
            out.push('\n');
        }
    }
}

/// The text being written (`'v` is the values' lifetime): all of it for [`to_yaml`]; for
/// [`write_yaml`], what has not yet gone to the sink.
struct Out<'w, 'v> {
    text: String,
    sink: Option<&'w mut dyn io::Write>,
    /// The sink's first error; nothing more is sent after it.
    failed: Option<io::Error>,
    /// The entries of every map being written, innermost last, each map's sorted: one buffer
    /// instead of a vector per map.
    open_entries: Vec<(&'v String, &'v Value)>,
    /// Whether an integer a file cannot carry was written ([`Written::lossy`]).
    lossy: bool,
}

impl<'w> Out<'w, '_> {
    fn new(sink: Option<&'w mut dyn io::Write>) -> Self {
        Out {
            text: String::new(),
            sink,
            failed: None,
            open_entries: Vec::new(),
            lossy: false,
        }
    }

    /// A scalar value, noting an integer a file cannot carry.
    fn write_scalar(&mut self, v: &Value) {
        if let Value::Number(n) = v
            && !exact_in_file(n)
        {
            self.lossy = true;
        }
        write_scalar(&mut self.text, v);
    }

    /// How much text a sink is sent at once.
    const CHUNK: usize = 64 * 1024;

    /// Called where a map entry or sequence item ends (so at a line's end): sends the text to
    /// the sink once there is a chunk of it.
    fn entry_written(&mut self) {
        if self.sink.is_some() && self.text.len() >= Self::CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut()
            && self.failed.is_none()
            && let Err(e) = sink.write_all(self.text.as_bytes())
        {
            self.failed = Some(e);
        }
        self.text.clear();
    }
}

impl Deref for Out<'_, '_> {
    type Target = String;
    fn deref(&self) -> &String {
        &self.text
    }
}

impl DerefMut for Out<'_, '_> {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.text
    }
}

fn indent(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let run = left.min(SPACES.len());
        out.push_str(&SPACES[..run]);
        left -= run;
    }
}

fn write_map<'v>(out: &mut Out<'_, 'v>, m: &'v Values, ind: usize) {
    let from = out.open_entries.len();
    out.open_entries.extend(m.iter());
    out.open_entries[from..].sort_unstable_by(|a, b| a.0.cmp(b.0));
    for i in 0..m.len() {
        // By index: the entries of maps inside this one go on the buffer after these.
        let (k, v) = out.open_entries[from + i];
        if i > 0 {
            indent(out, ind);
        }
        write_yaml_string(out, k);
        out.push(':');
        write_child(out, v, ind + 2, false);
        out.entry_written();
    }
    out.open_entries.truncate(from);
}

fn write_seq<'v>(out: &mut Out<'_, 'v>, a: &'v [Value], ind: usize) {
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push('-');
        write_child(out, item, ind + 2, true);
        out.entry_written();
    }
}

/// Writes a child after `key:` or `-`.
fn write_child<'v>(out: &mut Out<'_, 'v>, v: &'v Value, ind: usize, in_seq: bool) {
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
            out.write_scalar(other);
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
///
/// ```
/// let v = serde_json::json!({"a": {"b": [1, 9007199254740993_i64]}, "c": 2.5, "d": 1});
/// assert_eq!(kantup_helm_values::yaml::lossy_in_file(&v), vec!["a.b[1]".to_string()]);
/// ```
pub fn lossy_in_file(v: &Value) -> Vec<String> {
    /// A step of the path to a value: a key or a list index.
    enum Step<'a> {
        Key(&'a str),
        Index(usize),
    }
    // The path is written out only for a value found (most files have none).
    fn walk<'a>(v: &'a Value, path: &mut Vec<Step<'a>>, out: &mut Vec<String>) {
        match v {
            Value::Number(n) if !exact_in_file(n) => {
                let mut text = String::new();
                for step in path.iter() {
                    match step {
                        Step::Key(k) if text.is_empty() => text.push_str(k),
                        Step::Key(k) => {
                            text.push('.');
                            text.push_str(k);
                        }
                        Step::Index(i) => {
                            let _ = write!(text, "[{i}]");
                        }
                    }
                }
                out.push(text);
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(Step::Key(k));
                    walk(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Whether a values file can carry number `n` exactly: floats always; integers as float64,
/// so within ±2^53.
fn exact_in_file(n: &serde_json::Number) -> bool {
    n.is_f64() || n.as_i64().is_some_and(|i| i.unsigned_abs() <= 1 << 53)
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
    if !s.bytes().all(|b| PLAIN_SAFE[b as usize]) {
        return false;
    }
    matches!(resolve_plain(s), Resolved::Str) && !looks_like_timestamp(s)
}

/// The bytes a plain scalar written by [`to_yaml`] may hold: ASCII letters, digits and `_./-`
/// (a table: this runs on every key and string written).
const PLAIN_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-');
        b += 1;
    }
    table
};

/// A YAML double-quoted scalar; escapes everything YAML would not read back verbatim.
fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters written as they are go in at once.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if c != '"' && c != '\\' && is_yaml_printable(c) {
            continue;
        }
        out.push_str(&s[run..i]);
        run = i + c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

fn is_yaml_printable(c: char) -> bool {
    let u = c as u32;
    // NEL, LS, PS are printable but are line breaks in YAML 1.1: escape them.
    matches!(u, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && !matches!(u, 0x2028 | 0x2029 | 0xFEFF)
}
