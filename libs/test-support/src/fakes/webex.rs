//! Fake webex API (to be written).
