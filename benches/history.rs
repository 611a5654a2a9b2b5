//! The benchmarks of issue #3, against the setup the plugin replaces (exporter + Prometheus):
//!
//! 1. `compare`: 7 days of 2-minute samples of one target (5,040 samples) imported into the
//!    plugin's SQLite history with `history import`, the same values backfilled into Prometheus
//!    with `promtool tsdb create-blocks-from openmetrics`; then the full-resolution 7-day edge
//!    series (every status code) asked from both on loopback, alternating: plugin `timeseries`
//!    QueryData over gRPC vs Prometheus `query_range` with step 120 s. Reports p50/p90 of both,
//!    their ratio, response sizes and both processes' RSS, and checks that both return the same
//!    values.
//! 2. `memory`: 100 targets x 7 days imported, the plugin started on that history with a data
//!    source watching all 100, one full-resolution 7-day query per target; reports VmRSS/VmHWM.
//! 3. `viewers`: the provisioned dashboard's queries sent by 1, 10 and 100 concurrent viewers,
//!    each refreshing every 5 s, against a signature-verifying simulator; reports the upstream
//!    calls per minute, which must not depend on the number of viewers.
//!
//! Run `bench/run.sh` (installs Prometheus when missing) or `cargo bench --bench history`.
//! Without `prometheus`/`promtool` on PATH the comparison is skipped with a message. Settings
//! come from the environment (see `Config::from_env` and bench/README.md). Run without
//! `--bench` (as `cargo test --benches` does), it only checks that the JSON lines and the
//! OpenMetrics text it generates carry the same values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use estats::estats::model::StatusCodeCount;
use estats::estats::{EstatsRequest, EstatsResponse};
use estats::history::import::Line;
use estats::sample::{Sample, Side};
use estats::simulator::{self, Simulator, SimulatorConfig};
use estats::target::{Target, TargetSpec};
use grafana_plugin_sdk::pluginv2::{
    data_client::DataClient, DataQuery, DataResponse, DataSourceInstanceSettings, PluginContext,
    QueryDataRequest, TimeRange,
};
use serde_json::{json, Value};
use tonic::transport::Channel;

/// Seconds between two samples: the old exporter's (and the plugin's default) poll interval.
const STEP_SECONDS: i64 = 120;
/// 7 days of 2-minute samples.
const SAMPLES: usize = 5_040;
const COMPARE_CP_CODE: u64 = 1_209_788;
const METRIC: &str = "estats_status_share_percent";
const DASHBOARD: &str = include_str!("../provisioning/dashboards/akamai-estats.json");

type Result<T> = std::result::Result<T, String>;

trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}

