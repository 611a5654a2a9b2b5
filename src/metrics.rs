//! The plugin's own metrics in Prometheus text format, served through
//! `Diagnostics.CollectMetrics` (Grafana exposes them at `/metrics/plugins/<plugin id>`).
//!
//! Counters and histograms live here, process-wide; gauges (budget, pollers, history size, the
//! latest status distribution) are read from the data source instances when Grafana collects, so
//! a scrape never calls upstream and never touches the history database.
//!
//! Every series carries `datasource` (the data source uid) and, where it is about one target,
//! `target` (the target key such as `cp:1209788/STANDARD_TLS`). Nothing secret is ever a label or
//! a value here: keys, uids, status codes and counts only. See `docs/metrics.md`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

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

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct State {
    upstream_calls: BTreeMap<Labels, u64>,
    upstream_latency: BTreeMap<Labels, Histogram>,
    queries: BTreeMap<Labels, u64>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Mutex::default)
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    state().lock().unwrap_or_else(|p| p.into_inner())
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
    let mut s = lock();
    *s.upstream_calls
        .entry(vec![
            ("datasource", datasource.to_string()),
            ("target", target.to_string()),
            ("endpoint", endpoint.to_string()),
            ("result", result.to_string()),
        ])
        .or_default() += 1;
    let h = s
        .upstream_latency
        .entry(vec![
            ("datasource", datasource.to_string()),
            ("target", target.to_string()),
            ("endpoint", endpoint.to_string()),
        ])
        .or_default();
    let secs = latency.as_secs_f64();
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        if secs <= *bound {
            h.counts[i] += 1;
        }
    }
    h.sum += secs;
    h.count += 1;
}

/// One panel or alert query was answered with `outcome` (see [`query_outcome`]).
pub fn record_query(datasource: &str, query_type: &str, outcome: &str) {
    *lock()
        .queries
        .entry(vec![
            ("datasource", datasource.to_string()),
            ("query_type", query_type.to_string()),
            ("outcome", outcome.to_string()),
        ])
        .or_default() += 1;
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

/// Escapes a label value per the Prometheus text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &[(&str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    lines: Vec<String>,
}

