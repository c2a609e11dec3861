//! The fast path for values files: the YAML nearly every values file is written in, read
//! straight into values in one pass over the bytes, without the general reader's token queue,
//! events and node tree (six times slower on a 1 MiB values file).
//!
//! [`read`] takes a document only when all of it is in a plain subset of YAML that it reads
//! exactly as the general reader ([`super::parse_node`], then decoding) does:
//!
//! - block mappings and block sequences indented with spaces (compact `- key: value` entries
//!   and sequences at their key's indentation included);
//! - plain, single-quoted and double-quoted scalars on one line;
//! - flow collections (`[a, b]`, `{a: b}`) that close on the line they open;
//! - comments and blank lines.
//!
//! Anything else makes it return `None` and the general reader reads the document instead,
//! errors included: block scalars (`|`, `>`), scalars over several lines, anchors and aliases,
//! tags, merge keys (`<<`), complex keys (`?`), directives and document markers, tabs, CR line
//! ends, control and byte-order-mark characters, nesting deeper than [`MAX_FAST_DEPTH`], and
//! every syntax error. The rule is: when in doubt, decline. The tests compare the two readers
//! on generated documents (`fast_path_agrees_with_general_reader`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{plain_key, plain_value};
use crate::value::Values;

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
    if !plain_characters(text.as_bytes()) {
        return None;
    }
    let mut reader = Reader {
        src: text.as_bytes(),
        text,
        pos: 0,
        line_start: 0,
        depth: 0,
    };
    reader.document().ok()
}

/// Whether `bytes` holds only characters the fast path reads the way the general reader
/// does: no tab, CR, NUL or other control character, no C1 control (NEL), line or paragraph
/// separator, byte-order mark or noncharacter U+FFFE/U+FFFF. (`bytes` is valid UTF-8, so
/// these byte patterns are exactly those characters.)
fn plain_characters(bytes: &[u8]) -> bool {
    const CHUNK: usize = 64;
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        // Printable ASCII and line feeds only? (A branchless fold, which the compiler
        // vectorizes; most chunks of most files are.)
        let other = chunk.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\n')) | (b >= 0x7f)
        });
        if other && !plain_characters_in(bytes, n * CHUNK..n * CHUNK + chunk.len()) {
            return false;
        }
    }
    true
}

/// [`plain_characters`] for the characters starting in `range` of `bytes`.
fn plain_characters_in(bytes: &[u8], range: std::ops::Range<usize>) -> bool {
    let next = |i: usize| bytes.get(i).copied().unwrap_or(0);
    for i in range {
        let b = bytes[i];
        let bad = match b {
            b'\n' | 0x20..=0x7e => false,
            0..=0x1f | 0x7f => true,
            0xc2 => (0x80..=0x9f).contains(&next(i + 1)),
            0xe2 => next(i + 1) == 0x80 && matches!(next(i + 2), 0xa8 | 0xa9),
            0xef => {
                (next(i + 1) == 0xbb && next(i + 2) == 0xbf)
                    || (next(i + 1) == 0xbf && matches!(next(i + 2), 0xbe | 0xbf))
            }
            _ => false,
        };
        if bad {
            return false;
        }
    }
    true
}

/// A scalar as written: its text (quotes and escapes resolved) and whether it was plain.
struct Scalar<'a> {
    text: Cow<'a, str>,
    plain: bool,
}

impl Scalar<'_> {
    fn value(self) -> Fast<Value> {
        if self.plain {
            // NaN and infinities are errors, which the general reader words.
            plain_value(&self.text).map_err(|_| Decline)
        } else {
            Ok(Value::String(self.text.into_owned()))
        }
    }

    fn key(self) -> Fast<String> {
        if !self.plain {
            return Ok(self.text.into_owned());
        }
        if self.text == "<<" {
            return Err(Decline); // a merge key
        }
        plain_key(&self.text).map_err(|_| Decline)
    }
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
}

