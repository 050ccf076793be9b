//! HyperFleet's CEL helper functions, so its Sentinel and Adapter configs run unchanged.
//!
//! * Sentinel ([`EnvironmentBuilder::hyperfleet_sentinel`]): `condition(name)` — the condition
//!   of type `name` in `resource.status.conditions` as
//!   `{status, observed_generation, last_updated_time, last_transition_time, reason, message}`,
//!   or the zero value (`status == ""`, `observed_generation == 0`, empty strings) when there
//!   is none. Times are re-rendered as Go's `RFC3339Nano`, as the Sentinel's client does.
//!   Reads the variable `resource` of the scope.
//! * Adapter ([`EnvironmentBuilder::hyperfleet_adapter`]):
//!   - `now()` — the clock's time, RFC 3339 with seconds (Go's `time.RFC3339`);
//!   - `toJson(v)` — `v` as JSON text, as Go's `json.Marshal` writes it (sorted keys);
//!   - `dig(v, "a.b.0.c")` — the value at a dotted path of maps and list indices, or `null`;
//!   - `conditionStatus(conditions, type)` — that condition's `status`, or `"Unknown"`;
//!   - `conditionAge(conditions, type)` — whole seconds since its `last_transition_time`, or
//!     `-1` when it has none;
//!   - `stableFor(conditions, type, seconds)` — status `"True"` for at least `seconds`;
//!   - `triState(isTrue, isFalse)` — `"True"`, else `"False"`, else `"Unknown"`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cel::common::types::{CelInt, CelMap, CelMapKey, CelString};
use cel::common::value::{CowVal, Val};
use cel::{ExecutionError, FunctionContext};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::environment::{EnvironmentBuilder, RawFunction};
use crate::error::FunctionError;
use crate::evaluation::Scope;
use crate::json::{format_rfc3339_nano, to_go_json};
use crate::value::Value;
use serde_json::Value as Json;

/// Where "now" comes from; tests inject a fixed or stepping clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// The keys of a `condition()` result, in the order HyperFleet documents them.
const CONDITION_FIELDS: [&str; 6] = [
    "status",
    "observed_generation",
    "last_updated_time",
    "last_transition_time",
    "reason",
    "message",
];

impl EnvironmentBuilder {
    /// HyperFleet Sentinel's `condition(name)` (see the module docs).
    pub fn hyperfleet_sentinel(self) -> Self {
        let condition: Arc<RawFunction> = Arc::new(sentinel_condition);
        self.raw_function("condition", condition)
    }

    /// HyperFleet Adapter's helpers (see the module docs), with `clock` for `now()`,
    /// `conditionAge` and `stableFor`. Also enables the `strings` and `lists` extensions,
    /// which the Adapter's environment has.
    pub fn hyperfleet_adapter(self, clock: Clock) -> Self {
        let now_clock = Arc::clone(&clock);
        let age_clock = Arc::clone(&clock);
        let stable_clock = clock;
        self.strings()
            .lists()
            .function("now", move |args| {
                expect_args("now", args, 0)?;
                Ok(Value::from(
                    now_clock().to_rfc3339_opts(SecondsFormat::Secs, true),
                ))
            })
            .function("toJson", |args| {
                expect_args("toJson", args, 1)?;
                let json = args[0].to_json()?;
                Ok(Value::from(to_go_json(&json)))
            })
            .function("dig", |args| {
                expect_args("dig", args, 2)?;
                let path = args[1]
                    .as_str()
                    .ok_or_else(|| FunctionError::bad_argument("dig", "path must be a string"))?;
                Ok(Value(dig(&args[0].0, path).unwrap_or(cel::Value::Null)))
            })
            .function("conditionStatus", |args| {
                expect_args("conditionStatus", args, 2)?;
                let kind = string_arg("conditionStatus", &args[1])?;
                Ok(Value::from(condition_status(&args[0].0, kind)))
            })
            .function("conditionAge", move |args| {
                expect_args("conditionAge", args, 2)?;
                let kind = string_arg("conditionAge", &args[1])?;
                Ok(Value::from(condition_age(&args[0].0, kind, age_clock())))
            })
            .function("stableFor", move |args| {
                expect_args("stableFor", args, 3)?;
                let kind = string_arg("stableFor", &args[1])?;
                let seconds = args[2].as_i64().ok_or_else(|| {
                    FunctionError::bad_argument(
                        "stableFor",
                        "takes the number of seconds as an int",
                    )
                })?;
                let age = condition_age(&args[0].0, kind, stable_clock());
                Ok(Value::from(
                    condition_status(&args[0].0, kind) == "True" && age >= 0 && age >= seconds,
                ))
            })
            .function("triState", |args| {
                expect_args("triState", args, 2)?;
                let (Some(is_true), Some(is_false)) = (args[0].as_bool(), args[1].as_bool()) else {
                    return Err(FunctionError::bad_argument("triState", "takes two bools"));
                };
                Ok(Value::from(if is_true {
                    "True"
                } else if is_false {
                    "False"
                } else {
                    "Unknown"
                }))
            })
    }
}

