//! `events`: what happened to a target, as annotations Grafana marks on graphs.
//!
//! One `table` frame with Grafana's annotation fields (`time`, `timeEnd`, `title`, `text`,
//! `tags`) and `target`, ascending by `time`, built from the stored history of the query's
//! range, so past ranges work as well as the last hour:
//!
//! - failed polls merged into ranges: consecutive failed polls make one range, and only a
//!   successful poll ends it. A hole in polling does not: during a 429 pause or a credential
//!   block the poller deliberately makes no calls, and splitting there would turn one outage
//!   into a row of one-poll marks. The poll count in the text tells a reader how many polls
//!   a range holds.
//! - with `threshold`: the share of the status filter (`5xx` when none is given) on each side
//!   asked, from the first poll above the threshold to the first poll back at or below it; a
//!   range still open at the end of the window ends at its last poll above. Failed polls and
//!   holes neither end nor start such a range: nothing was measured there.
//!
//! [`frame`] does no I/O (golden tests); [`answer`] reads the history of each target through the
//! [`Monitor`] and calls it.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::QueryFailure;
use crate::frame::{Field, Frame, FrameType, Notice, Severity, Values};
use crate::history::{Point, StoredFailure};
use crate::poller::Monitor;
use crate::query::{Query, StatusFilter};
use crate::sample::{Sample, Side};
use crate::target::Target;

/// The filter whose share a threshold applies to when the query names none: an empty filter
/// keeps every status, whose share is always 100 %.
pub const DEFAULT_FILTER: &str = "5xx";

/// Targets whose history is read at once; the history itself runs a few reads at a time, so
/// more would only queue there.
const CONCURRENT_READS: usize = 4;

/// The longest stored error message quoted in a text, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Failure kinds of a budget pause and of a credential block (`UpstreamErrorKind::as_str`).
const PAUSE_KINDS: &[&str] = &["rate_limited"];
const CREDENTIAL_KINDS: &[&str] = &["auth", "forbidden", "clock_skew"];

/// What one target contributes to an `events` frame: its stored polls and failed polls in the
/// query's range (ascending), and how the frame names it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetHistory {
    /// The `target` column: the CP code's digits or the URL (see [`Target::display_name`]).
    pub name: String,
    /// The target's key, listed in `meta.custom.targets`.
    pub key: String,
    pub points: Vec<Point>,
    pub failures: Vec<StoredFailure>,
}

/// Reads the history of `targets` in the query's range (a few at once) and answers the frame.
/// A target whose history cannot be read is left out with a warning notice; when none can be
/// read the query fails with the first error.
pub async fn answer(
    monitor: &Monitor,
    query: &Query,
    targets: &[Target],
) -> Result<Vec<Frame>, QueryFailure> {
    // Collected first: a lazily mapped iterator makes the future lose `Send` (a known
    // higher-ranked lifetime limit of rustc), which tonic's service needs.
    // Each history is reduced to its rows as soon as it is read, so that a query over many
    // targets holds a few histories at a time rather than all of them.
    let pending: Vec<_> = targets
        .iter()
        .map(|t| async move {
            read(monitor, query, t)
                .await
                .map(|history| events_of(query, &history))
        })
        .collect();
    let reads: Vec<_> = futures::stream::iter(pending)
        .buffered(CONCURRENT_READS)
        .collect()
        .await;
    let mut answered = Vec::with_capacity(reads.len());
    let mut failed = Vec::new();
    for (target, read) in targets.iter().zip(reads) {
        match read {
            Ok(events) => answered.push(events),
            Err(e) => failed.push((target.display_name(), e)),
        }
    }
    if answered.is_empty() && !failed.is_empty() {
        return Err(failed.swap_remove(0).1);
    }
    let mut frame = assemble(answered);
    for (name, e) in failed {
        frame.meta.notices.push(Notice {
            severity: Severity::Warning,
            text: format!("{name} is left out: {e}"),
        });
    }
    Ok(vec![frame])
}

