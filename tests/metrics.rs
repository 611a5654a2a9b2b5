//! `Diagnostics.CollectMetrics` of the real executable against the simulator: the text parses
//! (with `prometheus-parse`, and with a strict line checker, because that parser skips lines it
//! does not understand), the values agree with the frames of the same sample, faults show up as
//! their result kind, and no credential appears anywhere.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use common::{frames, simulator, Plugin};
use estats::simulator::{Fault, Simulator};
use grafana_plugin_sdk::pluginv2::{CollectMetricsRequest, PluginContext};
use prometheus_parse::{Scrape, Value as PromValue};
use serde_json::{json, Value};

/// The suite's data source, polling slowly enough that no poll replaces the sample a query
/// fetched while a test runs.
fn ds(uid: &str, sim: &Simulator, extra: Value) -> PluginContext {
    let mut settings = json!({"pollIntervalSeconds": 60});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    common::ds(uid, sim, settings)
}

async fn collect(plugin: &Plugin, ctx: &PluginContext) -> String {
    let r = plugin
        .diagnostics()
        .collect_metrics(CollectMetricsRequest {
            plugin_context: Some(ctx.clone()),
        })
        .await
        .expect("CollectMetrics answers")
        .into_inner();
    String::from_utf8(r.metrics.expect("a payload").prometheus).expect("UTF-8 text")
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("prometheus-parse reads it")
}

/// The scalar value of the one sample of `name` whose labels include `want`.
fn value(scrape: &Scrape, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| match s.value {
            PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => Some(v),
            _ => None,
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {want:?} matches {} samples",
        matching.len()
    );
    matching.first().copied()
}

fn count(scrape: &Scrape, name: &str, want: &[(&str, &str)]) -> usize {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .count()
}

/// A strict reading of the text format: what `prometheus-parse` would silently skip fails here.
fn check_text_format(text: &str) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    assert!(text.ends_with('\n'), "the text ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name_ok(name) && !help.trim().is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(
                kinds.insert(name.to_string(), kind.to_string()).is_none(),
                "family declared twice: {line}"
            );
            current = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        // name{labels} value
        let (series_text, value_text) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series_text.split_once('{') {
            None => (series_text, String::new()),
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("labels close").to_string()),
        };
        assert!(name_ok(name), "{line}");
        let mut label_map = BTreeMap::new();
        let mut chars = labels.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert!(
                name_ok(&key) && !key.contains(':'),
                "label name {key:?} in {line}"
            );
            assert_eq!(chars.next(), Some('"'), "quoted label value in {line}");
            let mut v = String::new();
            loop {
                match chars.next().expect("label value closes") {
                    '\\' => match chars.next() {
                        Some('\\') => v.push('\\'),
                        Some('"') => v.push('"'),
                        Some('n') => v.push('\n'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    '"' => break,
                    '\n' => panic!("raw newline in {line}"),
                    c => v.push(c),
                }
            }
            assert!(
                label_map.insert(key.clone(), v).is_none(),
                "label {key} twice in {line}"
            );
            match chars.next() {
                None => break,
                Some(',') => {}
                Some(c) => panic!("unexpected {c:?} after a label in {line}"),
            }
        }
        let (family, kind) = current.clone().expect("a sample after its TYPE");
        let belongs = if kind == "histogram" {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name == format!("{family}{s}"))
        } else {
            name == family
        };
        assert!(belongs, "{name} outside its family {family}: {line}");
        assert!(
            series.insert(series_text.to_string()),
            "series twice: {line}"
        );
        if kind == "histogram" {
            let le = label_map.remove("le");
            let key = format!("{name}{label_map:?}")
                .replace("_bucket", "")
                .replace("_count", "");
            match (name.ends_with("_bucket"), le) {
                (true, Some(le)) => {
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().expect("le is a number")
                    };
                    buckets.entry(key).or_default().push((bound, value));
                }
                (true, None) => panic!("bucket without le: {line}"),
                _ if name.ends_with("_count") => {
                    counts.insert(key, value);
                }
                _ => {}
            }
        }
    }
    for (key, b) in &buckets {
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{key}: {b:?}"
        );
        let last = b.last().unwrap();
        assert!(last.0.is_infinite(), "{key} ends with +Inf");
        assert_eq!(
            Some(&last.1),
            counts.get(key),
            "{key}: +Inf bucket equals _count"
        );
    }
}

fn assert_no_secret(text: &str) {
    common::assert_no_secret(text);
    for word in ["client_token", "access_token"] {
        assert!(!text.contains(word), "{word:?} appears in the metrics");
    }
}

