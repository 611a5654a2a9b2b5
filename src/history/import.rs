//! `history import` / `history export`: samples as JSON lines, one per line:
//!
//! ```json
//! {"sampledAt": "2024-05-01T12:00:00Z", "target": {"cpCode": 1209788, "delivery": "STANDARD_TLS"}, "response": { ...an eStats answer... }}
//! {"sampledAt": "2024-05-01T12:02:00Z", "target": {"cpCode": 1209788}, "error": {"kind": "server_error", "message": "..."}}
//! ```
//!
//! A `response` whose `executionStatus` is `FAILURE`, or an `error`, is a failed poll (a gap).
//! Importing is idempotent: a line whose target and instant (to the millisecond) are stored
//! already is skipped, so the same file twice gives the same history.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::chunk;
use super::store::{self, sql};
use super::HistoryError;
use crate::estats::model::{EstatsData, EstatsResponse};
use crate::sample::{Sample, TopIp, TopIpList};
use crate::target::{Target, TargetSpec};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sampled_at: String,
    pub target: TargetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<EstatsResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LineError>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LineError {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Non-blank lines read.
    pub lines: u64,
    /// New rows (successful samples and failed polls).
    pub inserted: u64,
    /// Lines already stored.
    pub duplicates: u64,
    pub failures: u64,
    pub targets: u64,
}

enum Parsed {
    Sample(Target, Sample),
    Failure(Target, DateTime<Utc>, String, String),
}

fn parse_line(text: &str, line: u64) -> Result<Parsed, HistoryError> {
    let bad = |reason: String| HistoryError::Import { line, reason };
    let parsed: Line = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not a sample line ({e}); each line must be {{\"sampledAt\": RFC 3339 time, \"target\": {{\"cpCode\": ...}}, \"response\": eStats answer}}"
        ))
    })?;
    let at = DateTime::parse_from_rfc3339(parsed.sampled_at.trim())
        .map_err(|e| {
            bad(format!(
                "sampledAt {:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z ({e})",
                parsed.sampled_at
            ))
        })?
        .with_timezone(&Utc);
    let target = parsed
        .target
        .check()
        .map_err(|e| bad(format!("target: {e}")))?;
    match (parsed.response, parsed.error) {
        (Some(response), None) if response.is_failure() => Ok(Parsed::Failure(
            target,
            at,
            "execution_failed".into(),
            "eStats could not collect the statistics (executionStatus FAILURE)".into(),
        )),
        (Some(response), None) => Ok(Parsed::Sample(target, Sample::from_response(at, &response))),
        (None, Some(error)) => Ok(Parsed::Failure(target, at, error.kind, error.message)),
        (Some(_), Some(_)) => Err(bad(
            "has both response and error: a line is either a sample or a failed poll".into(),
        )),
        (None, None) => Err(bad(
            "has neither response (an eStats answer) nor error (a failed poll)".into(),
        )),
    }
}

/// The lines of one target's open block, waiting to be stored as its chunk.
struct Pending {
    block: i64,
    rows: Vec<(chunk::Row, Option<Vec<TopIp>>)>,
}

/// Stores the pending lines of target `tid` in their block's chunk (merged with what the block
/// held: the first stored at an instant wins, as with rows) and counts them.
fn flush(
    conn: &Connection,
    tid: i64,
    pending: Pending,
    report: &mut ImportReport,
    newest_top: &mut HashMap<i64, (i64, Vec<TopIp>)>,
) -> Result<(), HistoryError> {
    let mut rows = pending.rows;
    // Lines out of order or twice in the file: the first line of an instant wins.
    rows.sort_by_key(|(r, _)| r.at_ms);
    let before = rows.len();
    rows.dedup_by_key(|(r, _)| r.at_ms);
    report.duplicates += (before - rows.len()) as u64;
    let (rows, tops): (Vec<chunk::Row>, Vec<Option<Vec<TopIp>>>) = rows.into_iter().unzip();
    let facts: Vec<(i64, bool)> = rows.iter().map(|r| (r.at_ms, r.ok)).collect();
    let kept = store::store_block(conn, tid, pending.block, rows)?;
    for (((at, ok), top), fresh) in facts.into_iter().zip(tops).zip(kept) {
        if !fresh {
            report.duplicates += 1;
            continue;
        }
        report.inserted += 1;
        if !ok {
            report.failures += 1;
        } else if let Some(top) = top {
            if newest_top.get(&tid).is_none_or(|(t, _)| *t <= at) {
                newest_top.insert(tid, (at, top));
            }
        }
    }
    Ok(())
}

/// A line made ready for the database off the writer's thread: its target's key, its chunk
/// row and, for a sample, its top IPs.
struct Ready {
    key: String,
    row: chunk::Row,
    top: Option<Vec<TopIp>>,
}

