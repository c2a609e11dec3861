//! Helm's `--set` family grammar (pkg/strvals): `a.b=c,d[0]=e,f={x,y}`.
//!
//! One parser serves all five flags, switched by [`SetKind`], because Helm's parsers differ
//! only in how values are read: `--set` types scalars, `--set-string` does not, `--set-file`
//! reads each value as a file path, `--set-json` decodes a JSON value, and `--set-literal`
//! takes everything after the first `=` verbatim (and its keys know no `\` escapes and no `,`).
//!
//! Helm's parser recovers Go panics (a key used as a map that holds a string, ...) into
//! "unable to parse key: interface conversion: ..." errors; this one returns the same text.

use serde_json::{Map, Value};

use crate::typing::typed_value;
use crate::value::{MAX_DEPTH, Values, go_type_name};

/// Largest list index Helm accepts (`strvals.MaxIndex`).
pub const MAX_INDEX: i64 = 65536;
/// Deepest `a.b.c` nesting Helm accepts (`strvals.MaxNestedNameLevel`).
pub const MAX_NESTED_NAME_LEVEL: usize = 30;

/// Which Helm's parser to follow where 3.x and 4.x differ.
///
/// Helm 4 wraps errors with `%w` and its parse loop ends on any error that *is* `io.EOF`, so
/// an index cut short (`a[1`) is silently the end of input there, and an error in Helm 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HelmVersion {
    /// Helm 3 (3.17).
    #[default]
    V3,
    /// Helm 4 (4.1).
    V4,
}

/// Which flag an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `--set`: scalars typed (int64, bool, null).
    Set,
    /// `--set-string`: every scalar a string.
    SetString,
    /// `--set-file`: each value is a path whose content becomes a string.
    SetFile,
    /// `--set-json`: each value is JSON.
    SetJson,
    /// `--set-literal`: one key, the rest of the expression is the string value.
    SetLiteral,
}

impl SetKind {
    /// The flag's name as Helm spells it.
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Set => "--set",
            SetKind::SetString => "--set-string",
            SetKind::SetFile => "--set-file",
            SetKind::SetJson => "--set-json",
            SetKind::SetLiteral => "--set-literal",
        }
    }
}

/// Reads a `--set-file` path into the value it stands for.
pub type FileReader<'a> = dyn FnMut(&str) -> std::io::Result<Value> + 'a;

/// Why a `--set`-family expression was refused. Each message is Helm's own text (without its
/// "failed parsing --set data" prefix), so kantup and helm say the same.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The expression breaks Helm's grammar or one of its limits (index, nesting, ...).
    #[error("{0}")]
    Syntax(String),
    /// A `--set-file` value could not be read.
    #[error("open {path}: {source}")]
    ReadFile {
        /// The path the expression gave.
        path: String,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// A `--set-file` expression was parsed without a [`FileReader`].
    #[error("no reader for --set-file value {0:?}")]
    NoFileReader(String),
}

/// Parses `expr` into `dest` as Helm's `strvals.ParseInto` family does. The error's message
/// is Helm's (without its "failed parsing --set data" prefix).
///
/// ```
/// use kantup_helm_values::strvals::{parse_into, SetKind};
/// let mut v = serde_json::Map::new();
/// parse_into("image.tag=1.2,replicas=3,list={a,b}", SetKind::Set, &mut v, None).unwrap();
/// assert_eq!(serde_json::Value::Object(v),
///     serde_json::json!({"image": {"tag": "1.2"}, "replicas": 3, "list": ["a", "b"]}));
/// ```
pub fn parse_into(
    expr: &str,
    kind: SetKind,
    dest: &mut Values,
    reader: Option<&mut FileReader<'_>>,
) -> Result<(), SetError> {
    parse_into_as(expr, kind, dest, reader, HelmVersion::V3)
}

/// [`parse_into`] following a given Helm major version's parser.
pub fn parse_into_as(
    expr: &str,
    kind: SetKind,
    dest: &mut Values,
    reader: Option<&mut FileReader<'_>>,
    helm: HelmVersion,
) -> Result<(), SetError> {
    let mut p = Parser {
        sc: expr.chars().collect(),
        pos: 0,
        kind,
        reader,
        helm,
        depth: 0,
    };
    loop {
        match p.key(dest, 0) {
            Ok(()) => continue,
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Err(e)) => return Err(e),
        }
    }
}

/// Parses `expr` into a new map (Helm's `strvals.Parse`, `ParseString`, ...).
pub fn parse(expr: &str, kind: SetKind) -> Result<Values, SetError> {
    let mut v = Map::new();
    parse_into(expr, kind, &mut v, None)?;
    Ok(v)
}

