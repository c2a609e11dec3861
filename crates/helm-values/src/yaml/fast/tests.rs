use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Scalars with the characters that end, continue or change plain and quoted scalars.
const SCALARS: &[&str] = &[
    "a",
    "abc",
    "a b",
    "a  b",
    "yes",
    "No",
    "on",
    "~",
    "null",
    "0x1F",
    "017",
    "08",
    "1e3",
    "1.5",
    "-0.0",
    "+12",
    "-12",
    "1_000",
    ".5",
    ".inf",
    ".nan",
    "-.inf",
    "2001-01-01",
    "9007199254740993",
    "x:y",
    "x: y",
    "x :y",
    "a#b",
    "a #b",
    "-a",
    "--a",
    "---",
    "- a",
    "-",
    "?a",
    "? a",
    ":a",
    ": a",
    "a,b",
    "a, b",
    "[a]",
    "{a}",
    "a]",
    "a}",
    "a -]",
    "a -,",
    "'q'",
    "'it''s'",
    "'a\"b'",
    "\"dq\"",
    "\"a\\\"b\"",
    "\"\\u00e9\\x41\\n\\t\\\\ \\/\"",
    "\"\\ud800\"",
    "\"\\q\"",
    "\"\\U0001F600\"",
    "''",
    "\"\"",
    "'a",
    "\"a",
    "é",
    "日本",
    "a'b",
    "a\"b",
    "<<",
    "<a",
    "=",
    "$x",
    "~x",
    "a|b",
    "|",
    ">",
    "&a",
    "*a",
    "!!str",
    "!x",
    "%x",
    "@x",
    "`x",
    "a\\b",
    "http://x:80/p",
    "a:",
    "a: ",
    "1:2",
    "true",
    "TRUE",
    "tRUE",
    "0o17",
    "0b101",
    "1e400",
    "-",
    ".",
    "..",
    "...",
    "#",
    "a # b",
    "a  ",
    " a",
    "a -",
    "a - b",
    "a ?",
    "a :",
    "a :b",
    "a !",
    "a &",
    "a *",
    "a '",
    "a \"",
    "a [",
    "a {",
    "a |",
    "a >",
    "a %",
    "a @",
    "a `",
    "a ---",
    "a ...",
    "... a",
    "--- a",
    "-- a",
    "a:b:c",
];
/// Scalars the fast path reads (most of a document is made of these).
const COMMON: &[&str] = &[
    "a",
    "abc",
    "a b",
    "yes",
    "on",
    "~",
    "null",
    "0x1F",
    "017",
    "1e3",
    "1.5",
    "-12",
    "1_000",
    ".5",
    "2001-01-01",
    "x:y",
    "a#b",
    "-a",
    "'q'",
    "'it''s'",
    "\"dq\"",
    "\"a\\\"b\"",
    "é",
    "\"\\u00e9\\x41\\n\"",
    "''",
    "<a",
    "$x",
    "a|b",
    "http://x:80/p",
    "1:2",
    "tRUE",
    "a -b",
];
const KEYS: &[&str] = &[
    "a", "b", "key", "a b", "1", "1.5", "yes", "'q'", "\"dq\"", "\"a b\"", "x:y", "-a", "é",
    "'<<'", "0x1F", "''", "a#b", "\"k\" ", "k ", "~", "null", "<<", "? k",
];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn scalar(rng: &mut StdRng) -> &'static str {
    if rng.random_bool(0.9) {
        pick(rng, COMMON)
    } else {
        pick(rng, SCALARS)
    }
}

fn key(rng: &mut StdRng) -> &'static str {
    if rng.random_bool(0.97) {
        pick(rng, &KEYS[..20])
    } else {
        pick(rng, KEYS)
    }
}

fn comment(rng: &mut StdRng) -> &'static str {
    match rng.random_range(0..30) {
        0..=3 => " # c",
        4 => "  #c: d",
        5 => "#x",
        6..=8 => "  ",
        _ => "",
    }
}

fn flow(rng: &mut StdRng, depth: usize) -> String {
    let sp = if rng.random_bool(0.2) { "" } else { " " };
    let n = rng.random_range(0..4);
    let items: Vec<String> = (0..n)
        .map(|_| {
            if depth > 0 && rng.random_bool(0.3) {
                flow(rng, depth - 1)
            } else {
                scalar(rng).to_string()
            }
        })
        .collect();
    if rng.random_bool(0.5) {
        format!("[{sp}{}{sp}]", items.join(&format!(",{sp}")))
    } else {
        let entries: Vec<String> = items
            .iter()
            .map(|v| {
                let colon = pick(rng, &[": ", ": ", ": ", ":", " : ", ":  "]);
                format!("{}{colon}{v}", key(rng))
            })
            .collect();
        format!("{{{sp}{}{sp}}}", entries.join(&format!(",{sp}")))
    }
}

