//! Hostile values files against the real helm 3.17 and 4.1: nested aliases (billion laughs)
//! are refused as helm refuses them ("document contains excessive aliasing", naming the file),
//! documents right at go-yaml's alias budget are accepted or refused exactly where helm
//! accepts or refuses them, and nesting past kantup's depth limit is a clear error.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Inputs, TestChart, Verdict, compare, helm_values, helms, write_file};
use kantup_helm_values::merge::ValueOptions;
use kantup_helm_values::value::MAX_DEPTH;

/// `levels` anchors, each a list of `fanout` aliases of the one before, then a key holding
/// `uses` aliases of the last: the classic billion laughs is (9, 9, 9).
fn laughs(levels: usize, fanout: usize, uses: usize) -> String {
    let mut out = format!("l0: &l0 [{}]\n", vec!["lol"; fanout].join(", "));
    for i in 1..levels {
        let items = vec![format!("*l{}", i - 1); fanout].join(", ");
        out.push_str(&format!("l{i}: &l{i} [{items}]\n"));
    }
    let items = vec![format!("*l{}", levels - 1); uses].join(", ");
    out.push_str(&format!("top: [{items}]\n"));
    out
}

/// [`laughs`] written with block sequences (the shape kantup's fast path reads, counting
/// aliased nodes itself).
fn laughs_block(levels: usize, fanout: usize, uses: usize) -> String {
    let list = |item: &str, n: usize| -> String { format!("- {item}\n").repeat(n) };
    let mut out = format!("l0: &l0\n{}", list("lol", fanout));
    for i in 1..levels {
        out.push_str(&format!(
            "l{i}: &l{i}\n{}",
            list(&format!("*l{}", i - 1), fanout)
        ));
    }
    out.push_str(&format!(
        "top:\n{}",
        list(&format!("*l{}", levels - 1), uses)
    ));
    out
}

fn merge_file(path: &Path) -> Result<(), String> {
    ValueOptions {
        value_files: vec![path.to_path_buf()],
        ..Default::default()
    }
    .merge_values()
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn billion_laughs_is_refused_like_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), "a: 1\n", "b: 2\n");
    let file = tmp.path().join("laughs.yaml");
    let text = laughs(9, 9, 9);
    for (shape, text) in [("block", laughs_block(9, 9, 9)), ("flow", text.clone())] {
        write_file(&file, &text);
        let started = Instant::now();
        let err = merge_file(&file).expect_err("refused");
        let elapsed = started.elapsed();
        assert_eq!(
            err,
            format!(
                "failed to parse {}: yaml: document contains excessive aliasing",
                file.display()
            )
        );
        println!(
            "kantup refused the {}-byte billion laughs ({shape}) in {elapsed:?}",
            text.len()
        );
    }
    for (name, helm) in helms() {
        let inputs = Inputs {
            files: vec![file.clone()],
            ..Default::default()
        };
        let started = Instant::now();
        let helm_err = helm_values(&helm, &chart.dir, &inputs).expect_err("helm refuses it");
        println!("{name} refused it in {:?}", started.elapsed());
        assert!(
            helm_err.contains("document contains excessive aliasing"),
            "{name}: {helm_err}"
        );
    }
}

