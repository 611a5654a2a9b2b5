//! The plugin executable as Grafana starts it (env, handshake line, pluginv2 gRPC), the
//! queries the benchmarks send it, and the memory of a process as /proc tells it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Utc};
use estats::simulator::{self};
use grafana_plugin_sdk::pluginv2::{
    data_client::DataClient, DataQuery, DataResponse, DataSourceInstanceSettings, PluginContext,
    QueryDataRequest, TimeRange,
};
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::{Context, Result, STEP_SECONDS};

pub(crate) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx(|| "binding a free port".into())?;
    Ok(l.local_addr().ctx(|| "local address".into())?.port())
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    /// Heap and other private memory (VmRSS = RssAnon + RssFile + RssShmem).
    pub(crate) anon_kib: u64,
    pub(crate) threads: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ctx(|| format!("reading /proc/{pid}/status"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Memory {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
            anon_kib: field("RssAnon:"),
            threads: field("Threads:"),
        })
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub(crate) struct Plugin {
    pub(crate) child: Child,
    pub(crate) channel: Channel,
    pub(crate) log: PathBuf,
    /// From the spawn to the handshake line on stdout (what Grafana waits for).
    pub(crate) handshake: std::time::Duration,
}

/// Extra environment for the plugin process, from `BENCH_PLUGIN_ENV="K=V K2=V2"` (for experiments
/// such as `MALLOC_ARENA_MAX=2`).
pub(crate) fn plugin_env() -> Vec<(String, String)> {
    std::env::var("BENCH_PLUGIN_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Plugin {
    pub(crate) async fn start(log: &Path) -> Result<Plugin> {
        let stderr = File::create(log).ctx(|| format!("creating {}", log.display()))?;
        let spawned = std::time::Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
            .env_clear()
            .env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("GF_PLUGIN_LOG_LEVEL", "info")
            .envs(plugin_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .ctx(|| "starting the plugin executable".into())?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("plugin stdout")?;
        let mut stdout = BufReader::new(stdout);
        stdout
            .read_line(&mut line)
            .ctx(|| "reading the plugin handshake".into())?;
        let handshake = spawned.elapsed();
        // Keep the pipe open (and drained) for as long as the plugin runs.
        std::thread::spawn(move || for _ in stdout.lines() {});
        let address = line
            .trim()
            .split('|')
            .nth(3)
            .ok_or_else(|| format!("unexpected handshake {line:?}; see {}", log.display()))?
            .to_string();
        let channel = Channel::from_shared(format!("http://{address}"))
            .ctx(|| "plugin address".into())?
            .connect()
            .await
            .ctx(|| format!("connecting to the plugin at {address}"))?;
        Ok(Plugin {
            child,
            channel,
            log: log.to_path_buf(),
            handshake,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Warnings and errors the plugin logged (hclog JSON on stderr).
    pub(crate) fn complaints(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"@level\":\"error\"") || l.contains("\"@level\":\"warn\""))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn context(uid: &str, json_data: Value) -> PluginContext {
    PluginContext {
        org_id: 1,
        plugin_id: estats::PLUGIN_ID.into(),
        user: None,
        app_instance_settings: None,
        data_source_instance_settings: Some(DataSourceInstanceSettings {
            id: 1,
            uid: uid.into(),
            name: format!("bench {uid}"),
            json_data: json_data.to_string().into_bytes(),
            decrypted_secure_json_data: [
                ("clientToken", simulator::DEMO_CLIENT_TOKEN),
                ("clientSecret", simulator::DEMO_CLIENT_SECRET),
                ("accessToken", simulator::DEMO_ACCESS_TOKEN),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            last_updated_ms: 1,
            ..Default::default()
        }),
    }
}

pub(crate) fn data_query(
    json: &Value,
    from_ms: i64,
    to_ms: i64,
    max_data_points: i64,
    interval_ms: i64,
) -> DataQuery {
    DataQuery {
        ref_id: "A".into(),
        max_data_points,
        interval_ms,
        time_range: Some(TimeRange {
            from_epoch_ms: from_ms,
            to_epoch_ms: to_ms,
        }),
        json: json.to_string().into_bytes(),
        query_type: String::new(),
    }
}

pub(crate) async fn query_data(
    client: &mut DataClient<Channel>,
    ctx: &PluginContext,
    query: DataQuery,
) -> Result<DataResponse> {
    let mut response = client
        .query_data(QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers: HashMap::new(),
            queries: vec![query],
        })
        .await
        .ctx(|| "QueryData".into())?
        .into_inner();
    let answer = response
        .responses
        .remove("A")
        .ok_or("no response for refId A")?;
    if answer.status != 200 || !answer.error.is_empty() {
        return Err(format!(
            "query failed with status {}: {}",
            answer.status, answer.error
        ));
    }
    Ok(answer)
}

/// The time-series query of the comparison: every status code of the edge side, full resolution.
pub(crate) fn edge_series_query(cp_code: u64, times: &[DateTime<Utc>]) -> DataQuery {
    edge_series_query_with(cp_code, times, times.len() as i64)
}

/// The same over `times`, with at most `max_data_points` rows (fewer than `times` downsamples).
pub(crate) fn edge_series_query_with(
    cp_code: u64,
    times: &[DateTime<Utc>],
    max_data_points: i64,
) -> DataQuery {
    let json = json!({
        "queryType": "timeseries", "targetType": "cpCode", "cpCode": cp_code.to_string(),
        "side": "edge", "groupBy": "code", "metric": "percentage",
    });
    data_query(
        &json,
        times[0].timestamp_millis(),
        times[times.len() - 1].timestamp_millis(),
        max_data_points,
        STEP_SECONDS * 1000,
    )
}

/// (status label, values) of each numeric field of a `timeseries-wide` frame.
pub(crate) type LabelledValues = Vec<(String, Vec<Option<f64>>)>;

/// The row count and value fields of a `timeseries-wide` frame.
pub(crate) fn decode_wide(bytes: &[u8]) -> Result<(usize, LabelledValues)> {
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
        .ctx(|| "decoding the plugin's frame".into())?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .ctx(|| "decoding the plugin's frame".into())?;
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let mut out = Vec::new();
    for (i, field) in schema.fields().iter().enumerate().skip(1) {
        let labels: Value = field
            .metadata()
            .get("labels")
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        let status = labels["status"].as_str().unwrap_or("?").to_string();
        let mut values = Vec::with_capacity(rows);
        for b in &batches {
            let col = b
                .column(i)
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .ok_or("a value field of the frame is not float64")?;
            values.extend(col.iter());
        }
        out.push((status, values));
    }
    Ok((rows, out))
}
