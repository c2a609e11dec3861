//! The values tree and Go-compatible JSON output.
//!
//! Values are `serde_json` maps. Numbers keep Helm's two kinds apart: `--set` produces `int64`
//! (stored as an integer [`serde_json::Number`]) while values files and `--set-json` produce
//! `float64` (stored as a float `Number`), exactly as Helm holds them in memory. That matters
//! for big numbers (`--set n=9007199254740993` keeps all digits, the same number from a file
//! does not) and for how `toJson` prints them.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// A values tree: what Helm calls `map[string]interface{}`.
pub type Values = Map<String, Value>;

/// Deepest nesting of maps and lists kantup builds: in a values document and the values it
/// expands to (aliases included), and in a `--set` expression. Helm's limit is 10000
/// (go-yaml's parser, Go's JSON decoder); kantup stops at 256 (its YAML reader already stops
/// flow collections at 255) so that every recursive pass over a values tree stays within a
/// 2 MiB thread stack even unoptimized. Real values files nest a few dozen levels at most.
pub const MAX_DEPTH: usize = 256;

/// A float64 value as Helm holds numbers read from YAML or JSON. `None` for NaN and infinities,
/// which Helm cannot carry through JSON either.
pub fn float(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

/// The Go type name Helm's panics print for a value (used to reproduce its error messages).
pub(crate) fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Converts every number to float64, as Go's `json.Unmarshal` into `interface{}` does.
pub(crate) fn numbers_to_float(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if !n.is_f64()
                && let Some(f) = n.as_f64()
                && let Some(x) = float(f)
            {
                *v = x;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_to_float),
        Value::Object(map) => map.values_mut().for_each(numbers_to_float),
        _ => {}
    }
}

/// Serializes like Go's `json.Marshal` (what Helm's `toJson` prints): keys sorted, `<>&`
/// escaped, floats in Go's shortest form (`1e+21`, `1e-7`).
///
/// ```
/// let v: serde_json::Value = serde_json::json!({"b": "<x>", "a": 1});
/// assert_eq!(kantup_helm_values::value::to_go_json(&v), r#"{"a":1,"b":"\u003cx\u003e"}"#);
/// ```
pub fn to_go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(&mut out, v);
    out
}

fn write_go_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_go_number(out, n),
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, k);
                out.push(':');
                write_go_json(out, &map[k]);
            }
            out.push('}');
        }
    }
}

fn write_go_number(out: &mut String, n: &Number) {
    if !n.is_f64() {
        if let Some(i) = n.as_i64() {
            let _ = write!(out, "{i}");
            return;
        }
        if let Some(u) = n.as_u64() {
            let _ = write!(out, "{u}");
            return;
        }
    }
    write_go_float(out, n.as_f64().unwrap_or(0.0));
}

/// Go's `json.Marshal` for a float64.
pub fn go_float(f: f64) -> String {
    let mut out = String::new();
    write_go_float(&mut out, f);
    out
}

fn write_go_float(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust: "1e21", "1.5e-7"; Go: "1e+21", "1.5e-07" cleaned to "1.5e-7".
        let start = out.len();
        let _ = write!(out, "{f:e}");
        if let Some(e) = out[start..].find('e')
            && !out[start + e + 1..].starts_with('-')
        {
            out.insert(start + e + 1, '+');
        }
    } else {
        // Rust prints integral floats without a fraction ("3", "-0"), as Go does.
        let _ = write!(out, "{f}");
    }
}

/// Bytes [`write_go_string`] must look at: control characters, `"`, `\\`, `<`, `>`, `&`, and
/// 0xE2 (the first byte of U+2028 and U+2029).
const GO_JSON_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xe2] = true;
    table
};

/// Go's JSON string: `"`, `\\` and control characters escaped, and `<`, `>`, `&`, U+2028 and
/// U+2029 as `\u` escapes (Go's HTML-safe default). Runs of other characters are copied whole.
fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !GO_JSON_SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let (escape, len): (&str, usize) = match b {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            0x08 => ("\\b", 1),
            0x0c => ("\\f", 1),
            b'<' => ("\\u003c", 1),
            b'>' => ("\\u003e", 1),
            b'&' => ("\\u0026", 1),
            0xe2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(0xa8)) => ("\\u2028", 3),
                (Some(0x80), Some(0xa9)) => ("\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                out.push_str(&s[run..i]);
                let _ = write!(out, "\\u{b:04x}");
                i += 1;
                run = i;
                continue;
            }
        };
        out.push_str(&s[run..i]);
        out.push_str(escape);
        i += len;
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formats() {
        let cases = [
            (1000.0, "1000"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (1e-10, "1e-10"),
            (0.000001, "0.000001"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (12345678901234567890.0, "12345678901234567000"),
            (-2.5e300, "-2.5e+300"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn go_json_escapes_like_go() {
        let v = serde_json::json!({"z": "a\u{8}\u{1}<&>\u{2028}é", "a": [1, null, true]});
        assert_eq!(
            to_go_json(&v),
            r#"{"a":[1,null,true],"z":"a\b\u0001\u003c\u0026\u003e\u2028é"}"#
        );
    }
}
