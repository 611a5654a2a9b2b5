//! The plugin's own metrics in Prometheus text format, served through
//! `Diagnostics.CollectMetrics` (Grafana exposes them at `/metrics/plugins/<plugin id>`).
//!
//! Counters and histograms live here, process-wide (prometheus-client families, recorded without
//! a lock of ours); gauges (budget, pollers, history size, the latest status distribution) are read
//! from the data source instances when Grafana collects, so a scrape never calls upstream and
//! never touches the history database. prometheus-client encodes them; [`render`] turns its
//! OpenMetrics text into the Prometheus text format Grafana expects.
//!
//! Every series carries `datasource` (the data source uid) and, where it is about one target,
//! `target` (the target key such as `cp:1209788/STANDARD_TLS`). Nothing secret is ever a label or
//! a value here: keys, uids, status codes and counts only. See `docs/metrics.md`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::handlers::distribution::round2;
use crate::poller::Cached;
use crate::sample::{Sample, Side};
use crate::upstream::BudgetState;

/// Upper bounds of the upstream latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The status classes that always get a gauge, so that each old exporter gauge has exactly one
/// replacement series (0 when the class is absent from a successful sample).
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The latest sample drives the distribution gauges only while it is younger than this many poll
/// intervals: older, Prometheus gets a gap rather than a value that silently stopped moving.
const FRESH_INTERVALS: u32 = 2;

/// Label names and values of one series, in the order they are written.
type Labels = Vec<(&'static str, String)>;

/// The process-wide counters and histograms, recorded as calls and queries happen.
struct Recorded {
    upstream_calls: Family<Labels, Counter>,
    upstream_latency: Family<Labels, Histogram>,
    queries: Family<Labels, Counter>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| Recorded {
        upstream_calls: Family::default(),
        upstream_latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        queries: Family::default(),
    })
}

/// One upstream call ended with `result`: `ok`, `execution_failed` (HTTP 200 with
/// `executionStatus: FAILURE`) or an [`crate::estats::ErrorKind`] label.
pub fn record_upstream_call(
    datasource: &str,
    target: &str,
    endpoint: &'static str,
    result: &str,
    latency: Duration,
) {
    let r = recorded();
    let mut labels: Labels = vec![
        ("datasource", datasource.to_string()),
        ("target", target.to_string()),
        ("endpoint", endpoint.to_string()),
    ];
    r.upstream_latency
        .get_or_create(&labels)
        .observe(latency.as_secs_f64());
    labels.push(("result", result.to_string()));
    r.upstream_calls.get_or_create(&labels).inc();
}

/// One panel or alert query was answered with `outcome` (see [`query_outcome`]).
pub fn record_query(datasource: &str, query_type: &str, outcome: &str) {
    recorded()
        .queries
        .get_or_create(&vec![
            ("datasource", datasource.to_string()),
            ("query_type", query_type.to_string()),
            ("outcome", outcome.to_string()),
        ])
        .inc();
}

/// The `outcome` label of a query answered with HTTP-like `status`.
pub fn query_outcome(status: i32) -> &'static str {
    match status {
        200..=299 => "ok",
        400 => "bad_query",
        401 | 403 => "auth",
        429 => "rate_limited",
        502 => "upstream_error",
        504 => "timeout",
        500..=599 => "internal_error",
        _ => "error",
    }
}

/// What the gauges show of one target, read from its poller without I/O.
#[derive(Debug, Clone)]
pub struct TargetGauges {
    /// The target key, e.g. `cp:1209788/STANDARD_TLS`.
    pub key: String,
    pub polling: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Rows held in the history (failed polls included).
    pub samples: u64,
    pub latest: Option<Cached>,
}

/// What the gauges show of one data source instance.
#[derive(Debug, Clone)]
pub struct DataSourceGauges {
    pub uid: String,
    pub poll_interval: Duration,
    pub budget: BudgetState,
    /// Bytes of the history file (with its WAL); `None` for an in-memory history.
    pub history_bytes: Option<u64>,
    pub targets: Vec<TargetGauges>,
    /// Leases and store health with the shared PostgreSQL history; `None` without it.
    pub shared: Option<crate::poller::SharedState>,
}