async fn read(
    monitor: &Monitor,
    query: &Query,
    target: &Target,
) -> Result<TargetHistory, QueryFailure> {
    let (points, failures) = futures::future::try_join(
        monitor.range(target, query.from, query.to),
        monitor.failures(target, query.from, query.to),
    )
    .await
    .map_err(|e| QueryFailure::new(500, format!("reading history failed: {e}")))?;
    Ok(TargetHistory {
        name: target.display_name(),
        key: target.key(),
        points,
        failures,
    })
}

/// One row of the frame.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    time: DateTime<Utc>,
    time_end: DateTime<Utc>,
    title: String,
    text: String,
    tags: Vec<String>,
    target: String,
}

/// The rows of one target, and what the frame says about it.
struct TargetEvents {
    key: String,
    /// Whether any poll of the target is stored in the range.
    polled: bool,
    events: Vec<Event>,
}

/// The `events` frame of `targets` (in the order asked) for `query`'s side, status filter and
/// threshold.
pub fn frame(query: &Query, targets: &[TargetHistory]) -> Frame {
    assemble(targets.iter().map(|t| events_of(query, t)).collect())
}

/// The rows of one target: its failed-poll ranges, then its crossings per side asked.
fn events_of(query: &Query, target: &TargetHistory) -> TargetEvents {
    let polls = timeline(&target.points, &target.failures);
    let mut events = Vec::new();
    failed_ranges(&target.name, &polls, &mut events);
    if let Some(threshold) = query.threshold {
        let filter = if query.status_filter.is_empty() {
            Cow::Owned(StatusFilter::parse(DEFAULT_FILTER).expect("the default filter parses"))
        } else {
            Cow::Borrowed(&query.status_filter)
        };
        for &side in query.side.sides() {
            crossings(&target.name, &polls, side, &filter, threshold, &mut events);
        }
    }
    TargetEvents {
        key: target.key.clone(),
        polled: !polls.is_empty(),
        events,
    }
}

/// The frame of the targets' rows, in the order the targets were asked.
fn assemble(targets: Vec<TargetEvents>) -> Frame {
    let keys: Vec<String> = targets.iter().map(|t| t.key.clone()).collect();
    let polled = targets.iter().any(|t| t.polled);
    let mut events: Vec<Event> = targets.into_iter().flat_map(|t| t.events).collect();
    // Stable: at one instant, targets stay in the order asked, failures before crossings.
    events.sort_by_key(|e| e.time);

    let mut frame = Frame::new("events", FrameType::Table)
        .with_field(Field::new(
            "time",
            Values::Time(events.iter().map(|e| e.time).collect()),
        ))
        .with_field(Field::new(
            "timeEnd",
            Values::Time(events.iter().map(|e| e.time_end).collect()),
        ))
        .with_field(Field::new(
            "title",
            Values::Str(events.iter().map(|e| e.title.clone()).collect()),
        ))
        .with_field(Field::new(
            "text",
            Values::Str(events.iter().map(|e| e.text.clone()).collect()),
        ))
        .with_field(Field::new(
            "tags",
            Values::Str(events.iter().map(|e| e.tags.join(",")).collect()),
        ))
        .with_field(Field::new(
            "target",
            Values::Str(events.iter().map(|e| e.target.clone()).collect()),
        ));
    frame.meta.preferred_visualisation = Some("table");
    frame.meta.custom = Some(serde_json::json!({ "targets": keys }));
    if !polled {
        frame.meta.notices.push(Notice {
            severity: Severity::Info,
            text: "no polls stored in this time range: history starts with a target's first poll"
                .into(),
        });
    }
    frame
}

