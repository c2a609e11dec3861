//! Reading a values file one top-level key at a time, so that a construct the fast path does
//! not read (an anchor, a block scalar, a tag...) sends only the top-level entries holding it
//! to the general reader, not the whole file.
//!
//! A values file is split before every line that starts, at column 0, with a plain key made of
//! letters, digits and `_./-` followed by `:` and a space or line end; every other line belongs
//! to the entry above it. Lines at column 0 that are neither such a key, a comment nor empty
//! (`---`, `%YAML`, `- item`, `"quoted": key`, `<<: *merge`, `? complex`, a tab...) make
//! [`read`] decline, as does text before the first key other than comments. Each entry is read
//! by the fast path; the entries it declines are read together, in their order, by the general
//! reader (so anchors and the aliases to them stay in one document).
//!
//! Reading the entries apart gives what reading the file gives, or [`read`] declines:
//! - a split inside a scalar or flow collection that continues at column 0 (`a: "x` / `b: y"`)
//!   leaves an entry that does not parse alone: declined;
//! - the general reader's errors and its alias budget are the whole file's: any error in the
//!   entries, or more than 100 nodes decoded through aliases (go-yaml's budget only starts to
//!   refuse past 100, and the entries read by the fast path hold no anchor or alias: it is asked
//!   to decline them, as an anchor in one entry may be the one an alias in another names), declines, and the whole file
//!   is read the general way, with its own error and line numbers;
//! - a key given twice (also as `yes` and `true`, which are one key) declines.

use serde_json::Value;

use super::{fast, read_general_counting};
use crate::value::Values;

/// Most nodes the general reader may decode through aliases in the entries it reads: at most
/// this many, go-yaml's excessive-aliasing rule cannot fire on the whole file either.
const MAX_ALIASED_NODES: u64 = 100;

/// Reads `text` as [`super::parse_values`] does, entry by entry, or `None` when the file cannot
/// be split (see the module docs) or one of its entries does not read.
pub(super) fn read(text: &str) -> Option<Values> {
    let entries = split(text)?;
    if entries.len() < 2 {
        return None;
    }
    // Each entry read fast, or kept for the general reader (None).
    let mut read_fast: Vec<Option<(String, Value)>> = Vec::with_capacity(entries.len());
    let mut general = String::new();
    let mut general_entries = 0;
    for entry in &entries {
        match fast::read_without_anchors(entry) {
            Some(values) if values.len() == 1 => read_fast.push(values.into_iter().next()),
            Some(_) => return None,
            None => {
                general.push_str(entry);
                if !entry.ends_with('\n') {
                    general.push('\n');
                }
                general_entries += 1;
                read_fast.push(None);
            }
        }
    }
    let mut general_values = if general_entries == 0 {
        Values::new().into_iter()
    } else {
        let (values, aliased) = read_general_counting(&general).ok()?;
        if aliased > MAX_ALIASED_NODES || values.len() != general_entries {
            return None;
        }
        values.into_iter()
    };
    let mut out = Values::with_capacity(entries.len());
    for entry in read_fast {
        let (key, value) = match entry {
            Some(kv) => kv,
            None => general_values.next()?,
        };
        out.insert(key, value);
    }
    // Fewer keys than entries: a key was given twice.
    (out.len() == entries.len()).then_some(out)
}

/// The top-level entries of `text` (each from its key line to the next), or `None` when a
/// line at column 0 is not a simple key, a comment or empty.
fn split(text: &str) -> Option<Vec<&str>> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut start: Option<usize> = None;
    let mut line = 0;
    while line < bytes.len() {
        let end = bytes[line..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| line + n + 1);
        match bytes[line] {
            b'\n' | b'#' => {}
            b' ' if start.is_some() => {}
            _ if is_key_line(&bytes[line..end]) => {
                if let Some(s) = start {
                    entries.push(&text[s..line]);
                }
                start = Some(line);
            }
            _ => return None,
        }
        line = end;
    }
    if let Some(s) = start {
        entries.push(&text[s..]);
    }
    Some(entries)
}