fn ready(text: &str, line: u64) -> Result<Ready, HistoryError> {
    Ok(match parse_line(text, line)? {
        Parsed::Sample(target, mut sample) => {
            let top = std::mem::take(&mut sample.top_ips);
            Ready {
                key: target.key(),
                row: store::row_of_sample(&sample),
                top: Some(top),
            }
        }
        Parsed::Failure(target, at, kind, message) => Ready {
            key: target.key(),
            row: store::row_of_failure(store::ms(at), &kind, &message),
            top: None,
        },
    })
}

/// Lines handed to a parser at once: large enough that the hand-over costs nothing next to
/// parsing them, small enough that a few batches in flight stay a few MiB.
const BATCH_LINES: usize = 512;

/// A batch of lines as read: their bytes, and each line's number and end in them.
struct Batch {
    /// Its place in the file's order.
    index: usize,
    bytes: Vec<u8>,
    lines: Vec<(u64, usize)>,
}

impl Batch {
    /// Each line of the batch ready for the database, `None` for a blank one. Checking UTF-8
    /// here rather than while reading keeps that work off the reading thread too.
    fn parse(&self) -> Vec<Result<Option<Ready>, HistoryError>> {
        let mut start = 0;
        self.lines
            .iter()
            .map(|&(line, end)| {
                let bytes = &self.bytes[start..end];
                start = end;
                let text = std::str::from_utf8(bytes).map_err(|e| HistoryError::Import {
                    line,
                    reason: format!("cannot be read (not UTF-8: {e})"),
                })?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                ready(text, line).map(Some)
            })
            .collect()
    }
}

/// Imports the lines in one transaction. Each target's lines are gathered per 2-hour block and
/// written as that block's chunk when a line of another block comes (files list a target's
/// polls in order, so each chunk is written once), instead of a row per line.
///
/// Parsing the JSON is most of the work, so batches of lines are parsed on worker threads
/// (one per core) while this thread reads the file and writes the database: the SQLite
/// connection stays on the calling thread, and batches are stored in file order, so the first
/// line of an instant still wins and the first bad line is the one reported.
pub fn import(
    conn: &Connection,
    uid: &str,
    mut reader: impl BufRead,
) -> Result<ImportReport, HistoryError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let mut writer = Writer {
        conn: &tx,
        uid,
        report: ImportReport::default(),
        ids: HashMap::new(),
        newest_top: HashMap::new(),
        pending: HashMap::new(),
    };
    let (work_tx, work_rx) = std::sync::mpsc::channel::<Batch>();
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| -> Result<(), HistoryError> {
        // Owned here, so that returning (an error included) closes the channel and the workers
        // stop before the scope joins them.
        let work_tx = work_tx;
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
                // The lock is held only while taking a batch.
                let Ok(Ok(batch)) = work_rx.lock().map(|rx| rx.recv()) else {
                    return;
                };
                if done_tx.send((batch.index, batch.parse())).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        // Batches out (`sent`), batches stored (`next`), and those parsed early, by index.
        let (mut sent, mut next) = (0usize, 0usize);
        let mut early = std::collections::BTreeMap::new();
        let mut line = 0u64;
        let mut eof = false;
        // A line that cannot be read ends the reading; the lines before it are stored first,
        // so that an earlier bad line is still the one reported.
        let mut unreadable = None;
        loop {
            while !eof && sent - next < 2 * workers {
                let mut batch = Batch {
                    index: sent,
                    bytes: Vec::with_capacity(BATCH_LINES * 2048),
                    lines: Vec::with_capacity(BATCH_LINES),
                };
                while batch.lines.len() < BATCH_LINES {
                    line += 1;
                    match reader.read_until(b'\n', &mut batch.bytes) {
                        Ok(0) => eof = true,
                        Ok(_) => {
                            batch.lines.push((line, batch.bytes.len()));
                            continue;
                        }
                        Err(e) => {
                            eof = true;
                            unreadable = Some(HistoryError::Import {
                                line,
                                reason: format!("cannot be read ({e})"),
                            });
                        }
                    }
                    break;
                }
                if !batch.lines.is_empty() {
                    // The workers outlive this loop (the scope joins them), so a send fails
                    // only once every one of them has stopped.
                    work_tx.send(batch).map_err(|_| parser_gone())?;
                    sent += 1;
                }
            }
            if next == sent {
                return unreadable.map_or(Ok(()), Err);
            }
            let (index, parsed) = done_rx.recv().map_err(|_| parser_gone())?;
            early.insert(index, parsed);
            while let Some(parsed) = early.remove(&next) {
                for ready in parsed.into_iter().filter_map(Result::transpose) {
                    writer.report.lines += 1;
                    writer.store(ready?)?;
                }
                next += 1;
            }
        }
    })?;
    let Writer {
        mut report,
        ids,
        mut newest_top,
        pending,
        ..
    } = writer;
    for (tid, p) in pending {
        flush(&tx, tid, p, &mut report, &mut newest_top)?;
    }
    for (tid, (at, top)) in &newest_top {
        store::upsert_top_ips(&tx, *tid, *at, top)?;
    }
    tx.commit().map_err(sql)?;
    report.targets = ids.len() as u64;
    Ok(report)
}

