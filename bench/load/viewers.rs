//! 3. Upstream calls with 1, 10 and 100 viewers of the same dashboard.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use estats::simulator::{Simulator, SimulatorConfig};
use grafana_plugin_sdk::pluginv2::data_client::DataClient;
use serde_json::{json, Value};

use crate::plugin::{context, data_query, mib, query_data, Memory, Plugin};
use crate::report::{ms, percentile, Report};
use crate::{Config, Context, Result, COMPARE_CP_CODE, DASHBOARD};

/// Every query of the provisioned dashboard, with its variables set to a CP code and the data
/// source's default delivery network.
pub(crate) fn dashboard_queries(cp_code: u64) -> Result<Vec<Value>> {
    let dashboard: Value =
        serde_json::from_str(DASHBOARD).ctx(|| "the provisioned dashboard is not JSON".into())?;
    let mut panels: Vec<&Value> = Vec::new();
    pub(crate) fn collect<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
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

pub(crate) struct ViewerRow {
    pub(crate) viewers: usize,
    pub(crate) calls: u64,
    pub(crate) per_minute: f64,
    pub(crate) refreshes: u64,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) memory: Memory,
}

pub(crate) struct ViewerStats {
    pub(crate) refreshes: u64,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) latencies: Vec<Duration>,
}

pub(crate) async fn viewers(cfg: &Config, work: &Path, report: &mut Report) -> Result<()> {
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