struct Config {
    parts: BTreeSet<String>,
    runs: usize,
    warmup: usize,
    targets: u64,
    parallel: usize,
    viewers: Vec<usize>,
    viewer_window: Duration,
    refresh: Duration,
    prometheus: String,
    promtool: String,
    out_dir: PathBuf,
    keep: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.to_string());
        let number = |name: &str, default: &str| -> Result<u64> {
            let raw = var(name, default);
            raw.trim()
                .parse()
                .ctx(|| format!("{name}={raw:?} must be a whole number"))
        };
        let parts: BTreeSet<String> = var("BENCH_ONLY", "compare,memory,viewers")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for p in &parts {
            if !["compare", "memory", "viewers"].contains(&p.as_str()) {
                return Err(format!(
                    "BENCH_ONLY names {p:?}: use a comma-separated subset of compare,memory,viewers"
                ));
            }
        }
        let viewers = var("BENCH_VIEWERS", "1,10,100")
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("BENCH_VIEWERS: {s:?} is not a positive whole number"))
            })
            .collect::<Result<Vec<_>>>()?;
        let target_dir = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        Ok(Config {
            parts,
            runs: number("BENCH_RUNS", "25")?.max(1) as usize,
            warmup: number("BENCH_WARMUP", "5")? as usize,
            targets: number("BENCH_TARGETS", "100")?.max(1),
            parallel: number("BENCH_PARALLEL", "4")?.max(1) as usize,
            viewers,
            viewer_window: Duration::from_secs(number("BENCH_VIEWER_SECONDS", "60")?.max(10)),
            refresh: Duration::from_secs(number("BENCH_REFRESH_SECONDS", "5")?.max(1)),
            prometheus: var("PROMETHEUS", "prometheus"),
            promtool: var("PROMTOOL", "promtool"),
            out_dir: std::env::var("BENCH_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|_| target_dir.join("bench-history")),
            keep: std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Data: the simulator's deterministic answers, as JSON lines and as OpenMetrics text.

/// The instants of 7 days of 2-minute samples ending at the last whole 2 minutes before `now`.
fn instants(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let end = now.timestamp().div_euclid(STEP_SECONDS) * STEP_SECONDS;
    (0..SAMPLES as i64)
        .map(|i| {
            Utc.timestamp_opt(end - (SAMPLES as i64 - 1 - i) * STEP_SECONDS, 0)
                .single()
                .expect("whole seconds in chrono's range")
        })
        .collect()
}

/// Status codes per side in every generated sample (the "20 status codes per side").
const CODES_PER_SIDE: usize = 20;
/// Codes added, in this order, to what the simulator answered until a side has
/// [`CODES_PER_SIDE`]: the rarer statuses a busy property shows over a day.
const RARE_CODES: [u16; 24] = [
    201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 410, 412, 416, 429,
    499, 500, 502, 503, 504,
];

/// SplitMix64 step: deterministic noise for the rare codes.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tops a side's distribution up to [`CODES_PER_SIDE`] codes, the new ones' hits taken from 200,
/// and recomputes its percentages (two decimals, as eStats), errors and failure percentage.
fn widen(
    codes: &mut Option<Vec<StatusCodeCount>>,
    hits: Option<u64>,
    seed: u64,
) -> (u64, Option<f64>) {
    let total = hits.unwrap_or(0);
    let list = codes.get_or_insert_with(Vec::new);
    for code in RARE_CODES {
        if list.len() >= CODES_PER_SIDE {
            break;
        }
        if list.iter().any(|c| c.http_status == code) {
            continue;
        }
        // 0.01 % to 0.3 % of the hits, at least one.
        let share = 0.0001 + (mix(seed ^ u64::from(code)) % 2900) as f64 / 1_000_000.0;
        let taken = ((total as f64 * share).round() as u64).max(1);
        match list
            .iter_mut()
            .find(|c| c.http_status == 200 && c.hits > taken)
        {
            Some(ok) => ok.hits -= taken,
            None => continue,
        }
        list.push(StatusCodeCount {
            http_status: code,
            hits: taken,
            percentage: 0.0,
        });
    }
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    for c in list.iter_mut() {
        c.percentage = if total == 0 {
            0.0
        } else {
            round2(c.hits as f64 * 100.0 / total as f64)
        };
    }
    let errors: u64 = list
        .iter()
        .filter(|c| c.http_status >= 400)
        .map(|c| c.hits)
        .sum();
    (
        errors,
        (total > 0).then(|| round2(errors as f64 * 100.0 / total as f64)),
    )
}

/// The simulator's answer for `target` at `at`, widened to [`CODES_PER_SIDE`] codes per side. Top
/// IPs are dropped except on the newest sample: the history keeps them for the latest sample
/// only, and a week of them would only inflate the import file.
fn answer(target: &Target, at: DateTime<Utc>, keep_top_ips: bool) -> EstatsResponse {
    let mut response = simulator::generate(&EstatsRequest::from(target), at);
    if let Some(r) = response.result.as_mut() {
        let key = target.key().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let seed = mix(key ^ mix(at.timestamp() as u64));
        let (errors, pct) = widen(&mut r.edge_status_code_distribution, r.edge_hits, seed);
        (r.edge_errors, r.edge_failure_percentage) = (Some(errors), pct);
        let (errors, pct) = widen(
            &mut r.origin_status_code_distribution,
            r.origin_hits,
            mix(seed),
        );
        (r.origin_errors, r.origin_failure_percentage) = (Some(errors), pct);
        if !keep_top_ips {
            r.top_edge_ips_with_error = None;
            r.top_edge_ips_with_error_from_origin = None;
            r.top_edge_ips_with_success = None;
            r.top_edge_ips_with_success_from_origin = None;
        }
    }
    response
}

fn write_line(
    out: &mut impl Write,
    target: &Target,
    at: DateTime<Utc>,
    response: EstatsResponse,
) -> Result<()> {
    let line = Line {
        sampled_at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        target: TargetSpec::from(target),
        response: Some(response),
        error: None,
    };
    serde_json::to_writer(&mut *out, &line).ctx(|| "writing a JSON line".into())?;
    out.write_all(b"\n").ctx(|| "writing a JSON line".into())
}

/// Writes the JSON lines of `targets` x `times` (target by target, as `history export` does).
fn write_jsonl(path: &Path, targets: &[Target], times: &[DateTime<Utc>]) -> Result<u64> {
    let file = File::create(path).ctx(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut lines = 0;
    for target in targets {
        for (i, at) in times.iter().enumerate() {
            write_line(
                &mut out,
                target,
                *at,
                answer(target, *at, i + 1 == times.len()),
            )?;
            lines += 1;
        }
    }
    out.flush().ctx(|| format!("writing {}", path.display()))?;
    Ok(lines)
}

/// Per (side, status code) the value at each instant, as the plugin sees it: a code absent from
/// a sample is 0 in that sample (DESIGN.md), so Prometheus gets an explicit 0 there too.
type Shares = BTreeMap<(Side, u16), Vec<f64>>;

fn shares(target: &Target, times: &[DateTime<Utc>]) -> Shares {
    let samples: Vec<Sample> = times
        .iter()
        .map(|at| Sample::from_response(*at, &answer(target, *at, false)))
        .collect();
    let mut out = Shares::new();
    for side in Side::BOTH {
        let codes: BTreeSet<u16> = samples
            .iter()
            .flat_map(|s| s.side(side).codes.iter().map(|c| c.http_status))
            .collect();
        for code in codes {
            let values = samples
                .iter()
                .map(|s| {
                    s.side(side)
                        .codes
                        .iter()
                        .filter(|c| c.http_status == code)
                        .map(|c| c.percentage)
                        .sum()
                })
                .collect();
            out.insert((side, code), values);
        }
    }
    out
}

/// OpenMetrics text for promtool: one gauge family, series after series, each in time order.
fn write_openmetrics(
    out: &mut impl Write,
    cp_code: u64,
    times: &[DateTime<Utc>],
    shares: &Shares,
) -> Result<()> {
    let err = |e: std::io::Error| format!("writing OpenMetrics: {e}");
    writeln!(
        out,
        "# HELP {METRIC} Share of the side's hits with this HTTP status (eStats percentage)."
    )
    .map_err(err)?;
    writeln!(out, "# TYPE {METRIC} gauge").map_err(err)?;
    for ((side, code), values) in shares {
        for (at, v) in times.iter().zip(values) {
            writeln!(
                out,
                "{METRIC}{{cp_code=\"{cp_code}\",side=\"{}\",status=\"{code}\"}} {v} {}",
                side.as_str(),
                at.timestamp()
            )
            .map_err(err)?;
        }
    }
    writeln!(out, "# EOF").map_err(err)
}

// ---------------------------------------------------------------------------------------------
// Processes: the plugin as Grafana starts it, Prometheus, and their memory.

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx(|| "binding a free port".into())?;
    Ok(l.local_addr().ctx(|| "local address".into())?.port())
}

#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
    /// Heap and other private memory (VmRSS = RssAnon + RssFile + RssShmem).
    anon_kib: u64,
    threads: u64,
}

impl Memory {
    fn of(pid: u32) -> Result<Memory> {
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

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

struct Plugin {
    child: Child,
    channel: Channel,
    log: PathBuf,
}

/// Extra environment for the plugin process, from `BENCH_PLUGIN_ENV="K=V K2=V2"` (for experiments
/// such as `MALLOC_ARENA_MAX=2`).
fn plugin_env() -> Vec<(String, String)> {
    std::env::var("BENCH_PLUGIN_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Plugin {
    async fn start(log: &Path) -> Result<Plugin> {
        let stderr = File::create(log).ctx(|| format!("creating {}", log.display()))?;
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
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Warnings and errors the plugin logged (hclog JSON on stderr).
    fn complaints(&self) -> Vec<String> {
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

fn context(uid: &str, json_data: Value) -> PluginContext {
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

fn data_query(
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

async fn query_data(
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
fn edge_series_query(cp_code: u64, times: &[DateTime<Utc>]) -> DataQuery {
    let json = json!({
        "queryType": "timeseries", "targetType": "cpCode", "cpCode": cp_code.to_string(),
        "side": "edge", "groupBy": "code", "metric": "percentage",
    });
    data_query(
        &json,
        times[0].timestamp_millis(),
        times[times.len() - 1].timestamp_millis(),
        times.len() as i64,
        STEP_SECONDS * 1000,
    )
}

/// (status label, values) of each numeric field of a `timeseries-wide` frame.
type LabelledValues = Vec<(String, Vec<Option<f64>>)>;

/// The row count and value fields of a `timeseries-wide` frame.
fn decode_wide(bytes: &[u8]) -> Result<(usize, LabelledValues)> {
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

struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn prometheus_metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Default)]
struct Report {
    sections: Vec<String>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn section(&mut self, text: String) {
        println!("{text}");
        self.sections.push(text);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Plugin vs Prometheus.

async fn compare(cfg: &Config, work: &Path, sim: &Simulator, report: &mut Report) -> Result<()> {
    if !found(&cfg.prometheus) || !found(&cfg.promtool) {
        report.section(format!(
            "## Plugin vs Prometheus\n\nSkipped: `{}` or `{}` is not installed (`apt-get install prometheus`, or set PROMETHEUS/PROMTOOL; bench/run.sh installs it).\n",
            cfg.prometheus, cfg.promtool
        ));
        return Ok(());
    }
    let times = instants(Utc::now());
    let target = Target::cp_code(COMPARE_CP_CODE, None);
    let shares = shares(&target, &times);
    let edge_codes = shares.keys().filter(|(s, _)| *s == Side::Edge).count();
    let origin_codes = shares.len() - edge_codes;
    println!("compare: {SAMPLES} samples of {}, {edge_codes} edge and {origin_codes} origin status codes", target.key());

    // Plugin side: JSON lines through `history import`.
    let jsonl = work.join("one-target.jsonl");
    write_jsonl(&jsonl, std::slice::from_ref(&target), &times)?;
    let db = work.join("one-target.db");
    let uid = "bench-compare";
    let started = Instant::now();
    run_import(&db, uid, &jsonl)?;
    let import_time = started.elapsed();

    // Prometheus side: the same values through promtool.
    let om = work.join("one-target.om");
    {
        let file = File::create(&om).ctx(|| format!("creating {}", om.display()))?;
        let mut out = BufWriter::new(file);
        write_openmetrics(&mut out, COMPARE_CP_CODE, &times, &shares)?;
        out.flush().ctx(|| format!("writing {}", om.display()))?;
    }
    let tsdb = work.join("prometheus-data");
    let started = Instant::now();
    let promtool = Command::new(&cfg.promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .ctx(|| format!("running {}", cfg.promtool))?;
    if !promtool.status.success() {
        return Err(format!(
            "promtool tsdb create-blocks-from openmetrics failed: {}",
            String::from_utf8_lossy(&promtool.stderr)
        ));
    }
    let backfill_time = started.elapsed();
    let config = work.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )
    .ctx(|| format!("writing {}", config.display()))?;
    let port = free_port()?;
    let prom_log =
        File::create(work.join("prometheus.log")).ctx(|| "creating prometheus.log".into())?;
    let prom = Prometheus {
        child: Command::new(&cfg.prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .ctx(|| format!("starting {}", cfg.prometheus))?,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .ctx(|| "HTTP client".into())?;
    let started = Instant::now();
    loop {
        let ready = http.get(format!("{}/-/ready", prom.base)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "Prometheus not ready after 60 s; see {}",
                work.join("prometheus.log").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let blocks_at_start = prometheus_metric(&http, &prom.base, "prometheus_tsdb_blocks_loaded")
        .await
        .unwrap_or(0.0);
    // promtool writes 2-hour blocks; a Prometheus that ran for a week holds compacted ones. Its
    // first compaction runs a minute after start: let it finish so that Prometheus is measured
    // as it would be in service.
    println!("compare: Prometheus ready with {blocks_at_start} blocks; waiting for its compaction to settle");
    let mut last = blocks_at_start;
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let blocks = prometheus_metric(&http, &prom.base, "prometheus_tsdb_blocks_loaded")
            .await
            .unwrap_or(last);
        if blocks != last {
            last = blocks;
            stable_since = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(70)
            && stable_since.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(240) {
            println!("compare: Prometheus still compacting after 4 minutes; measuring anyway");
            break;
        }
    }
    let compactions = prometheus_metric(&http, &prom.base, "prometheus_tsdb_compactions_total")
        .await
        .unwrap_or(0.0);

    // The plugin, on the imported history, with an upstream that must not be called.
    let calls_before = sim.calls();
    let plugin = Plugin::start(&work.join("plugin-compare.log")).await?;
    let ctx = context(
        uid,
        json!({
            "host": sim.base_url().as_str().trim_end_matches('/'),
            "pollIntervalSeconds": 3600, "retentionHours": 720,
            "historyPath": db.display().to_string(),
        }),
    );
    let mut client = DataClient::new(plugin.channel.clone());
    let prom_url = format!("{}/api/v1/query_range", prom.base);
    let (start_s, end_s) = (times[0].timestamp(), times[times.len() - 1].timestamp());
    let prom_params = [
        ("query", format!("{METRIC}{{side=\"edge\"}}")),
        ("start", start_s.to_string()),
        ("end", end_s.to_string()),
        ("step", STEP_SECONDS.to_string()),
    ];
    let ask_prometheus = || {
        let (http, prom_url, prom_params) = (&http, &prom_url, &prom_params);
        async move {
            let r = http
                .get(prom_url)
                .query(prom_params)
                .send()
                .await
                .ctx(|| "Prometheus query_range".into())?;
            let status = r.status();
            let body = r.bytes().await.ctx(|| "Prometheus answer".into())?;
            if !status.is_success() {
                return Err(format!(
                    "Prometheus answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Ok::<_, String>(body)
        }
    };

    // Same values on both sides before timing anything.
    let answer = query_data(
        &mut client,
        &ctx,
        edge_series_query(COMPARE_CP_CODE, &times),
    )
    .await?;
    let plugin_bytes: usize = answer.frames.iter().map(Vec::len).sum();
    let (rows, plugin_series) = decode_wide(
        answer
            .frames
            .first()
            .ok_or("the plugin answered no frame")?,
    )?;
    let prom_body = ask_prometheus().await?;
    let prom_json: Value =
        serde_json::from_slice(&prom_body).ctx(|| "Prometheus answer is not JSON".into())?;
    let prom_series: BTreeMap<String, Vec<f64>> = prom_json["data"]["result"]
        .as_array()
        .ok_or("Prometheus answer has no data.result")?
        .iter()
        .map(|s| {
            let status = s["metric"]["status"].as_str().unwrap_or("?").to_string();
            let values = s["values"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(|v| v[1].as_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            (status, values)
        })
        .collect();
    let mut mismatches = 0usize;
    for (status, values) in &plugin_series {
        match prom_series.get(status) {
            Some(p) if p.len() == values.len() => {
                mismatches += values
                    .iter()
                    .zip(p)
                    .filter(|(a, b)| a.is_none_or(|a| (a - **b).abs() > 1e-9))
                    .count();
            }
            _ => mismatches += values.len(),
        }
    }
    let same = mismatches == 0 && plugin_series.len() == prom_series.len() && rows == SAMPLES;
    println!(
        "compare: plugin {} series x {rows} rows, Prometheus {} series x {} points, {mismatches} differing values",
        plugin_series.len(),
        prom_series.len(),
        prom_series.values().next().map_or(0, Vec::len)
    );
    if !same {
        return Err(format!(
            "plugin and Prometheus disagree: plugin {} series x {rows} rows, Prometheus {} series, {mismatches} differing values",
            plugin_series.len(),
            prom_series.len()
        ));
    }

    // Alternating, after a warm-up.
    let (mut plugin_times, mut prom_times) = (Vec::new(), Vec::new());
    for i in 0..cfg.warmup + cfg.runs {
        let t = Instant::now();
        query_data(
            &mut client,
            &ctx,
            edge_series_query(COMPARE_CP_CODE, &times),
        )
        .await?;
        let p = t.elapsed();
        let t = Instant::now();
        ask_prometheus().await?;
        let q = t.elapsed();
        if i >= cfg.warmup {
            plugin_times.push(p);
            prom_times.push(q);
        }
    }
    plugin_times.sort();
    prom_times.sort();
    let plugin_mem = Memory::of(plugin.pid())?;
    let prom_mem = Memory::of(prom.child.id())?;
    let upstream_calls = sim.calls() - calls_before;
    let complaints = plugin.complaints();
    drop(plugin);
    drop(prom);
    let [read, series, encode] = breakdown(&db, uid, &target, &times, cfg.runs).await?;

    let (p50, q50) = (percentile(&plugin_times, 0.5), percentile(&prom_times, 0.5));
    let ratio = p50.as_secs_f64() / q50.as_secs_f64();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Plugin vs Prometheus: 7 days, full resolution, one target\n"
    );
    let _ = writeln!(
        s,
        "{SAMPLES} samples of {} ({edge_codes} edge, {origin_codes} origin status codes); query: every edge status code, {SAMPLES} points each, {} runs each after {} warm-up, alternating, loopback.\n",
        target.key(),
        cfg.runs,
        cfg.warmup
    );
    let _ = writeln!(
        s,
        "| | p50 | p90 | min | max | answer size | VmRSS after | VmHWM |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| plugin `timeseries` QueryData (gRPC, Arrow) | {} | {} | {} | {} | {} KiB | {} | {} |",
        ms(p50),
        ms(percentile(&plugin_times, 0.9)),
        ms(plugin_times[0]),
        ms(plugin_times[plugin_times.len() - 1]),
        plugin_bytes / 1024,
        mib(plugin_mem.rss_kib),
        mib(plugin_mem.hwm_kib)
    );
    let _ = writeln!(
        s,
        "| Prometheus `query_range` step 120 s (HTTP, JSON) | {} | {} | {} | {} | {} KiB | {} | {} |",
        ms(q50),
        ms(percentile(&prom_times, 0.9)),
        ms(prom_times[0]),
        ms(prom_times[prom_times.len() - 1]),
        prom_body.len() / 1024,
        mib(prom_mem.rss_kib),
        mib(prom_mem.hwm_kib)
    );
    let _ = writeln!(
        s,
        "\nplugin p50 / Prometheus p50 = **{ratio:.3}** (target ≤ 0.2: {}). Both answers hold the same {} x {rows} values. Upstream calls by the plugin during the comparison: {upstream_calls}. `history import` of the {SAMPLES} lines: {}; promtool backfill: {}; Prometheus blocks: {blocks_at_start} at start, {last} after {compactions} compactions.",
        if ratio <= 0.2 { "met" } else { "NOT met" },
        plugin_series.len(),
        ms(import_time),
        ms(backfill_time),
    );
    let _ = writeln!(
        s,
        "\nWhere the plugin's time goes (same query in process, medians): history range read {}, series {}, Arrow encoding {}; the rest of its p50 is gRPC, protobuf and the instance lookup.",
        ms(read),
        ms(series),
        ms(encode)
    );
    if !complaints.is_empty() {
        let _ = writeln!(s, "\nPlugin warnings/errors logged: {}", complaints.len());
        for c in complaints.iter().take(5) {
            let _ = writeln!(s, "    {c}");
        }
    }
    report.section(s);
    report.json.insert(
        "compare".into(),
        json!({
            "pluginP50Ms": p50.as_secs_f64() * 1e3, "pluginP90Ms": percentile(&plugin_times, 0.9).as_secs_f64() * 1e3,
            "prometheusP50Ms": q50.as_secs_f64() * 1e3, "prometheusP90Ms": percentile(&prom_times, 0.9).as_secs_f64() * 1e3,
            "ratioP50": ratio, "pluginRssKiB": plugin_mem.rss_kib, "pluginHwmKiB": plugin_mem.hwm_kib,
            "prometheusRssKiB": prom_mem.rss_kib, "prometheusHwmKiB": prom_mem.hwm_kib,
            "pluginAnswerBytes": plugin_bytes, "prometheusAnswerBytes": prom_body.len(),
            "series": plugin_series.len(), "rows": rows, "upstreamCalls": upstream_calls,
            "importMs": import_time.as_secs_f64() * 1e3, "runs": cfg.runs,
            "inProcessReadMs": read.as_secs_f64() * 1e3, "inProcessSeriesMs": series.as_secs_f64() * 1e3,
            "inProcessEncodeMs": encode.as_secs_f64() * 1e3,
        }),
    );
    Ok(())
}

/// Where the plugin's time goes, in process on the same history: the SQLite range read, the
/// series, the Arrow encoding. Medians over `runs`.
async fn breakdown(
    db: &Path,
    uid: &str,
    target: &Target,
    times: &[DateTime<Utc>],
    runs: usize,
) -> Result<[Duration; 3]> {
    let history =
        estats::history::History::open(Some(db)).ctx(|| format!("opening {}", db.display()))?;
    let dq = edge_series_query(COMPARE_CP_CODE, times);
    let range = dq.time_range.unwrap_or_default();
    let query = estats::query::Query::parse(
        "A",
        &dq.json,
        "",
        estats::query::QueryContext {
            from_ms: range.from_epoch_ms,
            to_ms: range.to_epoch_ms,
            interval_ms: dq.interval_ms,
            max_data_points: dq.max_data_points,
        },
        None,
    )
    .ctx(|| "the comparison query".into())?;
    let mut phases: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let points = history
            .range(uid, target, query.from, query.to)
            .await
            .ctx(|| "reading the history".into())?;
        phases[0].push(t.elapsed());
        let t = Instant::now();
        let frame = estats::handlers::timeseries::frame(&query, &points);
        phases[1].push(t.elapsed());
        let t = Instant::now();
        let bytes = frame.encode("A").ctx(|| "encoding the frame".into())?;
        phases[2].push(t.elapsed());
        std::hint::black_box(bytes);
    }
    Ok(phases.map(|mut v| {
        v.sort();
        percentile(&v, 0.5)
    }))
}

fn run_import(db: &Path, uid: &str, file: &Path) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .args(["history", "import", "--db"])
        .arg(db)
        .args(["--datasource", uid])
        .arg(file)
        .output()
        .ctx(|| "running history import".into())?;
    if !out.status.success() {
        return Err(format!(
            "history import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// 2. Memory with 100 targets x 7 days.

async fn memory(cfg: &Config, work: &Path, sim: &Simulator, report: &mut Report) -> Result<()> {
    let times = instants(Utc::now());
    let cp_codes: Vec<u64> = (0..cfg.targets).map(|i| 2_000_001 + i).collect();
    let targets: Vec<Target> = cp_codes
        .iter()
        .map(|cp| Target::cp_code(*cp, None))
        .collect();
    let jsonl = work.join("many-targets.jsonl");
    let started = Instant::now();
    let lines = write_jsonl(&jsonl, &targets, &times)?;
    let generate_time = started.elapsed();
    let file_bytes = std::fs::metadata(&jsonl).map(|m| m.len()).unwrap_or(0);
    println!(
        "memory: generated {lines} lines ({} MiB) in {:.1} s; importing",
        file_bytes >> 20,
        generate_time.as_secs_f64()
    );
    let db = work.join("many-targets.db");
    let uid = "bench-memory";
    let started = Instant::now();
    let import_out = run_import(&db, uid, &jsonl)?;
    let import_time = started.elapsed();
    let _ = std::fs::remove_file(&jsonl);
    let db_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum::<u64>();
    println!("memory: {import_out} in {:.1} s", import_time.as_secs_f64());

    let calls_before = sim.calls();
    let plugin = Plugin::start(&work.join("plugin-memory.log")).await?;
    let at_start = Memory::of(plugin.pid())?;
    let watch: Vec<Value> = cp_codes.iter().map(|cp| json!({"cpCode": cp})).collect();
    let ctx = context(
        uid,
        json!({
            "host": sim.base_url().as_str().trim_end_matches('/'),
            "pollIntervalSeconds": 3600, "retentionHours": 720, "rateLimitPerMinute": 600,
            "historyPath": db.display().to_string(), "watch": watch,
        }),
    );
    // One full-resolution 7-day query per target, BENCH_PARALLEL (4) at a time: a dashboard's
    // parallelism.
    let started = Instant::now();
    let mut query_times = Vec::new();
    for chunk in cp_codes.chunks(cfg.parallel) {
        let asks = chunk.iter().map(|&cp| {
            let mut client = DataClient::new(plugin.channel.clone());
            let ctx = ctx.clone();
            let times = &times;
            async move {
                let t = Instant::now();
                let r = query_data(&mut client, &ctx, edge_series_query(cp, times)).await?;
                let (rows, _) = decode_wide(r.frames.first().ok_or("no frame")?)?;
                if rows != SAMPLES {
                    return Err(format!("cp code {cp}: {rows} rows instead of {SAMPLES}"));
                }
                Ok::<_, String>(t.elapsed())
            }
        });
        for r in futures::future::join_all(asks).await {
            query_times.push(r?);
        }
    }
    let queries_time = started.elapsed();
    let after_queries = Memory::of(plugin.pid())?;
    // tokio ends idle blocking-pool threads (and their stacks) after 10 s.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let settled = Memory::of(plugin.pid())?;
    let upstream_calls = sim.calls() - calls_before;
    let complaints = plugin.complaints();
    drop(plugin);
    query_times.sort();

    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Memory: {} targets x 7 days in the SQLite history\n",
        cfg.targets
    );
    let _ = writeln!(
        s,
        "`history import` of {lines} lines ({} MiB of JSON lines): {:.1} s ({:.0} lines/s); history file {} MiB. Generating the lines took {:.1} s.\n",
        file_bytes >> 20,
        import_time.as_secs_f64(),
        lines as f64 / import_time.as_secs_f64(),
        db_bytes >> 20,
        generate_time.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Plugin started on that history with one data source watching all {} targets (poll interval 1 h, so pollers run but rarely call), then one full-resolution 7-day edge `timeseries` query per target, {} at a time ({:.1} s in all; per query p50 {}, max {}). Upstream calls meanwhile: {upstream_calls}.{}\n",
        cfg.targets,
        cfg.parallel,
        queries_time.as_secs_f64(),
        ms(percentile(&query_times, 0.5)),
        ms(query_times[query_times.len() - 1]),
        if plugin_env().is_empty() { String::new() } else { format!(" Plugin environment: {:?}.", plugin_env()) },
    );
    let _ = writeln!(
        s,
        "| plugin process | VmRSS | of which RssAnon | VmHWM (peak) | threads |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (when, m) in [
        ("started, before any request".to_string(), at_start),
        (format!("after the {} queries", cfg.targets), after_queries),
        ("15 s later".to_string(), settled),
    ] {
        let _ = writeln!(
            s,
            "| {when} | {} | {} | {} | {} |",
            mib(m.rss_kib),
            mib(m.anon_kib),
            mib(m.hwm_kib),
            m.threads
        );
    }
    let _ = writeln!(
        s,
        "\nTarget VmRSS ≤ 30 MB: {}.",
        if settled.rss_kib as f64 * 1024.0 <= 30e6 {
            "met"
        } else {
            "NOT met"
        }
    );
    if !complaints.is_empty() {
        let _ = writeln!(s, "\nPlugin warnings/errors logged: {}", complaints.len());
        for c in complaints.iter().take(5) {
            let _ = writeln!(s, "    {c}");
        }
    }
    report.section(s);
    report.json.insert(
        "memory".into(),
        json!({
            "targets": cfg.targets, "lines": lines, "importSeconds": import_time.as_secs_f64(),
            "historyBytes": db_bytes, "rssStartKiB": at_start.rss_kib, "rssAfterKiB": after_queries.rss_kib,
            "rssSettledKiB": settled.rss_kib, "hwmKiB": settled.hwm_kib, "upstreamCalls": upstream_calls,
        }),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Upstream calls with 1, 10, 100 viewers of the same dashboard.

/// Every query of the provisioned dashboard, with its variables set to a CP code and the data
/// source's default delivery network.
fn dashboard_queries(cp_code: u64) -> Result<Vec<Value>> {
    let dashboard: Value =
        serde_json::from_str(DASHBOARD).ctx(|| "the provisioned dashboard is not JSON".into())?;
    let mut panels: Vec<&Value> = Vec::new();
    fn collect<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            collect(&p["panels"], out);
        }
    }
    collect(&dashboard["panels"], &mut panels);
    let mut queries = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let text = target
                .to_string()
                .replace("$target", &cp_code.to_string())
                .replace("$delivery", "");
            let mut q: Value = serde_json::from_str(&text).ctx(|| "a dashboard query".into())?;
            if let Some(o) = q.as_object_mut() {
                o.remove("datasource");
            }
            queries.push(q);
        }
    }
    if queries.is_empty() {
        return Err("the provisioned dashboard has no queries".into());
    }
    Ok(queries)
}

struct ViewerRow {
    viewers: usize,
    calls: u64,
    per_minute: f64,
    refreshes: u64,
    requests: u64,
    failed: u64,
    first_error: Option<String>,
    p50: Duration,
    p99: Duration,
    memory: Memory,
}

struct ViewerStats {
    refreshes: u64,
    requests: u64,
    failed: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

async fn viewers(cfg: &Config, work: &Path, report: &mut Report) -> Result<()> {
    let queries = Arc::new(dashboard_queries(COMPARE_CP_CODE)?);
    let mut rows = Vec::new();
    for &n in &cfg.viewers {
        // A fresh simulator and plugin per viewer count, so no poller of a previous round counts.
        let sim = Simulator::start(
            ([127, 0, 0, 1], 0).into(),
            SimulatorConfig {
                rate_limit_per_minute: 100_000,
                ..SimulatorConfig::default()
            },
        )
        .await
        .ctx(|| "starting the simulator".into())?;
        let plugin = Plugin::start(&work.join(format!("plugin-viewers-{n}.log"))).await?;
        let ctx = context(
            &format!("bench-viewers-{n}"),
            json!({
                "host": sim.base_url().as_str().trim_end_matches('/'),
                "pollIntervalSeconds": cfg.refresh.as_secs(), "rateLimitPerMinute": 600,
                "requestTimeoutSeconds": 10,
            }),
        );
        println!(
            "viewers: {n} viewer(s) for {} s",
            cfg.viewer_window.as_secs()
        );
        let stats = Arc::new(Mutex::new(ViewerStats {
            refreshes: 0,
            requests: 0,
            failed: 0,
            first_error: None,
            latencies: Vec::new(),
        }));
        let t0 = tokio::time::Instant::now();
        let deadline = t0 + cfg.viewer_window;
        let mut tasks = Vec::new();
        for v in 0..n {
            // Viewers opened the dashboard at different moments within one refresh period.
            let offset = cfg.refresh.mul_f64(v as f64 / n as f64);
            let (channel, ctx, queries, stats, refresh) = (
                plugin.channel.clone(),
                ctx.clone(),
                queries.clone(),
                stats.clone(),
                cfg.refresh,
            );
            tasks.push(tokio::spawn(async move {
                let mut next = t0 + offset;
                while next < deadline {
                    tokio::time::sleep_until(next).await;
                    let now_ms = Utc::now().timestamp_millis();
                    let started = Instant::now();
                    // Grafana sends one QueryData per panel, all panels at once.
                    let answers = futures::future::join_all(queries.iter().map(|q| {
                        let mut client = DataClient::new(channel.clone());
                        let ctx = ctx.clone();
                        let query = data_query(q, now_ms - 6 * 3_600_000, now_ms, 1000, 20_000);
                        async move { query_data(&mut client, &ctx, query).await }
                    }))
                    .await;
                    let took = started.elapsed();
                    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                    s.refreshes += 1;
                    s.latencies.push(took);
                    for a in answers {
                        s.requests += 1;
                        if let Err(e) = a {
                            s.failed += 1;
                            s.first_error.get_or_insert(e);
                        }
                    }
                    next += refresh;
                }
            }));
        }
        tokio::time::sleep_until(deadline).await;
        let calls = sim.calls();
        for t in tasks {
            t.await.ctx(|| "a viewer task".into())?;
        }
        let memory = Memory::of(plugin.pid())?;
        drop(plugin);
        sim.shutdown().await;
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        s.latencies.sort();
        let per_minute = calls as f64 * 60.0 / cfg.viewer_window.as_secs_f64();
        println!(
            "viewers: {n}: {calls} upstream calls ({per_minute:.1}/min), {} requests, {} failed",
            s.requests, s.failed
        );
        rows.push(ViewerRow {
            viewers: n,
            calls,
            per_minute,
            refreshes: s.refreshes,
            requests: s.requests,
            failed: s.failed,
            first_error: s.first_error.take(),
            p50: percentile(&s.latencies, 0.5),
            p99: percentile(&s.latencies, 0.99),
            memory,
        });
    }

    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Upstream calls with concurrent viewers of the same dashboard\n"
    );
    let _ = writeln!(
        s,
        "The provisioned dashboard's {} queries (one QueryData per panel, all panels at once, 6-hour range) on one CP code, each viewer refreshing every {} s for {} s, viewers' refreshes spread over the period; data source polling every {} s against the simulator; a fresh plugin and simulator per row.\n",
        queries.len(),
        cfg.refresh.as_secs(),
        cfg.viewer_window.as_secs(),
        cfg.refresh.as_secs()
    );
    let _ = writeln!(s, "| viewers | dashboard refreshes | QueryData requests | failed | refresh p50 | refresh p99 | upstream calls | calls per minute | plugin VmRSS |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            r.viewers,
            r.refreshes,
            r.requests,
            r.failed,
            ms(r.p50),
            ms(r.p99),
            r.calls,
            r.per_minute,
            mib(r.memory.rss_kib)
        );
    }
    let equal = rows.windows(2).all(|w| w[0].calls == w[1].calls);
    let _ = writeln!(
        s,
        "\nUpstream calls per minute equal for every viewer count: **{}**.",
        if equal { "yes" } else { "no" }
    );
    for r in &rows {
        if let Some(error) = &r.first_error {
            let _ = writeln!(s, "\nFirst failure with {} viewers: {error}", r.viewers);
        }
    }
    report.section(s);
    report.json.insert(
        "viewers".into(),
        Value::Array(
            rows.iter()
                .map(|r| {
                    json!({"viewers": r.viewers, "upstreamCalls": r.calls, "callsPerMinute": r.per_minute,
                        "refreshes": r.refreshes, "requests": r.requests, "failed": r.failed,
                        "refreshP50Ms": r.p50.as_secs_f64() * 1e3, "pluginRssKiB": r.memory.rss_kib})
                })
                .collect(),
        ),
    );
    report
        .json
        .insert("viewersEqual".into(), Value::Bool(equal));
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// What `cargo test --benches` runs: the two generated formats must agree.
fn self_check() -> Result<()> {
    let target = Target::cp_code(COMPARE_CP_CODE, None);
    let times = &instants(Utc::now())[..3];
    let mut jsonl = Vec::new();
    for at in times {
        write_line(&mut jsonl, &target, *at, answer(&target, *at, false))?;
    }
    let shares = shares(&target, times);
    let mut om = Vec::new();
    write_openmetrics(&mut om, COMPARE_CP_CODE, times, &shares)?;
    let om = String::from_utf8(om).ctx(|| "OpenMetrics text".into())?;
    for (i, text) in String::from_utf8(jsonl)
        .ctx(|| "JSON lines".into())?
        .lines()
        .enumerate()
    {
        let line: Line = serde_json::from_str(text).ctx(|| "a generated JSON line".into())?;
        let sample = Sample::from_response(times[i], line.response.as_ref().ok_or("no response")?);
        for c in &sample.edge.codes {
            let series = format!(
                "{METRIC}{{cp_code=\"{COMPARE_CP_CODE}\",side=\"edge\",status=\"{}\"}} {} {}",
                c.http_status,
                c.percentage,
                times[i].timestamp()
            );
            if !om.lines().any(|l| l == series) {
                return Err(format!("OpenMetrics lacks {series}"));
            }
        }
    }
    if !om.ends_with("# EOF\n") {
        return Err("OpenMetrics text must end with # EOF".into());
    }
    println!("history bench: generated JSON lines and OpenMetrics agree; run `cargo bench --bench history` (or bench/run.sh) for the numbers");
    Ok(())
}

async fn run(cfg: Config) -> Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir).ctx(|| format!("creating {}", cfg.out_dir.display()))?;
    let work_dir = tempfile::Builder::new()
        .prefix("estats-bench-")
        .tempdir()
        .ctx(|| "creating a work directory".into())?;
    let work = work_dir.path().to_path_buf();
    println!("history bench: work directory {}", work.display());
    let mut report = Report::default();
    // The upstream of the compare and memory data sources: called at most by the odd poll.
    let sim = Simulator::start(
        ([127, 0, 0, 1], 0).into(),
        SimulatorConfig {
            rate_limit_per_minute: 100_000,
            ..SimulatorConfig::default()
        },
    )
    .await
    .ctx(|| "starting the simulator".into())?;
    if cfg.parts.contains("compare") {
        compare(&cfg, &work, &sim, &mut report).await?;
    }
    if cfg.parts.contains("memory") {
        memory(&cfg, &work, &sim, &mut report).await?;
    }
    sim.shutdown().await;
    if cfg.parts.contains("viewers") {
        viewers(&cfg, &work, &mut report).await?;
    }
    if cfg.keep {
        let kept = work_dir.keep();
        println!("history bench: kept {}", kept.display());
    }
    Ok(report)
}

fn main() -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        return match self_check() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("history bench self-check failed: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("history bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let out_dir = cfg.out_dir.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("history bench: no async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match runtime.block_on(run(cfg)) {
        Ok(report) => {
            let mut md = format!(
                "# History benchmarks ({}; {} s)\n\n",
                Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                started.elapsed().as_secs()
            );
            md.push_str(&report.sections.join("\n"));
            let mut json = report.json;
            json.insert("seconds".into(), json!(started.elapsed().as_secs()));
            let written = std::fs::write(out_dir.join("summary.md"), md).and_then(|_| {
                std::fs::write(
                    out_dir.join("results.json"),
                    Value::Object(json).to_string(),
                )
            });
            match written {
                Ok(()) => println!(
                    "history bench: summary in {}",
                    out_dir.join("summary.md").display()
                ),
                Err(e) => eprintln!(
                    "history bench: cannot write the summary to {}: {e}",
                    out_dir.display()
                ),
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("history bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
