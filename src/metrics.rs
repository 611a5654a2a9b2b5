//! The plugin's own metrics in Prometheus text format, served through
//! `Diagnostics.CollectMetrics` (Grafana exposes them at `/metrics/plugins/<plugin id>`).
//!
//! Counters and histograms live here, process-wide; gauges (budget, pollers, the latest status
//! distribution) are read from the data source instances when Grafana collects.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the upstream latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

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
    samples_stored: BTreeMap<Labels, u64>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Mutex::default)
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    state().lock().unwrap_or_else(|p| p.into_inner())
}

/// One upstream call ended with `result` (`ok` or an [`crate::estats::ErrorKind`] label).
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
            ("result", result.to_string()),
        ])
        .or_default() += 1;
    let h = s
        .upstream_latency
        .entry(vec![
            ("datasource", datasource.to_string()),
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

/// One panel or alert query was answered with `outcome` (`ok` or the HTTP status class).
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

pub fn record_sample_stored(datasource: &str, target: &str) {
    *lock()
        .samples_stored
        .entry(vec![
            ("datasource", datasource.to_string()),
            ("target", target.to_string()),
        ])
        .or_default() += 1;
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

/// Builds the exposition text: `family` adds HELP/TYPE once, `sample` adds one line.
#[derive(Default)]
pub struct Exposition {
    text: String,
    families: std::collections::HashSet<&'static str>,
}

impl Exposition {
    pub fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        if self.families.insert(name) {
            let _ = writeln!(self.text, "# HELP {name} {help}");
            let _ = writeln!(self.text, "# TYPE {name} {kind}");
        }
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        let _ = writeln!(
            self.text,
            "{name}{} {}",
            label_text(labels),
            format_value(value)
        );
    }

    /// Adds the process-wide counters and histograms.
    pub fn counters(&mut self) {
        let s = lock();
        self.family(
            "akamai_estats_upstream_calls_total",
            "counter",
            "Upstream eStats calls by data source, target and result.",
        );
        for (labels, v) in &s.upstream_calls {
            self.sample("akamai_estats_upstream_calls_total", labels, *v as f64);
        }
        self.family(
            "akamai_estats_upstream_latency_seconds",
            "histogram",
            "Latency of upstream eStats calls.",
        );
        for (labels, h) in &s.upstream_latency {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let mut l = labels.clone();
                l.push(("le", format_value(*bound)));
                self.sample(
                    "akamai_estats_upstream_latency_seconds_bucket",
                    &l,
                    h.counts[i] as f64,
                );
            }
            let mut l = labels.clone();
            l.push(("le", "+Inf".to_string()));
            self.sample(
                "akamai_estats_upstream_latency_seconds_bucket",
                &l,
                h.count as f64,
            );
            self.sample("akamai_estats_upstream_latency_seconds_sum", labels, h.sum);
            self.sample(
                "akamai_estats_upstream_latency_seconds_count",
                labels,
                h.count as f64,
            );
        }
        self.family(
            "akamai_estats_queries_total",
            "counter",
            "Queries answered by data source, query type and outcome.",
        );
        for (labels, v) in &s.queries {
            self.sample("akamai_estats_queries_total", labels, *v as f64);
        }
        self.family(
            "akamai_estats_samples_stored_total",
            "counter",
            "Samples written to history by data source and target.",
        );
        for (labels, v) in &s.samples_stored {
            self.sample("akamai_estats_samples_stored_total", labels, *v as f64);
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut e = Exposition::default();
        e.counters();
        let text = e.finish();
        assert!(text.contains(r#"akamai_estats_upstream_latency_seconds_bucket{datasource="metrics-test",endpoint="estats",le="0.25"} 0"#), "{text}");
        assert!(text.contains(r#"akamai_estats_upstream_latency_seconds_bucket{datasource="metrics-test",endpoint="estats",le="0.5"} 1"#), "{text}");
        assert!(text.contains(r#"akamai_estats_upstream_latency_seconds_bucket{datasource="metrics-test",endpoint="estats",le="+Inf"} 1"#), "{text}");
    }
}
