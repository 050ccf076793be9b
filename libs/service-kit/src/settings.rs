//! The environment every service reads the same way.
//!
//! Flatten [`CommonArgs`] into a service's clap `Parser`: each setting is a flag and an
//! environment variable, and a flag wins over the variable. Services whose listen address has
//! another conventional default (fleet-api: 8000) pass it to [`CommonArgs::http_listen_or`].

use std::net::SocketAddr;
use std::time::Duration;

use steadfast_telemetry::{LogFormat, OtlpProtocol, TelemetryConfig, TelemetryError};

/// The default broker URL: the local broker's guest account.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Prefix of every exchange and queue name.
    #[arg(long, env = "STEADFAST_NAMESPACE", default_value = "steadfast")]
    pub namespace: String,

    /// Broker URL; several nodes separated by spaces or commas are tried in random order.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL, hide_env_values = true, hide_default_value = true)]
    pub amqp_url: String,

    /// Redis URL, for services that use Redis.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// PostgreSQL URL, for services that keep state.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address of the API and probe listener [default: 0.0.0.0:8080].
    #[arg(long, env = "HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// Address of the Prometheus metrics listener.
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,

    /// Log filter, e.g. `info` or `info,steadfast_messaging=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// `json` (one object per line) or `text`.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,

    /// Also push logs to this Loki (e.g. `http://loki:3100/`).
    #[arg(long, env = "LOKI_URL")]
    pub loki_url: Option<String>,

    /// Also export traces to this OTLP collector (e.g. `http://otel-collector:4318`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// `grpc` or `http/protobuf` [default: `grpc` for an endpoint on port 4317, else
    /// `http/protobuf`].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otlp_protocol: Option<String>,

    /// How long in-flight work may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = crate::config::parse_duration_arg)]
    pub shutdown_timeout: Duration,

    /// Validate the configuration, print the result and exit (0 when valid).
    #[arg(long)]
    pub check_config: bool,
}

impl CommonArgs {
    pub fn http_listen_or(&self, default: &str) -> SocketAddr {
        self.http_listen
            .unwrap_or_else(|| default.parse().expect("valid default listen address"))
    }

    pub fn http_listen(&self) -> SocketAddr {
        self.http_listen_or("0.0.0.0:8080")
    }

    /// The telemetry settings for `service`.
    pub fn telemetry(&self, service: &str) -> Result<TelemetryConfig, TelemetryError> {
        let config = TelemetryConfig {
            service: service.to_owned(),
            level: self.log_level.clone(),
            format: self.log_format.parse::<LogFormat>()?,
            loki_url: self.loki_url.clone().filter(|u| !u.is_empty()),
            otlp_endpoint: self.otlp_endpoint.clone().filter(|u| !u.is_empty()),
            otlp_protocol: self
                .otlp_protocol
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(str::parse::<OtlpProtocol>)
                .transpose()?,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        assert_eq!(cli.common.namespace, "steadfast");
        assert_eq!(cli.common.http_listen().to_string(), "0.0.0.0:8080");
        assert_eq!(
            cli.common.http_listen_or("0.0.0.0:8000").to_string(),
            "0.0.0.0:8000"
        );
        assert_eq!(cli.common.metrics_listen.to_string(), "0.0.0.0:9090");
        assert_eq!(cli.common.shutdown_timeout, Duration::from_secs(20));
        assert!(cli.common.telemetry("svc").is_ok());
    }

    #[test]
    fn flags_parse_and_bad_values_are_named() {
        let cli = Cli::try_parse_from([
            "svc",
            "--http-listen",
            "127.0.0.1:0",
            "--shutdown-timeout",
            "1m30s",
        ])
        .unwrap();
        assert_eq!(cli.common.http_listen().to_string(), "127.0.0.1:0");
        assert_eq!(cli.common.shutdown_timeout, Duration::from_secs(90));
        let err = Cli::try_parse_from(["svc", "--http-listen", "nowhere"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--http-listen"), "{err}");
        let cli = Cli::try_parse_from(["svc", "--log-format", "xml"]).unwrap();
        assert_eq!(
            cli.common.telemetry("svc").unwrap_err().to_string(),
            "LOG_FORMAT must be `json` or `text`, not `xml`"
        );
        let cli = Cli::try_parse_from(["svc", "--otlp-protocol", "http/json"]).unwrap();
        assert!(
            cli.common
                .telemetry("svc")
                .unwrap_err()
                .to_string()
                .starts_with("OTEL_EXPORTER_OTLP_PROTOCOL `http/json` is not supported"),
        );
    }

    #[test]
    fn a_hyperfleet_endpoint_on_the_grpc_port_is_exported_to_over_grpc() {
        let cli =
            Cli::try_parse_from(["svc", "--otlp-endpoint", "http://otel-collector:4317"]).unwrap();
        let telemetry = cli.common.telemetry("svc").unwrap();
        assert_eq!(
            telemetry.effective_otlp_protocol(),
            Some(OtlpProtocol::Grpc)
        );
        let cli = Cli::try_parse_from([
            "svc",
            "--otlp-endpoint",
            "http://otel-collector:4317",
            "--otlp-protocol",
            "http/protobuf",
        ])
        .unwrap();
        assert_eq!(
            cli.common
                .telemetry("svc")
                .unwrap()
                .effective_otlp_protocol(),
            Some(OtlpProtocol::HttpProtobuf)
        );
    }
}
