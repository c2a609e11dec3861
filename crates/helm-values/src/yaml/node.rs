//! The general reader's node tree: saphyr's events built into nodes with their positions,
//! anchors shared with the aliases that name them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::value::MAX_DEPTH;

/// A parsed YAML node with its position (char indices into the source).
#[derive(Debug, Clone)]
#[allow(dead_code)] // spans are used by relocation
pub(crate) enum Node {
    Scalar {
        text: String,
        style: ScalarStyle,
        tag: Option<String>,
        span: Span,
    },
    Seq {
        items: Vec<Node>,
        span: Span,
    },
    Map {
        entries: Vec<(Node, Node)>,
        span: Span,
    },
    /// A node with an anchor (`&name`), shared with the aliases that name it.
    Anchored(Rc<Node>),
    /// An alias (`*name`): the anchored node, shared rather than copied, so a document of
    /// nested aliases costs what its text costs until it is expanded (with a budget).
    Alias {
        target: Rc<Node>,
        span: Span,
    },
}

#[allow(dead_code)]
impl Node {
    /// Where the node is written (for an alias: the `*name` itself).
    pub(crate) fn span(&self) -> Span {
        match self {
            Node::Scalar { span, .. }
            | Node::Seq { span, .. }
            | Node::Map { span, .. }
            | Node::Alias { span, .. } => *span,
            Node::Anchored(node) => node.span(),
        }
    }

    /// The node itself, through its anchor or alias.
    pub(crate) fn resolved(&self) -> &Node {
        match self {
            Node::Anchored(node) | Node::Alias { target: node, .. } => node.resolved(),
            other => other,
        }
    }

    /// The node without its anchor (an alias stays an alias).
    pub(super) fn unanchored(&self) -> &Node {
        match self {
            Node::Anchored(node) => node,
            other => other,
        }
    }
}

/// Parses the first document of `text` into a node tree (`None` for an empty stream).
/// Refuses nesting deeper than [`MAX_DEPTH`].
pub(crate) fn parse_node(text: &str) -> Result<Option<Node>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    // Open collections: (node under construction, anchor id, pending key for maps).
    let mut stack: Vec<(Node, usize, Option<Node>)> = Vec::new();
    let mut root: Option<Node> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            if e.info() == "recursion limit exceeded" {
                // The YAML reader counts flow levels in a byte.
                format!(
                    "yaml: line {}: flow collections ([...] and {{...}}) nested deeper than 255 (the YAML reader's limit; helm's is 10000)",
                    e.marker().line()
                )
            } else {
                format!("yaml: line {}: {}", e.marker().line(), e.info())
            }
        })?;
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || matches!(event, Event::StreamEnd) {
                    break;
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t: Cow<'_, saphyr_parser::Tag>| {
                    if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
                        format!("!!{}", t.suffix)
                    } else {
                        format!("{}{}", t.handle, t.suffix)
                    }
                });
                Some((
                    Node::Scalar {
                        text: text.into_owned(),
                        style,
                        tag,
                        span,
                    },
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let target = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("yaml: line {}: unknown anchor", span.start.line()))?;
                Some((Node::Alias { target, span }, 0))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(Some(span.start.line())));
                }
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq {
                        items: Vec::new(),
                        span,
                    }
                } else {
                    Node::Map {
                        entries: Vec::new(),
                        span,
                    }
                };
                stack.push((node, anchor, None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor, _) = stack.pop().ok_or("yaml: unbalanced collection")?;
                match &mut node {
                    Node::Seq { span: s, .. } | Node::Map { span: s, .. } => s.end = span.end,
                    _ => {}
                }
                Some((node, anchor))
            }
        };
        if let Some((mut node, anchor)) = finished {
            if anchor != 0 {
                let shared = Rc::new(node);
                anchors.insert(anchor, shared.clone());
                node = Node::Anchored(shared);
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some((Node::Seq { items, .. }, _, _)) => items.push(node),
                Some((Node::Map { entries, .. }, _, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                Some(_) => unreachable!("only sequences and maps are open"),
            }
        }
    }
    Ok(root)
}

pub(super) fn too_deep(line: Option<usize>) -> String {
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    format!(
        "yaml: {at}nested deeper than {MAX_DEPTH} maps and lists (kantup's limit; helm's is 10000)"
    )
}
