//! The load benchmarks of issue #3: the release executable started as Grafana starts it, against
//! the setup the plugin replaces (exporter + Prometheus). One module per part, run in this order:
//!
//! 1. `compare` ([`vs_prometheus`]): 7 days of 2-minute samples of one target (5,040 samples) imported into the
//!    plugin's SQLite history with `history import`, the same values backfilled into Prometheus
//!    with `promtool tsdb create-blocks-from openmetrics`; then the full-resolution 7-day edge
//!    series (every status code) asked from both on loopback, alternating: plugin `timeseries`
//!    QueryData over gRPC vs Prometheus `query_range` with step 120 s. Reports p50/p90 of both,
//!    their ratio, response sizes and both processes' RSS, and checks that both return the same
//!    values.
//! 2. `memory` ([`memory`]): 100 targets x 7 days imported, the plugin started on that history with a data
//!    source watching all 100, one full-resolution 7-day query per target; reports VmRSS/VmHWM.
//! 3. `viewers` ([`viewers`]): the provisioned dashboard's queries sent by 1, 10 and 100 concurrent viewers,
//!    each refreshing every 5 s, against a signature-verifying simulator; reports the upstream
//!    calls per minute, which must not depend on the number of viewers.
//!
//! Run `bench/run.sh` (installs Prometheus when missing) or `cargo bench --bench load`.
//! Without `prometheus`/`promtool` on PATH the comparison is skipped with a message. Settings
//! come from the environment (see `Config::from_env` and bench/README.md). Run without
//! `--bench` (as `cargo test --benches` does), it only checks that the JSON lines and the
//! OpenMetrics text it generates carry the same values.
//!
//! [`data`] generates the week of samples, [`plugin`] starts and queries the plugin process,
//! [`report`] collects the Markdown summary and its numbers.

mod data;
mod memory;
mod plugin;
mod report;
mod viewers;
mod vs_prometheus;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use estats::history::import::Line;
use estats::sample::Sample;
use estats::simulator::{Simulator, SimulatorConfig};
use estats::target::Target;
use serde_json::{json, Value};

use data::{answer, instants, shares, write_line, write_openmetrics};
use memory::memory;
use report::Report;
use viewers::viewers;
use vs_prometheus::compare;

/// Seconds between two samples: the old exporter's (and the plugin's default) poll interval.
pub(crate) const STEP_SECONDS: i64 = 120;
/// 7 days of 2-minute samples.
pub(crate) const SAMPLES: usize = 5_040;
pub(crate) const COMPARE_CP_CODE: u64 = 1_209_788;
pub(crate) const METRIC: &str = "estats_status_share_percent";
pub(crate) const DASHBOARD: &str = include_str!("../../provisioning/dashboards/akamai-estats.json");

pub(crate) type Result<T> = std::result::Result<T, String>;

pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}

pub(crate) struct Config {
    pub(crate) parts: BTreeSet<String>,
    pub(crate) runs: usize,
    pub(crate) warmup: usize,
    pub(crate) targets: u64,
    pub(crate) parallel: usize,
    pub(crate) viewers: Vec<usize>,
    pub(crate) viewer_window: Duration,
    pub(crate) refresh: Duration,
    pub(crate) prometheus: String,
    pub(crate) promtool: String,
    pub(crate) out_dir: PathBuf,
    pub(crate) keep: bool,
}

impl Config {
    pub(crate) fn from_env() -> Result<Config> {
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
                .unwrap_or_else(|_| target_dir.join("bench-load")),
            keep: std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1"),
        })
    }
}

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
    println!("load bench: generated JSON lines and OpenMetrics agree; run `cargo bench --bench load` (or bench/run.sh) for the numbers");
    Ok(())
}

async fn run(cfg: Config) -> Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir).ctx(|| format!("creating {}", cfg.out_dir.display()))?;
    let work_dir = tempfile::Builder::new()
        .prefix("estats-bench-")
        .tempdir()
        .ctx(|| "creating a work directory".into())?;
    let work = work_dir.path().to_path_buf();
    println!("load bench: work directory {}", work.display());
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
        println!("load bench: kept {}", kept.display());
    }
    Ok(report)
}

fn main() -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        return match self_check() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("load bench self-check failed: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("load bench: {e}");
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
            eprintln!("load bench: no async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match runtime.block_on(run(cfg)) {
        Ok(report) => {
            let mut md = format!(
                "# Load benchmarks ({}; {} s)\n\n",
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
                    "load bench: summary in {}",
                    out_dir.join("summary.md").display()
                ),
                Err(e) => eprintln!(
                    "load bench: cannot write the summary to {}: {e}",
                    out_dir.display()
                ),
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
