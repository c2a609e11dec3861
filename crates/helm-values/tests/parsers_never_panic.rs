//! Property tests: the `--set` family parser and the values-file reader return an error for
//! bad input and never panic, whatever the input; and a values tree kantup writes reads back
//! as the same tree.

use kantup_helm_values::strvals::{HelmVersion, SetKind, parse_into_as};
use kantup_helm_values::value::to_go_json;
use kantup_helm_values::yaml::{parse_values, to_yaml};
use proptest::prelude::*;
use serde_json::Value;

const KINDS: [SetKind; 5] = [
    SetKind::Set,
    SetKind::SetString,
    SetKind::SetFile,
    SetKind::SetJson,
    SetKind::SetLiteral,
];

/// Text made mostly of the `--set` grammar's own characters.
fn set_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-c]{1,2}|[.=,\\[\\]{}\\\\\"]|[0-9]{1,3}|-1|65537|null|true| |\\{\"x\":[1,2]\\})*",
    )
    .unwrap()
}

/// Text made mostly of YAML's structural characters.
fn yaml_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-c]{1,3}|: |- |\n|  |[\\[\\]{},]|&[ab] |\\*[ab]|<<: |!!str |'|\"|#|0x1F|yes|~|\\? |\\|\n|>\n|---\n)*",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn set_expressions_parse_or_fail(
        expr in prop_oneof![any::<String>(), set_like()],
        kind in 0usize..5,
        v4 in any::<bool>(),
    ) {
        let helm = if v4 { HelmVersion::V4 } else { HelmVersion::V3 };
        let mut dest = serde_json::Map::new();
        let mut reader = |path: &str| -> std::io::Result<Value> { Ok(Value::String(path.to_string())) };
        let _ = parse_into_as(&expr, KINDS[kind], &mut dest, Some(&mut reader), helm);
        // A second expression on top of whatever the first one built.
        let _ = parse_into_as(&expr, SetKind::Set, &mut dest, None, helm);
    }

    #[test]
    fn values_documents_parse_or_fail(text in prop_oneof![any::<String>(), yaml_like()]) {
        if let Ok(values) = parse_values(&text, "values.yaml") {
            // What kantup writes, Helm (and kantup) read back as the same values.
            let tree = Value::Object(values);
            let written = to_yaml(&tree);
            let back = parse_values(&written, "written.yaml")
                .unwrap_or_else(|e| panic!("{written:?} does not read back: {e}"));
            prop_assert_eq!(to_go_json(&Value::Object(back)), to_go_json(&tree));
        }
    }
}

/// Deep `--set` nesting that Helm bounds nowhere (`a[0][0]...`, `a[0].a[0]...`) is refused
/// with a clear error instead of recursing as deep as the expression is long.
#[test]
fn deeply_nested_set_expressions_are_refused() {
    for expr in [
        format!("a{}=1", "[0]".repeat(50_000)),
        format!("{}=1", "a[0].".repeat(20_000) + "a"),
    ] {
        let mut dest = serde_json::Map::new();
        let err = parse_into_as(&expr, SetKind::Set, &mut dest, None, HelmVersion::V3)
            .expect_err("refused");
        assert!(
            err.to_string()
                .contains("nested deeper than 256 maps and lists"),
            "{err}"
        );
    }
    // 200 levels are fine.
    let mut dest = serde_json::Map::new();
    parse_into_as(
        &format!("a{}=1", "[0]".repeat(200)),
        SetKind::Set,
        &mut dest,
        None,
        HelmVersion::V3,
    )
    .unwrap();
}
