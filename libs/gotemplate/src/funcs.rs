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

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Number, Value};

use crate::exec::TValue;
use crate::gofmt::{self, Arg};
use crate::golayout;

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

fn now(_: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(TValue::Time(Utc::now()))
}

fn date(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let layout = str_arg(&args, 0)?;
    Ok(text(golayout::format(&time_arg(&args, 1)?, layout)))
}

/// Go's `unicode.ToLower`/`ToUpper` map one character to one; where Rust's full mapping gives
/// several, Go's simple mapping keeps the character (or, for `İ`, gives `i`).
fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match mapped.len() {
                1 => mapped.remove(0),
                _ if !upper && c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

fn lower(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(map_chars(str_arg(&args, 0)?, false)))
}

fn upper(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(map_chars(str_arg(&args, 0)?, true)))
}

fn title(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(title_case(str_arg(&args, 0)?)))
}

/// Joins two word characters across it (`o'neil`, `x.y`, `a:b`) as Unicode word breaking
/// does between letters.
fn joins_letters(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ':'
            | '\u{b7}'
            | '\u{2019}'
            | '\u{2018}'
            | '\u{2024}'
            | '\u{fe52}'
            | '\u{ff07}'
            | '\u{ff0e}'
    )
}

/// Joins two digits across it (`1,000`, `1.5`).
fn joins_digits(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ','
            | ';'
            | '\u{2019}'
            | '\u{2024}'
            | '\u{fe50}'
            | '\u{fe52}'
            | '\u{ff07}'
            | '\u{ff0c}'
            | '\u{ff0e}'
    )
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The title-case form of a word's first letter (Unicode's full titlecase mapping): the
/// upper case, except for digraphs (`ǆ` → `ǅ`), `ß` → `Ss`, ligatures (`ﬁ` → `Fi`) and Greek
/// letters with iota subscript.
fn title_char(c: char, out: &mut String) {
    let u = c as u32;
    let mapped: Option<&str> = match u {
        0x1c4..=0x1c6 => Some("\u{1c5}"),
        0x1c7..=0x1c9 => Some("\u{1c8}"),
        0x1ca..=0x1cc => Some("\u{1cb}"),
        0x1f1..=0x1f3 => Some("\u{1f2}"),
        0xdf => Some("Ss"),
        0xfb00 => Some("Ff"),
        0xfb01 => Some("Fi"),
        0xfb02 => Some("Fl"),
        0xfb03 => Some("Ffi"),
        0xfb04 => Some("Ffl"),
        0xfb05 | 0xfb06 => Some("St"),
        0x587 => Some("\u{535}\u{582}"),
        0xfb13 => Some("\u{544}\u{576}"),
        0xfb14 => Some("\u{544}\u{565}"),
        0xfb15 => Some("\u{544}\u{56b}"),
        0xfb16 => Some("\u{54e}\u{576}"),
        0xfb17 => Some("\u{544}\u{56d}"),
        0x1fb2 => Some("\u{1fba}\u{345}"),
        0x1fb4 => Some("\u{386}\u{345}"),
        0x1fc2 => Some("\u{1fca}\u{345}"),
        0x1fc4 => Some("\u{389}\u{345}"),
        0x1ff2 => Some("\u{1ffa}\u{345}"),
        0x1ff4 => Some("\u{38f}\u{345}"),
        0x1fb7 => Some("\u{391}\u{342}\u{345}"),
        0x1fc7 => Some("\u{397}\u{342}\u{345}"),
        0x1ff7 => Some("\u{3a9}\u{342}\u{345}"),
        _ => None,
    };
    if let Some(text) = mapped {
        out.push_str(text);
        return;
    }
    let single = match u {
        0x1f80..=0x1f87 | 0x1f90..=0x1f97 | 0x1fa0..=0x1fa7 => char::from_u32(u + 8),
        0x1f88..=0x1f8f | 0x1f98..=0x1f9f | 0x1fa8..=0x1faf => Some(c),
        0x1fb3 | 0x1fbc => Some('\u{1fbc}'),
        0x1fc3 | 0x1fcc => Some('\u{1fcc}'),
        0x1ff3 | 0x1ffc => Some('\u{1ffc}'),
        _ => None,
    };
    match single {
        Some(t) => out.push(t),
        None => out.extend(c.to_uppercase()),
    }
}

