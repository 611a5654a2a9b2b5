use std::io::Write as _;

use chrono::{Duration as ChronoDuration, TimeZone};

use super::*;
use crate::estats::model::{EdgeIpInfo, StatusCodeCount};
use crate::sample::{SideStats, TopIp, TopIpList};
use crate::target::Delivery;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn target() -> Target {
    Target::cp_code(1209788, Some(Delivery::StandardTls))
}

fn sample(at: DateTime<Utc>, hits_503: u64) -> Sample {
    Sample {
        sampled_at: at,
        edge: SideStats {
            hits: Some(100 + hits_503),
            errors: Some(hits_503),
            failure_percentage: Some(hits_503 as f64 * 100.0 / (100 + hits_503) as f64),
            codes: vec![
                StatusCodeCount {
                    http_status: 200,
                    hits: 100,
                    percentage: 90.5,
                },
                StatusCodeCount {
                    http_status: 503,
                    hits: hits_503,
                    percentage: 9.5,
                },
            ],
        },
        origin: SideStats {
            hits: Some(7),
            errors: None,
            failure_percentage: None,
            codes: vec![StatusCodeCount {
                http_status: 404,
                hits: 7,
                percentage: 100.0,
            }],
        },
        top_ips: vec![TopIp {
            list: TopIpList::Error,
            info: EdgeIpInfo {
                edge_ip: "192.0.2.1".into(),
                http_status: Some(503),
                hits: Some(3),
                ..Default::default()
            },
        }],
    }
}

fn failure() -> UpstreamError {
    UpstreamError::server(502, "Bad Gateway")
}

fn without_top(mut s: Sample) -> Sample {
    s.top_ips.clear();
    s
}

#[tokio::test]
async fn samples_and_failures_come_back_in_order_with_gaps() {
    let h = History::open(None).unwrap();
    let t = target();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    h.record_failure("ds", &t, t0() + ChronoDuration::minutes(2), &failure())
        .await
        .unwrap();
    h.record_sample("ds", &t, &sample(t0() + ChronoDuration::minutes(4), 2))
        .await
        .unwrap();
    let points = h
        .range("ds", &t, t0(), t0() + ChronoDuration::minutes(10))
        .await
        .unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!(points[0].sample, Some(without_top(sample(t0(), 1))));
    assert_eq!(points[1].at, t0() + ChronoDuration::minutes(2));
    assert_eq!(points[1].sample, None);
    assert!(points[2].sample.is_some());
    // The range is inclusive on both ends.
    let inner = h
        .range(
            "ds",
            &t,
            t0() + ChronoDuration::minutes(2),
            t0() + ChronoDuration::minutes(4),
        )
        .await
        .unwrap();
    assert_eq!(inner.len(), 2);
    assert_eq!(h.count("ds", &t).await.unwrap(), 3);
    assert_eq!(h.status_codes("ds", &t).await.unwrap(), vec![200, 404, 503]);
}

#[tokio::test]
async fn failures_keep_their_kind_and_message_and_polls_match_the_range() {
    let h = History::open(None).unwrap();
    let t = target();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    h.record_failure("ds", &t, t0() + ChronoDuration::minutes(2), &failure())
        .await
        .unwrap();
    h.record_sample("ds", &t, &sample(t0() + ChronoDuration::minutes(4), 2))
        .await
        .unwrap();
    let end = t0() + ChronoDuration::minutes(10);
    let failures = h.failures("ds", &t, t0(), end).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].at, t0() + ChronoDuration::minutes(2));
    assert_eq!(failures[0].kind, failure().kind().as_str());
    assert_eq!(failures[0].message, failure().to_string());
    assert!(h.failures("other", &t, t0(), end).await.unwrap().is_empty());

    // The shared store builds polls from points; both ways give the same polls.
    let wanted = super::polls::Wanted {
        edge: true,
        origin: true,
        hits: true,
        totals: true,
        bucketing: None,
    };
    let read = h.polls("ds", &t, t0(), end, wanted).await.unwrap();
    let mut built = super::polls::PollsBuilder::new(wanted);
    for point in h.range("ds", &t, t0(), end).await.unwrap() {
        built.push_point(&point);
    }
    assert_eq!(built.finish(), read);
    assert_eq!(read.len(), 3);
}

#[tokio::test]
async fn latest_is_the_newest_success_with_its_top_ips() {
    let h = History::open(None).unwrap();
    let t = target();
    assert_eq!(h.latest("ds", &t).await.unwrap(), None);
    h.record_sample("ds", &t, &sample(t0() + ChronoDuration::minutes(2), 5))
        .await
        .unwrap();
    // An older sample arriving late neither becomes the latest nor takes the top IPs.
    let mut old = sample(t0(), 1);
    old.top_ips[0].info.edge_ip = "198.51.100.9".into();
    h.record_sample("ds", &t, &old).await.unwrap();
    h.record_failure("ds", &t, t0() + ChronoDuration::minutes(4), &failure())
        .await
        .unwrap();
    let latest = h.latest("ds", &t).await.unwrap().unwrap();
    assert_eq!(latest, sample(t0() + ChronoDuration::minutes(2), 5));
}

#[tokio::test]
async fn recording_the_same_instant_twice_keeps_one_row() {
    let h = History::open(None).unwrap();
    let t = target();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    assert_eq!(h.count("ds", &t).await.unwrap(), 1);
}

#[tokio::test]
async fn data_sources_and_targets_do_not_mix() {
    let h = History::open(None).unwrap();
    let (a, b) = (target(), Target::cp_code(1, None));
    h.record_sample("one", &a, &sample(t0(), 1)).await.unwrap();
    h.record_sample("two", &a, &sample(t0() + ChronoDuration::seconds(1), 2))
        .await
        .unwrap();
    h.record_sample("one", &b, &sample(t0() + ChronoDuration::seconds(2), 3))
        .await
        .unwrap();
    let far = t0() + ChronoDuration::days(1);
    assert_eq!(h.range("one", &a, t0(), far).await.unwrap().len(), 1);
    assert_eq!(
        h.range("two", &a, t0(), far).await.unwrap()[0].at,
        t0() + ChronoDuration::seconds(1)
    );
    assert_eq!(h.range("two", &b, t0(), far).await.unwrap(), vec![]);
    assert_eq!(h.prune("one", far).await.unwrap(), 2);
    assert_eq!(h.count("two", &a).await.unwrap(), 1);
}

