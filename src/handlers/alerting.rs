//! Frames for Grafana alert rules.
//!
//! Grafana evaluates a rule's query in its backend and turns the frames into one number or series
//! per *label set*: for `numeric-long` the labels come from the string fields of each row, and the
//! numeric field's name is dropped. A frame with several numeric fields (`distribution`: hits and
//! percentage; `summary`: hits, errors, failure percentage) therefore gives every label set two
//! or three values, and the rule fails with "frame cannot uniquely be identified by its labels".
//! So when the request comes from alerting (Grafana sets the `FromAlert` header), a numeric-long
//! frame keeps only the numeric field of the query's `metric`; panels keep every field.
//!
//! A query naming a set keeps its first string column `target`, so label sets (target, side,
//! status) stay unique across targets; a `timeseries` set answers one frame per target, and a
//! target without history (a frame without series) is left out of an alert's frames.
//!
//! `topIps` is a table of edge IPs: its natural labels (IP, city, AS, error code) change from
//! sample to sample, so alert instances would appear and vanish each poll; Grafana refuses table
//! frames anyway. An alert query of that type gets a clear error instead of Grafana's generic
//! "input data must be a wide series".

use std::collections::HashMap;

use super::QueryFailure;
use crate::frame::{Frame, FrameType, Values};
use crate::query::{GroupBy, Metric, Query, QueryType};

/// The header Grafana's alerting (rule evaluation and the rule editor's preview) sets on
/// `QueryData` requests.
pub const FROM_ALERT_HEADER: &str = "FromAlert";

/// Whether a `QueryData` request comes from alerting.
pub fn is_alert_request(headers: &HashMap<String, String>) -> bool {
    headers.iter().any(|(k, v)| {
        // Some Grafana versions forward HTTP headers with an `http_` prefix.
        let name = k.strip_prefix("http_").unwrap_or(k);
        name.eq_ignore_ascii_case(FROM_ALERT_HEADER) && v.trim().eq_ignore_ascii_case("true")
    })
}

/// The numeric field an alert on `query` evaluates, for the numeric-long query types.
fn alert_field(query: &Query) -> Result<&'static str, QueryFailure> {
    match (query.query_type, query.group_by, query.metric) {
        (QueryType::Summary, _, Metric::Hits) => Ok("hits"),
        (QueryType::Summary, _, Metric::Errors) => Ok("errors"),
        (QueryType::Summary, _, Metric::Percentage | Metric::FailurePercentage) => {
            Ok("failurePercentage")
        }
        (_, _, Metric::Hits) => Ok("hits"),
        (_, GroupBy::Code | GroupBy::Class, _) => Ok("percentage"),
        (_, GroupBy::Total, metric) => Err(QueryFailure::new(
            400,
            format!(
                "metric: a distribution with groupBy total has hits only, not {}: alert on it with queryType summary (one value per side) or timeseries, or use metric hits",
                metric.as_str()
            ),
        )),
    }
}

