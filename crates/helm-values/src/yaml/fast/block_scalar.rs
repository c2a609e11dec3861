//! Literal (`|`) and folded (`>`) block scalars after `key:` or `-`.
//!
//! Read: the header `|` or `>` with an optional chomping indicator (`-` strip, `+` keep) and
//! an optional comment; content lines at the indentation of the first one, which must be
//! deeper than the collection holding the scalar; empty lines (of at most that many
//! spaces) between them; trailing empty lines (kept with `+`). Folding keeps the line breaks
//! around lines more indented than the first. Declined (left to the general reader): an
//! indentation indicator, lines of spaces before the first content line, lines of more spaces
//! than the content's indentation, no content line, a last line without a line
//! break, and with `+` a comment line after the scalar.

use serde_json::Value;

use super::{Decline, Fast, Reader, memchr_newline};

/// What happens to the line breaks at the end of a block scalar.
#[derive(Clone, Copy, PartialEq)]
enum Chomping {
    /// `-`: none kept.
    Strip,
    /// The default: the last content line's break kept.
    Clip,
    /// `+`: every trailing break kept.
    Keep,
}

impl Reader<'_> {
    /// A block scalar, `pos` at its `|` or `>`, in a collection at column `parent`; `pos` ends
    /// at the start of the first line after it.
    pub(super) fn block_scalar(&mut self, parent: usize) -> Fast<Value> {
        let literal = self.peek() == Some(b'|');
        self.pos += 1;
        let chomping = match self.peek() {
            Some(b'-') => Chomping::Strip,
            Some(b'+') => Chomping::Keep,
            _ => Chomping::Clip,
        };
        if chomping != Chomping::Clip {
            self.pos += 1;
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(Decline); // an indentation indicator
        }
        self.finish_line()?;
        self.nodes += 1;

        let mut text = String::new();
        let mut indent: Option<usize> = None;
        // Whether a content line was read, and whether it was more indented than the first.
        let mut previous: Option<bool> = None;
        // Empty lines since the last content line (or since the header).
        let mut breaks = 0;
        loop {
            let start = self.pos;
            let mut i = start;
            while self.peek_at(i) == Some(b' ') {
                i += 1;
            }
            let spaces = i - start;
            match self.peek_at(i) {
                None if spaces == 0 => break,
                None => return Err(Decline), // spaces, then the end
                Some(b'\n') => {
                    // An empty line has at most the content's indentation in spaces; a line
                    // of more spaces is text, and before the first content line their number
                    // is not known yet.
                    if spaces > 0 && indent.is_none_or(|n| spaces > n) {
                        return Err(Decline);
                    }
                    breaks += 1;
                    self.pos = i + 1;
                    self.line_start = self.pos;
                    continue;
                }
                Some(_) => {}
            }
            let n = match indent {
                Some(n) => n,
                None if spaces > parent => *indent.insert(spaces),
                None => break, // no content: the next line belongs to the collections around
            };
            if spaces < n {
                break; // the next line of the collections around
            }
            let end = memchr_newline(&self.src[start..])
                .map(|e| start + e)
                .ok_or(Decline)?; // the last line without a break
            let line = &self.text[start + n..end];
            let spaced = line.starts_with(' ');
            // The line breaks before this line. Leading empty lines are line breaks, folded or
            // not. After a line, a literal scalar keeps its break; a folded one turns it into
            // a space, or drops it before empty lines, unless either line is more indented.
            match previous {
                Some(_) if literal => text.push('\n'),
                Some(previous_spaced) if previous_spaced || spaced => text.push('\n'),
                Some(_) if breaks == 0 => text.push(' '),
                _ => {}
            }
            text.extend(std::iter::repeat_n('\n', breaks));
            text.push_str(line);
            previous = Some(spaced);
            breaks = 0;
            self.pos = end + 1;
            self.line_start = self.pos;
        }
        if previous.is_none() {
            return Err(Decline); // no content
        }
        // With `+`, trailing empty lines are the scalar's up to a comment line; where such a
        // line ends them is left to the general reader.
        if chomping == Chomping::Keep && self.peek_line_is_comment() {
            return Err(Decline);
        }
        match chomping {
            Chomping::Strip => {}
            Chomping::Clip => text.push('\n'),
            Chomping::Keep => {
                text.push('\n');
                text.extend(std::iter::repeat_n('\n', breaks));
            }
        }
        Ok(Value::String(text))
    }

    /// Whether the next line that is not empty is a comment (`pos` at a line's start).
    fn peek_line_is_comment(&self) -> bool {
        let rest = &self.src[self.pos..];
        rest.iter()
            .find(|&&b| b != b' ' && b != b'\n')
            .is_some_and(|&b| b == b'#')
    }
}
