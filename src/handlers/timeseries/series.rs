//! Series shaping: a target's stored polls grouped by code, class or total, filtered, and
//! downsampled to what the panel can draw. Pure: no I/O, no clock.
//!
//! Rules:
//! - a status absent from a successful sample counts 0 for that sample; a failed poll is `None`
//!   (a gap), never 0;
//! - polls missing altogether (the plugin was down, the budget was exhausted) also become a gap:
//!   where two polls are more than twice the usual (median) spacing apart, a `None` row is put one
//!   usual spacing after the first, so the panel breaks the line instead of bridging the hole;
//! - with more polls in the range than `max_data_points`, polls are averaged in buckets of
//!   `max(interval, (to - from) / (max_data_points - 1), 1 ms)`, rounded up to a multiple of 10 minutes
//!   from 10 minutes on (see [`bucket_width`]) and aligned to the epoch, each row stamped with
//!   its bucket's start; a bucket of failures only is `None`;
//! - code values are summed as integers (hits, or percentages in the 1/10 000 % the history
//!   stores) and divided once, so a bucket's average is exact and the same whether it is
//!   computed poll by poll or from the history's 10-minute rollups;
//! - class groups sum the codes of the class; `total` takes the side's totals (hits, errors,
//!   failure percentage);
//! - the status filter applies to codes; groups the filter names explicitly exist even when no
//!   sample has them (0 in successful samples), so an alert on "5xx" sees 0 rather than no data;
//! - series come by side (edge, origin), then status ascending;
//! - every row says whether it is a gap (no successful sample in it), whatever the columns: the
//!   live path fills the columns a set lacks with 0 in samples and null in gaps.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::history::polls::{Bucketing, Polls, Wanted};
use crate::history::rollup::ROLLUP_MS;
use crate::history::store::codec::pct_units;
use crate::history::store::from_ms;
use crate::history::Point;
use crate::query::{status_group, GroupBy, Metric, Query, StatusFilter};
use crate::sample::Side;

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub side: Side,
    /// "503", "5xx" or "total".
    pub status: String,
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesSet {
    /// Ascending, no duplicates; one per value of every series.
    pub times: Vec<DateTime<Utc>>,
    pub series: Vec<Series>,
    /// One per row: true where no successful sample made the row (a failed poll, missing
    /// polls, or a bucket of failures only), so every series is null there.
    pub gaps: Vec<bool>,
}

/// What a series set is built for: the shape and range of a `timeseries` query.
#[derive(Debug, Clone, Copy)]
pub struct SeriesSpec<'a> {
    pub sides: &'a [Side],
    pub group_by: GroupBy,
    pub metric: Metric,
    pub filter: &'a StatusFilter,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Duration,
    /// 0 means no downsampling.
    pub max_data_points: u32,
}

impl<'a> SeriesSpec<'a> {
    pub fn of(query: &'a Query) -> SeriesSpec<'a> {
        SeriesSpec {
            sides: query.side.sides(),
            group_by: query.group_by,
            metric: query.metric,
            filter: &query.status_filter,
            from: query.from,
            to: query.to,
            interval: query.interval,
            max_data_points: query.max_data_points,
        }
    }
}

pub const TOTAL: &str = "total";

/// The groups of one side: those the filter names, and those of the codes seen that it keeps.
fn groups_of(codes: &BTreeSet<u16>, group_by: GroupBy, filter: &StatusFilter) -> Vec<String> {
    if group_by == GroupBy::Total {
        return vec![TOTAL.to_string()];
    }
    let mut groups: BTreeSet<String> = filter.explicit_groups(group_by).into_iter().collect();
    groups.extend(
        codes
            .iter()
            .filter(|c| filter.matches(**c))
            .map(|c| status_group(*c, group_by)),
    );
    let mut groups: Vec<String> = groups.into_iter().collect();
    // "99" < "404" < "503" and "2xx" < "5xx": shorter first, then by text.
    groups.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    groups
}

fn slot(side: Side) -> usize {
    match side {
        Side::Edge => 0,
        Side::Origin => 1,
    }
}

/// The polls a series set is built from: [`Point`]s (samples) or stored [`Polls`] (code blobs
/// walked in place, and code sums of rollup buckets). Indexes are positions in the source.
trait Source {
    fn len(&self) -> usize;
    fn in_range(&self, i: usize, range: &Range) -> bool;
    fn at_ms(&self, i: usize) -> i64;
    fn ok(&self, i: usize) -> bool;
    /// The `total` group of `side` in successful poll `i`.
    fn total(&self, i: usize, side: Side, metric: Metric) -> f64;
    /// `f(side, status, value of metric)` for every code of successful poll `i`, the edge's
    /// first, each side in stored (ascending) order; the value is the hits, or the percentage
    /// in units of 1/10 000 % (see [`code_value`]).
    fn codes(&self, i: usize, metric: Metric, f: impl FnMut(Side, u16, u64));
    /// `f(bucket start, side, status, sum of values)` for the codes of polls that come summed
    /// per rollup bucket instead of per poll (see [`Polls::for_each_sum`]).
    fn sums(&self, _f: impl FnMut(i64, Side, u16, u128)) {}
    fn sums_empty(&self) -> bool {
        true
    }
    /// The statuses of `side` in all of the source, when known without walking it.
    fn statuses(&self, side: Side) -> Option<&BTreeSet<u16>>;
}

/// A query's range, also as the whole milliseconds it holds: stored polls are in milliseconds,
/// and turning each into a date to compare costs more than the rest of a poll's bookkeeping.
struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    from_ms: i64,
    to_ms: i64,
}

