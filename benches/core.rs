//! Core benchmarks, each next to a baseline measured in the same run so that results read as
//! ratios rather than machine-dependent absolutes:
//!
//! - signing: EdgeGrid `authorization()` vs one bare HMAC-SHA256 over the same bytes;
//! - parsing: the official eStats example into typed structs vs into `serde_json::Value`;
//! - frames: a 10,000-row `numeric-long` frame with Grafana metadata vs a bare arrow-rs IPC
//!   write of the same columns;
//! - QueryData: a cached `distribution` round trip over gRPC to the real executable vs a gRPC
//!   health check on the same connection (the protocol's floor);
//! - history chunks: a 2-hour block (60 polls, 20 edge and 23 origin codes) read from its
//!   columnar chunk into the `timeseries` builder's polls, edge only, vs walking the same polls'
//!   per-poll code blobs (schema version 1's rows, without SQLite).
//!
//! Run with `make bench` (or `cargo bench --bench core`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use criterion::{criterion_group, criterion_main, Criterion};
use estats::edgegrid::{authorization, Credentials, Secret, SignedRequest};
use estats::frame::{Field, Frame, FrameType, Values};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn creds() -> Credentials {
    Credentials {
        client_token: Secret::new("akab-client-token-xxx-xxxxxxxxxxxxxxxx"),
        client_secret: Secret::new("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="),
        access_token: Secret::new("akab-access-token-xxx-xxxxxxxxxxxxxxxx"),
        max_body: 131_072,
    }
}

fn signing(c: &mut Criterion) {
    let creds = creds();
    let url = url::Url::parse("https://akab-xxx.luna.akamaiapis.net/edge-diagnostics/v1/estats?accountSwitchKey=B-C-1IE2OH8%3A1-2RBL").unwrap();
    let body = br#"{"cpCode":1209788,"delivery":"STANDARD_TLS"}"#;
    let mut g = c.benchmark_group("sign");
    g.bench_function("baseline_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=")
                    .unwrap();
            mac.update(url.as_str().as_bytes());
            mac.update(body);
            std::hint::black_box(mac.finalize().into_bytes())
        })
    });
    g.bench_function("edgegrid_authorization", |b| {
        b.iter(|| {
            let req = SignedRequest {
                method: "POST",
                url: &url,
                headers: &[],
                body,
            };
            std::hint::black_box(authorization(
                &creds,
                &req,
                "20261125T17:00:00+0000",
                "0b1c9d2e-3f4a-4b5c-8d6e-7f8091a2b3c4",
            ))
        })
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let text = include_str!("../tests/fixtures/estats.json");
    let mut g = c.benchmark_group("parse");
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| std::hint::black_box(serde_json::from_str::<serde_json::Value>(text).unwrap()))
    });
    g.bench_function("estats_response", |b| {
        b.iter(|| {
            std::hint::black_box(
                serde_json::from_str::<estats::estats::EstatsResponse>(text).unwrap(),
            )
        })
    });
    g.finish();
}

const ROWS: usize = 10_000;

fn columns() -> (Vec<String>, Vec<String>, Vec<i64>, Vec<f64>) {
    let sides: Vec<String> = (0..ROWS)
        .map(|i| if i % 2 == 0 { "edge" } else { "origin" }.to_string())
        .collect();
    let statuses: Vec<String> = (0..ROWS).map(|i| (200 + (i % 400)).to_string()).collect();
    let hits: Vec<i64> = (0..ROWS as i64).map(|i| i * 7).collect();
    let pct: Vec<f64> = (0..ROWS).map(|i| (i % 100) as f64 / 3.0).collect();
    (sides, statuses, hits, pct)
}