/// Shapes the frames of `query` for an alert rule (see the module comment).
pub fn for_alerting(query: &Query, frames: Vec<Frame>) -> Result<Vec<Frame>, QueryFailure> {
    match query.query_type {
        QueryType::TopIps => Err(QueryFailure::new(
            400,
            "queryType: topIps is a table of edge IPs and cannot drive an alert rule; alert on distribution (a status share or hits), summary (failure percentage per side) or timeseries instead",
        )),
        QueryType::Events => Err(QueryFailure::new(400, "queryType: events are annotations (ranges marked on graphs) and cannot drive an alert rule; alert on timeseries (a status share over time) or summary instead")),
        // A set's target without history has a frame without series, which Grafana's reading
        // of wide frames refuses beside frames with data: an alert leaves it out.
        QueryType::Timeseries if frames.len() > 1 => {
            let has_series = |f: &Frame| f.fields.iter().any(|x| !x.labels.is_empty());
            if frames.iter().any(has_series) {
                Ok(frames.into_iter().filter(has_series).collect())
            } else {
                Ok(frames.into_iter().take(1).collect())
            }
        }
        QueryType::Timeseries => Ok(frames),
        QueryType::Distribution | QueryType::Summary => {
            let keep = alert_field(query)?;
            Ok(frames
                .into_iter()
                .map(|mut f| {
                    if f.meta.frame_type == FrameType::NumericLong {
                        f.fields.retain(|field| {
                            field.name == keep
                                || matches!(field.values, Values::Str(_) | Values::OptStr(_))
                        });
                    }
                    f
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::{distribution, golden, summary, top_ips};

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "")
    }

    fn names(frames: &[Frame]) -> Vec<&str> {
        frames[0].fields.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn the_header_is_recognised_in_its_spellings() {
        for (k, v) in [
            ("FromAlert", "true"),
            ("fromalert", "TRUE"),
            ("http_FromAlert", "true"),
        ] {
            assert!(is_alert_request(&HashMap::from([(k.into(), v.into())])));
        }
        assert!(!is_alert_request(&HashMap::new()));
        assert!(!is_alert_request(&HashMap::from([(
            "FromAlert".into(),
            "false".into()
        )])));
    }

    #[test]
    fn distribution_keeps_the_metric_field() {
        let sample = golden::example_sample();
        let q = query(r#"{"cpCode": 1, "groupBy": "class"}"#);
        let f = for_alerting(&q, vec![distribution::frame(&q, &sample, None)]).unwrap();
        assert_eq!(names(&f), ["side", "status", "percentage"]);
        let q = query(r#"{"cpCode": 1, "metric": "hits"}"#);
        let f = for_alerting(&q, vec![distribution::frame(&q, &sample, None)]).unwrap();
        assert_eq!(names(&f), ["side", "status", "hits"]);
        let q = query(r#"{"cpCode": 1, "groupBy": "total", "metric": "errors"}"#);
        let err = for_alerting(&q, vec![distribution::frame(&q, &sample, None)]).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("summary"), "{}", err.message);
    }

    #[test]
    fn summary_keeps_the_metric_field() {
        let sample = golden::example_sample();
        for (json, field) in [
            (
                r#"{"cpCode": 1, "queryType": "summary"}"#,
                "failurePercentage",
            ),
            (
                r#"{"cpCode": 1, "queryType": "summary", "groupBy": "total", "metric": "errors"}"#,
                "errors",
            ),
            (
                r#"{"cpCode": 1, "queryType": "summary", "metric": "hits"}"#,
                "hits",
            ),
        ] {
            let q = query(json);
            let f = for_alerting(&q, vec![summary::frame(&q, &sample, None)]).unwrap();
            assert_eq!(names(&f), ["side", field], "{json}");
        }
    }

    #[test]
    fn events_are_refused_with_a_reason() {
        let q = crate::query::for_test(r#"{"cpCode": 1, "threshold": 2}"#, "events");
        let err = for_alerting(&q, Vec::new()).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains("events") && err.message.contains("timeseries"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_set_keeps_its_target_column_so_label_sets_stay_unique() {
        let sample = golden::example_sample();
        let q = query(r#"{"cpCode": "1, 2", "groupBy": "class"}"#);
        let parts = q
            .targets
            .targets()
            .iter()
            .map(|t| {
                (
                    t.clone(),
                    distribution::frame(&q.for_target(t), &sample, None),
                )
            })
            .collect();
        let stacked = crate::handlers::stack_targets(parts, &[]).unwrap();
        let f = for_alerting(&q, vec![stacked]).unwrap();
        assert_eq!(names(&f), ["target", "side", "status", "percentage"]);
        let column = |i: usize| match &f[0].fields[i].values {
            Values::Str(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        let mut labels: Vec<_> = (0..f[0].rows())
            .map(|r| {
                (
                    column(0)[r].clone(),
                    column(1)[r].clone(),
                    column(2)[r].clone(),
                )
            })
            .collect();
        let rows = labels.len();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), rows, "one value per (target, side, status)");
        assert!(rows >= 4);
    }

    #[test]
    fn a_timeseries_set_leaves_frames_without_series_out_of_alerts() {
        use crate::frame::Field;
        let q = crate::query::for_test(r#"{"cpCode": "1,2"}"#, "timeseries");
        let empty = || {
            Frame::new("1", FrameType::TimeseriesWide)
                .with_field(Field::new("time", Values::Time(vec![])))
        };
        let full = Frame::new("2", FrameType::TimeseriesWide)
            .with_field(Field::new("time", Values::Time(vec![])))
            .with_field(
                Field::new("percentage", Values::OptF64(vec![]))
                    .with_labels([("target".to_string(), "2".to_string())]),
            );
        let f = for_alerting(&q, vec![empty(), full.clone()]).unwrap();
        assert_eq!(f, vec![full]);
        let f = for_alerting(&q, vec![empty(), empty()]).unwrap();
        assert_eq!(f.len(), 1, "no data stays one frame");
    }

    #[test]
    fn top_ips_is_refused_with_a_reason() {
        let q = query(r#"{"cpCode": 1, "queryType": "topIps"}"#);
        let f = top_ips::frame(&q, &golden::example_sample(), None);
        let err = for_alerting(&q, vec![f]).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("topIps"), "{}", err.message);
    }
}