#[tokio::test]
async fn prune_deletes_only_older_rows() {
    let h = History::open(None).unwrap();
    let t = target();
    for m in 0..10 {
        h.record_sample("ds", &t, &sample(t0() + ChronoDuration::minutes(m), 1))
            .await
            .unwrap();
    }
    assert_eq!(
        h.prune("ds", t0() + ChronoDuration::minutes(4))
            .await
            .unwrap(),
        4
    );
    let points = h
        .range("ds", &t, t0(), t0() + ChronoDuration::hours(1))
        .await
        .unwrap();
    assert_eq!(points.len(), 6);
    assert_eq!(points[0].at, t0() + ChronoDuration::minutes(4));
}

#[tokio::test]
async fn a_file_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let t = target();
    {
        let h = History::open(Some(&path)).unwrap();
        h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
        h.record_failure("ds", &t, t0() + ChronoDuration::minutes(2), &failure())
            .await
            .unwrap();
        assert!(h.file_size().unwrap() > 0);
    }
    let h = History::open(Some(&path)).unwrap();
    assert_eq!(h.count("ds", &t).await.unwrap(), 2);
    assert_eq!(h.latest("ds", &t).await.unwrap(), Some(sample(t0(), 1)));
    let mode: String = h
        .inner
        .writer
        .lock()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn committed_samples_survive_without_a_clean_close() {
    // Leaking the History skips every destructor (no checkpoint, no close), as SIGKILL would:
    // what was committed must be readable from the WAL by a new connection.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let h = History::open(Some(&path)).unwrap();
    h.record_sample("ds", &target(), &sample(t0(), 1))
        .await
        .unwrap();
    std::mem::forget(h);
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let mut copy_wal = copy.clone().into_os_string();
    copy_wal.push("-wal");
    std::fs::copy(&wal, &copy_wal).unwrap();
    let reopened = History::open(Some(&copy)).unwrap();
    assert_eq!(reopened.count("ds", &target()).await.unwrap(), 1);
}

#[test]
fn reading_while_a_long_write_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let h = History::open(Some(&path)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(h.record_sample("ds", &target(), &sample(t0(), 1)))
        .unwrap();
    // Hold the writer inside an open transaction, as a big import does.
    let writer = h.inner.writer.lock();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute(
            "INSERT INTO samples (target_id, sampled_at_ms, ok) VALUES (999, 1, 0)",
            [],
        )
        .unwrap();
    let started = std::time::Instant::now();
    let points = h
        .with_reader(|conn| {
            let tid = store::target_id(conn, "ds", &target().key(), false)?.unwrap();
            store::rows(conn, tid, i64::MIN, i64::MAX)
        })
        .unwrap();
    assert_eq!(points.len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = History::open(Some(&dir.path().join("nope/history.db"))).unwrap_err();
    assert!(matches!(err, HistoryError::Open { .. }));
    assert!(
        err.to_string().contains("does not exist: create it"),
        "{err}"
    );
    let err = History::open(Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[test]
fn a_garbage_file_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = History::open(Some(&path)).unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("move it aside"), "{err}");
}

#[tokio::test]
async fn a_damaged_page_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let h = History::open(Some(&path)).unwrap();
        for m in 0..400 {
            h.record_sample(
                "ds",
                &target(),
                &sample(t0() + ChronoDuration::minutes(m), m as u64),
            )
            .await
            .unwrap();
        }
        h.inner
            .writer
            .lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 4 * 4096);
    // Overwrite the middle of the file (b-tree pages of the samples) with garbage.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(2 * 4096)).unwrap();
    f.write_all(&vec![0xff; 2 * 4096]).unwrap();
    drop(f);
    let err = History::open(Some(&path)).unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grafana.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE dashboard (id INTEGER)")
        .unwrap();
    let err = History::open(Some(&path)).unwrap_err();
    assert!(err.to_string().contains("other tables"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    drop(History::open(Some(&path)).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = History::open(Some(&path)).unwrap_err();
    assert!(err.to_string().contains("newer plugin"), "{err}");
}

fn line(at: &str, cp: u64, codes: &[(u16, u64, f64)]) -> String {
    let dist: Vec<String> = codes
        .iter()
        .map(|(s, h, p)| format!(r#"{{"httpStatus": {s}, "hits": {h}, "percentage": {p}}}"#))
        .collect();
    format!(
        r#"{{"sampledAt": "{at}", "target": {{"cpCode": {cp}, "delivery": "STANDARD_TLS"}}, "response": {{"executionStatus": "SUCCESS", "result": {{"edgeHits": 10, "edgeErrors": 1, "edgeFailurePercentage": 10.0, "edgeStatusCodeDistribution": [{}], "someNewField": true}}}}}}"#,
        dist.join(", ")
    )
}

fn import_file() -> String {
    [
        line("2024-05-01T12:00:00Z", 1, &[(200, 9, 90.0), (503, 1, 10.0)]),
        String::new(),
        line("2024-05-01T12:02:00.000Z", 1, &[(200, 10, 100.0)]),
        r#"{"sampledAt": "2024-05-01T14:04:00+02:00", "target": {"cpCode": "1", "delivery": "STANDARD_TLS"}, "response": {"executionStatus": "FAILURE"}}"#.to_string(),
        r#"{"sampledAt": "2024-05-01T12:06:00Z", "target": {"cpCode": 1, "delivery": "STANDARD_TLS"}, "error": {"kind": "timeout", "message": "no answer"}}"#.to_string(),
        line("2024-05-01T12:00:00Z", 2, &[(404, 1, 100.0)]),
    ]
    .join("\n")
}

#[tokio::test]
async fn import_is_idempotent() {
    let h = History::open(None).unwrap();
    let report = h.import_jsonl("ds", import_file().as_bytes()).unwrap();
    assert_eq!(
        report,
        ImportReport {
            lines: 5,
            inserted: 5,
            duplicates: 0,
            failures: 2,
            targets: 2
        }
    );
    let again = h.import_jsonl("ds", import_file().as_bytes()).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 5));
    let t = Target::cp_code(1, Some(Delivery::StandardTls));
    let points = h
        .range("ds", &t, t0(), t0() + ChronoDuration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        points
            .iter()
            .map(|p| p.sample.is_some())
            .collect::<Vec<_>>(),
        [true, true, false, false]
    );
    assert_eq!(
        points[2].at,
        t0() + ChronoDuration::minutes(4),
        "offset applied"
    );
    assert_eq!(
        points[0].sample.as_ref().unwrap().edge.codes[1],
        StatusCodeCount {
            http_status: 503,
            hits: 1,
            percentage: 10.0
        }
    );
}

#[test]
fn a_bad_line_names_its_number_and_imports_nothing() {
    let h = History::open(None).unwrap();
    let text = format!(
        "{}\n{}\n",
        line("2024-05-01T12:00:00Z", 1, &[(200, 1, 100.0)]),
        r#"{"sampledAt": "yesterday", "target": {"cpCode": 1}, "response": {}}"#
    );
    let err = h.import_jsonl("ds", text.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        HistoryError::Import {
            line: 2,
            reason: err_reason(&err)
        }
    );
    assert!(
        err.to_string()
            .starts_with("line 2: sampledAt \"yesterday\""),
        "{err}"
    );
    let exported = h.export_jsonl("ds", Vec::new()).unwrap();
    assert_eq!(exported, 0, "all or nothing");

    for (bad, want) in [
        ("not json", "not a sample line"),
        (
            r#"{"sampledAt": "2024-05-01T12:00:00Z", "target": {"cpCode": "x"}, "response": {}}"#,
            "target: cpCode",
        ),
        (
            r#"{"sampledAt": "2024-05-01T12:00:00Z", "target": {"cpCode": 1}}"#,
            "neither response",
        ),
    ] {
        let err = h.import_jsonl("ds", bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
    }
}

/// A file of `n` polls of CP codes 1 to 3 in turn, one every 2 minutes each, from 2024-05-01.
fn many_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let at = t0() + ChronoDuration::minutes(2 * (i / 3) as i64);
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            line(&at, 1 + (i % 3) as u64, &[(200, i as u64 + 1, 100.0)])
        })
        .collect()
}

