//! The functions templates can call, all defined by one table: [`FUNCTIONS`].
//!
//! Three groups, marked by [`Origin`]:
//!
//! - **HyperFleet**: the function map of HyperFleet's adapter (`pkg/utils/template.go`), with
//!   its argument order and behaviour. Its string functions are Go's `strings` functions
//!   bound as they are, so the *string comes first* (`replace S OLD NEW`,
//!   `trimPrefix S PREFIX`): in a pipeline the piped value is the *last* argument, which makes
//!   `{{ .x | trimPrefix "v" }}` compute `strings.TrimPrefix("v", .x)`, exactly as HyperFleet
//!   does. Write `{{ trimPrefix .x "v" }}` to strip a prefix.
//! - **Go**: `text/template`'s built-ins.
//! - **Sprig**: three helpers HyperFleet does not have (`toJson`, `b64enc`, `b64dec`), kept
//!   for manifests; a template that uses them does not load in HyperFleet.
//!
//! The parser refuses a template that names a function not in the table
//! (`function "x" not defined`), and execution dispatches through the same entries.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::exec::TValue;
use crate::gofmt::Arg;

mod builtins;
mod compare;
mod convert;
mod strings;
#[cfg(test)]
mod tests;

use builtins::{
    b64dec, b64enc, call_value, date, html, index, js, length, now, print, printf, println, slice,
    to_json, urlquery,
};
use compare::{and, eq, ge, gt, le, lt, ne, not, or};
use convert::{to_float, to_int, to_string};
use strings::{
    contains, default, has_prefix, has_suffix, lower, quote, replace, title, trim, trim_prefix,
    trim_suffix, upper,
};

/// Where a function comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// HyperFleet's adapter function map.
    HyperFleet,
    /// Go's `text/template` built-ins.
    Go,
    /// Sprig helpers this port adds (not in HyperFleet).
    Sprig,
}

/// How many arguments a function takes (the piped value included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    fn admits(self, n: usize) -> bool {
        match self {
            Arity::Exactly(want) => n == want,
            Arity::AtLeast(want) => n >= want,
        }
    }
}

impl std::fmt::Display for Arity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arity::Exactly(n) => write!(f, "{n}"),
            Arity::AtLeast(n) => write!(f, "at least {n}"),
        }
    }
}