/// x/text's English title casing: each word's first letter in title case, its other letters
/// in lower case (full mappings, with the Greek final sigma). Words are split as Unicode
/// word breaking does for common text.
fn title_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut seen_letter = false;
    for (i, &c) in chars.iter().enumerate() {
        let joined = !word_char(c) && i > 0 && in_word && {
            let (before, after) = (chars[i - 1], chars.get(i + 1).copied());
            after.is_some_and(|a| {
                (before.is_alphabetic() && a.is_alphabetic() && joins_letters(c))
                    || (before.is_numeric() && a.is_numeric() && joins_digits(c))
            })
        };
        if word_char(c) || joined {
            if !in_word {
                in_word = true;
                seen_letter = false;
            }
        } else {
            in_word = false;
        }
        if in_word && c.is_alphabetic() {
            if !seen_letter {
                title_char(c, &mut out);
                seen_letter = true;
            } else if c == '\u{3a3}' && !chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) {
                out.push('\u{3c2}');
            } else {
                out.extend(c.to_lowercase());
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn trim(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(str_arg(&args, 0)?.trim()))
}

fn trim_prefix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    let prefix = str_arg(&args, 1)?;
    Ok(text(s.strip_prefix(prefix).unwrap_or(s)))
}

fn trim_suffix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    let suffix = str_arg(&args, 1)?;
    Ok(text(s.strip_suffix(suffix).unwrap_or(s)))
}

fn replace(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    Ok(text(s.replace(str_arg(&args, 1)?, str_arg(&args, 2)?)))
}

fn contains(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.contains(str_arg(&args, 1)?)))
}

fn has_prefix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.starts_with(str_arg(&args, 1)?)))
}

fn has_suffix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.ends_with(str_arg(&args, 1)?)))
}

fn quote(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::quote(str_arg(&args, 0)?)))
}

fn default(mut args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let value = args.pop().expect("arity checked");
    let fallback = args.pop().expect("arity checked");
    let empty = matches!(value.json(), Some(Value::Null))
        || value.json().and_then(Value::as_str) == Some("");
    Ok(if empty { fallback } else { value })
}

/// `strconv.Atoi` with its error ignored, as HyperFleet calls it: 0 for anything but an
/// optionally signed run of decimal digits; the nearest int when out of range.
fn atoi(s: &str) -> i64 {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value * 10 + i128::from(b - b'0');
        if value > i128::from(i64::MAX) + 1 {
            break;
        }
    }
    let value = if negative { -value } else { value };
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn to_int(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let n: i64 = match Arg::of(&args[0]) {
        Arg::Int(i) => i,
        Arg::Uint(u) => i64::try_from(u).unwrap_or(i64::MAX),
        // Go's int(float64) truncates toward zero.
        Arg::Float(f) => f.trunc() as i64,
        Arg::Str(s) => atoi(s),
        _ => 0,
    };
    Ok(TValue::owned(n.into()))
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `strconv.ParseFloat(s, 64)` with its error ignored, as HyperFleet calls it: 0 when the
/// syntax is wrong, ±Inf when out of range.
fn parse_float(s: &str) -> f64 {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return sign * f64::INFINITY;
    }
    if lower == "nan" {
        // Go accepts no sign before NaN.
        return if body.len() == s.len() { f64::NAN } else { 0.0 };
    }
    if s.contains('_') && !underscores_ok(s) {
        return 0.0;
    }
    let body = body.replace('_', "");
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return hex_float(hex).map_or(0.0, |f| sign * f);
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return 0.0;
    }
    body.parse::<f64>().map_or(0.0, |f| sign * f)
}

/// A hexadecimal float body (`1.8p3`): Go requires the `p` exponent.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let shift = exponent - 4 * i32::try_from(fraction.len()).ok()?;
    Some(value * 2f64.powi(shift))
}

