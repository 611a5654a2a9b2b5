//! Column alignment for live `timeseries` queries.
//!
//! Grafana appends a pushed frame to the panel's buffer only if its fields have the same names
//! and types, in the same order, as the frames before; otherwise it replaces the buffer. Every
//! numeric field of a `timeseries` frame is named after the metric, so a push with a different
//! set of (side, status) columns but the same count would be appended under the wrong labels.
//! Live `timeseries` frames therefore all use one column set, [`columns_for`] the status codes
//! held for the target, widened by [`merge_columns`] when a new status shows up; a column absent
//! from a successful sample is 0, as in any timeseries frame, and null in gaps.

use super::series::{Series, SeriesSet, TOTAL};
use crate::query::{status_group, GroupBy, Query};
use crate::sample::Side;

/// One numeric column of a `timeseries` frame.
pub type Column = (Side, String);

fn sort_columns(columns: &mut Vec<Column>) {
    // The order of the series builder: side, then shorter status first, then by text.
    columns.sort_by(|a, b| (a.0, a.1.len(), &a.1).cmp(&(b.0, b.1.len(), &b.1)));
    columns.dedup();
}

/// The columns of a live `timeseries` query over status codes `codes` (those held for the
/// target): every status group the filter keeps, on every side the query covers.
pub fn columns_for(query: &Query, codes: &[u16]) -> Vec<Column> {
    let mut columns = Vec::new();
    for &side in query.side.sides() {
        if query.group_by == GroupBy::Total {
            columns.push((side, TOTAL.to_string()));
            continue;
        }
        for g in query.status_filter.explicit_groups(query.group_by) {
            columns.push((side, g));
        }
        for &c in codes {
            if query.status_filter.matches(c) {
                columns.push((side, status_group(c, query.group_by)));
            }
        }
    }
    sort_columns(&mut columns);
    columns
}

/// Adds the columns of `set` that `columns` lacks; returns whether any was added.
pub fn merge_columns(columns: &mut Vec<Column>, set: &SeriesSet) -> bool {
    let before = columns.len();
    for s in &set.series {
        if !columns
            .iter()
            .any(|(side, st)| *side == s.side && *st == s.status)
        {
            columns.push((s.side, s.status.clone()));
        }
    }
    if columns.len() == before {
        return false;
    }
    sort_columns(columns);
    true
}

/// `set` with exactly `columns`, in their order. A column `set` lacks is 0 in its rows of
/// successful samples and null in its gaps, as the series builder would have made it.
pub fn widen(mut set: SeriesSet, columns: &[Column]) -> SeriesSet {
    let series = columns
        .iter()
        .map(|(side, status)| {
            match set
                .series
                .iter()
                .position(|s| s.side == *side && s.status == *status)
            {
                Some(i) => set.series.swap_remove(i),
                None => Series {
                    side: *side,
                    status: status.clone(),
                    values: set.gaps.iter().map(|gap| (!gap).then_some(0.0)).collect(),
                },
            }
        })
        .collect();
    SeriesSet { series, ..set }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "")
    }

    fn series(side: Side, status: &str, values: &[Option<f64>]) -> Series {
        Series {
            side,
            status: status.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn columns_cover_held_codes_and_filter_groups() {
        let q = query(
            r#"{"cpCode": 1, "queryType": "timeseries", "groupBy": "class", "statusFilter": "5xx,404"}"#,
        );
        assert_eq!(
            columns_for(&q, &[200, 404, 503]),
            vec![
                (Side::Edge, "4xx".to_string()),
                (Side::Edge, "5xx".to_string()),
                (Side::Origin, "4xx".to_string()),
                (Side::Origin, "5xx".to_string()),
            ]
        );
        let q = query(r#"{"cpCode": 1, "queryType": "timeseries", "side": "edge"}"#);
        assert_eq!(
            columns_for(&q, &[503, 99, 200]),
            vec![
                (Side::Edge, "99".to_string()),
                (Side::Edge, "200".to_string()),
                (Side::Edge, "503".to_string()),
            ]
        );
        let q = query(r#"{"cpCode": 1, "queryType": "timeseries", "groupBy": "total"}"#);
        assert_eq!(
            columns_for(&q, &[200]),
            vec![(Side::Edge, "total".into()), (Side::Origin, "total".into())]
        );
    }

    #[test]
    fn widen_fills_zeros_in_samples_and_nulls_in_gaps() {
        let t = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let set = SeriesSet {
            times: vec![t(1), t(2), t(3)],
            series: vec![series(Side::Edge, "503", &[Some(5.0), None, Some(1.0)])],
            gaps: vec![false, true, false],
        };
        let mut columns = vec![(Side::Edge, "200".to_string())];
        assert!(merge_columns(&mut columns, &set));
        assert!(!merge_columns(&mut columns, &set));
        let wide = widen(set, &columns);
        assert_eq!(wide.times.len(), 3);
        assert_eq!(wide.gaps, [false, true, false]);
        assert_eq!(
            wide.series,
            vec![
                series(Side::Edge, "200", &[Some(0.0), None, Some(0.0)]),
                series(Side::Edge, "503", &[Some(5.0), None, Some(1.0)]),
            ]
        );
    }
}
