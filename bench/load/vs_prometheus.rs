//! 1. The plugin vs Prometheus: one target's week, full resolution, from both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use estats::sample::Side;
use estats::simulator::Simulator;
use estats::target::Target;
use grafana_plugin_sdk::pluginv2::data_client::DataClient;
use grafana_plugin_sdk::pluginv2::DataQuery;
use serde_json::{json, Value};

use crate::data::{instants, shares, write_jsonl, write_openmetrics};
use crate::plugin::{
    context, decode_wide, edge_series_query, edge_series_query_with, free_port, mib, query_data,
    Memory, Plugin,
};
use crate::report::{ms, percentile, Report};
use crate::{Config, Context, Result, COMPARE_CP_CODE, METRIC, SAMPLES, STEP_SECONDS};

pub(crate) struct Prometheus {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) async fn prometheus_metric(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Option<f64> {
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

pub(crate) async fn compare(
    cfg: &Config,
    work: &Path,
    sim: &Simulator,
    report: &mut Report,
) -> Result<()> {
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
    let range_params = |start: i64, step: i64| {
        vec![
            ("query", format!("{METRIC}{{side=\"edge\"}}")),
            ("start", start.to_string()),
            ("end", end_s.to_string()),
            ("step", step.to_string()),
        ]
    };
    let prom_params = range_params(start_s, STEP_SECONDS);
    let ask_prometheus_with = |params: Vec<(&'static str, String)>| {
        let (http, prom_url) = (&http, &prom_url);
        async move {
            let r = http
                .get(prom_url)
                .query(&params)
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
    let ask_prometheus = || ask_prometheus_with(prom_params.clone());

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

    // The other shapes of issue 13, each against Prometheus in the same run, alternating.
    let day = &times[times.len() - 24 * 3600 / STEP_SECONDS as usize..];
    let cases = [
        Case {
            name: "7 days, maxDataPoints 1000",
            plugin: edge_series_query_with(COMPARE_CP_CODE, &times, 1000),
            prometheus: vec![
                ("step 120 s", range_params(start_s, STEP_SECONDS)),
                ("step 605 s", range_params(start_s, 605)),
            ],
            goal: 0.05,
        },
        Case {
            name: "24 hours, full resolution",
            plugin: edge_series_query(COMPARE_CP_CODE, day),
            prometheus: vec![("step 120 s", range_params(day[0].timestamp(), STEP_SECONDS))],
            goal: 0.2,
        },
    ];
    let mut case_rows = Vec::new();
    for case in &cases {
        let mut plugin_case = Vec::new();
        let mut prom_case: Vec<Vec<Duration>> = vec![Vec::new(); case.prometheus.len()];
        for i in 0..cfg.warmup + cfg.runs {
            let t = Instant::now();
            query_data(&mut client, &ctx, case.plugin.clone()).await?;
            let p = t.elapsed();
            for (j, (_, params)) in case.prometheus.iter().enumerate() {
                let t = Instant::now();
                ask_prometheus_with(params.clone()).await?;
                if i >= cfg.warmup {
                    prom_case[j].push(t.elapsed());
                }
            }
            if i >= cfg.warmup {
                plugin_case.push(p);
            }
        }
        plugin_case.sort();
        prom_case.iter_mut().for_each(|v| v.sort());
        case_rows.push((plugin_case, prom_case));
    }
    let upstream_calls = sim.calls() - calls_before;
    let complaints = plugin.complaints();
    let first_handshake = plugin.handshake;
    drop(plugin);

    // A restart: a fresh process on the same history (the page cache stays warm), its handshake
    // and its first query.
    let plugin = Plugin::start(&work.join("plugin-compare-restart.log")).await?;
    let restart_handshake = plugin.handshake;
    let mut client = DataClient::new(plugin.channel.clone());
    let t = Instant::now();
    query_data(
        &mut client,
        &ctx,
        edge_series_query(COMPARE_CP_CODE, &times),
    )
    .await?;
    let first_query = t.elapsed();
    drop(plugin);
    drop(prom);
    let [read, series, encode] = breakdown(&db, uid, &target, &times, cfg.runs).await?;
    let downsampled = breakdown_of(
        &db,
        uid,
        &target,
        edge_series_query_with(COMPARE_CP_CODE, &times, 1000),
        cfg.runs,
        false,
    )
    .await?;
    let fast_full = breakdown_of(
        &db,
        uid,
        &target,
        edge_series_query(COMPARE_CP_CODE, &times),
        cfg.runs,
        true,
    )
    .await?;
    let fast_downsampled = breakdown_of(
        &db,
        uid,
        &target,
        edge_series_query_with(COMPARE_CP_CODE, &times, 1000),
        cfg.runs,
        true,
    )
    .await?;

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
        "\nWhere the plugin's time goes (same query in process, the path the plugin runs: `History::polls` + `timeseries::frame_of_polls`, medians): history read {}, series {}, Arrow encoding {}; the rest of its p50 is gRPC, protobuf and the instance lookup.",
        ms(fast_full[0]),
        ms(fast_full[1]),
        ms(fast_full[2])
    );
    let _ = writeln!(
        s,
        "\n| query (edge, every status code) | plugin p50 | Prometheus p50 | plugin / Prometheus | goal |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| 7 days, full resolution | {} | {} (step 120 s) | {ratio:.3} | ≤ 0.2: {} |",
        ms(p50),
        ms(q50),
        if ratio <= 0.2 { "met" } else { "NOT met" }
    );
    let mut cases_json = Vec::new();
    for (case, (plugin_case, prom_case)) in cases.iter().zip(&case_rows) {
        let p = percentile(plugin_case, 0.5);
        let proms: Vec<Duration> = prom_case.iter().map(|v| percentile(v, 0.5)).collect();
        let fastest = proms.iter().min().copied().unwrap_or(Duration::MAX);
        let r = p.as_secs_f64() / fastest.as_secs_f64();
        let shown = case
            .prometheus
            .iter()
            .zip(&proms)
            .map(|((label, _), d)| format!("{} ({label})", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            s,
            "| {} | {} | {shown} | {r:.3} (against the faster) | ≤ {}: {} |",
            case.name,
            ms(p),
            case.goal,
            if r <= case.goal { "met" } else { "NOT met" }
        );
        cases_json.push(json!({
            "name": case.name, "pluginP50Ms": p.as_secs_f64() * 1e3,
            "prometheusP50Ms": proms.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
            "ratioP50": r, "goal": case.goal,
        }));
    }
    let cold = first_query.as_secs_f64() / p50.as_secs_f64();
    let _ = writeln!(
        s,
        "\nRestart: handshake {} (first start {}; goal ≤ 20 ms: {}); first 7-day full-resolution query of the new process {} = {cold:.2} x the warm p50 (goal ≤ 3: {}).",
        ms(restart_handshake),
        ms(first_handshake),
        if restart_handshake.max(first_handshake) <= Duration::from_millis(20) { "met" } else { "NOT met" },
        ms(first_query),
        if cold <= 3.0 { "met" } else { "NOT met" },
    );
    let _ = writeln!(
        s,
        "\n7 days with maxDataPoints 1000 in process (the plugin's path, medians): history read {}, series {}, Arrow encoding {}: {} in all (goal < 1 ms: {}).",
        ms(fast_downsampled[0]),
        ms(fast_downsampled[1]),
        ms(fast_downsampled[2]),
        ms(fast_downsampled.iter().sum()),
        if fast_downsampled.iter().sum::<Duration>() < Duration::from_millis(1) { "met" } else { "NOT met" },
    );
    for (what, phases) in [
        ("7 days, full resolution", [read, series, encode]),
        ("7 days, maxDataPoints 1000", downsampled),
    ] {
        let _ = writeln!(
            s,
            "\nThrough samples instead (`History::range` + `timeseries::frame`, what live queries and annotations read), {what}, in process (medians): history read {}, series {}, Arrow encoding {}: {} in all.",
            ms(phases[0]),
            ms(phases[1]),
            ms(phases[2]),
            ms(phases.iter().sum()),
        );
    }
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
            "cases": cases_json, "handshakeMs": [first_handshake.as_secs_f64() * 1e3, restart_handshake.as_secs_f64() * 1e3],
            "firstQueryMs": first_query.as_secs_f64() * 1e3,
            "downsampledInProcessMs": downsampled.map(|d| d.as_secs_f64() * 1e3),
            "fastPathFullInProcessMs": fast_full.map(|d| d.as_secs_f64() * 1e3),
            "fastPathDownsampledInProcessMs": fast_downsampled.map(|d| d.as_secs_f64() * 1e3),
        }),
    );
    Ok(())
}

/// Where the plugin's time goes, in process on the same history: the history read, the
/// series, the Arrow encoding. Medians over `runs`.
pub(crate) async fn breakdown(
    db: &Path,
    uid: &str,
    target: &Target,
    times: &[DateTime<Utc>],
    runs: usize,
) -> Result<[Duration; 3]> {
    breakdown_of(
        db,
        uid,
        target,
        edge_series_query(COMPARE_CP_CODE, times),
        runs,
        false,
    )
    .await
}

/// [`breakdown`] of any `timeseries` query of the comparison's target.
pub(crate) async fn breakdown_of(
    db: &Path,
    uid: &str,
    target: &Target,
    dq: DataQuery,
    runs: usize,
    fast: bool,
) -> Result<[Duration; 3]> {
    let history =
        estats::history::History::open(Some(db)).ctx(|| format!("opening {}", db.display()))?;
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
        if fast {
            // History::polls and the series built on them (the handler's fast path).
            let t = Instant::now();
            let polls = history
                .polls(
                    uid,
                    target,
                    query.from,
                    query.to,
                    estats::handlers::timeseries::wanted(&query),
                )
                .await
                .ctx(|| "reading the history".into())?;
            phases[0].push(t.elapsed());
            let t = Instant::now();
            let frame = estats::handlers::timeseries::frame_of_polls(&query, &polls);
            phases[1].push(t.elapsed());
            let t = Instant::now();
            let bytes = frame.encode("A").ctx(|| "encoding the frame".into())?;
            phases[2].push(t.elapsed());
            std::hint::black_box(bytes);
            continue;
        }
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

/// One more query shape timed against Prometheus: the plugin's query and Prometheus' variants.
struct Case {
    name: &'static str,
    plugin: DataQuery,
    prometheus: Vec<(&'static str, Vec<(&'static str, String)>)>,
    /// Highest plugin p50 / the fastest Prometheus p50 that meets issue 13.
    goal: f64,
}

pub(crate) fn run_import(db: &Path, uid: &str, file: &Path) -> Result<String> {
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
