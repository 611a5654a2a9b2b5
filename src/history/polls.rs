//! A target's polls over a range as the `timeseries` handler reads them: instants, success,
//! side totals and the stored code blobs, packed in two vectors instead of a [`super::Point`]
//! (two code lists, one allocation each) per poll.
//!
//! A week of one target is 5,040 polls; building a `Sample` for each was most of a week-long
//! query's time (reading the rows, allocating 10,000 code lists, then walking them once). Here
//! the code blobs are copied back to back into one buffer, checked once, and walked in place.

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
    /// The poll's code blob in [`Polls::codes`].
    start: u32,
    end: u32,
}

/// Polls, ascending by instant, one per instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polls {
    pub polls: Vec<Poll>,
    codes: Vec<u8>,
}

impl Polls {
    pub fn len(&self) -> usize {
        self.polls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.polls.is_empty()
    }

    /// Calls `f(side_is_origin, status, hits, percentage)` for each code of `poll`, edge codes
    /// first, each side in stored order (ascending status).
    #[inline]
    pub fn for_each_code(&self, poll: &Poll, mut f: impl FnMut(bool, u16, u64, f64)) {
        let blob = &self.codes[poll.start as usize..poll.end as usize];
        // Checked when read: every varint is complete and the status fits.
        let mut pos = 0;
        while pos < blob.len() {
            let key = varint(blob, &mut pos);
            let hits = varint(blob, &mut pos);
            let pct = varint(blob, &mut pos);
            f(
                key & 1 == 1,
                (key >> 1) as u16,
                hits,
                codec::pct_of_units(pct),
            );
        }
    }
}

#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&byte) = buf.get(*pos) {
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn corrupt(conn: &Connection, detail: String) -> HistoryError {
    HistoryError::Corrupt {
        path: conn.path().map(Into::into).unwrap_or_default(),
        detail,
    }
}

/// The polls of target `tid` with `from_ms <= at <= to_ms`, ascending; with `totals`, their
/// side totals too (only `groupBy: total` reads them).
pub fn read(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    totals: bool,
) -> Result<Polls, HistoryError> {
    let sql_text = if totals {
        "SELECT sampled_at_ms, ok, codes, edge_hits, edge_errors, edge_failure_pct, origin_hits,
         origin_errors, origin_failure_pct FROM samples
         WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3 ORDER BY sampled_at_ms"
    } else {
        "SELECT sampled_at_ms, ok, codes FROM samples
         WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3 ORDER BY sampled_at_ms"
    };
    let mut stmt = conn.prepare_cached(sql_text).map_err(sql)?;
    let mut rows = stmt.query(params![tid, from_ms, to_ms]).map_err(sql)?;
    let mut out = Polls::default();
    while let Some(r) = rows.next().map_err(sql)? {
        let at_ms: i64 = r.get(0).map_err(sql)?;
        let ok: bool = r.get(1).map_err(sql)?;
        let start = out.codes.len();
        let mut sums = [0.0; 6];
        if ok {
            if let rusqlite::types::ValueRef::Blob(b) = r.get_ref(2).map_err(sql)? {
                let body = codec::checked_body(b).ok_or_else(|| {
                    corrupt(
                        conn,
                        format!(
                            "the status codes stored for {} cannot be read",
                            super::store::from_ms(at_ms)
                        ),
                    )
                })?;
                out.codes.extend_from_slice(body);
            }
            if totals {
                let count = |i: usize| -> Result<f64, HistoryError> {
                    let v: Option<i64> = r.get(i).map_err(sql)?;
                    Ok(v.unwrap_or(0).max(0) as f64)
                };
                let pct = |i: usize| -> Result<f64, HistoryError> {
                    let v: Option<f64> = r.get(i).map_err(sql)?;
                    Ok(v.unwrap_or(0.0))
                };
                sums = [count(3)?, count(4)?, pct(5)?, count(6)?, count(7)?, pct(8)?];
            }
        }
        out.polls.push(Poll {
            at_ms,
            ok,
            totals: sums,
            start: start as u32,
            end: out.codes.len() as u32,
        });
    }
    Ok(out)
}
