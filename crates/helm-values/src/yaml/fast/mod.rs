//! The fast path for values files: the YAML nearly every values file is written in, read
//! straight into values in one pass over the bytes, without the general reader's token queue,
//! events and node tree (ten times slower on a 1 MiB values file).
//!
//! [`read`] takes a document only when all of it is in a subset of YAML that it reads exactly
//! as the general reader ([`super::parse_node`], then decoding) does:
//!
//! - block mappings and block sequences indented with spaces (compact `- key: value` entries
//!   and sequences at their key's indentation included);
//! - plain, single-quoted and double-quoted scalars on one line;
//! - flow collections (`[a, b]`, `{a: b}`) that close on the line they open;
//! - literal and folded block scalars (`|`, `>`, with `-` or `+`) after `key:` or `-`
//!   ([`block_scalar`]);
//! - anchors on values after `key:` or `-` and aliases as whole values, within go-yaml's alias
//!   budget ([`anchors`]);
//! - comments and blank lines.
//!
//! Anything else makes it return `None` and the general reader reads the document instead,
//! errors included: scalars over several lines, block scalars with an indentation indicator,
//! leading blank lines or lines of spaces, anchors and aliases elsewhere (keys, flow
//! collections), tags, merge keys (`<<`), complex keys (`?`), directives and document markers,
//! tabs, CR line ends, control and byte-order-mark characters, nesting deeper than
//! [`MAX_FAST_DEPTH`], and every syntax error. The rule is: when in doubt, decline. The tests
//! compare the two readers on generated documents (`fast_path_agrees_with_general_reader`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::value::Values;

mod anchors;
mod block_scalar;
mod characters;
mod flow;
mod scalar;

use anchors::Anchor;
use characters::plain_characters;
use scalar::Scalar;

/// Deepest nesting the fast path reads; deeper documents go to the general reader, which
/// enforces [`crate::value::MAX_DEPTH`] with its error message.
const MAX_FAST_DEPTH: usize = 64;

/// YAML allows at most 1024 characters from an implicit key's start to its `:`; the fast path
/// leaves keys near that limit to the general reader.
const MAX_KEY_SPAN: usize = 1000;

/// The document is outside the fast path's subset (or not valid YAML): read it the general way.
#[derive(Debug)]
struct Decline;

type Fast<T> = Result<T, Decline>;

/// Reads `text` as [`super::parse_values`] does, or `None` when it is outside the subset the
/// fast path reads (see the module docs).
pub(super) fn read(text: &str) -> Option<Values> {
    read_with(text, true)
}

/// [`read`], declining anchors and aliases too (for a part of a document, whose aliases may
/// name anchors in other parts).
pub(super) fn read_without_anchors(text: &str) -> Option<Values> {
    read_with(text, false)
}

fn read_with(text: &str, anchors_allowed: bool) -> Option<Values> {
    if !plain_characters(text.as_bytes()) {
        return None;
    }
    let mut reader = Reader {
        src: text.as_bytes(),
        text,
        pos: 0,
        line_start: 0,
        depth: 0,
        // The document node counts once, as in go-yaml.
        nodes: 1,
        aliased: 0,
        anchors_allowed,
        anchors: HashMap::new(),
        defining: Vec::new(),
        open_entries: Vec::new(),
        open_items: Vec::new(),
    };
    let values = reader.document().ok()?;
    reader.within_alias_budget_at_end().ok()?;
    Some(values)
}

