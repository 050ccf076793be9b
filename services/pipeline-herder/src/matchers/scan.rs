//! One pass over a log for every `messages` pattern of every matcher.
//!
//! All patterns are compiled once, at load, into two multi-pattern regexes:
//! * the *finder* (leftmost-first) searches the log for the next place where any pattern
//!   matches. It gets the literal prefilters (Teddy, Aho-Corasick) and lazy DFA of the regex
//!   engine, so the bytes between matches — nearly all of a log — are skipped at memory speed;
//!   this is how ripgrep searches too;
//! * the *confirmer* (all matches, overlapping) is run only on the lines the finder stopped
//!   at, and says exactly which patterns match on each such line.
//!
//! A message therefore matches *within one line*, as with grep: `^` and `$` are line anchors
//! (`\r\n` endings included). For each pattern the scan keeps the last line it matched on, so
//! each matcher can then ask "did any of my patterns match in my part of the tail?"

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

/// Where a pattern matched: the byte range of the line (without its newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub line_start: usize,
    pub line_end: usize,
}

/// A pattern that does not compile, or would match every log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{problem}")]
pub struct PatternError {
    /// Index into the pattern list given to [`Scanner::new`].
    pub index: usize,
    pub problem: PatternProblem,
}

/// What is wrong with a pattern.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PatternProblem {
    /// Alone it does not compile; `detail` is the syntax error's own message (with its
    /// position), without the pattern echoed back.
    #[error("is not a valid regex: {detail}")]
    Invalid { detail: String },
    /// Each compiles alone, not all together (e.g. the automaton grows too big).
    #[error("cannot be compiled with the other patterns: {0}")]
    Together(#[source] Box<meta::BuildError>),
    #[error("matches an empty line, so it would match every log")]
    MatchesEmpty,
}

/// The compiled patterns.
#[derive(Debug, Clone)]
pub struct Scanner {
    engines: Option<(Regex, Regex)>,
    pattern_count: usize,
}

/// For each pattern, the last line it matched on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    last: Vec<Option<Hit>>,
}

impl ScanResult {
    pub fn last_hit(&self, pattern: usize) -> Option<Hit> {
        self.last.get(pattern).copied().flatten()
    }
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().multi_line(true).crlf(true)
}

/// All patterns in one regex; an error names the pattern it is about, when it can.
fn build(patterns: &[String], kind: MatchKind) -> Result<Regex, PatternError> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(
            Regex::config()
                .match_kind(kind)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit)
                // Many patterns make big automata; give them room before the engine falls
                // back to slower ones (these are per-scanner, built once).
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(8 << 20),
        )
        .build_many(patterns)
        .map_err(|e| PatternError {
            index: e.pattern().map_or(0, |p| p.as_usize()),
            problem: PatternProblem::Together(Box::new(e)),
        })
}

impl Scanner {
    /// Compiles `patterns` (regex syntax; plain text must be escaped by the caller).
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        // Each pattern alone first, so an error names the pattern and a pattern that matches
        // the empty string (and so every log, e.g. `.*`) is refused.
        for (index, pattern) in patterns.iter().enumerate() {
            let single = Regex::builder()
                .syntax(syntax_config())
                .build(pattern)
                .map_err(|e| PatternError {
                    index,
                    problem: PatternProblem::Invalid {
                        detail: describe(&e),
                    },
                })?;
            if single.is_match("") {
                return Err(PatternError {
                    index,
                    problem: PatternProblem::MatchesEmpty,
                });
            }
        }
        if patterns.is_empty() {
            return Ok(Self {
                engines: None,
                pattern_count: 0,
            });
        }
        let finder = build(patterns, MatchKind::LeftmostFirst)?;
        let confirmer = build(patterns, MatchKind::All)?;
        Ok(Self {
            engines: Some((finder, confirmer)),
            pattern_count: patterns.len(),
        })
    }

    pub fn pattern_count(&self) -> usize {
        self.pattern_count
    }

    /// Scans `log` once.
    pub fn scan(&self, log: &[u8]) -> ScanResult {
        let mut last = vec![None; self.pattern_count];
        let Some((finder, confirmer)) = &self.engines else {
            return ScanResult { last };
        };
        let mut found = PatternSet::new(self.pattern_count);
        // `at` is always the start of a line.
        let mut at = 0;
        while at < log.len() {
            let Some(m) = finder.search(&Input::new(log).range(at..)) else {
                break;
            };
            let first_line = line_start(log, m.start()).max(at);
            // A match can span lines (`\s` matches a newline); every line it touches is
            // confirmed on its own.
            let last_byte = m.end().saturating_sub(1).max(m.start());
            let region_end = line_end(log, last_byte);
            let mut line = first_line;
            while line <= region_end && line < log.len() {
                let end = line_end(log, line);
                found.clear();
                confirmer.which_overlapping_matches(&Input::new(log).range(line..end), &mut found);
                for pattern in found.iter() {
                    last[pattern.as_usize()] = Some(Hit {
                        line_start: line,
                        line_end: end,
                    });
                }
                line = end + 1;
            }
            at = region_end + 1;
        }
        ScanResult { last }
    }
}

