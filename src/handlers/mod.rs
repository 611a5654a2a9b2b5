//! One handler per query type. Each turns a checked [`Query`] and samples into frames; none of
//! them does I/O, so each is tested against golden frames.

pub mod alerting;
pub mod distribution;
pub mod summary;
pub mod timeseries;
pub mod top_ips;

use crate::estats::UpstreamError;
use crate::frame::{Frame, Notice, Severity};
use crate::query::Query;
use crate::query::QueryError;
use crate::sample::Sample;

/// Why a query got no frames: the text Grafana shows and the HTTP status it reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryFailure {
    pub status: u16,
    pub message: String,
}

impl QueryFailure {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        QueryFailure {
            status,
            message: message.into(),
        }
    }
}

impl From<QueryError> for QueryFailure {
    fn from(e: QueryError) -> Self {
        QueryFailure::new(400, e.to_string())
    }
}

impl From<UpstreamError> for QueryFailure {
    fn from(e: UpstreamError) -> Self {
        QueryFailure::new(e.grafana_status(), e.to_string())
    }
}

/// eStats answers SUCCESS with nothing in it when asked about a delivery network the target does
/// not use; an empty panel should say so rather than look like a quiet CDN.
fn no_traffic_hint(query: &Query, sample: &Sample) -> Option<String> {
    let quiet = query.side.sides().iter().all(|&side| {
        let stats = sample.side(side);
        stats.codes.is_empty() && stats.hits.unwrap_or(0) == 0
    });
    if !quiet {
        return None;
    }
    let network = match query.target.delivery {
        Some(d) => format!(
            "on {d}: if it serves traffic, it is probably on the other delivery network (set delivery to the other one, or leave it empty so Akamai picks)"
        ),
        None => "in the sampled nine seconds: check the CP code or URL".to_string(),
    };
    Some(format!(
        "eStats reported no traffic for {} {network}",
        query.target.label()
    ))
}

/// Finishes a frame built from the latest sample: when and for what it was sampled, and a
/// warning notice when the sample is older than the poll interval.
fn latest_sample_meta(
    mut frame: Frame,
    query: &Query,
    sample: &Sample,
    stale: Option<&str>,
) -> Frame {
    frame.meta.custom = Some(serde_json::json!({
        "sampledAt": sample.sampled_at.to_rfc3339(),
        "target": query.target.key(),
    }));
    if let Some(reason) = stale {
        frame.meta.notices.push(Notice {
            severity: Severity::Warning,
            text: reason.to_string(),
        });
    }
    if let Some(text) = no_traffic_hint(query, sample) {
        frame.meta.notices.push(Notice {
            severity: Severity::Info,
            text,
        });
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_says_which_delivery_network_was_asked() {
        let q = crate::query::for_test(r#"{"cpCode": 1209787, "delivery": "ENHANCED_TLS"}"#, "");
        let mut sample = golden::example_sample();
        sample.edge = Default::default();
        sample.origin = Default::default();
        let frame = distribution::frame(&q, &sample, None);
        let notice = &frame.meta.notices[0];
        assert_eq!(notice.severity, Severity::Info);
        assert!(
            notice.text.contains("no traffic") && notice.text.contains("ENHANCED_TLS"),
            "{}",
            notice.text
        );

        let busy = distribution::frame(&q, &golden::example_sample(), None);
        assert!(busy.meta.notices.is_empty());
    }
}

#[cfg(test)]
pub(crate) mod golden {
    //! Golden frame files: `UPDATE_GOLDEN=1 cargo test` rewrites them after a deliberate change.
    use std::path::PathBuf;

    use crate::frame::Frame;
    use crate::sample::Sample;

    pub fn example_sample() -> Sample {
        let response: crate::estats::EstatsResponse =
            serde_json::from_str(include_str!("../../tests/fixtures/estats.json"))
                .expect("fixture parses");
        let at = chrono::DateTime::parse_from_rfc3339("2021-02-26T07:15:49Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        Sample::from_response(at, &response)
    }

    pub fn check(name: &str, frames: &[Frame]) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/handlers/testdata")
            .join(format!("{name}.golden.json"));
        let actual =
            serde_json::to_string_pretty(&frames.iter().map(Frame::to_json).collect::<Vec<_>>())
                .unwrap()
                + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() || !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            actual,
            expected,
            "frames differ from {}; rerun with UPDATE_GOLDEN=1 if the change is intended",
            path.display()
        );
    }
}