struct Reader<'a> {
    src: &'a [u8],
    text: &'a str,
    /// The next byte to read.
    pos: usize,
    /// Where the current line starts (for columns).
    line_start: usize,
    /// Open collections.
    depth: usize,
    /// Nodes decoded so far, in go-yaml's order and way of counting (keys included, an
    /// alias's target once per alias): go-yaml's alias budget is a ratio over this.
    nodes: u64,
    /// How many of `nodes` were decoded through aliases.
    aliased: u64,
    /// Whether anchors and aliases are read (else declined).
    anchors_allowed: bool,
    /// The anchors defined so far (a later one of the same name replaces an earlier one).
    anchors: HashMap<&'a str, Anchor>,
    /// The anchors whose values are being read (an alias to one of them is declined).
    defining: Vec<&'a str>,
    /// The entries read so far of every map being read, innermost last: one buffer instead of
    /// a vector per map, each grown entry by entry.
    open_entries: Vec<(String, Value)>,
    /// The same for the items of sequences.
    open_items: Vec<Value>,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    /// Whether the byte at `i` is a space, a line break or the end.
    fn blank_or_end(&self, i: usize) -> bool {
        matches!(self.peek_at(i), None | Some(b' ' | b'\n'))
    }

    fn column(&self) -> usize {
        self.pos - self.line_start
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Moves past the end of the current line.
    fn next_line(&mut self) {
        match memchr_newline(&self.src[self.pos..]) {
            Some(n) => self.pos += n + 1,
            None => self.pos = self.src.len(),
        }
        self.line_start = self.pos;
    }

    /// From the start of a line: skips blank and comment lines and returns the indentation of
    /// the next line with content (`pos` stays at that line's start), or `None` at the end.
    fn peek_line(&mut self) -> Fast<Option<usize>> {
        loop {
            let start = self.pos;
            let mut i = start;
            while self.peek_at(i) == Some(b' ') {
                i += 1;
            }
            match self.peek_at(i) {
                None => {
                    self.pos = i;
                    self.line_start = i;
                    return Ok(None);
                }
                Some(b'\n' | b'#') => {
                    self.pos = i;
                    self.next_line();
                }
                Some(first) => {
                    if i == start {
                        let rest = &self.src[i..];
                        if first == b'%' || rest.starts_with(b"---") || rest.starts_with(b"...") {
                            return Err(Decline); // directives, document markers
                        }
                    }
                    return Ok(Some(i - start));
                }
            }
        }
    }

    /// After a value: spaces, an optional comment, the end of the line.
    fn finish_line(&mut self) -> Fast<()> {
        let before = self.pos;
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n') => {}
            Some(b'#') if self.pos > before => {}
            Some(_) => return Err(Decline),
        }
        self.next_line();
        Ok(())
    }

    /// Opens a collection (one node).
    fn open(&mut self) -> Fast<()> {
        self.nodes += 1;
        self.depth += 1;
        if self.depth > MAX_FAST_DEPTH {
            return Err(Decline);
        }
        Ok(())
    }

    fn document(&mut self) -> Fast<Values> {
        let Some(indent) = self.peek_line()? else {
            return Ok(Map::new());
        };
        self.pos += indent;
        let Item::Key(key) = self.scalar_or_key()? else {
            return Err(Decline); // a document that is not a map
        };
        let map = self.block_map(indent, key)?;
        match self.peek_line()? {
            None => Ok(map),
            Some(_) => Err(Decline),
        }
    }

    /// A block mapping whose keys are at column `indent`; its first key has been read.
    fn block_map(&mut self, indent: usize, first: Scalar<'a>) -> Fast<Values> {
        self.open()?;
        let from = self.open_entries.len();
        let mut key = first;
        loop {
            let k = self.key(key)?;
            let v = self.block_value(indent)?;
            self.open_entries.push((k, v));
            match self.peek_line()? {
                Some(i) if i == indent => {
                    self.pos += i;
                    match self.scalar_or_key()? {
                        Item::Key(next) => key = next,
                        Item::Scalar(_) => return Err(Decline),
                    }
                }
                Some(i) if i < indent => break,
                None => break,
                Some(_) => return Err(Decline), // a continuation line or bad indentation
            }
        }
        self.depth -= 1;
        Ok(self.close_map(from))
    }

    /// A map key (one node).
    fn key(&mut self, key: Scalar<'a>) -> Fast<String> {
        self.nodes += 1;
        key.key()
    }

    /// A scalar's value (one node).
    fn scalar(&mut self, scalar: Scalar<'a>) -> Fast<Value> {
        self.nodes += 1;
        scalar.value()
    }

    /// The null of a value left out (`key:` or `-` with nothing after), one node.
    fn absent(&mut self) -> Value {
        self.nodes += 1;
        Value::Null
    }

    /// The value after `key:` of a mapping at column `indent`.
    fn block_value(&mut self, indent: usize) -> Fast<Value> {
        self.skip_spaces();
        let anchor = self.anchor()?;
        self.with_anchor(anchor, |r| match r.peek() {
            None | Some(b'\n' | b'#') => r.value_below(indent, true),
            Some(_) => r.inline_value(indent),
        })
    }

    /// The value on the lines after `key:` or `-` with nothing after it on its line (in a
    /// collection at column `indent`): a node deeper than that; for a map value also a
    /// sequence at the key's indentation; else null.
    fn value_below(&mut self, indent: usize, sequence_at_indent: bool) -> Fast<Value> {
        self.next_line();
        match self.peek_line()? {
            Some(i) if i > indent => {
                self.pos += i;
                self.block_node(i)
            }
            Some(i) if sequence_at_indent && i == indent && self.at_entry(self.pos + i) => {
                self.pos += i;
                self.block_seq(i)
            }
            _ => Ok(self.absent()),
        }
    }

    /// A value that starts on the current line (after `key: ` or `- `, in a collection at
    /// column `parent`) and ends it, or a block scalar whose header ends it.
    fn inline_value(&mut self, parent: usize) -> Fast<Value> {
        match self.peek() {
            Some(b'[' | b'{') => {
                let v = self.flow_node()?;
                self.finish_line()?;
                Ok(v)
            }
            Some(b'*') => self.alias(),
            Some(b'|' | b'>') => self.block_scalar(parent),
            _ => match self.scalar_or_key()? {
                Item::Scalar(s) => {
                    self.finish_line()?;
                    self.scalar(s)
                }
                Item::Key(_) => Err(Decline),
            },
        }
    }

    /// Whether a block sequence entry (`-` then a space or the end of the line) is at `i`.
    fn at_entry(&self, i: usize) -> bool {
        self.peek_at(i) == Some(b'-') && self.blank_or_end(i + 1)
    }

    /// A node starting a line at column `indent` (`pos` is at its first character).
    fn block_node(&mut self, indent: usize) -> Fast<Value> {
        if self.at_entry(self.pos) {
            return self.block_seq(indent);
        }
        if matches!(self.peek(), Some(b'[' | b'{')) {
            let v = self.flow_node()?;
            self.finish_line()?;
            return Ok(v);
        }
        match self.scalar_or_key()? {
            Item::Key(key) => Ok(Value::Object(self.block_map(indent, key)?)),
            Item::Scalar(s) => {
                self.finish_line()?;
                self.scalar(s)
            }
        }
    }

    /// A block sequence whose `-` are at column `indent` (`pos` is at the first one).
    fn block_seq(&mut self, indent: usize) -> Fast<Value> {
        self.open()?;
        let from = self.open_items.len();
        loop {
            self.pos += 1; // the '-'
            self.skip_spaces();
            let anchor = self.anchor()?;
            let anchored = anchor.is_some();
            let item = self.with_anchor(anchor, |r| match r.peek() {
                None | Some(b'\n' | b'#') => r.value_below(indent, false),
                Some(b'[' | b'{' | b'*' | b'|' | b'>') => r.inline_value(indent),
                // An anchor before a compact map's first key would be the key's.
                Some(_) if anchored => r.inline_value(indent),
                Some(_) => {
                    let column = r.column();
                    match r.scalar_or_key()? {
                        Item::Key(key) => Ok(Value::Object(r.block_map(column, key)?)),
                        Item::Scalar(s) => {
                            r.finish_line()?;
                            r.scalar(s)
                        }
                    }
                }
            })?;
            self.open_items.push(item);
            match self.peek_line()? {
                Some(i) if i == indent && self.at_entry(self.pos + i) => self.pos += i,
                Some(i) if i <= indent => break,
                None => break,
                Some(_) => return Err(Decline),
            }
        }
        self.depth -= 1;
        Ok(self.close_sequence(from))
    }

    /// The map of the entries read since `from` (see [`Reader::open_entries`]), in their
    /// order, a later one of a key replacing the earlier one's value (as the general reader's
    /// map does). Sized once: growing a map as its entries are read rehashes it each time it
    /// doubles.
    fn close_map(&mut self, from: usize) -> Values {
        let mut map = Map::with_capacity(self.open_entries.len() - from);
        for (k, v) in self.open_entries.drain(from..) {
            map.insert(k, v);
        }
        map
    }

    /// The sequence of the items read since `from` (see [`Reader::open_items`]).
    fn close_sequence(&mut self, from: usize) -> Value {
        Value::Array(self.open_items.drain(from..).collect())
    }
}

/// What [`Reader::scalar_or_key`] found.
enum Item<'a> {
    Key(Scalar<'a>),
    Scalar(Scalar<'a>),
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests;
