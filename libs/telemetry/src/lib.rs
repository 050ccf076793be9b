//! Logs, traces and the metrics registry, set up the same way in every service.
//!
//! * Logs go to stdout, one JSON object per line by default (`LOG_FORMAT=json`), with
//!   `timestamp`, `level`, `service`, `target`, `message`, the event's fields and the fields of
//!   the spans it happened in (so `event_id` and `trace_id` set on a message span appear on
//!   every line logged while handling it). `LOG_FORMAT=text` is for humans at a terminal.
//! * `LOKI_URL` additionally pushes logs to Loki (labels `service` and `level`).
//! * `OTEL_EXPORTER_OTLP_ENDPOINT` additionally exports spans over OTLP, over HTTP or gRPC
//!   ([`OtlpProtocol`]; `OTEL_TRACES_SAMPLER` / `_ARG` are honoured by the SDK).
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
        "OTEL_EXPORTER_OTLP_PROTOCOL `{0}` is not supported: use `grpc` (the collector's port 4317) or `http/protobuf` (its port 4318)"
    )]
    UnsupportedOtlpProtocol(String),
    #[error(
        "OTEL_EXPORTER_OTLP_ENDPOINT `{0}` is not usable for OTLP/gRPC: it must be an http:// URL (OTLP/gRPC over TLS is not built in; use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf for an https:// collector)"
    )]
    UnsupportedGrpcEndpoint(String),
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
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`; `None` picks one from the endpoint
    /// ([`OtlpProtocol::for_endpoint`]).
    pub otlp_protocol: Option<OtlpProtocol>,
}

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`: `POST <endpoint>/v1/traces`, the collector's port 4318.
    HttpProtobuf,
    /// `grpc`: the collector's port 4317, HyperFleet's default.
    Grpc,
}

impl FromStr for OtlpProtocol {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            other => Err(TelemetryError::UnsupportedOtlpProtocol(other.to_owned())),
        }
    }
}

impl OtlpProtocol {
    /// The protocol to use when none was given. The OpenTelemetry default is `http/protobuf`,
    /// but HyperFleet's services default to gRPC, so a HyperFleet configuration carried over
    /// names only `OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317`: an endpoint on
    /// 4317, the well-known OTLP/gRPC port, is spoken to in gRPC (sending HTTP/1 there would
    /// export nothing, silently).
    pub fn for_endpoint(endpoint: &str) -> Self {
        match url::Url::parse(endpoint).ok().and_then(|u| u.port()) {
            Some(4317) => Self::Grpc,
            _ => Self::HttpProtobuf,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::Grpc => "grpc",
        }
    }
}

impl TelemetryConfig {
    /// Reads `LOG_LEVEL` (default `info`), `LOG_FORMAT` (default `json`), `LOKI_URL`,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn from_env(service: &str) -> Result<Self, TelemetryError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let config = Self {
            service: service.to_owned(),
            level: var("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            format: var("LOG_FORMAT").as_deref().unwrap_or("json").parse()?,
            loki_url: var("LOKI_URL"),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            otlp_protocol: var("OTEL_EXPORTER_OTLP_PROTOCOL")
                .map(|p| p.parse())
                .transpose()?,
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
        if let Some(endpoint) = &self.otlp_endpoint
            && self.effective_otlp_protocol() == Some(OtlpProtocol::Grpc)
            && !endpoint.trim_start().starts_with("http://")
        {
            return Err(TelemetryError::UnsupportedGrpcEndpoint(endpoint.clone()));
        }
        Ok(())
    }

    /// The protocol spans are exported with, `None` when they are not exported.
    pub fn effective_otlp_protocol(&self) -> Option<OtlpProtocol> {
        let endpoint = self.otlp_endpoint.as_deref()?;
        Some(
            self.otlp_protocol
                .unwrap_or_else(|| OtlpProtocol::for_endpoint(endpoint)),
        )
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
            let protocol = config
                .otlp_protocol
                .unwrap_or_else(|| OtlpProtocol::for_endpoint(endpoint));
            let (layer, provider) = otlp::layer(&config.service, endpoint, protocol)?;
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
            otlp_protocol: None,
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
    fn otlp_protocols_parse_and_unknown_ones_are_named() {
        assert_eq!("grpc".parse::<OtlpProtocol>().unwrap(), OtlpProtocol::Grpc);
        assert_eq!(
            " http/protobuf ".parse::<OtlpProtocol>().unwrap(),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            "http/json".parse::<OtlpProtocol>().unwrap_err().to_string(),
            "OTEL_EXPORTER_OTLP_PROTOCOL `http/json` is not supported: use `grpc` (the collector's port 4317) or `http/protobuf` (its port 4318)"
        );
    }

    #[test]
    fn without_a_protocol_the_grpc_port_means_grpc() {
        let with = |endpoint: &str, protocol: Option<OtlpProtocol>| {
            let mut c = config("info");
            c.otlp_endpoint = Some(endpoint.into());
            c.otlp_protocol = protocol;
            c
        };
        // HyperFleet's runbook: OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317 alone.
        let hyperfleet = with("http://otel-collector:4317", None);
        assert_eq!(
            hyperfleet.effective_otlp_protocol(),
            Some(OtlpProtocol::Grpc)
        );
        assert!(hyperfleet.validate().is_ok());
        assert_eq!(
            with("http://otel-collector:4318", None).effective_otlp_protocol(),
            Some(OtlpProtocol::HttpProtobuf)
        );
        assert_eq!(
            with("https://traces.example.com", None).effective_otlp_protocol(),
            Some(OtlpProtocol::HttpProtobuf)
        );
        // An explicit protocol wins over the port.
        assert_eq!(
            with("http://collector:4317", Some(OtlpProtocol::HttpProtobuf))
                .effective_otlp_protocol(),
            Some(OtlpProtocol::HttpProtobuf)
        );
        assert_eq!(config("info").effective_otlp_protocol(), None);
        // gRPC over TLS is not built in: said at start-up, not discovered as missing spans.
        let err = with("https://collector:4317", Some(OtlpProtocol::Grpc))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "OTEL_EXPORTER_OTLP_ENDPOINT `https://collector:4317` is not usable for OTLP/gRPC"
            ),
            "{err}"
        );
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
