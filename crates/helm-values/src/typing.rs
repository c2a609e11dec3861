//! How `--set` types a scalar (Helm's `typedVal`).
//!
//! `true`/`false`/`null` in any case become bool/null; `0` and any base-10 int64 without a
//! leading `0` become an integer; everything else stays a string. `--set-string` types nothing.

use serde_json::Value;

/// Types `raw` as `--set` does (`string_only` is `--set-string`).
pub fn typed_value(raw: &str, string_only: bool) -> Value {
    if string_only {
        return Value::String(raw.to_string());
    }
    if go_equal_fold(raw, "true") {
        return Value::Bool(true);
    }
    if go_equal_fold(raw, "false") {
        return Value::Bool(false);
    }
    if go_equal_fold(raw, "null") {
        return Value::Null;
    }
    if raw == "0" {
        return Value::from(0i64);
    }
    if !raw.is_empty()
        && !raw.starts_with('0')
        && let Some(i) = go_parse_int10(raw)
    {
        return Value::from(i);
    }
    Value::String(raw.to_string())
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits only, in range.
fn go_parse_int10(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `strings.EqualFold` against an ASCII lowercase word: simple Unicode case folding,
/// under which the long s (U+017F) equals `s` and the Kelvin sign (U+212A) equals `k`.
fn go_equal_fold(s: &str, ascii_lower: &str) -> bool {
    let mut it = s.chars();
    for want in ascii_lower.chars() {
        let Some(c) = it.next() else { return false };
        let folded = match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        };
        if folded != want {
            return false;
        }
    }
    it.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typing_table() {
        let cases: &[(&str, Value)] = &[
            ("true", json!(true)),
            ("TRUE", json!(true)),
            ("False", json!(false)),
            ("fal\u{17F}e", json!(false)),
            ("null", Value::Null),
            ("NULL", Value::Null),
            ("0", json!(0)),
            ("00", json!("00")),
            ("012", json!("012")),
            ("12", json!(12)),
            ("-12", json!(-12)),
            ("-012", json!(-12)),
            ("+7", json!(7)),
            ("1e3", json!("1e3")),
            ("1.5", json!("1.5")),
            ("yes", json!("yes")),
            ("", json!("")),
            ("9223372036854775807", json!(9223372036854775807i64)),
            ("9223372036854775808", json!("9223372036854775808")),
            ("1_000", json!("1_000")),
            ("0x1F", json!("0x1F")),
        ];
        for (raw, want) in cases {
            assert_eq!(&typed_value(raw, false), want, "{raw:?}");
            assert_eq!(typed_value(raw, true), json!(raw), "{raw:?} as string");
        }
    }
}
