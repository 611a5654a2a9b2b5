//! 2. Memory with 100 targets x 7 days in the SQLite history.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use estats::simulator::Simulator;
use estats::target::Target;
use grafana_plugin_sdk::pluginv2::data_client::DataClient;
use serde_json::{json, Value};

use crate::data::{instants, write_jsonl};
use crate::plugin::{
    context, decode_wide, edge_series_query, mib, plugin_env, query_data, Memory, Plugin,
};
use crate::report::{ms, percentile, Report};
use crate::vs_prometheus::run_import;
use crate::{Config, Result, SAMPLES};

pub(crate) async fn memory(
    cfg: &Config,
    work: &Path,
    sim: &Simulator,
    report: &mut Report,
) -> Result<()> {
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
