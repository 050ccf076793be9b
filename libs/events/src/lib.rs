//! The shape of every message Steadfast puts on the wire.
//!
//! Every body on RabbitMQ is a CloudEvents 1.0 event in structured JSON mode
//! (`application/cloudevents+json`). This crate owns that envelope, the rules that make one
//! valid, how its attributes are mirrored onto AMQP properties and headers, W3C trace
//! context, and the catalogue of event types the services exchange. It does no I/O, so it can
//! be tested exhaustively without a broker.
//!
//! # Layout
//! * [`envelope`]: [`Envelope<T>`], its builder and its bounded, validating decoder.
//! * [`amqp`]: the broker-neutral description of the AMQP properties an envelope maps onto.
//! * [`traceparent`]: parsing and generating W3C `traceparent` values.
//! * [`catalogue`]: event type names and the header values consumers switch on.
//! * [`alertmanager`]: how alert events are derived (ids, routing keys, data), shared by their producers.

pub mod alertmanager;
pub mod amqp;
pub mod catalogue;
pub mod envelope;
pub mod traceparent;

pub use amqp::{AmqpMetadata, HEADER_MESSAGE_TYPE, HEADER_TRACEPARENT};
pub use envelope::{CONTENT_TYPE, DEFAULT_MAX_EVENT_BYTES, Envelope, EnvelopeError, SPEC_VERSION};
pub use traceparent::TraceParent;
