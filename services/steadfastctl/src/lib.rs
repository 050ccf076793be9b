//! The commands of `steadfastctl`. Each returns the text to print, so tests can run them too;
//! the binary's tests run the real executable.
//!
//! Listing queues needs the RabbitMQ management API (AMQP cannot enumerate queues); reading,
//! replaying and discarding the parking lot use AMQP only. Both live in
//! `steadfast_messaging::admin`, which the console uses too: this crate only parses arguments
//! and prints.

mod probe;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use steadfast_messaging::admin::management::{ManagementApi, QueueInfo};
use steadfast_messaging::admin::{self, ReplayFilter};
use steadfast_messaging::topology::{self, PARKED_SUFFIX};
use steadfast_messaging::{Broker, BrokerConfig, MessagingMetrics, Namespace};

/// At most this many messages are named when `discard` asks for `--yes`.
const PREVIEW_NAMES: usize = 10;

#[derive(Debug, Parser)]
#[command(
    name = "steadfastctl",
    version,
    about = "Inspect and repair Steadfast's queues"
)]
pub struct Cli {
    /// Broker URL (the services' AMQP_URL).
    #[arg(long, env = "AMQP_URL", default_value = steadfast_service_kit::settings::DEFAULT_AMQP_URL, hide_env_values = true, hide_default_value = true, global = true)]
    pub amqp_url: String,

    /// Namespace prefix of the queues (the services' STEADFAST_NAMESPACE).
    #[arg(
        long,
        env = "STEADFAST_NAMESPACE",
        default_value = "steadfast",
        global = true
    )]
    pub namespace: String,

    /// RabbitMQ management API [default: http://<AMQP host>:15672 with the AMQP credentials].
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        hide_env_values = true,
        global = true
    )]
    pub management_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every queue of the namespace with its depth and consumer count.
    Queues {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show every queue on the broker, not only the namespace's.
        #[arg(long)]
        all: bool,
    },
    /// Parked messages of QUEUE (the work queue or its `.parked`), without removing them.
    Parked {
        queue: String,
        /// Print JSON (with the full message bodies) instead of a table.
        #[arg(long)]
        json: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Moves parked messages back to QUEUE with the retry count reset; each is confirmed on
    /// QUEUE before it leaves the parking lot.
    Replay {
        queue: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Removes parked messages of QUEUE for good (each is logged with its id and type). Without
    /// --yes it only says what it would remove.
    Discard {
        queue: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Really remove them.
        #[arg(long)]
        yes: bool,
    },
    /// GETs URL and succeeds on a 2xx answer: the containers' healthcheck (the images carry
    /// no curl), e.g. `steadfastctl probe http://127.0.0.1:8080/readyz`.
    Probe {
        url: String,
        /// Give up after this long (e.g. 3s).
        #[arg(long, default_value = "3s", value_parser = steadfast_service_kit::config::parse_duration_arg)]
        timeout: Duration,
    },
}

/// Which parked messages `replay` and `discard` act on.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only messages of this CloudEvent type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only the message with this id (the CloudEvent id); repeat for several.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Act on at most this many.
    #[arg(long)]
    limit: Option<usize>,
    /// Only messages parked at least this long ago (e.g. 30m, 2h).
    #[arg(long, value_parser = steadfast_service_kit::config::parse_duration_arg)]
    older_than: Option<Duration>,
}

impl From<FilterArgs> for ReplayFilter {
    fn from(args: FilterArgs) -> Self {
        Self {
            event_type: args.event_type,
            older_than: args.older_than,
            ids: (!args.ids.is_empty()).then(|| args.ids.into_iter().collect::<BTreeSet<_>>()),
            limit: args.limit,
        }
    }
}

/// Runs one command and returns what to print.
pub async fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::Queues { json, all } => {
            let namespace = Namespace::new(cli.namespace.clone())?;
            let api = match &cli.management_url {
                Some(url) => ManagementApi::new(url)?,
                None => ManagementApi::from_amqp_url(&cli.amqp_url)?,
            };
            let queues = if all {
                api.queues().await?
            } else {
                api.namespace_queues(&namespace).await?
            };
            if json {
                return Ok(serde_json::to_string_pretty(&queues)? + "\n");
            }
            Ok(queue_table(&queues, &namespace))
        }
        Command::Parked { queue, json, limit } => {
            check_queue_name(&queue)?;
            let broker = connect(&cli.amqp_url).await?;
            let parked = admin::parked(&broker, &queue, limit).await;
            broker.close().await;
            let parked = parked?;
            if json {
                return Ok(serde_json::to_string_pretty(&parked)? + "\n");
            }
            Ok(parked_table(&queue, &parked))
        }
        Command::Replay { queue, filter } => {
            check_queue_name(&queue)?;
            let broker = connect(&cli.amqp_url).await?;
            let report = admin::replay(&broker, &queue, &filter.into()).await;
            broker.close().await;
            let report = report?;
            let work = admin::work_queue_of(&queue);
            Ok(format!(
                "moved {} message(s) from {work}{PARKED_SUFFIX} back to {work}; {} left parked\n",
                report.moved, report.skipped
            ))
        }
        Command::Discard { queue, filter, yes } => {
            check_queue_name(&queue)?;
            let filter = ReplayFilter::from(filter);
            let broker = connect(&cli.amqp_url).await?;
            if !yes {
                let parked = admin::parked(&broker, &queue, usize::MAX).await;
                broker.close().await;
                return discard_preview(&queue, &filter, &parked?);
            }
            let report = admin::discard(&broker, &queue, &filter).await;
            broker.close().await;
            let report = report?;
            let work = admin::work_queue_of(&queue);
            Ok(format!(
                "removed {} message(s) from {work}{PARKED_SUFFIX}; {} left parked\n",
                report.removed, report.skipped
            ))
        }
        // Needs no broker and no namespace: it runs every few seconds in every container.
        Command::Probe { url, timeout } => Ok(probe::probe(&url, timeout).await?),
    }
}

