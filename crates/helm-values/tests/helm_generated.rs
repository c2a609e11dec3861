//! 5,000 generated cases (fixed seed) compared with the real helm 3.17 and 4.1.
//!
//! Cases are batched: case `i` lives under its own key `c{i}` (in the parent, in subchart
//! `sub`, in its alias `alias1` and in `global`), so one `helm template` renders 250 cases at
//! once and they cannot interfere. A case kantup rejects is run alone, and helm must reject it
//! too. Zero mismatches allowed, in the values and in `helm -f <kantup's merged file>`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{Inputs, TestChart, Verdict, compare, helms, write_file};
use kantup_helm_values::strvals::SetKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const CASES: usize = 5000;
const BATCH: usize = 250;
const SEED: u64 = 0x6b616e74;
/// Error cases re-run alone per batch (each costs two helm runs).
const ERRORS_PER_BATCH: usize = 3;

const KEYS: &[&str] = &["a", "b", "c", "l", "a", "b", "y", "on"];
const YAML_SCALARS: &[&str] = &[
    "yes",
    "no",
    "on",
    "off",
    "y",
    "N",
    "true",
    "False",
    "~",
    "null",
    "0x1F",
    "017",
    "08",
    "1e3",
    "1.5",
    "-0.0",
    "12",
    "007",
    "'quoted'",
    "\"dq\"",
    "2001-01-01",
    "1_000",
    ".5",
    "abc",
    "a b",
    "9007199254740993",
    "+1",
    "0",
    "''",
    "tRUE",
    "0o17",
    "-12",
    "1e21",
    "0.1",
    "x:y",
];
const SET_SCALARS: &[&str] = &[
    "true",
    "FALSE",
    "null",
    "Null",
    "0",
    "00",
    "012",
    "12",
    "-5",
    "+7",
    "1e3",
    "1.5",
    "yes",
    "",
    "abc",
    "9223372036854775807",
    "a\\,b",
    "{x,y}",
    "{1,true}",
    "{}",
    "on",
    "-0",
    "0x10",
    "a b",
];
const JSON_VALUES: &[&str] = &[
    "1",
    "1.5",
    "1e3",
    "\"s\"",
    "null",
    "true",
    "[1,\"a\"]",
    "{\"a\":1,\"b\":{\"c\":null}}",
    "",
    "12345678901234567890",
    "\"yes\"",
    "[]",
    "{}",
];
const LITERAL_VALUES: &[&str] = &["a,b", "{x}", "null", "x=y", "", "true", "1"];

