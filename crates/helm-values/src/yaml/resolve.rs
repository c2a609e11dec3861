//! Scalars as go-yaml v2 resolves them (YAML 1.1), and as sigs.k8s.io/yaml then hands them
//! to Helm: values through JSON (every number a float64) and keys as strings.

use std::borrow::Cow;

use saphyr_parser::ScalarStyle;
use serde_json::Value;

use crate::value::float;

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
pub(super) fn looks_like_timestamp(s: &str) -> bool {
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

pub(super) fn scalar_value(
    text: &str,
    style: ScalarStyle,
    tag: Option<&str>,
) -> Result<Value, String> {
    match (style, tag) {
        (_, Some("!!str")) => Ok(Value::String(text.to_string())),
        (ScalarStyle::Plain, _) => plain_value(text),
        (_, Some(t)) if t.starts_with("!!") && t != "!!binary" => plain_value(text),
        _ => Ok(Value::String(text.to_string())),
    }
}

/// The value of a plain scalar (or one tagged with a YAML type) as Helm reads it.
pub(crate) fn plain_value(text: &str) -> Result<Value, String> {
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

/// A plain scalar as a map key: the string sigs.k8s.io/yaml makes of what go-yaml resolved.
pub(crate) fn plain_key(text: &str) -> Result<String, String> {
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
