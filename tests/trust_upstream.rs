//! Trusting the upstream only as far as it deserves, through the executable as Grafana calls it:
//! answers that are not measurements fail their query (and only theirs) and are gaps in history,
//! credentials never follow a redirect to another origin, and the call budget holds on the
//! receiver's clock.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    data_query, data_query_range, ds, frames, simulator, Plugin, ACCESS_TOKEN, CLIENT_TOKEN,
};
use estats::simulator::{BadAnswer, Fault, Simulator};
use grafana_plugin_sdk::pluginv2::{CollectMetricsRequest, PluginContext, QueryDataRequest};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// A data source that polls too slowly for any poll to run during a test: only queries call.
fn quiet_ds(uid: &str, sim: &Simulator) -> PluginContext {
    ds(uid, sim, json!({"pollIntervalSeconds": 600}))
}

/// Sets a fault through the simulator's HTTP control API, as a demo script would.
async fn set_fault_over_http(sim: &Simulator, fault: Value) {
    let url = sim.base_url().join("/_simulator/faults").unwrap();
    let r = reqwest::Client::new()
        .post(url)
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{fault}: {}",
        r.text().await.unwrap()
    );
}

async fn metrics(plugin: &Plugin, ctx: &PluginContext) -> String {
    let r = plugin
        .diagnostics()
        .collect_metrics(CollectMetricsRequest {
            plugin_context: Some(ctx.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8(r.metrics.unwrap().prometheus).unwrap()
}

/// The value of the upstream call counter for one target and result.
fn calls_with_result(text: &str, target: &str, result: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("akamai_estats_upstream_calls_total{"))
        .filter(|l| {
            l.contains(&format!("target=\"{target}\""))
                && l.contains(&format!("result=\"{result}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn success_without_distributions_fails_its_ref_id_and_only_it() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = quiet_ds("trust-arrays", &sim);
    // B's sample is fetched first and stays fresh for the whole test.
    let first = plugin.query_one(&ctx, json!({"cpCode": 1209788})).await;
    assert_eq!(first.status, 200, "{}", first.error);

    sim.faults()
        .set(Fault::BadAnswer(BadAnswer::MissingDistributions), None);
    let mut answers = plugin
        .query(
            &ctx,
            vec![
                data_query("A", json!({"cpCode": 3141592})),
                data_query("B", json!({"cpCode": 1209788})),
            ],
        )
        .await;
    let a = answers.remove("A").unwrap();
    assert_eq!(a.status, 502, "{}", a.error);
    assert!(a.frames.is_empty());
    assert!(
        a.error
            .contains("eStats answered SUCCESS without edgeStatusCodeDistribution"),
        "{}",
        a.error
    );
    let b = answers.remove("B").unwrap();
    assert!(frames(&b)[0].rows() > 0, "the other refId still answers");
    sim.faults().clear();

    // Counted as such in the plugin's metrics.
    let text = metrics(&plugin, &ctx).await;
    assert!(
        calls_with_result(&text, "cp:3141592/ANY", "invalid_response") >= 1.0,
        "{text}"
    );
    assert_eq!(calls_with_result(&text, "cp:3141592/ANY", "ok"), 0.0);
}

#[tokio::test]
async fn every_kind_of_bad_answer_is_a_502_that_says_what_was_wrong() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = quiet_ds("trust-kinds", &sim);
    for (i, bad) in BadAnswer::ALL.into_iter().enumerate() {
        let words = match bad {
            BadAnswer::MissingDistributions => "without edgeStatusCodeDistribution",
            BadAnswer::RowWithoutHits => "hits is missing",
            BadAnswer::NullHits => "hits is null",
            BadAnswer::RowWithoutPercentage => "percentage is missing",
            BadAnswer::InProgress => "IN_PROGRESS",
            BadAnswer::NullStatus => "executionStatus null",
            BadAnswer::NegativeHits => "negative count",
            BadAnswer::FractionalHits => "not a whole number",
            BadAnswer::HugeHits => "larger than any count",
            BadAnswer::PercentageOutOfRange => "outside 0 to 100",
            BadAnswer::FailurePercentageHuge => "edgeFailurePercentage",
            BadAnswer::StatusOutOfRange => "not an HTTP status",
            BadAnswer::RowsExceedTotal => "more than result.edgeHits",
        };
        set_fault_over_http(
            &sim,
            json!({"fault": "badAnswer", "answer": bad.name(), "times": 1}),
        )
        .await;
        // A fresh target each time: nothing cached to fall back on.
        let cp = 2_000_000 + i as u64;
        // Every query type of that target fails alike: the failed poll is remembered for the
        // interval rather than asked again for each panel.
        for query_type in ["distribution", "summary", "topIps"] {
            let r = plugin
                .query_one(&ctx, json!({"cpCode": cp, "queryType": query_type}))
                .await;
            assert_eq!(r.status, 502, "{bad:?} {query_type}: {}", r.error);
            assert!(r.frames.is_empty(), "{bad:?}: no number is drawn");
            assert!(r.error.contains(words), "{bad:?}: {}", r.error);
            assert!(r.error.contains("never a 0"), "{}", r.error);
        }
    }
    assert_eq!(
        sim.calls(),
        BadAnswer::ALL.len() as u64,
        "a bad answer is not retried"
    );
}

#[tokio::test]
async fn an_alert_on_5xx_gets_an_error_not_a_healthy_zero() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = quiet_ds("trust-alert", &sim);
    let alert = |cp: u64| QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::from([("FromAlert".to_string(), "true".to_string())]),
        queries: vec![data_query(
            "A",
            json!({"cpCode": cp, "queryType": "distribution", "groupBy": "class",
                   "side": "edge", "statusFilter": "5xx"}),
        )],
    };
    for bad in [
        BadAnswer::MissingDistributions,
        BadAnswer::NullHits,
        BadAnswer::InProgress,
    ] {
        sim.faults().set(Fault::BadAnswer(bad), Some(1));
        let cp = 4_000_000 + bad as u64;
        let r = plugin
            .data()
            .query_data(alert(cp))
            .await
            .unwrap()
            .into_inner()
            .responses
            .remove("A")
            .unwrap();
        assert_eq!(r.status, 502, "{bad:?}: {}", r.error);
        assert!(r.frames.is_empty(), "{bad:?}: an alert must not see 0.0 %");
    }
    // The same alert on a real measurement answers a number.
    let r = plugin
        .data()
        .query_data(alert(4_100_000))
        .await
        .unwrap()
        .into_inner()
        .responses
        .remove("A")
        .unwrap();
    assert_eq!(frames(&r)[0].rows(), 1, "{}", r.error);
}

#[tokio::test]
async fn an_invalid_poll_is_a_null_in_the_time_series_never_a_zero() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let key = "cp:1209788/STANDARD_TLS";
    let ctx = ds(
        "trust-series",
        &sim,
        json!({"watch": [{"cpCode": 1209788, "delivery": "STANDARD_TLS"}], "pollIntervalSeconds": 1}),
    );
    let start = chrono::Utc::now().timestamp_millis() - 1_000;
    let r = plugin
        .query_one(&ctx, json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.error);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    // Two polls answered with rows that have no hits (a bad answer is not retried).
    sim.faults()
        .set(Fault::BadAnswer(BadAnswer::NullHits), Some(2));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sim.faults().active().is_some() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let end = chrono::Utc::now().timestamp_millis();

    let mut q = data_query_range(
        "T",
        json!({"queryType": "timeseries", "cpCode": "1209788", "delivery": "STANDARD_TLS",
               "side": "edge", "groupBy": "class", "metric": "hits"}),
        start,
        end,
    );
    q.max_data_points = 10_000;
    q.interval_ms = 1;
    let r = plugin.query(&ctx, vec![q]).await.remove("T").unwrap();
    let frame = &frames(&r)[0];
    let numeric: Vec<usize> = (1..frame.schema.fields().len()).collect();
    let rows = frame.rows();
    let gaps = (0..rows)
        .filter(|&r| numeric.iter().all(|&i| frame.floats_at(i)[r].is_none()))
        .count();
    assert!(gaps >= 1, "an invalid poll is a null row ({rows} rows)");
    let two_xx = numeric
        .iter()
        .find(|&&i| frame.schema.field(i).metadata()["labels"].contains("\"2xx\""))
        .expect("a 2xx series");
    let values = frame.floats_at(*two_xx);
    assert!(values.iter().flatten().count() >= 3, "{values:?}");
    assert!(
        values.iter().flatten().all(|v| *v > 0.0),
        "no 0 stands in for an invalid poll: {values:?}"
    );

    // The target says why.
    let (_, body) = plugin.resource(&ctx, "targets").await;
    let target = body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap()
        .clone();
    assert!(
        target["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("hits is null")),
        "{target}"
    );
    let text = metrics(&plugin, &ctx).await;
    assert!(
        calls_with_result(&text, key, "invalid_response") >= 2.0,
        "{text}"
    );
}

/// A server on another port that records what reached it.
async fn recorder(ip: [u8; 4]) -> (std::net::SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            record.lock().push(
                request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_string()),
            );
            axum::Json(json!({"executionStatus": "SUCCESS", "result": {"edgeHits": 0}}))
        }
    });
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test]
async fn a_redirect_to_another_origin_never_receives_the_credentials() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = quiet_ds("trust-redirect", &sim);
    let (other_port, seen_port) = recorder([127, 0, 0, 1]).await;
    let (other_ip, seen_ip) = recorder([127, 0, 0, 2]).await;
    let path = "/edge-diagnostics/v1/estats";
    for (i, (location, named)) in [
        (format!("http://{other_port}{path}"), other_port.to_string()),
        (
            format!("http://localhost:{}{path}", other_port.port()),
            format!("localhost:{}", other_port.port()),
        ),
        (format!("http://{other_ip}{path}"), other_ip.to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        for status in [302u64, 307, 308] {
            set_fault_over_http(
                &sim,
                json!({"fault": "redirect", "status": status, "location": location, "times": 1}),
            )
            .await;
            let cp = 5_000_000 + i as u64 * 10 + status % 10;
            let r = plugin.query_one(&ctx, json!({"cpCode": cp})).await;
            assert_eq!(r.status, 502, "{location}: {}", r.error);
            assert!(r.error.contains("redirect refused"), "{}", r.error);
            assert!(r.error.contains(&named), "names {named}: {}", r.error);
        }
    }
    // The health check follows the same rule.
    sim.faults().set(
        Fault::Redirect {
            status: 307,
            location: format!("http://{other_port}/edge-diagnostics/v1/edge-locations"),
        },
        Some(1),
    );
    let (health, _) = plugin.health(&ctx).await;
    assert!(
        health.message.contains("redirect refused"),
        "{}",
        health.message
    );

    assert!(seen_port.lock().is_empty(), "{:?}", seen_port.lock());
    assert!(seen_ip.lock().is_empty(), "{:?}", seen_ip.lock());
    let logs = plugin.logs();
    for secret in [CLIENT_TOKEN, ACCESS_TOKEN] {
        assert!(!logs.contains(secret));
    }
}

