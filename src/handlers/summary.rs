//! `summary`: hits, errors and failure percentage per side from the latest sample.

use crate::frame::{Field, Frame, FrameType, Values};
use crate::query::Query;
use crate::sample::Sample;

pub fn frame(query: &Query, sample: &Sample, stale: Option<&str>) -> Frame {
    let sides = query.side.sides();
    let stats: Vec<_> = sides.iter().map(|&s| sample.side(s)).collect();
    // Unknown totals stay null: a missing member of the answer is not a zero.
    let frame = Frame::new("summary", FrameType::NumericLong)
        .with_field(Field::new(
            "side",
            Values::Str(sides.iter().map(|s| s.as_str().to_string()).collect()),
        ))
        .with_field(Field::new(
            "hits",
            Values::OptI64(stats.iter().map(|s| s.hits.map(|h| h as i64)).collect()),
        ))
        .with_field(Field::new(
            "errors",
            Values::OptI64(stats.iter().map(|s| s.errors.map(|e| e as i64)).collect()),
        ))
        .with_field(
            Field::new(
                "failurePercentage",
                Values::OptF64(stats.iter().map(|s| s.failure_percentage).collect()),
            )
            .with_config(serde_json::json!({"unit": "percent", "min": 0, "max": 100})),
        );
    super::latest_sample_meta(frame, query, sample, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::golden;
    use crate::query::QueryContext;

    #[test]
    fn both_sides() {
        let ctx = QueryContext {
            from_ms: 0,
            to_ms: 1,
            interval_ms: 1000,
            max_data_points: 100,
        };
        let q = Query::parse(
            "A",
            br#"{"cpCode": 1234567, "queryType": "summary"}"#,
            "",
            ctx,
            None,
        )
        .unwrap();
        golden::check(
            "summary_both",
            &[frame(&q, &golden::example_sample(), None)],
        );
    }

    #[test]
    fn missing_totals_are_null() {
        let ctx = QueryContext {
            from_ms: 0,
            to_ms: 1,
            interval_ms: 1000,
            max_data_points: 100,
        };
        let q = Query::parse(
            "A",
            br#"{"cpCode": 1, "queryType": "summary", "side": "origin"}"#,
            "",
            ctx,
            None,
        )
        .unwrap();
        let mut sample = golden::example_sample();
        sample.origin = Default::default();
        let f = frame(&q, &sample, None);
        assert_eq!(f.fields[1].values, Values::OptI64(vec![None]));
        assert_eq!(f.fields[3].values, Values::OptF64(vec![None]));
    }
}
