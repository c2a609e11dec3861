//! relok8s image hints: the `hints.yaml` / `*.images.yaml` / `.relok8s-images.yaml` list of
//! templates naming where a chart's values hold each image.
//!
//! The rules follow relok8s's `internal/image_template.go`: a placeholder right after `:` is the
//! tag, right after `@` the digest; of the placeholders left, one is the repository (which may
//! hold a whole reference) and two are registry then repository.

use std::fmt;

use serde::{Serialize, Serializer};

/// A dotted values path split into segments: `.image.repository` is `["image", "repository"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValuePath(pub Vec<String>);

impl ValuePath {
    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.0 {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

impl Serialize for ValuePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One hint: the template text and which values paths hold each part of the image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePattern {
    /// The template as written, e.g. `{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}`.
    pub template: String,
    /// Path of the registry value, when the pattern has two name placeholders.
    pub registry: Option<ValuePath>,
    /// Path of the repository value (may hold a complete reference when alone).
    pub repository: ValuePath,
    /// Path of the tag value (placeholder after `:`).
    pub tag: Option<ValuePath>,
    /// Path of the digest value (placeholder after `@`).
    pub digest: Option<ValuePath>,
}

/// Errors parsing or rendering hints. Messages quote the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintsError {
    /// The document is not YAML.
    #[error("hints are not valid YAML: {0}")]
    Yaml(String),
    /// The document is not a list of strings.
    #[error("hints must be a YAML list of template strings, found {found}")]
    NotAList {
        /// What was found instead.
        found: String,
    },
    /// A pattern breaks the relok8s rules.
    #[error("invalid image pattern {template:?}: {reason}")]
    Pattern {
        /// The pattern text.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A values path used by a pattern is missing or not a scalar.
    #[error("image pattern {template:?}: value {path} {problem}")]
    Render {
        /// The pattern text.
        template: String,
        /// The values path.
        path: String,
        /// `is missing`, `is not a scalar`, ...
        problem: String,
    },
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Field(ValuePath),
}

fn tokenize(template: &str) -> Result<Vec<Piece>, HintsError> {
    let bad = |reason: String| HintsError::Pattern {
        template: template.to_string(),
        reason,
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| bad("unclosed `{{`".to_string()))?;
        let inner = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let path = inner.strip_prefix('.').ok_or_else(|| {
            bad(format!(
                "placeholder {{{{ {inner} }}}} is not a values path like `.image.tag`"
            ))
        })?;
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        if segments.iter().any(|s| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || "{}|()\"'".contains(c))
        }) {
            return Err(bad(format!(
                "placeholder {{{{ {inner} }}}} is not a plain values path"
            )));
        }
        pieces.push(Piece::Field(ValuePath(segments)));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(bad("unmatched `}}`".to_string()));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

impl ImagePattern {
    /// Parses one template.
    ///
    /// ```
    /// use kantup_bundle::hints::ImagePattern;
    /// let p = ImagePattern::parse("{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}").unwrap();
    /// assert_eq!(p.registry.unwrap().to_string(), ".image.registry");
    /// assert_eq!(p.repository.to_string(), ".image.repository");
    /// assert_eq!(p.tag.unwrap().to_string(), ".image.tag");
    /// ```
    pub fn parse(template: &str) -> Result<ImagePattern, HintsError> {
        let bad = |reason: &str| HintsError::Pattern {
            template: template.to_string(),
            reason: reason.to_string(),
        };
        let pieces = tokenize(template)?;
        let mut tag = None;
        let mut digest = None;
        let mut names = Vec::new();
        let mut previous_text: Option<&str> = None;
        for piece in &pieces {
            match piece {
                Piece::Text(t) => previous_text = Some(t),
                Piece::Field(path) => {
                    match previous_text.and_then(|t| t.chars().last()) {
                        Some(':') => {
                            if tag.replace(path.clone()).is_some() {
                                return Err(bad("more than one tag placeholder (after `:`)"));
                            }
                        }
                        Some('@') => {
                            if digest.replace(path.clone()).is_some() {
                                return Err(bad("more than one digest placeholder (after `@`)"));
                            }
                        }
                        _ => names.push(path.clone()),
                    }
                    previous_text = None;
                }
            }
        }
        let (registry, repository) = match names.len() {
            0 => return Err(bad("no repository placeholder")),
            1 => (None, names.remove(0)),
            2 => {
                let repository = names.remove(1);
                (Some(names.remove(0)), repository)
            }
            n => {
                return Err(bad(&format!(
                    "{n} name placeholders; expected the repository, or the registry then the repository"
                )));
            }
        };
        Ok(ImagePattern {
            template: template.to_string(),
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Renders the template against a values tree (`serde_json::Value` or `serde_yaml::Value`),
    /// giving the image reference text the chart would deploy.
    ///
    /// ```
    /// use kantup_bundle::hints::ImagePattern;
    /// let p = ImagePattern::parse("{{ .image.repository }}:{{ .image.tag }}").unwrap();
    /// let values: serde_yaml::Value = serde_yaml::from_str("image: {repository: nginx, tag: 1.21}").unwrap();
    /// assert_eq!(p.render(&values).unwrap(), "nginx:1.21");
    /// ```
    pub fn render<V: ValuesTree>(&self, values: &V) -> Result<String, HintsError> {
        let mut out = String::new();
        for piece in tokenize(&self.template)? {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Field(path) => match values.scalar_at(path.segments()) {
                    Lookup::Found(s) => out.push_str(&s),
                    Lookup::Missing => {
                        return Err(HintsError::Render {
                            template: self.template.clone(),
                            path: path.to_string(),
                            problem: "is missing".to_string(),
                        });
                    }
                    Lookup::NotScalar => {
                        return Err(HintsError::Render {
                            template: self.template.clone(),
                            path: path.to_string(),
                            problem: "is not a scalar".to_string(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    /// Every values path the pattern reads: registry, repository, tag, digest.
    pub fn paths(&self) -> Vec<&ValuePath> {
        let mut out = Vec::with_capacity(4);
        out.extend(self.registry.as_ref());
        out.push(&self.repository);
        out.extend(self.tag.as_ref());
        out.extend(self.digest.as_ref());
        out
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

/// Result of looking a values path up in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A scalar, rendered as Go's text/template would print it.
    Found(String),
    /// Some segment is absent (or null).
    Missing,
    /// The path ends at a map or list.
    NotScalar,
}

/// A values tree that patterns can be rendered against.
pub trait ValuesTree {
    /// The scalar at `path`.
    fn scalar_at(&self, path: &[String]) -> Lookup;
}

/// Follows `path` from `root`, one `child` lookup a segment; `None` when a segment is absent.
fn descend<'a, T>(
    root: &'a T,
    path: &[String],
    child: impl Fn(&'a T, &str) -> Option<&'a T>,
) -> Option<&'a T> {
    path.iter().try_fold(root, |node, seg| child(node, seg))
}

impl ValuesTree for serde_json::Value {
    fn scalar_at(&self, path: &[String]) -> Lookup {
        let Some(node) = descend(self, path, |node, key| node.get(key)) else {
            return Lookup::Missing;
        };
        match node {
            serde_json::Value::Null => Lookup::Missing,
            serde_json::Value::String(s) => Lookup::Found(s.clone()),
            serde_json::Value::Number(n) => Lookup::Found(n.to_string()),
            serde_json::Value::Bool(b) => Lookup::Found(b.to_string()),
            _ => Lookup::NotScalar,
        }
    }
}

impl ValuesTree for serde_yaml::Value {
    fn scalar_at(&self, path: &[String]) -> Lookup {
        let Some(node) = descend(self, path, |node, key| node.get(key)) else {
            return Lookup::Missing;
        };
        match node {
            serde_yaml::Value::Null => Lookup::Missing,
            serde_yaml::Value::String(s) => Lookup::Found(s.clone()),
            serde_yaml::Value::Number(n) => Lookup::Found(n.to_string()),
            serde_yaml::Value::Bool(b) => Lookup::Found(b.to_string()),
            serde_yaml::Value::Tagged(t) => match &t.value {
                serde_yaml::Value::String(s) => Lookup::Found(s.clone()),
                _ => Lookup::NotScalar,
            },
            _ => Lookup::NotScalar,
        }
    }
}

/// Parses a hints document: a YAML list of template strings (comments and a leading `---` are
/// fine). An empty document is an empty list.
///
/// ```
/// let hints = kantup_bundle::hints::parse_hints("- \"{{ .singleImageReference.image }}\"\n").unwrap();
/// assert_eq!(hints[0].repository.to_string(), ".singleImageReference.image");
/// ```
pub fn parse_hints(yaml: &str) -> Result<Vec<ImagePattern>, HintsError> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(yaml).map_err(|e| HintsError::Yaml(e.to_string()))?;
    let items = match doc {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Sequence(items) => items,
        serde_yaml::Value::Mapping(map) => {
            return Err(HintsError::NotAList {
                found: format!("a mapping with the keys {}", key_list(&map)),
            });
        }
        other => {
            return Err(HintsError::NotAList {
                found: describe(&other),
            });
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            serde_yaml::Value::String(s) => ImagePattern::parse(&s),
            // `- {{ .image.repository }}` unquoted is a YAML flow mapping, not a template.
            serde_yaml::Value::Mapping(map) => Err(HintsError::NotAList {
                found: format!(
                    "item {} is a mapping with the keys {} (a template must be quoted: - \"{{{{ .image.repository }}}}\")",
                    i + 1,
                    key_list(&map)
                ),
            }),
            other => Err(HintsError::NotAList {
                found: format!("item {} is {}", i + 1, describe(&other)),
            }),
        })
        .collect()
}

/// The first few keys of a mapping, for messages: `image, tag`.
fn key_list(map: &serde_yaml::Mapping) -> String {
    let keys: Vec<String> = map
        .keys()
        .take(5)
        .map(|k| match k {
            serde_yaml::Value::String(s) => format!("{s:?}"),
            other => serde_yaml::to_string(other)
                .map(|t| t.trim_end().to_string())
                .unwrap_or_else(|_| describe(other)),
        })
        .collect();
    let more = if map.len() > keys.len() { ", ..." } else { "" };
    format!("{}{more}", keys.join(", "))
}

fn describe(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::Null => "null".into(),
        serde_yaml::Value::Bool(_) => "a boolean".into(),
        serde_yaml::Value::Number(_) => "a number".into(),
        serde_yaml::Value::String(_) => "a string".into(),
        serde_yaml::Value::Sequence(_) => "a list".into(),
        serde_yaml::Value::Mapping(_) => "a mapping".into(),
        serde_yaml::Value::Tagged(_) => "a tagged value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// (template, registry, repository, tag, digest)
    type Row = (
        &'static str,
        Option<String>,
        &'static str,
        Option<String>,
        Option<String>,
    );

    #[test]
    fn pattern_table() {
        let rows: Vec<Row> = vec![
            (
                "{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}",
                p(".image.registry"),
                ".image.repository",
                p(".image.tag"),
                None,
            ),
            (
                "{{ .singleImageReference.image }}",
                None,
                ".singleImageReference.image",
                None,
                None,
            ),
            (
                "{{ .image.repository }}@{{ .image.digest }}",
                None,
                ".image.repository",
                None,
                p(".image.digest"),
            ),
            (
                "{{ .image.repository }}:{{ .image.tag }}",
                None,
                ".image.repository",
                p(".image.tag"),
                None,
            ),
            (
                "{{.global.imageRegistry}}/{{ .subchart-1.deployment.imageName }}:{{ .subchart-1.deployment.dockerTag }}",
                p(".global.imageRegistry"),
                ".subchart-1.deployment.imageName",
                p(".subchart-1.deployment.dockerTag"),
                None,
            ),
            (
                "{{ .r }}/{{ .n }}:{{ .t }}@{{ .d }}",
                p(".r"),
                ".n",
                p(".t"),
                p(".d"),
            ),
            ("docker.io/{{ .n }}:{{ .t }}", None, ".n", p(".t"), None),
        ];
        for (template, registry, repository, tag, digest) in rows {
            let got = ImagePattern::parse(template).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.registry.map(|x| x.to_string()), registry, "{template}");
            assert_eq!(got.repository.to_string(), repository, "{template}");
            assert_eq!(got.tag.map(|x| x.to_string()), tag, "{template}");
            assert_eq!(got.digest.map(|x| x.to_string()), digest, "{template}");
        }
    }

    #[test]
    fn rejects_table() {
        let rows: &[(&str, &str)] = &[
            ("{{ .a }}:{{ .b }}:{{ .c }}", "more than one tag"),
            ("{{ .a }}@{{ .b }}@{{ .c }}", "more than one digest"),
            ("docker.io/library/busybox", "no repository placeholder"),
            (":{{ .t }}", "no repository placeholder"),
            ("{{ .a }}/{{ .b }}/{{ .c }}", "3 name placeholders"),
            ("{{ .a }", "unclosed"),
            ("{{ image }}", "not a values path"),
            ("{{ .a | quote }}", "not a plain values path"),
            ("{{ .a..b }}", "not a plain values path"),
        ];
        for (template, want) in rows {
            let e = ImagePattern::parse(template).expect_err(template);
            let msg = e.to_string();
            assert!(msg.contains(want), "{template}: {msg}");
            assert!(
                msg.contains(&format!("{template:?}")),
                "quotes the pattern: {msg}"
            );
        }
    }

    #[test]
    fn hints_documents() {
        assert!(parse_hints("").unwrap().is_empty());
        assert!(matches!(
            parse_hints("image: x"),
            Err(HintsError::NotAList { .. })
        ));
        assert!(matches!(
            parse_hints("- [a]"),
            Err(HintsError::NotAList { .. })
        ));
        assert!(matches!(
            parse_hints("- \"{{ .a }\""),
            Err(HintsError::Pattern { .. })
        ));
        assert!(matches!(
            parse_hints("- [unclosed"),
            Err(HintsError::Yaml(_))
        ));
    }

    #[test]
    fn render_table() {
        let values: serde_yaml::Value = serde_yaml::from_str(
            "image: {registry: docker.io, repository: bitnami/wordpress, tag: 5.7.2, num: 1.5, list: [1]}\nsingle: {image: 'busybox:1'}\n",
        )
        .unwrap();
        let json: serde_json::Value = serde_json::to_value(&values).unwrap();
        let rows: &[(&str, Result<&str, &str>)] = &[
            (
                "{{ .image.registry }}/{{ .image.repository }}:{{ .image.tag }}",
                Ok("docker.io/bitnami/wordpress:5.7.2"),
            ),
            ("{{ .single.image }}", Ok("busybox:1")),
            (
                "{{ .image.repository }}:{{ .image.num }}",
                Ok("bitnami/wordpress:1.5"),
            ),
            (
                "{{ .image.repository }}:{{ .image.nope }}",
                Err("value .image.nope is missing"),
            ),
            (
                "{{ .image.list }}",
                Err("value .image.list is not a scalar"),
            ),
        ];
        for (template, want) in rows {
            let pattern = ImagePattern::parse(template).unwrap();
            for got in [pattern.render(&values), pattern.render(&json)] {
                match want {
                    Ok(s) => assert_eq!(got.unwrap(), *s),
                    Err(s) => assert!(got.unwrap_err().to_string().contains(s)),
                }
            }
        }
    }

    #[test]
    fn paths_in_order() {
        let p = ImagePattern::parse("{{ .r }}/{{ .n }}:{{ .t }}").unwrap();
        let got: Vec<String> = p.paths().iter().map(|x| x.to_string()).collect();
        assert_eq!(got, [".r", ".n", ".t"]);
    }
}
