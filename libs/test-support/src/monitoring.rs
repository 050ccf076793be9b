//! The metrics the alert rules and dashboards name, checked against what a service exports.
//!
//! The rules (`k8s/components/monitoring/rules/*.yml`) and the Grafana dashboards
//! (`k8s/components/monitoring/dashboards/*.json`) are kept in the repository; a metric renamed
//! in code would silently empty a panel or disarm an alert. Each service's test starts its
//! `App` in-process, scrapes `/metrics` and calls [`assert_exports`] with the name prefixes it
//! owns ([`OWNERS`]), so the rename breaks the build instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Who exports which metric names. A name in a rule or dashboard that matches no prefix here
/// (and is not [`EXTERNAL`]) fails [`references`]: every name must be checked by someone.
pub const OWNERS: &[(&str, &[&str])] = &[
    ("webhook-receiver", &["webhook_receiver_"]),
    ("pipeline-herder", &["pipeline_herder_", "cki_herder_"]),
    (
        "alert-reconciler",
        &["alert_reconciler_", "steadfast_reconciler_"],
    ),
    (
        "sentinel",
        &[
            "hyperfleet_sentinel_",
            "hyperfleet_broker_messages_published_total",
        ],
    ),
    ("adapter", &["hyperfleet_adapter_"]),
    ("console", &["steadfast_console_"]),
    // libs/messaging, on every service; checked on the herder, which both consumes and
    // publishes.
    (
        "messaging",
        &[
            "steadfast_messages_",
            "steadfast_publish_",
            "steadfast_handler_",
            "steadfast_broker_",
        ],
    ),
    // HyperFleet's broker library names: the sentinel publishes (above), the adapter consumes.
    ("hyperfleet-broker", &["hyperfleet_broker_"]),
    // Every service (libs/telemetry's service registry).
    ("every-service", &["steadfast_build_info", "process_"]),
];

/// Names exported by systems outside Steadfast's code: Prometheus itself (`up`, `ALERTS`,
/// `scrape_*`) and RabbitMQ's `rabbitmq_prometheus` plugin.
pub const EXTERNAL: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE", "scrape_", "rabbitmq_"];

/// A metric name and where it is named (`rules: SpoolGrowing`, `dashboard overview.json`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub metric: String,
    pub place: String,
}

/// `k8s/components/monitoring` of this repository.
pub fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/components/monitoring")
}

/// Every metric named by a rule or a dashboard panel's PromQL, with its place. Panics with a
/// precise message when a file cannot be read or parsed, or a name has no owner.
pub fn references() -> Vec<Reference> {
    let dir = monitoring_dir();
    let mut out = Vec::new();
    // Recording rules define names the rules and dashboards may use in turn.
    let mut recorded = BTreeSet::new();
    for path in files(&dir.join("rules"), "yml") {
        let text = read(&path);
        let rules: serde_norway::Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
        for group in seq(&rules["groups"]) {
            for rule in seq(&group["rules"]) {
                if let Some(record) = rule["record"].as_str() {
                    recorded.insert(record.to_owned());
                }
                let name = rule["alert"]
                    .as_str()
                    .or_else(|| rule["record"].as_str())
                    .unwrap_or("?");
                let expr = rule["expr"].as_str().unwrap_or_else(|| {
                    panic!("{}: rule {name} has no string `expr`", path.display())
                });
                for metric in promql_metric_names(expr) {
                    out.push(Reference {
                        metric,
                        place: format!("rules: {name}"),
                    });
                }
            }
        }
    }
    for path in files(&dir.join("dashboards"), "json") {
        let text = read(&path);
        let dashboard: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut exprs = Vec::new();
        prometheus_exprs(&dashboard, &mut exprs);
        for expr in exprs {
            for metric in promql_metric_names(&expr) {
                out.push(Reference {
                    metric,
                    place: format!("dashboard {file}"),
                });
            }
        }
    }
    out.retain(|r| !recorded.contains(&r.metric));
    let orphans: Vec<_> = out
        .iter()
        .filter(|r| owner_of(&r.metric).is_none() && !is_external(&r.metric))
        .collect();
    assert!(
        orphans.is_empty(),
        "metrics named in k8s/components/monitoring that no service test checks (add the \
         prefix to OWNERS in libs/test-support/src/monitoring.rs): {orphans:?}"
    );
    out.sort();
    out.dedup();
    out
}

/// The owner in [`OWNERS`] whose prefixes match `metric`.
pub fn owner_of(metric: &str) -> Option<&'static str> {
    OWNERS
        .iter()
        .find(|(_, prefixes)| prefixes.iter().any(|p| metric.starts_with(p)))
        .map(|(owner, _)| *owner)
}

fn is_external(metric: &str) -> bool {
    EXTERNAL
        .iter()
        .any(|e| metric == *e || (e.ends_with('_') && metric.starts_with(e)))
}

