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

/// Formats `t` (UTC) with a Go layout.
pub fn format(t: &DateTime<Utc>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        // Longest tokens first, as Go's scanner does.
        const TOKENS: [&str; 32] = [
            "January",
            "Monday",
            "Z07:00:00",
            "-07:00:00",
            "Z070000",
            "-070000",
            "Z07:00",
            "-07:00",
            "Z0700",
            "-0700",
            "2006",
            "002",
            "Jan",
            "Mon",
            "MST",
            "Z07",
            "-07",
            "01",
            "02",
            "_2",
            "03",
            "04",
            "05",
            "06",
            "15",
            "PM",
            "pm",
            "1",
            "2",
            "3",
            "4",
            "5",
        ];
        for token in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                // A bare digit is only a token when it is not part of a longer number.
                out.push_str(&render(t, token));
                rest = after;
                continue 'outer;
            }
        }
        if let Some(after) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(','))
            && let Some(n) = fraction_width(after)
        {
            let separator = &rest[..1];
            let digits = &after[..n];
            let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
            let mut fraction = nanos[..n.min(9)].to_owned();
            if digits.starts_with('9') {
                fraction = fraction.trim_end_matches('0').to_owned();
                if !fraction.is_empty() {
                    out.push_str(separator);
                }
            } else {
                out.push_str(separator);
            }
            out.push_str(&fraction);
            rest = &after[n..];
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `000`/`999` runs after a separator: the width of a fractional-seconds token.
fn fraction_width(after: &str) -> Option<usize> {
    let first = after.chars().next()?;
    if first != '0' && first != '9' {
        return None;
    }
    let n = after.chars().take_while(|&c| c == first).count();
    // Go only treats it as a fraction when no digit follows.
    (!after[n..].starts_with(|c: char| c.is_ascii_digit())).then_some(n)
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
