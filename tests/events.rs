//! `queryType: "events"` (annotations) through the real executable: failed polls from the
//! simulator's injected faults, threshold crossings from a crafted history imported with
//! `history import`, past ranges, bad thresholds and targets without history. Frames are decoded
//! with arrow-rs's IPC reader, independently of the plugin's own frame code.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use common::{assert_no_secret, context, data_query_range, ds, frames, simulator, Decoded, Plugin};
use estats::simulator::{Fault, Simulator};
use estats::store::{test_database, PgStore};
use grafana_plugin_sdk::pluginv2::{PluginContext, QueryDataRequest};
use serde_json::{json, Value};

const FIELDS: [&str; 6] = ["time", "timeEnd", "title", "text", "tags", "target"];

/// One annotation as decoded from the frame.
#[derive(Debug, Clone)]
struct Row {
    time: DateTime<Utc>,
    time_end: DateTime<Utc>,
    title: String,
    text: String,
    tags: Vec<String>,
    target: String,
}

fn times(frame: &Decoded, name: &str) -> Vec<DateTime<Utc>> {
    let col = frame.column(name);
    let t = col
        .as_any()
        .downcast_ref::<arrow_array::TimestampNanosecondArray>()
        .unwrap_or_else(|| panic!("{name} is a nanosecond timestamp"));
    t.values()
        .iter()
        .map(|ns| DateTime::from_timestamp_nanos(*ns))
        .collect()
}

/// The one `events` frame of a response, checked for its shape, as rows.
fn rows(frame: &Decoded) -> Vec<Row> {
    let names: Vec<&str> = frame
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, FIELDS);
    assert_eq!(frame.schema.metadata()["name"], "events");
    let meta = frame.meta();
    assert_eq!(meta["type"], "table", "{meta}");
    assert_eq!(meta["preferredVisualisationType"], "table", "{meta}");
    if frame.rows() == 0 {
        return Vec::new();
    }
    let (time, end) = (times(frame, "time"), times(frame, "timeEnd"));
    let text = |name: &str| -> Vec<String> {
        frame
            .strings(name)
            .into_iter()
            .map(|v| v.expect("no null strings"))
            .collect()
    };
    let (title, texts, tags, target) = (text("title"), text("text"), text("tags"), text("target"));
    let rows: Vec<Row> = (0..frame.rows())
        .map(|i| Row {
            time: time[i],
            time_end: end[i],
            title: title[i].clone(),
            text: texts[i].clone(),
            tags: tags[i].split(',').map(str::to_string).collect(),
            target: target[i].clone(),
        })
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0].time <= w[1].time),
        "ascending by time: {rows:?}"
    );
    assert!(rows.iter().all(|r| r.time <= r.time_end), "{rows:?}");
    rows
}

fn events_query(ref_id: &str, query: Value, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    let mut q = query;
    q["queryType"] = json!("events");
    json!({"refId": ref_id, "query": q, "from": from.timestamp_millis(), "to": to.timestamp_millis()})
}

/// Asks the queries of `specs` (from [`events_query`]) in one request.
async fn ask(
    plugin: &Plugin,
    ctx: &PluginContext,
    specs: &[Value],
) -> HashMap<String, grafana_plugin_sdk::pluginv2::DataResponse> {
    let queries = specs
        .iter()
        .map(|s| {
            data_query_range(
                s["refId"].as_str().unwrap(),
                s["query"].clone(),
                s["from"].as_i64().unwrap(),
                s["to"].as_i64().unwrap(),
            )
        })
        .collect();
    plugin.query(ctx, queries).await
}

async fn events(
    plugin: &Plugin,
    ctx: &PluginContext,
    query: Value,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Row> {
    let r = ask(plugin, ctx, &[events_query("E", query, from, to)])
        .await
        .remove("E")
        .unwrap();
    let decoded = frames(&r);
    assert_eq!(decoded.len(), 1, "one events frame");
    for f in &response_texts(&r) {
        assert_no_secret(f);
    }
    rows(&decoded[0])
}

/// Everything of a response a person could read, for the secret check.
fn response_texts(r: &grafana_plugin_sdk::pluginv2::DataResponse) -> Vec<String> {
    let mut out = vec![r.error.clone()];
    out.extend(
        r.frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned()),
    );
    out
}