/// Start of the line containing `pos`.
fn line_start(log: &[u8], pos: usize) -> usize {
    log[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1)
}

/// End of the line containing `pos` (the index of its newline, or the log's length).
fn line_end(log: &[u8], pos: usize) -> usize {
    log[pos.min(log.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(log.len(), |offset| pos + offset)
}

/// The syntax error's own message (with its position), without the pattern echoed back.
fn describe(error: &meta::BuildError) -> String {
    match error.syntax_error() {
        Some(syntax) => {
            let text = syntax.to_string();
            let last = text.lines().last().unwrap_or_default().trim();
            last.strip_prefix("error: ").unwrap_or(last).to_owned()
        }
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(patterns: &[&str]) -> Scanner {
        Scanner::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn line_of(log: &str, hit: Option<Hit>) -> Option<&str> {
        hit.map(|h| &log[h.line_start..h.line_end])
    }

    #[test]
    fn reports_the_last_line_of_every_pattern_even_when_they_overlap() {
        let s = scanner(&[
            "No space left",
            "space",
            r"(?i)^error: job failed$",
            "absent",
        ]);
        let log = "ok\nwrite: No space left on device\nmore\nERROR: Job failed\r\nspace again\n";
        let result = s.scan(log.as_bytes());
        assert_eq!(
            line_of(log, result.last_hit(0)),
            Some("write: No space left on device")
        );
        assert_eq!(line_of(log, result.last_hit(1)), Some("space again"));
        assert_eq!(
            line_of(log, result.last_hit(2)),
            Some("ERROR: Job failed\r")
        );
        assert_eq!(result.last_hit(3), None);
    }

    #[test]
    fn a_match_spanning_lines_does_not_hide_matches_on_those_lines() {
        // `foo\s+bar` matches across the newline; `bar` alone is on the second line and
        // `bar$` must be confirmed there too.
        let s = scanner(&[r"foo\s+bar", "bar$", "tail"]);
        let log = "x foo\nbar\ntail\n";
        let result = s.scan(log.as_bytes());
        assert_eq!(result.last_hit(0), None, "patterns match within one line");
        assert_eq!(line_of(log, result.last_hit(1)), Some("bar"));
        assert_eq!(line_of(log, result.last_hit(2)), Some("tail"));
    }

    #[test]
    fn handles_logs_without_a_final_newline_and_invalid_utf8() {
        let s = scanner(&["image pull failed"]);
        let mut log = b"\xff\xfe garbage\n".to_vec();
        log.extend_from_slice(b"\x1b[31;1mERROR: Job failed: image pull failed\x1b[0;m");
        let hit = s.scan(&log).last_hit(0).unwrap();
        assert_eq!(hit.line_start, 11);
        assert_eq!(hit.line_end, log.len());
        assert_eq!(s.scan(b"").last_hit(0), None);
    }

    #[test]
    fn refuses_bad_and_match_everything_patterns_by_index() {
        let err = Scanner::new(&["fine".into(), "unclosed (".into()]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(
            err.to_string().starts_with("is not a valid regex:"),
            "{err}"
        );
        let err = Scanner::new(&["fine".into(), ".*".into()]).unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(
            err.to_string(),
            "matches an empty line, so it would match every log"
        );
        assert!(
            Scanner::new(&[])
                .unwrap()
                .scan(b"anything")
                .last_hit(0)
                .is_none()
        );
    }

    #[test]
    fn many_patterns_with_the_same_capture_names_compile_together() {
        let s = scanner(&["(?P<what>disk) full", "(?P<what>network) down"]);
        let result = s.scan(b"network down\n");
        assert!(result.last_hit(0).is_none());
        assert!(result.last_hit(1).is_some());
    }
}