#[tokio::test]
async fn metrics_match_the_frames_and_count_faults() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let plugin = Plugin::start().await;
    let ctx = ds(
        "metrics-ds",
        &sim,
        json!({"historyPath": db.to_str().unwrap()}),
    );

    // Collecting builds no data source: before the first query there is nothing to show, and
    // a family without samples is left out rather than declared empty.
    assert_eq!(collect(&plugin, &ctx).await, "");

    // One target, queried once: the distribution by class and the gauges come from one sample.
    let by_class = json!({"cpCode": "1209788", "groupBy": "class", "side": "both"});
    let r = plugin.query_one(&ctx, by_class.clone()).await;
    let f = &frames(&r)[0];
    let sampled_at = f.meta()["custom"]["sampledAt"]
        .as_str()
        .unwrap()
        .to_string();
    let sides = f.strings("side");
    let statuses = f.strings("status");
    let hits = f.ints("hits");
    let shares = f.floats("percentage");
    let summary = plugin
        .query_one(&ctx, json!({"cpCode": "1209788", "queryType": "summary"}))
        .await;
    let summary = &frames(&summary)[0];

    // A second target fails with a 503 (every retry), and its query with it.
    sim.faults().set(Fault::Status(503), None);
    let failed = plugin.query_one(&ctx, json!({"cpCode": "7654321"})).await;
    sim.faults().clear();
    assert_eq!(failed.status, 502, "{}", failed.error);
    // A bad query is counted as such.
    let bad = plugin
        .query_one(&ctx, json!({"cpCode": "12x", "queryType": "summary"}))
        .await;
    assert_eq!(bad.status, 400);

    let text = collect(&plugin, &ctx).await;
    if std::env::var_os("SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    check_text_format(&text);
    assert_no_secret(&text);
    let scrape = parse(&text);
    let ok_target = [("datasource", "metrics-ds"), ("target", "cp:1209788/ANY")];
    let bad_target = [("datasource", "metrics-ds"), ("target", "cp:7654321/ANY")];

    // Upstream calls by result, and their latency.
    let ok_calls = value(
        &scrape,
        "akamai_estats_upstream_calls_total",
        &[ok_target[0], ok_target[1], ("result", "ok")],
    )
    .expect("ok calls counted");
    assert!(ok_calls >= 1.0, "{text}");
    let server_errors = value(
        &scrape,
        "akamai_estats_upstream_calls_total",
        &[bad_target[0], bad_target[1], ("result", "server_error")],
    )
    .expect("503s counted as server_error");
    assert!(server_errors >= 1.0);
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "akamai_estats_upstream_latency_seconds"
                && s.labels.get("target") == Some("cp:1209788/ANY")
        })
        .expect("latency histogram of the target");
    match &histogram.value {
        PromValue::Histogram(b) => {
            assert_eq!(b.len(), 11);
            assert!(b.last().unwrap().count >= ok_calls);
        }
        other => panic!("not a histogram: {other:?}"),
    }

    // Queries by type and outcome.
    let q = |t: &str, o: &str| {
        value(
            &scrape,
            "akamai_estats_queries_total",
            &[
                ("datasource", "metrics-ds"),
                ("query_type", t),
                ("outcome", o),
            ],
        )
    };
    assert_eq!(q("distribution", "ok"), Some(1.0), "{text}");
    assert_eq!(q("summary", "ok"), Some(1.0));
    assert_eq!(q("distribution", "upstream_error"), Some(1.0));
    assert_eq!(q("summary", "bad_query"), Some(1.0));

    // Budget, history, poller state.
    let tokens = value(
        &scrape,
        "akamai_estats_budget_tokens_left",
        &[("datasource", "metrics-ds")],
    )
    .expect("budget gauge");
    assert!(
        (0.0..=600.0).contains(&tokens) && tokens < 600.0,
        "{tokens}"
    );
    let size = value(
        &scrape,
        "akamai_estats_history_size_bytes",
        &[("datasource", "metrics-ds")],
    )
    .expect("history size of a file-backed history");
    assert!(size >= std::fs::metadata(&db).unwrap().len() as f64 && size > 0.0);
    assert!(value(&scrape, "akamai_estats_samples_held", &ok_target).unwrap() >= 1.0);
    let last_success = value(
        &scrape,
        "akamai_estats_last_success_timestamp_seconds",
        &ok_target,
    )
    .unwrap();
    let sampled = chrono::DateTime::parse_from_rfc3339(&sampled_at).unwrap();
    assert_eq!(last_success, sampled.timestamp_millis() as f64 / 1000.0);
    assert!(value(
        &scrape,
        "akamai_estats_last_error_timestamp_seconds",
        &bad_target
    )
    .is_some());
    assert_eq!(
        value(&scrape, "akamai_estats_latest_sample_fresh", &ok_target),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "akamai_estats_latest_sample_fresh", &bad_target),
        Some(0.0)
    );

    // The distribution gauges equal the distribution frame of the same sample, every class
    // present (0 when the sample has none).
    for side in ["edge", "origin"] {
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let row = (0..sides.len()).find(|&i| {
                sides[i].as_deref() == Some(side) && statuses[i].as_deref() == Some(class)
            });
            let (want_share, want_hits) = match row {
                Some(i) => (shares[i].unwrap(), hits[i].unwrap() as f64),
                None => (0.0, 0.0),
            };
            let labels = [
                ok_target[0],
                ok_target[1],
                ("side", side),
                ("status_class", class),
            ];
            assert_eq!(
                value(&scrape, "akamai_estats_status_share_percent", &labels),
                Some(want_share),
                "{side} {class}"
            );
            assert_eq!(
                value(&scrape, "akamai_estats_status_hits", &labels),
                Some(want_hits),
                "{side} {class}"
            );
        }
        let labels = [ok_target[0], ok_target[1], ("side", side)];
        let i = summary
            .strings("side")
            .iter()
            .position(|s| s.as_deref() == Some(side))
            .unwrap();
        assert_eq!(
            value(&scrape, "akamai_estats_side_hits", &labels),
            summary.ints("hits")[i].map(|h| h as f64)
        );
        assert_eq!(
            value(&scrape, "akamai_estats_side_failure_percent", &labels),
            summary.floats("failurePercentage")[i]
        );
        assert!(count(&scrape, "akamai_estats_status_code_share_percent", &labels) >= 1);
    }
    // The 200s of the edge as a code gauge.
    assert!(
        value(
            &scrape,
            "akamai_estats_status_code_hits",
            &[
                ok_target[0],
                ok_target[1],
                ("side", "edge"),
                ("status_code", "200")
            ],
        )
        .unwrap()
            > 0.0
    );
    // The failed target has no sample: no distribution gauge at all, never a zero.
    for family in [
        "akamai_estats_status_share_percent",
        "akamai_estats_status_hits",
        "akamai_estats_side_hits",
    ] {
        assert_eq!(count(&scrape, family, &bad_target), 0, "{family}");
    }

    // Every series names its data source; help texts exist for every family.
    for s in &scrape.samples {
        assert_eq!(s.labels.get("datasource"), Some("metrics-ds"), "{s:?}");
        assert!(s.metric.starts_with("akamai_estats_"), "{}", s.metric);
    }
    assert!(scrape.docs.len() >= 15, "{:?}", scrape.docs.keys());
}

