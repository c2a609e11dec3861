//! Surgical edits of a YAML document: set the scalar at a values path, keeping every other
//! byte (comments, order, layout, quoting style of the edited scalar) as it was.

use saphyr_parser::ScalarStyle;

use crate::yaml::{Node, parse_node, yaml_string};

/// Why a value could not be set; names the values path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The document is not YAML.
    #[error("{0}")]
    Yaml(String),
    /// A segment on the way holds something other than a map.
    #[error("{path}: is not a map")]
    NotAMap {
        /// The values path up to that segment.
        path: String,
    },
    /// The path ends at a list or map.
    #[error("{path}: is not a scalar")]
    NotAScalar {
        /// The values path.
        path: String,
    },
    /// The text around the value is not laid out as its parse says (a flow map without its
    /// closing brace, a quoted scalar without its quotes).
    #[error("{path}: {reason}")]
    Layout {
        /// The values path.
        path: String,
        /// What could not be found.
        reason: &'static str,
    },
}

/// Sets the scalar at `path` (map keys) to the string `value`; creates missing keys. Returns the
/// new text, or an error naming the path when a segment holds a list or a scalar.
///
/// ```
/// let text = "# c\nimage:\n  repository: a/b # keep\n  tag: \"1\"\n";
/// let out = kantup_helm_values::yaml_edit::set_scalar(text, &["image", "repository"], "r/x/b").unwrap();
/// assert_eq!(out, "# c\nimage:\n  repository: r/x/b # keep\n  tag: \"1\"\n");
/// ```
pub fn set_scalar(text: &str, path: &[&str], value: &str) -> Result<String, EditError> {
    let chars: Vec<char> = text.chars().collect();
    let byte_at = |ci: usize| -> usize {
        chars[..ci.min(chars.len())]
            .iter()
            .map(|c| c.len_utf8())
            .sum()
    };
    let root = parse_node(text).map_err(EditError::Yaml)?;
    let Some(root) = root else {
        // Empty document: write the whole chain.
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&chain_block(path, value, 0));
        return Ok(out);
    };
    let mut node = &root;
    for (i, seg) in path.iter().enumerate() {
        let shown = path[..=i].join(".");
        match node.resolved() {
            Node::Map { entries, span } => {
                let found = entries.iter().find(
                    |(k, _)| matches!(k.resolved(), Node::Scalar { text, .. } if text == seg),
                );
                match found {
                    Some((_, v)) => node = v,
                    None => {
                        // Insert the rest of the chain into this map.
                        let rest = &path[i..];
                        if let Some((first_key, _)) = entries.first() {
                            let is_flow = text_at(&chars, span.start.index()) == Some('{');
                            if !is_flow {
                                let indent = first_key.span().start.col();
                                let (_, last_val) = entries.last().expect("non-empty");
                                let end = end_of_line(
                                    &chars,
                                    last_val
                                        .span()
                                        .end
                                        .index()
                                        .max(last_val.span().start.index()),
                                );
                                let insert_at = byte_at(end);
                                let mut out = text.to_string();
                                let mut block = chain_block(rest, value, indent);
                                if insert_at > 0 && !text[..insert_at].ends_with('\n') {
                                    block.insert(0, '\n');
                                }
                                out.insert_str(insert_at, &block);
                                return Ok(out);
                            }
                            // Flow map: add `key: value` before the closing brace.
                            let close = span.end.index().saturating_sub(1);
                            let close = (0..=close)
                                .rev()
                                .find(|&c| chars.get(c) == Some(&'}'))
                                .ok_or_else(|| EditError::Layout {
                                    path: shown.clone(),
                                    reason: "cannot find the end of the flow map",
                                })?;
                            let mut out = text.to_string();
                            out.insert_str(
                                byte_at(close),
                                &format!(", {}", chain_flow(rest, value)),
                            );
                            return Ok(out);
                        }
                        // `{}`: replace it with the chain as a flow map.
                        let (s, e) = (byte_at(span.start.index()), byte_at(span.end.index()));
                        let mut out = text.to_string();
                        out.replace_range(s..e, &format!("{{{}}}", chain_flow(rest, value)));
                        return Ok(out);
                    }
                }
            }
            Node::Scalar {
                text: t,
                style: ScalarStyle::Plain,
                span,
                ..
            } if matches!(t.as_str(), "" | "~" | "null" | "Null" | "NULL") => {
                // `key:` or `key: null` on the way: replace it with a flow map holding the rest.
                let rest = &path[i..];
                let mut out = text.to_string();
                let (s, e) = (byte_at(span.start.index()), byte_at(span.end.index()));
                let replacement = format!("{{{}}}", chain_flow(rest, value));
                if s == e {
                    let at = after_colon(&chars, span.start.index());
                    out.insert_str(byte_at(at), &format!(" {replacement}"));
                } else {
                    out.replace_range(s..e, &replacement);
                }
                return Ok(out);
            }
            _ => {
                return Err(EditError::NotAMap {
                    path: path[..i].join("."),
                });
            }
        }
    }
    let Node::Scalar { style, span, .. } = node.resolved() else {
        return Err(EditError::NotAScalar {
            path: path.join("."),
        });
    };
    // Like relok8s, the new scalar is plain when that reads back as the same string (`tag: ""`
    // becomes `tag: updated-tag`), double-quoted otherwise.
    let new_text = yaml_string(value);
    let (mut s, mut e) = (span.start.index(), span.end.index());
    if s == e {
        // Empty value (`key:`): put the scalar after the colon.
        let mut out = text.to_string();
        out.insert_str(byte_at(after_colon(&chars, s)), &format!(" {new_text}"));
        return Ok(out);
    }
    // For quoted scalars find the quotes themselves (spans may stop short or run on).
    let layout = |reason| EditError::Layout {
        path: path.join("."),
        reason,
    };
    if matches!(style, ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted) {
        let q = if *style == ScalarStyle::DoubleQuoted {
            '"'
        } else {
            '\''
        };
        if chars.get(s) != Some(&q) {
            s = (0..s)
                .rev()
                .find(|&i| chars[i] == q)
                .ok_or_else(|| layout("cannot find the opening quote"))?;
        }
        let mut i = s + 1;
        loop {
            match chars.get(i) {
                None => return Err(layout("unterminated quoted scalar")),
                Some('\\') if q == '"' => i += 2,
                Some(&c) if c == q && q == '\'' && chars.get(i + 1) == Some(&'\'') => i += 2,
                Some(&c) if c == q => break,
                _ => i += 1,
            }
        }
        e = i + 1;
    }
    let mut out = text.to_string();
    out.replace_range(byte_at(s)..byte_at(e), &new_text);
    Ok(out)
}