/// Builds the exposition text. The text format wants every line of a family together, under
/// one HELP and TYPE, while gauges are produced data source by data source: lines are grouped
/// per family and written out at [`Exposition::finish`].
#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn family(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
    ) -> &mut Family {
        let idx = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    kind,
                    help,
                    lines: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[idx]
    }

    fn line(
        &mut self,
        family: (&'static str, &'static str, &'static str),
        suffix: &str,
        labels: &[(&str, String)],
        value: f64,
    ) {
        let f = self.family(family.0, family.1, family.2);
        let line = format!(
            "{}{suffix}{} {}",
            f.name,
            label_text(labels),
            format_value(value)
        );
        f.lines.push(line);
    }

    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, String)],
        value: f64,
    ) {
        self.line((name, "gauge", help), "", labels, value);
    }

    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, String)],
        value: f64,
    ) {
        self.line((name, "counter", help), "", labels, value);
    }

    /// Adds the process-wide counters and histograms.
    pub fn counters(&mut self) {
        let s = lock();
        for (labels, v) in &s.upstream_calls {
            self.counter(
                "akamai_estats_upstream_calls_total",
                "Upstream eStats calls by data source, target, endpoint and result (ok, execution_failed, or the error kind).",
                labels,
                *v as f64,
            );
        }
        const LATENCY: (&str, &str, &str) = (
            "akamai_estats_upstream_latency_seconds",
            "histogram",
            "Latency of upstream eStats calls, retries counted one by one.",
        );
        for (labels, h) in &s.upstream_latency {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let mut l = labels.clone();
                l.push(("le", format_value(*bound)));
                self.line(LATENCY, "_bucket", &l, h.counts[i] as f64);
            }
            let mut l = labels.clone();
            l.push(("le", "+Inf".to_string()));
            self.line(LATENCY, "_bucket", &l, h.count as f64);
            self.line(LATENCY, "_sum", labels, h.sum);
            self.line(LATENCY, "_count", labels, h.count as f64);
        }
        for (labels, v) in &s.queries {
            self.counter(
                "akamai_estats_queries_total",
                "Queries answered by data source, query type and outcome.",
                labels,
                *v as f64,
            );
        }
    }

    /// Adds the gauges of one data source instance.
    pub fn data_source(&mut self, ds: &DataSourceGauges) {
        let uid = || ("datasource", ds.uid.clone());
        self.gauge(
            "akamai_estats_budget_tokens_left",
            "Upstream calls the data source's rate-limit budget allows right now (0 while paused after a 429).",
            &[uid()],
            f64::from(ds.budget.tokens_left),
        );
        self.gauge(
            "akamai_estats_budget_limit_per_minute",
            "The data source's rateLimitPerMinute.",
            &[uid()],
            f64::from(ds.budget.limit_per_minute),
        );
        self.gauge(
            "akamai_estats_budget_calls_last_minute",
            "Upstream calls started in the last 60 s.",
            &[uid()],
            f64::from(ds.budget.calls_last_minute),
        );
        self.gauge(
            "akamai_estats_poll_interval_seconds",
            "The data source's pollIntervalSeconds.",
            &[uid()],
            ds.poll_interval.as_secs_f64(),
        );
        if let Some(bytes) = ds.history_bytes {
            self.gauge(
                "akamai_estats_history_size_bytes",
                "Size of the history database file and its write-ahead log (absent for in-memory history).",
                &[uid()],
                bytes as f64,
            );
        }
        for t in &ds.targets {
            self.target(ds, t);
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

    pub fn finish(self) -> String {
        let mut text = String::new();
        for f in self.families.into_iter().filter(|f| !f.lines.is_empty()) {
            let _ = writeln!(text, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(text, "# TYPE {} {}", f.name, f.kind);
            for line in f.lines {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    }
}

fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// The whole exposition: process-wide counters, then the gauges of each data source (by uid).
pub fn render(data_sources: &[DataSourceGauges]) -> String {
    let mut e = Exposition::default();
    e.counters();
    let mut sorted: Vec<&DataSourceGauges> = data_sources.iter().collect();
    sorted.sort_by(|a, b| a.uid.cmp(&b.uid));
    for ds in sorted {
        e.data_source(ds);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::estats::model::StatusCodeCount;
    use crate::sample::SideStats;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_text(&[("target", "url:https://x/\"a\"\\b/ANY".into())]),
            r#"{target="url:https://x/\"a\"\\b/ANY"}"#
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
                r#"akamai_estats_upstream_latency_seconds_bucket{{datasource="metrics-test",target="cp:1/ANY",endpoint="estats",le="{le}"}} {n}"#
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
            ("edge", "2xx", "90"),
            ("edge", "4xx", "7"),
            ("edge", "5xx", "3"),
            ("edge", "1xx", "0"),
            ("origin", "5xx", "0"),
            ("origin", "2xx", "100"),
        ] {
            let line = format!(
                r#"akamai_estats_status_share_percent{{{base},side="{side}",status_class="{class}"}} {v}"#
            );
            assert!(shares.contains(&line), "{line} missing in {shares:#?}");
        }
        assert!(text.contains(&format!(
            r#"akamai_estats_status_code_hits{{{base},side="edge",status_code="503"}} 30"#
        )));
        assert!(text.contains(&format!(
            r#"akamai_estats_last_success_timestamp_seconds{{{base}}} 1700000000"#
        )));
        assert!(text.contains(r#"akamai_estats_budget_tokens_left{datasource="unit-ds"} 39"#));
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
                r#"akamai_estats_latest_sample_fresh{datasource="unit-ds",target="cp:1/ANY"} 0"#
            ));
            // The poller's own gauges stay.
            assert!(text.contains(
                r#"akamai_estats_samples_held{datasource="unit-ds",target="cp:1/ANY"} 3"#
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
