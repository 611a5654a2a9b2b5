//! One handler per query type. Each turns a checked [`Query`] and samples into frames; none of
//! them does I/O, so each is tested against golden frames.

pub mod alerting;
pub mod distribution;
pub mod events;
pub mod summary;
pub mod timeseries;
pub mod top_ips;

use crate::estats::UpstreamError;
use crate::frame::{Field, Frame, Notice, Severity, Values};
use crate::query::{Query, QueryError, QueryType};
use crate::sample::Sample;
use crate::target::Target;

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

/// A target of a set that the answer leaves out, and why (its poll failed, or it has no sample).
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    pub target: Target,
    pub reason: String,
}

impl LeftOut {
    fn notice(&self) -> Notice {
        Notice {
            severity: Severity::Warning,
            text: format!(
                "{} is left out: {}",
                self.target.display_name(),
                self.reason
            ),
        }
    }
}

/// The frame of a query naming a set, for the query types answered from the latest sample
/// (`distribution`, `summary`, `topIps`): the single-target frames of the targets answered
/// (`parts`, in the order asked), stacked, behind a first string column `target` holding each
/// row's [`Target::display_name`]. Their notices say which target they are about; each target
/// left out gets a warning. `meta.custom` lists the keys answered (`targets`) and the oldest
/// sample's time (`sampledAt`).
pub fn stack_targets(
    parts: Vec<(Target, Frame)>,
    left_out: &[LeftOut],
) -> Result<Frame, QueryFailure> {
    let mut parts = parts.into_iter();
    let Some((first_target, first)) = parts.next() else {
        return Err(QueryFailure::new(500, "no target of the set was answered"));
    };
    let mut frame = Frame::new(first.name.clone(), first.meta.frame_type);
    frame.meta.preferred_visualisation = first.meta.preferred_visualisation;
    let mut names: Vec<String> = Vec::new();
    let mut keys = Vec::new();
    let mut oldest: Option<String> = None;
    let mut fields: Vec<Field> = Vec::new();
    for (i, (target, part)) in std::iter::once((first_target, first))
        .chain(parts)
        .enumerate()
    {
        let display = target.display_name();
        names.extend(std::iter::repeat_n(display.clone(), part.rows()));
        keys.push(target.key());
        if let Some(at) = part
            .meta
            .custom
            .as_ref()
            .and_then(|c| c["sampledAt"].as_str())
        {
            // RFC 3339 stamps of one format sort as text.
            if oldest.as_deref().is_none_or(|o| at < o) {
                oldest = Some(at.to_string());
            }
        }
        frame
            .meta
            .notices
            .extend(part.meta.notices.iter().map(|n| Notice {
                severity: n.severity,
                text: format!("{display}: {}", n.text),
            }));
        if i == 0 {
            fields = part.fields;
            continue;
        }
        if part.fields.len() != fields.len()
            || part
                .fields
                .iter()
                .zip(&fields)
                .any(|(a, b)| a.name != b.name)
        {
            return Err(QueryFailure::new(
                500,
                format!("the frames of the targets of this set differ in their fields (at {display}); the plugin logged it"),
            ));
        }
        for (field, more) in fields.iter_mut().zip(part.fields) {
            if field.values.append(more.values).is_err() {
                return Err(QueryFailure::new(
                    500,
                    format!(
                        "field {} of {display} differs in type from the other targets'",
                        field.name
                    ),
                ));
            }
        }
    }
    frame.fields.push(Field::new("target", Values::Str(names)));
    frame.fields.extend(fields);
    frame
        .meta
        .notices
        .extend(left_out.iter().map(LeftOut::notice));
    let mut custom = serde_json::json!({ "targets": keys });
    if let Some(at) = oldest {
        custom["sampledAt"] = at.into();
    }
    frame.meta.custom = Some(custom);
    Ok(frame)
}

/// A `timeseries` frame of one target of a set: named after the target, its series labelled
/// `target` = the target's display name and shown as "<target> <side> <status>".
pub fn name_target_frame(target: &Target, mut frame: Frame) -> Frame {
    let display = target.display_name();
    for field in frame.fields.iter_mut().filter(|f| !f.labels.is_empty()) {
        field.labels.insert("target".into(), display.clone());
        if let Some(config) = field.config.as_mut().and_then(|c| c.as_object_mut()) {
            let shown = config
                .get("displayNameFromDS")
                .and_then(|v| v.as_str())
                .map_or_else(|| display.clone(), |s| format!("{display} {s}"));
            config.insert("displayNameFromDS".into(), shown.into());
        }
    }
    frame.name = display;
    frame
}