#[tokio::test]
async fn a_large_import_is_stored_in_file_order_across_parser_batches() {
    let h = History::open(None).unwrap();
    let mut lines = many_lines(3_000);
    // Far from their first: a duplicate instant (the first line wins) and blank lines.
    let dup = lines[10].replace("\"hits\": 11", "\"hits\": 999");
    lines.push(dup);
    lines.insert(1_700, String::new());
    lines.insert(2_500, "   ".into());
    let report = h.import_jsonl("ds", lines.join("\n").as_bytes()).unwrap();
    assert_eq!(
        report,
        ImportReport {
            lines: 3_001,
            inserted: 3_000,
            duplicates: 1,
            failures: 0,
            targets: 3
        }
    );
    let t = Target::cp_code(2, Some(Delivery::StandardTls));
    let points = h
        .range("ds", &t, t0(), t0() + ChronoDuration::days(3))
        .await
        .unwrap();
    assert_eq!(points.len(), 1_000);
    let hits: Vec<u64> = points
        .iter()
        .map(|p| p.sample.as_ref().unwrap().edge.codes[0].hits)
        .collect();
    // Line 11 (CP code 2's fourth poll) is 11 hits, not the 999 of its duplicate at the end.
    assert_eq!(hits, (0..1_000).map(|k| 3 * k + 2).collect::<Vec<u64>>());
}

#[test]
fn the_first_bad_line_of_a_large_import_is_the_one_reported() {
    let bad = r#"{"sampledAt": "yesterday", "target": {"cpCode": 1}, "response": {}}"#;
    let cases: [(&[usize], &[usize], u64); 4] = [
        (&[2_100, 1_500], &[], 1_501),
        (&[2_999], &[], 3_000),
        // A line that is not UTF-8 after a bad line, and alone.
        (&[1_500], &[1_800], 1_501),
        (&[], &[1_800], 1_801),
    ];
    for (bad_at, unreadable_at, want) in cases {
        let h = History::open(None).unwrap();
        let mut lines: Vec<Vec<u8>> = many_lines(3_000)
            .into_iter()
            .map(String::into_bytes)
            .collect();
        for &i in bad_at {
            lines[i] = bad.as_bytes().to_vec();
        }
        for &i in unreadable_at {
            lines[i] = vec![b'{', 0xff, 0xfe, b'}'];
        }
        let err = h
            .import_jsonl("ds", lines.join(&b'\n').as_slice())
            .unwrap_err();
        assert!(
            matches!(err, HistoryError::Import { line, .. } if line == want),
            "{bad_at:?} {unreadable_at:?}: {err}"
        );
        assert_eq!(
            h.export_jsonl("ds", Vec::new()).unwrap(),
            0,
            "all or nothing"
        );
    }
}

