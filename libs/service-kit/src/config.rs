//! Loading YAML configuration files, and Go-style durations.
//!
//! Errors name the file and, for parse errors, the line, column and offending field, because
//! `--check-config` output is read by someone editing that file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    /// A setting the service refuses: its own typed error, shown as it is.
    #[error("{0}")]
    Invalid(Box<dyn std::error::Error + Send + Sync>),
}

impl ConfigError {
    /// A refused setting, from the service's own error type.
    pub fn invalid(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Invalid(Box::new(error))
    }
}

/// Reads and deserialises a YAML file.
pub fn load_yaml_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text).map_err(|error| ConfigError::Parse {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

/// YAML that does not deserialise; its text carries line, column and the offending field.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct YamlError(#[from] serde_norway::Error);

/// Callers that collect configuration problems as text (`ConfigError::Invalid`) take it as is.
impl From<YamlError> for String {
    fn from(error: YamlError) -> Self {
        error.to_string()
    }
}

/// Why a Go-style duration was refused. Each message quotes the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("`{text}`: missing unit (ms, s, m or h)")]
    MissingUnit { text: String },
    #[error("`{text}` is not a duration like 500ms, 30s, 5m or 1h30m")]
    NotADuration { text: String },
    #[error("`{text}`: bad number `{number}`")]
    BadNumber { text: String, number: String },
    #[error("`{text}`: unknown unit `{unit}` (use ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
    #[error("`{text}` must be a non-negative duration")]
    Negative { text: String },
}

/// Callers whose own errors are text (e.g. a matcher's delay) keep using `?`.
impl From<DurationError> for String {
    fn from(error: DurationError) -> Self {
        error.to_string()
    }
}

/// Deserialises YAML text; the error text carries line and column.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    Ok(serde_norway::from_str(text)?)
}

/// Parses a Go-style duration: `300ms`, `5s`, `1.5m`, `1h30m`, `2h`, `10us`. A bare number is
/// seconds. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(seconds) = s.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit { text: text.into() })?;
        if number_len == 0 {
            return Err(DurationError::NotADuration { text: text.into() });
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| DurationError::BadNumber {
                text: text.into(),
                number: rest[..number_len].into(),
            })?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.into(),
                    unit: other.into(),
                });
            }
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    seconds_to_duration(total, text)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, DurationError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(DurationError::Negative { text: text.into() });
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration as Go prints it (`1.5s`, `1m30s`, `1h0m0s`, `250ms`): what [`parse_duration`]
/// reads back, and the form HyperFleet's configs (and ours) use.
pub fn format_duration(duration: Duration) -> String {
    const SECOND: u128 = 1_000_000_000;
    let nanos = duration.as_nanos();
    let small = [
        (1_000, "ns", 1),
        (1_000_000, "µs", 1_000),
        (SECOND, "ms", 1_000_000),
    ];
    if nanos == 0 {
        return "0s".into();
    }
    if let Some((_, unit, scale)) = small.into_iter().find(|(below, _, _)| nanos < *below) {
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let seconds = format!("{}s", decimal(nanos % (60 * SECOND), SECOND));
    let (hours, minutes) = (nanos / (3600 * SECOND), nanos / (60 * SECOND) % 60);
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, _) => format!("{minutes}m{seconds}"),
        _ => format!("{hours}h{minutes}m{seconds}"),
    }
}

/// `value / scale` with the fraction's trailing zeros dropped (`1500, 1000` → `1.5`).
fn decimal(value: u128, scale: u128) -> String {
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// clap value parser for duration flags.
pub fn parse_duration_arg(text: &str) -> Result<Duration, DurationError> {
    parse_duration(text)
}

/// Serde: a duration as a Go-style string or a number of seconds.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(f64),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Text(text) => parse_duration(&text).map_err(D::Error::custom),
        Raw::Seconds(seconds) => {
            seconds_to_duration(seconds, &seconds.to_string()).map_err(D::Error::custom)
        }
    }
}

/// Serde: an optional duration.
pub fn deserialize_optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize_duration")] Duration);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

/// Serde: a list of durations.
pub fn deserialize_durations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Duration>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize_duration")] Duration);
    Ok(Vec::<Wrap>::deserialize(deserializer)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, expected) in [
            ("300ms", Duration::from_millis(300)),
            ("5s", Duration::from_secs(5)),
            ("1.5m", Duration::from_secs(90)),
            ("1h30m", Duration::from_secs(5400)),
            ("2h", Duration::from_secs(7200)),
            ("10", Duration::from_secs(10)),
            ("0.5", Duration::from_millis(500)),
            ("1m0.5s", Duration::from_millis(60_500)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn durations_print_as_go_prints_them_and_read_back() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(12), "12ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(33), "33s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_250), "1h2m3.25s"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text).unwrap(), duration, "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations_with_the_reason() {
        let message = |text| parse_duration(text).unwrap_err().to_string();
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(message(""), "empty duration");
        assert!(message("5 minutes").contains("unknown unit"));
        assert!(message("-5s").contains("is not a duration"));
        assert!(message("-5").contains("non-negative"));
        assert!(message("5d").contains("unknown unit `d`"));
        assert_eq!(
            parse_duration("5x1"),
            Err(DurationError::UnknownUnit {
                text: "5x1".into(),
                unit: "x".into()
            })
        );
    }

    #[test]
    fn yaml_errors_name_file_line_and_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Conf {
            name: String,
            #[serde(deserialize_with = "deserialize_duration")]
            interval: Duration,
        }
        let dir = std::env::temp_dir().join(format!("steadfast-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("conf.yaml");
        std::fs::write(&path, "name: x\ninterval: 5s\nextra: 1\n").unwrap();
        let err = load_yaml_file::<Conf>(&path).unwrap_err().to_string();
        assert!(err.contains("conf.yaml"), "{err}");
        assert!(err.contains("unknown field `extra`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "name: x\ninterval: soon\n").unwrap();
        let err = load_yaml_file::<Conf>(&path).unwrap_err().to_string();
        assert!(err.contains("`soon` is not a duration"), "{err}");
        let err = load_yaml_file::<Conf>(&dir.join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read config file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
