//! Many targets per query (issue 14): the latency of a 50-target `distribution` query answered
//! from the polling cache, beside a one-target query of the same data source in the same run
//! (`cargo bench --bench fleet`; bench/fleet/README.md).
//!
//! The release executable is started as Grafana starts it and asked over pluginv2 gRPC; the
//! data source watches 50 CP codes of the in-process simulator with a poll interval long enough
//! that every answer of the measurement comes from the cache. The two kinds of query alternate,
//! so that both see the same machine load. `ESTATS_BENCH_ROUNDS` sets the rounds (default 300).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grafana_plugin_sdk::pluginv2::{
    data_client::DataClient, DataQuery, DataSourceInstanceSettings, PluginContext,
    QueryDataRequest, TimeRange,
};
use serde_json::{json, Value};
use tonic::transport::Channel;

const TARGETS: u64 = 50;
const FIRST_CP_CODE: u64 = 1_400_001;

fn context(host: &str, secure: &[(&str, &str)], watch: Value) -> PluginContext {
    PluginContext {
        org_id: 1,
        plugin_id: estats::PLUGIN_ID.into(),
        user: None,
        app_instance_settings: None,
        data_source_instance_settings: Some(DataSourceInstanceSettings {
            id: 1,
            name: "fleet bench".into(),
            url: String::new(),
            user: String::new(),
            database: String::new(),
            basic_auth_enabled: false,
            basic_auth_user: String::new(),
            json_data: json!({
                "host": host,
                // Longer than the run: every measured answer comes from the cache.
                "pollIntervalSeconds": 3600,
                "rateLimitPerMinute": 6000,
                "requestTimeoutSeconds": 10,
                "watch": watch,
            })
            .to_string()
            .into_bytes(),
            decrypted_secure_json_data: secure
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            last_updated_ms: 1,
            uid: "fleet-bench".into(),
        }),
    }
}

async fn ask(client: &mut DataClient<Channel>, ctx: &PluginContext, query: &Value) -> Duration {
    let now = chrono::Utc::now().timestamp_millis();
    let request = QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![DataQuery {
            ref_id: "A".into(),
            max_data_points: 1000,
            interval_ms: 1000,
            time_range: Some(TimeRange {
                from_epoch_ms: now - 3_600_000,
                to_epoch_ms: now,
            }),
            json: query.to_string().into_bytes(),
            query_type: String::new(),
        }],
    };
    let started = Instant::now();
    let response = client
        .query_data(request)
        .await
        .expect("QueryData answers")
        .into_inner();
    let took = started.elapsed();
    let answer = &response.responses["A"];
    assert!(
        answer.error.is_empty() && answer.frames.len() == 1,
        "{query}: {} {}",
        answer.status,
        answer.error
    );
    took
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ESTATS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let config = estats::simulator::SimulatorConfig {
        rate_limit_per_minute: 6000,
        ..Default::default()
    };
    let creds = config.credentials.clone();
    let sim = estats::simulator::Simulator::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("simulator starts");

    let mut child = Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .env_clear()
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "2")
        .env("GF_PLUGIN_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("plugin starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("handshake");
    let address = line.trim().split('|').nth(3).expect("address").to_string();
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("gRPC connects");
    let mut client = DataClient::new(channel);

    let codes: Vec<u64> = (FIRST_CP_CODE..FIRST_CP_CODE + TARGETS).collect();
    let watch: Value = codes.iter().map(|c| json!({"cpCode": c})).collect();
    let ctx = context(
        sim.base_url().as_str().trim_end_matches('/'),
        &[
            ("clientToken", creds.client_token.expose()),
            ("clientSecret", creds.client_secret.expose()),
            ("accessToken", creds.access_token.expose()),
        ],
        watch,
    );
    let one = json!({"cpCode": codes[0].to_string()});
    let list: Vec<String> = codes.iter().map(u64::to_string).collect();
    let fifty = json!({"cpCode": list.join(",")});
    let star = json!({"cpCode": "*"});

    // Warm: every target fetched once (and the one-target path too), then the cache answers.
    ask(&mut client, &ctx, &fifty).await;
    ask(&mut client, &ctx, &one).await;
    let calls = sim.calls();
    for _ in 0..20 {
        ask(&mut client, &ctx, &one).await;
        ask(&mut client, &ctx, &fifty).await;
    }

    let (mut t_one, mut t_fifty, mut t_star) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        t_one.push(ask(&mut client, &ctx, &one).await);
        t_fifty.push(ask(&mut client, &ctx, &fifty).await);
        t_star.push(ask(&mut client, &ctx, &star).await);
    }
    assert_eq!(
        sim.calls(),
        calls,
        "every measured answer came from the cache"
    );
    for t in [&mut t_one, &mut t_fifty, &mut t_star] {
        t.sort();
    }
    let (p50_one, p50_fifty, p50_star) = (
        quantile(&t_one, 0.5),
        quantile(&t_fifty, 0.5),
        quantile(&t_star, 0.5),
    );
    println!("fleet: distribution from the cache, {rounds} rounds, QueryData over gRPC to the release executable");
    for (name, t, p50) in [
        ("1 target (baseline)", &t_one, p50_one),
        ("50 targets, CP code list", &t_fifty, p50_fifty),
        ("50 targets, \"*\" (watch list)", &t_star, p50_star),
    ] {
        println!(
            "  {name:<32} p50 {:>9}  p90 {:>9}  {:.2}x baseline p50, {:.2}x per target",
            micros(p50),
            micros(quantile(t, 0.9)),
            p50.as_secs_f64() / p50_one.as_secs_f64(),
            p50.as_secs_f64()
                / p50_one.as_secs_f64()
                / if name.starts_with('1') {
                    1.0
                } else {
                    TARGETS as f64
                },
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