fn err_reason(e: &HistoryError) -> String {
    match e {
        HistoryError::Import { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn export_then_import_round_trips() {
    let h = History::open(None).unwrap();
    h.import_jsonl("ds", import_file().as_bytes()).unwrap();
    let mut first = Vec::new();
    assert_eq!(h.export_jsonl("ds", &mut first).unwrap(), 5);
    let copy = History::open(None).unwrap();
    let report = copy.import_jsonl("other", first.as_slice()).unwrap();
    assert_eq!(report.inserted, 5);
    let mut second = Vec::new();
    copy.export_jsonl("other", &mut second).unwrap();
    assert_eq!(
        String::from_utf8(first).unwrap(),
        String::from_utf8(second).unwrap()
    );
    assert_eq!(copy.export_jsonl("ds", Vec::new()).unwrap(), 0);
}

#[tokio::test]
async fn exported_top_ips_belong_to_the_latest_sample_only() {
    let h = History::open(None).unwrap();
    let t = target();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    h.record_sample("ds", &t, &sample(t0() + ChronoDuration::minutes(2), 2))
        .await
        .unwrap();
    let mut out = Vec::new();
    h.export_jsonl("ds", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].contains("192.0.2.1"));
    assert!(lines[1].contains("topEdgeIpsWithError") && lines[1].contains("192.0.2.1"));
    let copy = History::open(None).unwrap();
    copy.import_jsonl("ds", text.as_bytes()).unwrap();
    assert_eq!(
        copy.latest("ds", &t).await.unwrap(),
        Some(sample(t0() + ChronoDuration::minutes(2), 2))
    );
}

#[tokio::test]
async fn a_week_of_samples_imports_fast_and_ranges_read_fast() {
    // 5,040 samples of 20 codes per side: the benchmark's week at 2-minute polls.
    let mut text = String::new();
    let codes: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"httpStatus": {}, "hits": {}, "percentage": 5.0}}"#,
                200 + i * 17,
                10 + i
            )
        })
        .collect();
    let codes = codes.join(",");
    for i in 0..5040 {
        let at = t0() + ChronoDuration::minutes(2 * i);
        text.push_str(&format!(
            r#"{{"sampledAt": "{}", "target": {{"cpCode": 7}}, "response": {{"result": {{"edgeHits": 100, "originHits": 50, "edgeStatusCodeDistribution": [{codes}], "originStatusCodeDistribution": [{codes}]}}}}}}"#,
            at.to_rfc3339()
        ));
        text.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(Some(&dir.path().join("week.db"))).unwrap();
    let started = std::time::Instant::now();
    let report = h.import_jsonl("ds", text.as_bytes()).unwrap();
    assert_eq!(report.inserted, 5040);
    let import_time = started.elapsed();
    let t = Target::cp_code(7, None);
    let started = std::time::Instant::now();
    let points = h
        .range("ds", &t, t0(), t0() + ChronoDuration::days(8))
        .await
        .unwrap();
    let range_time = started.elapsed();
    assert_eq!(points.len(), 5040);
    assert_eq!(points[0].sample.as_ref().unwrap().origin.codes.len(), 20);
    // Generous bounds for a debug build on a shared machine; release is far below.
    assert!(
        import_time < std::time::Duration::from_secs(20),
        "{import_time:?}"
    );
    assert!(
        range_time < std::time::Duration::from_secs(2),
        "{range_time:?}"
    );
    eprintln!(
        "week import {import_time:?}, range {range_time:?}, file {} bytes",
        h.file_size().unwrap()
    );
}

#[test]
fn the_registry_shares_files_and_separates_memory_by_uid() {
    let dir = tempfile::tempdir().unwrap();
    let reg = HistoryRegistry::new();
    let path = dir.path().join("h.db");
    let a = reg.get("a", Some(&path)).unwrap();
    let b = reg
        .get("b", Some(&dir.path().join(".").join("h.db")))
        .unwrap();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    let m1 = reg.get("a", None).unwrap();
    let m2 = reg.get("a", Some(Path::new(""))).unwrap();
    let m3 = reg.get("b", None).unwrap();
    assert!(Arc::ptr_eq(&m1.inner, &m2.inner));
    assert!(!Arc::ptr_eq(&m1.inner, &m3.inner));
}

#[tokio::test]
async fn the_memory_history_of_an_expired_data_source_is_freed() {
    let reg = HistoryRegistry::new();
    let a = reg.get("a", None).unwrap();
    a.record_sample("a", &target(), &sample(t0(), 1))
        .await
        .unwrap();
    let b = reg.get("b", None).unwrap();
    let file_dir = tempfile::tempdir().unwrap();
    let file = reg.get("a", Some(&file_dir.path().join("h.db"))).unwrap();
    let a_database = Arc::downgrade(&a.inner);
    // The expired instance goes, and its poller's handle with it.
    drop(a);
    reg.retain_memory(|uid| uid == "b");
    assert!(
        a_database.upgrade().is_none(),
        "the expired data source's in-memory database is still held"
    );
    let a = reg.get("a", None).unwrap();
    assert_eq!(
        a.count("a", &target()).await.unwrap(),
        0,
        "a new, empty one"
    );
    assert!(Arc::ptr_eq(&b.inner, &reg.get("b", None).unwrap().inner));
    assert!(Arc::ptr_eq(
        &file.inner,
        &reg.get("c", Some(&file_dir.path().join("h.db")))
            .unwrap()
            .inner
    ));
}

const SIGKILL_ENV: &str = "ESTATS_HISTORY_SIGKILL_DB";

#[test]
fn a_sigkilled_writer_loses_no_committed_sample() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "history::tests::sigkill_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGKILL_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut committed = 0u64;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.trim().parse().unwrap();
            if committed >= 50 {
                break;
            }
        }
    }
    // SIGKILL on Unix: no destructor, no checkpoint, no close.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(committed >= 50, "the writer process did not start");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h = History::open(Some(&path)).unwrap();
    let stored = rt.block_on(h.count("ds", &target())).unwrap();
    assert!(
        stored >= committed,
        "{stored} stored < {committed} committed"
    );
}