fn parser_gone() -> HistoryError {
    HistoryError::Write("a parser thread of the import stopped unexpectedly".into())
}

/// The import's side that owns the database: target ids, and the open block of each target.
struct Writer<'a> {
    conn: &'a Connection,
    uid: &'a str,
    report: ImportReport,
    ids: HashMap<String, i64>,
    newest_top: HashMap<i64, (i64, Vec<TopIp>)>,
    pending: HashMap<i64, Pending>,
}

impl Writer<'_> {
    fn store(&mut self, ready: Ready) -> Result<(), HistoryError> {
        let tid = match self.ids.get(&ready.key) {
            Some(id) => *id,
            None => {
                let id = store::target_id(self.conn, self.uid, &ready.key, true)?
                    .ok_or_else(|| HistoryError::Sqlite("target row not created".into()))?;
                self.ids.insert(ready.key, id);
                id
            }
        };
        let block = chunk::block_of(ready.row.at_ms);
        let row = (ready.row, ready.top);
        match self.pending.get_mut(&tid) {
            Some(p) if p.block == block => p.rows.push(row),
            _ => {
                let fresh = Pending {
                    block,
                    rows: vec![row],
                };
                if let Some(done) = self.pending.insert(tid, fresh) {
                    flush(self.conn, tid, done, &mut self.report, &mut self.newest_top)?;
                }
            }
        }
        Ok(())
    }
}

/// The eStats answer a stored sample came from (as far as the sample kept it).
pub fn response_of(sample: &Sample) -> EstatsResponse {
    let codes = |c: &Vec<_>| (!c.is_empty()).then(|| c.clone());
    let list = |which: TopIpList| {
        let ips: Vec<_> = sample
            .top_ips
            .iter()
            .filter(|t| t.list == which)
            .map(|t| t.info.clone())
            .collect();
        (!ips.is_empty()).then_some(ips)
    };
    EstatsResponse {
        execution_status: Some("SUCCESS".into()),
        result: Some(EstatsData {
            edge_hits: sample.edge.hits,
            edge_errors: sample.edge.errors,
            edge_failure_percentage: sample.edge.failure_percentage,
            origin_hits: sample.origin.hits,
            origin_errors: sample.origin.errors,
            origin_failure_percentage: sample.origin.failure_percentage,
            top_edge_ips_with_error: list(TopIpList::Error),
            top_edge_ips_with_error_from_origin: list(TopIpList::ErrorFromOrigin),
            top_edge_ips_with_success: list(TopIpList::Success),
            top_edge_ips_with_success_from_origin: list(TopIpList::SuccessFromOrigin),
            edge_status_code_distribution: codes(&sample.edge.codes),
            origin_status_code_distribution: codes(&sample.origin.codes),
        }),
        ..Default::default()
    }
}

pub fn export(conn: &Connection, uid: &str, mut writer: impl Write) -> Result<u64, HistoryError> {
    let write_err = |e: std::io::Error| HistoryError::Write(e.to_string());
    // One snapshot for the whole export, even while pollers keep writing.
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let mut written = 0;
    for (tid, key) in store::targets(&tx, uid)? {
        let target = Target::from_key(&key).map_err(|e| HistoryError::Corrupt {
            path: tx.path().map(Into::into).unwrap_or_default(),
            detail: format!("stored target key {key:?} is invalid ({e})"),
        })?;
        let spec = TargetSpec::from(&target);
        for row in store::rows(&tx, tid, i64::MIN, i64::MAX)? {
            let at = row.point.at;
            let mut line = Line {
                sampled_at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
                target: spec.clone(),
                response: None,
                error: None,
            };
            match (row.point.sample, row.error) {
                (Some(mut sample), _) => {
                    sample.top_ips = store::top_ips_at(&tx, tid, store::ms(at))?;
                    line.response = Some(response_of(&sample));
                }
                (None, error) => {
                    let (kind, message) = error.unwrap_or_default();
                    line.error = Some(LineError { kind, message });
                }
            }
            serde_json::to_writer(&mut writer, &line)
                .map_err(|e| HistoryError::Write(e.to_string()))?;
            writer.write_all(b"\n").map_err(write_err)?;
            written += 1;
        }
    }
    writer.flush().map_err(write_err)?;
    Ok(written)
}
