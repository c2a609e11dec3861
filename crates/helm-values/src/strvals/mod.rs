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

use crate::value::Values;

mod assign;
mod scanner;

use scanner::{Parser, Stop};

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
    let mut p = Parser::new(expr, kind, reader, helm);
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