/// The warnings for the targets of a set left out of a `timeseries` answer, on its first frame.
pub fn note_left_out(frames: &mut [Frame], left_out: &[LeftOut]) {
    if let Some(first) = frames.first_mut() {
        first
            .meta
            .notices
            .extend(left_out.iter().map(LeftOut::notice));
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

    /// Two targets answered (the second busier and sampled earlier), one left out.
    fn set_parts(query_type: &str) -> (Vec<(Target, Frame)>, Vec<LeftOut>) {
        let q = crate::query::for_test(r#"{"cpCode": "1209788, 1209789, 1209790"}"#, query_type);
        let first = golden::example_sample();
        let mut second = golden::example_sample();
        second.sampled_at -= chrono::Duration::seconds(30);
        for c in &mut second.edge.codes {
            c.hits *= 2;
        }
        let frame = |t: &Target, sample: &Sample, stale: Option<&str>| {
            let one = q.for_target(t);
            match query_type {
                "summary" => summary::frame(&one, sample, stale),
                "topIps" => top_ips::frame(&one, sample, stale),
                _ => distribution::frame(&one, sample, stale),
            }
        };
        let targets = q.targets.targets();
        let parts = vec![
            (targets[0].clone(), frame(&targets[0], &first, None)),
            (
                targets[1].clone(),
                frame(
                    &targets[1],
                    &second,
                    Some("showing the sample of 07:15:19 (30 s old) because a new one could not be fetched: upstream answered 503"),
                ),
            ),
        ];
        let left_out = vec![LeftOut {
            target: targets[2].clone(),
            reason: "no sample yet: eStats answered 403 Forbidden".into(),
        }];
        (parts, left_out)
    }

    #[test]
    fn a_set_stacks_the_targets_behind_a_target_column() {
        for (query_type, golden_name) in [
            ("distribution", "distribution_set_two_of_three"),
            ("summary", "summary_set_two_of_three"),
            ("topIps", "top_ips_set_two_of_three"),
        ] {
            let (parts, left_out) = set_parts(query_type);
            let rows: Vec<usize> = parts.iter().map(|(_, f)| f.rows()).collect();
            let single_fields = parts[0].1.fields.len();
            let f = stack_targets(parts, &left_out).unwrap();
            assert_eq!(f.fields[0].name, "target");
            assert_eq!(f.fields.len(), single_fields + 1);
            let Values::Str(names) = &f.fields[0].values else {
                panic!("target is a string column")
            };
            let mut expected = vec!["1209788".to_string(); rows[0]];
            expected.extend(vec!["1209789".to_string(); rows[1]]);
            assert_eq!(names, &expected, "{query_type}");
            let custom = f.meta.custom.as_ref().unwrap();
            assert_eq!(
                custom["targets"],
                serde_json::json!(["cp:1209788/ANY", "cp:1209789/ANY"])
            );
            assert!(custom.get("target").is_none());
            assert_eq!(custom["sampledAt"], "2021-02-26T07:15:19+00:00");
            let texts: Vec<&str> = f.meta.notices.iter().map(|n| n.text.as_str()).collect();
            assert!(
                texts.iter().any(|t| t.starts_with("1209789: showing")),
                "{texts:?}"
            );
            assert!(
                texts
                    .iter()
                    .any(|t| t.starts_with("1209790 is left out: no sample yet")),
                "{texts:?}"
            );
            golden::check(golden_name, &[f]);
        }
    }

    #[test]
    fn a_set_of_timeseries_names_each_frame_after_its_target() {
        // The range of the example points.
        let ctx = crate::query::QueryContext {
            from_ms: 1_614_323_700_000,
            to_ms: 1_614_323_820_000,
            interval_ms: 1000,
            max_data_points: 1000,
        };
        let q = Query::parse(
            "A",
            br#"{"cpCode": "1, 2", "delivery": "STANDARD_TLS", "groupBy": "class"}"#,
            "timeseries",
            ctx,
            None,
        )
        .unwrap();
        let t = &q.targets.targets()[1];
        let f = name_target_frame(
            t,
            timeseries::frame(&q.for_target(t), &golden::example_points()),
        );
        assert_eq!(f.name, "2 (STANDARD_TLS)");
        assert!(f.fields.len() > 1);
        assert!(f.fields[0].labels.is_empty(), "time keeps no labels");
        for field in &f.fields[1..] {
            assert_eq!(field.labels["target"], "2 (STANDARD_TLS)");
            let shown = field.config.as_ref().unwrap()["displayNameFromDS"]
                .as_str()
                .unwrap();
            assert_eq!(
                shown,
                format!(
                    "2 (STANDARD_TLS) {} {}",
                    field.labels["side"], field.labels["status"]
                )
            );
        }
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
