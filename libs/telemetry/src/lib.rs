//! Logs, traces and the metrics registry, set up the same way in every service.
//!
//! * Logs go to stdout, one JSON object per line by default (`LOG_FORMAT=json`), with
//!   `timestamp`, `level`, `service`, `target`, `message`, the event's fields and the fields of
//!   the spans it happened in (so `event_id` and `trace_id` set on a message span appear on
//!   every line logged while handling it). `LOG_FORMAT=text` is for humans at a terminal.
//! * `LOKI_URL` additionally pushes logs to Loki (labels `service` and `level`).
//! * `OTEL_EXPORTER_OTLP_ENDPOINT` additionally exports spans over OTLP/HTTP
//!   (`OTEL_TRACES_SAMPLER` / `_ARG` are honoured by the SDK).
//! * [`metrics`] creates the Prometheus registry and renders it.
//! * [`trace`] continues the trace of a message or request and hands it on (events published,
//!   outbound HTTP calls), so one trace follows a webhook across every queue.

mod json;
pub mod metrics;
mod otlp;
pub mod trace;

use std::str::FromStr;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use json::JsonLayer;

/// Crates whose own logs are noise at `info` (or, for lapin, which logs routine channel closes
/// such as a passive declare's 404 at ERROR): our wrappers log what matters about them.
const QUIET_DEPENDENCIES: &str = "lapin=off,amq_protocol=off,sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,reqwest=warn,kube=warn,tower=warn,rustls=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("LOG_FORMAT must be `json` or `text`, not `{0}`")]
    InvalidFormat(String),
    #[error("LOG_LEVEL `{value}` is not a valid filter: {reason}")]
    InvalidLevel { value: String, reason: String },
    #[error("LOKI_URL `{value}` is not usable: {reason}")]
    InvalidLoki { value: String, reason: String },
    #[error(
        "OTEL_EXPORTER_OTLP_PROTOCOL `{0}` is not supported: Steadfast exports spans as OTLP over HTTP (`http/protobuf`), so point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318), not its gRPC port (4317)"
    )]
    UnsupportedOtlpProtocol(String),
    #[error("OTLP exporter: {0}")]
    Otlp(String),
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" | "pretty" => Ok(Self::Text),
            _ => Err(TelemetryError::InvalidFormat(s.to_owned())),
        }
    }
}

/// How a service logs and traces.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// The `service` field of every log line and the OTLP service name.
    pub service: String,
    /// An `EnvFilter` directive, e.g. `info` or `info,steadfast_messaging=debug`.
    pub level: String,
    pub format: LogFormat,
    pub loki_url: Option<String>,
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads `LOG_LEVEL` (default `info`), `LOG_FORMAT` (default `json`), `LOKI_URL` and
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (and refuses an `OTEL_EXPORTER_OTLP_PROTOCOL` other than
    /// `http/protobuf`).
    pub fn from_env(service: &str) -> Result<Self, TelemetryError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        check_otlp_protocol(var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref())?;
        let config = Self {
            service: service.to_owned(),
            level: var("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            format: var("LOG_FORMAT").as_deref().unwrap_or("json").parse()?,
            loki_url: var("LOKI_URL"),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the filter and URLs without installing anything (for `--check-config`).
    pub fn validate(&self) -> Result<(), TelemetryError> {
        self.filter()?;
        if let Some(loki) = &self.loki_url {
            url::Url::parse(loki).map_err(|e| TelemetryError::InvalidLoki {
                value: loki.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn filter(&self) -> Result<EnvFilter, TelemetryError> {
        EnvFilter::builder()
            .parse(format!("{QUIET_DEPENDENCIES},{}", self.level))
            .map_err(|e| TelemetryError::InvalidLevel {
                value: self.level.clone(),
                reason: e.to_string(),
            })
    }
}

/// HyperFleet's services default to OTLP/gRPC; a user who carries `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`
/// over would otherwise see no spans and no error. (gRPC would add tonic and HTTP/2 to every
/// service: measured +8% on a clean debug build of this crate; see docs/observability.md.)
fn check_otlp_protocol(protocol: Option<&str>) -> Result<(), TelemetryError> {
    match protocol.map(str::trim) {
        None | Some("http/protobuf") => Ok(()),
        Some(other) => Err(TelemetryError::UnsupportedOtlpProtocol(other.to_owned())),
    }
}

/// Keeps the exporters alive; dropping it flushes what is buffered.
pub struct TelemetryGuard {
    loki: Option<tracing_loki::BackgroundTaskController>,
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes spans and stops the Loki task; call before exiting.
    pub async fn shutdown(mut self) {
        self.flush().await;
    }

    async fn flush(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            // The SDK's shutdown blocks while it exports the last batch.
            let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        }
        if let Some(loki) = self.loki.take() {
            loki.shutdown().await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
    }
}

/// Installs the global logger (and the optional Loki and OTLP exporters). Must run inside a
/// Tokio runtime when Loki or OTLP is enabled, because their exporters are tasks.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = config.filter()?;
    let fmt_layer = match config.format {
        LogFormat::Json => JsonLayer::stdout(&config.service).boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
    };

    let (loki_layer, loki) = match &config.loki_url {
        Some(url) => {
            let invalid = |reason: String| TelemetryError::InvalidLoki {
                value: url.clone(),
                reason,
            };
            let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
            let (layer, controller, task) = tracing_loki::builder()
                .label("service", config.service.as_str())
                .map_err(|e| invalid(e.to_string()))?
                .build_controller_url(parsed)
                .map_err(|e| invalid(e.to_string()))?;
            tokio::spawn(task);
            (Some(layer), Some(controller))
        }
        None => (None, None),
    };

    let (otel_layer, tracer) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (layer, provider) = otlp::layer(&config.service, endpoint)?;
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(loki_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { loki, tracer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(level: &str) -> TelemetryConfig {
        TelemetryConfig {
            service: "svc".into(),
            level: level.into(),
            format: LogFormat::Json,
            loki_url: None,
            otlp_endpoint: None,
        }
    }

    #[test]
    fn parses_formats() {
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!(
            "yaml".parse::<LogFormat>().unwrap_err().to_string(),
            "LOG_FORMAT must be `json` or `text`, not `yaml`"
        );
    }

    #[test]
    fn only_otlp_over_http_is_accepted() {
        assert!(check_otlp_protocol(None).is_ok());
        assert!(check_otlp_protocol(Some("http/protobuf")).is_ok());
        let err = check_otlp_protocol(Some("grpc")).unwrap_err().to_string();
        assert!(
            err.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL `grpc` is not supported")
                && err.contains("(4318)"),
            "{err}"
        );
        assert!(check_otlp_protocol(Some("http/json")).is_err());
    }

    #[test]
    fn rejects_bad_levels_and_urls_precisely() {
        assert!(config("debug,steadfast_messaging=trace").validate().is_ok());
        let err = config("info,[[[").validate().unwrap_err().to_string();
        assert!(
            err.starts_with("LOG_LEVEL `info,[[[` is not a valid filter"),
            "{err}"
        );
        let mut c = config("info");
        c.loki_url = Some("not a url".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("LOKI_URL `not a url` is not usable")
        );
    }
}