impl Range {
    fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Range {
        // The first whole millisecond at or after `from`, the last at or before `to`.
        let floor = |t: DateTime<Utc>| t.timestamp_millis();
        let sub_ms = |t: DateTime<Utc>| t.timestamp_subsec_nanos() % 1_000_000 != 0;
        Range {
            from,
            to,
            from_ms: floor(from).saturating_add(i64::from(sub_ms(from))),
            to_ms: floor(to),
        }
    }
}

/// Whether `metric` draws percentages (summed in units of 1/10 000 %) rather than hits.
fn in_units(metric: Metric) -> bool {
    matches!(metric, Metric::Percentage | Metric::FailurePercentage)
}

/// The value a code contributes to `metric`, as an integer: the hits, or the percentage in the
/// units the history stores it in (exact for what eStats reports: two decimals).
fn code_value(metric: Metric, hits: u64, percentage: f64) -> u64 {
    if in_units(metric) {
        pct_units(percentage)
    } else {
        hits
    }
}

/// The average of `n` code values summing to `sum` (see [`code_value`]): the one division a
/// value shown goes through, whether it was summed poll by poll or per rollup bucket.
fn average(sum: u128, n: u32, metric: Metric) -> f64 {
    let scale = if in_units(metric) { 10_000.0 } else { 1.0 };
    // The same rounding either way; u128 -> f64 is a slow library call, and sums almost always
    // fit in 64 bits (one per value of a full-resolution week). Out of line, or the compiler
    // makes the call for every value and then picks.
    #[cold]
    #[inline(never)]
    fn wide(sum: u128) -> f64 {
        sum as f64
    }
    let sum = match u64::try_from(sum) {
        Ok(s) => s as f64,
        Err(_) => wide(sum),
    };
    sum / (f64::from(n) * scale)
}