fn to_float(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let f: f64 = match Arg::of(&args[0]) {
        Arg::Int(i) => i as f64,
        Arg::Uint(u) => u as f64,
        Arg::Float(f) => f,
        Arg::Str(s) => parse_float(s),
        _ => 0.0,
    };
    let number = Number::from_f64(f).ok_or_else(|| FuncError::NotFinite {
        input: args[0].print(),
        value: if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        },
    })?;
    Ok(TValue::owned(Value::Number(number)))
}

fn to_string(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::print_one(&args[0])))
}

fn and(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let last = args.len() - 1;
    Ok(args
        .into_iter()
        .enumerate()
        .find(|(i, a)| !a.truthy() || *i == last)
        .map(|(_, a)| a)
        .expect("arity checked"))
}

fn or(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let last = args.len() - 1;
    Ok(args
        .into_iter()
        .enumerate()
        .find(|(i, a)| a.truthy() || *i == last)
        .map(|(_, a)| a)
        .expect("arity checked"))
}

fn not(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!args[0].truthy()))
}

/// Go's comparison kinds; lists, maps and times have none (`invalidKind`), like nil.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    None,
}

fn kind(arg: &Arg<'_>) -> Kind {
    match arg {
        Arg::Bool(_) => Kind::Bool,
        Arg::Int(_) | Arg::Uint(_) => Kind::Int,
        Arg::Float(_) => Kind::Float,
        Arg::Str(_) => Kind::Str,
        _ => Kind::None,
    }
}

fn int_of(arg: &Arg<'_>) -> i128 {
    match arg {
        Arg::Int(i) => i128::from(*i),
        Arg::Uint(u) => i128::from(*u),
        _ => 0,
    }
}

fn float_of(arg: &Arg<'_>) -> f64 {
    match arg {
        Arg::Float(f) => *f,
        other => int_of(other) as f64,
    }
}

/// `a == b` by Go's `eq`. An int and a float compare by value: a JSON number has no Go type
/// of its own (HyperFleet's params hold float64 where this port may see an integer).
fn equal(a: &Arg<'_>, b: &Arg<'_>) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    match (ka, kb) {
        (Kind::Int, Kind::Int) => Ok(int_of(a) == int_of(b)),
        (Kind::Int | Kind::Float, Kind::Int | Kind::Float) => Ok(float_of(a) == float_of(b)),
        (Kind::Bool, Kind::Bool) => Ok(matches!((a, b), (Arg::Bool(x), Arg::Bool(y)) if x == y)),
        (Kind::Str, Kind::Str) => Ok(matches!((a, b), (Arg::Str(x), Arg::Str(y)) if x == y)),
        (Kind::None, Kind::None) => match (a, b) {
            (Arg::Nil, Arg::Nil) => Ok(true),
            (Arg::Nil, _) | (_, Arg::Nil) => Ok(false),
            (Arg::Time(x), Arg::Time(y)) => Ok(x == y),
            (_, other) => Err(FuncError::NonComparable {
                type_name: other.type_name(),
            }),
        },
        _ if matches!(a, Arg::Nil) || matches!(b, Arg::Nil) => Ok(false),
        _ => Err(FuncError::IncompatibleTypes {
            left: a.type_name(),
            right: b.type_name(),
        }),
    }
}

/// `a < b` by Go's `lt`: numbers and strings only.
fn less(a: &Arg<'_>, b: &Arg<'_>) -> Result<bool, FuncError> {
    for arg in [a, b] {
        if kind(arg) == Kind::None {
            return Err(FuncError::InvalidComparison {
                type_name: arg.type_name(),
            });
        }
    }
    match (kind(a), kind(b)) {
        (Kind::Int, Kind::Int) => Ok(int_of(a) < int_of(b)),
        (Kind::Int | Kind::Float, Kind::Int | Kind::Float) => Ok(float_of(a) < float_of(b)),
        (Kind::Str, Kind::Str) => Ok(matches!((a, b), (Arg::Str(x), Arg::Str(y)) if x < y)),
        (Kind::Bool, Kind::Bool) => Err(FuncError::InvalidComparison { type_name: "bool" }),
        _ => Err(FuncError::IncompatibleTypes {
            left: a.type_name(),
            right: b.type_name(),
        }),
    }
}