fn frames(c: &mut Criterion) {
    let (sides, statuses, hits, pct) = columns();
    let mut g = c.benchmark_group("frame_10k_rows");
    g.bench_function("baseline_bare_arrow_ipc", |b| {
        b.iter(|| {
            let schema = Arc::new(Schema::new(vec![
                ArrowField::new("side", DataType::Utf8, false),
                ArrowField::new("status", DataType::Utf8, false),
                ArrowField::new("hits", DataType::Int64, false),
                ArrowField::new("percentage", DataType::Float64, false),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(&sides)),
                Arc::new(StringArray::from_iter_values(&statuses)),
                Arc::new(Int64Array::from(hits.clone())),
                Arc::new(Float64Array::from(pct.clone())),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            let mut buf = Vec::new();
            let mut w = arrow_ipc::writer::FileWriter::try_new(&mut buf, &schema).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
            drop(w);
            std::hint::black_box(buf)
        })
    });
    // Built once, as a handler builds it; what is measured is the encoding, as in the baseline
    // (which builds its Arrow arrays from borrowed columns inside the loop).
    let frame = Frame::new("distribution", FrameType::NumericLong)
        .with_field(Field::new("side", Values::Str(sides.clone())))
        .with_field(Field::new("status", Values::Str(statuses.clone())))
        .with_field(Field::new("hits", Values::I64(hits.clone())))
        .with_field(
            Field::new("percentage", Values::F64(pct.clone()))
                .with_config(serde_json::json!({"unit": "percent"})),
        );
    g.bench_function("grafana_frame_encode", |b| {
        b.iter(|| std::hint::black_box(frame.encode("A").unwrap()))
    });
    g.finish();
}

mod grpc {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    use grafana_plugin_sdk::pluginv2::{
        data_client::DataClient, DataQuery, DataSourceInstanceSettings, PluginContext,
        QueryDataRequest, TimeRange,
    };
    use tonic::transport::Channel;

    pub struct Running {
        pub child: Child,
        pub channel: Channel,
        pub handshake: std::time::Duration,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub async fn start() -> Running {
        let started = std::time::Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
            .env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("GF_PLUGIN_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("plugin starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let handshake = started.elapsed();
        let addr = line.trim().split('|').nth(3).unwrap().to_string();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Running {
            child,
            channel,
            handshake,
        }
    }

    pub fn request() -> QueryDataRequest {
        let now = chrono::Utc::now().timestamp_millis();
        QueryDataRequest {
            plugin_context: Some(PluginContext {
                org_id: 1,
                plugin_id: "akamai-estats-datasource".into(),
                user: None,
                app_instance_settings: None,
                data_source_instance_settings: Some(DataSourceInstanceSettings {
                    uid: "bench".into(),
                    json_data: br#"{"simulate": true, "pollIntervalSeconds": 3600}"#.to_vec(),
                    last_updated_ms: 1,
                    ..Default::default()
                }),
            }),
            headers: HashMap::new(),
            queries: vec![DataQuery {
                ref_id: "A".into(),
                max_data_points: 100,
                interval_ms: 1000,
                time_range: Some(TimeRange {
                    from_epoch_ms: now - 3_600_000,
                    to_epoch_ms: now,
                }),
                json: br#"{"cpCode": "1209788", "queryType": "distribution"}"#.to_vec(),
                query_type: String::new(),
            }],
        }
    }

    pub async fn query(client: &mut DataClient<Channel>) {
        let r = client.query_data(request()).await.unwrap().into_inner();
        assert_eq!(r.responses["A"].status, 200, "{}", r.responses["A"].error);
    }
}

fn query_data(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt.block_on(grpc::start());
    let mut data =
        grafana_plugin_sdk::pluginv2::data_client::DataClient::new(running.channel.clone());
    let mut health = tonic_health::pb::health_client::HealthClient::new(running.channel.clone());
    // The first query builds the instance and fetches the sample; later ones are cache hits.
    rt.block_on(grpc::query(&mut data));

    let mut g = c.benchmark_group("query_data_roundtrip");
    g.bench_function("baseline_grpc_health_check", |b| {
        b.iter(|| {
            rt.block_on(async {
                health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "plugin".into(),
                    })
                    .await
                    .unwrap();
            })
        })
    });
    g.bench_function("distribution_cached", |b| {
        b.iter(|| rt.block_on(grpc::query(&mut data)))
    });
    g.finish();

    // Percentiles are what the targets speak of; criterion reports means, so sample directly too.
    let mut times: Vec<Duration> = (0..500)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(grpc::query(&mut data));
            t.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "query_data distribution_cached: p50 {:?}, p99 {:?} over 500 calls",
        times[250], times[495]
    );

    let mut handshakes: Vec<Duration> = (0..10)
        .map(|_| rt.block_on(grpc::start()).handshake)
        .collect();
    handshakes.sort();
    let spawn_baseline: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            std::process::Command::new("true").status().unwrap();
            t.elapsed()
        })
        .collect();
    let mut spawn_baseline = spawn_baseline;
    spawn_baseline.sort();
    eprintln!(
        "handshake (process start to handshake line): p50 {:?} (baseline: spawning `true` p50 {:?})",
        handshakes[5], spawn_baseline[5]
    );
    drop(running);
}

fn chunks(c: &mut Criterion) {
    use estats::estats::model::StatusCodeCount;
    use estats::history::chunk::{self, Chunk, Select};
    use estats::history::polls::{PollsBuilder, Wanted};
    use estats::history::store::codec;
    let codes = |side: u64, n: u64, i: u64| -> Vec<StatusCodeCount> {
        (0..n)
            .map(|k| StatusCodeCount {
                http_status: (200 + k * 17 + side) as u16,
                hits: 1000 + (i * 7 + k * 13) % 97,
                percentage: ((i + k) % 100) as f64 / 4.0,
            })
            .collect()
    };
    let rows: Vec<chunk::Row> = (0..60u64)
        .map(|i| chunk::Row {
            at_ms: i as i64 * 120_000,
            ok: true,
            counts: [Some(100_000), Some(5_000), Some(12), Some(3)],
            failure_pct: [Some(0.01), Some(0.06)],
            codes: codec::encode(&codes(0, 20, i), &codes(1, 23, i)),
            ..chunk::Row::default()
        })
        .collect();
    let bytes = chunk::encode(&rows);
    let wanted = Wanted {
        edge: true,
        origin: false,
        hits: false,
        totals: false,
        bucketing: None,
    };
    let mut g = c.benchmark_group("history_block_60_polls");
    g.bench_function("baseline_per_poll_blobs", |b| {
        b.iter(|| {
            let mut builder = PollsBuilder::new(wanted);
            for r in &rows {
                builder.push_ok(r.at_ms, Some(&r.codes), [0.0; 6]);
            }
            std::hint::black_box(builder.finish())
        })
    });
    g.bench_function("columnar_chunk_edge_only", |b| {
        b.iter(|| {
            let mut builder = PollsBuilder::new(wanted);
            let select = Select {
                edge: true,
                origin: false,
                totals: false,
                failures: false,
                values: estats::history::chunk::Values::Units,
            };
            let chunk = Chunk::decode(&bytes, select).unwrap();
            chunk.walk(i64::MIN, i64::MAX, |p| {
                builder.push_ok_codes(p.at_ms, p.codes, [0.0; 6])
            });
            std::hint::black_box(builder.finish())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(50);
    targets = signing, parsing, frames, query_data, chunks
}
criterion_main!(benches);