/// The width of the buckets the polls of `spec` are averaged into when its range holds more of
/// them than `max_data_points`: `max(interval, (to - from) / (max_data_points - 1), 1 ms)`,
/// rounded up to a multiple of 10 minutes from 10 minutes on, so that a bucket is whole rollup
/// buckets ([`ROLLUP_MS`]) and the history answers it from sums instead of polls. Buckets are
/// aligned to the epoch, so they stay put as a dashboard refreshes; a range not aligned with
/// them touches one bucket more than it spans, hence `max_data_points - 1`: the rows never
/// outnumber `max_data_points` (from 2 on).
pub fn bucket_width(spec: &SeriesSpec) -> i64 {
    let span = (spec.to.timestamp_millis() - spec.from.timestamp_millis()).max(0);
    let points = i64::from(spec.max_data_points.saturating_sub(1).max(1));
    let width = i64::try_from(spec.interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(span.saturating_add(points - 1) / points)
        .max(1);
    if width >= ROLLUP_MS {
        (width.saturating_add(ROLLUP_MS - 1) / ROLLUP_MS).saturating_mul(ROLLUP_MS)
    } else {
        width
    }
}

/// What [`build_polls`] needs read of each poll for `spec`.
pub fn wanted(spec: &SeriesSpec) -> Wanted {
    Wanted {
        edge: spec.sides.contains(&Side::Edge),
        origin: spec.sides.contains(&Side::Origin),
        hits: !in_units(spec.metric),
        totals: spec.group_by == GroupBy::Total,
        bucketing: (spec.max_data_points > 0).then(|| Bucketing {
            width_ms: bucket_width(spec),
            max_points: spec.max_data_points,
        }),
    }
}

impl Source for [Point] {
    fn len(&self) -> usize {
        <[Point]>::len(self)
    }

    fn in_range(&self, i: usize, range: &Range) -> bool {
        self[i].at >= range.from && self[i].at <= range.to
    }

    fn at_ms(&self, i: usize) -> i64 {
        self[i].at.timestamp_millis()
    }

    fn ok(&self, i: usize) -> bool {
        self[i].sample.is_some()
    }

    fn total(&self, i: usize, side: Side, metric: Metric) -> f64 {
        let Some(sample) = &self[i].sample else {
            return 0.0;
        };
        let stats = sample.side(side);
        // A successful answer that omits a total says there was nothing to count.
        match metric {
            Metric::Hits => stats.hits.unwrap_or(0) as f64,
            Metric::Errors => stats.errors.unwrap_or(0) as f64,
            Metric::FailurePercentage | Metric::Percentage => {
                stats.failure_percentage.unwrap_or(0.0)
            }
        }
    }

    fn codes(&self, i: usize, metric: Metric, mut f: impl FnMut(Side, u16, u64)) {
        if let Some(sample) = &self[i].sample {
            for side in Side::BOTH {
                for c in &sample.side(side).codes {
                    f(
                        side,
                        c.http_status,
                        code_value(metric, c.hits, c.percentage),
                    );
                }
            }
        }
    }

    fn statuses(&self, _: Side) -> Option<&BTreeSet<u16>> {
        None
    }
}

impl Source for Polls {
    fn len(&self) -> usize {
        Polls::len(self)
    }

    fn in_range(&self, i: usize, range: &Range) -> bool {
        (range.from_ms..=range.to_ms).contains(&self.polls[i].at_ms)
    }

    fn at_ms(&self, i: usize) -> i64 {
        self.polls[i].at_ms
    }

    fn ok(&self, i: usize) -> bool {
        self.polls[i].ok
    }

    fn total(&self, i: usize, side: Side, metric: Metric) -> f64 {
        use crate::history::polls::*;
        let base = match side {
            Side::Edge => EDGE_HITS,
            Side::Origin => ORIGIN_HITS,
        };
        let offset = match metric {
            Metric::Hits => EDGE_HITS,
            Metric::Errors => EDGE_ERRORS,
            Metric::FailurePercentage | Metric::Percentage => EDGE_FAILURE_PCT,
        };
        Polls::totals(self, i)[base + offset]
    }

    fn codes(&self, i: usize, _: Metric, mut f: impl FnMut(Side, u16, u64)) {
        // Read with `wanted`: the value is the metric's already.
        self.for_each_code(&self.polls[i], |origin, status, value| {
            f(
                if origin { Side::Origin } else { Side::Edge },
                status,
                value,
            )
        });
    }

    fn sums_empty(&self) -> bool {
        !self.has_sums()
    }

    fn sums(&self, mut f: impl FnMut(i64, Side, u16, u128)) {
        self.for_each_sum(|at, origin, status, sum| {
            f(
                at,
                if origin { Side::Origin } else { Side::Edge },
                status,
                sum,
            )
        });
    }

    fn statuses(&self, side: Side) -> Option<&BTreeSet<u16>> {
        Some(Polls::statuses(self, side == Side::Origin))
    }
}

/// The column of each (side, status code): a direct table for HTTP codes (one lookup per
/// value of a week at full resolution must not hash), a map for anything else.
struct ColumnTable {
    direct: [Vec<Option<usize>>; 2],
    other: HashMap<(Side, u16), usize>,
}

impl ColumnTable {
    const DIRECT: usize = 1000;

    fn new(
        codes: &[BTreeSet<u16>; 2],
        columns: &[(Side, String)],
        group_by: GroupBy,
        filter: &StatusFilter,
    ) -> ColumnTable {
        let mut table = ColumnTable {
            direct: [vec![None; Self::DIRECT], vec![None; Self::DIRECT]],
            other: HashMap::new(),
        };
        if group_by == GroupBy::Total {
            return table;
        }
        for side in Side::BOTH {
            for &code in &codes[slot(side)] {
                if !filter.matches(code) {
                    continue;
                }
                let group = status_group(code, group_by);
                let Some(column) = columns
                    .iter()
                    .position(|(sd, g)| *sd == side && *g == group)
                else {
                    continue;
                };
                if usize::from(code) < Self::DIRECT {
                    table.direct[slot(side)][usize::from(code)] = Some(column);
                } else {
                    table.other.insert((side, code), column);
                }
            }
        }
        table
    }

    #[inline]
    fn get(&self, side: Side, code: u16) -> Option<usize> {
        match self.direct[slot(side)].get(usize::from(code)) {
            Some(column) => *column,
            None => self.other.get(&(side, code)).copied(),
        }
    }
}

fn median_step(times: &[i64]) -> Option<i64> {
    let mut steps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return None;
    }
    // The element a sort would put in the middle, without sorting a week's 5,040 steps.
    let middle = steps.len() / 2;
    Some(*steps.select_nth_unstable(middle).1).filter(|m| *m > 0)
}