async fn samples_held(plugin: &Plugin, ctx: &PluginContext, key: &str) -> u64 {
    let (_, body) = plugin.resource(ctx, "targets").await;
    body["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["key"] == key))
        .and_then(|t| t["samples"].as_u64())
        .unwrap_or(0)
}

/// Waits (bounded) until `key` has `more` samples beyond what it has now.
async fn wait_for_more_samples(plugin: &Plugin, ctx: &PluginContext, key: &str, more: u64) {
    let target = samples_held(plugin, ctx, key).await + more;
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples_held(plugin, ctx, key).await < target {
        assert!(Instant::now() < deadline, "{key}: no new samples");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const KEY: &str = "cp:1209788/STANDARD_TLS";

fn target() -> Value {
    json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"})
}

#[tokio::test]
async fn failed_polls_and_a_429_pause_show_as_merged_ranges_with_their_kinds() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds(
        "events-faults",
        &sim,
        json!({"watch": [target()], "pollIntervalSeconds": 1}),
    );
    let start = Utc::now() - chrono::Duration::seconds(1);
    // The data source's first request starts its watched poller.
    let r = plugin.query_one(&ctx, target()).await;
    assert_eq!(r.status, 200, "{}", r.error);
    wait_for_more_samples(&plugin, &ctx, KEY, 2).await;

    // Every call answers 500 for a while: several failed polls in a row, one range.
    sim.faults().set(Fault::Status(500), None);
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    sim.faults().clear();
    wait_for_more_samples(&plugin, &ctx, KEY, 2).await;

    // One 429 whose RateLimit-Next is beyond the request timeout: the poll fails and the data
    // source pauses.
    sim.faults().set(
        Fault::RateLimited {
            next_in: Some(Duration::from_secs(4)),
        },
        Some(1),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.faults().active().is_some() {
        assert!(Instant::now() < deadline, "the 429 was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_more_samples(&plugin, &ctx, KEY, 2).await;
    let end = Utc::now();

    let rows = events(&plugin, &ctx, target(), start, end).await;
    let failing: Vec<&Row> = rows.iter().filter(|r| r.title == "polls failing").collect();
    assert_eq!(failing.len(), 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.title == "polls failing"),
        "no threshold asked: {rows:#?}"
    );

    let server = failing[0];
    assert_eq!(server.tags, ["estats", "polls-failing", "server_error"]);
    assert_eq!(server.target, "1209788 (STANDARD_TLS)");
    assert!(
        server.time_end > server.time,
        "several polls merged: {server:?}"
    );
    let polls: u32 = server
        .text
        .split(" (")
        .nth(2)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a poll count in {:?}", server.text));
    assert!(polls >= 2, "{}", server.text);
    let (a, b) = (
        server.time.format("%H:%M").to_string(),
        server.time_end.format("%H:%M").to_string(),
    );
    let span = if a == b { a } else { format!("{a}-{b}") };
    assert!(
        server.text.starts_with(&format!(
            "1209788 (STANDARD_TLS): polls failing {span} UTC ({polls} polls): server_error: "
        )),
        "{}",
        server.text
    );
    assert!(server.text.contains("500"), "{}", server.text);

    let pause = failing[1];
    assert!(pause.time > server.time_end, "{rows:#?}");
    assert_eq!(
        pause.tags,
        ["estats", "polls-failing", "pause", "rate_limited"],
        "{pause:?}"
    );
    assert!(pause.text.contains("rate_limited: "), "{}", pause.text);
    // Both ranges lie in the window asked.
    for r in &rows {
        assert!(r.time >= start && r.time_end <= end, "{r:?}");
    }
}

#[tokio::test]
async fn a_set_of_targets_answers_one_frame_naming_the_target_of_each_range() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let other = json!({"cpCode": 1209789, "delivery": "STANDARD_TLS"});
    let ctx = ds(
        "events-set",
        &sim,
        json!({"watch": [target(), other], "pollIntervalSeconds": 1}),
    );
    let start = Utc::now() - chrono::Duration::seconds(1);
    let r = plugin.query_one(&ctx, target()).await;
    assert_eq!(r.status, 200, "{}", r.error);
    wait_for_more_samples(&plugin, &ctx, KEY, 2).await;

    // Only the second CP code fails for a while.
    let failing_key = "cp:1209789/STANDARD_TLS";
    sim.faults().set_for_target(failing_key, Fault::Status(500));
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    sim.faults().clear_target(failing_key);
    wait_for_more_samples(&plugin, &ctx, failing_key, 2).await;
    let end = Utc::now();

    for cp_code in ["1209788, 1209789", "*"] {
        let query = json!({"cpCode": cp_code, "delivery": "STANDARD_TLS"});
        let rows = events(&plugin, &ctx, query, start, end).await;
        assert!(!rows.is_empty(), "{cp_code}: the failing target's range");
        assert!(
            rows.iter().all(|r| r.target == "1209789 (STANDARD_TLS)"
                && r.text.starts_with("1209789 (STANDARD_TLS): polls failing")),
            "{cp_code}: only the failing target has events: {rows:#?}"
        );
    }
}

/// An eStats answer with `edge_5xx` percent of 503 on the edge and a healthy origin.
fn answer(edge_5xx: f64) -> Value {
    let hits = 10_000u64;
    let errors = (hits as f64 * edge_5xx / 100.0).round() as u64;
    json!({
        "executionStatus": "SUCCESS",
        "result": {
            "edgeHits": hits,
            "edgeErrors": errors,
            "edgeFailurePercentage": edge_5xx,
            "originHits": hits,
            "originErrors": 0,
            "originFailurePercentage": 0.0,
            "edgeStatusCodeDistribution": [
                {"httpStatus": 200, "hits": hits - errors, "percentage": 100.0 - edge_5xx},
                {"httpStatus": 503, "hits": errors, "percentage": edge_5xx},
            ],
            "originStatusCodeDistribution": [
                {"httpStatus": 200, "hits": hits, "percentage": 100.0},
            ],
        }
    })
}

/// Writes a history of target 1234567 (ENHANCED_TLS) for data source `uid` into `db` with the
/// CLI, one poll a minute from `first`: a number is a successful poll with that edge 5xx share,
/// `None` a failed poll.
fn import_history(db: &std::path::Path, uid: &str, first: DateTime<Utc>, polls: &[Option<f64>]) {
    let lines = db.with_extension("jsonl");
    let mut f = std::fs::File::create(&lines).unwrap();
    for (i, poll) in polls.iter().enumerate() {
        let at = (first + chrono::Duration::minutes(i as i64))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut line = json!({
            "sampledAt": at,
            "target": {"cpCode": 1234567, "delivery": "ENHANCED_TLS"},
        });
        match poll {
            Some(share) => line["response"] = answer(*share),
            None => {
                line["error"] = json!({"kind": "timeout", "message": format!("no answer within 30 s (poll {i})")})
            }
        }
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .args(["history", "import", "--db"])
        .arg(db)
        .args(["--datasource", uid])
        .arg(&lines)
        .env_remove("grafana_plugin_type")
        .output()
        .expect("the executable runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_crafted_5xx_burst_in_a_past_range_gives_a_threshold_range_with_its_peak() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    // Two hours ago, on a whole minute: well inside the default retention.
    let first = {
        let t = Utc::now() - chrono::Duration::hours(2);
        DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap()
    };
    let polls = [
        Some(0.5),
        Some(1.0),
        Some(3.0), // 2: above 2 %
        None,      // 3: failed, neither ends nor starts the crossing
        Some(7.5), // 4: the peak
        Some(4.0), // 5
        Some(2.0), // 6: back at the threshold: the range ends here
        Some(0.5),
        None, // 8, 9: two failed polls, one range
        None,
        Some(0.5),
        Some(2.5), // 11: above again until the end of the history: an open range
    ];
    import_history(&db, "events-past", first, &polls);
    let minute = |i: i64| first + chrono::Duration::minutes(i);

    let plugin = Plugin::start().await;
    let ctx = context(
        "events-past",
        json!({"simulate": true, "historyPath": db.to_str().unwrap()}),
        &[],
    );
    let q = json!({"cpCode": "1234567", "delivery": "ENHANCED_TLS", "threshold": 2});
    // A past range, an hour wide, around the history.
    let (from, to) = (
        first - chrono::Duration::minutes(30),
        first + chrono::Duration::minutes(30),
    );
    let rows = events(&plugin, &ctx, q.clone(), from, to).await;
    let summary: Vec<(DateTime<Utc>, DateTime<Utc>, &str)> = rows
        .iter()
        .map(|r| (r.time, r.time_end, r.title.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (minute(2), minute(6), "edge 5xx above 2 %"),
            (minute(3), minute(3), "polls failing"),
            (minute(8), minute(9), "polls failing"),
            (minute(11), minute(11), "edge 5xx above 2 %"),
        ],
        "{rows:#?}"
    );
    let hhmm = |i: i64| minute(i).format("%H:%M").to_string();
    assert_eq!(rows[0].tags, ["estats", "threshold", "edge"]);
    assert_eq!(rows[0].target, "1234567 (ENHANCED_TLS)");
    assert_eq!(
        rows[0].text,
        format!(
            "1234567 (ENHANCED_TLS): edge 5xx above 2 % from {} to {} UTC, peak 7.5 %",
            hhmm(2),
            hhmm(6)
        )
    );
    assert_eq!(
        rows[2].text,
        format!(
            "1234567 (ENHANCED_TLS): polls failing {}-{} UTC (2 polls): timeout: no answer within 30 s (poll 8)",
            hhmm(8),
            hhmm(9)
        )
    );
    assert_eq!(rows[2].tags, ["estats", "polls-failing", "timeout"]);
    assert!(
        rows[3]
            .text
            .ends_with("peak 2.5 %, still above at the last poll"),
        "{}",
        rows[3].text
    );

    // The origin never crossed; the edge alone asked gives the same crossings.
    let mut origin = q.clone();
    origin["side"] = json!("origin");
    let rows = events(&plugin, &ctx, origin, from, to).await;
    assert!(rows.iter().all(|r| r.title == "polls failing"), "{rows:#?}");
    // A window that cuts the burst: the range starts at the window's first poll above.
    let rows = events(&plugin, &ctx, q.clone(), minute(5), minute(7)).await;
    let summary: Vec<_> = rows.iter().map(|r| (r.time, r.time_end)).collect();
    assert_eq!(summary, [(minute(5), minute(6))], "{rows:#?}");
    // A higher threshold than the peak: nothing crossed.
    let mut high = q;
    high["threshold"] = json!("7.5");
    let rows = events(&plugin, &ctx, high, from, to).await;
    assert!(rows.iter().all(|r| r.title == "polls failing"), "{rows:#?}");
}

#[tokio::test]
async fn a_target_without_history_gets_an_empty_frame_and_bad_thresholds_name_the_field() {
    let plugin = Plugin::start().await;
    let ctx = context("events-empty", json!({"simulate": true}), &[]);
    let now = Utc::now();
    let past = (
        now - chrono::Duration::days(2),
        now - chrono::Duration::days(1),
    );

    let specs = [
        events_query(
            "EMPTY",
            json!({"cpCode": 4242, "threshold": 1}),
            past.0,
            past.1,
        ),
        events_query(
            "ZERO",
            json!({"cpCode": 4242, "threshold": 0}),
            past.0,
            past.1,
        ),
        events_query(
            "TEXT",
            json!({"cpCode": 4242, "threshold": "lots"}),
            past.0,
            past.1,
        ),
        events_query(
            "OVER",
            json!({"cpCode": 4242, "threshold": "100.5"}),
            past.0,
            past.1,
        ),
        events_query(
            "LIST",
            json!({"cpCode": 4242, "threshold": [2]}),
            past.0,
            past.1,
        ),
    ];
    let mut r = ask(&plugin, &ctx, &specs).await;

    let empty = r.remove("EMPTY").unwrap();
    assert_eq!(empty.status, 200, "{}", empty.error);
    let decoded = frames(&empty);
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].rows(), 0);
    assert!(rows(&decoded[0]).is_empty());
    // Grafana reads an empty frame as "no annotations": every field is there, with its type.
    let time = decoded[0].schema.field_with_name("time").unwrap();
    assert!(matches!(
        time.data_type(),
        arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, _)
    ));

    for ref_id in ["ZERO", "TEXT", "OVER", "LIST"] {
        let bad = r.remove(ref_id).unwrap();
        assert_eq!(bad.status, 400, "{ref_id}: {}", bad.error);
        assert!(bad.frames.is_empty(), "{ref_id}");
        assert!(
            bad.error.starts_with("threshold: ") && bad.error.contains("at most 100"),
            "{ref_id}: {}",
            bad.error
        );
    }

    // Alert rules cannot evaluate annotations: a clear 400, not Grafana's generic error.
    let mut headers = HashMap::new();
    headers.insert("FromAlert".to_string(), "true".to_string());
    let q = data_query_range(
        "ALERT",
        json!({"queryType": "events", "cpCode": 4242}),
        past.0.timestamp_millis(),
        past.1.timestamp_millis(),
    );
    let r = plugin
        .data()
        .query_data(QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers,
            queries: vec![q],
        })
        .await
        .unwrap()
        .into_inner()
        .responses
        .remove("ALERT")
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.error.contains("events"), "{}", r.error);
}

