//! Queries naming many targets (issue 14), through the executable as Grafana starts it, against
//! the signature-verifying simulator; frames decoded with arrow-rs's own IPC reader.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{data_query, decode, ds, frames, simulator, Decoded, Plugin};
use estats::simulator::Fault;
use grafana_plugin_sdk::pluginv2::{DataResponse, PluginContext, QueryDataRequest};
use serde_json::{json, Value};

fn texts(meta: &Value) -> Vec<String> {
    meta["notices"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|x| format!("{}: {}", x["severity"], x["text"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

fn column(frame: &Decoded, name: &str) -> Vec<String> {
    frame
        .strings(name)
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

/// The targets of the rows, each once, in the order they come.
fn target_order(frame: &Decoded) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for t in column(frame, "target") {
        if order.last() != Some(&t) {
            assert!(!order.contains(&t), "rows of {t} are not together");
            order.push(t);
        }
    }
    order
}

fn field_meta(frame: &Decoded, index: usize, key: &str) -> Value {
    frame
        .schema
        .field(index)
        .metadata()
        .get(key)
        .map(|v| serde_json::from_str(v).unwrap())
        .unwrap_or(Value::Null)
}

async fn ask(plugin: &Plugin, ctx: &PluginContext, query: Value, from_alert: bool) -> DataResponse {
    let mut headers = HashMap::new();
    if from_alert {
        headers.insert("FromAlert".to_string(), "true".to_string());
    }
    plugin
        .data()
        .query_data(QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers,
            queries: vec![data_query("A", query)],
        })
        .await
        .expect("QueryData answers")
        .into_inner()
        .responses
        .remove("A")
        .expect("refId A answered")
}

#[tokio::test]
async fn a_cp_code_list_answers_each_target_in_the_order_asked() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-list", &sim, json!({}));
    for query_type in ["distribution", "summary", "topIps"] {
        let r = plugin
            .query_one(
                &ctx,
                json!({"queryType": query_type, "cpCode": "1209790, 1209788,1209789 1209788"}),
            )
            .await;
        let f = frames(&r);
        assert_eq!(f.len(), 1, "{query_type}");
        assert_eq!(f[0].schema.field(0).name(), "target", "{query_type}");
        if query_type != "topIps" {
            assert_eq!(
                target_order(&f[0]),
                ["1209790", "1209788", "1209789"],
                "{query_type}"
            );
        }
        let meta = f[0].meta();
        assert_eq!(
            meta["custom"]["targets"],
            json!(["cp:1209790/ANY", "cp:1209788/ANY", "cp:1209789/ANY"]),
            "{query_type}"
        );
        assert!(meta["custom"].get("target").is_none(), "{query_type}");
    }
    // One CP code keeps today's frame: no target column.
    let r = plugin.query_one(&ctx, json!({"cpCode": "1209788"})).await;
    let f = frames(&r);
    assert_eq!(f[0].schema.field(0).name(), "side");
    assert_eq!(f[0].meta()["custom"]["target"], "cp:1209788/ANY");
    // A JSON list with a delivery network: the display name says which.
    let r = plugin
        .query_one(
            &ctx,
            json!({"cpCode": [1209788, "1209789"], "delivery": "STANDARD_TLS", "queryType": "summary"}),
        )
        .await;
    assert_eq!(
        target_order(&frames(&r)[0]),
        ["1209788 (STANDARD_TLS)", "1209789 (STANDARD_TLS)"]
    );
}

#[tokio::test]
async fn star_is_every_watched_target_of_the_kind() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds(
        "fleet-star",
        &sim,
        json!({"watch": [
            {"cpCode": 1209791},
            {"url": "https://www.example.com/a"},
            {"cpCode": 1209792, "delivery": "ENHANCED_TLS"},
        ]}),
    );
    let r = plugin
        .query_one(&ctx, json!({"queryType": "summary", "cpCode": "*"}))
        .await;
    assert_eq!(
        target_order(&frames(&r)[0]),
        ["1209791", "1209792 (ENHANCED_TLS)"]
    );
    let r = plugin
        .query_one(
            &ctx,
            json!({"queryType": "summary", "cpCode": "*", "delivery": "ENHANCED_TLS"}),
        )
        .await;
    assert_eq!(target_order(&frames(&r)[0]), ["1209792 (ENHANCED_TLS)"]);
    let r = plugin
        .query_one(
            &ctx,
            json!({"queryType": "summary", "targetType": "url", "url": "*"}),
        )
        .await;
    assert_eq!(target_order(&frames(&r)[0]), ["https://www.example.com/a"]);

    // Nothing watched: a 400 naming the field and the watch list.
    let bare = ds("fleet-star-bare", &sim, json!({}));
    let r = plugin.query_one(&bare, json!({"cpCode": "*"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error.starts_with("cpCode:") && r.error.contains("watch list"),
        "{}",
        r.error
    );
}

#[tokio::test]
async fn several_urls_are_a_set() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-urls", &sim, json!({}));
    let r = plugin
        .query_one(
            &ctx,
            json!({"url": "https://a.example/x,y\nhttps://b.example/  https://a.example/x,y",
                   "groupBy": "class"}),
        )
        .await;
    let f = frames(&r);
    assert_eq!(
        target_order(&f[0]),
        ["https://a.example/x,y", "https://b.example/"]
    );
    let r = plugin
        .query_one(
            &ctx,
            json!({"url": ["https://b.example/", "https://a.example/x,y"], "groupBy": "total"}),
        )
        .await;
    assert_eq!(
        target_order(&frames(&r)[0]),
        ["https://b.example/", "https://a.example/x,y"]
    );
}

#[tokio::test]
async fn more_than_two_hundred_targets_fail_alone() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-many", &sim, json!({}));
    let codes: Vec<String> = (1_000_001..=1_000_201).map(|c| c.to_string()).collect();
    let mut answers = plugin
        .query(
            &ctx,
            vec![
                data_query("BIG", json!({"cpCode": codes.join(",")})),
                data_query("OK", json!({"cpCode": "1209788"})),
            ],
        )
        .await;
    let big = answers.remove("BIG").unwrap();
    assert_eq!(big.status, 400);
    assert!(
        big.error.starts_with("cpCode:") && big.error.contains("201") && big.error.contains("200"),
        "{}",
        big.error
    );
    assert!(big.frames.is_empty());
    assert_eq!(answers.remove("OK").unwrap().status, 200);
    assert_eq!(sim.calls_for("cp:1000001/ANY"), 0, "nothing fetched");
}

#[tokio::test]
async fn a_failing_target_is_left_out_with_a_warning() {
    let sim = simulator().await;
    sim.faults()
        .set_for_target("cp:1209795/ANY", Fault::Status(403));
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-fault", &sim, json!({}));
    let r = plugin
        .query_one(&ctx, json!({"cpCode": "1209794,1209795,1209796"}))
        .await;
    let f = frames(&r);
    assert_eq!(target_order(&f[0]), ["1209794", "1209796"]);
    let notices = texts(&f[0].meta());
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("\"warning\": 1209795 is left out: ") && n.contains("403")),
        "{notices:?}"
    );
    assert_eq!(
        f[0].meta()["custom"]["targets"],
        json!(["cp:1209794/ANY", "cp:1209796/ANY"])
    );
    // Every target failing is the query's error, with the status of the first failure.
    let r = plugin.query_one(&ctx, json!({"cpCode": ["1209795"]})).await;
    assert_eq!(r.status, 403, "{}", r.error);
    assert!(r.error.contains("1209795"), "{}", r.error);
}

