//! The data: the simulator's deterministic answers, as JSON lines (for `history import`)
//! and as OpenMetrics text (for `promtool`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use estats::estats::model::StatusCodeCount;
use estats::estats::{EstatsRequest, EstatsResponse};
use estats::history::import::Line;
use estats::sample::{Sample, Side};
use estats::simulator::{self};
use estats::target::{Target, TargetSpec};

use crate::{Context, Result, METRIC, SAMPLES, STEP_SECONDS};

/// The instants of 7 days of 2-minute samples ending at the last whole 2 minutes before `now`.
pub(crate) fn instants(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
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
pub(crate) const CODES_PER_SIDE: usize = 20;
/// Codes added, in this order, to what the simulator answered until a side has
/// [`CODES_PER_SIDE`]: the rarer statuses a busy property shows over a day.
pub(crate) const RARE_CODES: [u16; 24] = [
    201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 410, 412, 416, 429,
    499, 500, 502, 503, 504,
];

/// SplitMix64 step: deterministic noise for the rare codes.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tops a side's distribution up to [`CODES_PER_SIDE`] codes, the new ones' hits taken from 200,
/// and recomputes its percentages (two decimals, as eStats), errors and failure percentage.
pub(crate) fn widen(
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
pub(crate) fn answer(target: &Target, at: DateTime<Utc>, keep_top_ips: bool) -> EstatsResponse {
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

pub(crate) fn write_line(
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
pub(crate) fn write_jsonl(path: &Path, targets: &[Target], times: &[DateTime<Utc>]) -> Result<u64> {
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
/// a sample is 0 in that sample (docs/design.md, "Frames"), so Prometheus gets an explicit 0
/// there too.
pub(crate) type Shares = BTreeMap<(Side, u16), Vec<f64>>;

pub(crate) fn shares(target: &Target, times: &[DateTime<Utc>]) -> Shares {
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
pub(crate) fn write_openmetrics(
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
