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