/// Akamai counts calls when they reach it. One call of a budget of one per minute reaches the
/// gateway 3 s after it was sent; the next call must still arrive 60 s after it, by the
/// receiver's clock. (A budget counted from the send would send the next call at 60 s, which
/// arrives 57 s after the first.)
#[tokio::test]
async fn the_budget_holds_in_every_60_s_window_of_the_receiver() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds(
        "trust-budget",
        &sim,
        json!({
            "rateLimitPerMinute": 1,
            "requestTimeoutSeconds": 10,
            "pollIntervalSeconds": 1,
            "watch": [{"cpCode": 1209788}, {"cpCode": 1209789}, {"cpCode": 1209790}],
        }),
    );
    sim.faults()
        .set(Fault::InboundDelay(Duration::from_secs(3)), Some(1));
    let started = tokio::time::Instant::now();
    // The data source's first request starts its pollers; whichever call goes first is slow to
    // arrive, and the others queue behind the budget (or fail fast as gaps).
    plugin.query_one(&ctx, json!({"cpCode": 1209788})).await;
    // Long enough for the second call (after 3 s + 60 s + the margin) to land.
    tokio::time::sleep(Duration::from_secs(70)).await;
    let arrivals: Vec<Duration> = sim.arrivals().iter().map(|t| *t - started).collect();
    assert!(arrivals.len() >= 2, "two calls in 70 s: {arrivals:?}");
    assert!(arrivals[0] >= Duration::from_secs(3), "{arrivals:?}");
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_secs(60),
            "two calls within one 60 s window of the receiver: {arrivals:?}"
        );
    }
}