/// Asserts that `scrape` (a `/metrics` body) exports every metric named in the rules and
/// dashboards whose owner is one of `owners`; the failure lists each missing name with where
/// it is used.
pub fn assert_exports(scrape: &str, owners: &[&str]) {
    let exported = exported_names(scrape);
    let wanted: Vec<Reference> = references()
        .into_iter()
        .filter(|r| owner_of(&r.metric).is_some_and(|o| owners.contains(&o)))
        .collect();
    assert!(
        !wanted.is_empty(),
        "no rule or dashboard names a metric of {owners:?}: is k8s/components/monitoring there?"
    );
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for reference in &wanted {
        if !exported.contains(&reference.metric) {
            missing
                .entry(reference.metric.as_str())
                .or_default()
                .push(reference.place.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "named in k8s/components/monitoring but not exported by {owners:?}: {missing:#?}"
    );
}

/// The metric names a scrape exports, including each histogram's and summary's `_bucket`,
/// `_sum` and `_count` series names.
pub fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            if kind == "histogram" || kind == "summary" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// The metric names in a PromQL expression: identifiers that are not functions, keywords,
/// label names (in `{…}` or `by (…)`), durations or strings. Grafana variables (`$job`,
/// `$__rate_interval`) are ignored.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
        "atan2",
        // Aggregation operators: `sum by (le) (…)` puts a modifier between them and `(`.
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // After `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`: the next
    // parenthesised list holds label names.
    let mut label_list_next = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if label_list_next => {
                label_list_next = false;
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers and durations (`5m`, `1e3`, `0.95`).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let is_call = j < chars.len() && chars[j] == '(';
                if matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    label_list_next = true;
                } else if !is_call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every `expr` of a Prometheus-datasource target in a dashboard (panels nested in rows
/// included); Loki targets hold LogQL and are skipped.
fn prometheus_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            // scripts/monitoring/dashboards.py makes every datasource name its type.
            let is_loki = map
                .get("datasource")
                .and_then(|d| d.get("type"))
                .is_some_and(|t| t == "loki");
            if let Some(expr) = map.get("expr").and_then(|e| e.as_str())
                && !is_loki
            {
                out.push(expr.to_owned());
            }
            for (key, child) in map {
                // A Loki panel's targets inherit the panel's datasource.
                if is_loki && key == "targets" {
                    continue;
                }
                // Template variables' `query` may be `label_values(metric, label)`.
                if key == "templating" {
                    variable_queries(child, out);
                    continue;
                }
                prometheus_exprs(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                prometheus_exprs(item, out);
            }
        }
        _ => {}
    }
}

/// `label_values(metric, label)` and `query_result(expr)` of Prometheus template variables.
fn variable_queries(templating: &serde_json::Value, out: &mut Vec<String>) {
    for variable in seq_json(&templating["list"]) {
        if variable["datasource"]["type"] == "loki" {
            continue;
        }
        let query = variable["query"]
            .as_str()
            .or_else(|| variable["query"]["query"].as_str())
            .unwrap_or("");
        if let Some(inner) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            // `label_values(metric{…}, label)`: the metric is the first argument; a single
            // argument is a label name alone.
            if let Some((metric, _label)) = inner.rsplit_once(',') {
                out.push(metric.to_owned());
            }
        } else if let Some(inner) = query
            .strip_prefix("query_result(")
            .and_then(|q| q.strip_suffix(')'))
        {
            out.push(inner.to_owned());
        }
    }
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn seq(value: &serde_norway::Value) -> &[serde_norway::Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

fn seq_json(value: &serde_json::Value) -> &[serde_json::Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        promql_metric_names(expr).into_iter().collect()
    }

    #[test]
    fn finds_metric_names_and_nothing_else_in_promql() {
        assert_eq!(
            names(
                r#"sum by (queue, le) (rate(steadfast_handler_duration_seconds_bucket{queue=~"a.*", job="x"}[5m])) > 0.5"#
            ),
            ["steadfast_handler_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                r#"histogram_quantile(0.95, sum(rate(a_seconds_bucket[$__rate_interval])) by (le)) / on(job) group_left(version) steadfast_build_info"#
            ),
            ["a_seconds_bucket", "steadfast_build_info"]
        );
        assert_eq!(
            names(r#"absent(up{job="sentinel"} == 1) or time() - last_poll_seconds > 60"#),
            ["last_poll_seconds", "up"]
        );
        assert_eq!(
            names(r#"increase(parked_total{reason!="x y"}[10m] offset 1h) > 0 unless bool b"#),
            ["b", "parked_total"]
        );
        assert_eq!(names("max_over_time(g[1h:5m]) > 1e3"), ["g"]);
    }

    #[test]
    fn exported_names_include_histogram_series() {
        let scrape = "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 0\n# TYPE c_total counter\nc_total 3\nuntyped_thing 1\n";
        let names = exported_names(scrape);
        for n in [
            "h_seconds",
            "h_seconds_bucket",
            "h_seconds_sum",
            "h_seconds_count",
            "c_total",
            "untyped_thing",
        ] {
            assert!(names.contains(n), "{n}");
        }
        assert!(!names.contains("c_total_bucket"));
    }

    #[test]
    fn every_metric_the_rules_and_dashboards_name_has_an_owner() {
        // Panics naming the orphans.
        let references = references();
        assert!(
            references.iter().any(|r| r.place.starts_with("rules: ")),
            "no rule names a metric"
        );
        assert!(
            references.iter().any(|r| r.place.starts_with("dashboard ")),
            "no dashboard names a metric"
        );
    }
}