/// A block node as the text after `key:` (or `-`), its lines at `indent`.
/// Anchor names; an alias names one of them, defined or not.
const ANCHORS: &[&str] = &["a", "b2", "c.d", "e-f"];

/// Lines of block scalars, as written after the scalar's indentation.
const BLOCK_LINES: &[&str] = &[
    "text",
    "a: b",
    "# not a comment",
    "- item",
    "x  ",
    "  more indented",
    "'q' \"dq\" \\n",
    "",
    "",
];

/// A block scalar as the text after `key:` (or `-`), its lines deeper than `indent`.
fn block_scalar(rng: &mut StdRng, indent: usize, out: &mut String) {
    let header = pick(
        rng,
        &[
            "|", "|-", "|+", ">", ">-", ">+", "| # c", ">-  #c", "|2", "|#",
        ],
    );
    out.push(' ');
    out.push_str(header);
    out.push('\n');
    let at = indent + rng.random_range(1..4);
    for _ in 0..rng.random_range(0..5) {
        // Now and then a line of spaces, which the fast path declines.
        let line = if rng.random_bool(0.02) {
            "   "
        } else {
            pick(rng, BLOCK_LINES)
        };
        if !line.is_empty() {
            out.push_str(&" ".repeat(at));
        }
        out.push_str(line);
        out.push('\n');
    }
    for _ in 0..rng.random_range(0..3) {
        out.push('\n');
    }
}

fn node(rng: &mut StdRng, indent: usize, depth: usize, out: &mut String) {
    let step = rng.random_range(1..5);
    let choice = rng.random_range(0..13);
    if choice < 11 && rng.random_bool(0.15) {
        out.push_str(" &");
        out.push_str(pick(rng, ANCHORS));
    }
    match choice {
        0..=3 if depth > 0 => {
            out.push_str(comment(rng));
            out.push('\n');
            map(rng, indent + step, depth - 1, out);
        }
        4..=5 if depth > 0 => {
            out.push_str(comment(rng));
            out.push('\n');
            // Sequences may sit at their key's indentation.
            let at = if rng.random_bool(0.4) {
                indent
            } else {
                indent + step
            };
            seq(rng, at, depth - 1, out);
        }
        6 => {
            out.push(' ');
            out.push_str(&flow(rng, 2));
            out.push_str(comment(rng));
            out.push('\n');
        }
        7 => {
            // The value on the next line.
            out.push('\n');
            out.push_str(&" ".repeat(indent + step));
            out.push_str(scalar(rng));
            out.push('\n');
        }
        8 | 9 => block_scalar(rng, indent, out),
        11 if rng.random_bool(0.3) => {
            out.push_str(" *");
            out.push_str(pick(rng, ANCHORS));
            out.push_str(comment(rng));
            out.push('\n');
        }
        _ => {
            out.push(' ');
            out.push_str(scalar(rng));
            out.push_str(comment(rng));
            out.push('\n');
        }
    }
}

fn map(rng: &mut StdRng, indent: usize, depth: usize, out: &mut String) {
    for _ in 0..rng.random_range(1..4) {
        out.push_str(&" ".repeat(indent));
        out.push_str(key(rng));
        out.push_str(pick(rng, &[":", ":", ":", " :"]));
        node(rng, indent, depth, out);
        if rng.random_bool(0.1) {
            out.push_str(&" ".repeat(rng.random_range(0..6)));
            out.push_str(pick(rng, &["# comment\n", "\n"]));
        }
    }
}

fn seq(rng: &mut StdRng, indent: usize, depth: usize, out: &mut String) {
    for _ in 0..rng.random_range(1..4) {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match rng.random_range(0..4) {
            0 if depth > 0 => {
                // A compact map: its keys line up after the dash.
                let gap = rng.random_range(1..4);
                out.push_str(&" ".repeat(gap));
                let mut inner = String::new();
                map(rng, indent + 1 + gap, depth - 1, &mut inner);
                out.push_str(&inner[indent + 1 + gap..]);
            }
            _ => node(rng, indent, depth, out),
        }
    }
}

