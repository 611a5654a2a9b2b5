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
    frame
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
