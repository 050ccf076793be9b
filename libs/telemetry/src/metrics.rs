//! The Prometheus registry of a service.
//!
//! Each service instance owns a registry (not the crate's global default), so tests that
//! build several services in one process never see each other's counters.
//!
//! Every service's registry starts with what an operator expects of any process:
//! `steadfast_build_info{service,version}` (always 1, for joining a version onto other series)
//! and the `process_*` series of Prometheus' client libraries (CPU, memory, file descriptors,
//! start time), so one dashboard panel and one alert rule fit every service.

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

/// A fresh, empty registry (for stand-ins and tests).
pub fn registry() -> Registry {
    Registry::new()
}

/// The registry of a service: `steadfast_build_info{service,version} 1` and, on Linux, the
/// `process_*` metrics of this process.
pub fn service_registry(service: &str, version: &str) -> Registry {
    let registry = Registry::new();
    let build_info = IntGaugeVec::new(
        Opts::new(
            "steadfast_build_info",
            "Always 1; labelled with the service and the version of its build.",
        ),
        &["service", "version"],
    )
    .expect("valid metric options");
    build_info.with_label_values(&[service, version]).set(1);
    // A fresh registry holds nothing these names could collide with.
    registry
        .register(Box::new(build_info))
        .expect("fresh registry");
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("fresh registry");
    registry
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

    #[test]
    fn a_service_registry_exports_build_info_and_process_metrics() {
        let text = render(&service_registry("webhook-receiver", "1.2.3"));
        assert!(
            text.contains(r#"steadfast_build_info{service="webhook-receiver",version="1.2.3"} 1"#),
            "{text}"
        );
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing from:\n{text}"
            );
        }
    }
}