/// A near miss: a line re-indented, a character inserted or deleted, two lines joined.
fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let i = rng.random_range(0..lines.len());
    match rng.random_range(0..5) {
        0 => lines[i].insert(0, ' '),
        4 => {
            let chars: Vec<char> = lines[i].chars().collect();
            if !chars.is_empty() {
                let at = rng.random_range(0..chars.len());
                lines[i] = chars[..at].iter().chain(&chars[at + 1..]).collect();
            }
        }
        1 => {
            if lines[i].starts_with(' ') {
                lines[i].remove(0);
            }
        }
        2 => {
            let chars: Vec<char> = lines[i].chars().collect();
            let at = rng.random_range(0..=chars.len());
            let c = pick(
                rng,
                &[
                    ":", " ", "#", "-", "'", "\"", ",", "[", "}", "\t", "&", "\\",
                ],
            );
            let mut s: String = chars[..at].iter().collect();
            s.push_str(c);
            s.extend(&chars[at..]);
            lines[i] = s;
        }
        _ => {
            if i + 1 < lines.len() {
                let next = lines.remove(i + 1);
                lines[i].push_str(&next);
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Whenever the fast path reads a document, the general reader reads the same values, in
/// the same order; and the fast path does read most plain documents.
/// Whether the fast path read `text`; when it did, its result must be the general reader's.
fn agrees_with_general_reader(text: &str) -> bool {
    let Some(got) = read(text) else {
        return false;
    };
    let want = super::super::read_general(text)
        .unwrap_or_else(|e| panic!("fast path read {text:?}, general reader: {e}"));
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap(),
        "{text}"
    );
    true
}

#[test]
fn fast_path_agrees_with_general_reader() {
    let mut rng = StdRng::seed_from_u64(0x6661_7374);
    // Generated documents, and near misses of them (most of which it declines).
    let (mut docs, mut valid, mut fast, mut fast_mutated) = (0, 0, 0, 0);
    for round in 0..30_000 {
        let mut text = String::new();
        let depth = rng.random_range(1..5);
        map(&mut rng, 0, depth, &mut text);
        let mutated = round % 2 == 1;
        if mutated {
            for _ in 0..rng.random_range(1..4) {
                text = mutate(&mut rng, &text);
            }
        } else {
            docs += 1;
            if super::super::read_general(&text).is_ok() {
                valid += 1;
            }
        }
        if agrees_with_general_reader(&text) {
            if mutated {
                fast_mutated += 1;
            } else {
                fast += 1;
            }
        }
    }
    println!(
        "fast path read {fast} of {docs} generated documents ({valid} valid), {fast_mutated} of {docs} near misses"
    );
    assert!(
        fast * 3 > valid * 2,
        "only {fast} of {valid} valid documents read by the fast path"
    );

    // Small documents, every scalar and key in every position.
    let (mut docs, mut fast) = (0, 0);
    for _ in 0..20_000 {
        let k = pick(&mut rng, KEYS);
        let (a, b) = (pick(&mut rng, SCALARS), pick(&mut rng, SCALARS));
        let text = match rng.random_range(0..8) {
            // Around YAML's 1024-character limit for implicit keys.
            7 => format!("{}: {a}\n", "k".repeat(rng.random_range(990..1040))),
            0 => format!("{k}: {a}\n"),
            1 => format!("{k}: [{a}, {b}]\n"),
            2 => format!("{k}: {{{a}: {b}}}\n"),
            3 => format!("{k}:\n- {a}\n- {b}\n"),
            4 => format!("{k}:\n  - {a}: {b}\n"),
            5 => format!("{k}:\n  {a}\n"),
            _ => format!("{k}: {a} {b}\n"),
        };
        docs += 1;
        if agrees_with_general_reader(&text) {
            fast += 1;
        }
    }
    println!("fast path read {fast} of {docs} small documents");
    assert!(
        fast * 3 > docs,
        "only {fast} of {docs} read by the fast path"
    );
}

#[test]
fn typical_values_take_the_fast_path() {
    let text = "\
# Default values.
replicaCount: 1
image:
  repository: nginx   # the image
  pullPolicy: IfNotPresent
  tag: \"1.25\"
imagePullSecrets: []
podAnnotations: {}
securityContext: {capabilities: {drop: [ALL]}, runAsUser: 1000}
service:
  type: ClusterIP
  port: 80
ingress:
  enabled: false
  hosts:
    - host: chart-example.local
      paths:
        - path: /
          pathType: ImplementationSpecific
  tls: []
env:
- name: A
  value: 'it''s'
- {name: B, value: \"x\\ty\"}
nodeSelector:
tolerations:
  -
    key: k
";
    let got = read(text).expect("read by the fast path");
    let want = super::super::read_general(text).unwrap();
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap()
    );
    assert_eq!(read(""), Some(Map::new()));
    assert_eq!(read("# only a comment\n\n"), Some(Map::new()));
}

#[test]
fn declines_what_it_does_not_read() {
    for text in [
        "a: |2\n  x\n",
        "a: |\n  x\n   \n  y\n",
        "a: |\n  x",
        "a: |+\n  x\n\n# c\nb: 1\n",
        "a: |\nb: 1\n",
        "a: |#\n  x\n",
        "a:\n  b: |\n  x\n",
        "a: &x 1\nb: &y *x\n",
        "a: &x\n  b: *x\n",
        "a: *x\n",
        "&x a: 1\n",
        "a: [&x 1]\n",
        "a: &x 1\nb: [*x]\n",
        "a:\n- &x k: v\n",
        "a: &x 1\n*x: 1\n",
        "a: &x !!str 1\n",
        "a: &x#c 1\n",
        "a: &x 1\nb: *x:\n",
        "a: !!str 1\n",
        "<<: {a: 1}\n",
        "? a\n: b\n",
        "%YAML 1.1\n---\na: 1\n",
        "---\na: 1\n",
        "a: 1\n---\nb: 2\n",
        "a: b\n  c\n",
        "a: 'b\n  c'\n",
        "a: [b,\n  c]\n",
        "a:\tb\n",
        "a: b\r\n",
        "\u{feff}a: b\n",
        "a: \u{85}\n",
        "- a\n",
        "a\n",
        "a: b: c\n",
        "a: ~\n~: b\n",
        "a: .nan\n",
        "a: \"\\q\"\n",
        "a: [b -]\n",
        "a: {b: c #x}\n",
        "a:\n  b: 1\n c: 2\n",
    ] {
        assert!(read(text).is_none(), "{text:?}");
    }
}

/// Characters the fast path declines are found wherever they are, also across the
/// 64-byte chunks it checks at once; other non-ASCII characters are read.
#[test]
fn unusual_characters_are_found_anywhere() {
    for at in 50..140 {
        let pad = "x".repeat(at);
        for (c, read_fast) in [
            ("\u{2028}", false),
            ("\u{feff}", false),
            ("\u{85}", false),
            ("\t", false),
            ("é", true),
            ("日", true),
        ] {
            let text = format!("k: {pad}{c}y\n");
            assert_eq!(read(&text).is_some(), read_fast, "{c:?} at {at}");
        }
    }
}

/// Block scalars and anchors, read by the fast path, with the values Helm gives them
/// (`helm_table_cases` checks the same shapes against helm).
#[test]
fn block_scalars_and_anchors_take_the_fast_path() {
    let text = "\
lead: |


  x
lit: |
  line1

  line3
    indented
strip: |-
  s


keep: |+
  k


fold: >
  a
  b

  c
spaced: >
  a
    b

  c
  d
fk: >+ # comment
  z

list:
- |
  one
- >-
  two
  three
- k: |
    nested # not a comment
  j: 1
base: &base
  x: 1
  list: [a, b]
s: &s str
n: &n
use: {}
copies:
- *base
- *s
- *n
- &item {k: v}
- *item
s2: &s 2
later: *s
last: |
  at the end
";
    let got = read(text).expect("read by the fast path");
    let want = super::super::read_general(text).unwrap();
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap()
    );
    let got = Value::Object(got);
    assert_eq!(got["lead"], "\n\nx\n");
    assert_eq!(got["lit"], "line1\n\nline3\n  indented\n");
    assert_eq!(got["strip"], "s");
    assert_eq!(got["keep"], "k\n\n\n");
    assert_eq!(got["fold"], "a b\nc\n");
    assert_eq!(got["spaced"], "a\n  b\n\nc d\n");
    assert_eq!(got["fk"], "z\n\n");
    assert_eq!(got["list"][0], "one\n");
    assert_eq!(got["list"][1], "two three");
    assert_eq!(got["list"][2]["k"], "nested # not a comment\n");
    assert_eq!(
        got["copies"][0],
        serde_json::json!({"x": 1.0, "list": ["a", "b"]})
    );
    assert_eq!(got["copies"][1], "str");
    assert_eq!(got["copies"][2], Value::Null);
    assert_eq!(got["copies"][4], serde_json::json!({"k": "v"}));
    assert_eq!(got["later"], 2.0);
    assert_eq!(got["last"], "at the end\n");
}

/// Aliases around go-yaml's budget: the fast path reads what the general reader reads, and
/// declines what it refuses for excessive aliasing (the agreement check panics otherwise).
#[test]
fn aliases_near_the_budget_agree_with_the_general_reader() {
    let mut refused = 0;
    for anchored in [1, 5, 20, 99] {
        for aliases in [1, 10, 30, 101, 300, 1000] {
            for plain in [0, 10, 500, 2000] {
                let mut text = String::from("anchor: &a\n");
                for i in 0..anchored {
                    text.push_str(&format!("  k{i}: v\n"));
                }
                for i in 0..plain {
                    text.push_str(&format!("p{i}: x\n"));
                }
                text.push_str("aliases:\n");
                for _ in 0..aliases {
                    text.push_str("- *a\n");
                }
                if super::super::read_general(&text).is_err() {
                    refused += 1;
                    assert!(read(&text).is_none(), "{anchored} {aliases} {plain}");
                } else {
                    assert!(
                        agrees_with_general_reader(&text),
                        "{anchored} {aliases} {plain}"
                    );
                }
            }
        }
    }
    assert!(refused > 0, "no case reached the budget");
}
