//! W3C Trace Context `traceparent` values (`00-<trace-id>-<parent-id>-<flags>`).
//!
//! The same value travels as the CloudEvents `traceparent` extension and as an AMQP header,
//! so a trace started by a webhook follows the event through every service, and every JSON log
//! line can carry the `trace_id`.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid traceparent `{value}`: {reason}")]
pub struct TraceParentError {
    value: String,
    reason: &'static str,
}

impl TraceParent {
    /// A new sampled trace with random ids.
    pub fn new_random() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        // All-zero ids are invalid; a random 128-bit value being zero is not a practical concern,
        // but forcing one bit keeps the invariant without a loop.
        rng.fill(&mut trace_id);
        rng.fill(&mut parent_id);
        trace_id[15] |= 1;
        parent_id[7] |= 1;
        Self {
            trace_id,
            parent_id,
            flags: 1,
        }
    }

    /// The same trace with a new parent (span) id, for the next hop.
    pub fn child(&self) -> Self {
        let mut parent_id = [0u8; 8];
        rand::rng().fill(&mut parent_id);
        parent_id[7] |= 1;
        Self { parent_id, ..*self }
    }

    /// The 32-hex-digit trace id, as logged in `trace_id`.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn parent_id(&self) -> String {
        hex::encode(self.parent_id)
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TraceParentError {
            value: value.to_owned(),
            reason,
        };
        let parts: Vec<&str> = value.trim().split('-').collect();
        if parts.len() < 4 {
            return Err(fail("expected version-traceid-parentid-flags"));
        }
        if parts[0].len() != 2 || parts[0] == "ff" {
            return Err(fail("bad version"));
        }
        if parts[0] == "00" && parts.len() != 4 {
            return Err(fail("version 00 has exactly four fields"));
        }
        let lower_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !parts[..4].iter().all(|p| lower_hex(p)) {
            return Err(fail("fields must be lower-case hex"));
        }
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        let mut flags = [0u8; 1];
        hex::decode_to_slice(parts[1], &mut trace_id)
            .map_err(|_| fail("trace id must be 32 hex digits"))?;
        hex::decode_to_slice(parts[2], &mut parent_id)
            .map_err(|_| fail("parent id must be 16 hex digits"))?;
        hex::decode_to_slice(parts[3], &mut flags)
            .map_err(|_| fail("flags must be 2 hex digits"))?;
        if trace_id == [0; 16] {
            return Err(fail("trace id must not be all zeros"));
        }
        if parent_id == [0; 8] {
            return Err(fail("parent id must not be all zeros"));
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags: flags[0],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap();
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(
            tp.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn child_keeps_the_trace() {
        let tp = TraceParent::new_random();
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.parent_id(), tp.parent_id());
        assert_eq!(child.to_string().parse::<TraceParent>().unwrap(), child);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00-abc",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(
                bad.parse::<TraceParent>().is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
