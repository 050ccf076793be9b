//! Go's logic and comparison built-ins: `and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`.

use super::{FuncError, boolean};
use crate::exec::TValue;
use crate::gofmt::Arg;

pub(super) fn and(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let last = args.len() - 1;
    Ok(args
        .into_iter()
        .enumerate()
        .find(|(i, a)| !a.truthy() || *i == last)
        .map(|(_, a)| a)
        .expect("arity checked"))
}

pub(super) fn or(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let last = args.len() - 1;
    Ok(args
        .into_iter()
        .enumerate()
        .find(|(i, a)| a.truthy() || *i == last)
        .map(|(_, a)| a)
        .expect("arity checked"))
}

pub(super) fn not(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
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

pub(super) fn eq(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
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

pub(super) fn ne(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!equal(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}

pub(super) fn lt(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(less(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}

fn less_or_equal(args: &[TValue<'_>]) -> Result<bool, FuncError> {
    let (a, b) = (Arg::of(&args[0]), Arg::of(&args[1]));
    Ok(less(&a, &b)? || equal(&a, &b)?)
}

pub(super) fn le(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(less_or_equal(&args)?))
}

pub(super) fn gt(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!less_or_equal(&args)?))
}

pub(super) fn ge(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(!less(&Arg::of(&args[0]), &Arg::of(&args[1]))?))
}
