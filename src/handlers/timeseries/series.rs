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
//!   `max(interval, (to - from) / max_data_points, 1 ms)` aligned to `from`, each row stamped
//!   with its bucket's start; a bucket of failures only is `None`;
//! - class groups sum the codes of the class; `total` takes the side's totals (hits, errors,
//!   failure percentage);
//! - the status filter applies to codes; groups the filter names explicitly exist even when no
//!   sample has them (0 in successful samples), so an alert on "5xx" sees 0 rather than no data;
//! - series come by side (edge, origin), then status ascending;
//! - every row says whether it is a gap (no successful sample in it), whatever the columns: the
//!   live path fills the columns a set lacks with 0 in samples and null in gaps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::history::store::from_ms;
use crate::history::Point;
use crate::query::{status_group, GroupBy, Metric, Query, StatusFilter};
use crate::sample::{Sample, Side};

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

fn groups_of(
    points: &[&Point],
    side: Side,
    group_by: GroupBy,
    filter: &StatusFilter,
) -> Vec<String> {
    if group_by == GroupBy::Total {
        return vec![TOTAL.to_string()];
    }
    // Distinct codes first: naming a group per code per sample allocates once per value.
    let mut codes: BTreeSet<u16> = BTreeSet::new();
    for p in points {
        if let Some(s) = &p.sample {
            codes.extend(s.side(side).codes.iter().map(|c| c.http_status));
        }
    }
    let mut groups: BTreeSet<String> = filter.explicit_groups(group_by).into_iter().collect();
    groups.extend(
        codes
            .into_iter()
            .filter(|c| filter.matches(*c))
            .map(|c| status_group(c, group_by)),
    );
    let mut groups: Vec<String> = groups.into_iter().collect();
    // "99" < "404" < "503" and "2xx" < "5xx": shorter first, then by text.
    groups.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    groups
}

/// The `total` group of one side in one successful sample.
fn total_value(sample: &Sample, side: Side, metric: Metric) -> f64 {
    let stats = sample.side(side);
    // A successful answer that omits a total says there was nothing to count.
    match metric {
        Metric::Hits => stats.hits.unwrap_or(0) as f64,
        Metric::Errors => stats.errors.unwrap_or(0) as f64,
        Metric::FailurePercentage | Metric::Percentage => stats.failure_percentage.unwrap_or(0.0),
    }
}

/// The column of each (side, status code): a direct table for HTTP codes (one lookup per
/// value of a week at full resolution must not hash), a map for anything else.
#[derive(Default)]
struct ColumnTable {
    direct: [Vec<Option<Option<usize>>>; 2],
    other: HashMap<(Side, u16), Option<usize>>,
}

impl ColumnTable {
    const DIRECT: usize = 1000;

    fn slot(side: Side) -> usize {
        match side {
            Side::Edge => 0,
            Side::Origin => 1,
        }
    }

    fn get_or_insert_with(
        &mut self,
        side: Side,
        code: u16,
        column: impl FnOnce() -> Option<usize>,
    ) {
        if usize::from(code) < Self::DIRECT {
            let table = &mut self.direct[Self::slot(side)];
            if table.is_empty() {
                table.resize(Self::DIRECT, None);
            }
            if table[usize::from(code)].is_none() {
                table[usize::from(code)] = Some(column());
            }
        } else {
            self.other.entry((side, code)).or_insert_with(column);
        }
    }

    fn get(&self, side: Side, code: u16) -> Option<usize> {
        if usize::from(code) < Self::DIRECT {
            self.direct[Self::slot(side)]
                .get(usize::from(code))
                .copied()
                .flatten()
                .flatten()
        } else {
            self.other.get(&(side, code)).copied().flatten()
        }
    }
}

fn median_step(times: &[i64]) -> Option<i64> {
    let mut steps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    Some(steps[steps.len() / 2]).filter(|m| *m > 0)
}

