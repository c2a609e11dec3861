//! Values files read and written the way Helm reads them.
//!
//! Helm reads values with `sigs.k8s.io/yaml`: go-yaml v2 decodes the YAML (YAML 1.1 scalar
//! resolution: `yes`/`on`/`y` are booleans, `0x1F` and `017` are ints, `~` is null, plain
//! timestamps stay strings), the result is encoded to JSON and decoded again, so every number
//! becomes a float64 and every key a string (`1: a` has key `"1"`, `yes: a` key `"true"`).
//! [`parse_values`] reproduces that; [`to_yaml`] writes values so that Helm reading the file
//! gets the same values back (strings YAML 1.1 would re-type are quoted).

use crate::value::Values;

mod decode;
mod fast;
mod node;
mod resolve;
mod split;
mod write;

use decode::read_general_counting;
pub(crate) use decode::{ALIAS_BUDGET_FLAT_UP_TO, alias_budget_exceeded};
pub(crate) use node::{Node, parse_node};
pub(crate) use resolve::{plain_key, plain_value};
pub(crate) use write::yaml_string;
pub use write::{Written, lossy_in_file, to_yaml, write_yaml};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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

    /// A sink that counts its writes and can be made to fail.
    struct Sink {
        bytes: Vec<u8>,
        writes: usize,
        fail: bool,
    }

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.fail {
                return Err(std::io::Error::other("disk full"));
            }
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_yaml_streams_what_to_yaml_returns() {
        // Nested maps and lists over several chunks of output.
        let mut top = serde_json::Map::new();
        for i in 0..3000 {
            top.insert(
                format!("component{i}"),
                serde_json::json!({"on": "yes", "n": i, "list": [{"b": 1, "a": [1.5, null]}, "x"]}),
            );
        }
        let v = Value::Object(top);
        let mut sink = Sink {
            bytes: Vec::new(),
            writes: 0,
            fail: false,
        };
        let written = write_yaml(&v, &mut sink).unwrap();
        let whole = to_yaml(&v);
        assert!(whole.len() > 3 * 64 * 1024, "{}", whole.len());
        assert_eq!(String::from_utf8(sink.bytes).unwrap(), whole);
        assert!(sink.writes > 3, "written in {} pieces", sink.writes);
        assert!(!written.lossy);
    }

    #[test]
    fn write_yaml_reports_the_sink_error_and_lossy_integers() {
        let v = serde_json::json!({"a": {"b": [9007199254740993_i64]}, "c": 1});
        let mut failing = Sink {
            bytes: Vec::new(),
            writes: 0,
            fail: true,
        };
        let err = write_yaml(&v, &mut failing).unwrap_err();
        assert_eq!(err.to_string(), "disk full");

        let mut sink = Sink {
            bytes: Vec::new(),
            writes: 0,
            fail: false,
        };
        assert!(write_yaml(&v, &mut sink).unwrap().lossy);
        assert_eq!(lossy_in_file(&v), vec!["a.b[0]".to_string()]);
        // 2^53 itself and floats are carried exactly.
        let exact =
            serde_json::json!({"a": 9007199254740992_i64, "b": 1e300, "c": -9007199254740992_i64});
        assert!(!write_yaml(&exact, &mut sink).unwrap().lossy);
        assert!(lossy_in_file(&exact).is_empty());
        let beyond = serde_json::json!([-9007199254740993_i64]);
        assert!(write_yaml(&beyond, &mut sink).unwrap().lossy);
        assert!(
            write_yaml(&serde_json::json!(u64::MAX), &mut sink)
                .unwrap()
                .lossy
        );
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