/// The process that `a_sigkilled_writer_loses_no_committed_sample` kills: it reports each
/// committed sample on stdout and keeps writing until killed (or 20 s pass).
#[test]
#[ignore = "helper process of a_sigkilled_writer_loses_no_committed_sample"]
fn sigkill_writer_process() {
    let Some(path) = std::env::var_os(SIGKILL_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h = History::open(Some(Path::new(&path))).unwrap();
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        rt.block_on(h.record_sample(
            "ds",
            &target(),
            &sample(t0() + ChronoDuration::seconds(n), 1),
        ))
        .unwrap();
        n += 1;
        println!("committed {n}");
        std::io::stdout().flush().unwrap();
    }
}

/// How [`varied_history`] stores its polls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Storing {
    /// As pollers do, in order: closed blocks in chunks, the open block in rows.
    InOrder,
    /// Every third poll late (after all others, newest first): rows between the chunked polls
    /// of their blocks.
    Late,
    /// Imported (chunks for every block), then the polls of the last hours again and new
    /// ones as a poller would: chunk and rows in the same block, duplicates ignored.
    ImportedThenPolled,
    /// All as rows, as schema version 1 kept them (no block ever closed).
    Rows,
}

/// One poll of the varied history: a sample, a failure (`None`), or nothing (missing).
fn varied_poll(i: u64, at: DateTime<Utc>) -> Option<Option<Sample>> {
    // Missing polls from 200 to 230: a hole.
    if (200..230).contains(&i) {
        return None;
    }
    if i % 37 == 5 {
        return Some(None);
    }
    let mut s = sample(at, i % 7);
    if i % 3 == 0 {
        s.edge.codes.push(StatusCodeCount {
            http_status: 504,
            hits: i % 5,
            percentage: (i % 5) as f64 * 0.37,
        });
    }
    if i % 11 == 0 {
        s.edge.codes.insert(
            0,
            StatusCodeCount {
                http_status: 101,
                hits: 1,
                percentage: 0.01,
            },
        );
        s.origin.codes.push(StatusCodeCount {
            http_status: 1234,
            hits: 2,
            percentage: 0.33,
        });
    }
    if i % 13 == 0 {
        s.edge.failure_percentage = None;
    }
    if i % 29 == 0 {
        // Out of order: kept raw in chunks, byte for byte.
        s.edge.codes.reverse();
    }
    Some(Some(s))
}

async fn record(h: &History, t: &Target, at: DateTime<Utc>, poll: &Option<Sample>) {
    match poll {
        Some(s) => h.record_sample("ds", t, s).await.unwrap(),
        None => h.record_failure("ds", t, at, &failure()).await.unwrap(),
    }
}

/// A varied history: codes appearing and vanishing, classes, a code above 999, failures,
/// a hole of missing polls, totals missing on one side, codes out of order; 400 polls at
/// 2 minutes (7 blocks), stored as `storing` says.
async fn varied_history_stored(storing: Storing) -> (History, DateTime<Utc>, DateTime<Utc>) {
    let h = History::open(None).unwrap();
    let t = target();
    let start = t0();
    let polls: Vec<(DateTime<Utc>, Option<Sample>)> = (0..400u64)
        .filter_map(|i| {
            let at = start + ChronoDuration::minutes(2 * i as i64);
            varied_poll(i, at).map(|p| (at, p))
        })
        .collect();
    let end = start + ChronoDuration::minutes(800);
    match storing {
        Storing::InOrder => {
            for (at, p) in &polls {
                record(&h, &t, *at, p).await;
            }
        }
        Storing::Late => {
            for (k, (at, p)) in polls.iter().enumerate() {
                if k % 3 != 0 {
                    record(&h, &t, *at, p).await;
                }
            }
            // Newest first: no later poll closes their blocks again, so they stay rows
            // between the chunked polls of their blocks.
            for (k, (at, p)) in polls.iter().enumerate().rev() {
                if k % 3 == 0 {
                    record(&h, &t, *at, p).await;
                }
            }
        }
        Storing::ImportedThenPolled => {
            let split = polls.len() - 40;
            let mut text = Vec::new();
            for (at, p) in &polls[..split] {
                let line = import::Line {
                    sampled_at: at.to_rfc3339(),
                    target: crate::target::TargetSpec::from(&t),
                    response: p.as_ref().map(import::response_of),
                    error: p.is_none().then(|| import::LineError {
                        kind: failure().kind().as_str().to_string(),
                        message: failure().to_string(),
                    }),
                };
                serde_json::to_writer(&mut text, &line).unwrap();
                text.push(b'\n');
            }
            h.import_jsonl("ds", text.as_slice()).unwrap();
            for (at, p) in &polls[split - 10..] {
                record(&h, &t, *at, p).await;
            }
        }
        Storing::Rows => {
            h.with_writer(|conn| {
                let tid = store::target_id(conn, "ds", &t.key(), true)?.unwrap();
                for (at, p) in &polls {
                    match p {
                        Some(s) => {
                            store::upsert_top_ips(conn, tid, at.timestamp_millis(), &s.top_ips)?;
                            store::insert_sample(conn, tid, s)?
                        }
                        None => store::insert_failure(
                            conn,
                            tid,
                            at.timestamp_millis(),
                            failure().kind().as_str(),
                            &failure().to_string(),
                        )?,
                    };
                }
                Ok(())
            })
            .unwrap();
        }
    }
    (h, start, end)
}

async fn varied_history() -> (History, DateTime<Utc>, DateTime<Utc>) {
    varied_history_stored(Storing::InOrder).await
}