/// Why parsing stopped: end of input (Go's io.EOF) or a real error.
enum Stop {
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

type Step<T> = Result<T, Stop>;

fn err<T>(msg: impl Into<String>) -> Step<T> {
    Err(Stop::Err(SetError::Syntax(msg.into())))
}

fn panic_msg(got: &Value, want: &str) -> Stop {
    Stop::Err(SetError::Syntax(format!(
        "unable to parse key: interface conversion: interface {{}} is {}, not {want}",
        go_type_name(got)
    )))
}

const MAP_T: &str = "map[string]interface {}";
const LIST_T: &str = "[]interface {}";

/// Go's %q for a rune slice (close enough for messages: Rust's escape_debug).
fn q(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

struct Parser<'r, 'a> {
    sc: Vec<char>,
    pos: usize,
    kind: SetKind,
    reader: Option<&'r mut FileReader<'a>>,
    helm: HelmVersion,
    /// Open `key`/`list_item` calls: Helm bounds `a.b.c` nesting but not `a[0][0]...` or
    /// `a[0].b[0]...`, which would otherwise recurse as deep as the expression is long.
    depth: usize,
}

impl Parser<'_, '_> {
    fn read(&mut self) -> Option<char> {
        let c = self.sc.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    fn literal(&self) -> bool {
        self.kind == SetKind::SetLiteral
    }

    /// Reads until a stop rune; `\` escapes the next rune except in literal mode. Returns the
    /// runes read and the stop rune, or `Eof` with what was read.
    fn runes_until(&mut self, stop: &[char]) -> (String, Option<char>) {
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

    fn convert(&mut self, raw: &str) -> Result<Value, SetError> {
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

    fn key(&mut self, data: &mut Values, level: usize) -> Step<()> {
        self.nested(|p| p.key_inner(data, level))
    }

    fn list_item(&mut self, list: &mut Vec<Value>, i: i64, level: usize) -> Step<()> {
        self.nested(|p| p.list_item_inner(list, i, level))
    }

    /// Runs one level of nesting, refusing more than [`MAX_DEPTH`].
    fn nested(&mut self, step: impl FnOnce(&mut Self) -> Step<()>) -> Step<()> {
        if self.depth >= MAX_DEPTH {
            return err(format!(
                "value nested deeper than {MAX_DEPTH} maps and lists (kantup's limit)"
            ));
        }
        self.depth += 1;
        let result = step(self);
        self.depth -= 1;
        result
    }

    fn key_inner(&mut self, data: &mut Values, mut level: usize) -> Step<()> {
        let stop: &[char] = if self.literal() {
            &['=', '[', '.']
        } else {
            &['=', '[', ',', '.']
        };
        let (k, last) = self.runes_until(stop);
        match last {
            None => {
                if k.is_empty() {
                    return Err(Stop::Eof);
                }
                err(format!("key {} has no value", q(&k)))
            }
            Some('[') => {
                let i = self.key_index()?;
                let mut list = match data.get_mut(&k) {
                    Some(Value::Array(l)) => std::mem::take(l),
                    Some(other) => return Err(panic_msg(other, LIST_T)),
                    None => Vec::new(),
                };
                let res = self.list_item(&mut list, i, level);
                set(data, &k, Value::Array(list));
                res
            }
            Some('=') => self.key_value(data, &k),
            Some(',') => {
                set(data, &k, Value::String(String::new()));
                err(format!("key {} has no value (cannot end with ,)", q(&k)))
            }
            Some(_) => {
                // '.'
                level += 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                    ));
                }
                let existed = data.contains_key(&k);
                let mut inner = match data.get_mut(&k) {
                    Some(Value::Object(m)) => std::mem::take(m),
                    Some(other) => return Err(panic_msg(other, MAP_T)),
                    None => Map::new(),
                };
                let res = self.key(&mut inner, level);
                let empty = inner.is_empty();
                if existed || !empty {
                    set(data, &k, Value::Object(inner));
                }
                match res {
                    Ok(()) if empty => err(format!("key map {} has no value", q(&k))),
                    other => other,
                }
            }
        }
    }

    /// After `key=`: read the value as the flag kind wants it.
    fn key_value(&mut self, data: &mut Values, k: &str) -> Step<()> {
        match self.kind {
            SetKind::SetLiteral => {
                let (v, _) = self.runes_until(&[]);
                set(data, k, Value::String(v));
                Ok(())
            }
            SetKind::SetJson => {
                if self.empty_val() {
                    set(data, k, Value::Null);
                    return Ok(());
                }
                let v = self.json_value()?;
                set(data, k, v);
                self.empty_val();
                Ok(())
            }
            _ => match self.val_list() {
                Ok(list) => {
                    set(data, k, Value::Array(list));
                    Ok(())
                }
                Err(ListErr::Eof) => {
                    set(data, k, Value::String(String::new()));
                    Err(Stop::Eof)
                }
                Err(ListErr::NotList) => {
                    let (rs, _) = self.runes_until(&[',']);
                    let v = self.convert(&rs)?;
                    set(data, k, v);
                    Ok(())
                }
                Err(ListErr::Err(e)) => Err(Stop::Err(e)),
            },
        }
    }

    /// Decodes one JSON value from the rest of the input, as Go's json.Decoder does, and
    /// consumes exactly its characters.
    fn json_value(&mut self) -> Step<Value> {
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
    fn empty_val(&mut self) -> bool {
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

    fn key_index(&mut self) -> Step<i64> {
        let (v, last) = self.runes_until(&[']']);
        if last.is_none() {
            return match self.helm {
                HelmVersion::V3 => err("error parsing index: EOF"),
                HelmVersion::V4 => Err(Stop::Eof),
            };
        }
        go_atoi(&v).map_err(|e| Stop::from(format!("error parsing index: {e}")))
    }

    fn list_item_inner(&mut self, list: &mut Vec<Value>, i: i64, level: usize) -> Step<()> {
        if i < 0 {
            return err(format!("negative {i} index not allowed"));
        }
        let (k, last) = self.runes_until(&['[', '.', '=']);
        if !k.is_empty() {
            return err(format!("unexpected data at end of array index: {}", q(&k)));
        }
        match last {
            None => Err(Stop::Eof),
            Some('=') => match self.kind {
                SetKind::SetLiteral => {
                    let (v, _) = self.runes_until(&[]);
                    set_index(list, i, Value::String(v))
                }
                SetKind::SetJson => {
                    if self.empty_val() {
                        return set_index(list, i, Value::Null);
                    }
                    let v = self.json_value()?;
                    set_index(list, i, v)?;
                    self.empty_val();
                    Ok(())
                }
                _ => match self.val_list() {
                    Ok(vl) => set_index(list, i, Value::Array(vl)),
                    Err(ListErr::Eof) => set_index(list, i, Value::String(String::new())),
                    Err(ListErr::NotList) => {
                        let (rs, _) = self.runes_until(&[',']);
                        let v = self.convert(&rs)?;
                        set_index(list, i, v)
                    }
                    Err(ListErr::Err(e)) => Err(Stop::Err(e)),
                },
            },
            Some('[') => {
                let next = self.key_index()?;
                let mut current = Vec::new();
                if let Some(existing) = list.get_mut(i as usize) {
                    match existing {
                        Value::Null => {}
                        Value::Array(l) => current = std::mem::take(l),
                        other => return Err(panic_msg(other, LIST_T)),
                    }
                }
                let res = self.list_item(&mut current, next, level);
                if let Err(e) = res {
                    // Go returns the outer list unchanged; put back what we took.
                    if let Some(Value::Array(l)) = list.get_mut(i as usize) {
                        *l = current;
                    }
                    return Err(e);
                }
                set_index(list, i, Value::Array(current))
            }
            Some(_) => {
                // '.'
                let mut inner = Map::new();
                if let Some(existing) = list.get_mut(i as usize) {
                    match existing {
                        Value::Object(m) => inner = std::mem::take(m),
                        // Indices out of order: Helm replaces whatever is there with a map.
                        other => *other = Value::Object(Map::new()),
                    }
                }
                let res = self.key(&mut inner, level);
                if let Err(e) = res {
                    if let Some(slot) = list.get_mut(i as usize) {
                        *slot = Value::Object(inner);
                    }
                    return Err(e);
                }
                set_index(list, i, Value::Object(inner))
            }
        }
    }

    fn val_list(&mut self) -> Result<Vec<Value>, ListErr> {
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

enum ListErr {
    Eof,
    NotList,
    Err(SetError),
}

fn set(data: &mut Values, key: &str, val: Value) {
    if key.is_empty() {
        return;
    }
    data.insert(key.to_string(), val);
}

fn set_index(list: &mut Vec<Value>, index: i64, val: Value) -> Step<()> {
    if index < 0 {
        return err(format!("negative {index} index not allowed"));
    }
    if index > MAX_INDEX {
        return err(format!(
            "index of {index} is greater than maximum supported index of {MAX_INDEX}"
        ));
    }
    let index = index as usize;
    if list.len() <= index {
        list.resize(index + 1, Value::Null);
    }
    list[index] = val;
    Ok(())
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
