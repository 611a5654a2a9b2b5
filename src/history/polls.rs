//! A target's polls over a range as the `timeseries` handler reads them: instants, success,
//! side totals and, per code, its status and the one value the query draws (hits or
//! percentage), for the sides it asks; all packed in a few vectors instead of a
//! [`super::Point`] (two code lists, one allocation each) per poll.
//!
//! A week of one target is 5,040 polls; building a `Sample` for each was most of a week-long
//! query's time (reading the rows, allocating 10,000 code lists, then walking them once). Here
//! the columns of a chunk (see [`super::chunk`]: only the sides asked, only the value drawn) and
//! the code blobs of the rows still open are decoded straight into flat columns, and the
//! distinct statuses of each side are collected on the way, so the series builder walks plain
//! arrays.

use std::collections::BTreeSet;

use rusqlite::{params, Connection};

use super::store::{codec, sql};
use super::HistoryError;

/// Where each total of a poll sits in [`Poll::totals`].
pub const EDGE_HITS: usize = 0;
pub const EDGE_ERRORS: usize = 1;
pub const EDGE_FAILURE_PCT: usize = 2;
pub const ORIGIN_HITS: usize = 3;
pub const ORIGIN_ERRORS: usize = 4;
pub const ORIGIN_FAILURE_PCT: usize = 5;

/// One stored poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub at_ms: i64,
    /// False for a failed poll (a gap).
    pub ok: bool,
    /// Hits, errors and failure percentage of the edge then the origin, 0 where the answer had
    /// none (what a successful answer that omits a total means); 0 in failed polls. Only read
    /// when asked for (see [`read`]), 0 otherwise.
    pub totals: [f64; 6],
    /// The poll's codes in [`Polls`]' code columns.
    start: u32,
    end: u32,
}

/// What a read keeps of each poll: the sides asked, the value drawn, the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub edge: bool,
    pub origin: bool,
    /// Hits per code; else the percentage.
    pub hits: bool,
    /// Side totals (only `groupBy: total` draws them).
    pub totals: bool,
}

/// Polls, ascending by instant, one per instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polls {
    pub polls: Vec<Poll>,
    /// Per code of the sides read: `status << 1 | side` (1 = origin), and its value.
    keys: Vec<u32>,
    values: Vec<f64>,
    /// The statuses seen on the edge and the origin.
    seen: [BTreeSet<u16>; 2],
}

impl Polls {
    pub fn len(&self) -> usize {
        self.polls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.polls.is_empty()
    }

    /// Statuses seen in the polls on the edge (`origin` false) or the origin, when read.
    pub fn statuses(&self, origin: bool) -> &BTreeSet<u16> {
        &self.seen[usize::from(origin)]
    }

    /// Calls `f(origin, status, value)` for each code of `poll` on the sides read, edge codes
    /// first, each side in stored order (ascending status).
    #[inline]
    pub fn for_each_code(&self, poll: &Poll, mut f: impl FnMut(bool, u16, f64)) {
        let range = poll.start as usize..poll.end as usize;
        for (key, value) in self.keys[range.clone()].iter().zip(&self.values[range]) {
            f(key & 1 == 1, (key >> 1) as u16, *value);
        }
    }
}

fn corrupt(conn: &Connection, detail: String) -> HistoryError {
    HistoryError::Corrupt {
        path: conn.path().map(Into::into).unwrap_or_default(),
        detail,
    }
}

/// Builds [`Polls`] from stored polls, one at a time in ascending order, whatever the store:
/// the SQLite rows of [`read`], the PostgreSQL rows of the shared store, or decoded chunks.
pub struct PollsBuilder {
    out: Polls,
    wanted: Wanted,
    // Statuses below 1000 (every HTTP status) are marked here, not looked up in the sets.
    marked: Box<[[bool; 1000]; 2]>,
}

impl PollsBuilder {
    pub fn new(wanted: Wanted) -> Self {
        PollsBuilder {
            out: Polls::default(),
            wanted,
            marked: Box::new([[false; 1000]; 2]),
        }
    }

    pub fn wanted(&self) -> Wanted {
        self.wanted
    }

    /// A failed poll (a gap).
    pub fn push_failed(&mut self, at_ms: i64) {
        let at = self.out.keys.len() as u32;
        self.out.polls.push(Poll {
            at_ms,
            ok: false,
            totals: [0.0; 6],
            start: at,
            end: at,
        });
    }

