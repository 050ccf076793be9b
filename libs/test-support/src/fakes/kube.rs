//! Fake kube API (to be written).
