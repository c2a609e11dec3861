//! Flow collections (`[a, b]`, `{a: b}`) that close on the line they open.

use std::borrow::Cow;

use serde_json::Value;

use super::scalar::{Scalar, is_flow};
use super::{Decline, Fast, MAX_KEY_SPAN, Reader};

impl<'a> Reader<'a> {
    /// A flow collection that closes on its line, `pos` at its `[` or `{`.
    pub(super) fn flow_node(&mut self) -> Fast<Value> {
        match self.peek() {
            Some(b'[') => {
                self.open()?;
                self.pos += 1;
                let from = self.open_items.len();
                self.skip_spaces();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_spaces();
                        let item = self.flow_item()?;
                        self.open_items.push(item);
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
                Ok(self.close_sequence(from))
            }
            Some(b'{') => {
                self.open()?;
                self.pos += 1;
                let from = self.open_entries.len();
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
                        let k = self.key(key)?;
                        let v = self.flow_item()?;
                        self.open_entries.push((k, v));
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
                Ok(Value::Object(self.close_map(from)))
            }
            _ => Err(Decline),
        }
    }

    /// An entry of a flow collection: a nested collection or a scalar.
    fn flow_item(&mut self) -> Fast<Value> {
        match self.peek() {
            Some(b'[' | b'{') => self.flow_node(),
            Some(q @ (b'\'' | b'"')) => {
                let scalar = self.quoted(q)?;
                self.scalar(scalar)
            }
            _ => {
                let scalar = self.flow_plain()?;
                self.scalar(scalar)
            }
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
