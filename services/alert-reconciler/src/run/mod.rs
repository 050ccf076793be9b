//! Runs: launching recipes, collecting their answers, completing.
//!
//! * [`driver`] — one run from plan to end, resumable after a restart.
//! * [`finish`] — the completing transaction: incident transition, audit, report.

pub mod driver;
pub mod finish;

pub use driver::{DriveError, Ended, drive};