fn eq(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let (first, rest) = args.split_first().expect("arity checked");
    if rest.is_empty() {
        return Err(FuncError::MissingComparison);
    }
    let first = Arg::of(first);
    for other in rest {
        if equal(&first, &Arg::of(other))? {
            return Ok(boolean(true));
        }
    }
    Ok(boolean(false))
}

fn ne(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!equal(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}

fn lt(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(less(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}

fn less_or_equal(args: &[TValue<'_>]) -> Result<bool, FuncError> {
    let (a, b) = (Arg::of(&args[0]), Arg::of(&args[1]));
    Ok(less(&a, &b)? || equal(&a, &b)?)
}

fn le(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(less_or_equal(&args)?))
}

fn gt(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!less_or_equal(&args)?))
}

fn ge(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!less(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}

fn length(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let n = match Arg::of(&args[0]) {
        Arg::Str(s) => s.len(),
        Arg::List(items) => items.len(),
        Arg::Map(map) => map.len(),
        Arg::Nil => return Err(FuncError::LenOfNil),
        other => {
            return Err(FuncError::NoLength {
                type_name: other.type_name(),
            });
        }
    };
    Ok(TValue::owned(n.into()))
}

/// A list or string position: an int in `0..=max`.
fn position(key: &TValue<'_>, max: usize) -> Result<usize, FuncError> {
    let i = match Arg::of(key) {
        Arg::Int(i) => i128::from(i),
        Arg::Uint(u) => i128::from(u),
        Arg::Nil => return Err(FuncError::NilIndex),
        other => {
            return Err(FuncError::BadIndex {
                type_name: other.type_name(),
            });
        }
    };
    usize::try_from(i)
        .ok()
        .filter(|&i| i <= max)
        .ok_or(FuncError::IndexOutOfRange { index: i })
}

/// One `index` step, keeping a borrow of the data where there is one.
fn index_step<'a>(item: TValue<'a>, key: &TValue<'_>) -> Result<TValue<'a>, FuncError> {
    let out_of_range = |len: usize, i: usize| {
        if i >= len {
            Err(FuncError::IndexOutOfRange { index: i as i128 })
        } else {
            Ok(i)
        }
    };
    match item {
        TValue::Time(_) => Err(FuncError::NotIndexable {
            type_name: "time.Time",
        }),
        TValue::Json(Cow::Borrowed(value)) => match value {
            Value::Array(items) => {
                let i = out_of_range(items.len(), position(key, items.len())?)?;
                Ok(TValue::Json(Cow::Borrowed(&items[i])))
            }
            Value::Object(map) => Ok(match map.get(map_key(key)?) {
                Some(v) => TValue::Json(Cow::Borrowed(v)),
                None => TValue::null(),
            }),
            other => index_scalar(other, key),
        },
        TValue::Json(Cow::Owned(value)) => match value {
            Value::Array(mut items) => {
                let i = out_of_range(items.len(), position(key, items.len())?)?;
                Ok(TValue::owned(items.swap_remove(i)))
            }
            Value::Object(mut map) => {
                let key = map_key(key)?.to_owned();
                Ok(map.remove(&key).map_or_else(TValue::null, TValue::owned))
            }
            other => index_scalar(&other, key),
        },
    }
}

fn index_scalar<'a>(value: &Value, key: &TValue<'_>) -> Result<TValue<'a>, FuncError> {
    match value {
        // A string's bytes are uint8 values.
        Value::String(s) => {
            let i = position(key, s.len())?;
            s.as_bytes()
                .get(i)
                .map(|&b| TValue::owned(b.into()))
                .ok_or(FuncError::IndexOutOfRange { index: i as i128 })
        }
        Value::Null => Err(FuncError::IndexThroughNil),
        other => Err(FuncError::NotIndexable {
            type_name: Arg::json(other).type_name(),
        }),
    }
}