/// One poll: its sample, or the failure it was stored with (`None` when a failed poll has no
/// stored error).
#[derive(Debug, Clone, Copy)]
enum Poll<'a> {
    Ok(&'a Sample),
    Failed(Option<&'a StoredFailure>),
}

/// The polls of a target in time order: `points` give success or failure, `failures` the
/// errors of failed ones. The two are read one after the other, so a poll stored in between
/// may be in one list only; it is kept either way.
fn timeline<'a>(
    points: &'a [Point],
    failures: &'a [StoredFailure],
) -> Vec<(DateTime<Utc>, Poll<'a>)> {
    let mut polls: Vec<(DateTime<Utc>, Poll<'a>)> =
        Vec::with_capacity(points.len() + failures.len());
    let (mut p, mut f) = (points.iter().peekable(), failures.iter().peekable());
    loop {
        let order = match (p.peek(), f.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(point), Some(failure)) => point.at.cmp(&failure.at),
        };
        let poll = match order {
            Ordering::Less => p.next().map(|point| {
                let poll = point.sample.as_ref().map_or(Poll::Failed(None), Poll::Ok);
                (point.at, poll)
            }),
            Ordering::Greater => f
                .next()
                .map(|failure| (failure.at, Poll::Failed(Some(failure)))),
            // The same poll in both lists: the point says whether it failed, the failure why.
            Ordering::Equal => p.next().zip(f.next()).map(|(point, failure)| {
                let poll = point
                    .sample
                    .as_ref()
                    .map_or(Poll::Failed(Some(failure)), Poll::Ok);
                (point.at, poll)
            }),
        };
        polls.extend(poll);
    }
    // Both lists come sorted from the stores; a stable sort costs nothing then and keeps the
    // ranges right if one ever does not.
    polls.sort_by_key(|(at, _)| *at);
    polls
}

