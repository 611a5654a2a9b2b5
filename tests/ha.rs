//! High availability through the real executable: several plugin processes (replicas of
//! Grafana) with one data source whose history is in PostgreSQL (`jsonData.historyDatabase`),
//! against the simulator. Each test uses a schema of its own and drops it; without a database
//! (and without `CI`) the tests say they are skipped.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{context, data_query_range, Plugin, ACCESS_TOKEN, CLIENT_SECRET, CLIENT_TOKEN};
use estats::settings::HistoryDatabase;
use estats::simulator::{Fault, Simulator};
use estats::store::{test_database, PgStore};
use estats::target::Target;
use grafana_plugin_sdk::pluginv2::PluginContext;
use serde_json::{json, Value};

const CP: u64 = 1209788;

fn key(cp: u64) -> String {
    format!("cp:{cp}/STANDARD_TLS")
}

fn target(cp: u64) -> Target {
    Target::from_key(&key(cp)).unwrap()
}

/// A data source of `sim` whose history is the test's schema.
fn ha_ds(uid: &str, sim: &Simulator, db: &HistoryDatabase, extra: Value) -> PluginContext {
    let mut json_data = json!({
        "host": sim.base_url().as_str().trim_end_matches('/'),
        "pollIntervalSeconds": 2,
        "requestTimeoutSeconds": 10,
        "rateLimitPerMinute": 600,
        "historyDatabase": format!("postgres://{}@{}:{}/{}?sslmode=disable", db.user, db.host, db.port, db.database),
        "historyDatabaseSchema": db.schema,
    });
    json_data
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let password = db
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    context(
        uid,
        json_data,
        &[
            ("clientToken", CLIENT_TOKEN),
            ("clientSecret", CLIENT_SECRET),
            ("accessToken", ACCESS_TOKEN),
            ("historyDatabasePassword", &password),
        ],
    )
}

fn watch(cps: &[u64]) -> Value {
    Value::Array(
        cps.iter()
            .map(|cp| json!({"cpCode": cp, "delivery": "STANDARD_TLS"}))
            .collect(),
    )
}

async fn replicas(n: usize) -> Vec<Plugin> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Plugin::start().await);
    }
    out
}

/// The first request of a data source on a replica builds its instance and starts its
/// coordinator; answered from the shared store (waiting for the owner's first sample).
async fn distribution(
    plugin: &Plugin,
    ctx: &PluginContext,
    cp: u64,
) -> grafana_plugin_sdk::pluginv2::DataResponse {
    plugin
        .query_one(ctx, json!({"cpCode": cp, "delivery": "STANDARD_TLS"}))
        .await
}

