//! Fake gitlab API (to be written).