/// A map key: a string.
fn map_key<'k>(key: &'k TValue<'_>) -> Result<&'k str, FuncError> {
    match Arg::of(key) {
        Arg::Str(s) => Ok(s),
        Arg::Nil => Err(FuncError::NilMapKey),
        other => Err(FuncError::BadMapKey {
            got: other.type_name(),
        }),
    }
}

fn index(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut args = args.into_iter();
    let mut item = args.next().expect("arity checked");
    if matches!(item.json(), Some(Value::Null)) {
        return Err(FuncError::IndexOfNil);
    }
    for key in args {
        item = index_step(item, &key)?;
    }
    Ok(item)
}

fn slice(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let (item, indexes) = args.split_first().expect("arity checked");
    if indexes.len() > 3 {
        return Err(FuncError::TooManySliceIndexes {
            count: indexes.len(),
        });
    }
    let len = match Arg::of(item) {
        Arg::Nil => return Err(FuncError::SliceOfNil),
        Arg::Str(_) if indexes.len() == 3 => return Err(FuncError::ThreeIndexString),
        Arg::Str(s) => s.len(),
        Arg::List(items) => items.len(),
        other => {
            return Err(FuncError::NotSliceable {
                type_name: other.type_name(),
            });
        }
    };
    let mut bounds = [0, len, len];
    for (i, key) in indexes.iter().enumerate() {
        bounds[i] = position(key, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::SliceIndexOrder {
            low: bounds[0],
            high: bounds[1],
        });
    }
    if indexes.len() == 3 && bounds[1] > bounds[2] {
        return Err(FuncError::SliceIndexOrder {
            low: bounds[1],
            high: bounds[2],
        });
    }
    let (low, high) = (bounds[0], bounds[1]);
    Ok(match Arg::of(item) {
        Arg::Str(s) => text(String::from_utf8_lossy(&s.as_bytes()[low..high]).into_owned()),
        Arg::List(items) => TValue::owned(Value::Array(items[low..high].to_vec())),
        _ => unreachable!("checked above"),
    })
}

fn print(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::sprint(&args)))
}

fn println(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::sprintln(&args)))
}

fn printf(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let format = str_arg(&args, 0)?;
    Ok(text(gofmt::sprintf(format, &args[1..])?))
}

/// The text of `html`, `js` and `urlquery`'s arguments: `fmt.Sprint`, with nil as
/// `<no value>` (Go's `evalArgs`).
fn eval_args(args: &[TValue<'_>]) -> String {
    if let [TValue::Json(v)] = args
        && let Value::String(s) = v.as_ref()
    {
        return s.clone();
    }
    let args: Vec<TValue<'_>> = args
        .iter()
        .map(|a| match a.json() {
            Some(Value::Null) => text("<no value>"),
            _ => a.clone(),
        })
        .collect();
    gofmt::sprint(&args)
}

fn html(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut out = String::new();
    for c in eval_args(&args).chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Ok(text(out))
}

fn js(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut out = String::new();
    for c in eval_args(&args).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    Ok(text(out))
}

fn urlquery(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    // Form encoding, adjusted to url.QueryEscape: `*` escaped, `~` kept.
    let encoded: String = url::form_urlencoded::byte_serialize(eval_args(&args).as_bytes())
        .collect::<String>()
        .replace('*', "%2A")
        .replace("%7E", "~");
    Ok(text(encoded))
}

fn call_value(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Err(FuncError::NotAFunction {
        type_name: type_of(&args[0]),
    })
}

fn to_json(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::to_json(&args[0])))
}

fn b64enc(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(
        base64::engine::general_purpose::STANDARD.encode(args[0].print()),
    ))
}