    /// A successful poll: its code blob (see [`codec`]) and, when [`Wanted::totals`], its
    /// totals (see [`EDGE_HITS`] and the others). `None` when the blob cannot be read.
    pub fn push_ok(&mut self, at_ms: i64, codes: Option<&[u8]>, totals: [f64; 6]) -> Option<()> {
        let start = self.out.keys.len();
        if let Some(blob) = codes {
            codec::walk(blob, |key, hits, units| {
                self.push_code(key as u32, hits, units)
            })?;
        }
        self.finish_ok(at_ms, start, totals);
        Some(())
    }

    /// A successful poll whose codes come decoded, as (`status << 1 | side`, hits, percentage
    /// units) in stored order (a chunk's columns, see [`super::chunk`]).
    pub fn push_ok_codes(&mut self, at_ms: i64, codes: &[(u32, u64, u64)], totals: [f64; 6]) {
        let start = self.out.keys.len();
        for &(key, hits, units) in codes {
            self.push_code(key, hits, units);
        }
        self.finish_ok(at_ms, start, totals);
    }

    #[inline]
    fn push_code(&mut self, key: u32, hits: u64, units: u64) {
        let side = (key & 1) as usize;
        if !(if side == 0 {
            self.wanted.edge
        } else {
            self.wanted.origin
        }) {
            return;
        }
        let status = (key >> 1) as u16;
        match self.marked[side].get_mut(usize::from(status)) {
            Some(true) => {}
            Some(mark) => {
                *mark = true;
                self.out.seen[side].insert(status);
            }
            None => {
                self.out.seen[side].insert(status);
            }
        }
        self.out.keys.push(key);
        self.out.values.push(if self.wanted.hits {
            hits as f64
        } else {
            codec::pct_of_units(units)
        });
    }

    fn finish_ok(&mut self, at_ms: i64, start: usize, totals: [f64; 6]) {
        let totals = if self.wanted.totals { totals } else { [0.0; 6] };
        self.out.polls.push(Poll {
            at_ms,
            ok: true,
            totals,
            start: start as u32,
            end: self.out.keys.len() as u32,
        });
    }

    /// A poll read as a [`Point`](super::Point) (the shared store's rows): its codes are encoded
    /// as the SQLite store keeps them, then read like a stored blob.
    pub fn push_point(&mut self, point: &super::Point) {
        let at_ms = super::store::ms(point.at);
        let Some(sample) = &point.sample else {
            self.push_failed(at_ms);
            return;
        };
        let count = |v: Option<u64>| v.map_or(0.0, |v| v as f64);
        let totals = [
            count(sample.edge.hits),
            count(sample.edge.errors),
            sample.edge.failure_percentage.unwrap_or(0.0),
            count(sample.origin.hits),
            count(sample.origin.errors),
            sample.origin.failure_percentage.unwrap_or(0.0),
        ];
        let blob = codec::encode(&sample.edge.codes, &sample.origin.codes);
        // A blob just encoded always reads back.
        let _ = self.push_ok(at_ms, Some(&blob), totals);
    }

    pub fn finish(self) -> Polls {
        self.out
    }
}

/// A poll stored as a row (not yet in a chunk): instant, success, totals, code blob.
struct RowPoll {
    at_ms: i64,
    ok: bool,
    totals: [f64; 6],
    codes: Option<Vec<u8>>,
}

/// The totals of a poll as [`Poll::totals`] holds them, from a chunk's (see
/// [`super::chunk::Row`]): a missing count or percentage is 0.
fn totals_of(counts: [Option<i64>; 4], pcts: [Option<f64>; 2]) -> [f64; 6] {
    use super::chunk;
    let count = |v: Option<i64>| v.unwrap_or(0).max(0) as f64;
    [
        count(counts[chunk::EDGE_HITS]),
        count(counts[chunk::EDGE_ERRORS]),
        pcts[0].unwrap_or(0.0),
        count(counts[chunk::ORIGIN_HITS]),
        count(counts[chunk::ORIGIN_ERRORS]),
        pcts[1].unwrap_or(0.0),
    ]
}