impl TargetGauges {
    /// The sample the distribution gauges show: the latest successful one, unless the last
    /// attempt failed or it is older than two poll intervals (then the gauges are absent).
    pub fn fresh_sample(&self, poll_interval: Duration) -> Option<&Sample> {
        self.latest
            .as_ref()
            .filter(|c| !c.failing && c.age < poll_interval * FRESH_INTERVALS)
            .map(|c| c.sample.as_ref())
    }
}

/// A gauge family of one scrape: its name, help and series.
struct GaugeFamily {
    name: &'static str,
    help: &'static str,
    series: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// The gauges of one scrape, read from the data source instances. A family exists once it has
/// a series, so a gauge that has nothing to show (no history file, no fresh sample) is absent
/// rather than empty.
#[derive(Default)]
struct Gauges {
    families: Vec<GaugeFamily>,
}

impl Gauges {
    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &Labels, value: f64) {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(GaugeFamily {
                    name,
                    help,
                    series: Family::default(),
                });
                self.families.len() - 1
            }
        };
        self.families[i].series.get_or_create(labels).set(value);
    }

    /// Adds the gauges of one data source instance.
    fn data_source(&mut self, ds: &DataSourceGauges) {
        let uid = || vec![("datasource", ds.uid.clone())];
        self.gauge(
            "akamai_estats_budget_tokens_left",
            "Upstream calls the data source's rate-limit budget allows right now (0 while paused after a 429).",
            &uid(),
            f64::from(ds.budget.tokens_left),
        );
        self.gauge(
            "akamai_estats_budget_limit_per_minute",
            "The data source's rateLimitPerMinute.",
            &uid(),
            f64::from(ds.budget.limit_per_minute),
        );
        self.gauge(
            "akamai_estats_budget_calls_last_minute",
            "Upstream calls started in the last 60 s.",
            &uid(),
            f64::from(ds.budget.calls_last_minute),
        );
        self.gauge(
            "akamai_estats_poll_interval_seconds",
            "The data source's pollIntervalSeconds.",
            &uid(),
            ds.poll_interval.as_secs_f64(),
        );
        if let Some(bytes) = ds.history_bytes {
            self.gauge(
                "akamai_estats_history_size_bytes",
                "Size of the history database file and its write-ahead log (absent for in-memory history).",
                &uid(),
                bytes as f64,
            );
        }
        if let Some(shared) = &ds.shared {
            self.shared(&uid(), shared);
        }
        for t in &ds.targets {
            self.target(ds, t);
        }
    }

    /// The shared history store's gauges (`docs/high-availability.md`).
    fn shared(&mut self, uid: &Labels, s: &crate::poller::SharedState) {
        self.gauge(
            "akamai_estats_store_up",
            "1 when the last use of the shared history database succeeded, else 0.",
            uid,
            if s.store_up { 1.0 } else { 0.0 },
        );
        self.gauge(
            "akamai_estats_store_errors",
            "Failed uses of the shared history database since the process started.",
            uid,
            s.store_errors as f64,
        );
        self.gauge(
            "akamai_estats_store_buffered_writes",
            "Polls waiting in memory for the shared history database to come back.",
            uid,
            s.buffered as f64,
        );
        self.gauge(
            "akamai_estats_lease_targets_owned",
            "Targets whose lease this replica holds (it polls them).",
            uid,
            s.owned as f64,
        );
        self.gauge(
            "akamai_estats_lease_replicas",
            "Replicas serving the data source seen within the lease period, this one included.",
            uid,
            s.replicas as f64,
        );
        for (change, n) in [
            ("acquired", s.acquired),
            ("lost", s.lost),
            ("fenced", s.fenced),
        ] {
            let mut labels = uid.clone();
            labels.push(("change", change.to_string()));
            self.gauge(
                "akamai_estats_lease_changes",
                "Leases acquired and lost, and writes refused as stale (fenced), since the process started.",
                &labels,
                n as f64,
            );
        }
    }

    fn target(&mut self, ds: &DataSourceGauges, t: &TargetGauges) {
        let base: Labels = vec![("datasource", ds.uid.clone()), ("target", t.key.clone())];
        self.gauge(
            "akamai_estats_target_polling",
            "1 while a poller samples the target, 0 when it went idle (not queried for 10 poll intervals).",
            &base,
            if t.polling { 1.0 } else { 0.0 },
        );
        self.gauge(
            "akamai_estats_samples_held",
            "Samples of the target held in the history (failed polls included).",
            &base,
            t.samples as f64,
        );
        if let Some(at) = t.last_success {
            self.gauge(
                "akamai_estats_last_success_timestamp_seconds",
                "Unix time of the target's last successful sample.",
                &base,
                unix_seconds(at),
            );
        }
        if let Some(at) = t.last_error_at {
            self.gauge(
                "akamai_estats_last_error_timestamp_seconds",
                "Unix time of the target's last failed poll or query.",
                &base,
                unix_seconds(at),
            );
        }
        let fresh = t.fresh_sample(ds.poll_interval);
        self.gauge(
            "akamai_estats_latest_sample_fresh",
            "1 when the status distribution gauges show a sample (the last attempt succeeded, younger than two poll intervals), else 0.",
            &base,
            if fresh.is_some() { 1.0 } else { 0.0 },
        );
        if let Some(sample) = fresh {
            self.distribution(&base, sample);
        }
    }

    /// The status distribution of one sample, as the old exporter's gauges and more.
    fn distribution(&mut self, base: &Labels, sample: &Sample) {
        for side in Side::BOTH {
            let stats = sample.side(side);
            let mut labels = base.clone();
            labels.push(("side", side.as_str().to_string()));
            if let Some(hits) = stats.hits {
                self.gauge(
                    "akamai_estats_side_hits",
                    "Hits of the latest sample per side (edge: Akamai to clients, origin: Akamai to the origin).",
                    &labels,
                    hits as f64,
                );
            }
            if let Some(errors) = stats.errors {
                self.gauge(
                    "akamai_estats_side_errors",
                    "Errors of the latest sample per side, as eStats counts them.",
                    &labels,
                    errors as f64,
                );
            }
            if let Some(pct) = stats.failure_percentage {
                self.gauge(
                    "akamai_estats_side_failure_percent",
                    "Failure percentage of the latest sample per side, as eStats reports it.",
                    &labels,
                    pct,
                );
            }
            // Summed in code order and rounded like the `distribution` query's class rows, so
            // the gauge and a panel show the same number for the same sample.
            let mut classes: BTreeMap<&str, (u64, f64)> =
                STATUS_CLASSES.iter().map(|c| (*c, (0, 0.0))).collect();
            for code in &stats.codes {
                let class = format!("{}xx", code.http_status / 100);
                if let Some(entry) = classes.get_mut(class.as_str()) {
                    entry.0 += code.hits;
                    entry.1 += code.percentage;
                }
            }
            for (class, (hits, pct)) in classes {
                let mut l = labels.clone();
                l.push(("status_class", class.to_string()));
                self.gauge(
                    "akamai_estats_status_share_percent",
                    "Share of a status class in the latest sample's hits, in percent; replaces the exporter's edge_1xx..origin_5xx.",
                    &l,
                    round2(pct),
                );
                self.gauge(
                    "akamai_estats_status_hits",
                    "Hits of a status class in the latest sample.",
                    &l,
                    hits as f64,
                );
            }
            for code in &stats.codes {
                let mut l = labels.clone();
                l.push(("status_code", code.http_status.to_string()));
                self.gauge(
                    "akamai_estats_status_code_share_percent",
                    "Share of an HTTP status code in the latest sample's hits, in percent (codes present in the sample only).",
                    &l,
                    code.percentage,
                );
                self.gauge(
                    "akamai_estats_status_code_hits",
                    "Hits of an HTTP status code in the latest sample (codes present in the sample only).",
                    &l,
                    code.hits as f64,
                );
            }
        }
    }
}

fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Registers `metric` under `help` as written here: the registry ends every help text with a
/// full stop of its own.
fn register(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    metric: impl prometheus_client::registry::Metric,
) {
    registry.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// The whole exposition: process-wide counters, then the gauges of each data source (by uid).
pub fn render(data_sources: &[DataSourceGauges]) -> String {
    let mut registry = Registry::default();
    let r = recorded();
    register(
        &mut registry,
        "akamai_estats_upstream_calls",
        "Upstream eStats calls by data source, target, endpoint and result (ok, execution_failed, or the error kind).",
        r.upstream_calls.clone(),
    );
    register(
        &mut registry,
        "akamai_estats_upstream_latency_seconds",
        "Latency of upstream eStats calls, retries counted one by one.",
        r.upstream_latency.clone(),
    );
    register(
        &mut registry,
        "akamai_estats_queries",
        "Queries answered by data source, query type and outcome.",
        r.queries.clone(),
    );
    let mut gauges = Gauges::default();
    let mut sorted: Vec<&DataSourceGauges> = data_sources.iter().collect();
    sorted.sort_by(|a, b| a.uid.cmp(&b.uid));
    for ds in sorted {
        gauges.data_source(ds);
    }
    for f in gauges.families {
        register(&mut registry, f.name, f.help, f.series);
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode_registry(&mut text, &registry);
    prometheus_text(&text)
}

/// Grafana reads a plugin's metrics in the Prometheus text format (0.0.4); prometheus-client
/// writes OpenMetrics, whose HELP and TYPE lines name a counter family without its `_total`
/// suffix (`encode_registry` leaves out the `# EOF` terminator already). Everything else (sample
/// lines, escaping, histogram series) reads the same in both.
fn prometheus_text(open_metrics: &str) -> String {
    let lines: Vec<&str> = open_metrics.lines().collect();
    let mut out = String::with_capacity(open_metrics.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        let counter_of = |l: &str| {
            l.strip_prefix("# TYPE ")
                .and_then(|rest| rest.strip_suffix(" counter"))
                .map(str::to_string)
        };
        let renamed = if let Some(name) = counter_of(line) {
            format!("# TYPE {name}_total counter")
        } else if let Some(name) = lines
            .get(i + 1)
            .and_then(|next| counter_of(next))
            .filter(|name| line.starts_with(&format!("# HELP {name} ")))
        {
            format!(
                "# HELP {name}_total{}",
                &line["# HELP ".len() + name.len()..]
            )
        } else {
            line.to_string()
        };
        out.push_str(&renamed);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::estats::model::StatusCodeCount;
    use crate::sample::SideStats;

    #[test]
    fn label_values_are_escaped() {
        let mut odd = ds(None);
        odd.targets[0].key = "url:https://x/\"a\"\\b\n/ANY".into();
        let text = render(&[odd]);
        assert!(
            text.contains(r#"target="url:https://x/\"a\"\\b\n/ANY""#),
            "{text}"
        );
    }

    #[test]
    fn counters_are_named_with_total_in_help_and_type() {
        record_query("metrics-test", "summary", "ok");
        let text = render(&[]);
        assert!(text.contains(
            "# HELP akamai_estats_queries_total Queries answered by data source, query type and outcome.\n"
        ));
        assert!(text.contains("# TYPE akamai_estats_queries_total counter\n"));
        assert!(text.contains(
            r#"akamai_estats_queries_total{datasource="metrics-test",query_type="summary",outcome="ok"} "#
        ));
        assert!(!text.contains("# EOF"));
        assert_eq!(
            prometheus_text("# HELP a_b x y\n# TYPE a_b counter\na_b_total 1\n# HELP c d\n# TYPE c gauge\nc 2.0\n"),
            "# HELP a_b_total x y\n# TYPE a_b_total counter\na_b_total 1\n# HELP c d\n# TYPE c gauge\nc 2.0\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        record_upstream_call(
            "metrics-test",
            "cp:1/ANY",
            "estats",
            "ok",
            Duration::from_millis(300),
        );
        let text = render(&[]);
        for (le, n) in [("0.25", 0), ("0.5", 1), ("+Inf", 1)] {
            let line = format!(
                r#"akamai_estats_upstream_latency_seconds_bucket{{le="{le}",datasource="metrics-test",target="cp:1/ANY",endpoint="estats"}} {n}"#
            );
            assert!(text.contains(&line), "{line} missing in {text}");
        }
    }

    fn code(status: u16, hits: u64, percentage: f64) -> StatusCodeCount {
        serde_json::from_value(serde_json::json!({
            "httpStatus": status, "hits": hits, "percentage": percentage
        }))
        .unwrap()
    }

    fn sample() -> Sample {
        Sample {
            sampled_at: Utc::now(),
            edge: SideStats {
                hits: Some(1000),
                errors: Some(30),
                failure_percentage: Some(3.0),
                codes: vec![code(200, 900, 90.0), code(404, 70, 7.0), code(503, 30, 3.0)],
            },
            origin: SideStats {
                hits: Some(100),
                errors: Some(0),
                failure_percentage: Some(0.0),
                codes: vec![code(200, 100, 100.0)],
            },
            top_ips: Vec::new(),
        }
    }

    fn ds(latest: Option<Cached>) -> DataSourceGauges {
        DataSourceGauges {
            uid: "unit-ds".into(),
            poll_interval: Duration::from_secs(60),
            budget: BudgetState {
                limit_per_minute: 40,
                tokens_left: 39,
                calls_last_minute: 1,
                paused_until: None,
                pause_reason: None,
                min_gap_ms: 0,
                upstream_remaining: None,
            },
            history_bytes: None,
            shared: None,
            targets: vec![TargetGauges {
                key: "cp:1/ANY".into(),
                polling: true,
                last_success: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
                last_error_at: None,
                samples: 3,
                latest,
            }],
        }
    }

    fn cached(age_s: u64, failing: bool) -> Option<Cached> {
        Some(Cached {
            sample: Arc::new(sample()),
            age: Duration::from_secs(age_s),
            failing,
        })
    }

    fn lines_of(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_class_has_a_gauge_and_absent_classes_are_zero() {
        let text = render(&[ds(cached(10, false))]);
        let shares = lines_of(&text, "akamai_estats_status_share_percent");
        assert_eq!(shares.len(), 10, "{text}");
        let base = r#"datasource="unit-ds",target="cp:1/ANY""#;
        for (side, class, v) in [
            ("edge", "2xx", "90.0"),
            ("edge", "4xx", "7.0"),
            ("edge", "5xx", "3.0"),
            ("edge", "1xx", "0.0"),
            ("origin", "5xx", "0.0"),
            ("origin", "2xx", "100.0"),
        ] {
            let line = format!(
                r#"akamai_estats_status_share_percent{{{base},side="{side}",status_class="{class}"}} {v}"#
            );
            assert!(shares.contains(&line), "{line} missing in {shares:#?}");
        }
        assert!(text.contains(&format!(
            r#"akamai_estats_status_code_hits{{{base},side="edge",status_code="503"}} 30.0"#
        )));
        assert!(text.contains(&format!(
            r#"akamai_estats_last_success_timestamp_seconds{{{base}}} 1700000000.0"#
        )));
        assert!(text.contains(r#"akamai_estats_budget_tokens_left{datasource="unit-ds"} 39.0"#));
        assert!(!text.contains("akamai_estats_history_size_bytes"));
    }

    #[test]
    fn stale_or_failed_samples_leave_a_gap_never_a_zero() {
        for latest in [cached(121, false), cached(5, true), None] {
            let text = render(&[ds(latest)]);
            for family in [
                "akamai_estats_status_share_percent",
                "akamai_estats_status_hits",
                "akamai_estats_status_code_share_percent",
                "akamai_estats_side_hits",
            ] {
                assert!(lines_of(&text, family).is_empty(), "{family} in {text}");
            }
            assert!(text.contains(
                r#"akamai_estats_latest_sample_fresh{datasource="unit-ds",target="cp:1/ANY"} 0.0"#
            ));
            // The poller's own gauges stay.
            assert!(text.contains(
                r#"akamai_estats_samples_held{datasource="unit-ds",target="cp:1/ANY"} 3.0"#
            ));
        }
    }

    #[test]
    fn each_family_is_written_once_with_its_lines_together() {
        let mut two = ds(cached(1, false));
        two.uid = "unit-ds-2".into();
        let text = render(&[ds(cached(1, false)), two]);
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "{name} declared twice");
                current = name;
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(&current),
                    "{line} outside its family {current}"
                );
            }
        }
    }

    #[test]
    fn query_outcomes() {
        assert_eq!(query_outcome(200), "ok");
        assert_eq!(query_outcome(400), "bad_query");
        assert_eq!(query_outcome(403), "auth");
        assert_eq!(query_outcome(429), "rate_limited");
        assert_eq!(query_outcome(502), "upstream_error");
        assert_eq!(query_outcome(504), "timeout");
        assert_eq!(query_outcome(500), "internal_error");
    }
}