/// Appends a range per run of consecutive failed polls.
fn failed_ranges(name: &str, polls: &[(DateTime<Utc>, Poll<'_>)], out: &mut Vec<Event>) {
    let mut run: Vec<(DateTime<Utc>, Option<&StoredFailure>)> = Vec::new();
    for (at, poll) in polls {
        match poll {
            Poll::Failed(failure) => run.push((*at, *failure)),
            Poll::Ok(_) => {
                if !run.is_empty() {
                    out.push(failed_range(name, &run));
                    run.clear();
                }
            }
        }
    }
    if !run.is_empty() {
        out.push(failed_range(name, &run));
    }
}

fn failed_range(name: &str, run: &[(DateTime<Utc>, Option<&StoredFailure>)]) -> Event {
    let (first, last) = (run[0].0, run[run.len() - 1].0);
    let mut kinds: Vec<String> = Vec::new();
    for failure in run.iter().filter_map(|(_, f)| *f) {
        let kind = tag(&failure.kind);
        if !kind.is_empty() && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let count = run.len();
    let mut text = format!(
        "{name}: polls failing {} ({count} poll{})",
        span(first, last),
        if count == 1 { "" } else { "s" }
    );
    if let Some(failure) = run[0].1 {
        let kind = failure.kind.trim();
        let message = short(failure.message.trim());
        match (kind.is_empty(), message.is_empty()) {
            (false, false) => text.push_str(&format!(": {kind}: {message}")),
            (false, true) => text.push_str(&format!(": {kind}")),
            (true, false) => text.push_str(&format!(": {message}")),
            (true, true) => {}
        }
    }
    let first_kind = run[0].1.map(|f| tag(&f.kind));
    let others: Vec<&str> = kinds
        .iter()
        .filter(|k| Some(*k) != first_kind.as_ref())
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        text.push_str(&format!(" (also {})", others.join(", ")));
    }
    let mut tags = vec!["estats".to_string(), "polls-failing".to_string()];
    if kinds.iter().any(|k| PAUSE_KINDS.contains(&k.as_str())) {
        tags.push("pause".into());
    }
    if kinds.iter().any(|k| CREDENTIAL_KINDS.contains(&k.as_str())) {
        tags.push("credentials".into());
    }
    tags.extend(kinds);
    Event {
        time: first,
        time_end: last,
        title: "polls failing".into(),
        text,
        tags,
        target: name.to_string(),
    }
}

/// A failure kind as a tag: Grafana splits tags at commas, and kinds imported with
/// `history import` may be any text, so only `[a-z0-9_-]` is kept.
fn tag(kind: &str) -> String {
    kind.trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// A stored message cut to [`MAX_MESSAGE_CHARS`] (on a character boundary).
fn short(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

/// The share of `filter` on `side` of a sample, in percent, to the two decimals frames show:
/// what a reader sees is what is compared, so 2.00 is not above 2 however the float sums.
fn share(sample: &Sample, side: Side, filter: &StatusFilter) -> f64 {
    let sum: f64 = sample
        .side(side)
        .codes
        .iter()
        .filter(|c| filter.matches(c.http_status))
        .map(|c| c.percentage)
        .sum();
    (sum * 100.0).round() / 100.0
}

/// Appends a range per stretch of `side`'s filter share above `threshold`.
fn crossings(
    name: &str,
    polls: &[(DateTime<Utc>, Poll<'_>)],
    side: Side,
    filter: &StatusFilter,
    threshold: f64,
    out: &mut Vec<Event>,
) {
    struct Open {
        start: DateTime<Utc>,
        last_above: DateTime<Utc>,
        peak: f64,
    }
    let label = filter_label(filter);
    let make = |open: &Open, end: DateTime<Utc>, closed: bool| {
        let period = if open.start == end {
            format!("at {} UTC", when(open.start, open.start))
        } else {
            format!(
                "from {} to {} UTC",
                when(open.start, end),
                when(end, open.start)
            )
        };
        Event {
            time: open.start,
            time_end: end,
            title: format!(
                "{side} {label} above {} %",
                number(threshold),
                side = side.as_str()
            ),
            text: format!(
                "{name}: {} {label} above {} % {period}, peak {} %{}",
                side.as_str(),
                number(threshold),
                number(open.peak),
                if closed {
                    ""
                } else {
                    ", still above at the last poll"
                }
            ),
            tags: vec!["estats".into(), "threshold".into(), side.as_str().into()],
            target: name.to_string(),
        }
    };
    let mut open: Option<Open> = None;
    for (at, poll) in polls {
        let Poll::Ok(sample) = poll else { continue };
        let value = share(sample, side, filter);
        if value > threshold {
            match &mut open {
                Some(o) => {
                    o.peak = o.peak.max(value);
                    o.last_above = *at;
                }
                None => {
                    open = Some(Open {
                        start: *at,
                        last_above: *at,
                        peak: value,
                    })
                }
            }
        } else if let Some(o) = open.take() {
            out.push(make(&o, *at, true));
        }
    }
    if let Some(o) = open {
        out.push(make(&o, o.last_above, false));
    }
}

/// The filter as users write it: `5xx,404`.
fn filter_label(filter: &StatusFilter) -> String {
    filter.joined(",")
}

/// A percent with at most two decimals and no trailing zeros: `2`, `7.5`, `0.25`.
fn number(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `t` as `HH:MM` (UTC), with the date in front when `t` and `other` fall on different days.
fn when(t: DateTime<Utc>, other: DateTime<Utc>) -> String {
    if t.date_naive() == other.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// `10:02-10:14 UTC`, `10:02 UTC` for one minute, with dates when the range spans days.
fn span(first: DateTime<Utc>, last: DateTime<Utc>) -> String {
    let (a, b) = (when(first, last), when(last, first));
    if a == b {
        format!("{a} UTC")
    } else if first.date_naive() == last.date_naive() {
        format!("{a}-{b} UTC")
    } else {
        format!("{a} to {b} UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estats::model::StatusCodeCount;
    use crate::handlers::golden;
    use crate::sample::SideStats;

    const T0: &str = "2026-11-30T10:00:00Z";

    /// `T0` plus `minutes`.
    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(T0)
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minutes)
    }

    fn side(codes: &[(u16, f64)]) -> SideStats {
        SideStats {
            hits: Some(1000),
            errors: Some(0),
            failure_percentage: Some(0.0),
            codes: codes
                .iter()
                .map(|&(http_status, percentage)| StatusCodeCount {
                    http_status,
                    hits: (percentage * 10.0) as u64,
                    percentage,
                })
                .collect(),
        }
    }

    /// A successful poll whose edge and origin have `edge_5xx` and `origin_5xx` percent of 503.
    fn ok(minute: i64, edge_5xx: f64, origin_5xx: f64) -> Point {
        Point {
            at: at(minute),
            sample: Some(Sample {
                sampled_at: at(minute),
                edge: side(&[(200, 100.0 - edge_5xx), (503, edge_5xx)]),
                origin: side(&[(200, 100.0 - origin_5xx), (503, origin_5xx)]),
                top_ips: Vec::new(),
            }),
        }
    }

    fn failed(minute: i64) -> Point {
        Point {
            at: at(minute),
            sample: None,
        }
    }

    fn stored(minute: i64, kind: &str, message: &str) -> StoredFailure {
        StoredFailure {
            at: at(minute),
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A target's history from its polls: failed points get a `server_error` failure unless
    /// `failures` gives theirs.
    fn history(name: &str, points: Vec<Point>, failures: Vec<StoredFailure>) -> TargetHistory {
        let mut all = failures;
        for p in points.iter().filter(|p| p.sample.is_none()) {
            if !all.iter().any(|f| f.at == p.at) {
                all.push(StoredFailure {
                    at: p.at,
                    kind: "server_error".into(),
                    message: "eStats answered 503 Service Unavailable".into(),
                });
            }
        }
        all.sort_by_key(|f| f.at);
        TargetHistory {
            name: name.into(),
            key: format!("cp:{name}/ANY"),
            points,
            failures: all,
        }
    }

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "events")
    }

    /// The rows as (time minute, timeEnd minute, title, text, tags, target).
    fn rows(frame: &Frame) -> Vec<(i64, i64, String, String, String, String)> {
        let minute = |t: &DateTime<Utc>| (*t - at(0)).num_minutes();
        let col = |i: usize| &frame.fields[i].values;
        let (Values::Time(time), Values::Time(end)) = (col(0), col(1)) else {
            panic!("time fields")
        };
        let strs = |i: usize| match col(i) {
            Values::Str(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        let (title, text, tags, target) = (strs(2), strs(3), strs(4), strs(5));
        (0..frame.rows())
            .map(|r| {
                (
                    minute(&time[r]),
                    minute(&end[r]),
                    title[r].clone(),
                    text[r].clone(),
                    tags[r].clone(),
                    target[r].clone(),
                )
            })
            .collect()
    }

    fn spans(frame: &Frame) -> Vec<(i64, i64, String)> {
        rows(frame)
            .into_iter()
            .map(|(a, b, title, ..)| (a, b, title))
            .collect()
    }

    #[test]
    fn golden_failures_and_crossings_of_two_targets() {
        // Target 1: a 503 burst on the edge (peak 7.5 %), a failed-poll range with two kinds,
        // and origin above at the end of the window.
        let one = history(
            "1209788",
            vec![
                ok(0, 1.0, 0.5),
                ok(2, 3.0, 0.5),
                ok(4, 7.5, 0.5),
                ok(6, 2.0, 0.5),
                failed(8),
                failed(10),
                failed(12),
                ok(14, 0.5, 4.0),
                ok(16, 0.5, 6.25),
            ],
            vec![
                stored(8, "timeout", "no answer from eStats within 30 s"),
                stored(
                    10,
                    "rate_limited",
                    "429 Too Many Requests: paused until 10:13:00",
                ),
            ],
        );
        // Target 2: credentials refused for one poll, at the window's start.
        let two = history(
            "https://www.example.com/ (ENHANCED_TLS)",
            vec![failed(0), ok(2, 0.0, 0.0)],
            vec![stored(
                0,
                "auth",
                "401 Unauthorized: the client token is not valid for this host",
            )],
        );
        let two = TargetHistory {
            key: "url:https://www.example.com//ENHANCED_TLS".into(),
            ..two
        };
        let q = query(r#"{"cpCode": 1209788, "threshold": 2}"#);
        golden::check("events_failures_and_crossings", &[frame(&q, &[one, two])]);
    }

    #[test]
    fn golden_empty_frame_has_the_fields() {
        let q = query(r#"{"cpCode": 1209788, "threshold": "2.5", "side": "edge"}"#);
        let f = frame(&q, &[history("1209788", Vec::new(), Vec::new())]);
        assert_eq!(f.rows(), 0);
        golden::check("events_empty", &[f]);
    }

    #[test]
    fn failed_ranges_at_the_edges_of_the_window_and_of_one_poll() {
        let q = query(r#"{"cpCode": 1}"#);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![
                    failed(0),
                    failed(1),
                    ok(2, 0.0, 0.0),
                    failed(3),
                    ok(4, 0.0, 0.0),
                    failed(5),
                ],
                Vec::new(),
            )],
        );
        let r = rows(&f);
        assert_eq!(
            spans(&f),
            [
                (0, 1, "polls failing".to_string()),
                (3, 3, "polls failing".to_string()),
                (5, 5, "polls failing".to_string()),
            ]
        );
        assert!(
            r[0].3.starts_with(
                "1: polls failing 10:00-10:01 UTC (2 polls): server_error: eStats answered 503"
            ),
            "{}",
            r[0].3
        );
        assert!(
            r[1].3.starts_with("1: polls failing 10:03 UTC (1 poll): "),
            "{}",
            r[1].3
        );
        assert_eq!(r[0].4, "estats,polls-failing,server_error");
    }

    #[test]
    fn failures_interleaved_with_successes_are_separate_ranges() {
        let q = query(r#"{"cpCode": 1}"#);
        let points = (0..10)
            .map(|m| {
                if m % 2 == 0 {
                    failed(m)
                } else {
                    ok(m, 0.0, 0.0)
                }
            })
            .collect();
        let f = frame(&q, &[history("1", points, Vec::new())]);
        let starts: Vec<i64> = spans(&f).iter().map(|s| s.0).collect();
        assert_eq!(starts, [0, 2, 4, 6, 8]);
        assert!(spans(&f).iter().all(|s| s.0 == s.1));
    }

    #[test]
    fn a_hole_in_polling_neither_ends_nor_starts_a_range() {
        // A 429 pause: the poller waits, so failed polls are far apart.
        let q = query(r#"{"cpCode": 1, "threshold": 5, "side": "origin"}"#);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![
                    ok(0, 0.0, 0.0),
                    failed(1),
                    failed(30),
                    failed(90),
                    ok(91, 0.0, 9.0),
                    ok(150, 0.0, 12.0),
                    ok(151, 0.0, 1.0),
                ],
                vec![
                    stored(1, "rate_limited", "429: paused"),
                    stored(30, "rate_limited", "429: paused"),
                    stored(90, "rate_limited", "429: paused"),
                ],
            )],
        );
        let r = rows(&f);
        assert_eq!(
            spans(&f),
            [
                (1, 90, "polls failing".to_string()),
                (91, 151, "origin 5xx above 5 %".to_string()),
            ]
        );
        assert_eq!(r[0].4, "estats,polls-failing,pause,rate_limited");
        assert!(
            r[0].3.contains("(3 polls): rate_limited: 429: paused"),
            "{}",
            r[0].3
        );
        assert!(
            r[1].3.ends_with("from 11:31 to 12:31 UTC, peak 12 %"),
            "{}",
            r[1].3
        );
    }

    #[test]
    fn a_share_exactly_at_the_threshold_is_not_above() {
        let q = query(r#"{"cpCode": 1, "threshold": 2, "side": "edge"}"#);
        // 1.1 + 0.9 is 2.0000000000000004 as floats: still "at" the threshold.
        let mut at_threshold = ok(1, 1.1, 0.0);
        if let Some(s) = &mut at_threshold.sample {
            s.edge = side(&[(200, 98.0), (500, 1.1), (503, 0.9)]);
        }
        let f = frame(
            &q,
            &[history(
                "1",
                vec![
                    ok(0, 2.0, 0.0),
                    at_threshold,
                    ok(2, 2.01, 0.0),
                    ok(3, 2.0, 0.0),
                    ok(4, 2.0, 0.0),
                ],
                Vec::new(),
            )],
        );
        assert_eq!(spans(&f), [(2, 3, "edge 5xx above 2 %".to_string())]);
        let text = &rows(&f)[0].3;
        assert_eq!(
            text,
            "1: edge 5xx above 2 % from 10:02 to 10:03 UTC, peak 2.01 %"
        );
    }

    #[test]
    fn both_sides_cross_separately_and_open_ranges_end_at_their_last_poll_above() {
        let q = query(r#"{"cpCode": 1, "threshold": 3}"#);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![
                    ok(0, 4.0, 0.0),
                    ok(1, 5.0, 4.0),
                    ok(2, 1.0, 6.0),
                    ok(3, 1.0, 5.0),
                    // A failed last poll measures nothing: the range ends at 10:03.
                    failed(4),
                ],
                Vec::new(),
            )],
        );
        let r = rows(&f);
        assert_eq!(
            spans(&f),
            [
                (0, 2, "edge 5xx above 3 %".to_string()),
                (1, 3, "origin 5xx above 3 %".to_string()),
                (4, 4, "polls failing".to_string()),
            ]
        );
        assert_eq!(r[0].4, "estats,threshold,edge");
        assert_eq!(r[1].4, "estats,threshold,origin");
        assert!(r[0].3.ends_with("peak 5 %"), "{}", r[0].3);
        assert!(
            r[1].3.ends_with("peak 6 %, still above at the last poll"),
            "{}",
            r[1].3
        );

        // One side asked: the other side's crossings are not marked.
        let q = query(r#"{"cpCode": 1, "threshold": 3, "side": "edge"}"#);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![ok(0, 0.0, 9.0), ok(1, 9.0, 0.0)],
                Vec::new(),
            )],
        );
        assert_eq!(spans(&f), [(1, 1, "edge 5xx above 3 %".to_string())]);
        assert!(rows(&f)[0]
            .3
            .contains("at 10:01 UTC, peak 9 %, still above"));
    }

    #[test]
    fn without_threshold_only_failures_are_marked() {
        let q = query(r#"{"cpCode": 1}"#);
        let f = frame(&q, &[history("1", vec![ok(0, 90.0, 90.0)], Vec::new())]);
        assert_eq!(f.rows(), 0);
    }

    #[test]
    fn the_filter_share_sums_its_classes_and_codes() {
        let mut p = ok(0, 0.0, 0.0);
        if let Some(s) = &mut p.sample {
            s.edge = side(&[(200, 93.0), (404, 2.0), (429, 1.0), (502, 3.0), (503, 1.0)]);
        }
        let q =
            query(r#"{"cpCode": 1, "threshold": 5.5, "statusFilter": "404,5xx", "side": "edge"}"#);
        let f = frame(&q, &[history("1", vec![p.clone()], Vec::new())]);
        assert_eq!(spans(&f), [(0, 0, "edge 404,5xx above 5.5 %".to_string())]);
        assert!(rows(&f)[0].3.contains("peak 6 %"));
        // The same poll is below 5.5 % of 5xx alone (4 %).
        let q = query(r#"{"cpCode": 1, "threshold": 5.5, "side": "edge"}"#);
        assert_eq!(frame(&q, &[history("1", vec![p], Vec::new())]).rows(), 0);
    }

    #[test]
    fn kinds_tag_pauses_and_credentials_and_mixed_runs_name_every_kind() {
        let q = query(r#"{"cpCode": 1}"#);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![failed(0), failed(1), failed(2), ok(3, 0.0, 0.0), failed(4)],
                vec![
                    stored(0, "forbidden", "403 Forbidden: no grant for this CP code"),
                    stored(1, "clock_skew", "400 Invalid timestamp"),
                    stored(2, "forbidden", "403 Forbidden"),
                    stored(4, "Weird, kind!", ""),
                ],
            )],
        );
        let r = rows(&f);
        assert_eq!(
            r[0].4,
            "estats,polls-failing,credentials,forbidden,clock_skew"
        );
        assert_eq!(
            r[0].3,
            "1: polls failing 10:00-10:02 UTC (3 polls): forbidden: 403 Forbidden: no grant for this CP code (also clock_skew)"
        );
        // An imported kind cannot split the tags or smuggle text into them.
        assert_eq!(r[1].4, "estats,polls-failing,weirdkind");
        assert_eq!(r[1].3, "1: polls failing 10:04 UTC (1 poll): Weird, kind!");
    }

    #[test]
    fn polls_in_one_list_only_are_kept() {
        // A failure stored between the two reads, and a failed point with no stored error.
        let q = query(r#"{"cpCode": 1}"#);
        let t = TargetHistory {
            name: "1".into(),
            key: "cp:1/ANY".into(),
            points: vec![ok(0, 0.0, 0.0), failed(1)],
            failures: vec![stored(2, "timeout", "no answer")],
        };
        let f = frame(&q, &[t]);
        assert_eq!(spans(&f), [(1, 2, "polls failing".to_string())]);
        assert_eq!(
            rows(&f)[0].3,
            "1: polls failing 10:01-10:02 UTC (2 polls) (also timeout)"
        );
    }

    #[test]
    fn ranges_over_midnight_name_the_dates_and_long_messages_are_cut() {
        let q = query(r#"{"cpCode": 1, "threshold": 1}"#);
        let long = "x".repeat(5000);
        let f = frame(
            &q,
            &[history(
                "1",
                vec![
                    failed(13 * 60 + 50),
                    failed(14 * 60 + 10),
                    ok(14 * 60 + 11, 5.0, 0.0),
                    ok(14 * 60 + 12, 0.0, 0.0),
                ],
                vec![stored(13 * 60 + 50, "server_error", &long)],
            )],
        );
        let r = rows(&f);
        assert!(
            r[0].3.starts_with(
                "1: polls failing 2026-11-30 23:50 to 2026-12-01 00:10 UTC (2 polls): server_error: xxx"
            ),
            "{}",
            &r[0].3[..100]
        );
        assert!(r[0].3.len() < 450 && r[0].3.ends_with("x..."));
        assert_eq!(
            r[1].3,
            "1: edge 5xx above 1 % from 00:11 to 00:12 UTC, peak 5 %"
        );
    }

    #[test]
    fn rows_ascend_by_time_and_keep_the_targets_order_at_one_instant() {
        let q = query(r#"{"cpCode": 1}"#);
        let f = frame(
            &q,
            &[
                history("b", vec![failed(5), failed(0)], Vec::new()),
                history("a", vec![failed(0), ok(1, 0.0, 0.0), failed(3)], Vec::new()),
            ],
        );
        let order: Vec<(i64, String)> = rows(&f).into_iter().map(|r| (r.0, r.5)).collect();
        assert_eq!(order, [(0, "b".into()), (0, "a".into()), (3, "a".into())]);
        assert_eq!(
            f.meta.custom.as_ref().unwrap()["targets"],
            serde_json::json!(["cp:b/ANY", "cp:a/ANY"])
        );
    }

    #[test]
    fn numbers_are_shown_short() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(7.5), "7.5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(100.0), "100");
    }
}