/// The polls of target `tid` with `from_ms <= at <= to_ms`, ascending, with what `wanted` asks:
/// the chunks of the blocks the range touches (only the columns of the sides asked are
/// decoded), and the polls of open blocks still stored as rows, in instant order.
pub fn read(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    wanted: Wanted,
) -> Result<Polls, HistoryError> {
    use super::chunk::{self, Chunk, Select};
    let rows = row_polls(conn, tid, from_ms, to_ms, wanted)?;
    let mut rows = rows.into_iter().peekable();
    let mut builder = PollsBuilder::new(wanted);
    let push_row = |builder: &mut PollsBuilder, r: RowPoll| -> Result<(), HistoryError> {
        if !r.ok {
            builder.push_failed(r.at_ms);
            return Ok(());
        }
        builder
            .push_ok(r.at_ms, r.codes.as_deref(), r.totals)
            .ok_or_else(|| {
                corrupt(
                    conn,
                    format!(
                        "the status codes stored for {} cannot be read",
                        super::store::from_ms(r.at_ms)
                    ),
                )
            })
    };
    let select = Select {
        edge: wanted.edge,
        origin: wanted.origin,
        totals: wanted.totals,
        failures: false,
        values: if wanted.hits {
            chunk::Values::Hits
        } else {
            chunk::Values::Units
        },
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT block_ms, data FROM chunks WHERE target_id = ?1 AND block_ms BETWEEN ?2 AND ?3
             ORDER BY block_ms",
        )
        .map_err(sql)?;
    let mut chunks = stmt
        .query(params![tid, chunk::block_of(from_ms), to_ms])
        .map_err(sql)?;
    while let Some(r) = chunks.next().map_err(sql)? {
        let block: i64 = r.get(0).map_err(sql)?;
        let bytes = match r.get_ref(1).map_err(sql)? {
            rusqlite::types::ValueRef::Blob(b) => b,
            _ => &[][..],
        };
        let damaged = || {
            corrupt(
                conn,
                format!(
                    "the chunk of the polls from {} cannot be read",
                    super::store::from_ms(block)
                ),
            )
        };
        let chunk = Chunk::decode(bytes, select).ok_or_else(damaged)?;
        let mut failed = None;
        chunk.walk(from_ms, to_ms, |p| {
            if failed.is_some() {
                return;
            }
            while let Some(r) = rows.next_if(|r| r.at_ms < p.at_ms) {
                if let Err(e) = push_row(&mut builder, r) {
                    failed = Some(e);
                    return;
                }
            }
            if !p.ok {
                builder.push_failed(p.at_ms);
                return;
            }
            let totals = if wanted.totals {
                totals_of(p.counts, p.failure_pct)
            } else {
                [0.0; 6]
            };
            match p.raw {
                Some(blob) => {
                    if builder.push_ok(p.at_ms, Some(blob), totals).is_none() {
                        failed = Some(damaged());
                    }
                }
                None => builder.push_ok_codes(p.at_ms, p.codes, totals),
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    for r in rows {
        push_row(&mut builder, r)?;
    }
    Ok(builder.finish())
}

/// The polls of target `tid` in the range still stored as rows.
fn row_polls(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    wanted: Wanted,
) -> Result<Vec<RowPoll>, HistoryError> {
    let sql_text = if wanted.totals {
        "SELECT sampled_at_ms, ok, codes, edge_hits, edge_errors, edge_failure_pct, origin_hits,
         origin_errors, origin_failure_pct FROM samples
         WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3 ORDER BY sampled_at_ms"
    } else {
        "SELECT sampled_at_ms, ok, codes FROM samples
         WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3 ORDER BY sampled_at_ms"
    };
    let mut stmt = conn.prepare_cached(sql_text).map_err(sql)?;
    let mut rows = stmt.query(params![tid, from_ms, to_ms]).map_err(sql)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let at_ms: i64 = r.get(0).map_err(sql)?;
        let ok: bool = r.get(1).map_err(sql)?;
        if !ok {
            out.push(RowPoll {
                at_ms,
                ok,
                totals: [0.0; 6],
                codes: None,
            });
            continue;
        }
        let mut totals = [0.0; 6];
        if wanted.totals {
            let count = |i: usize| -> Result<f64, HistoryError> {
                let v: Option<i64> = r.get(i).map_err(sql)?;
                Ok(v.unwrap_or(0).max(0) as f64)
            };
            let pct = |i: usize| -> Result<f64, HistoryError> {
                let v: Option<f64> = r.get(i).map_err(sql)?;
                Ok(v.unwrap_or(0.0))
            };
            totals = [count(3)?, count(4)?, pct(5)?, count(6)?, count(7)?, pct(8)?];
        }
        let codes = match r.get_ref(2).map_err(sql)? {
            rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
            _ => None,
        };
        out.push(RowPoll {
            at_ms,
            ok,
            totals,
            codes,
        });
    }
    Ok(out)
}