#[tokio::test]
async fn alert_shapes_keep_label_sets_unique_across_targets() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-alert", &sim, json!({}));
    for (query, metric) in [
        (
            json!({"cpCode": "1209788,1209789", "groupBy": "class"}),
            "percentage",
        ),
        (
            json!({"cpCode": "1209788,1209789", "groupBy": "total", "metric": "hits"}),
            "hits",
        ),
        (
            json!({"cpCode": "1209788,1209789", "queryType": "summary"}),
            "failurePercentage",
        ),
    ] {
        let r = ask(&plugin, &ctx, query.clone(), true).await;
        let f = frames(&r);
        assert_eq!(f.len(), 1, "{query}");
        assert_eq!(f[0].meta()["type"], "numeric-long");
        let fields: Vec<&str> = f[0]
            .schema
            .fields()
            .iter()
            .map(|x| x.name().as_str())
            .collect();
        assert_eq!(fields.last(), Some(&metric), "{query}");
        let numeric = f[0]
            .schema
            .fields()
            .iter()
            .filter(|x| x.data_type() != &arrow_schema::DataType::Utf8)
            .count();
        assert_eq!(numeric, 1, "{query}: one numeric field");
        // Grafana makes each row's string fields its labels: one value per label set.
        let strings: Vec<Vec<String>> = f[0]
            .schema
            .fields()
            .iter()
            .filter(|x| x.data_type() == &arrow_schema::DataType::Utf8)
            .map(|x| column(&f[0], x.name()))
            .collect();
        let mut seen = HashSet::new();
        for row in 0..f[0].rows() {
            let labels: BTreeMap<usize, &str> = strings
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c[row].as_str()))
                .collect();
            assert!(seen.insert(labels.clone()), "{query}: duplicate {labels:?}");
        }
        let targets: HashSet<String> = column(&f[0], "target").into_iter().collect();
        assert_eq!(targets.len(), 2, "{query}");
    }
}

