//! `timeseries`: a target's history as one `timeseries-wide` frame: a `time` field and one
//! field per (side, status group), labelled `side`, `status` and `target`. Failed polls stay
//! null (gaps), never zeros.

use crate::frame::{Field, Frame, FrameType, Notice, Severity, Values};
use crate::history::series::{build_series, SeriesSet};
use crate::history::Point;
use crate::query::{Metric, Query};

fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::Percentage | Metric::FailurePercentage => "percent",
        Metric::Hits | Metric::Errors => "short",
    }
}

pub fn series(query: &Query, points: &[Point]) -> SeriesSet {
    build_series(
        points,
        query.side.sides(),
        query.group_by,
        query.metric,
        &query.status_filter,
        query.from,
        query.to,
        query.interval,
        query.max_data_points,
    )
}

pub fn frame(query: &Query, points: &[Point]) -> Frame {
    frame_from_series(query, series(query, points))
}

pub fn frame_from_series(query: &Query, set: SeriesSet) -> Frame {
    let target = query.target.key();
    let mut frame = Frame::new("timeseries", FrameType::TimeseriesWide)
        .with_field(Field::new("time", Values::Time(set.times)));
    for s in set.series {
        let config = serde_json::json!({
            "displayNameFromDS": format!("{} {}", s.side.as_str(), s.status),
            "unit": unit(query.metric),
        });
        frame.fields.push(
            Field::new(query.metric.as_str(), Values::OptF64(s.values))
                .with_labels([
                    ("side".to_string(), s.side.as_str().to_string()),
                    ("status".to_string(), s.status),
                    ("target".to_string(), target.clone()),
                ])
                .with_config(config),
        );
    }
    if frame.rows() == 0 {
        frame.meta.notices.push(Notice {
            severity: Severity::Info,
            text: format!(
                "no samples of {} in this time range yet: the plugin polls it from now on, and history starts with the first poll",
                query.target.label()
            ),
        });
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::golden;
    use crate::query::QueryContext;

    /// A query over the range of [`golden::example_points`], 07:15:00 to 07:17:00.
    fn query(json: &str, max_data_points: i64) -> Query {
        let ctx = QueryContext {
            from_ms: 1_614_323_700_000,
            to_ms: 1_614_323_820_000,
            interval_ms: 1000,
            max_data_points,
        };
        Query::parse("A", json.as_bytes(), "timeseries", ctx, None).expect("query parses")
    }

    #[test]
    fn by_code_both_sides_with_a_failed_poll_and_a_hole() {
        let q = query(r#"{"cpCode": 1234567}"#, 1000);
        golden::check(
            "timeseries_code_both_gaps",
            &[frame(&q, &golden::example_points())],
        );
    }

    #[test]
    fn by_class_on_the_edge_downsampled() {
        let q = query(
            r#"{"cpCode": 1234567, "groupBy": "class", "metric": "hits", "side": "edge"}"#,
            3,
        );
        golden::check(
            "timeseries_class_edge_hits_downsampled",
            &[frame(&q, &golden::example_points())],
        );
    }

    #[test]
    fn total_failure_percentage() {
        let q = query(
            r#"{"cpCode": 1234567, "groupBy": "total", "metric": "failurePercentage"}"#,
            1000,
        );
        golden::check(
            "timeseries_total_failure_percentage",
            &[frame(&q, &golden::example_points())],
        );
    }

    #[test]
    fn no_history_yet_keeps_the_filtered_series_and_says_why() {
        let q = query(
            r#"{"url": "https://www.example.com/", "groupBy": "class", "statusFilter": "5xx"}"#,
            1000,
        );
        golden::check("timeseries_empty_filtered", &[frame(&q, &[])]);
    }
}
