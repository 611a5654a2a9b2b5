//! A target's polls over a range as the `timeseries` handler reads them: instants, success,
//! side totals and, per code, its status and the one value the query draws (hits or
//! percentage), for the sides it asks; all packed in a few vectors instead of a
//! [`super::Point`] (two code lists, one allocation each) per poll.
//!
//! A week of one target is 5,040 polls; building a `Sample` for each was most of a week-long
//! query's time (reading the rows, allocating 10,000 code lists, then walking them once). Here
//! each code blob is decoded once, straight into flat columns, and the distinct statuses of each
//! side are collected on the way, so the series builder walks plain arrays.

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
            let sides = [self.wanted.edge, self.wanted.origin];
            let hits_wanted = self.wanted.hits;
            let out = &mut self.out;
            let marked = &mut self.marked;
            codec::walk(blob, |key, hits, units| {
                let side = (key & 1) as usize;
                if !sides[side] {
                    return;
                }
                let status = (key >> 1) as u16;
                match marked[side].get_mut(usize::from(status)) {
                    Some(true) => {}
                    Some(mark) => {
                        *mark = true;
                        out.seen[side].insert(status);
                    }
                    None => {
                        out.seen[side].insert(status);
                    }
                }
                out.keys.push(key as u32);
                out.values.push(if hits_wanted {
                    hits as f64
                } else {
                    codec::pct_of_units(units)
                });
            })?;
        }
        let totals = if self.wanted.totals { totals } else { [0.0; 6] };
        self.out.polls.push(Poll {
            at_ms,
            ok: true,
            totals,
            start: start as u32,
            end: self.out.keys.len() as u32,
        });
        Some(())
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

/// The polls of target `tid` with `from_ms <= at <= to_ms`, ascending, with what `wanted` asks.
pub fn read(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    wanted: Wanted,
) -> Result<Polls, HistoryError> {
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
    let mut builder = PollsBuilder::new(wanted);
    while let Some(r) = rows.next().map_err(sql)? {
        let at_ms: i64 = r.get(0).map_err(sql)?;
        let ok: bool = r.get(1).map_err(sql)?;
        if !ok {
            builder.push_failed(at_ms);
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
        let blob = match r.get_ref(2).map_err(sql)? {
            rusqlite::types::ValueRef::Blob(b) => Some(b),
            _ => None,
        };
        if builder.push_ok(at_ms, blob, totals).is_none() {
            return Err(corrupt(
                conn,
                format!(
                    "the status codes stored for {} cannot be read",
                    super::store::from_ms(at_ms)
                ),
            ));
        }
    }
    Ok(builder.finish())
}
