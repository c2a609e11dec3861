//! Scalars on one line: plain, single-quoted and double-quoted, as values and as keys.

use std::borrow::Cow;

use serde_json::Value;

use super::{Decline, Fast, Item, MAX_KEY_SPAN, Reader};
use crate::yaml::{plain_key, plain_value};

/// Whether `b` is a flow indicator.
pub(super) fn is_flow(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// A scalar as written: its text (quotes and escapes resolved) and whether it was plain.
pub(super) struct Scalar<'a> {
    pub(super) text: Cow<'a, str>,
    pub(super) plain: bool,
}

impl Scalar<'_> {
    pub(super) fn value(self) -> Fast<Value> {
        if self.plain {
            // NaN and infinities are errors, which the general reader words.
            plain_value(&self.text).map_err(|_| Decline)
        } else {
            Ok(Value::String(self.text.into_owned()))
        }
    }

    pub(super) fn key(self) -> Fast<String> {
        if !self.plain {
            return Ok(self.text.into_owned());
        }
        if self.text == "<<" {
            return Err(Decline); // a merge key
        }
        plain_key(&self.text).map_err(|_| Decline)
    }
}

impl<'a> Reader<'a> {
    /// A scalar in block context, or a key when `:` and a space (or the line's end) follow it
    /// (then `pos` is after the `:`). A plain scalar ends at `: `, at ` #` or at the end of
    /// the line; it is never continued on the next line here.
    pub(super) fn scalar_or_key(&mut self) -> Fast<Item<'a>> {
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
    pub(super) fn plain_start(&self, flow: bool) -> bool {
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
    pub(super) fn quoted(&mut self, quote: u8) -> Fast<Scalar<'a>> {
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
}
