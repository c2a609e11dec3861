//! Writing values as YAML that Helm reads back to the same values.

use std::fmt::Write as _;

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
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let run = left.min(SPACES.len());
        out.push_str(&SPACES[..run]);
        left -= run;
    }
}

fn write_map(out: &mut String, m: &Values, ind: usize) {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        write_yaml_string(out, k);
        out.push(':');
        write_child(out, v, ind + 2, false);
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
            Value::Number(n) if !n.is_f64() => {
                let exact = n.as_i64().is_some_and(|i| i.unsigned_abs() <= 1 << 53);
                if !exact {
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
