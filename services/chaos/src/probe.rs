//! The probe: the suite's own queue bound to `<ns>.webhooks`, consumed over AMQP with manual
//! acknowledgements, so that what the receivers' publishes reached is known even across broker
//! faults. An id is recorded before its message is acknowledged; a connection lost in between
//! only redelivers it (counted, never missed). Reading through the management API's `get`
//! instead lost messages whenever its HTTP answer was lost during a broker fault: the broker
//! had already removed them.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use crate::load::Clock;
use crate::observe::Observer;

/// Unacknowledged probe messages in flight at a time.
const PREFETCH: u16 = 500;
/// Longest pause between reconnection attempts (a broker fault lasts seconds).
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest wait for a connection and its consumer. lapin's connect can wait forever when the
/// broker accepts the TCP connection but not the AMQP handshake (seen during `stop_app`): the
/// probe then consumed nothing for the rest of a 10-minute run, and never stopped.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer")]
    Ended,
    #[error("no connection and consumer within {0:?}")]
    SetupTimeout(Duration),
}

/// Consumes `queue` at any of `urls` (a cluster's nodes, tried in turn) until `stop`,
/// recording every message id into `observer`.
pub async fn run(
    urls: Vec<String>,
    queue: String,
    observer: Observer,
    clock: Clock,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut next = 0;
    while !stop.is_cancelled() {
        let url = &urls[next % urls.len().max(1)];
        next += 1;
        match consume(url, &queue, &observer, clock, &stop).await {
            Ok(()) => return,
            Err(error) => {
                observer.note_error(format!("probe via {url}: {error} (reconnecting)"));
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's worth of consuming; `Ok` once stopped.
async fn consume(
    url: &str,
    queue: &str,
    observer: &Observer,
    clock: Clock,
    stop: &CancellationToken,
) -> Result<(), ProbeError> {
    let setup = async {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let deliveries = channel
            .basic_consume(
                queue.into(),
                "steadfast-chaos-probe".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, ProbeError>((connection, deliveries))
    };
    let (connection, mut deliveries) = tokio::select! {
        () = stop.cancelled() => return Ok(()),
        setup = tokio::time::timeout(SETUP_TIMEOUT, setup) => {
            setup.map_err(|_| ProbeError::SetupTimeout(SETUP_TIMEOUT))??
        }
    };
    loop {
        let delivery = tokio::select! {
            () = stop.cancelled() => {
                let closing = connection.close(200, "done".into());
                let _ = tokio::time::timeout(SETUP_TIMEOUT, closing).await;
                return Ok(());
            }
            delivery = deliveries.next() => delivery,
        };
        let Some(delivery) = delivery else {
            return Err(ProbeError::Ended);
        };
        let delivery = delivery?;
        if let Some(id) = delivery.properties.message_id() {
            observer.record_probe(id.to_string(), clock.now());
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
}