/// Why a function call failed. The messages follow Go's where Go has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FuncError {
    #[error("wrong number of args for {name}: want {want} got {got}")]
    Arity {
        name: &'static str,
        want: Arity,
        got: usize,
    },
    /// Argument `position` (1-based) is of the wrong type.
    #[error("wrong type for value; expected {expected}; got {got}")]
    ArgType {
        position: usize,
        expected: &'static str,
        got: &'static str,
    },
    #[error("{value} is not a time: {reason}")]
    BadTime { value: String, reason: String },
    #[error("incompatible types for comparison: {left} and {right}")]
    IncompatibleTypes {
        left: &'static str,
        right: &'static str,
    },
    #[error("invalid type for comparison: {type_name}")]
    InvalidComparison { type_name: &'static str },
    #[error("missing argument for comparison")]
    MissingComparison,
    #[error("non-comparable type {type_name}")]
    NonComparable { type_name: &'static str },
    #[error("index out of range: {index}")]
    IndexOutOfRange { index: i128 },
    #[error("cannot index slice/array with type {type_name}")]
    BadIndex { type_name: &'static str },
    #[error("cannot index slice/array with nil")]
    NilIndex,
    #[error("value has type {got}; should be string")]
    BadMapKey { got: &'static str },
    #[error("value is nil; should be of type string")]
    NilMapKey,
    #[error("can't index item of type {type_name}")]
    NotIndexable { type_name: &'static str },
    #[error("index of untyped nil")]
    IndexOfNil,
    #[error("index of nil pointer")]
    IndexThroughNil,
    #[error("can't slice item of type {type_name}")]
    NotSliceable { type_name: &'static str },
    #[error("slice of untyped nil")]
    SliceOfNil,
    #[error("too many slice indexes: {count}")]
    TooManySliceIndexes { count: usize },
    #[error("cannot 3-index slice a string")]
    ThreeIndexString,
    #[error("invalid slice index: {low} > {high}")]
    SliceIndexOrder { low: usize, high: usize },
    #[error("len of type {type_name}")]
    NoLength { type_name: &'static str },
    #[error("len of nil pointer")]
    LenOfNil,
    #[error("illegal base64 data: {0}")]
    Base64(String),
    /// `float "1e400"` is +Inf in Go; a JSON value cannot hold it.
    #[error("{input:?} converts to {value}, which a JSON value cannot hold")]
    NotFinite { input: String, value: String },
    /// `call`: data values are never functions.
    #[error("non-function of type {type_name}")]
    NotAFunction { type_name: &'static str },
    #[error("function \"{0}\" not defined")]
    Undefined(String),
    /// A Go form this port does not implement (rather than printing something else).
    #[error("not supported: {0}")]
    Unsupported(String),
}

type Impl = for<'a> fn(Vec<TValue<'a>>) -> Result<TValue<'a>, FuncError>;

/// One template function.
#[derive(Debug)]
pub struct Func {
    pub name: &'static str,
    /// How it is called, in its argument order (`trimPrefix S PREFIX`).
    pub usage: &'static str,
    pub doc: &'static str,
    pub origin: Origin,
    pub arity: Arity,
    imp: Impl,
}

impl Func {
    /// Calls the function with evaluated arguments (the piped value last).
    pub fn call<'a>(&self, args: Vec<TValue<'a>>) -> Result<TValue<'a>, FuncError> {
        if !self.arity.admits(args.len()) {
            return Err(FuncError::Arity {
                name: self.name,
                want: self.arity,
                got: args.len(),
            });
        }
        (self.imp)(args)
    }
}

const fn func(
    name: &'static str,
    usage: &'static str,
    origin: Origin,
    arity: Arity,
    imp: Impl,
    doc: &'static str,
) -> Func {
    Func {
        name,
        usage,
        doc,
        origin,
        arity,
        imp,
    }
}

use Arity::{AtLeast, Exactly};
use Origin::{Go, HyperFleet, Sprig};

/// Every function a template can call: name, usage (in argument order), origin, arity,
/// implementation, doc.
#[rustfmt::skip]
pub static FUNCTIONS: &[Func] = &[
    // HyperFleet: time.
    func("now", "now", HyperFleet, Exactly(0), now,
        "The current time (UTC)."),
    func("date", "date LAYOUT TIME", HyperFleet, Exactly(2), date,
        "TIME formatted with Go's reference layout (`now | date \"2006-01-02\"`). Besides a time, accepts an RFC 3339 string or Unix seconds (HyperFleet accepts only a time)."),
    func("dateFormat", "dateFormat LAYOUT TIME", HyperFleet, Exactly(2), date,
        "The same as `date`."),
    // HyperFleet: strings (Go's `strings` functions, string first).
    func("lower", "lower S", HyperFleet, Exactly(1), lower,
        "strings.ToLower."),
    func("upper", "upper S", HyperFleet, Exactly(1), upper,
        "strings.ToUpper."),
    func("title", "title S", HyperFleet, Exactly(1), title,
        "Title case, English rules (x/text `cases.Title`): first letter of each word upper, the rest lower."),
    func("trim", "trim S", HyperFleet, Exactly(1), trim,
        "strings.TrimSpace."),
    func("trimPrefix", "trimPrefix S PREFIX", HyperFleet, Exactly(2), trim_prefix,
        "strings.TrimPrefix: S without a leading PREFIX. Piped, the value is PREFIX."),
    func("trimSuffix", "trimSuffix S SUFFIX", HyperFleet, Exactly(2), trim_suffix,
        "strings.TrimSuffix: S without a trailing SUFFIX. Piped, the value is SUFFIX."),
    func("replace", "replace S OLD NEW", HyperFleet, Exactly(3), replace,
        "strings.ReplaceAll: every OLD in S replaced by NEW. Piped, the value is NEW."),
    func("contains", "contains S SUBSTR", HyperFleet, Exactly(2), contains,
        "strings.Contains."),
    func("hasPrefix", "hasPrefix S PREFIX", HyperFleet, Exactly(2), has_prefix,
        "strings.HasPrefix."),
    func("hasSuffix", "hasSuffix S SUFFIX", HyperFleet, Exactly(2), has_suffix,
        "strings.HasSuffix."),
    func("quote", "quote S", HyperFleet, Exactly(1), quote,
        "S as a Go string literal (`%q`)."),
    // HyperFleet: values.
    func("default", "default DEFAULT VALUE", HyperFleet, Exactly(2), default,
        "VALUE, or DEFAULT when VALUE is nil or \"\" (0, false and empty lists are kept). Piped, the value is VALUE."),
    func("int", "int V", HyperFleet, Exactly(1), to_int,
        "V as an int: ints as is, floats truncated, strings by strconv.Atoi (0 when not a plain decimal integer; clamped when out of range), anything else 0."),
    func("int64", "int64 V", HyperFleet, Exactly(1), to_int,
        "The same as `int`."),
    func("float", "float V", HyperFleet, Exactly(1), to_float,
        "V as a float64: numbers as is, strings by strconv.ParseFloat (0 when malformed), anything else 0. A string that parses to Inf or NaN is an error here (JSON cannot hold it)."),
    func("float64", "float64 V", HyperFleet, Exactly(1), to_float,
        "The same as `float`."),
    func("string", "string V", HyperFleet, Exactly(1), to_string,
        "V printed with `%v`."),
    // Go built-ins.
    func("and", "and A B...", Go, AtLeast(1), and,
        "The first falsy argument, or the last; stops evaluating at the first falsy one."),
    func("or", "or A B...", Go, AtLeast(1), or,
        "The first truthy argument, or the last; stops evaluating at the first truthy one."),
    func("not", "not A", Go, Exactly(1), not,
        "The negation of A's truth."),
    func("eq", "eq A B...", Go, AtLeast(1), eq,
        "A equals any of B...: bools, numbers, strings (nil equals only nil)."),
    func("ne", "ne A B", Go, Exactly(2), ne,
        "Not `eq A B`."),
    func("lt", "lt A B", Go, Exactly(2), lt,
        "A < B, for numbers or strings."),
    func("le", "le A B", Go, Exactly(2), le,
        "A <= B."),
    func("gt", "gt A B", Go, Exactly(2), gt,
        "A > B."),
    func("ge", "ge A B", Go, Exactly(2), ge,
        "A >= B."),
    func("len", "len V", Go, Exactly(1), length,
        "Length of a string (bytes), list or map."),
    func("index", "index V KEYS...", Go, AtLeast(1), index,
        "V[k1][k2]...: list and string positions, map keys (a missing key gives nil)."),
    func("slice", "slice V [I [J [K]]]", Go, AtLeast(1), slice,
        "V[I:J] of a string (bytes) or list."),
    func("print", "print ARGS...", Go, AtLeast(0), print,
        "fmt.Sprint."),
    func("printf", "printf FORMAT ARGS...", Go, AtLeast(1), printf,
        "fmt.Sprintf."),
    func("println", "println ARGS...", Go, AtLeast(0), println,
        "fmt.Sprintln."),
    func("html", "html ARGS...", Go, AtLeast(0), html,
        "The arguments' text, HTML-escaped."),
    func("js", "js ARGS...", Go, AtLeast(0), js,
        "The arguments' text, JavaScript-escaped."),
    func("urlquery", "urlquery ARGS...", Go, AtLeast(0), urlquery,
        "The arguments' text, escaped for a URL query (url.QueryEscape)."),
    func("call", "call F ARGS...", Go, AtLeast(1), call_value,
        "Calls a function value; data here never holds one, so always an error."),
    // Sprig helpers.
    func("toJson", "toJson V", Sprig, Exactly(1), to_json,
        "V as JSON, as Go's json.Marshal writes it (sorted keys, <>& escaped)."),
    func("b64enc", "b64enc V", Sprig, Exactly(1), b64enc,
        "V's text, standard base64."),
    func("b64dec", "b64dec S", Sprig, Exactly(1), b64dec,
        "S decoded from standard base64 (an error when it is not base64)."),
];

/// The table entry for `name`.
pub fn lookup(name: &str) -> Option<&'static Func> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Whether templates may call `name` (checked when a template is parsed).
pub fn exists(name: &str) -> bool {
    lookup(name).is_some()
}

/// Calls `name`. A function that returns one of its arguments (`default`, `and`, `or`,
/// `index`) hands it back as is, still borrowing the data.
pub fn call<'a>(name: &str, args: Vec<TValue<'a>>) -> Result<TValue<'a>, FuncError> {
    lookup(name)
        .ok_or_else(|| FuncError::Undefined(name.to_owned()))?
        .call(args)
}

fn text(s: impl Into<String>) -> TValue<'static> {
    TValue::owned(Value::String(s.into()))
}

fn boolean(b: bool) -> TValue<'static> {
    TValue::owned(Value::Bool(b))
}

fn type_of(value: &TValue<'_>) -> &'static str {
    Arg::of(value).type_name()
}

fn str_arg<'v>(args: &'v [TValue<'_>], i: usize) -> Result<&'v str, FuncError> {
    match args[i].json() {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FuncError::ArgType {
            position: i + 1,
            expected: "string",
            got: type_of(&args[i]),
        }),
    }
}

fn time_arg(args: &[TValue<'_>], i: usize) -> Result<DateTime<Utc>, FuncError> {
    let bad = |value: &dyn std::fmt::Display, reason: String| FuncError::BadTime {
        value: value.to_string(),
        reason,
    };
    match &args[i] {
        TValue::Time(t) => Ok(*t),
        TValue::Json(v) => match v.as_ref() {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad(&format!("{s:?}"), format!("not RFC 3339 ({e})"))),
            Value::Number(n) => n
                .as_i64()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .ok_or_else(|| bad(n, "not a Unix time in whole seconds".into())),
            _ => Err(FuncError::ArgType {
                position: i + 1,
                expected: "time.Time",
                got: type_of(&args[i]),
            }),
        },
    }
}
