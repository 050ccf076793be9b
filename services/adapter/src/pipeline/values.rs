//! Plain value helpers: dotted-path lookup, param type conversion, and the structured
//! precondition operators.

use serde_json::Value;

use crate::config::task::{Operator, ParamType};

/// Why a param's value cannot take its declared `type`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    #[error("{number} is not a whole number")]
    NotWhole { number: serde_json::Number },
    #[error("cannot convert {value} to int")]
    Int { value: Value },
    #[error("cannot convert {value} to float")]
    Float { value: Value },
    #[error("cannot convert {value} to bool")]
    Bool { value: Value },
}

/// Why a structured condition's operands cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    #[error("operator {operator} needs a list")]
    NeedsList { operator: &'static str },
    #[error("contains on a string needs a string value")]
    ContainsNeedsString,
    #[error("contains cannot look inside {value}")]
    ContainsInside { value: Value },
    #[error("{operator} compares numbers, not {actual} and {expected}")]
    NotNumbers {
        operator: &'static str,
        actual: Value,
        expected: Value,
    },
}

/// `a.b.0.c` inside `value` (map keys and list indices).
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('.');
    if path.is_empty() {
        return Some(value);
    }
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// Converts a param to its declared `type` (HyperFleet converts string and file sources).
pub fn convert(value: &Value, kind: ParamType) -> Result<Value, ConvertError> {
    let text = || match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    match kind {
        ParamType::String => Ok(Value::String(match value {
            Value::String(s) => s.clone(),
            // HyperFleet converts with strconv.FormatFloat(v, 'f', -1, 64): shortest digits,
            // never an exponent, which is what f64's Display prints.
            Value::Number(n) => n
                .as_i64()
                .map(|i| i.to_string())
                .or_else(|| n.as_u64().map(|u| u.to_string()))
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0).to_string()),
            other => other.to_string(),
        })),
        ParamType::Int | ParamType::Int64 => match value {
            Value::Number(n) if n.as_i64().is_some() => Ok(value.clone()),
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    Ok(Value::from(f as i64))
                } else {
                    Err(ConvertError::NotWhole { number: n.clone() })
                }
            }
            Value::Bool(b) => Ok(Value::from(i64::from(*b))),
            _ => text()
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| {
                    text()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0)
                        .map(|f| Value::from(f as i64))
                        .ok_or(())
                })
                .map_err(|()| ConvertError::Int {
                    value: value.clone(),
                }),
        },
        ParamType::Float | ParamType::Float64 => match value {
            Value::Number(n) => Ok(Value::from(n.as_f64().unwrap_or(0.0))),
            _ => text()
                .parse::<f64>()
                .map(Value::from)
                .map_err(|_| ConvertError::Float {
                    value: value.clone(),
                }),
        },
        ParamType::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::Bool(n.as_f64().is_some_and(|f| f != 0.0))),
            _ => match text().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" => Ok(Value::Bool(true)),
                "false" | "0" | "no" | "f" | "" => Ok(Value::Bool(false)),
                _ => Err(ConvertError::Bool {
                    value: value.clone(),
                }),
            },
        },
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equality with numbers compared by value (`5` equals `5.0` and `"5"`).
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), _) | (_, Value::Number(_)) => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        _ => a == b,
    }
}

/// Evaluates one structured condition. `Err` when the operands cannot be compared.
pub fn evaluate(
    operator: Operator,
    actual: Option<&Value>,
    expected: Option<&Value>,
) -> Result<bool, ConditionError> {
    let present = actual.is_some_and(|v| !v.is_null());
    let expected = expected.unwrap_or(&Value::Null);
    let list = || {
        expected.as_array().ok_or(ConditionError::NeedsList {
            operator: operator.as_str(),
        })
    };
    Ok(match operator {
        Operator::Exists => present,
        Operator::NotExists => !present,
        _ if !present => false,
        Operator::Equals => loosely_equal(actual.expect("present"), expected),
        Operator::NotEquals => !loosely_equal(actual.expect("present"), expected),
        Operator::In => list()?
            .iter()
            .any(|e| loosely_equal(actual.expect("present"), e)),
        Operator::NotIn => !list()?
            .iter()
            .any(|e| loosely_equal(actual.expect("present"), e)),
        Operator::Contains => match actual.expect("present") {
            Value::String(s) => s.contains(
                expected
                    .as_str()
                    .ok_or(ConditionError::ContainsNeedsString)?,
            ),
            Value::Array(items) => items.iter().any(|i| loosely_equal(i, expected)),
            Value::Object(map) => expected.as_str().is_some_and(|k| map.contains_key(k)),
            other => {
                return Err(ConditionError::ContainsInside {
                    value: other.clone(),
                });
            }
        },
        Operator::GreaterThan
        | Operator::GreaterThanOrEqual
        | Operator::LessThan
        | Operator::LessThanOrEqual => {
            let actual = actual.expect("present");
            let (Some(x), Some(y)) = (as_number(actual), as_number(expected)) else {
                return Err(ConditionError::NotNumbers {
                    operator: operator.as_str(),
                    actual: actual.clone(),
                    expected: expected.clone(),
                });
            };
            match operator {
                Operator::GreaterThan => x > y,
                Operator::GreaterThanOrEqual => x >= y,
                Operator::LessThan => x < y,
                _ => x <= y,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_walks_maps_and_lists() {
        let v = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(lookup(&v, "a.b.0.c"), Some(&json!(1)));
        assert_eq!(lookup(&v, "a.x"), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(convert(&json!("77"), ParamType::Int).unwrap(), json!(77));
        assert_eq!(convert(&json!(5.0), ParamType::Int).unwrap(), json!(5));
        assert_eq!(convert(&json!(5), ParamType::String).unwrap(), json!("5"));
        assert_eq!(
            convert(&json!("true"), ParamType::Bool).unwrap(),
            json!(true)
        );
        assert!(
            convert(&json!("abc"), ParamType::Int)
                .unwrap_err()
                .to_string()
                .contains("cannot convert")
        );
    }

    #[test]
    fn operators() {
        let s = json!("False");
        assert!(evaluate(Operator::NotEquals, Some(&s), Some(&json!("True"))).unwrap());
        assert!(evaluate(Operator::In, Some(&s), Some(&json!(["False", "Unknown"]))).unwrap());
        assert!(evaluate(Operator::GreaterThan, Some(&json!(5)), Some(&json!("3"))).unwrap());
        assert!(
            evaluate(
                Operator::Contains,
                Some(&json!(["a", "b"])),
                Some(&json!("b"))
            )
            .unwrap()
        );
        assert!(evaluate(Operator::Exists, Some(&s), None).unwrap());
        assert!(!evaluate(Operator::Equals, None, Some(&s)).unwrap());
        assert!(evaluate(Operator::NotExists, None, None).unwrap());
        assert!(evaluate(Operator::LessThan, Some(&json!("x")), Some(&json!(1))).is_err());
    }
}
