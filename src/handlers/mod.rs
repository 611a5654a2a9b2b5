//! One handler per query type. Each turns a checked [`Query`] and samples into frames; none of
//! them does I/O, so each is tested against golden frames.

pub mod alerting;
pub mod distribution;
pub mod events;
pub mod summary;
pub mod timeseries;
pub mod top_ips;

use crate::estats::UpstreamError;
use crate::frame::{Frame, Notice, Severity};
use crate::query::{Query, QueryError, QueryType};
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

/// The frame a live query's stream pushes for one new sample: its query type's frame of that
/// sample alone. `columns` are the live `timeseries` columns (see [`timeseries::columns`]).
pub fn pushed_frame(
    query: &Query,
    columns: &mut Vec<timeseries::columns::Column>,
    sample: &Sample,
) -> Frame {
    match query.query_type {
        QueryType::Timeseries => timeseries::pushed_frame(query, columns, sample),
        QueryType::Summary => summary::frame(query, sample, None),
        // Live paths carry only the types that stream (see `crate::live`).
        QueryType::Distribution | QueryType::TopIps | QueryType::Events => {
            distribution::frame(query, sample, None)
        }
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

    #[test]
    fn distribution_and_summary_push_the_handler_frame() {
        let s = golden::example_sample();
        for query_type in ["distribution", "summary"] {
            let q = crate::query::for_test(r#"{"cpCode": 1, "live": true}"#, query_type);
            let f = pushed_frame(&q, &mut Vec::new(), &s);
            let direct = if query_type == "summary" {
                summary::frame(&q, &s, None)
            } else {
                distribution::frame(&q, &s, None)
            };
            assert_eq!(f.name, query_type);
            assert_eq!(f, direct);
        }
    }
}

#[cfg(test)]
pub(crate) mod golden {
    //! Golden frame files in `testdata/`. A missing or different file fails the test;
    //! `UPDATE_GOLDEN=1 cargo test --lib handlers::` rewrites them after a deliberate change
    //! (review the diff before committing it).
    use std::path::{Path, PathBuf};

    use crate::frame::Frame;
    use crate::history::Point;
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

    /// Polls of the example sample every 10 s from 07:15:00, the third one failed, then
    /// nothing for a minute (a hole), then two more: gaps of both kinds.
    pub fn example_points() -> Vec<Point> {
        let start = chrono::DateTime::parse_from_rfc3339("2021-02-26T07:15:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        [0, 10, 20, 30, 90, 100]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let at = start + chrono::Duration::seconds(s);
                let sample = (i != 2).then(|| {
                    let mut sample = example_sample();
                    sample.sampled_at = at;
                    // A little movement, so that rows differ.
                    for c in &mut sample.edge.codes {
                        c.hits += i as u64;
                    }
                    sample
                });
                Point { at, sample }
            })
            .collect()
    }

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/handlers/testdata")
    }

    fn path(name: &str) -> PathBuf {
        dir().join(format!("{name}.golden.json"))
    }

    fn render(frames: &[Frame]) -> String {
        serde_json::to_string_pretty(&frames.iter().map(Frame::to_json).collect::<Vec<_>>())
            .unwrap()
            + "\n"
    }

    fn updating() -> bool {
        std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
    }

    /// What [`check`] concludes: `Ok` when `actual` matches the golden file at `path`.
    fn compare(path: &Path, actual: &str, update: bool) -> Result<(), String> {
        if update {
            std::fs::write(path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(());
        }
        let expected = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                return Err(format!(
                    "no golden file {} ({e}): run UPDATE_GOLDEN=1 cargo test --lib handlers:: to write it, and commit it",
                    path.display()
                ))
            }
        };
        if expected == actual {
            return Ok(());
        }
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        Err(format!(
            "frames differ from {} from line {}:\n  golden: {:?}\n  actual: {:?}\nrerun with UPDATE_GOLDEN=1 if the change is intended",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        ))
    }

    pub fn check(name: &str, frames: &[Frame]) {
        if let Err(e) = compare(&path(name), &render(frames), updating()) {
            panic!("{e}");
        }
    }

    #[test]
    fn a_missing_or_changed_golden_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("x.golden.json");
        let e = compare(&file, "[]\n", false).unwrap_err();
        assert!(
            e.contains("no golden file") && e.contains("UPDATE_GOLDEN=1"),
            "{e}"
        );
        assert!(!file.exists(), "a missing golden must not be written");
        compare(&file, "[\n  1\n]\n", true).unwrap();
        compare(&file, "[\n  1\n]\n", false).unwrap();
        let e = compare(&file, "[\n  2\n]\n", false).unwrap_err();
        assert!(e.contains("line 2") && e.contains("\"  2\""), "{e}");
    }

    /// A golden file no test checks any more is a leftover that proves nothing.
    #[test]
    fn every_golden_file_is_checked_by_a_test() {
        fn sources(dir: &Path, into: &mut String) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, into);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    into.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut text = String::new();
        sources(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/handlers"),
            &mut text,
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name
                .strip_suffix(".golden.json")
                .unwrap_or_else(|| panic!("{name}: testdata holds only *.golden.json"));
            assert!(
                text.contains(&format!("\"{stem}\"")),
                "{name} is checked by no test: delete it"
            );
            seen += 1;
        }
        assert!(seen >= 5, "{seen} golden files");
    }
}
