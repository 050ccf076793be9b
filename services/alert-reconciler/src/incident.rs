//! The incident state machine.
//!
//! ```text
//!   received ──▶ investigating ──▶ awaiting_approval ◀──▶ executing
//!      │              │                  │                   │
//!      └──────────────┴──────────────────┴───────────────────┴──▶ resolved   (alert resolved)
//!                                        └───────────────────┴──▶ expired    (approval window over)
//! ```
//!
//! * `received` — the first firing alert of a group opened it;
//! * `investigating` — its debugging run is planned or running;
//! * `awaiting_approval` — the analysis was reported; suggested actions may be approved (an
//!   incident with no suggestion waits here too: a human may still force an action);
//! * `executing` — at least one approved action is running; when the last finishes, it goes
//!   back to `awaiting_approval`;
//! * `resolved` / `expired` — closed. A later firing notification of the group opens a new
//!   incident.
//!
//! Every transition is a conditional `UPDATE ... WHERE state IN (<allowed predecessors>)`, so
//! two writers racing (intake resolving while a run completes) cannot both win.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Received,
    Investigating,
    AwaitingApproval,
    Executing,
    Resolved,
    Expired,
}

impl IncidentState {
    pub const ALL: [Self; 6] = [
        Self::Received,
        Self::Investigating,
        Self::AwaitingApproval,
        Self::Executing,
        Self::Resolved,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Investigating => "investigating",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Executing => "executing",
            Self::Resolved => "resolved",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Expired)
    }

    /// Whether the machine allows `self → next`.
    pub fn can_become(self, next: Self) -> bool {
        use IncidentState::*;
        matches!(
            (self, next),
            (Received, Investigating)
                | (Investigating, AwaitingApproval)
                | (AwaitingApproval, Executing)
                | (Executing, Executing)
                | (Executing, AwaitingApproval)
                | (AwaitingApproval | Executing, Expired)
                | (
                    Received | Investigating | AwaitingApproval | Executing,
                    Resolved
                )
        )
    }

    /// Every state that may become `next`, for the guarded `UPDATE`.
    pub fn predecessors(next: Self) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .map(Self::as_str)
            .collect()
    }
}

impl std::fmt::Display for IncidentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentState::*;

    #[test]
    fn closed_states_are_final() {
        for next in IncidentState::ALL {
            assert!(!Resolved.can_become(next));
            assert!(!Expired.can_become(next));
        }
    }

    #[test]
    fn the_happy_path_and_its_exits() {
        assert!(Received.can_become(Investigating));
        assert!(Investigating.can_become(AwaitingApproval));
        assert!(AwaitingApproval.can_become(Executing));
        assert!(Executing.can_become(AwaitingApproval));
        assert!(
            !Investigating.can_become(Executing),
            "no action before the analysis"
        );
        assert!(
            !Investigating.can_become(Expired),
            "a run ends by its own deadline"
        );
        assert_eq!(
            IncidentState::predecessors(Resolved),
            vec![
                "received",
                "investigating",
                "awaiting_approval",
                "executing"
            ]
        );
        assert_eq!(
            IncidentState::parse("awaiting_approval"),
            Some(AwaitingApproval)
        );
        assert_eq!(IncidentState::parse("open"), None);
    }
}
