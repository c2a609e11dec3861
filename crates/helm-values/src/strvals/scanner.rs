//! Reading a `--set` expression: the runes up to a stop character (with `\` escapes), keys,
//! list indexes, `{a,b}` lists, JSON values and the scalar a value converts to. What each read
//! means for the values is in [`super::assign`].

use serde_json::Value;

use super::{FileReader, HelmVersion, SetError, SetKind};
use crate::typing::typed_value;

/// Why parsing stopped: end of input (Go's io.EOF) or a real error.
pub(super) enum Stop {
    Eof,
    Err(SetError),
}

impl From<String> for Stop {
    fn from(s: String) -> Self {
        Stop::Err(SetError::Syntax(s))
    }
}

impl From<SetError> for Stop {
    fn from(e: SetError) -> Self {
        Stop::Err(e)
    }
}

pub(super) type Step<T> = Result<T, Stop>;

pub(super) fn err<T>(msg: impl Into<String>) -> Step<T> {
    Err(Stop::Err(SetError::Syntax(msg.into())))
}

/// Go's %q for a rune slice (close enough for messages: Rust's escape_debug).
pub(super) fn q(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// The parser's state: the expression's runes and where reading stands.
pub(super) struct Parser<'r, 'a> {
    pub(super) sc: Vec<char>,
    pub(super) pos: usize,
    pub(super) kind: SetKind,
    pub(super) reader: Option<&'r mut FileReader<'a>>,
    pub(super) helm: HelmVersion,
    /// Open `key`/`list_item` calls: Helm bounds `a.b.c` nesting but not `a[0][0]...` or
    /// `a[0].b[0]...`, which would otherwise recurse as deep as the expression is long.
    pub(super) depth: usize,
}

impl<'r, 'a> Parser<'r, 'a> {
    pub(super) fn new(
        expr: &str,
        kind: SetKind,
        reader: Option<&'r mut FileReader<'a>>,
        helm: HelmVersion,
    ) -> Self {
        Parser {
            sc: expr.chars().collect(),
            pos: 0,
            kind,
            reader,
            helm,
            depth: 0,
        }
    }
}

impl Parser<'_, '_> {
    pub(super) fn read(&mut self) -> Option<char> {
        let c = self.sc.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    pub(super) fn unread(&mut self) {
        self.pos -= 1;
    }

    pub(super) fn literal(&self) -> bool {
        self.kind == SetKind::SetLiteral
    }

    /// Reads until a stop rune; `\` escapes the next rune except in literal mode. Returns the
    /// runes read and the stop rune, or `Eof` with what was read.
    pub(super) fn runes_until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let mut v = String::new();
        loop {
            match self.read() {
                None => return (v, None),
                Some(r) if stop.contains(&r) => return (v, Some(r)),
                Some('\\') if !self.literal() => match self.read() {
                    None => return (v, None),
                    Some(next) => v.push(next),
                },
                Some(r) => v.push(r),
            }
        }
    }

    pub(super) fn convert(&mut self, raw: &str) -> Result<Value, SetError> {
        match self.kind {
            SetKind::Set => Ok(typed_value(raw, false)),
            SetKind::SetString | SetKind::SetLiteral => Ok(typed_value(raw, true)),
            SetKind::SetJson => Ok(typed_value(raw, false)),
            SetKind::SetFile => match self.reader.as_mut() {
                Some(read) => read(raw).map_err(|source| SetError::ReadFile {
                    path: raw.to_string(),
                    source,
                }),
                None => Err(SetError::NoFileReader(raw.to_string())),
            },
        }
    }

    /// Decodes one JSON value from the rest of the input, as Go's json.Decoder does, and
    /// consumes exactly its characters.
    pub(super) fn json_value(&mut self) -> Step<Value> {
        let rest: String = self.sc[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(mut v)) => {
                let consumed = rest[..stream.byte_offset()].chars().count();
                self.pos += consumed;
                crate::value::numbers_to_float(&mut v);
                Ok(v)
            }
            Some(Err(e)) => err(e.to_string()),
            None => err("unexpected end of JSON input"),
        }
    }

    /// Skips blanks; true (and consumes a `,`) when the value is empty.
    pub(super) fn empty_val(&mut self) -> bool {
        loop {
            match self.read() {
                None => return true,
                Some(',') => return true,
                Some(c) if c.is_whitespace() => continue,
                Some(_) => {
                    self.unread();
                    return false;
                }
            }
        }
    }

    pub(super) fn key_index(&mut self) -> Step<i64> {
        let (v, last) = self.runes_until(&[']']);
        if last.is_none() {
            return match self.helm {
                HelmVersion::V3 => err("error parsing index: EOF"),
                HelmVersion::V4 => Err(Stop::Eof),
            };
        }
        go_atoi(&v).map_err(|e| Stop::from(format!("error parsing index: {e}")))
    }

    pub(super) fn val_list(&mut self) -> Result<Vec<Value>, ListErr> {
        match self.read() {
            None => return Err(ListErr::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Err(ListErr::NotList);
            }
        }
        let mut list = Vec::new();
        loop {
            let (rs, last) = self.runes_until(&[',', '}']);
            match last {
                None => {
                    return Err(ListErr::Err(SetError::Syntax(
                        "list must terminate with '}'".into(),
                    )));
                }
                Some('}') => {
                    if let Some(r) = self.read()
                        && r != ','
                    {
                        self.unread();
                    }
                    let v = self.convert(&rs).map_err(ListErr::Err)?;
                    list.push(v);
                    return Ok(list);
                }
                Some(_) => {
                    let v = self.convert(&rs).map_err(ListErr::Err)?;
                    list.push(v);
                }
            }
        }
    }
}

/// Why a value is not a `{a,b}` list.
pub(super) enum ListErr {
    Eof,
    NotList,
    Err(SetError),
}

/// Go's `strconv.Atoi` with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", q(s)));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", q(s)))
}
