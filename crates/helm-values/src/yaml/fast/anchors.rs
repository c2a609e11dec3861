//! Anchors (`&name`) on values after `key:` or `-`, and aliases (`*name`) as whole values.
//!
//! An alias gives a copy of its anchor's value. go-yaml refuses a document in which too much
//! was decoded through aliases ("excessive aliasing", its defence against billion laughs);
//! the general reader applies that rule node by node ([`crate::yaml`]'s `Decoder`). The fast
//! path counts nodes the same way (the document once, every collection, key and scalar, an
//! alias once plus its anchor's nodes) and declines wherever the rule could fire, so that
//! the general reader gives the error:
//! - at the end of each alias: the ratio of aliased nodes is then at its highest and the
//!   allowed ratio at its lowest since the alias began (both counts grew together);
//! - between aliases only unaliased nodes are added, which lowers the ratio; the allowed ratio
//!   also falls, but only past 400,000 nodes, so a document over that with more than 100
//!   aliased nodes is declined whole.

use serde_json::Value;

use super::{Decline, Fast, Reader};
use crate::yaml::{ALIAS_BUDGET_FLAT_UP_TO, alias_budget_exceeded};

/// An anchor's value and how many nodes it took to decode.
pub(super) struct Anchor {
    value: Value,
    nodes: u64,
}

/// Whether `b` may be part of an anchor or alias name here (a narrower set than YAML's, which
/// is every character but blanks and flow indicators).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

impl<'a> Reader<'a> {
    /// The name after `&` or `*` at `pos`, which must end at a blank; `pos` ends after it.
    fn name(&mut self) -> Fast<&'a str> {
        if !self.anchors_allowed {
            return Err(Decline);
        }
        let start = self.pos + 1;
        let mut end = start;
        while self.peek_at(end).is_some_and(name_byte) {
            end += 1;
        }
        if end == start || !self.blank_or_end(end) {
            return Err(Decline);
        }
        self.pos = end;
        Ok(&self.text[start..end])
    }

    /// An anchor at `pos`, if there is one (`pos` then ends at what follows it, spaces
    /// skipped).
    pub(super) fn anchor(&mut self) -> Fast<Option<&'a str>> {
        if self.peek() != Some(b'&') {
            return Ok(None);
        }
        let name = self.name()?;
        self.skip_spaces();
        if self.peek() == Some(b'*') {
            return Err(Decline); // an anchor on an alias
        }
        Ok(Some(name))
    }

    /// Reads a value with `read` and, when `anchor` names one, defines the anchor as it.
    pub(super) fn with_anchor(
        &mut self,
        anchor: Option<&'a str>,
        read: impl FnOnce(&mut Self) -> Fast<Value>,
    ) -> Fast<Value> {
        let Some(name) = anchor else {
            return read(self);
        };
        // The general reader knows an anchor from where its node starts, so of two of one
        // name, one inside the other, the inner one would be the later.
        if self.defining.contains(&name) {
            return Err(Decline);
        }
        self.defining.push(name);
        let before = self.nodes;
        let value = read(self)?;
        self.defining.pop();
        let anchor = Anchor {
            value: value.clone(),
            nodes: self.nodes - before,
        };
        self.anchors.insert(name, anchor);
        Ok(value)
    }

    /// An alias at `pos`, the whole value on its line.
    pub(super) fn alias(&mut self) -> Fast<Value> {
        let name = self.name()?;
        self.finish_line()?;
        // The general reader knows an anchor from where its node starts: an alias inside the
        // anchor's own value would not name the earlier anchor of that name.
        if self.defining.contains(&name) {
            return Err(Decline);
        }
        let anchor = self.anchors.get(name).ok_or(Decline)?;
        self.nodes += 1 + anchor.nodes;
        self.aliased += anchor.nodes;
        if alias_budget_exceeded(self.aliased, self.nodes) {
            return Err(Decline);
        }
        Ok(anchor.value.clone())
    }

    /// The check left for the end of the document (see the module docs).
    pub(super) fn within_alias_budget_at_end(&self) -> Fast<()> {
        if self.aliased > 100 && self.nodes > ALIAS_BUDGET_FLAT_UP_TO {
            return Err(Decline);
        }
        Ok(())
    }
}