/// A data source of `sim` whose history is the shared PostgreSQL schema of `db`.
fn shared_ds(uid: &str, sim: &Simulator, db: &estats::settings::HistoryDatabase) -> PluginContext {
    let mut ctx = ds(
        uid,
        sim,
        json!({
            "watch": [target()],
            "pollIntervalSeconds": 1,
            "historyDatabase": format!("postgres://{}@{}:{}/{}?sslmode=disable", db.user, db.host, db.port, db.database),
            "historyDatabaseSchema": db.schema,
        }),
    );
    if let Some(password) = &db.password {
        ctx.data_source_instance_settings
            .as_mut()
            .unwrap()
            .decrypted_secure_json_data
            .insert(
                "historyDatabasePassword".into(),
                password.expose().to_string(),
            );
    }
    ctx
}

#[tokio::test]
async fn replicas_answer_events_alike_from_the_shared_history_and_tag_credential_blocks() {
    let Some(db) = test_database("events_shared").await else {
        return;
    };
    let sim = simulator().await;
    let replicas = [Plugin::start().await, Plugin::start().await];
    let ctx = shared_ds("events-shared", &sim, &db);
    let start = Utc::now() - chrono::Duration::seconds(1);
    for p in &replicas {
        let r = p.query_one(&ctx, target()).await;
        assert_eq!(r.status, 200, "{}", r.error);
    }
    let store = PgStore::new(&db).unwrap();
    let key = estats::target::Target::from_key(KEY).unwrap();
    let stored = async || store.writes("events-shared", &key).await.unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = stored().await;
    while stored().await < before + 2 {
        assert!(Instant::now() < deadline, "no polls stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Akamai refuses the credentials once: the data source stops calling for minutes, so the
    // failed poll is the last one.
    sim.faults().set(Fault::Status(401), Some(1));
    while sim.faults().active().is_some() {
        assert!(Instant::now() < deadline, "the 401 was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let end = Utc::now();

    let mut answers = Vec::new();
    for p in &replicas {
        let rows = events(p, &ctx, target(), start, end).await;
        answers.push(
            rows.into_iter()
                .map(|r| (r.time, r.time_end, r.title, r.text, r.tags, r.target))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(answers[0], answers[1], "the replicas differ");
    let rows = &answers[0];
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let (time, time_end, title, text, tags, _) = &rows[0];
    assert_eq!(title, "polls failing");
    assert_eq!(time, time_end, "one failed poll: {text}");
    assert_eq!(
        tags,
        &["estats", "polls-failing", "credentials", "auth"],
        "{text}"
    );
    assert!(text.contains("(1 poll): auth: "), "{text}");
    store.drop_schema().await.unwrap();
}