#[tokio::test]
async fn timeseries_answers_one_frame_per_target() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("fleet-series", &sim, json!({}));
    // The first query fetches a sample of each target into the history.
    frames(
        &plugin
            .query_one(&ctx, json!({"cpCode": "1209788,1209789"}))
            .await,
    );
    let r = plugin
        .query_one(
            &ctx,
            json!({"queryType": "timeseries", "cpCode": "1209788, 1209789", "delivery": "STANDARD_TLS",
                   "groupBy": "class", "side": "edge"}),
        )
        .await;
    // The STANDARD_TLS targets were not fetched yet: frames may be empty, but there is one per
    // target, named after it.
    let names: Vec<String> = frames(&r)
        .iter()
        .map(|f| f.schema.metadata()["name"].clone())
        .collect();
    assert_eq!(names, ["1209788 (STANDARD_TLS)", "1209789 (STANDARD_TLS)"]);

    let r = plugin
        .query_one(
            &ctx,
            json!({"queryType": "timeseries", "cpCode": "1209788, 1209789",
                   "groupBy": "class", "side": "edge"}),
        )
        .await;
    let f = frames(&r);
    assert_eq!(f.len(), 2);
    let mut series = HashSet::new();
    for (frame, target) in f.iter().zip(["1209788", "1209789"]) {
        assert_eq!(frame.schema.metadata()["name"], target);
        assert_eq!(frame.meta()["type"], "timeseries-wide");
        assert!(frame.rows() >= 1, "{target}: the fetched sample");
        assert!(frame.schema.fields().len() >= 2, "{target}: a series");
        for i in 1..frame.schema.fields().len() {
            let labels = field_meta(frame, i, "labels");
            assert_eq!(labels["target"], target);
            let shown = field_meta(frame, i, "config")["displayNameFromDS"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                shown,
                format!(
                    "{target} {} {}",
                    labels["side"].as_str().unwrap(),
                    labels["status"].as_str().unwrap()
                )
            );
            assert!(series.insert(labels.to_string()), "unique series {labels}");
        }
    }
    // Live streams one target: a set is refused with a reason.
    let r = plugin
        .query_one(
            &ctx,
            json!({"queryType": "timeseries", "cpCode": "1209788,1209789", "live": true}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error.starts_with("live:"), "{}", r.error);
}

#[tokio::test]
async fn a_fleet_beyond_the_budget_is_polled_stretched_and_says_so() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let watch: Vec<Value> = (1_300_001..=1_300_020)
        .map(|c| json!({"cpCode": c}))
        .collect();
    // 20 targets every 5 s need 240 calls a minute; 90 % of 10 is 9: every 134 s instead.
    let ctx = ds(
        "fleet-stretch",
        &sim,
        json!({"watch": watch, "pollIntervalSeconds": 5, "rateLimitPerMinute": 10}),
    );
    let (health, details) = plugin.health(&ctx).await;
    assert_eq!(health.status, 1, "OK: {}", health.message);
    assert!(
        health
            .message
            .contains("polling every 134 s instead of 5 s"),
        "{}",
        health.message
    );
    assert_eq!(details["polling"]["effectiveIntervalSeconds"], 134);
    assert_eq!(details["polling"]["targets"], 20);
    assert_eq!(details["polling"]["callsPerMinuteNeeded"], 240);
    let (code, targets) = plugin.resource(&ctx, "targets").await;
    assert_eq!(code, 200);
    let states = targets["targets"].as_array().unwrap();
    assert_eq!(states.len(), 20);
    assert!(states
        .iter()
        .all(|t| t["effectiveIntervalSeconds"] == json!(134)));
    let r = plugin
        .query_one(&ctx, json!({"cpCode": "1300001", "queryType": "summary"}))
        .await;
    let notices = texts(&frames(&r)[0].meta());
    assert!(
        notices.iter().any(|n| n
            == "\"info\": polling every 134 s instead of 5 s: 20 targets need 240 calls a minute, above 90 % of the limit of 10"),
        "{notices:?}"
    );
    let _ = decode;
}

#[tokio::test]
async fn a_cold_set_beyond_the_budget_answers_what_it_has() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    // Three calls a minute for six cold targets: the rest are left out, not waited for.
    let ctx = ds("fleet-cold", &sim, json!({"rateLimitPerMinute": 3}));
    let codes: Vec<String> = (1_500_001..=1_500_006).map(|c| c.to_string()).collect();
    let r = plugin
        .query_one(
            &ctx,
            json!({"cpCode": codes.join(","), "queryType": "summary"}),
        )
        .await;
    let f = frames(&r);
    let answered = target_order(&f[0]);
    assert!(!answered.is_empty() && answered.len() <= 3, "{answered:?}");
    let left_out: Vec<String> = texts(&f[0].meta())
        .into_iter()
        .filter(|n| n.contains("is left out"))
        .collect();
    assert_eq!(answered.len() + left_out.len(), 6, "{left_out:?}");
    // Every target asked is polled from now on.
    let (_, targets) = plugin.resource(&ctx, "targets").await;
    assert_eq!(targets["targets"].as_array().unwrap().len(), 6);
}
