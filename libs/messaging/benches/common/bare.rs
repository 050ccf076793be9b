//! The baseline: bare lapin, confirmed, persistent, 2 KiB messages through a topic exchange
//! into a quorum queue — the same broker work our services ask for, with nothing of ours on the
//! client. Our Publisher and Consumer are measured against it in the same run, so the ratio is
//! what our machinery costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The value after `name` on the command line, for the examples built on this module.
#[allow(dead_code)]
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    Some(
        args.get(at + 1)
            .unwrap_or_else(|| panic!("{name} takes a value"))
            .clone(),
    )
}

pub async fn connect(name: &str) -> Connection {
    Connection::connect(
        &amqp_url(),
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
    .expect("connect to RabbitMQ")
}

/// The topic exchange the baseline publishes to: `<queue>.x`, bound with `#` to the queue.
pub fn exchange_of(queue: &str) -> String {
    format!("{queue}.x")
}

pub async fn declare_quorum(conn: &Connection, queue: &str) {
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
        .await
        .unwrap();
    let exchange = exchange_of(queue);
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.into(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

pub async fn delete(conn: &Connection, queue: &str) {
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(exchange_of(queue).as_str().into(), Default::default())
        .await;
}

/// What each baseline message looks like apart from its size: routing key and properties.
pub struct Shape {
    pub routing_key: String,
    pub properties: BasicProperties,
}

impl Shape {
    /// A short key and nothing but persistence: the cheapest message for the broker.
    pub fn plain() -> Self {
        Self {
            routing_key: "bench.event".into(),
            properties: BasicProperties::default().with_delivery_mode(2),
        }
    }

    /// The AMQP properties a CloudEvent of ours carries (content type, id, type, app id,
    /// timestamp, `message-type` and `traceparent` headers), under `routing_key`: the same
    /// broker work per message as a service's events, with nothing of ours on the client.
    // Used by the bare_publish and http_floor examples, not by the throughput bench.
    #[allow(dead_code)]
    pub fn cloudevent(routing_key: &str) -> Self {
        let mut headers = FieldTable::default();
        for (name, value) in [
            ("message-type", "gitlab"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ] {
            headers.insert(
                name.into(),
                AMQPValue::LongString(value.as_bytes().to_vec().into()),
            );
        }
        Self {
            routing_key: routing_key.into(),
            properties: BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/cloudevents+json".into())
                .with_message_id("0193a3c2-5f1e-7abc-8def-0123456789ab".into())
                .with_type("com.gitlab.build".into())
                .with_app_id("webhook-receiver".into())
                .with_timestamp(1_795_608_000)
                .with_headers(headers),
        }
    }
}

/// Publishes `count` plain messages of `size` bytes from `concurrency` tasks sharing one
/// confirm channel, each awaiting its own confirm; returns messages per second.
pub async fn publish(
    conn: &Connection,
    queue: &str,
    count: usize,
    concurrency: usize,
    size: usize,
) -> f64 {
    publish_shaped(conn, queue, count, concurrency, size, &Shape::plain()).await
}

/// [`publish`] with messages of the given [`Shape`].
pub async fn publish_shaped(
    conn: &Connection,
    queue: &str,
    count: usize,
    concurrency: usize,
    size: usize,
    shape: &Shape,
) -> f64 {
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let body = Arc::new(vec![b'x'; size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (ch, body, exchange) = (ch.clone(), body.clone(), exchange_of(queue));
        let (key, properties) = (shape.routing_key.clone(), shape.properties.clone());
        let share = count / concurrency + usize::from(worker < count % concurrency);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let confirm = ch
                    .basic_publish(
                        exchange.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &body,
                        properties.clone(),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                assert!(confirm.is_ack());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Consumes and acks `count` messages with `prefetch`, acking from spawned tasks so the
/// receive loop never waits on an ack (as a consumer with concurrent handlers does); returns
/// messages per second.
pub async fn consume(conn: &Connection, queue: &str, count: usize, prefetch: u16) -> f64 {
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "bare".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut acks = Vec::with_capacity(count);
    for _ in 0..count {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a message within 30 s")
            .expect("stream open")
            .expect("delivery");
        acks.push(tokio::spawn(async move {
            delivery.ack(BasicAckOptions::default()).await
        }));
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    for ack in acks {
        ack.await.unwrap().unwrap();
    }
    let _ = ch.close(200, "done".into()).await;
    rate
}