struct Case {
    parent_default: String,
    sub_default: String,
    global_default: String,
    files: [String; 2],
    flags: Vec<(SetKind, String)>,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Keys that usually hold maps, scalars and lists. Types are mostly consistent so most cases
/// merge cleanly; one key in ten is drawn from all of them, which makes type conflicts (a map
/// over a scalar, an index into a map, ...) the rest of the time.
const MAP_KEYS: &[&str] = &["a", "b", "y", "on"];
const LEAF_KEYS: &[&str] = &["c", "d", "n"];
const LIST_KEYS: &[&str] = &["l"];

fn any_key(rng: &mut StdRng, usual: &[&'static str]) -> &'static str {
    if rng.random_bool(0.1) {
        pick(rng, KEYS)
    } else {
        pick(rng, usual)
    }
}

fn flow_list(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..4);
    let items: Vec<&str> = (0..n).map(|_| pick(rng, YAML_SCALARS)).collect();
    format!(" [{}]\n", items.join(", "))
}

/// A random YAML map body at `indent` (as the text after `key:`).
fn yaml_tree(rng: &mut StdRng, indent: usize, depth: usize) -> String {
    if depth == 0 || rng.random_bool(0.1) {
        return if rng.random_bool(0.5) {
            " null\n".into()
        } else {
            format!(" {}\n", pick(rng, YAML_SCALARS))
        };
    }
    let mut out = String::from("\n");
    let n = rng.random_range(1..4);
    for _ in 0..n {
        let value = match rng.random_range(0..3) {
            0 => (
                any_key(rng, MAP_KEYS),
                yaml_tree(rng, indent + 2, depth - 1),
            ),
            1 => (
                any_key(rng, LEAF_KEYS),
                format!(" {}\n", pick(rng, YAML_SCALARS)),
            ),
            _ => (any_key(rng, LIST_KEYS), flow_list(rng)),
        };
        let _ = write!(out, "{}{}:{}", " ".repeat(indent), value.0, value.1);
    }
    out
}

/// A `--set` key path below a case root, and whether it ends at a list key (no index).
fn key_path(rng: &mut StdRng) -> (String, bool) {
    let mut p = String::new();
    for _ in 0..rng.random_range(0..3) {
        let _ = write!(p, "{}.", any_key(rng, MAP_KEYS));
    }
    match rng.random_range(0..4) {
        0 => {
            let _ = write!(p, "{}[{}]", any_key(rng, LIST_KEYS), rng.random_range(0..4));
            match rng.random_range(0..4) {
                0 => {
                    let _ = write!(p, ".{}", any_key(rng, LEAF_KEYS));
                }
                1 => {
                    let _ = write!(p, "[{}]", rng.random_range(0..3));
                }
                _ => {}
            }
            (p, false)
        }
        1 => {
            p.push_str(any_key(rng, LIST_KEYS));
            (p, true)
        }
        _ => {
            p.push_str(any_key(rng, LEAF_KEYS));
            (p, false)
        }
    }
}

const ROOTS: &[&str] = &["", "sub.", "alias1.", "global."];

fn gen_case(rng: &mut StdRng, i: usize) -> Case {
    let id = format!("c{i}");
    let default_tree = |rng: &mut StdRng, indent: usize| {
        if rng.random_bool(0.7) {
            format!(
                "{}{id}:{}",
                " ".repeat(indent),
                yaml_tree(rng, indent + 2, 3)
            )
        } else {
            String::new()
        }
    };
    let parent_default = default_tree(rng, 0);
    let sub_default = default_tree(rng, 0);
    let global_default = default_tree(rng, 2);
    let mut files = [String::new(), String::new()];
    for file in &mut files {
        for (root, indent) in [("", 0), ("sub", 2), ("alias1", 2), ("global", 2)] {
            if rng.random_bool(0.3) {
                let tree = format!(
                    "{}{id}:{}",
                    " ".repeat(indent),
                    yaml_tree(rng, indent + 2, 3)
                );
                if root.is_empty() {
                    file.push_str(&tree);
                } else {
                    let _ = write!(file, "{root}:\n{tree}");
                }
            }
        }
    }
    let mut flags = Vec::new();
    for _ in 0..rng.random_range(0..5) {
        let root = pick(rng, ROOTS);
        let kind = match rng.random_range(0..20) {
            0..=9 => SetKind::Set,
            10..=12 => SetKind::SetString,
            13..=16 => SetKind::SetJson,
            _ => SetKind::SetLiteral,
        };
        let mut expr = String::new();
        let parts = if kind == SetKind::SetLiteral {
            1
        } else {
            rng.random_range(1..4)
        };
        for n in 0..parts {
            if n > 0 {
                expr.push(',');
            }
            let (path, is_list) = key_path(rng);
            let value = match kind {
                SetKind::Set | SetKind::SetString if is_list && rng.random_bool(0.7) => {
                    pick(rng, &["{x,y}", "{1,true,null}", "{}", "{a\\,b}"])
                }
                SetKind::Set | SetKind::SetString => pick(rng, SET_SCALARS),
                SetKind::SetJson => pick(rng, JSON_VALUES),
                _ => pick(rng, LITERAL_VALUES),
            };
            let _ = write!(expr, "{root}{id}.{path}={value}");
        }
        flags.push((kind, expr));
    }
    Case {
        parent_default,
        sub_default,
        global_default,
        files,
        flags,
    }
}

fn write_inputs(dir: &Path, cases: &[&Case]) -> Inputs {
    let mut inputs = Inputs::default();
    for slot in 0..2 {
        // Merge the cases' fragments of one file: each top-level root once.
        let mut top = String::new();
        let mut nested: [(String, String); 3] = [
            ("sub".into(), String::new()),
            ("alias1".into(), String::new()),
            ("global".into(), String::new()),
        ];
        for case in cases {
            let mut current: Option<usize> = None;
            for line in case.files[slot].lines() {
                match line {
                    "sub:" => current = Some(0),
                    "alias1:" => current = Some(1),
                    "global:" => current = Some(2),
                    l if !l.starts_with(' ') => {
                        current = None;
                        top.push_str(l);
                        top.push('\n');
                    }
                    l => match current {
                        Some(n) => {
                            nested[n].1.push_str(l);
                            nested[n].1.push('\n');
                        }
                        None => {
                            top.push_str(l);
                            top.push('\n');
                        }
                    },
                }
            }
        }
        let mut text = top;
        for (root, body) in nested {
            if !body.is_empty() {
                let _ = write!(text, "{root}:\n{body}");
            }
        }
        let path = dir.join(format!("file{slot}.yaml"));
        write_file(&path, &text);
        inputs.files.push(path);
    }
    for case in cases {
        inputs.flags.extend(case.flags.iter().cloned());
    }
    inputs
}

/// Names the cases whose values differ between two rendered JSON documents.
fn differing_cases(a: &str, b: &str) -> String {
    let (Ok(a), Ok(b)) = (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) else {
        return format!("{a}\n{b}");
    };
    let mut out = Vec::new();
    let mut walk = |prefix: &str, a: &Value, b: &Value| {
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return;
        };
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if a.get(k) != b.get(k) && k.starts_with('c') {
                out.push(format!(
                    "{prefix}{k}: helm {:?} kantup {:?}",
                    a.get(k),
                    b.get(k)
                ));
            }
        }
    };
    walk("", &a, &b);
    for root in ["sub", "alias1", "global"] {
        walk(&format!("{root}."), &a[root], &b[root]);
        walk(
            &format!("{root}.global."),
            &a[root]["global"],
            &b[root]["global"],
        );
    }
    out.truncate(8);
    out.join("\n")
}