/// Where the polls of the target sit: (rows, chunks).
fn placement(h: &History) -> (i64, i64) {
    h.with_writer(|conn| {
        conn.query_row(
            "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM chunks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(store::sql)
    })
    .unwrap()
}

fn user_version(h: &History) -> i32 {
    h.with_writer(|c| {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(store::sql)
    })
    .unwrap()
}

/// Checks that every chunk has the rollup of its rows and no rollup lacks its chunk; returns
/// how many rollups there are.
fn rollups_match_chunks(h: &History) -> usize {
    h.with_writer(|conn| {
        let blobs = |table: &str| -> Result<Vec<(i64, i64, Vec<u8>)>, HistoryError> {
            conn.prepare(&format!(
                "SELECT target_id, block_ms, data FROM {table} ORDER BY 1, 2"
            ))
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(store::sql)
        };
        let (chunks, rollups) = (blobs("chunks")?, blobs("rollups")?);
        let expected: Vec<(i64, i64, Vec<u8>)> = chunks
            .into_iter()
            .map(|(t, b, data)| {
                (
                    t,
                    b,
                    rollup::encode(&chunk::decode(&data).unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(rollups, expected);
        Ok(rollups.len())
    })
    .unwrap()
}

/// A read for a series downsampled into 20-minute buckets.
fn summed(wanted: polls::Wanted) -> polls::Wanted {
    polls::Wanted {
        bucketing: Some(polls::Bucketing {
            width_ms: 1_200_000,
            max_points: 7,
        }),
        ..wanted
    }
}

#[tokio::test]
async fn the_polls_path_gives_the_frames_of_the_samples_path() {
    use crate::handlers::timeseries;
    use crate::query::{Query, QueryContext};
    let mut reference: Vec<crate::frame::Frame> = Vec::new();
    let all = polls::Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: true,
        bucketing: None,
    };
    let (rows, start, end) = varied_history_stored(Storing::Rows).await;
    let as_rows = rows.polls("ds", &target(), start, end, all).await.unwrap();
    for storing in [
        Storing::InOrder,
        Storing::Late,
        Storing::ImportedThenPolled,
        Storing::Rows,
    ] {
        let (h, start, end) = varied_history_stored(storing).await;
        let (rows, chunks) = placement(&h);
        match storing {
            Storing::Rows => assert_eq!(chunks, 0),
            Storing::InOrder => assert!(rows > 0 && rows < 60 && chunks == 6, "{rows} {chunks}"),
            Storing::Late => assert!(rows > 100 && chunks == 6, "{rows} {chunks}"),
            _ => assert!(rows > 0 && chunks > 0, "{storing:?}: {rows} {chunks}"),
        }
        assert_eq!(h.count("ds", &target()).await.unwrap(), 370, "{storing:?}");
        assert_eq!(rollups_match_chunks(&h), chunks as usize, "{storing:?}");
        // Whole closed blocks without rows come summed, unless a range is drawn poll by poll.
        let codes = polls::Wanted {
            totals: false,
            ..all
        };
        let read = h
            .polls("ds", &target(), start, end, summed(codes))
            .await
            .unwrap();
        assert_eq!(read.len(), 370, "{storing:?}");
        assert_eq!(
            read.has_sums(),
            matches!(storing, Storing::InOrder | Storing::ImportedThenPolled),
            "{storing:?}"
        );
        let few = polls::Wanted {
            bucketing: Some(polls::Bucketing {
                width_ms: 1_200_000,
                max_points: 370,
            }),
            ..codes
        };
        let read = h.polls("ds", &target(), start, end, few).await.unwrap();
        assert!(!read.has_sums(), "{storing:?}: 370 polls fit 370 points");
        assert_eq!(
            read,
            h.polls("ds", &target(), start, end, codes).await.unwrap()
        );
        if storing != Storing::ImportedThenPolled {
            // Polls in order, codes as stored, wherever they sit (an import sorts the codes).
            let read = h.polls("ds", &target(), start, end, all).await.unwrap();
            assert_eq!(read, as_rows, "{storing:?}");
        }
        let mut checked = 0;
        for json in [
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "side": "edge", "metric": "hits"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "groupBy": "class"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "groupBy": "class", "side": "origin", "statusFilter": "5xx,404,3xx"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "groupBy": "total", "metric": "failurePercentage"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "groupBy": "total", "metric": "hits"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "groupBy": "total", "metric": "errors", "side": "origin"}"#,
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "statusFilter": "503,1xx"}"#,
            r#"{"cpCode": 1, "delivery": "STANDARD_TLS"}"#,
        ] {
            for (from, to) in [
                (start, end),
                (
                    start + ChronoDuration::minutes(61),
                    end - ChronoDuration::minutes(300),
                ),
                (end, end + ChronoDuration::hours(1)),
            ] {
                for max_data_points in [0, 7, 100, 1000] {
                    for interval_ms in [1_000, 600_000] {
                        let ctx = QueryContext {
                            from_ms: from.timestamp_millis(),
                            to_ms: to.timestamp_millis(),
                            interval_ms,
                            max_data_points,
                        };
                        let q =
                            Query::parse("A", json.as_bytes(), "timeseries", ctx, None).unwrap();
                        let points = h.range("ds", &q.target, q.from, q.to).await.unwrap();
                        let slow = timeseries::frame(&q, &points);
                        let fast = timeseries::frame_from_history(&q, &h, "ds").await.unwrap();
                        let what = format!(
                            "{storing:?} {json} {from} {to} {max_data_points} {interval_ms}"
                        );
                        assert_eq!(fast, slow, "{what}");
                        // However the polls are stored, the frames are the same.
                        if storing == Storing::InOrder {
                            reference.push(fast);
                        } else {
                            assert_eq!(fast, reference[checked], "{what}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 9 * 3 * 4 * 2);
        let far = end + ChronoDuration::days(1);
        let failures = h.failures("ds", &target(), start, far).await.unwrap();
        assert_eq!(failures.len(), 10, "{storing:?}");
        assert!(failures.windows(2).all(|w| w[0].at < w[1].at));
        assert_eq!(failures[0].kind, failure().kind().as_str());
        assert_eq!(
            h.status_codes("ds", &target()).await.unwrap(),
            [101, 200, 404, 503, 504, 1234]
        );
        let latest = h.latest("ds", &target()).await.unwrap().unwrap();
        assert_eq!(latest.sampled_at, start + ChronoDuration::minutes(798));
    }
}

#[tokio::test]
async fn polls_with_an_unreadable_code_blob_are_reported_corrupt() {
    let h = History::open(None).unwrap();
    let t = target();
    h.record_sample("ds", &t, &sample(t0(), 1)).await.unwrap();
    h.with_writer(|conn| {
        conn.execute("UPDATE samples SET codes = x'0185'", [])
            .map_err(store::sql)
    })
    .unwrap();
    let wanted = polls::Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: true,
        bucketing: None,
    };
    let err = h.polls("ds", &t, t0(), t0(), wanted).await.unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be read"), "{err}");
    let none = h
        .polls("ds", &target_two(), t0(), t0(), wanted)
        .await
        .unwrap();
    assert!(none.is_empty());
}

fn target_two() -> Target {
    Target::cp_code(42, None)
}

/// Writes the varied history into a new file as schema version 1 did: its DDL, one row per
/// poll with the v1 INSERTs, and the top IPs of the latest sample.
fn version_1_file(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "{}; PRAGMA application_id = {}; PRAGMA user_version = 1; PRAGMA journal_mode = WAL;",
        schema::V1_SQL,
        schema::APPLICATION_ID
    ))
    .unwrap();
    conn.execute(
        "INSERT INTO targets (uid, target_key) VALUES ('ds', ?1)",
        [target().key()],
    )
    .unwrap();
    let tid = conn.last_insert_rowid();
    for i in 0..400u64 {
        let at = t0() + ChronoDuration::minutes(2 * i as i64);
        match varied_poll(i, at) {
            None => {}
            Some(None) => {
                conn.execute(
                    "INSERT OR IGNORE INTO samples (target_id, sampled_at_ms, ok, error_kind, error_message)
                     VALUES (?1, ?2, 0, ?3, ?4)",
                    rusqlite::params![
                        tid,
                        at.timestamp_millis(),
                        failure().kind().as_str(),
                        failure().to_string()
                    ],
                )
                .unwrap();
            }
            Some(Some(s)) => {
                let n = |v: Option<u64>| v.map(|v| v as i64);
                conn.execute(
                    "INSERT OR IGNORE INTO samples (target_id, sampled_at_ms, ok, edge_hits, edge_errors,
                     edge_failure_pct, origin_hits, origin_errors, origin_failure_pct, codes)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        tid,
                        at.timestamp_millis(),
                        n(s.edge.hits),
                        n(s.edge.errors),
                        s.edge.failure_percentage,
                        n(s.origin.hits),
                        n(s.origin.errors),
                        s.origin.failure_percentage,
                        store::codec::encode(&s.edge.codes, &s.origin.codes)
                    ],
                )
                .unwrap();
                conn.execute(
                    "INSERT OR REPLACE INTO top_ips (target_id, sampled_at_ms, json) VALUES (?1, ?2, ?3)",
                    rusqlite::params![
                        tid,
                        at.timestamp_millis(),
                        serde_json::to_string(&s.top_ips).unwrap()
                    ],
                )
                .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_version_1_file_migrates_in_place_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    version_1_file(&path);
    // The same polls as version 1 rows, read the version 1 way (no chunk anywhere).
    let (rows, _, _) = varied_history_stored(Storing::Rows).await;
    let t = target();
    let far = t0() + ChronoDuration::days(2);
    let mut before = Vec::new();
    rows.export_jsonl("ds", &mut before).unwrap();

    let h = History::open(Some(&path)).unwrap();
    assert_eq!(user_version(&h), schema::VERSION);
    assert_eq!(placement(&h), (0, 7), "every row moved into 7 chunks");
    assert_eq!(rollups_match_chunks(&h), 7, "each with its rollup");
    assert_eq!(h.count("ds", &t).await.unwrap(), 370);
    assert_eq!(
        h.range("ds", &t, t0(), far).await.unwrap(),
        rows.range("ds", &t, t0(), far).await.unwrap()
    );
    assert_eq!(
        h.failures("ds", &t, t0(), far).await.unwrap(),
        rows.failures("ds", &t, t0(), far).await.unwrap()
    );
    let all = polls::Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: true,
        bucketing: None,
    };
    assert_eq!(
        h.polls("ds", &t, t0(), far, all).await.unwrap(),
        rows.polls("ds", &t, t0(), far, all).await.unwrap()
    );
    assert_eq!(
        h.status_codes("ds", &t).await.unwrap(),
        rows.status_codes("ds", &t).await.unwrap()
    );
    let latest = h.latest("ds", &t).await.unwrap().unwrap();
    assert_eq!(latest.sampled_at, t0() + ChronoDuration::minutes(798));
    assert_eq!(
        latest.top_ips.len(),
        1,
        "the top IPs stay with the latest sample"
    );
    let mut after = Vec::new();
    h.export_jsonl("ds", &mut after).unwrap();
    assert_eq!(
        String::from_utf8(after).unwrap(),
        String::from_utf8(before).unwrap()
    );
    // Reopening a migrated file changes nothing; new polls go on as rows.
    drop(h);
    let h = History::open(Some(&path)).unwrap();
    h.record_sample("ds", &t, &sample(far, 1)).await.unwrap();
    assert_eq!(placement(&h), (1, 7));
    assert_eq!(h.count("ds", &t).await.unwrap(), 371);
}

#[tokio::test]
async fn prune_cuts_chunks_and_rows_alike() {
    let (h, start, _) = varied_history_stored(Storing::ImportedThenPolled).await;
    let t = target();
    let far = start + ChronoDuration::days(1);
    let all = h.range("ds", &t, start, far).await.unwrap();
    // Inside the third block: two blocks go whole, the third loses its first polls.
    let cut = start + ChronoDuration::minutes(2 * 60 + 2 * 60 + 30);
    let gone = all.iter().filter(|p| p.at < cut).count() as u64;
    assert_eq!(h.prune("ds", cut).await.unwrap(), gone);
    let left = h.range("ds", &t, start, far).await.unwrap();
    assert_eq!(
        left,
        all.into_iter().filter(|p| p.at >= cut).collect::<Vec<_>>()
    );
    assert_eq!(h.count("ds", &t).await.unwrap(), left.len() as u64);
    assert!(rollups_match_chunks(&h) > 0);
    // Past everything: nothing left, chunks and rollups included.
    h.prune("ds", far).await.unwrap();
    assert_eq!(h.count("ds", &t).await.unwrap(), 0);
    assert_eq!(placement(&h), (0, 0));
    assert_eq!(rollups_match_chunks(&h), 0);
}

/// Writes at `path` the varied polls of [`varied_history`] as a file of version 2 (version 3
/// without the rollups table: what files were before rollups), then runs `then` on it.
async fn version_2_file(path: &std::path::Path, then: &str) {
    let h = History::open(Some(path)).unwrap();
    let (t, start) = (target(), t0());
    for i in 0..400u64 {
        let at = start + ChronoDuration::minutes(2 * i as i64);
        if let Some(p) = varied_poll(i, at) {
            record(&h, &t, at, &p).await;
        }
    }
    h.with_writer(|c| {
        c.execute_batch(&format!(
            "DROP TABLE rollups; PRAGMA user_version = 2; {then}"
        ))
        .map_err(store::sql)
    })
    .unwrap();
}

#[tokio::test]
async fn a_version_2_file_gets_its_rollups_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let t = target();
    let (start, end) = (t0(), t0() + ChronoDuration::minutes(800));
    let codes = polls::Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: false,
        bucketing: None,
    };
    let expected = {
        let (h, ..) = varied_history().await;
        h.polls("ds", &t, start, end, codes).await.unwrap()
    };
    version_2_file(&path, "").await;
    let h = History::open(Some(&path)).unwrap();
    assert_eq!(user_version(&h), schema::VERSION);
    assert_eq!(rollups_match_chunks(&h), 6);
    let read = h.polls("ds", &t, start, end, summed(codes)).await.unwrap();
    assert!(read.has_sums());
    assert_eq!(
        h.polls("ds", &t, start, end, codes).await.unwrap(),
        expected
    );
}

#[tokio::test]
async fn a_missing_damaged_or_misplaced_rollup_reads_the_chunk_instead() {
    let (h, start, end) = varied_history().await;
    let t = target();
    let wanted = summed(polls::Wanted {
        edge: true,
        origin: false,
        hits: true,
        totals: false,
        bucketing: None,
    });
    let whole = h.polls("ds", &t, start, end, wanted).await.unwrap();
    let first = "(SELECT min(block_ms) FROM rollups)";
    let alter = |sql: String| {
        h.with_writer(|conn| conn.execute(&sql, []).map_err(store::sql))
            .unwrap();
    };
    alter(format!(
        "CREATE TABLE saved AS SELECT * FROM rollups WHERE block_ms = {first}"
    ));
    alter(format!("DELETE FROM rollups WHERE block_ms = {first}"));
    let without = h.polls("ds", &t, start, end, wanted).await.unwrap();
    assert!(without.has_sums());
    assert_eq!(without.len(), whole.len());
    assert_ne!(without, whole, "the first block's codes now come per poll");
    alter("INSERT INTO rollups SELECT * FROM saved".into());
    assert_eq!(h.polls("ds", &t, start, end, wanted).await.unwrap(), whole);
    // Damaged bytes, or the rollup of another block: the chunk answers, as if it were missing.
    for data in [
        "x'0105'".to_string(),
        format!("(SELECT data FROM rollups WHERE block_ms > {first} ORDER BY block_ms LIMIT 1)"),
    ] {
        alter(format!(
            "UPDATE rollups SET data = {data} WHERE block_ms = (SELECT min(block_ms) FROM saved)"
        ));
        assert_eq!(
            h.polls("ds", &t, start, end, wanted).await.unwrap(),
            without,
            "{data}"
        );
    }
}

#[tokio::test]
async fn a_version_2_file_with_a_damaged_chunk_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let t = target();
    let (start, end) = (t0(), t0() + ChronoDuration::minutes(800));
    version_2_file(
        &path,
        "UPDATE chunks SET data = x'0105' WHERE block_ms = (SELECT min(block_ms) FROM chunks)",
    )
    .await;
    let h = History::open(Some(&path)).expect("one damaged chunk must not keep the file shut");
    let rollups: i64 = h
        .with_writer(|c| {
            c.query_row("SELECT count(*) FROM rollups", [], |r| r.get(0))
                .map_err(store::sql)
        })
        .unwrap();
    assert_eq!(rollups, 5, "every chunk but the damaged one");
    let codes = summed(polls::Wanted {
        edge: true,
        origin: true,
        hits: false,
        totals: false,
        bucketing: None,
    });
    // The damaged block fails the queries that touch it, and only those.
    let err = h.polls("ds", &t, start, end, codes).await.unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    let later = start + ChronoDuration::hours(4);
    let read = h.polls("ds", &t, later, end, codes).await.unwrap();
    assert!(read.has_sums() && !read.is_empty());
}

#[tokio::test]
async fn a_damaged_chunk_is_reported_corrupt() {
    let (h, start, end) = varied_history().await;
    h.with_writer(|conn| {
        conn.execute(
            "UPDATE chunks SET data = x'0105' WHERE block_ms = (SELECT min(block_ms) FROM chunks)",
            [],
        )
        .map_err(store::sql)
    })
    .unwrap();
    let t = target();
    let wanted = polls::Wanted {
        edge: true,
        origin: false,
        hits: true,
        totals: false,
        bucketing: None,
    };
    let err = h.polls("ds", &t, start, end, wanted).await.unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be read"), "{err}");
    let err = h.range("ds", &t, start, end).await.unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    // The blocks after it still read.
    let later = start + ChronoDuration::hours(2);
    assert!(!h
        .polls("ds", &t, later, end, wanted)
        .await
        .unwrap()
        .is_empty());
}
