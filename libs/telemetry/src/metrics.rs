//! The Prometheus registry of a service.
//!
//! Each service instance owns a registry (not the crate's global default), so tests that
//! build several services in one process never see each other's counters.

use prometheus::{Encoder, Registry, TextEncoder};

/// A fresh registry.
pub fn registry() -> Registry {
    Registry::new()
}

/// The registry in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metrics.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let registry = registry();
        let counter = prometheus::IntCounter::new("demo_total", "A demo counter.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let text = render(&registry);
        assert!(text.contains("# HELP demo_total A demo counter."));
        assert!(text.contains("demo_total 3"));
    }
}
