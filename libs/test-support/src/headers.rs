//! Recording what a stand-in server was sent, for tests of outbound clients.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;

/// The value of one header on each request a test server received, in order (`None` where a
/// request lacked it). Clones share the log: keep one, move the other into the route.
#[derive(Debug, Clone)]
pub struct HeaderLog {
    name: &'static str,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl HeaderLog {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            seen: Arc::default(),
        }
    }

    /// The W3C `traceparent` header, which every outbound client must pass on.
    pub fn traceparent() -> Self {
        Self::new("traceparent")
    }

    /// Records the header of one request; returns how many requests are recorded now.
    pub fn record(&self, headers: &HeaderMap) -> usize {
        let value = headers
            .get(self.name)
            .map(|v| v.to_str().expect("a text header").to_owned());
        let mut seen = self.seen.lock().expect("header log");
        seen.push(value);
        seen.len()
    }

    /// What was recorded so far.
    pub fn values(&self) -> Vec<Option<String>> {
        self.seen.lock().expect("header log").clone()
    }

    /// What was recorded so far, emptying the log (the next request counts as the first).
    pub fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.seen.lock().expect("header log"))
    }
}
