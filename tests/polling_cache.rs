//! The polling cache through the real executable: coalescing, history with gaps, restarts after
//! SIGKILL, settings changes and data source isolation.

mod common;

use std::time::{Duration, Instant};

use common::{data_query, data_query_range, ds, frames, simulator, Decoded, Plugin};
use estats::simulator::Fault;
use serde_json::{json, Value};

const TARGET_KEY: &str = "cp:1209788/STANDARD_TLS";

fn watched() -> Value {
    json!({"watch": [{"cpCode": 1209788, "delivery": "STANDARD_TLS"}], "pollIntervalSeconds": 1})
}

async fn samples_held(
    plugin: &Plugin,
    ctx: &grafana_plugin_sdk::pluginv2::PluginContext,
    key: &str,
) -> u64 {
    let (_, body) = plugin.resource(ctx, "targets").await;
    body["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["key"] == key))
        .and_then(|t| t["samples"].as_u64())
        .unwrap_or(0)
}

/// The first request of a data source starts its watched pollers; this one also fetches.
async fn start_polling(plugin: &Plugin, ctx: &grafana_plugin_sdk::pluginv2::PluginContext) {
    let r = plugin
        .query_one(ctx, json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.error);
}

/// Waits (bounded) until the target has at least `n` samples in history.
async fn wait_for_samples(
    plugin: &Plugin,
    ctx: &grafana_plugin_sdk::pluginv2::PluginContext,
    n: u64,
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = samples_held(plugin, ctx, TARGET_KEY).await;
        if held >= n || Instant::now() > deadline {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn timeseries_query(from_ms: i64, to_ms: i64) -> grafana_plugin_sdk::pluginv2::DataQuery {
    let mut q = data_query_range(
        "T",
        json!({"queryType": "timeseries", "cpCode": "1209788", "delivery": "STANDARD_TLS", "side": "edge", "groupBy": "class", "metric": "percentage"}),
        from_ms,
        to_ms,
    );
    q.max_data_points = 10_000;
    q.interval_ms = 1;
    q
}

fn time_values(frame: &Decoded) -> Vec<i64> {
    let col = frame.column("time");
    let t = col
        .as_any()
        .downcast_ref::<arrow_array::TimestampNanosecondArray>()
        .expect("time field");
    t.values().to_vec()
}

#[tokio::test]
async fn a_hundred_concurrent_queries_on_a_cold_target_make_one_upstream_call() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("coalesce", &sim, json!({"pollIntervalSeconds": 600}));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let mut data = plugin.data();
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let request = grafana_plugin_sdk::pluginv2::QueryDataRequest {
                plugin_context: Some(ctx),
                headers: Default::default(),
                queries: vec![data_query(&format!("Q{i}"), json!({"cpCode": 424242, "queryType": if i % 2 == 0 { "distribution" } else { "summary" }}))],
            };
            data.query_data(request).await.unwrap().into_inner()
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r
            .responses
            .values()
            .all(|d| d.status == 200 && !d.frames.is_empty()));
    }
    assert_eq!(
        sim.calls_for("cp:424242/ANY"),
        1,
        "100 concurrent viewers, one upstream call"
    );
}

#[tokio::test]
async fn history_draws_failed_polls_as_gaps_not_zeros() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("gaps", &sim, watched());
    let start = chrono::Utc::now().timestamp_millis() - 1_000;
    start_polling(&plugin, &ctx).await;
    wait_for_samples(&plugin, &ctx, 3).await;
    // Fail the next polls (each poll may retry: fail enough calls for at least one failed poll).
    sim.faults().set(Fault::Status(503), Some(6));
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    sim.faults().clear();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let end = chrono::Utc::now().timestamp_millis();

    let r = plugin
        .query(&ctx, vec![timeseries_query(start, end)])
        .await
        .remove("T")
        .unwrap();
    let frame = &frames(&r)[0];
    assert_eq!(frame.meta()["type"], "timeseries-wide");
    let times = time_values(frame);
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "time ascending without duplicates"
    );
    let numeric: Vec<usize> = (1..frame.schema.fields().len()).collect();
    assert!(!numeric.is_empty());
    for &i in &numeric {
        let labels: Value =
            serde_json::from_str(&frame.schema.field(i).metadata()["labels"]).unwrap();
        assert_eq!(labels["side"], "edge");
        assert_eq!(labels["target"], TARGET_KEY);
        assert!(labels["status"].as_str().unwrap().ends_with("xx"));
    }
    let rows = frame.rows();
    let gap_rows: Vec<usize> = (0..rows)
        .filter(|&r| numeric.iter().all(|&i| frame.floats_at(i)[r].is_none()))
        .collect();
    let full_rows = (0..rows)
        .filter(|&r| numeric.iter().all(|&i| frame.floats_at(i)[r].is_some()))
        .count();
    assert!(
        !gap_rows.is_empty(),
        "a failed poll shows as a null row ({rows} rows)"
    );
    assert!(
        full_rows >= 3,
        "successful polls have values ({full_rows} of {rows})"
    );
    // The 2xx share of a successful sample is never 0 in the simulator; a zero would be a lie.
    let two_xx = numeric
        .iter()
        .find(|&&i| frame.schema.field(i).metadata()["labels"].contains("\"2xx\""))
        .unwrap();
    assert!(frame.floats_at(*two_xx).iter().flatten().all(|v| *v > 0.0));
}