#[tokio::test]
async fn a_data_source_with_bad_credentials_exposes_auth_results_and_no_secret() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let mut ctx = ds("metrics-401", &sim, json!({}));
    // A wrong secret: the simulator's gateway answers 401.
    ctx.data_source_instance_settings
        .as_mut()
        .unwrap()
        .decrypted_secure_json_data
        .insert(
            "clientSecret".into(),
            "V1JPTkctU0VDUkVULVdST05HU0VDUkVUMDAwMA==".into(),
        );
    let r = plugin
        .query_one(&ctx, json!({"cpCode": "1209788", "queryType": "summary"}))
        .await;
    assert_eq!(r.status, 401, "{}", r.error);
    let text = collect(&plugin, &ctx).await;
    check_text_format(&text);
    assert_no_secret(&text);
    assert!(!text.contains("V1JPTkctU0VDUkVULVdST05HU0VDUkVUMDAwMA=="));
    let scrape = parse(&text);
    let labels = [
        ("datasource", "metrics-401"),
        ("target", "cp:1209788/ANY"),
        ("result", "auth"),
    ];
    assert!(value(&scrape, "akamai_estats_upstream_calls_total", &labels).unwrap() >= 1.0);
    assert_eq!(
        value(
            &scrape,
            "akamai_estats_queries_total",
            &[
                ("datasource", "metrics-401"),
                ("query_type", "summary"),
                ("outcome", "auth")
            ]
        ),
        Some(1.0)
    );
    // Without a history file there is no size gauge; without a sample no distribution.
    assert_eq!(count(&scrape, "akamai_estats_history_size_bytes", &[]), 0);
    assert_eq!(count(&scrape, "akamai_estats_status_share_percent", &[]), 0);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