fn b64dec(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(str_arg(&args, 0)?)
        .map_err(|e| FuncError::Base64(e.to_string()))?;
    Ok(text(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn j(v: Value) -> TValue<'static> {
        TValue::owned(v)
    }

    /// Arguments every function accepts: strings where strings are wanted, a time for
    /// `date`, a format for `printf`.
    fn sample_args(f: &Func) -> Vec<TValue<'static>> {
        let n = match f.arity {
            Arity::Exactly(n) => n,
            Arity::AtLeast(n) => n.max(1),
        };
        match f.name {
            "date" | "dateFormat" => vec![j(json!("2006")), TValue::Time(Utc::now())],
            "index" | "slice" => vec![j(json!(["a"]))],
            "eq" => vec![j(json!(1)), j(json!(1))],
            "b64dec" => vec![j(json!("YQ=="))],
            _ => (0..n).map(|_| j(json!("a"))).collect(),
        }
    }

    #[test]
    fn every_entry_is_callable_and_unique() {
        let mut names = std::collections::BTreeSet::new();
        for f in FUNCTIONS {
            assert!(names.insert(f.name), "{} listed twice", f.name);
            assert!(
                !f.doc.is_empty() && f.usage.starts_with(f.name),
                "{}",
                f.name
            );
            assert!(exists(f.name));
            let result = f.call(sample_args(f));
            if f.name == "call" {
                assert!(matches!(result, Err(FuncError::NotAFunction { .. })));
            } else {
                assert!(result.is_ok(), "{}: {result:?}", f.name);
            }
        }
        assert_eq!(
            call("nope", vec![]),
            Err(FuncError::Undefined("nope".into()))
        );
    }

    #[test]
    fn arity_is_checked_from_the_table() {
        assert_eq!(
            call("lower", vec![j(json!("a")), j(json!("b"))])
                .unwrap_err()
                .to_string(),
            "wrong number of args for lower: want 1 got 2"
        );
        assert_eq!(
            call("printf", vec![]).unwrap_err().to_string(),
            "wrong number of args for printf: want at least 1 got 0"
        );
    }

    #[test]
    fn hyperfleet_argument_order() {
        let call3 = |name, a: Value, b: Value| call(name, vec![j(a), j(b)]).unwrap();
        assert_eq!(
            call3("trimPrefix", json!("v1.2"), json!("v")),
            j(json!("1.2"))
        );
        assert_eq!(
            call3("trimSuffix", json!("app.yaml"), json!(".yaml")),
            j(json!("app"))
        );
        assert_eq!(call3("default", json!("x"), json!("")), j(json!("x")));
        assert_eq!(call3("default", json!("x"), json!(0)), j(json!(0)));
        assert_eq!(
            call3("hasPrefix", json!("abc"), json!("ab")),
            j(json!(true))
        );
        assert_eq!(
            call(
                "replace",
                vec![j(json!("a-b")), j(json!("-")), j(json!("."))]
            )
            .unwrap(),
            j(json!("a.b"))
        );
    }

    #[test]
    fn conversions_follow_hyperfleet() {
        let one = |name, v: Value| call(name, vec![j(v)]).unwrap();
        assert_eq!(one("int", json!("42")), j(json!(42)));
        assert_eq!(one("int", json!(" 42")), j(json!(0)));
        assert_eq!(one("int", json!("4.5")), j(json!(0)));
        assert_eq!(one("int", json!(-7.9)), j(json!(-7)));
        assert_eq!(one("int", json!(true)), j(json!(0)));
        assert_eq!(
            one("int", json!("99999999999999999999")),
            j(json!(i64::MAX))
        );
        assert_eq!(one("float", json!("1.5")), j(json!(1.5)));
        assert_eq!(one("float", json!("1_000.5")), j(json!(1000.5)));
        assert_eq!(one("float", json!("0x1p-2")), j(json!(0.25)));
        assert_eq!(one("float", json!("abc")), j(json!(0.0)));
        assert_eq!(one("float", json!(null)), j(json!(0.0)));
        assert!(matches!(
            call("float", vec![j(json!("1e400"))]),
            Err(FuncError::NotFinite { .. })
        ));
    }

    #[test]
    fn title_cases_words() {
        for (input, expected) in [
            ("hELLO wORLD", "Hello World"),
            ("o'neil x.y foo_bar", "O'neil X.y Foo_bar"),
            ("hello-world 3rd", "Hello-World 3Rd"),
        ] {
            assert_eq!(title_case(input), expected, "{input}");
        }
    }
}