/// Right at the budget: for each shape the number of uses where go-yaml starts refusing
/// (found with the real helm), one below and one above; kantup must agree on every one, and
/// produce helm's values where both accept.
#[test]
fn alias_budget_boundary_matches_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), "a: 1\n", "b: 2\n");
    // (levels, fanout, uses) around the boundary, plus merge keys and alias keys that spend
    // the same budget.
    let mut docs: Vec<String> = Vec::new();
    for (levels, fanout, uses) in [
        (3, 10, 2),
        (3, 10, 3),
        (4, 4, 6),
        (4, 4, 7),
        (5, 3, 5),
        (5, 3, 6),
    ] {
        docs.push(laughs(levels, fanout, uses));
        docs.push(laughs_block(levels, fanout, uses));
    }
    let maps = "m0: &m0 {a: 1, b: 2, c: 3}\nm1: &m1 {<<: [*m0, *m0, *m0], d: 4}\nm2: &m2 {<<: [*m1, *m1, *m1], e: 5}\nm3: &m3 {<<: [*m2, *m2, *m2]}\n";
    for uses in [2, 3, 10, 40] {
        let body: String = (0..uses).map(|i| format!("u{i}: {{<<: *m3}}\n")).collect();
        docs.push(format!("{maps}{body}"));
    }
    docs.push("k: &k key\n*k : v\n".to_string());
    let mut accepted = 0;
    let mut refused = 0;
    let mut failures = Vec::new();
    for (name, helm) in helms() {
        for (i, doc) in docs.iter().enumerate() {
            let dir = tmp.path().join(format!("{name}-{i}"));
            let file = dir.join("values.yaml");
            write_file(&file, doc);
            let inputs = Inputs {
                files: vec![file],
                ..Default::default()
            };
            match compare(&helm, &chart.dir, &inputs, &dir) {
                Verdict::Same => accepted += 1,
                Verdict::BothFailed { helm, kantup } => {
                    assert!(helm.contains("excessive aliasing"), "{helm}");
                    assert!(kantup.contains("excessive aliasing"), "{kantup}");
                    refused += 1;
                }
                Verdict::Mismatch(m) => failures.push(format!("{name} doc {i}:\n{doc}\n{m}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The cases straddle the boundary: both outcomes happen.
    assert!(
        accepted >= 8 && refused >= 6,
        "{accepted} accepted, {refused} refused"
    );
}

fn nested_flow(depth: usize) -> String {
    format!("a: {}x{}\n", "[".repeat(depth - 1), "]".repeat(depth - 1))
}

fn nested_block(depth: usize) -> String {
    let mut out = String::new();
    for level in 0..depth {
        out.push_str(&" ".repeat(level));
        out.push_str("k:\n");
    }
    out.push_str(&" ".repeat(depth));
    out.push_str("v\n");
    out
}

/// kantup reads documents up to `MAX_DEPTH` levels deep exactly as helm does, and refuses
/// deeper ones (helm goes to 10000) with an error naming the file and the limit instead of
/// risking the stack.
#[test]
fn nesting_up_to_the_limit_matches_helm_and_deeper_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), "a: 1\n", "b: 2\n");
    let (_, helm3) = &helms()[0];
    // The YAML reader allows 255 flow levels; block nesting goes to the limit.
    for (i, doc) in [nested_flow(255), nested_block(MAX_DEPTH)]
        .iter()
        .enumerate()
    {
        let dir = tmp.path().join(format!("ok{i}"));
        let file = dir.join("values.yaml");
        write_file(&file, doc);
        let inputs = Inputs {
            files: vec![file],
            ..Default::default()
        };
        match compare(helm3, &chart.dir, &inputs, &dir) {
            Verdict::Same => {}
            other => panic!("depth {MAX_DEPTH} case {i}: {other:?}"),
        }
    }
    let limit = "nested deeper than 256 maps and lists (kantup's limit; helm's is 10000)";
    let flow_limit = "flow collections ([...] and {...}) nested deeper than 255 (the YAML reader's limit; helm's is 10000)";
    let deep: Vec<(String, PathBuf, &str)> = [
        ("flow", nested_flow(257), flow_limit),
        ("flow, a million levels", "[".repeat(1_000_000), flow_limit),
        ("block", nested_block(MAX_DEPTH + 1), limit),
        ("block lists", "- ".repeat(MAX_DEPTH + 1) + "x\n", limit),
        (
            // Each part is within the limit; `b` with `a` expanded in it is not.
            "aliases",
            format!(
                "a: &a\n{}b: {{x: {{y: *a}}}}\n",
                nested_block(MAX_DEPTH - 2)
                    .lines()
                    .map(|l| format!("  {l}\n"))
                    .collect::<String>()
            ),
            limit,
        ),
    ]
    .into_iter()
    .map(|(name, doc, want)| {
        let file = tmp
            .path()
            .join(format!("{}.yaml", name.replace([' ', ','], "-")));
        write_file(&file, &doc);
        (name.to_string(), file, want)
    })
    .collect();
    for (name, file, want) in deep {
        let err = merge_file(&file).expect_err(&name);
        assert!(
            err.starts_with(&format!("failed to parse {}: yaml: ", file.display())),
            "{name}: {err}"
        );
        assert!(err.contains(want), "{name}: {err}");
    }
}
