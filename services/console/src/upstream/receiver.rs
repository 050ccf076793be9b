//! The webhook-receiver's numbers for the overview — webhooks accepted per minute, events in
//! the spool — read from its Prometheus endpoint. That endpoint is on the receiver's internal
//! metrics listener, so nothing is added to the listener that faces GitLab and Alertmanager.
//!
//! A rate needs two readings: [`ReceiverRate`] keeps the last minute of readings, taken by the
//! console's refresher once per refresh interval (pages read the latest, they never scrape),
//! and the rate is the accepted count's rise over that window, per minute. A receiver restart
//! resets its counter; the readings start over.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use steadfast_service_kit::http_client::HttpClient;

/// How far back the rate looks.
const WINDOW: Duration = Duration::from_secs(60);

/// What one reading of the receiver's metrics says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverStats {
    /// Webhook requests answered with a 2xx, since the receiver started.
    pub accepted_total: f64,
    /// Events waiting in the spool (`None` when the receiver has no spool).
    pub spool_depth: Option<f64>,
}

/// Reads the series the overview needs out of the Prometheus text format.
pub fn parse(text: &str) -> ReceiverStats {
    let mut stats = ReceiverStats {
        accepted_total: 0.0,
        spool_depth: None,
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once('}') {
            Some((series, rest)) => (series, rest),
            None => match line.split_once(' ') {
                Some((series, rest)) => (series, rest),
                None => continue,
            },
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if series.starts_with("webhook_receiver_requests_total{") && series.contains("status=\"2") {
            stats.accepted_total += value;
        } else if series == "webhook_receiver_spool_depth" {
            stats.spool_depth = Some(value);
        }
    }
    stats
}

/// The last reading, and the rate over the last minute's (`None` until two readings at least
/// a second apart exist).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverReading {
    pub stats: ReceiverStats,
    pub per_minute: Option<f64>,
}

/// What the overview knows of the receiver: nothing before the first scrape, or the last
/// reading, or why the last scrape failed.
pub type LatestReading = Option<Result<ReceiverReading, String>>;

/// The readings of the last minute, for the rate.
pub struct ReceiverRate {
    metrics_url: url::Url,
    http: HttpClient,
    readings: Mutex<Readings>,
}

#[derive(Default)]
struct Readings {
    /// When, and the accepted count then.
    window: VecDeque<(Instant, f64)>,
    /// The last reading, or why the last scrape failed.
    latest: Option<Result<ReceiverStats, String>>,
}

impl ReceiverRate {
    pub fn new(metrics_url: url::Url, http: HttpClient) -> Self {
        Self {
            metrics_url,
            http,
            readings: Mutex::new(Readings::default()),
        }
    }

    /// Reads the receiver's metrics now and keeps the reading (or the failure).
    pub async fn sample(&self) {
        let url = self.metrics_url.join("/metrics").expect("a static path");
        let read = async {
            let response = self
                .http
                .send(|c| c.get(url.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let text = response.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(parse(&text))
        };
        match read.await {
            Ok(stats) => self.keep(Instant::now(), stats),
            Err(error) => self.lock().latest = Some(Err(error)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Readings> {
        self.readings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keep(&self, at: Instant, stats: ReceiverStats) {
        let mut readings = self.lock();
        let total = stats.accepted_total;
        // A lower count than the last: the receiver restarted; earlier readings mean nothing.
        if readings
            .window
            .back()
            .is_some_and(|(_, last)| total < *last)
        {
            readings.window.clear();
        }
        readings.window.push_back((at, total));
        while readings
            .window
            .front()
            .is_some_and(|(first, _)| at.duration_since(*first) > WINDOW)
        {
            readings.window.pop_front();
        }
        readings.latest = Some(Ok(stats));
    }

    /// The last reading with the webhooks accepted per minute over the last minute's readings.
    pub fn latest(&self) -> LatestReading {
        let readings = self.lock();
        let per_minute = match (readings.window.front(), readings.window.back()) {
            (Some(&(first_at, first)), Some(&(last_at, last))) => {
                let span = last_at.duration_since(first_at);
                (span >= Duration::from_secs(1)).then(|| (last - first) / span.as_secs_f64() * 60.0)
            }
            _ => None,
        };
        readings
            .latest
            .clone()
            .map(|latest| latest.map(|stats| ReceiverReading { stats, per_minute }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "\
# HELP webhook_receiver_requests_total Webhook requests answered, by source and HTTP status.
# TYPE webhook_receiver_requests_total counter
webhook_receiver_requests_total{source=\"gitlab\",status=\"200\"} 40
webhook_receiver_requests_total{source=\"alertmanager\",status=\"200\"} 2
webhook_receiver_requests_total{source=\"gitlab\",status=\"401\"} 7
webhook_receiver_spool_depth 3
webhook_receiver_spool_oldest_age_seconds 12.5
";

    #[test]
    fn accepted_requests_and_the_spool_are_read_from_the_scrape() {
        assert_eq!(
            parse(SCRAPE),
            ReceiverStats {
                accepted_total: 42.0,
                spool_depth: Some(3.0)
            }
        );
        assert_eq!(parse("garbage\n{}\n").accepted_total, 0.0);
    }

    #[test]
    fn the_rate_is_the_rise_over_the_window_and_restarts_with_the_receiver() {
        let rate = ReceiverRate::new(
            "http://receiver:9090".parse().unwrap(),
            crate::upstream::http_client().unwrap(),
        );
        let reading = |accepted_total| ReceiverStats {
            accepted_total,
            spool_depth: Some(0.0),
        };
        let per_minute = |rate: &ReceiverRate| rate.latest().unwrap().unwrap().per_minute;
        assert_eq!(rate.latest(), None, "nothing read yet");
        let start = Instant::now();
        rate.keep(start, reading(100.0));
        assert_eq!(per_minute(&rate), None, "one reading is no rate");
        rate.keep(start + Duration::from_secs(30), reading(130.0));
        assert_eq!(per_minute(&rate), Some(60.0));
        // Past the window, the oldest reading goes.
        rate.keep(start + Duration::from_secs(75), reading(160.0));
        assert_eq!(per_minute(&rate), Some(40.0));
        assert_eq!(rate.latest().unwrap().unwrap().stats, reading(160.0));
        // The receiver restarted: its counter began again.
        rate.keep(start + Duration::from_secs(80), reading(2.0));
        assert_eq!(per_minute(&rate), None);
    }
}