async fn connect(url: &str) -> anyhow::Result<Broker> {
    let config = BrokerConfig::new(url, "steadfastctl")?;
    let metrics = MessagingMetrics::unregistered()?;
    Broker::connect(config, metrics, Duration::from_secs(10))
        .await
        .context("cannot reach the broker (is AMQP_URL right?)")
}

/// What `discard` without `--yes` says: an error naming what would go, or that nothing
/// matches (then there is nothing to confirm).
fn discard_preview(
    queue: &str,
    filter: &ReplayFilter,
    parked: &[admin::ParkedMessage],
) -> anyhow::Result<String> {
    let work = admin::work_queue_of(queue);
    let chosen: Vec<_> = parked
        .iter()
        .filter(|m| filter.matches(m))
        .take(filter.limit.unwrap_or(usize::MAX))
        .collect();
    if chosen.is_empty() {
        return Ok(format!(
            "none of the {} parked message(s) of {work} matches; nothing to remove\n",
            parked.len()
        ));
    }
    let mut names = chosen
        .iter()
        .take(PREVIEW_NAMES)
        .map(|m| {
            format!(
                "{} ({})",
                m.id.as_deref().unwrap_or("no id"),
                m.event_type.as_deref().unwrap_or("no type")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if chosen.len() > PREVIEW_NAMES {
        let _ = write!(names, " and {} more", chosen.len() - PREVIEW_NAMES);
    }
    bail!(
        "would remove {} of the {} parked message(s) of {work}: {names}; nothing was removed: add --yes to remove them",
        chosen.len(),
        parked.len()
    )
}

fn queue_table(queues: &[QueueInfo], namespace: &Namespace) -> String {
    if queues.is_empty() {
        return format!("no queues in namespace `{namespace}` (use --all to see every queue)\n");
    }
    let width = queues
        .iter()
        .map(|q| q.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>9}\n",
        "QUEUE", "READY", "UNACKED", "CONSUMERS"
    );
    let mut parked = (0u64, 0usize);
    for q in queues {
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>9}  {:>9}",
            q.name, q.messages_ready, q.messages_unacknowledged, q.consumers
        );
        if q.name.ends_with(PARKED_SUFFIX) && q.messages > 0 {
            parked.0 += q.messages;
            parked.1 += 1;
        }
    }
    if parked.0 > 0 {
        let _ = writeln!(
            out,
            "\n{} parked message(s) in {} queue(s): `steadfastctl parked QUEUE` shows why",
            parked.0, parked.1
        );
    }
    out
}

fn parked_table(queue: &str, parked: &[admin::ParkedMessage]) -> String {
    if parked.is_empty() {
        return format!("no parked messages for {}\n", admin::work_queue_of(queue));
    }
    let mut out = String::new();
    for (i, p) in parked.iter().enumerate() {
        let none = || "-".to_owned();
        let _ = writeln!(
            out,
            "#{} id={} type={} reason={} failed_at={} retries={} route={}/{}\n   error: {}",
            i + 1,
            p.id.clone().unwrap_or_else(none),
            p.event_type.clone().unwrap_or_else(none),
            p.reason.clone().unwrap_or_else(none),
            p.failed_at.clone().unwrap_or_else(none),
            p.retry_count,
            p.original_exchange.clone().unwrap_or_else(none),
            p.original_routing_key.clone().unwrap_or_else(none),
            p.error
                .clone()
                .unwrap_or_else(|| "(no error recorded)".into()),
        );
    }
    let _ = writeln!(
        out,
        "{} parked message(s); `steadfastctl replay {}` moves them back",
        parked.len(),
        admin::work_queue_of(queue)
    );
    out
}

/// Rejects a retry or delay queue where a work queue is meant, with a hint.
fn check_queue_name(queue: &str) -> anyhow::Result<()> {
    if topology::is_waiting_queue(queue) {
        let work = [".retry.", ".delayed.", topology::LEGACY_DELAY_INFIX]
            .iter()
            .find_map(|infix| queue.split_once(infix).map(|(work, _)| work))
            .unwrap_or(queue);
        bail!("`{queue}` is a retry or delay queue; name the work queue, e.g. `{work}`");
    }
    Ok(())
}