/// The series of `spec` over `points` (in any order), with the gap mask of its rows.
pub fn build(points: &[Point], spec: &SeriesSpec) -> SeriesSet {
    let &SeriesSpec {
        sides,
        group_by,
        metric,
        filter,
        from,
        to,
        interval,
        max_data_points,
    } = spec;
    // In range, ascending, one per instant (a successful poll wins over a failed one).
    let mut pts: Vec<&Point> = points
        .iter()
        .filter(|p| p.at >= from && p.at <= to)
        .collect();
    pts.sort_by_key(|p| (p.at, p.sample.is_none()));
    pts.dedup_by_key(|p| p.at);

    let mut sides: Vec<Side> = sides.to_vec();
    sides.sort();
    sides.dedup();
    let columns: Vec<(Side, String)> = sides
        .iter()
        .flat_map(|&side| {
            groups_of(&pts, side, group_by, filter)
                .into_iter()
                .map(move |g| (side, g))
        })
        .collect();

    // The column of each (side, status code) seen, worked out once: naming the group of every
    // code of every sample for every column made a week at full resolution cost tens of ms.
    let mut column_of = ColumnTable::default();
    if group_by != GroupBy::Total {
        for s in pts.iter().filter_map(|p| p.sample.as_ref()) {
            for &side in &sides {
                for c in &s.side(side).codes {
                    column_of.get_or_insert_with(side, c.http_status, || {
                        if !filter.matches(c.http_status) {
                            return None;
                        }
                        let group = status_group(c.http_status, group_by);
                        columns
                            .iter()
                            .position(|(sd, g)| *sd == side && *g == group)
                    });
                }
            }
        }
    }
    let row_of = |p: &Point| -> Vec<Option<f64>> {
        let Some(s) = p.sample.as_ref() else {
            return vec![None; columns.len()];
        };
        if group_by == GroupBy::Total {
            return columns
                .iter()
                .map(|(side, _)| Some(total_value(s, *side, metric)))
                .collect();
        }
        let mut row = vec![Some(0.0); columns.len()];
        for &side in &sides {
            for c in &s.side(side).codes {
                if let Some(i) = column_of.get(side, c.http_status) {
                    if let Some(v) = row[i].as_mut() {
                        *v += match metric {
                            Metric::Hits | Metric::Errors => c.hits as f64,
                            Metric::Percentage | Metric::FailurePercentage => c.percentage,
                        };
                    }
                }
            }
        }
        row
    };

    let ms: Vec<i64> = pts.iter().map(|p| p.at.timestamp_millis()).collect();
    let step = median_step(&ms);
    // Instants where a missing run of polls starts: one usual step after the last poll seen.
    let holes: Vec<i64> = match step {
        Some(m) => ms
            .windows(2)
            .filter(|w| w[1] - w[0] > 2 * m)
            .map(|w| w[0] + m)
            .collect(),
        None => Vec::new(),
    };
    let gap = || (true, vec![None; columns.len()]);

    // Per row instant: whether it is a gap, and its values.
    let mut rows: BTreeMap<i64, (bool, Vec<Option<f64>>)> = BTreeMap::new();
    if max_data_points == 0 || pts.len() <= max_data_points as usize {
        for (p, at) in pts.iter().zip(&ms) {
            rows.insert(*at, (p.sample.is_none(), row_of(p)));
        }
        for h in holes {
            rows.entry(h).or_insert_with(gap);
        }
    } else {
        let from_ms = from.timestamp_millis();
        let span = (to.timestamp_millis() - from_ms).max(0);
        let width = (interval.as_millis() as i64)
            .max((span + i64::from(max_data_points) - 1) / i64::from(max_data_points))
            .max(1);
        let bucket = |at: i64| from_ms + (at - from_ms).div_euclid(width) * width;
        // Per bucket: whether a sample succeeded, and per column (sum, count) of the non-null
        // values.
        let mut acc: BTreeMap<i64, (bool, Vec<(f64, u32)>)> = BTreeMap::new();
        for (p, at) in pts.iter().zip(&ms) {
            let (succeeded, cells) = acc
                .entry(bucket(*at))
                .or_insert_with(|| (false, vec![(0.0, 0); columns.len()]));
            *succeeded |= p.sample.is_some();
            for (cell, v) in cells.iter_mut().zip(row_of(p)) {
                if let Some(v) = v {
                    cell.0 += v;
                    cell.1 += 1;
                }
            }
        }
        for (b, (succeeded, cells)) in acc {
            rows.insert(
                b,
                (
                    !succeeded,
                    cells
                        .into_iter()
                        .map(|(sum, n)| (n > 0).then(|| sum / f64::from(n)))
                        .collect(),
                ),
            );
        }
        for h in holes {
            rows.entry(bucket(h)).or_insert_with(gap);
        }
    }

    let times = rows.keys().map(|ms| from_ms(*ms)).collect();
    let mut gaps = Vec::with_capacity(rows.len());
    let mut series: Vec<Series> = columns
        .into_iter()
        .map(|(side, status)| Series {
            side,
            status,
            values: Vec::with_capacity(rows.len()),
        })
        .collect();
    for (gap, row) in rows.into_values() {
        gaps.push(gap);
        for (s, v) in series.iter_mut().zip(row) {
            s.values.push(v);
        }
    }
    SeriesSet {
        times,
        series,
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estats::model::StatusCodeCount;
    use crate::sample::SideStats;

    const T0: i64 = 1_700_000_000_000;

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
        // 2 points per bucket: range 0..30 s, max 2 points -> width max(1 s, 15 s) = 15 s;
        // buckets [0,15): 0 s, 10 s; [15,30): 20 s (failed), 30 s lands in [30,45).
        let set = shaped(
            &fixture(),
            &[Side::Edge],
            GroupBy::Code,
            Metric::Percentage,
            "",
            2,
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
            2,
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