#[test]
fn generated_cases_match_helm3() {
    generated_cases_match(0);
}

#[test]
fn generated_cases_match_helm4() {
    generated_cases_match(1);
}

fn generated_cases_match(which: usize) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let cases: Vec<Case> = (0..CASES).map(|i| gen_case(&mut rng, i)).collect();
    if let Ok(n) = std::env::var("KANTUP_SHOW_CASE") {
        let c = &cases[n.parse::<usize>().unwrap()];
        eprintln!(
            "parent:\n{}\nsub:\n{}\nglobal:\n{}\nfile0:\n{}\nfile1:\n{}\nflags: {:?}",
            c.parent_default, c.sub_default, c.global_default, c.files[0], c.files[1], c.flags
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (name, helm) = helms().swap_remove(which);
    let (name, compared, errors, failures) =
        run_version(name, &helm, &tmp.path().join(name), &cases);
    eprintln!(
        "{name}: {compared} cases compared in batches, {errors} error cases checked alone, {} mismatches",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        compared >= CASES * 3 / 4,
        "{name}: only {compared} cases merged cleanly"
    );
}

fn run_version(
    name: &str,
    helm: &Path,
    root: &Path,
    cases: &[Case],
) -> (String, usize, usize, Vec<String>) {
    let mut failures = Vec::new();
    let (mut compared, mut errors) = (0, 0);
    for (b, batch) in cases.chunks(BATCH).enumerate() {
        let dir = root.join(format!("batch{b}"));
        let mut parent = String::new();
        let mut sub = String::new();
        let mut global = String::from("global:\n");
        for case in batch {
            parent.push_str(&case.parent_default);
            sub.push_str(&case.sub_default);
            global.push_str(&case.global_default);
        }
        parent.push_str(&global);
        let chart = TestChart::standard(&dir, &parent, &sub);
        // Classify with kantup alone (merge errors never depend on the chart).
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (j, case) in batch.iter().enumerate() {
            let alone = write_inputs(&dir.join(format!("alone{j}")), &[case]);
            match alone.options().merge_values() {
                Ok(_) => ok.push(case),
                Err(_) => bad.push((j, alone)),
            }
        }
        let mut inputs = write_inputs(&dir.join("batch"), &ok);
        inputs.helm = common::helm_version(helm);
        match compare(helm, &chart.dir, &inputs, &dir.join("work")) {
            Verdict::Same => compared += ok.len(),
            Verdict::BothFailed { helm: h, kantup: k } => failures.push(format!(
                "{name} batch {b}: both failed: helm {h} kantup {k}"
            )),
            Verdict::Mismatch(m) => {
                let detail = match (
                    common::helm_values(helm, &chart.dir, &inputs),
                    common::kantup_values(&chart.dir, &inputs),
                ) {
                    (Ok(h), Ok((_, k))) => differing_cases(&h, &k),
                    _ => String::new(),
                };
                failures.push(format!(
                    "{name} batch {b}: {}\n{detail}",
                    &m[..m.len().min(3000)]
                ));
            }
        }
        for (j, alone) in bad.into_iter().take(ERRORS_PER_BATCH) {
            match compare(helm, &chart.dir, &alone, &dir.join(format!("alone{j}"))) {
                Verdict::BothFailed { .. } => errors += 1,
                v => failures.push(format!(
                    "{name} batch {b} case {j} (kantup rejects it): {v:?} flags {:?}",
                    alone.flags
                )),
            }
        }
    }
    (name.to_string(), compared, errors, failures)
}
