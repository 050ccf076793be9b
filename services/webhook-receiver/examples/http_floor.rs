//! The floor under the receiver's cost: the least any webhook receiver on this stack can do.
//!
//!   cargo run --release -p webhook-receiver --example http_floor -- \
//!       --listen 127.0.0.1:18082 --size 2349 --cloudevent-key gitlab.com.a.b.build
//!
//! An axum server whose `POST /gitlab` reads the body (1 MiB limit), publishes one message of
//! `--size` bytes with bare lapin — confirmed, mandatory, persistent, with the properties and
//! headers of our CloudEvents and routing key `--cloudevent-key`, into its own quorum queue
//! (the messaging benchmark's `bare::Shape::cloudevent`) — and answers 200 after the confirm.
//! No token check, no parsing, no envelope, no spool, no metrics. scripts/bench/receiver.sh
//! loads it exactly like the receiver: its rate is what the HTTP hop plus the broker work of
//! the receiver's events allow on this machine, whatever the receiver's own code costs.

// The baseline's message shapes and queue set-up, shared with libs/messaging's benchmark.
#[allow(dead_code)]
#[path = "../../../libs/messaging/benches/common/bare.rs"]
mod bare;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use lapin::Channel;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};

struct Floor {
    channel: Channel,
    exchange: String,
    shape: bare::Shape,
    message: Vec<u8>,
}

async fn publish(State(floor): State<Arc<Floor>>, body: Bytes) -> (StatusCode, String) {
    let confirmed = floor
        .channel
        .basic_publish(
            floor.exchange.as_str().into(),
            floor.shape.routing_key.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            &floor.message,
            floor.shape.properties.clone(),
        )
        .await;
    match confirmed {
        Ok(confirm) => match confirm.await {
            Ok(c) if c.is_ack() => (
                StatusCode::OK,
                format!("{{\"status\":\"published\",\"read\":{}}}", body.len()),
            ),
            other => (StatusCode::SERVICE_UNAVAILABLE, format!("{other:?}")),
        },
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

#[tokio::main]
async fn main() {
    let listen = bare::arg("--listen").unwrap_or_else(|| "127.0.0.1:18082".into());
    let size: usize =
        bare::arg("--size").map_or(2349, |v| v.parse().expect("--size takes a number"));
    let key = bare::arg("--cloudevent-key").unwrap_or_else(|| "gitlab.com.a.b.build".into());
    let queue = format!("bench-floor-{}", std::process::id());
    let conn = bare::connect("http-floor").await;
    bare::declare_quorum(&conn, &queue).await;
    let channel = conn.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let floor = Arc::new(Floor {
        channel,
        exchange: bare::exchange_of(&queue),
        shape: bare::Shape::cloudevent(&key),
        message: vec![b'x'; size],
    });
    let app = Router::new()
        .route("/gitlab", post(publish))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind the floor server");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // SIGTERM from the bench script ends the process; the queue is deleted there too.
    let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    tokio::select! {
        result = serve => result.expect("serve"),
        () = terminated() => {}
    }
    bare::delete(&conn, &queue).await;
}

async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    term.recv().await;
}