#[tokio::test]
async fn sigkill_loses_no_committed_sample() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let extra = {
        let mut v = watched();
        v["historyPath"] = json!(db.to_str().unwrap());
        v
    };
    let ctx = ds("kill9", &sim, extra);
    let mut plugin = Plugin::start().await;
    start_polling(&plugin, &ctx).await;
    let before = wait_for_samples(&plugin, &ctx, 4).await;
    assert!(before >= 4, "polling stored samples ({before})");
    // SIGKILL while the poller keeps writing every second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = samples_held(&plugin, &ctx, TARGET_KEY).await;
    plugin.kill();

    // An independent reader finds every sample the plugin reported as stored.
    let history = estats::history::History::open(Some(&db))
        .expect("the file reopens and passes the integrity check");
    let target = estats::target::Target::from_key(TARGET_KEY).unwrap();
    let on_disk = history.count("kill9", &target).await.unwrap();
    assert!(
        on_disk >= seen,
        "{on_disk} samples on disk, {seen} reported before the kill"
    );
    drop(history);

    // A new process continues the same file.
    let plugin = Plugin::start().await;
    start_polling(&plugin, &ctx).await;
    let after = wait_for_samples(&plugin, &ctx, on_disk + 2).await;
    assert!(
        after >= on_disk + 2,
        "polling continues after restart ({on_disk} -> {after})"
    );
}

#[tokio::test]
async fn settings_change_keeps_history_and_data_sources_stay_apart() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let start = chrono::Utc::now().timestamp_millis() - 1_000;
    let ctx = ds("keep", &sim, watched());
    start_polling(&plugin, &ctx).await;
    let before = wait_for_samples(&plugin, &ctx, 3).await;

    // Grafana sends new settings with a new lastUpdatedMS: a new client and pollers, same history.
    let mut changed = ctx.clone();
    {
        let ds = changed.data_source_instance_settings.as_mut().unwrap();
        ds.last_updated_ms += 1;
        let mut json_data: Value = serde_json::from_slice(&ds.json_data).unwrap();
        json_data["requestTimeoutSeconds"] = json!(5);
        ds.json_data = json_data.to_string().into_bytes();
    }
    let end = chrono::Utc::now().timestamp_millis();
    let r = plugin
        .query(&changed, vec![timeseries_query(start, end)])
        .await
        .remove("T")
        .unwrap();
    let rows = frames(&r)[0].rows() as u64;
    assert!(
        rows >= before,
        "history survives the settings change ({rows} rows, {before} samples before)"
    );

    // Another data source on the same upstream and target sees none of it.
    let other = ds("other", &sim, json!({"pollIntervalSeconds": 600}));
    let r = plugin
        .query(&other, vec![timeseries_query(start, end)])
        .await
        .remove("T")
        .unwrap();
    assert_eq!(
        frames(&r)[0].rows(),
        0,
        "two data sources never share history"
    );
    // The rebuilt instance polls on; the other data source made no upstream call, and its
    // budget shows none of the first one's calls.
    wait_for_samples(&plugin, &changed, before + 2).await;
    let (_, mine) = plugin.resource(&changed, "targets").await;
    let (_, theirs) = plugin.resource(&other, "targets").await;
    assert!(
        mine["budget"]["callsLastMinute"].as_u64().unwrap() >= 1,
        "{mine}"
    );
    assert_eq!(
        theirs["budget"]["callsLastMinute"], 0,
        "budgets are separate: {theirs}"
    );
}