fn expect_args(function: &str, args: &[Value], count: usize) -> Result<(), FunctionError> {
    if args.len() == count {
        Ok(())
    } else {
        Err(FunctionError::argument_count(function, count, args.len()))
    }
}

fn string_arg<'a>(function: &str, value: &'a Value) -> Result<&'a str, FunctionError> {
    value.as_str().ok_or_else(|| {
        FunctionError::bad_argument(function, "takes the condition type as a string")
    })
}

/// The hidden variable holding conditions looked up before evaluation (`@` cannot start an
/// identifier in CEL, so no expression can name it).
const PRECOMPUTED_CONDITIONS: &str = "@hyperfleet.conditions";

/// Binds, for each of `names`, what `condition(name)` returns for `resource`, read straight
/// from the JSON (strings borrowed). Then `condition` costs a map lookup instead of walking
/// `resource.status.conditions` on every call, and `resource` itself may be bound with only
/// the fields the expressions read ([`Scope::bind_json_fields`]). Names not bound here are
/// still looked up in `resource`.
pub fn bind_conditions<'v>(
    scope: &mut Scope<'_, 'v>,
    resource: &'v Json,
    names: &BTreeSet<String>,
) {
    let conditions = resource
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Json::as_array);
    let mut by_name: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
        HashMap::with_capacity(names.len());
    for name in names {
        let found = conditions.and_then(|list| {
            list.iter()
                .find(|c| c.get("type").and_then(Json::as_str) == Some(name.as_str()))
        });
        by_name.insert(
            CelMapKey::String(CelString::from(name.clone())),
            Box::new(condition_from_json(found)),
        );
    }
    scope.bind_val(PRECOMPUTED_CONDITIONS, Box::new(CelMap::from(by_name)));
}

/// A `condition()` result from the JSON of a condition (or the zero value).
fn condition_from_json(condition: Option<&Json>) -> CelMap<'_> {
    let text = |key: &str| {
        condition
            .and_then(|c| c.get(key))
            .and_then(Json::as_str)
            .unwrap_or("")
    };
    let mut result: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::with_capacity(6);
    for key in CONDITION_FIELDS {
        let value: Box<dyn Val + '_> = match key {
            "observed_generation" => Box::new(CelInt::from(
                condition
                    .and_then(|c| c.get(key))
                    .and_then(Json::as_i64)
                    .unwrap_or(0),
            )),
            _ if key.ends_with("_time") => {
                let raw = text(key);
                if is_go_time(raw) {
                    Box::new(CelString::from(raw))
                } else {
                    Box::new(CelString::from(go_time(raw.to_owned())))
                }
            }
            _ => Box::new(CelString::from(text(key))),
        };
        result.insert(CelMapKey::String(CelString::from(key)), value);
    }
    CelMap::from(result)
}

