//! `distribution`: the latest sample's status codes (or classes) per side, as `numeric-long`.

use std::collections::BTreeMap;

use crate::frame::{Field, Frame, FrameType, Values};
use crate::query::{status_group, GroupBy, Query};
use crate::sample::Sample;

/// Rows of (side, status group, hits, percentage) for the sides and statuses the query keeps.
/// Groups the status filter names explicitly (`5xx`, `503`) get a row even when absent from the
/// sample (0 hits, 0 %), as in `timeseries`: an alert on "edge 5xx" then sees 0, not "no data".
pub fn rows(query: &Query, sample: &Sample) -> Vec<(&'static str, String, i64, f64)> {
    let mut rows = Vec::new();
    for &side in query.side.sides() {
        let stats = sample.side(side);
        if query.group_by == GroupBy::Total {
            if let Some(hits) = stats.hits {
                let pct = if hits > 0 { 100.0 } else { 0.0 };
                rows.push((side.as_str(), "total".to_string(), hits as i64, pct));
            }
            continue;
        }
        let mut groups: BTreeMap<String, (i64, f64)> = query
            .status_filter
            .explicit_groups(query.group_by)
            .into_iter()
            .map(|g| (g, (0, 0.0)))
            .collect();
        for code in stats
            .codes
            .iter()
            .filter(|c| query.status_filter.matches(c.http_status))
        {
            let entry = groups
                .entry(status_group(code.http_status, query.group_by))
                .or_default();
            entry.0 += code.hits as i64;
            entry.1 += code.percentage;
        }
        for (status, (hits, pct)) in groups {
            rows.push((side.as_str(), status, hits, round2(pct)));
        }
    }
    rows
}

/// Percentages summed over codes drift in the last bits; two decimals is what eStats reports.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn frame(query: &Query, sample: &Sample, stale: Option<&str>) -> Frame {
    let rows = rows(query, sample);
    let mut frame = Frame::new("distribution", FrameType::NumericLong)
        .with_field(Field::new(
            "side",
            Values::Str(rows.iter().map(|r| r.0.to_string()).collect()),
        ))
        .with_field(Field::new(
            "status",
            Values::Str(rows.iter().map(|r| r.1.clone()).collect()),
        ))
        .with_field(Field::new(
            "hits",
            Values::I64(rows.iter().map(|r| r.2).collect()),
        ))
        .with_field(
            Field::new(
                "percentage",
                Values::F64(rows.iter().map(|r| r.3).collect()),
            )
            .with_config(serde_json::json!({"unit": "percent", "min": 0, "max": 100})),
        );
    frame.meta.preferred_visualisation = Some("table");
    super::latest_sample_meta(frame, query, sample, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::golden;
    use crate::query::Query;

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "")
    }

    #[test]
    fn by_code_both_sides() {
        let q = query(r#"{"cpCode": 1234567}"#);
        golden::check(
            "distribution_code_both",
            &[frame(&q, &golden::example_sample(), None)],
        );
    }

    #[test]
    fn by_class_edge_with_stale_notice() {
        let q = query(r#"{"cpCode": 1234567, "groupBy": "class", "side": "edge"}"#);
        let f = frame(
            &q,
            &golden::example_sample(),
            Some("sample is 300 s old: the last poll failed"),
        );
        let rows = rows(&q, &golden::example_sample());
        assert_eq!(rows, vec![("edge", "2xx".to_string(), 72804 + 2442, 94.47)]);
        golden::check("distribution_class_edge_stale", &[f]);
    }

    #[test]
    fn a_filtered_class_absent_from_the_sample_is_a_zero_row() {
        let q = query(
            r#"{"cpCode": 1234567, "groupBy": "class", "side": "edge", "statusFilter": "5xx,2xx"}"#,
        );
        let rows = rows(&q, &golden::example_sample());
        assert_eq!(
            rows,
            vec![
                ("edge", "2xx".to_string(), 72804 + 2442, 94.47),
                ("edge", "5xx".to_string(), 0, 0.0)
            ]
        );
    }

    #[test]
    fn status_filter_drops_rows() {
        let q = query(r#"{"cpCode": 1234567, "statusFilter": "204"}"#);
        let rows = rows(&q, &golden::example_sample());
        assert_eq!(
            rows,
            vec![
                ("edge", "204".to_string(), 2442, 3.07),
                ("origin", "204".to_string(), 2402, 2.92)
            ]
        );
    }
}