/// `key:` followed by a space or the line end, the key plain and simple (`[A-Za-z0-9_]` then
/// `[A-Za-z0-9_./-]`).
fn is_key_line(line: &[u8]) -> bool {
    let Some((&first, rest)) = line.split_first() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return false;
    }
    let key_end = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')))
        .unwrap_or(rest.len());
    rest.get(key_end) == Some(&b':') && matches!(rest.get(key_end + 1), None | Some(b' ' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Result<Values, String> {
        super::super::read_general(text)
    }

    fn same(text: &str) {
        let got = read(text);
        let want = general(text);
        if let Some(got) = got {
            let want = want.unwrap_or_else(|e| panic!("split read {text:?}, general: {e}"));
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn entries_with_anchors_and_block_scalars_go_to_the_general_reader_alone() {
        let text = "\
# values
base: &base {cpu: 1, mem: 2Gi}
plain:
  a: 1
  b: [x, y]
script: |
  echo hi
    indented
web:
  resources: *base
  other: yes
last: 'q'
";
        let got = read(text).expect("split");
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&general(text).unwrap()).unwrap()
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["base", "plain", "script", "web", "last"]
        );
    }

    #[test]
    fn declines_what_it_cannot_split_or_that_does_not_read_apart() {
        for text in [
            "a: \"x\nb: y\"\n",              // a quoted scalar continued at column 0
            "a: [x,\nb: y]\n",               // a flow sequence continued at column 0
            "a: 1\nyes: 2\ntrue: 3\n",       // one key twice
            "a: 1\na: 2\n",                  // one key twice
            "---\na: 1\nb: 2\n",             // a document marker
            "a: 1\n\"b\": 2\n",              // a quoted key
            "a: &x [1]\n<<: {c: 1}\nb: 2\n", // a merge key at the top
            "  a: 1\nb: 2\n",                // indented text before the first key
            "a: 1\n- b\n",                   // a sequence item at the top
            "a: 1\nb: *nope\n",              // an unknown alias: the general reader's error
            "a: 1\nb:c\n",                   // not a key
        ] {
            assert!(read(text).is_none(), "{text:?}");
            same(text);
        }
    }

    #[test]
    fn nested_aliases_past_the_budget_are_left_to_the_whole_file() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..4 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text.push_str("b: 1\n");
        assert!(read(&text).is_none());
        // A few aliases are read apart.
        assert!(read("x: &x {a: 1}\ny: *x\nz: 2\n").is_some());
    }

    /// Generated files of plain entries mixed with anchors, aliases, block scalars, tags and
    /// broken lines: whenever [`read`] reads one, the general reader reads the whole file to
    /// the same values in the same order.
    #[test]
    fn split_reading_agrees_with_the_general_reader() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        const ENTRIES: &[&str] = &[
            "a: 1\n",
            "b:\n  c: [1, 2]\n  d: {e: f}\n",
            "c: &anc\n  x: 1\n  y: two\n",
            "d: *anc\n",
            "e:\n  ref: *anc\n  more: yes\n",
            "f: |\n  line one\n   line two\n",
            "g: >-\n  folded\n  text\n\n  para\n",
            "h: !!str 123\n",
            "i:\n- 1\n- &item two\n- *item\n",
            "j: \"multi\nk: line\"\n",
            "l: [open,\nm: close]\n",
            "yes: 1\n",
            "true: 2\n",
            "n: 'x'\n# comment\n\n",
            "o:\n  <<: *anc\n  z: 3\n",
            "p: &anc other\n",
            "q: 0x1F\n",
            "r:\n  - a: 1\n    b: 2\n",
            "s: ~\n",
            "t: \"tab\\there\"\n",
        ];
        let mut rng = StdRng::seed_from_u64(0x5_9117);
        let (mut docs, mut split_read) = (0, 0);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..rng.random_range(1..8) {
                text.push_str(ENTRIES[rng.random_range(0..ENTRIES.len())]);
            }
            docs += 1;
            if read(&text).is_some() {
                split_read += 1;
            }
            same(&text);
        }
        println!("read split: {split_read} of {docs}");
        assert!(split_read * 8 > docs, "only {split_read} of {docs}");
    }
}