fn is_flow(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
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

    fn open(&mut self) -> Fast<()> {
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
        let mut map = Map::new();
        let mut key = first;
        loop {
            let k = key.key()?;
            let v = self.block_value(indent)?;
            map.insert(k, v);
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
        Ok(map)
    }

    /// The value after `key:` of a mapping at column `indent`.
    fn block_value(&mut self, indent: usize) -> Fast<Value> {
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n' | b'#') => {
                self.next_line();
                match self.peek_line()? {
                    Some(i) if i > indent => {
                        self.pos += i;
                        self.block_node(i)
                    }
                    Some(i) if i == indent && self.at_entry(self.pos + i) => {
                        self.pos += i;
                        self.block_seq(i)
                    }
                    _ => Ok(Value::Null),
                }
            }
            Some(_) => self.inline_value(),
        }
    }

    /// A value that starts on the current line (after `key: ` or `- `) and ends it.
    fn inline_value(&mut self) -> Fast<Value> {
        match self.peek() {
            Some(b'[' | b'{') => {
                let v = self.flow_node()?;
                self.finish_line()?;
                Ok(v)
            }
            _ => match self.scalar_or_key()? {
                Item::Scalar(s) => {
                    self.finish_line()?;
                    s.value()
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
                s.value()
            }
        }
    }

    /// A block sequence whose `-` are at column `indent` (`pos` is at the first one).
    fn block_seq(&mut self, indent: usize) -> Fast<Value> {
        self.open()?;
        let mut items = Vec::new();
        loop {
            self.pos += 1; // the '-'
            self.skip_spaces();
            let item = match self.peek() {
                None | Some(b'\n' | b'#') => {
                    self.next_line();
                    match self.peek_line()? {
                        Some(i) if i > indent => {
                            self.pos += i;
                            self.block_node(i)?
                        }
                        _ => Value::Null,
                    }
                }
                Some(b'[' | b'{') => {
                    let v = self.flow_node()?;
                    self.finish_line()?;
                    v
                }
                Some(_) => {
                    let column = self.column();
                    match self.scalar_or_key()? {
                        Item::Key(key) => Value::Object(self.block_map(column, key)?),
                        Item::Scalar(s) => {
                            self.finish_line()?;
                            s.value()?
                        }
                    }
                }
            };
            items.push(item);
            match self.peek_line()? {
                Some(i) if i == indent && self.at_entry(self.pos + i) => self.pos += i,
                Some(i) if i <= indent => break,
                None => break,
                Some(_) => return Err(Decline),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    /// A scalar in block context, or a key when `:` and a space (or the line's end) follow it
    /// (then `pos` is after the `:`). A plain scalar ends at `: `, at ` #` or at the end of
    /// the line; it is never continued on the next line here.
    fn scalar_or_key(&mut self) -> Fast<Item<'a>> {
        let start = self.pos;
        if let Some(quote @ (b'\'' | b'"')) = self.peek() {
            let scalar = self.quoted(quote)?;
            // A key when `:` and a blank follow (spaces allowed between).
            let after = self.pos;
            self.skip_spaces();
            if self.peek() == Some(b':') && self.blank_or_end(self.pos + 1) {
                if self.pos - start > MAX_KEY_SPAN {
                    return Err(Decline);
                }
                self.pos += 1;
                return Ok(Item::Key(scalar));
            }
            self.pos = after;
            return Ok(Item::Scalar(scalar));
        }
        if !self.plain_start(false) {
            return Err(Decline);
        }
        let mut i = start;
        let mut key = false;
        loop {
            match self.peek_at(i) {
                None | Some(b'\n') => break,
                Some(b':') if self.blank_or_end(i + 1) => {
                    key = true;
                    break;
                }
                Some(b' ') if self.peek_at(i + 1) == Some(b'#') => break,
                _ => i += 1,
            }
        }
        let mut end = i;
        while end > start && self.src[end - 1] == b' ' {
            end -= 1;
        }
        let scalar = Scalar {
            text: Cow::Borrowed(&self.text[start..end]),
            plain: true,
        };
        self.pos = i;
        if !key {
            return Ok(Item::Scalar(scalar));
        }
        if i - start > MAX_KEY_SPAN {
            return Err(Decline);
        }
        self.pos += 1;
        Ok(Item::Key(scalar))
    }

    /// Whether a plain scalar may start at `pos`: not an indicator (`-` only before a
    /// character that is neither blank nor, in a flow collection, a flow indicator), not
    /// `---` or `...` (document markers when first on a line).
    fn plain_start(&self, flow: bool) -> bool {
        let rest = &self.src[self.pos..];
        if (rest.starts_with(b"---") || rest.starts_with(b"...")) && self.blank_or_end(self.pos + 3)
        {
            return false; // a document marker where a line starts, for the general reader
        }
        match self.peek() {
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9') => true,
            Some(b'_' | b'.' | b'/' | b'~' | b'+' | b'$' | b'(' | b')' | b'=' | b'^' | b';') => {
                true
            }
            Some(b'<' | b'\\') => true,
            Some(b'-') => {
                let next = self.peek_at(self.pos + 1);
                let flow_next = flow && next.is_some_and(is_flow);
                !(self.blank_or_end(self.pos + 1) || flow_next)
            }
            Some(b) => b >= 0x80,
            None => false,
        }
    }

    /// A quoted scalar on one line, `pos` at its opening quote; `pos` ends after the closing
    /// one.
    fn quoted(&mut self, quote: u8) -> Fast<Scalar<'a>> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let Some(b) = self.peek() else {
                return Err(Decline);
            };
            match b {
                b'\n' => return Err(Decline),
                b'\'' if quote == b'\'' => {
                    if self.peek_at(self.pos + 1) == Some(b'\'') {
                        let s = owned.get_or_insert_with(String::new);
                        s.push_str(&self.text[run..self.pos + 1]);
                        self.pos += 2;
                        run = self.pos;
                        continue;
                    }
                    break;
                }
                b'"' if quote == b'"' => break,
                b'\\' if quote == b'"' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.pos]);
                    let c = self.escape()?;
                    s.push(c);
                    run = self.pos;
                    continue;
                }
                _ => self.pos += 1,
            }
        }
        let text = match owned {
            None => Cow::Borrowed(&self.text[start..self.pos]),
            Some(mut s) => {
                s.push_str(&self.text[run..self.pos]);
                Cow::Owned(s)
            }
        };
        self.pos += 1; // the closing quote
        Ok(Scalar { text, plain: false })
    }

    /// A double-quoted scalar's escape (YAML 1.2's set, as the general reader has it), `pos`
    /// at the backslash. A line continuation (backslash, line break) is declined.
    fn escape(&mut self) -> Fast<char> {
        let code = self.peek_at(self.pos + 1).ok_or(Decline)?;
        let c = match code {
            b'0' => '\0',
            b'a' => '\x07',
            b'b' => '\x08',
            b't' => '\t',
            b'n' => '\n',
            b'v' => '\x0b',
            b'f' => '\x0c',
            b'r' => '\r',
            b'e' => '\x1b',
            b' ' => ' ',
            b'"' => '"',
            b'/' => '/',
            b'\\' => '\\',
            b'N' => '\u{85}',
            b'_' => '\u{a0}',
            b'L' => '\u{2028}',
            b'P' => '\u{2029}',
            b'x' | b'u' | b'U' => {
                let len = match code {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let digits = self
                    .text
                    .get(self.pos + 2..self.pos + 2 + len)
                    .ok_or(Decline)?;
                if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Decline);
                }
                let value = u32::from_str_radix(digits, 16).map_err(|_| Decline)?;
                let c = char::from_u32(value).ok_or(Decline)?;
                self.pos += 2 + len;
                return Ok(c);
            }
            _ => return Err(Decline),
        };
        self.pos += 2;
        Ok(c)
    }

    /// A flow collection that closes on its line, `pos` at its `[` or `{`.
    fn flow_node(&mut self) -> Fast<Value> {
        match self.peek() {
            Some(b'[') => {
                self.open()?;
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_spaces();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_spaces();
                        items.push(self.flow_item()?);
                        self.skip_spaces();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(Decline),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Array(items))
            }
            Some(b'{') => {
                self.open()?;
                self.pos += 1;
                let mut map = Map::new();
                self.skip_spaces();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_spaces();
                        let start = self.pos;
                        let key = match self.peek() {
                            Some(q @ (b'\'' | b'"')) => self.quoted(q)?,
                            _ => self.flow_plain()?,
                        };
                        self.skip_spaces();
                        // `key: value`; a `:` right after the key or without a value is left to
                        // the general reader.
                        if self.peek() != Some(b':') || self.peek_at(self.pos + 1) != Some(b' ') {
                            return Err(Decline);
                        }
                        if self.pos - start > MAX_KEY_SPAN {
                            return Err(Decline);
                        }
                        self.pos += 2;
                        self.skip_spaces();
                        let k = key.key()?;
                        let v = self.flow_item()?;
                        map.insert(k, v);
                        self.skip_spaces();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(Decline),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Object(map))
            }
            _ => Err(Decline),
        }
    }

    /// An entry of a flow collection: a nested collection or a scalar.
    fn flow_item(&mut self) -> Fast<Value> {
        match self.peek() {
            Some(b'[' | b'{') => self.flow_node(),
            Some(q @ (b'\'' | b'"')) => self.quoted(q)?.value(),
            _ => self.flow_plain()?.value(),
        }
    }

    /// A plain scalar inside a flow collection: it ends at a flow indicator or at a `:` before
    /// a blank or a flow indicator. A comment (the collection going on on the next line) and
    /// `-` before a flow indicator after a space are declined.
    fn flow_plain(&mut self) -> Fast<Scalar<'a>> {
        if !self.plain_start(true) {
            return Err(Decline);
        }
        let start = self.pos;
        let mut i = start;
        loop {
            match self.peek_at(i) {
                None | Some(b'\n') => return Err(Decline),
                Some(b) if is_flow(b) => break,
                Some(b':') => {
                    let next = self.peek_at(i + 1);
                    if self.blank_or_end(i + 1) || next.is_some_and(is_flow) {
                        break;
                    }
                    i += 1;
                }
                Some(b' ') => match self.peek_at(i + 1) {
                    Some(b'#') => return Err(Decline),
                    Some(b'-') if self.peek_at(i + 2).is_some_and(is_flow) => {
                        return Err(Decline);
                    }
                    _ => i += 1,
                },
                _ => i += 1,
            }
        }
        let mut end = i;
        while end > start && self.src[end - 1] == b' ' {
            end -= 1;
        }
        self.pos = i;
        Ok(Scalar {
            text: Cow::Borrowed(&self.text[start..end]),
            plain: true,
        })
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
mod tests {
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
    fn node(rng: &mut StdRng, indent: usize, depth: usize, out: &mut String) {
        let step = rng.random_range(1..5);
        match rng.random_range(0..10) {
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
        let (mut docs, mut fast) = (0, 0);
        for round in 0..30_000 {
            let mut text = String::new();
            let depth = rng.random_range(1..5);
            map(&mut rng, 0, depth, &mut text);
            if round % 2 == 1 {
                for _ in 0..rng.random_range(1..4) {
                    text = mutate(&mut rng, &text);
                }
            }
            docs += 1;
            if agrees_with_general_reader(&text) {
                fast += 1;
            }
        }
        println!("fast path read {fast} of {docs} documents");
        assert!(
            fast * 3 > docs,
            "only {fast} of {docs} read by the fast path"
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
            "a: |\n  x\n",
            "a: >\n  x\n",
            "a: &x 1\nb: *x\n",
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
}