/// An empty scalar's span sits at its key; the value goes after the key's `:`.
fn after_colon(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() && chars[i] != ':' && chars[i] != '\n' {
        i += 1;
    }
    if chars.get(i) == Some(&':') {
        i + 1
    } else {
        from
    }
}

fn text_at(chars: &[char], i: usize) -> Option<char> {
    chars.get(i).copied()
}

fn end_of_line(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() && chars[i] != '\n' {
        i += 1;
    }
    if i < chars.len() { i + 1 } else { i }
}

fn chain_block(path: &[&str], value: &str, indent: usize) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        out.push_str(&" ".repeat(indent + 2 * i));
        out.push_str(&yaml_string(seg));
        out.push(':');
        if i + 1 == path.len() {
            out.push(' ');
            out.push_str(&yaml_string(value));
        }
        out.push('\n');
    }
    out
}

fn chain_flow(path: &[&str], value: &str) -> String {
    match path.split_first() {
        None => yaml_string(value),
        Some((k, [])) => format!("{}: {}", yaml_string(k), yaml_string(value)),
        Some((k, rest)) => format!("{}: {{{}}}", yaml_string(k), chain_flow(rest, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_values;

    /// (document, path, value, expected document).
    const CASES: &[(&str, &[&str], &str, &str)] = &[
        (
            "a:\n  b: old # c\n",
            &["a", "b"],
            "new",
            "a:\n  b: new # c\n",
        ),
        (
            "a:\n  b: \"old\"\n",
            &["a", "b"],
            "n\"ew",
            "a:\n  b: \"n\\\"ew\"\n",
        ),
        ("a:\n  b: \"\"\n", &["a", "b"], "new", "a:\n  b: new\n"),
        (
            "a:\n  b: 'old' # c\n",
            &["a", "b"],
            "1.0",
            "a:\n  b: \"1.0\" # c\n",
        ),
        (
            "a:\n  b: old\nz: 1\n",
            &["a", "c"],
            "new",
            "a:\n  b: old\n  c: new\nz: 1\n",
        ),
        (
            "a:\n  b: old\n",
            &["a", "c", "d"],
            "new",
            "a:\n  b: old\n  c:\n    d: new\n",
        ),
        ("a: {b: old}\n", &["a", "b"], "new", "a: {b: new}\n"),
        ("a: {b: old}\n", &["a", "c"], "new", "a: {b: old, c: new}\n"),
        ("a: {}\n", &["a", "c"], "new", "a: {c: new}\n"),
        ("a:\n", &["a", "c"], "new", "a: {c: new}\n"),
        ("a: ~\n", &["a", "c"], "x", "a: {c: x}\n"),
        ("a:\n  b:\nz: 1\n", &["a", "b"], "v", "a:\n  b: v\nz: 1\n"),
        ("x: 1\n", &["a", "b"], "yes", "x: 1\na:\n  b: \"yes\"\n"),
        ("", &["a"], "v", "a: v\n"),
        (
            "a:\n  b: old",
            &["a", "c"],
            "new",
            "a:\n  b: old\n  c: new\n",
        ),
        (
            "é: ü\na:\n  b: old\n",
            &["a", "b"],
            "ñ",
            "é: ü\na:\n  b: \"ñ\"\n",
        ),
    ];

    #[test]
    fn set_scalar_table() {
        for (doc, path, value, want) in CASES {
            let got = set_scalar(doc, path, value).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
            assert_eq!(&got, want, "doc {doc:?} path {path:?}");
            // And the value reads back.
            let v = serde_json::Value::Object(parse_values(&got, "t").unwrap());
            let mut node = &v;
            for p in *path {
                node = &node[*p];
            }
            assert_eq!(node.as_str(), Some(*value), "{got}");
        }
    }

    #[test]
    fn lists_and_scalars_on_the_path_are_errors() {
        assert!(
            set_scalar("a: [1]\n", &["a", "b"], "x")
                .unwrap_err()
                .to_string()
                .contains("a")
        );
        assert!(set_scalar("a: 1\n", &["a", "b"], "x").is_err());
        assert!(
            set_scalar("a: {b: {c: 1}}\n", &["a", "b"], "x")
                .unwrap_err()
                .to_string()
                .contains("a.b")
        );
    }
}