/// Whether `text` is already as Go's `RFC3339Nano` writes it (no trailing zeros in the
/// fraction, `Z` for UTC), so re-rendering can be skipped. Text that is not a time at all
/// also counts: it is passed through unchanged either way.
fn is_go_time(text: &str) -> bool {
    if text.ends_with("+00:00") || text.ends_with("-00:00") {
        return false;
    }
    match text.find('.') {
        None => true,
        Some(dot) => {
            let digits: &str = &text[dot + 1..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            end > 0 && !digits[..end].ends_with('0')
        }
    }
}

/// `condition(name)`: the precomputed value when there is one, else read from `resource`
/// in the scope, without copying the resource.
fn sentinel_condition<'c, 'call>(
    ftx: &mut FunctionContext<'c, 'call>,
) -> Result<CowVal<'c, 'call>, ExecutionError> {
    let [arg] = ftx.args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(1, ftx.args.len()));
    };
    let Some(name) = arg.downcast_ref::<CelString<'_>>() else {
        return Err(ftx.error(format!(
            "takes a condition type string, not {}",
            arg.get_type().name()
        )));
    };
    let ptx: &'c cel::Context<'c, 'call> = ftx.ptx;
    if let Some(CowVal::Borrowed(precomputed)) = ptx.get_variable(PRECOMPUTED_CONDITIONS)
        && let Some(found) = precomputed.as_indexer().and_then(|map| map.get(name).ok())
    {
        return Ok(found);
    }
    let resource = ftx
        .ptx
        .get_variable("resource")
        .ok_or_else(|| ftx.error("no `resource` variable in scope"))?;
    let found = find_condition(resource.as_ref(), name.inner());
    let mut result: HashMap<CelMapKey<'call>, Box<dyn Val + 'call>> = HashMap::with_capacity(6);
    for key in CONDITION_FIELDS {
        let value: Box<dyn Val + 'call> = match key {
            "observed_generation" => Box::new(CelInt::from(
                found
                    .as_ref()
                    .and_then(|c| field(c.as_ref(), key))
                    .and_then(|v| v.downcast_ref::<CelInt>().map(|i| *i.inner()))
                    .unwrap_or(0),
            )),
            _ => {
                let text = found
                    .as_ref()
                    .and_then(|c| field(c.as_ref(), key))
                    .and_then(|v| {
                        v.downcast_ref::<CelString<'_>>()
                            .map(|s| s.inner().to_owned())
                    })
                    .unwrap_or_default();
                let text = if key.ends_with("_time") {
                    go_time(text)
                } else {
                    text
                };
                Box::new(CelString::from(text))
            }
        };
        result.insert(CelMapKey::String(CelString::from(key)), value);
    }
    Ok(CowVal::Owned(Box::new(CelMap::from(result))))
}

/// A time as HyperFleet's Go client hands it to CEL (`RFC3339Nano`); text that is not a time
/// is passed through.
fn go_time(text: String) -> String {
    match DateTime::parse_from_rfc3339(&text) {
        Ok(time) => format_rfc3339_nano(&time),
        Err(_) => text,
    }
}

/// `val[key]` for a map value; `None` when absent or not a map.
fn field<'b, 'v>(val: &'b (dyn Val + 'v), key: &str) -> Option<CowVal<'b, 'v>> {
    let key = CelString::from(key);
    val.as_indexer()?.get(&key).ok()
}

/// The element of `resource.status.conditions` whose `type` is `name`.
fn find_condition<'b, 'v>(resource: &'b (dyn Val + 'v), name: &str) -> Option<Box<dyn Val + 'v>> {
    let status = field(resource, "status")?;
    let conditions = field(status.as_ref(), "conditions")?;
    let iterable = conditions.as_iterable()?;
    let mut items = iterable.iter();
    while let Some(item) = items.next() {
        let matches = field(item, "type")
            .and_then(|t| t.downcast_ref::<CelString<'_>>().map(|s| s.inner() == name))
            .unwrap_or(false);
        if matches {
            return Some(item.clone_as_boxed());
        }
    }
    None
}

/// The value at a dotted path of map keys and list indices.
fn dig(value: &cel::Value, path: &str) -> Option<cel::Value> {
    let mut current = value.clone();
    for part in path.split('.').map(str::trim).filter(|p| !p.is_empty()) {
        current = match &current {
            cel::Value::Map(map) => map.map.get(&cel::objects::Key::from(part))?.clone(),
            cel::Value::List(items) => items.get(part.parse::<usize>().ok()?)?.clone(),
            _ => return None,
        };
    }
    Some(current)
}

/// The condition of type `kind` in a list of conditions.
fn find_in_list<'a>(conditions: &'a cel::Value, kind: &str) -> Option<&'a cel::Value> {
    let cel::Value::List(items) = conditions else {
        return None;
    };
    items.iter().find(|c| {
        matches!(c, cel::Value::Map(m)
            if matches!(m.map.get(&cel::objects::Key::from("type")),
                Some(cel::Value::String(t)) if t.as_str() == kind))
    })
}

fn string_field(condition: &cel::Value, key: &str) -> Option<String> {
    match condition {
        cel::Value::Map(m) => match m.map.get(&cel::objects::Key::from(key)) {
            Some(cel::Value::String(s)) => Some(s.as_ref().clone()),
            _ => None,
        },
        _ => None,
    }
}

fn condition_status(conditions: &cel::Value, kind: &str) -> String {
    find_in_list(conditions, kind)
        .and_then(|c| string_field(c, "status"))
        .unwrap_or_else(|| "Unknown".to_owned())
}

fn condition_age(conditions: &cel::Value, kind: &str, now: DateTime<Utc>) -> i64 {
    find_in_list(conditions, kind)
        .and_then(|c| string_field(c, "last_transition_time"))
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds())
        .unwrap_or(-1)
}
