//! `timeseries`: a target's history as one `timeseries-wide` frame: a `time` field and one
//! field per (side, status group), labelled `side`, `status` and `target`. Failed polls stay
//! null (gaps), never zeros.
//!
//! [`series`] shapes the polls into series; [`columns`] keeps the frames of a live query (the
//! query's frame and every row the stream pushes after it) on one column set.

pub mod columns;
pub mod series;

use self::columns::{merge_columns, widen, Column};
use self::series::{build, build_polls, SeriesSet, SeriesSpec};
use crate::frame::{Field, Frame, FrameType, Notice, Severity, Values};
use crate::history::polls::{Polls, Wanted};
use crate::history::{History, HistoryError, Point};
use crate::query::{Metric, Query};
use crate::sample::Sample;

fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::Percentage | Metric::FailurePercentage => "percent",
        Metric::Hits | Metric::Errors => "short",
    }
}

pub fn frame(query: &Query, points: &[Point]) -> Frame {
    frame_from_series(query, build(points, &SeriesSpec::of(query)))
}

/// [`frame`] from stored polls ([`History::polls`] read with [`series::wanted`]): the same
/// frame, without building a sample per poll.
pub fn frame_of_polls(query: &Query, polls: &Polls) -> Frame {
    frame_from_series(query, build_polls(polls, &SeriesSpec::of(query)))
}

/// What of the stored polls the series of `query` need.
pub fn wanted(query: &Query) -> Wanted {
    series::wanted(&SeriesSpec::of(query))
}

/// The frame of a (not live) `timeseries` query of data source `uid`, read from `history` the
/// fast way: what a week-long panel should call instead of `History::range` then [`frame`].
pub async fn frame_from_history(
    query: &Query,
    history: &History,
    uid: &str,
) -> Result<Frame, HistoryError> {
    let polls = history
        .polls(
            uid,
            &query.target,
            query.from,
            query.to,
            series::wanted(&SeriesSpec::of(query)),
        )
        .await?;
    Ok(frame_of_polls(query, &polls))
}

/// The frame of a live query: the columns of every status in `held_codes` (those the history
/// holds for the target) and of the points, so that the rows the stream pushes later line up.
pub fn live_frame(query: &Query, points: &[Point], held_codes: &[u16]) -> Frame {
    let set = build(points, &SeriesSpec::of(query));
    let mut columns = columns::columns_for(query, held_codes);
    merge_columns(&mut columns, &set);
    frame_from_series(query, widen(set, &columns))
}

/// The one-row frame a live query's stream pushes for a new sample, on `columns` (the query
/// frame's), which grow when the sample brings a new status.
pub fn pushed_frame(query: &Query, columns: &mut Vec<Column>, sample: &Sample) -> Frame {
    let points = [Point {
        at: sample.sampled_at,
        sample: Some(sample.clone()),
    }];
    let set = build(&points, &SeriesSpec::of(query));
    if merge_columns(columns, &set) {
        tracing::debug!(target = %query.target, columns = columns.len(), "a new status joins the live series; Grafana restarts the panel's buffer");
    }
    frame_from_series(query, widen(set, columns))
}

fn frame_from_series(query: &Query, set: SeriesSet) -> Frame {
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

    #[test]
    fn live_frame_has_a_column_for_every_held_status() {
        // 404 and 503 are held for the target but absent from these polls: 0 in samples,
        // null in gaps.
        let q = query(
            r#"{"cpCode": 1234567, "side": "edge", "metric": "hits", "live": true}"#,
            1000,
        );
        golden::check(
            "timeseries_live_held_columns",
            &[live_frame(&q, &golden::example_points(), &[200, 404, 503])],
        );
    }

    fn statuses(f: &Frame) -> Vec<&str> {
        f.fields[1..]
            .iter()
            .map(|f| f.labels["status"].as_str())
            .collect()
    }

    fn sample(at_s: i64, codes: &[(u16, u64)]) -> Sample {
        let at = chrono::DateTime::from_timestamp(at_s, 0).unwrap();
        let fetched = crate::upstream::fake::fetched(at, codes);
        Sample::from_response(at, &fetched.response)
    }

    #[test]
    fn pushed_rows_keep_the_columns_and_grow_them_for_new_statuses() {
        let q = query(
            r#"{"cpCode": 1, "side": "edge", "metric": "hits", "live": true}"#,
            1000,
        );
        let mut columns = columns::columns_for(&q, &[200, 404, 503]);
        let f = pushed_frame(&q, &mut columns, &sample(1_614_323_710, &[(200, 9)]));
        assert_eq!(f.rows(), 1);
        assert_eq!(statuses(&f), ["200", "404", "503"]);
        assert_eq!(f.fields[0].name, "time");
        assert!(f.fields[1..].iter().all(|f| f.name == "hits"));
        assert_eq!(
            f.fields[2].values,
            Values::OptF64(vec![Some(0.0)]),
            "absent from a successful sample: 0"
        );
        let s = sample(1_614_323_720, &[(200, 9), (502, 1)]);
        let f = pushed_frame(&q, &mut columns, &s);
        assert_eq!(statuses(&f), ["200", "404", "502", "503"]);
    }

    #[test]
    fn query_frame_and_pushes_share_columns() {
        let q = query(r#"{"cpCode": 1, "groupBy": "class", "live": true}"#, 1000);
        let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let points = vec![
            Point {
                at: at(1_614_323_710),
                sample: Some(sample(1_614_323_710, &[(200, 9)])),
            },
            Point {
                at: at(1_614_323_720),
                sample: None,
            },
        ];
        let frame = live_frame(&q, &points, &[200, 503]);
        // The stream pushes with the query of its channel path, over the sample's instant.
        let s = sample(1_614_323_730, &[(503, 1)]);
        let push_query = crate::live::LivePath::for_query(&q)
            .unwrap()
            .query(q.target.clone(), s.sampled_at);
        let mut columns = columns::columns_for(&q, &[200, 503]);
        let pushed = pushed_frame(&push_query, &mut columns, &s);
        let shape = |f: &Frame| {
            f.fields
                .iter()
                .map(|f| (f.name.clone(), f.labels.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&frame), shape(&pushed));
        // 5xx was not in the first sample: 0 there, and null in the failed poll.
        let five = frame
            .fields
            .iter()
            .position(|f| {
                f.labels.get("status").map(String::as_str) == Some("5xx")
                    && f.labels["side"] == "edge"
            })
            .unwrap();
        assert_eq!(
            frame.fields[five].values,
            Values::OptF64(vec![Some(0.0), None])
        );
    }
}