/// Which replica (by index) holds the lease of `cp`, from the `targets` resource.
async fn owner_of(plugins: &[&Plugin], ctx: &PluginContext, cp: u64) -> Option<usize> {
    for (i, p) in plugins.iter().enumerate() {
        let (_, body) = p.resource(ctx, "targets").await;
        let owned = body["targets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["key"] == key(cp)))
            .and_then(|t| t["owned"].as_bool());
        if owned == Some(true) {
            return Some(i);
        }
    }
    None
}

async fn wait_for<T>(within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn timeseries(from_ms: i64, to_ms: i64) -> grafana_plugin_sdk::pluginv2::DataQuery {
    let mut q = data_query_range(
        "T",
        json!({"queryType": "timeseries", "cpCode": CP.to_string(), "delivery": "STANDARD_TLS", "side": "edge", "groupBy": "class", "metric": "hits"}),
        from_ms,
        to_ms,
    );
    q.max_data_points = 10_000;
    q.interval_ms = 1;
    q
}

#[tokio::test]
async fn three_replicas_call_upstream_once_per_target_and_interval_and_answer_alike() {
    let Some(db) = test_database("ha_three").await else {
        return;
    };
    let sim = common::simulator().await;
    let plugins = replicas(3).await;
    let cps = [CP, CP + 1];
    let ctx = ha_ds("shared", &sim, &db, json!({"watch": watch(&cps)}));
    let started = Utc::now();
    for p in &plugins {
        let r = distribution(p, &ctx, CP).await;
        assert_eq!(r.status, 200, "{}", r.error);
    }
    // Leases settle (the first replica hands some over as the others join).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before: Vec<u64> = cps.iter().map(|cp| sim.calls_for(&key(*cp))).collect();
    let window = Duration::from_secs(12);
    tokio::time::sleep(window).await;
    let intervals = window.as_secs_f64() / 2.0;
    for (cp, b) in cps.iter().zip(before) {
        let calls = sim.calls_for(&key(*cp)) - b;
        let per_interval = calls as f64 / intervals;
        assert!(
            (0.65..=1.35).contains(&per_interval),
            "target {cp}: {calls} upstream calls in {intervals} intervals from 3 replicas ({per_interval:.2} per interval; 1.0 expected, 3.0 without the shared store)"
        );
    }
    // Every replica answers the same range with the same frames.
    let (from, to) = (
        started.timestamp_millis() - 1000,
        Utc::now().timestamp_millis() - 500,
    );
    let mut answers = Vec::new();
    for p in &plugins {
        let mut r = p.query(&ctx, vec![timeseries(from, to)]).await;
        let r = r.remove("T").expect("answer T");
        assert_eq!(r.status, 200, "{}", r.error);
        answers.push(r.frames);
    }
    assert!(!answers[0].is_empty());
    assert_eq!(answers[0], answers[1], "replicas 0 and 1 differ");
    assert_eq!(answers[0], answers[2], "replicas 0 and 2 differ");
    let rows = common::decode(&answers[0][0]).rows();
    assert!(rows >= 6, "only {rows} rows in the shared history");
    // Health names the store and sees the three replicas.
    let (health, details) = plugins[0].health(&ctx).await;
    assert_eq!(health.status, 1, "{}", health.message);
    assert_eq!(
        details["store"]["replicas"].as_array().map(Vec::len),
        Some(3),
        "{details}"
    );
    assert!(health.message.contains(&db.schema), "{}", health.message);
    PgStore::new(&db).unwrap().drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_killed_owner_is_replaced_within_the_lease_period_missing_at_most_one_poll() {
    let Some(db) = test_database("ha_kill").await else {
        return;
    };
    let sim = common::simulator().await;
    let mut plugins = replicas(2).await;
    let interval = 8;
    let ctx = ha_ds(
        "killed",
        &sim,
        &db,
        json!({"watch": watch(&[CP]), "pollIntervalSeconds": interval}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &ctx, CP).await.status, 200);
    }
    let owner = wait_for(Duration::from_secs(10), async || {
        owner_of(&plugins.iter().collect::<Vec<_>>(), &ctx, CP).await
    })
    .await
    .expect("an owner");
    let killed_at = Instant::now();
    plugins[owner].kill();
    let survivor = 1 - owner;
    let took_over = wait_for(Duration::from_secs(15), async || {
        owner_of(&[&plugins[survivor]], &ctx, CP).await
    })
    .await;
    let after = killed_at.elapsed();
    assert!(took_over.is_some(), "no takeover within 15 s");
    // Lease period max(3/4 x 8 s, 5 s) = 6 s, plus one coordination round and the poll of
    // the resource.
    assert!(after <= Duration::from_secs(9), "takeover after {after:?}");
    // Wait for two samples of the new owner, then look at the spacing of the stored polls.
    tokio::time::sleep(Duration::from_secs(interval + 2)).await;
    let store = PgStore::new(&db).unwrap();
    let writes = store.writes("killed", &target(CP)).await.unwrap();
    let epochs: std::collections::BTreeSet<i64> = writes.iter().map(|w| w.1).collect();
    assert!(epochs.len() >= 2, "no write under a new lease: {writes:?}");
    let worst = writes
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).to_std().unwrap_or_default())
        .max()
        .unwrap_or_default();
    assert!(
        worst < Duration::from_secs(2 * interval),
        "a gap of {worst:?} between stored polls: more than one poll of {interval} s missed"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn an_owner_paused_past_its_lease_writes_nothing_after_losing_it() {
    let Some(db) = test_database("ha_stop").await else {
        return;
    };
    let sim = common::simulator().await;
    let mut plugins = replicas(2).await;
    let ctx = ha_ds(
        "paused",
        &sim,
        &db,
        json!({"watch": watch(&[CP]), "pollIntervalSeconds": 1}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &ctx, CP).await.status, 200);
    }
    let owner = wait_for(Duration::from_secs(10), async || {
        owner_of(&plugins.iter().collect::<Vec<_>>(), &ctx, CP).await
    })
    .await
    .expect("an owner");
    let store = PgStore::new(&db).unwrap();
    let (_, old_epoch) = store.lease("paused", &target(CP)).await.unwrap().unwrap();
    let pid = plugins[owner].pid().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    signal("-STOP");
    let stopped_at = Utc::now();
    // Lease period 5 s (1 s polls), a round, margin.
    let survivor = 1 - owner;
    let took_over = wait_for(Duration::from_secs(15), async || {
        owner_of(&[&plugins[survivor]], &ctx, CP).await
    })
    .await;
    signal("-CONT");
    assert!(
        took_over.is_some(),
        "no takeover while the owner was stopped"
    );
    let lost_at = Utc::now();
    // The woken owner had a poll due; give it time to try writing and to notice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(plugins[owner].is_running());
    let writes = store.writes("paused", &target(CP)).await.unwrap();
    let stale: Vec<_> = writes
        .iter()
        .filter(|(at, epoch)| {
            *epoch == old_epoch && *at > stopped_at + chrono::Duration::seconds(1)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "the paused owner wrote after losing its lease: {stale:?}"
    );
    let newer = writes
        .iter()
        .filter(|(at, e)| *e > old_epoch && *at > lost_at)
        .count();
    assert!(newer >= 2, "the new owner stopped writing: {writes:?}");
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn killed_database_connections_neither_crash_nor_duplicate_and_polling_resumes() {
    let Some(db) = test_database("ha_term").await else {
        return;
    };
    let sim = common::simulator().await;
    let mut plugins = replicas(2).await;
    let ctx = ha_ds(
        "terminated",
        &sim,
        &db,
        json!({"watch": watch(&[CP, CP + 1]), "pollIntervalSeconds": 1}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &ctx, CP).await.status, 200);
    }
    let store = PgStore::new(&db).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ended = 0;
    for _ in 0..3 {
        ended += store.terminate_connections().await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(ended > 0, "no connection of the plugins was found to end");
    let before = store.writes("terminated", &target(CP)).await.unwrap().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for p in &mut plugins {
        assert!(
            p.is_running(),
            "a replica died with its database connections"
        );
    }
    for cp in [CP, CP + 1] {
        let writes = store.writes("terminated", &target(cp)).await.unwrap();
        assert!(
            writes.windows(2).all(|w| w[0].0 < w[1].0),
            "a poll stored twice: {writes:?}"
        );
        if cp == CP {
            assert!(
                writes.len() >= before + 3,
                "polling did not resume: {before} then {}",
                writes.len()
            );
        }
    }
    let (health, _) = plugins[0].health(&ctx).await;
    assert_eq!(health.status, 1, "{}", health.message);
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_429_seen_by_one_replica_pauses_every_replica() {
    let Some(db) = test_database("ha_429").await else {
        return;
    };
    let sim = common::simulator().await;
    let plugins = replicas(2).await;
    let ctx = ha_ds(
        "limited",
        &sim,
        &db,
        json!({"watch": watch(&[CP, CP + 1, CP + 2, CP + 3]), "pollIntervalSeconds": 1}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &ctx, CP).await.status, 200);
    }
    // Both replicas poll (two targets each) before the 429.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.faults().set(
        Fault::RateLimited {
            next_in: Some(Duration::from_secs(8)),
        },
        Some(1),
    );
    let fired = wait_for(Duration::from_secs(5), async || {
        sim.faults().active().is_none().then_some(())
    })
    .await;
    assert!(fired.is_some(), "no call met the 429");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_429 = sim.calls();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = sim.calls() - at_429;
    // Four targets polled every second would make 16 calls; calls already in flight when the
    // pause was written may land.
    assert!(
        during <= 2,
        "{during} upstream calls during the shared 429 pause"
    );
    PgStore::new(&db).unwrap().drop_schema().await.unwrap();
}

#[tokio::test]
async fn two_data_sources_in_one_store_never_mix() {
    let Some(db) = test_database("ha_two").await else {
        return;
    };
    let sim = common::simulator().await;
    let plugins = replicas(2).await;
    let fast = ha_ds(
        "fast",
        &sim,
        &db,
        json!({"watch": watch(&[CP]), "pollIntervalSeconds": 1}),
    );
    let slow = ha_ds(
        "slow",
        &sim,
        &db,
        json!({"watch": watch(&[CP]), "pollIntervalSeconds": 4}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &fast, CP).await.status, 200);
        assert_eq!(distribution(p, &slow, CP).await.status, 200);
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let store = PgStore::new(&db).unwrap();
    let f = store.writes("fast", &target(CP)).await.unwrap();
    let s = store.writes("slow", &target(CP)).await.unwrap();
    assert!(
        f.len() >= 6 && s.len() <= 4 && !s.is_empty(),
        "fast {} rows, slow {} rows",
        f.len(),
        s.len()
    );
    let spacing = s
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).to_std().unwrap_or_default())
        .min()
        .unwrap_or(Duration::from_secs(4));
    assert!(
        spacing >= Duration::from_secs(2),
        "the slow data source got fast rows: {s:?}"
    );
    let (_, fast_epoch) = store.lease("fast", &target(CP)).await.unwrap().unwrap();
    let (_, slow_epoch) = store.lease("slow", &target(CP)).await.unwrap().unwrap();
    assert!(fast_epoch >= 1 && slow_epoch >= 1);
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_fails_health_and_queries_naming_it_without_the_password() {
    let sim = common::simulator().await;
    let plugin = Plugin::start().await;
    let mut ctx = context(
        "nodb",
        json!({
            "host": sim.base_url().as_str().trim_end_matches('/'),
            "pollIntervalSeconds": 1,
            "requestTimeoutSeconds": 3,
            "historyDatabase": "postgres://estats@127.0.0.1:1/history",
        }),
        &[
            ("clientToken", CLIENT_TOKEN),
            ("clientSecret", CLIENT_SECRET),
            ("accessToken", ACCESS_TOKEN),
            ("historyDatabasePassword", "pw-SECRETPG-0001"),
        ],
    );
    let (health, details) = plugin.health(&ctx).await;
    assert_eq!(health.status, 2, "{}", health.message);
    assert!(
        health.message.contains("127.0.0.1:1/history"),
        "{}",
        health.message
    );
    assert_eq!(details["stage"], "store");
    let r = plugin
        .query_one(&ctx, json!({"cpCode": CP, "delivery": "STANDARD_TLS"}))
        .await;
    assert_ne!(r.status, 200);
    assert!(r.error.contains("127.0.0.1:1/history"), "{}", r.error);
    for text in [&health.message, &r.error, &plugin.logs()] {
        assert!(!text.contains("SECRETPG"), "the password leaked: {text}");
        common::assert_no_secret(text);
    }
    // A password in the URL is refused, pointing at the secure field.
    if let Some(ds) = ctx.data_source_instance_settings.as_mut() {
        ds.json_data = serde_json::to_vec(&json!({
            "host": sim.base_url().as_str().trim_end_matches('/'),
            "historyDatabase": "postgres://estats:SECRETPG@127.0.0.1/history",
        }))
        .unwrap();
        ds.last_updated_ms += 1;
    }
    let (health, _) = plugin.health(&ctx).await;
    assert_eq!(health.status, 2);
    assert!(
        health.message.contains("historyDatabasePassword"),
        "{}",
        health.message
    );
    assert!(!health.message.contains("SECRETPG"));
}

#[tokio::test]
async fn history_copy_moves_an_sqlite_history_into_postgres_idempotently() {
    let Some(db) = test_database("ha_copy").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.db");
    let history = estats::history::History::open(Some(&file)).unwrap();
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    for i in 0..5i64 {
        let at = t0 + chrono::Duration::seconds(i * 60);
        let sample: estats::sample::Sample = serde_json::from_value(json!({
            "sampled_at": at,
            "edge": {"hits": 100 + i, "errors": 1, "failure_percentage": 1.0, "codes": [{"httpStatus": 200, "hits": 99 + i, "percentage": 99.0}, {"httpStatus": 503, "hits": 1, "percentage": 1.0}]},
            "origin": {"hits": null, "errors": null, "failure_percentage": null, "codes": []},
            "top_ips": []
        }))
        .unwrap();
        history
            .record_sample("copied", &target(CP), &sample)
            .await
            .unwrap();
    }
    history
        .record_sample("other", &target(CP), &{
            let mut s = history
                .latest("copied", &target(CP))
                .await
                .unwrap()
                .unwrap();
            s.sampled_at = t0;
            s
        })
        .await
        .unwrap();
    drop(history);
    let url = format!(
        "postgres://{}@{}:{}/{}?sslmode=disable",
        db.user, db.host, db.port, db.database
    );
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
            .args(["history", "copy", "--from"])
            .arg(&file)
            .args([
                "--to",
                &url,
                "--schema",
                &db.schema,
                "--datasource",
                "copied",
            ])
            .output()
            .expect("the CLI runs")
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("5 new"), "{out}");
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(out.contains("0 new, 5 already there"), "{out}");
    let store = PgStore::new(&db).unwrap();
    let points = store
        .range(
            "copied",
            &target(CP),
            t0 - chrono::Duration::seconds(1),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(points.len(), 5);
    assert_eq!(points[4].sample.as_ref().unwrap().edge.hits, Some(104));
    assert!(store.writes("other", &target(CP)).await.unwrap().is_empty());
    // A password in --to is refused.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .args(["history", "copy", "--from"])
        .arg(&file)
        .args([
            "--to",
            "postgres://u:SECRETPG@127.0.0.1/test",
            "--datasource",
            "copied",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(err.contains("--to") && !err.contains("SECRETPG"), "{err}");
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_sample_polled_by_one_replica_is_pushed_live_by_every_replica() {
    use grafana_plugin_sdk::pluginv2::{stream_client::StreamClient, RunStreamRequest};
    let Some(db) = test_database("ha_live").await else {
        return;
    };
    let sim = common::simulator().await;
    let plugins = replicas(2).await;
    let ctx = ha_ds(
        "live",
        &sim,
        &db,
        json!({"watch": watch(&[CP]), "pollIntervalSeconds": 1}),
    );
    for p in &plugins {
        assert_eq!(distribution(p, &ctx, CP).await.status, 200);
    }
    let owner = wait_for(Duration::from_secs(10), async || {
        owner_of(&plugins.iter().collect::<Vec<_>>(), &ctx, CP).await
    })
    .await
    .expect("an owner");
    let watcher = &plugins[1 - owner];
    let query = json!({
        "queryType": "timeseries", "cpCode": CP.to_string(), "delivery": "STANDARD_TLS",
        "groupBy": "class", "metric": "hits", "live": true,
    });
    let r = watcher.query_one(&ctx, query).await;
    assert_eq!(r.status, 200, "{}", r.error);
    let channel = common::decode(&r.frames[0]).meta()["channel"]
        .as_str()
        .expect("a live channel")
        .to_string();
    let path = channel.strip_prefix("ds/live/").unwrap().to_string();
    let mut stream = StreamClient::new(watcher.channel.clone())
        .run_stream(RunStreamRequest {
            plugin_context: Some(ctx.clone()),
            path,
            data: Default::default(),
        })
        .await
        .expect("RunStream starts")
        .into_inner();
    let mut latencies = Vec::new();
    for _ in 0..4 {
        let packet = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a push within 10 s")
            .expect("stream ok")
            .expect("stream open");
        let arrived = Utc::now().timestamp_millis();
        let frame: Value = serde_json::from_slice(&packet.data).unwrap();
        let sampled = frame["data"]["values"][0][0].as_i64().expect("time");
        latencies.push(arrived - sampled);
    }
    // Stored by the owner, announced by PostgreSQL, read back and pushed by the other replica.
    latencies.sort();
    assert!(
        latencies[1] < 1000 && latencies[3] < 2000,
        "push latencies (ms) on the replica that does not poll: {latencies:?}"
    );
    PgStore::new(&db).unwrap().drop_schema().await.unwrap();
}
