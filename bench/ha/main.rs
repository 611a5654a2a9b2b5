//! High-availability benchmark (`cargo bench --bench ha`; `docs/high-availability.md`), against
//! the PostgreSQL of `ESTATS_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and the in-process simulator. Each number is printed beside its baseline from the same run:
//!
//! 1. upstream calls per minute with 1, 2 and 3 replicas sharing the store (goal: equal), beside
//!    the same replicas each with its own embedded history (today: N times as many);
//! 2. `timeseries` read of 7 days at 120 s (5,040 polls) from PostgreSQL beside SQLite: p50 of
//!    the store read, `Store::polls` (what the handler reads; goal: within 2x) and `Store::range`;
//! 3. resident memory of the plugin executable serving 100 watched targets with the shared store,
//!    beside the same with the embedded history.
//!
//! Replicas of (1) are monitors in this process, each with a store of its own replica id: the
//! protocol is the same as between processes. `ESTATS_BENCH_SECONDS` sets the measuring window
//! of (1) (default 30 s per configuration); `ESTATS_BENCH_PARTS` the parts to run (default
//! `123`; `2` for the read only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use estats::estats::{Client, Fetched, UpstreamError};
use estats::history::polls::Wanted;
use estats::history::History;
use estats::poller::{Monitor, MonitorSettings};
use estats::sample::Sample;
use estats::settings::HistoryDatabase;
use estats::simulator::{Simulator, SimulatorConfig};
use estats::store::{test_database, PgBudget, PgStore, Store};
use estats::target::Target;
use estats::upstream::{Fetch, SharedBudget, Upstream, UpstreamConfig};
use futures::future::BoxFuture;

struct Direct(Client);

impl Fetch for Direct {
    fn estats<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Fetched, UpstreamError>> {
        Box::pin(self.0.estats(target))
    }
}

fn targets(n: u64) -> Vec<Target> {
    (0..n)
        .map(|i| Target::from_key(&format!("cp:{}/STANDARD_TLS", 1_209_788 + i)).unwrap())
        .collect()
}

fn client(sim: &Simulator) -> Client {
    Client::new(
        sim.base_url(),
        SimulatorConfig::default().credentials,
        None,
        Duration::from_secs(10),
    )
    .expect("client")
}

