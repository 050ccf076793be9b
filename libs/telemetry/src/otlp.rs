//! OTLP span export: over HTTP with the workspace's one reqwest, or over gRPC with tonic (the
//! collector's port 4317, as HyperFleet's charts configure it).
//!
//! # Implementation notes
//! The SDK's batch processor exports from its own thread with a blocking executor, where no
//! Tokio reactor runs; reqwest needs one. [`RuntimeClient`] therefore hands every request to
//! the Tokio runtime that was current at start-up and waits for the result, which works from
//! any thread. The gRPC exporter needs no such help: tonic's channel runs its connection as a
//! task spawned on that runtime when the exporter is built, and the exporter only hands it
//! requests.

use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::{OtlpProtocol, TelemetryError};

#[derive(Debug, Clone)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut builder = client
                .request(parts.method, parts.uri.to_string())
                .body(body);
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = Response::builder().status(status);
            for (name, value) in &headers {
                out = out.header(name, value);
            }
            Ok::<_, HttpError>(out.body(body)?)
        });
        task.await?
    }
}

/// The tracing layer that exports spans to `endpoint` (e.g. `http://otel-collector:4318` over
/// HTTP, `http://otel-collector:4317` over gRPC).
pub(crate) fn layer<S>(
    service: &str,
    endpoint: &str,
    protocol: OtlpProtocol,
) -> Result<(Box<dyn Layer<S> + Send + Sync>, SdkTracerProvider), TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| TelemetryError::Otlp("OTLP export needs a Tokio runtime".into()))?;
    let exporter = match protocol {
        OtlpProtocol::HttpProtobuf => {
            let client = RuntimeClient {
                client: reqwest::Client::new(),
                runtime,
            };
            let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(traces_url)
                .build()
        }
        OtlpProtocol::Grpc => {
            // Built inside the runtime (connect_lazy spawns the connection task there).
            let _inside = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
        }
    }
    .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer(service.to_owned());
    let layer = crate::trace::layer(tracer).boxed();
    Ok((layer, provider))
}