/// The series of `spec` over `points` (in any order), with the gap mask of its rows.
pub fn build(points: &[Point], spec: &SeriesSpec) -> SeriesSet {
    build_from(points, spec)
}

/// [`build`] over stored polls ([`crate::history::History::polls`]) read with [`wanted`]`(spec)`,
/// without a sample per poll.
pub fn build_polls(polls: &Polls, spec: &SeriesSpec) -> SeriesSet {
    build_from(polls, spec)
}

fn build_from<S: Source + ?Sized>(src: &S, spec: &SeriesSpec) -> SeriesSet {
    let &SeriesSpec {
        sides,
        group_by,
        metric,
        filter,
        from,
        to,
        interval: _,
        max_data_points,
    } = spec;
    // In range, ascending, one per instant (a successful poll wins over a failed one). Stored
    // polls come sorted: the sort is then skipped.
    let key = |i: usize| (src.at_ms(i), !src.ok(i));
    let range = Range::new(from, to);
    let mut pts: Vec<usize> = (0..src.len())
        .filter(|&i| src.in_range(i, &range))
        .collect();
    if !pts.windows(2).all(|w| key(w[0]) < key(w[1])) {
        pts.sort_by_key(|&i| key(i));
    }
    pts.dedup_by_key(|i| src.at_ms(*i));
    let ms: Vec<i64> = pts.iter().map(|&i| src.at_ms(i)).collect();

    let mut wanted = [false; 2];
    for &side in sides {
        wanted[slot(side)] = true;
    }
    let sides: Vec<Side> = Side::BOTH
        .into_iter()
        .filter(|s| wanted[slot(*s)])
        .collect();
    // Distinct codes per side first: naming a group per code per sample allocates per value.
    let mut codes: [BTreeSet<u16>; 2] = Default::default();
    let known = pts.len() == src.len();
    if group_by != GroupBy::Total && known && src.statuses(Side::Edge).is_some() {
        for side in sides.iter().copied() {
            codes[slot(side)] = src.statuses(side).cloned().unwrap_or_default();
        }
    } else if group_by != GroupBy::Total {
        let mut seen = [[false; ColumnTable::DIRECT]; 2];
        let mut see = |side: Side, code: u16| {
            let s = slot(side);
            if !wanted[s] {
                return;
            }
            match seen[s].get_mut(usize::from(code)) {
                Some(true) => {}
                Some(flag) => {
                    *flag = true;
                    codes[s].insert(code);
                }
                None => {
                    codes[s].insert(code);
                }
            }
        };
        for &i in &pts {
            src.codes(i, metric, |side, code, _| see(side, code));
        }
        src.sums(|_, side, code, _| see(side, code));
    }
    let columns: Vec<(Side, String)> = sides
        .iter()
        .flat_map(|&side| {
            groups_of(&codes[slot(side)], group_by, filter)
                .into_iter()
                .map(move |g| (side, g))
        })
        .collect();
    // The column of each (side, status code) seen, worked out once: naming the group of every
    // code of every sample for every column made a week at full resolution cost tens of ms.
    let column_of = ColumnTable::new(&codes, &columns, group_by, filter);
    let width = columns.len();
    let totals = group_by == GroupBy::Total;
    // The values of successful poll `i` added to `sums` (one per column): code values as
    // integers, or the side totals (measured fractions, added in time order).
    let add = |i: usize, sums: &mut [u128], total_sums: &mut [f64]| {
        if totals {
            for (v, (side, _)) in total_sums.iter_mut().zip(&columns) {
                *v += src.total(i, *side, metric);
            }
            return;
        }
        src.codes(i, metric, |side, code, value| {
            if !wanted[slot(side)] {
                return;
            }
            if let Some(c) = column_of.get(side, code) {
                sums[c] += u128::from(value);
            }
        });
    };
    // Column `c` of a row or bucket of `n` successful polls.
    let value = |sums: &[u128], total_sums: &[f64], c: usize, n: u32| -> f64 {
        if totals {
            total_sums[c] / f64::from(n)
        } else {
            average(sums[c], n, metric)
        }
    };
    let (int_width, float_width) = if totals { (0, width) } else { (width, 0) };

    let step = median_step(&ms);
    // After poll k (of `pts`), whether a missing run of polls starts: then a gap row one usual
    // step after it, strictly before the next poll.
    let hole_after = |k: usize| -> Option<i64> {
        let m = step?;
        let next = *ms.get(k + 1)?;
        (next - ms[k] > 2 * m).then_some(ms[k] + m)
    };

    let mut times: Vec<i64>;
    let mut gaps: Vec<bool>;
    let mut values: Vec<Vec<Option<f64>>>;
    if max_data_points == 0 || pts.len() <= max_data_points as usize {
        // Sums per rollup bucket only come for a range read to be downsampled.
        debug_assert!(
            src.sums_empty(),
            "rollup sums for a series drawn poll by poll"
        );
        let mut row = vec![0u128; int_width];
        let mut total_row = vec![0.0f64; float_width];
        let rows = pts.len() + (0..pts.len()).filter(|&k| hole_after(k).is_some()).count();
        times = Vec::with_capacity(rows);
        gaps = Vec::with_capacity(rows);
        values = (0..width).map(|_| Vec::with_capacity(rows)).collect();
        for (k, &i) in pts.iter().enumerate() {
            times.push(ms[k]);
            if src.ok(i) {
                row.fill(0);
                total_row.fill(0.0);
                add(i, &mut row, &mut total_row);
                gaps.push(false);
                for (c, column) in values.iter_mut().enumerate() {
                    column.push(Some(value(&row, &total_row, c, 1)));
                }
            } else {
                gaps.push(true);
                values.iter_mut().for_each(|c| c.push(None));
            }
            if let Some(h) = hole_after(k) {
                times.push(h);
                gaps.push(true);
                values.iter_mut().for_each(|c| c.push(None));
            }
        }
    } else {
        let bucket_width = bucket_width(spec);
        let bucket = |at: i64| at.div_euclid(bucket_width) * bucket_width;
        // Row instants: the buckets of the polls and of the holes, ascending (both lists are).
        let mut keys: Vec<i64> = Vec::new();
        let mut hole_keys: Vec<i64> = Vec::new();
        for (k, &at) in ms.iter().enumerate() {
            let b = bucket(at);
            if keys.last() != Some(&b) {
                keys.push(b);
            }
            if let Some(h) = hole_after(k) {
                let b = bucket(h);
                if hole_keys.last() != Some(&b) {
                    hole_keys.push(b);
                }
            }
        }
        if !hole_keys.is_empty() {
            keys.extend(hole_keys);
            keys.sort_unstable();
            keys.dedup();
        }
        // Per bucket: the successful polls in it, and per column the sum of their values.
        let mut ok_polls = vec![0u32; keys.len()];
        let mut sums = vec![0u128; keys.len() * int_width];
        let mut total_sums = vec![0.0f64; keys.len() * float_width];
        let mut at = 0;
        for (k, &i) in pts.iter().enumerate() {
            let b = bucket(ms[k]);
            while keys[at] != b {
                at += 1;
            }
            if !src.ok(i) {
                continue;
            }
            ok_polls[at] += 1;
            add(
                i,
                &mut sums[at * int_width..(at + 1) * int_width],
                &mut total_sums[at * float_width..(at + 1) * float_width],
            );
        }
        // Codes summed per rollup bucket: each lies in one bucket, whose polls are listed. They
        // come in time order, so the bucket is almost always the one of the previous sum.
        let mut b = 0;
        src.sums(|start, side, code, sum| {
            if !wanted[slot(side)] {
                return;
            }
            let Some(c) = column_of.get(side, code) else {
                return;
            };
            let key = bucket(start);
            if keys.get(b) != Some(&key) {
                match keys.binary_search(&key) {
                    Ok(found) => b = found,
                    Err(_) => return,
                }
            }
            sums[b * int_width + c] += sum;
        });
        gaps = ok_polls.iter().map(|n| *n == 0).collect();
        values = (0..width)
            .map(|c| {
                ok_polls
                    .iter()
                    .enumerate()
                    .map(|(b, n)| {
                        (*n > 0).then(|| {
                            value(
                                &sums[b * int_width..(b + 1) * int_width],
                                &total_sums[b * float_width..(b + 1) * float_width],
                                c,
                                *n,
                            )
                        })
                    })
                    .collect()
            })
            .collect();
        times = keys;
    }

    let series = columns
        .into_iter()
        .zip(values)
        .map(|((side, status), values)| Series {
            side,
            status,
            values,
        })
        .collect();
    SeriesSet {
        times: times.into_iter().map(from_ms).collect(),
        series,
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estats::model::StatusCodeCount;
    use crate::sample::{Sample, SideStats};

    const T0: i64 = 1_699_999_200_000;

    fn at(s: i64) -> DateTime<Utc> {
        from_ms(T0 + s * 1000)
    }

    fn side(codes: &[(u16, u64, f64)], hits: u64, errors: u64, fail: f64) -> SideStats {
        SideStats {
            hits: Some(hits),
            errors: Some(errors),
            failure_percentage: Some(fail),
            codes: codes
                .iter()
                .map(|&(s, h, p)| StatusCodeCount {
                    http_status: s,
                    hits: h,
                    percentage: p,
                })
                .collect(),
        }
    }

    fn ok(s: i64, edge: SideStats, origin: SideStats) -> Point {
        Point {
            at: at(s),
            sample: Some(Sample {
                sampled_at: at(s),
                edge,
                origin,
                top_ips: vec![],
            }),
        }
    }

    fn failed(s: i64) -> Point {
        Point {
            at: at(s),
            sample: None,
        }
    }

    /// Polls every 10 s: 200/503/404 on the edge, 200/502 on the origin, one failure at 20 s.
    fn fixture() -> Vec<Point> {
        vec![
            ok(
                0,
                side(&[(200, 80, 80.0), (503, 20, 20.0)], 100, 20, 20.0),
                side(&[(200, 10, 100.0)], 10, 0, 0.0),
            ),
            ok(
                10,
                side(
                    &[(200, 50, 50.0), (404, 10, 10.0), (503, 40, 40.0)],
                    100,
                    50,
                    50.0,
                ),
                side(&[(200, 6, 60.0), (502, 4, 40.0)], 10, 4, 40.0),
            ),
            failed(20),
            ok(
                30,
                side(&[(200, 90, 90.0), (502, 10, 10.0)], 100, 10, 10.0),
                side(&[(200, 10, 100.0)], 10, 0, 0.0),
            ),
        ]
    }

    /// The series of `points` from 0 s to 30 s, at 1 s intervals.
    fn shaped(
        points: &[Point],
        sides: &[Side],
        group_by: GroupBy,
        metric: Metric,
        filter: &str,
        max: u32,
    ) -> SeriesSet {
        build(
            points,
            &SeriesSpec {
                sides,
                group_by,
                metric,
                filter: &StatusFilter::parse(filter).unwrap(),
                from: at(0),
                to: at(30),
                interval: Duration::from_secs(1),
                max_data_points: max,
            },
        )
    }

    fn find<'a>(set: &'a SeriesSet, side: Side, status: &str) -> &'a [Option<f64>] {
        &set.series
            .iter()
            .find(|s| s.side == side && s.status == status)
            .unwrap_or_else(|| panic!("no series {side:?} {status}"))
            .values
    }

    fn names(set: &SeriesSet) -> Vec<String> {
        set.series
            .iter()
            .map(|s| format!("{}:{}", s.side.as_str(), s.status))
            .collect()
    }

    #[test]
    fn by_code_absent_is_zero_and_failure_is_a_gap() {
        let set = shaped(
            &fixture(),
            &Side::BOTH,
            GroupBy::Code,
            Metric::Percentage,
            "",
            0,
        );
        assert_eq!(set.times, vec![at(0), at(10), at(20), at(30)]);
        assert_eq!(set.gaps, [false, false, true, false]);
        assert_eq!(
            names(&set),
            [
                "edge:200",
                "edge:404",
                "edge:502",
                "edge:503",
                "origin:200",
                "origin:502"
            ]
        );
        assert_eq!(
            find(&set, Side::Edge, "503"),
            [Some(20.0), Some(40.0), None, Some(0.0)]
        );
        assert_eq!(
            find(&set, Side::Edge, "404"),
            [Some(0.0), Some(10.0), None, Some(0.0)]
        );
        assert_eq!(
            find(&set, Side::Origin, "502"),
            [Some(0.0), Some(40.0), None, Some(0.0)]
        );
    }

    #[test]
    fn by_class_sums_codes_of_the_class() {
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Class,
            Metric::Hits,
            "",
            0,
        );
        assert_eq!(names(&set), ["edge:2xx", "edge:4xx", "edge:5xx"]);
        assert_eq!(
            find(&set, Side::Edge, "5xx"),
            [Some(20.0), Some(40.0), None, Some(10.0)]
        );
        assert_eq!(
            find(&set, Side::Edge, "2xx"),
            [Some(80.0), Some(50.0), None, Some(90.0)]
        );
    }

    #[test]
    fn total_uses_side_totals() {
        for (metric, edge) in [
            (Metric::Hits, [Some(100.0), Some(100.0), None, Some(100.0)]),
            (Metric::Errors, [Some(20.0), Some(50.0), None, Some(10.0)]),
            (
                Metric::FailurePercentage,
                [Some(20.0), Some(50.0), None, Some(10.0)],
            ),
        ] {
            let set = shaped(&fixture(), &Side::BOTH, GroupBy::Total, metric, "", 0);
            assert_eq!(names(&set), ["edge:total", "origin:total"]);
            assert_eq!(find(&set, Side::Edge, "total"), edge, "{metric:?}");
        }
        let set = shaped(
            &fixture(),
            &[Side::Origin],
            GroupBy::Total,
            Metric::FailurePercentage,
            "",
            0,
        );
        assert_eq!(
            find(&set, Side::Origin, "total"),
            [Some(0.0), Some(40.0), None, Some(0.0)]
        );
    }

    #[test]
    fn filter_keeps_matching_codes_and_named_groups() {
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Code,
            Metric::Hits,
            "5xx,404",
            0,
        );
        assert_eq!(names(&set), ["edge:404", "edge:502", "edge:503"]);
        // Class grouping with a code filter: only 404 counts towards 4xx.
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Class,
            Metric::Percentage,
            "404,5xx",
            0,
        );
        assert_eq!(names(&set), ["edge:4xx", "edge:5xx"]);
        assert_eq!(
            find(&set, Side::Edge, "5xx"),
            [Some(20.0), Some(40.0), None, Some(10.0)]
        );
        // A class nobody saw still has a series, of zeros where samples succeeded.
        let set = shaped(
            &fixture(),
            &[Side::Origin],
            GroupBy::Class,
            Metric::Hits,
            "3xx",
            0,
        );
        assert_eq!(names(&set), ["origin:3xx"]);
        assert_eq!(
            find(&set, Side::Origin, "3xx"),
            [Some(0.0), Some(0.0), None, Some(0.0)]
        );
    }

    #[test]
    fn downsampling_averages_per_bucket_and_keeps_gaps() {
        // 2 points per bucket: range 0..30 s, max 3 points -> width max(1 s, 30 s / 2) = 15 s;
        // buckets [0,15): 0 s, 10 s; [15,30): 20 s (failed), 30 s lands in [30,45).
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Code,
            Metric::Percentage,
            "",
            3,
        );
        assert_eq!(set.times, vec![at(0), at(15), at(30)]);
        assert_eq!(set.gaps, [false, true, false], "a bucket of failures only");
        assert_eq!(find(&set, Side::Edge, "503"), [Some(30.0), None, Some(0.0)]);
        assert_eq!(find(&set, Side::Edge, "404"), [Some(5.0), None, Some(0.0)]);
        assert_eq!(
            find(&set, Side::Edge, "200"),
            [Some(65.0), None, Some(90.0)]
        );
    }

    #[test]
    fn bucket_averages_skip_failures() {
        let mut pts = fixture();
        pts.push(ok(
            25,
            side(&[(503, 60, 60.0)], 100, 60, 60.0),
            SideStats::default(),
        ));
        // Width 15 s: [15,30) holds the failure at 20 s and 60 % at 25 s: average 60, not 30.
        let set = shaped(
            &pts,
            &[Side::Edge],
            GroupBy::Code,
            Metric::Percentage,
            "",
            3,
        );
        assert_eq!(
            find(&set, Side::Edge, "503"),
            [Some(30.0), Some(60.0), Some(0.0)]
        );
        assert_eq!(set.gaps, [false, false, false]);
    }

    #[test]
    fn interval_widens_buckets() {
        let set = build(
            &fixture(),
            &SeriesSpec {
                sides: &[Side::Edge],
                group_by: GroupBy::Total,
                metric: Metric::Errors,
                filter: &StatusFilter::default(),
                from: at(0),
                to: at(30),
                interval: Duration::from_secs(40),
                max_data_points: 3,
            },
        );
        // One 40 s bucket: errors 20, 50, (failed), 10 -> 80 / 3.
        assert_eq!(set.times, vec![at(0)]);
        let v = find(&set, Side::Edge, "total")[0].unwrap();
        assert!((v - 80.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn missing_polls_become_a_gap() {
        // Every 10 s, then nothing from 30 s to 100 s: a null one step after 30 s.
        let s = |n| side(&[(200, n, 100.0)], n, 0, 0.0);
        let pts: Vec<Point> = [0, 10, 20, 30, 100, 110]
            .iter()
            .map(|&t| ok(t, s(1), SideStats::default()))
            .collect();
        let set = build(
            &pts,
            &SeriesSpec {
                sides: &[Side::Edge],
                group_by: GroupBy::Code,
                metric: Metric::Hits,
                filter: &StatusFilter::default(),
                from: at(0),
                to: at(110),
                interval: Duration::from_secs(1),
                max_data_points: 100,
            },
        );
        assert_eq!(set.times, [0, 10, 20, 30, 40, 100, 110].map(at).to_vec());
        assert_eq!(find(&set, Side::Edge, "200")[4], None);
        assert_eq!(
            set.gaps,
            [false, false, false, false, true, false, false],
            "the hole is a gap"
        );
        assert_eq!(find(&set, Side::Edge, "200")[3], Some(1.0));
    }

    #[test]
    fn points_outside_the_range_are_ignored_and_empty_ranges_have_named_series() {
        let set = build(
            &fixture(),
            &SeriesSpec {
                sides: &[Side::Edge],
                group_by: GroupBy::Class,
                metric: Metric::Hits,
                filter: &StatusFilter::parse("5xx").unwrap(),
                from: at(100),
                to: at(200),
                interval: Duration::from_secs(1),
                max_data_points: 10,
            },
        );
        assert!(set.times.is_empty());
        assert_eq!(names(&set), ["edge:5xx"]);
        assert!(set.series[0].values.is_empty());
        assert!(set.gaps.is_empty());
    }

    #[test]
    fn stored_polls_are_in_range_by_the_whole_milliseconds_it_holds() {
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        let range = Range::new(
            at(10) + chrono::Duration::microseconds(300),
            at(20) + chrono::Duration::microseconds(700),
        );
        assert_eq!((range.from_ms, range.to_ms), (ms(at(10)) + 1, ms(at(20))));
        let exact = Range::new(at(10), at(20));
        assert_eq!((exact.from_ms, exact.to_ms), (ms(at(10)), ms(at(20))));
        let before = Range::new(
            from_ms(-1500) + chrono::Duration::microseconds(1),
            from_ms(0),
        );
        assert_eq!(
            before.from_ms, -1499,
            "before the epoch, still the next whole ms"
        );
    }

    #[test]
    fn gaps_do_not_depend_on_the_columns() {
        // Codes of a class no sample has: no series at all, and still rows with their gaps.
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Code,
            Metric::Hits,
            "3xx",
            0,
        );
        assert!(set.series.is_empty());
        assert_eq!(set.gaps, [false, false, true, false]);
    }
}