async fn calls_per_minute(
    sim: &Simulator,
    db: Option<&HistoryDatabase>,
    replicas: usize,
    window: Duration,
) -> f64 {
    let interval = Duration::from_secs(2);
    let watch = targets(10);
    let mut monitors = Vec::new();
    for r in 0..replicas {
        let (store, shared): (Store, Option<Arc<dyn SharedBudget>>) = match db {
            Some(db) => {
                let pg = PgStore::with_replica(db, format!("bench-{r}")).unwrap();
                let budget: Arc<dyn SharedBudget> =
                    Arc::new(PgBudget::new(pg.clone(), "bench", "bench", 6000));
                (Store::Shared(pg), Some(budget))
            }
            None => (Store::Embedded(History::open(None).unwrap()), None),
        };
        let upstream = Arc::new(Upstream::with_shared_budget(
            Arc::new(Direct(client(sim))),
            UpstreamConfig::new(6000),
            shared,
        ));
        let mut settings = MonitorSettings::new(interval, Duration::from_secs(3600), watch.clone());
        settings.first_sample_wait = Duration::from_secs(10);
        let monitor = Monitor::new("bench".into(), settings, upstream, store);
        monitor.start_watch();
        monitors.push(monitor);
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = sim.calls();
    tokio::time::sleep(window).await;
    let calls = sim.calls() - before;
    for m in &monitors {
        m.shutdown();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    calls as f64 * 60.0 / window.as_secs_f64()
}

fn sample_at(at: chrono::DateTime<Utc>, i: u64) -> Sample {
    serde_json::from_value(serde_json::json!({
        "sampled_at": at,
        "edge": {"hits": 1000 + i % 100, "errors": 10, "failure_percentage": 1.0, "codes": [
            {"httpStatus": 200, "hits": 900 + i % 100, "percentage": 90.0},
            {"httpStatus": 304, "hits": 80, "percentage": 8.0},
            {"httpStatus": 404, "hits": 10, "percentage": 1.0},
            {"httpStatus": 503, "hits": 10, "percentage": 1.0}]},
        "origin": {"hits": 500, "errors": 5, "failure_percentage": 1.0, "codes": [
            {"httpStatus": 200, "hits": 495, "percentage": 99.0},
            {"httpStatus": 503, "hits": 5, "percentage": 1.0}]},
        "top_ips": []
    }))
    .expect("sample")
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The store's part of a 7-day `timeseries` query: reading the polls as the series builder
/// takes them (`Store::polls`, what the handler calls; the series build after it is the same
/// code for both stores), and the full samples (`Store::range`). The two stores are timed in
/// turns, so that a change of the machine's load hits both alike. Returns the p50s of SQLite
/// then PostgreSQL.
async fn read_p50s(
    lite: &Store,
    pg: &Store,
    target: &Target,
    polls: bool,
) -> (Duration, Duration, usize, usize) {
    let to = Utc::now();
    let from = to - chrono::Duration::days(7);
    let wanted = Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: false,
        bucketing: None,
    };
    let (mut t_lite, mut t_pg) = (Vec::new(), Vec::new());
    let (mut n_lite, mut n_pg) = (0, 0);
    for round in 0..(ROUNDS + 3) {
        for (store, times, n) in [(lite, &mut t_lite, &mut n_lite), (pg, &mut t_pg, &mut n_pg)] {
            let started = Instant::now();
            *n = if polls {
                let p = store
                    .polls("bench", target, from, to, wanted)
                    .await
                    .unwrap();
                std::hint::black_box(p).len()
            } else {
                let p = store.range("bench", target, from, to).await.unwrap();
                std::hint::black_box(p).len()
            };
            // The first rounds warm caches and prepared statements.
            if round >= 3 {
                times.push(started.elapsed());
            }
        }
    }
    (p50(t_lite), p50(t_pg), n_lite, n_pg)
}

const ROUNDS: usize = 25;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let Some(db) = test_database("bench_ha").await else {
        return;
    };
    let window = Duration::from_secs(
        std::env::var("ESTATS_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let config = SimulatorConfig {
        rate_limit_per_minute: 100_000,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("simulator");

    let parts = std::env::var("ESTATS_BENCH_PARTS").unwrap_or_else(|_| "123".into());
    let part = |n: u8| parts.contains(char::from(b'0' + n));

    if part(1) {
        println!("1. upstream calls per minute, 10 targets polled every 2 s (ideal 300):");
    }
    let mut base = 0.0;
    for replicas in (1..=3).filter(|_| part(1)) {
        let schema_db = HistoryDatabase {
            schema: estats::store::test_schema("bench_calls"),
            ..db.clone()
        };
        let shared = calls_per_minute(&sim, Some(&schema_db), replicas, window).await;
        let embedded = calls_per_minute(&sim, None, replicas, window).await;
        if replicas == 1 {
            base = shared;
        }
        println!(
            "   {replicas} replica(s): shared store {shared:.0}/min ({:.2}x of 1 replica), embedded histories {embedded:.0}/min ({:.2}x)",
            shared / base,
            embedded / base
        );
        PgStore::new(&schema_db)
            .unwrap()
            .drop_schema()
            .await
            .unwrap();
    }

    if part(2) {
        println!(
            "2. timeseries, 7 days at 120 s (5,040 polls), the store read, p50 of {ROUNDS} (load {}):",
            load()
        );
        let target = targets(1).remove(0);
        let dir = tempfile::tempdir().unwrap();
        let sqlite = History::open(Some(&dir.path().join("bench.db"))).unwrap();
        let pg = PgStore::with_replica(&db, "bench".into()).unwrap();
        let now = Utc::now();
        for i in 0..5040u64 {
            let at = now - chrono::Duration::seconds(120 * i as i64);
            let s = sample_at(at, i);
            sqlite.record_sample("bench", &target, &s).await.unwrap();
            pg.record_sample("bench", &target, &s, None).await.unwrap();
        }
        let (lite, post) = (Store::Embedded(sqlite), Store::Shared(pg.clone()));
        for (polls, what) in [(true, "polls (timeseries)"), (false, "range (samples)")] {
            let (l, p, n1, n2) = read_p50s(&lite, &post, &target, polls).await;
            println!(
                "   {what}: SQLite {l:?} ({n1} polls), PostgreSQL {p:?} ({n2} polls): {:.2}x (goal <= 2x)",
                p.as_secs_f64() / l.as_secs_f64()
            );
        }
        println!("   load after: {}", load());
        pg.drop_schema().await.unwrap();
    }

    if part(3) {
        println!("3. resident memory of a plugin process with 100 watched targets (after 20 s):");
    }
    for shared in [false, true].into_iter().filter(|_| part(3)) {
        let rss = plugin_rss(&sim, shared.then_some(&db)).await;
        println!(
            "   {}: {} MiB",
            if shared {
                "shared PostgreSQL store"
            } else {
                "embedded memory history"
            },
            rss / 1024
        );
    }
    if let Ok(store) = PgStore::new(&db) {
        let _ = store.drop_schema().await;
    }
}

/// Starts the executable as Grafana would, sends one query for a data source watching 100
/// targets, and reads its RSS after 20 s of polling.
async fn plugin_rss(sim: &Simulator, db: Option<&HistoryDatabase>) -> u64 {
    use grafana_plugin_sdk::pluginv2::{data_client::DataClient, DataQuery, QueryDataRequest};
    use std::io::BufRead;
    let exe = std::env::var("ESTATS_BENCH_EXE").unwrap_or_else(|_| {
        let here = std::env::current_exe().unwrap();
        let dir = here
            .parent()
            .and_then(|d| d.parent())
            .unwrap()
            .to_path_buf();
        dir.join("gpx_akamai_estats").display().to_string()
    });
    let mut child = std::process::Command::new(&exe)
        .env_clear()
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{exe}: {e} (build it with cargo build, or set ESTATS_BENCH_EXE)")
        });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().split('|').nth(3).unwrap().to_string();
    let mut client = DataClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let watch: Vec<_> = targets(100)
        .iter()
        .map(|t| serde_json::json!({"cpCode": t.key()[3..10].parse::<u64>().unwrap(), "delivery": "STANDARD_TLS"}))
        .collect();
    let mut json = serde_json::json!({
        "host": sim.base_url().as_str().trim_end_matches('/'),
        "pollIntervalSeconds": 10,
        "rateLimitPerMinute": 6000,
        "watch": watch,
    });
    let mut secure = std::collections::HashMap::from([
        (
            "clientToken".to_string(),
            SimulatorConfig::default()
                .credentials
                .client_token
                .expose()
                .to_string(),
        ),
        (
            "clientSecret".to_string(),
            SimulatorConfig::default()
                .credentials
                .client_secret
                .expose()
                .to_string(),
        ),
        (
            "accessToken".to_string(),
            SimulatorConfig::default()
                .credentials
                .access_token
                .expose()
                .to_string(),
        ),
    ]);
    if let Some(db) = db {
        json["historyDatabase"] = format!(
            "postgres://{}@{}:{}/{}?sslmode=disable",
            db.user, db.host, db.port, db.database
        )
        .into();
        json["historyDatabaseSchema"] = db.schema.clone().into();
        if let Some(p) = &db.password {
            secure.insert("historyDatabasePassword".into(), p.expose().to_string());
        }
    }
    let ctx = grafana_plugin_sdk::pluginv2::PluginContext {
        org_id: 1,
        plugin_id: estats::PLUGIN_ID.into(),
        data_source_instance_settings: Some(
            grafana_plugin_sdk::pluginv2::DataSourceInstanceSettings {
                id: 1,
                uid: "bench-rss".into(),
                name: "bench".into(),
                json_data: serde_json::to_vec(&json).unwrap(),
                decrypted_secure_json_data: secure,
                last_updated_ms: 1,
                ..Default::default()
            },
        ),
        ..Default::default()
    };
    let query = DataQuery {
        ref_id: "A".into(),
        json: serde_json::to_vec(
            &serde_json::json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"}),
        )
        .unwrap(),
        ..Default::default()
    };
    let _ = client
        .query_data(QueryDataRequest {
            plugin_context: Some(ctx),
            headers: Default::default(),
            queries: vec![query],
        })
        .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    rss
}
