//! Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`), so `{{ now | date "..." }}` in a
//! HyperFleet task config formats exactly as Go's `time.Format` would.

use chrono::{DateTime, Datelike, Timelike, Utc};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `time.RFC3339Nano`, the form `encoding/json` writes a time in.
pub const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// `t` as `time.RFC3339Nano`.
pub fn rfc3339_nano(t: &DateTime<Utc>) -> String {
    format(t, RFC3339_NANO)
}

/// Formats `t` (UTC) with a Go layout, recognising tokens as Go's `nextStdChunk` does.
pub fn format(t: &DateTime<Utc>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        if let Some((token, consumed)) = next_token(rest) {
            match token {
                Token::Std(std) => out.push_str(&render(t, std)),
                Token::Fraction { width, trim } => {
                    let separator = &rest[..1];
                    let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                    let mut fraction = nanos[..width.min(9)].to_owned();
                    if trim {
                        fraction = fraction.trim_end_matches('0').to_owned();
                        if !fraction.is_empty() {
                            out.push_str(separator);
                        }
                    } else {
                        out.push_str(separator);
                    }
                    out.push_str(&fraction);
                }
                Token::Literal(text) => out.push_str(text),
            }
            rest = &rest[consumed..];
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

enum Token {
    Std(&'static str),
    Fraction { width: usize, trim: bool },
    Literal(&'static str),
}

fn starts_with_lower(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The layout token at the start of `s`, and how many bytes it takes.
fn next_token(s: &str) -> Option<(Token, usize)> {
    let b = s.as_bytes();
    let std = |name: &'static str, len: usize| Some((Token::Std(name), len));
    match b[0] {
        b'J' if s.starts_with("January") => std("January", 7),
        b'J' if s.starts_with("Jan") && !starts_with_lower(&s[3..]) => std("Jan", 3),
        b'M' if s.starts_with("Monday") => std("Monday", 6),
        b'M' if s.starts_with("Mon") && !starts_with_lower(&s[3..]) => std("Mon", 3),
        b'M' if s.starts_with("MST") => std("MST", 3),
        b'0' if b.len() >= 2 && (b'1'..=b'6').contains(&b[1]) => std(
            ["01", "02", "03", "04", "05", "06"][(b[1] - b'1') as usize],
            2,
        ),
        b'0' if s.starts_with("002") => std("002", 3),
        b'1' if s.starts_with("15") => std("15", 2),
        b'1' => std("1", 1),
        b'2' if s.starts_with("2006") => std("2006", 4),
        b'2' => std("2", 1),
        // `_2006` is a literal underscore and the year.
        b'_' if s.starts_with("_2006") => Some((Token::Literal("_"), 1)),
        b'_' if s.starts_with("_2") => std("_2", 2),
        b'_' if s.starts_with("__2") => std("__2", 3),
        b'3' => std("3", 1),
        b'4' => std("4", 1),
        b'5' => std("5", 1),
        b'P' if s.starts_with("PM") => std("PM", 2),
        b'p' if s.starts_with("pm") => std("pm", 2),
        b'-' | b'Z' => {
            let (numeric, z) = if b[0] == b'-' {
                (s, false)
            } else {
                (&s[1..], true)
            };
            let z_prefix = usize::from(z);
            for (suffix, name_minus, name_z) in [
                ("070000", "-070000", "Z070000"),
                ("07:00:00", "-07:00:00", "Z07:00:00"),
                ("0700", "-0700", "Z0700"),
                ("07:00", "-07:00", "Z07:00"),
                ("07", "-07", "Z07"),
            ] {
                let candidate = if z {
                    numeric.strip_prefix(suffix)
                } else {
                    numeric
                        .strip_prefix('-')
                        .and_then(|r| r.strip_prefix(suffix))
                };
                if candidate.is_some() {
                    let len = suffix.len() + if z { z_prefix } else { 1 };
                    return std(if z { name_z } else { name_minus }, len);
                }
            }
            None
        }
        b'.' | b',' if b.len() >= 2 && (b[1] == b'0' || b[1] == b'9') => {
            let digit = b[1];
            let n = b[1..].iter().take_while(|&&c| c == digit).count();
            // Only a fraction when no other digit follows the run.
            if b.get(1 + n).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            Some((
                Token::Fraction {
                    width: n,
                    trim: digit == b'9',
                },
                1 + n,
            ))
        }
        _ => None,
    }
}

fn render(t: &DateTime<Utc>, token: &str) -> String {
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    match token {
        "2006" => format!("{:04}", t.year()),
        "06" => format!("{:02}", t.year() % 100),
        "January" => MONTHS[t.month0() as usize].into(),
        "Jan" => MONTHS[t.month0() as usize][..3].into(),
        "01" => format!("{:02}", t.month()),
        "1" => t.month().to_string(),
        "Monday" => DAYS[t.weekday().num_days_from_sunday() as usize].into(),
        "Mon" => DAYS[t.weekday().num_days_from_sunday() as usize][..3].into(),
        "02" => format!("{:02}", t.day()),
        "_2" => format!("{:>2}", t.day()),
        "__2" => format!("{:>3}", t.ordinal()),
        "2" => t.day().to_string(),
        "002" => format!("{:03}", t.ordinal()),
        "15" => format!("{:02}", t.hour()),
        "03" => format!("{hour12:02}"),
        "3" => hour12.to_string(),
        "04" => format!("{:02}", t.minute()),
        "4" => t.minute().to_string(),
        "05" => format!("{:02}", t.second()),
        "5" => t.second().to_string(),
        "PM" => (if t.hour() >= 12 { "PM" } else { "AM" }).into(),
        "pm" => (if t.hour() >= 12 { "pm" } else { "am" }).into(),
        "MST" => "UTC".into(),
        // The time is always UTC: `Z...` layouts print `Z`, numeric ones a zero offset.
        "Z07:00:00" | "Z070000" | "Z07:00" | "Z0700" | "Z07" => "Z".into(),
        "-07:00:00" => "+00:00:00".into(),
        "-070000" => "+000000".into(),
        "-07:00" => "+00:00".into(),
        "-0700" => "+0000".into(),
        "-07" => "+00".into(),
        _ => token.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_like_go() {
        let t = Utc.with_ymd_and_hms(2026, 3, 7, 14, 5, 9).unwrap()
            + chrono::Duration::milliseconds(120);
        assert_eq!(
            format(&t, "2006-01-02T15:04:05Z07:00"),
            "2026-03-07T14:05:09Z"
        );
        assert_eq!(
            format(&t, "2006-01-02T15:04:05-07:00"),
            "2026-03-07T14:05:09+00:00"
        );
        assert_eq!(format(&t, "Mon Jan _2 3:04PM"), "Sat Mar  7 2:05PM");
        assert_eq!(
            format(&t, "2006-01-02 15:04:05.000"),
            "2026-03-07 14:05:09.120"
        );
        assert_eq!(format(&t, "15:04:05.999999"), "14:05:09.12");
        assert_eq!(format(&t, "January 2, 2006"), "March 7, 2026");
        assert_eq!(format(&t, "20060102"), "20260307");
    }
}
