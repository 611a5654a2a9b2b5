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

use super::rollup::{Rollup, ROLLUP_MS};
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
    /// The poll's codes in [`Polls`]' code columns.
    start: u32,
    end: u32,
}

/// What a read keeps of each poll: the sides asked, the value drawn, the totals, and how the
/// series will be bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub edge: bool,
    pub origin: bool,
    /// Hits per code; else the percentage (in units of 1/10 000 %).
    pub hits: bool,
    /// Side totals (only `groupBy: total` draws them).
    pub totals: bool,
    /// The buckets the series will average into if the range holds more polls than
    /// `max_points`; `None` when they are never downsampled.
    pub bucketing: Option<Bucketing>,
}

/// How a `timeseries` query downsamples: into buckets of `width_ms` aligned to the epoch, when
/// its range holds more than `max_points` polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucketing {
    pub width_ms: i64,
    pub max_points: u32,
}

impl Wanted {
    /// Whether rollups can answer this read: code sums (not totals) into buckets made of whole
    /// rollup buckets.
    fn summable(&self) -> Option<Bucketing> {
        self.bucketing
            .filter(|b| !self.totals && b.width_ms > 0 && b.width_ms % ROLLUP_MS == 0)
    }
}

/// Polls, ascending by instant, one per instant.
///
/// When read for a downsampled series ([`Wanted::bucketing`]), the codes of the polls of whole
/// closed blocks come summed per rollup bucket ([`Polls::for_each_sum`]) instead of per poll:
/// those polls are listed (instant, success) without codes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polls {
    pub polls: Vec<Poll>,
    /// Per code of the sides read: `status << 1 | side` (1 = origin), and its value (hits, or
    /// percentage units).
    keys: Vec<u32>,
    values: Vec<u64>,
    /// Per poll, when [`Wanted::totals`] (else empty): hits, errors and failure percentage of
    /// the edge then the origin, 0 where the answer had none (what a successful answer that
    /// omits a total means); 0 in failed polls. Apart from [`Poll`], which stays small: a week
    /// is 5,040 of them, and only `groupBy: total` reads totals.
    totals: Vec<[f64; 6]>,
    /// Per rollup bucket: its start and the end of its sums in `sum_keys`/`sum_values`.
    sums: Vec<(i64, u32)>,
    sum_keys: Vec<u32>,
    sum_values: Vec<u128>,
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

    /// The totals of poll `i` when read with [`Wanted::totals`]; 0 otherwise.
    #[inline]
    pub fn totals(&self, i: usize) -> [f64; 6] {
        self.totals.get(i).copied().unwrap_or_default()
    }

    /// Statuses seen in the polls on the edge (`origin` false) or the origin, when read.
    pub fn statuses(&self, origin: bool) -> &BTreeSet<u16> {
        &self.seen[usize::from(origin)]
    }

    /// Calls `f(origin, status, value)` for each code of `poll` on the sides read, edge codes
    /// first, each side in stored order (ascending status). The value is the hits, or the
    /// percentage in units of 1/10 000 %, as [`Wanted::hits`] asked.
    #[inline]
    pub fn for_each_code(&self, poll: &Poll, mut f: impl FnMut(bool, u16, u64)) {
        let range = poll.start as usize..poll.end as usize;
        for (key, value) in self.keys[range.clone()].iter().zip(&self.values[range]) {
            f(key & 1 == 1, (key >> 1) as u16, *value);
        }
    }

    /// Whether some polls' codes come summed per rollup bucket.
    pub fn has_sums(&self) -> bool {
        !self.sums.is_empty()
    }

    /// Calls `f(bucket start, origin, status, sum of values)` for each code of each rollup
    /// bucket, buckets ascending.
    pub fn for_each_sum(&self, mut f: impl FnMut(i64, bool, u16, u128)) {
        let mut start = 0;
        for &(at_ms, end) in &self.sums {
            let range = start..end as usize;
            for (key, sum) in self.sum_keys[range.clone()]
                .iter()
                .zip(&self.sum_values[range])
            {
                f(at_ms, key & 1 == 1, (key >> 1) as u16, *sum);
            }
            start = end as usize;
        }
    }

    /// The number of distinct instants (what a series counts against `maxDataPoints`).
    fn distinct(&self) -> usize {
        self.polls.len()
            - self
                .polls
                .windows(2)
                .filter(|w| w[0].at_ms == w[1].at_ms)
                .count()
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
        self.push_totals([0.0; 6]);
        self.out.polls.push(Poll {
            at_ms,
            ok: false,
            start: at,
            end: at,
        });
    }

    #[inline]
    fn push_totals(&mut self, totals: [f64; 6]) {
        if self.wanted.totals {
            self.out.totals.push(totals);
        }
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

    /// [`Self::push_ok_codes`] for codes of the sides read whose statuses are marked seen
    /// already ([`Self::mark`]).
    fn push_ok_marked(&mut self, at_ms: i64, codes: &[(u32, u64, u64)], totals: [f64; 6]) {
        let start = self.out.keys.len();
        let hits = self.wanted.hits;
        self.out.keys.extend(codes.iter().map(|c| c.0));
        self.out
            .values
            .extend(codes.iter().map(|c| if hits { c.1 } else { c.2 }));
        self.finish_ok(at_ms, start, totals);
    }

    /// A poll whose codes are in a rollup bucket pushed with [`Self::push_sums`].
    pub fn push_summed(&mut self, at_ms: i64, ok: bool) {
        let at = self.out.keys.len() as u32;
        self.push_totals([0.0; 6]);
        self.out.polls.push(Poll {
            at_ms,
            ok,
            start: at,
            end: at,
        });
    }

    /// The sums of a rollup bucket starting at `at_ms`, as (`status << 1 | side`, hits, units).
    pub fn push_sums(&mut self, at_ms: i64, codes: &[(u32, u128, u128)]) {
        for &(key, hits, units) in codes {
            if self.mark(key) {
                self.out.sum_keys.push(key);
                self.out
                    .sum_values
                    .push(if self.wanted.hits { hits } else { units });
            }
        }
        self.out.sums.push((at_ms, self.out.sum_keys.len() as u32));
    }

    /// Whether `key`'s side is read; if so, its status is marked seen.
    #[inline]
    fn mark(&mut self, key: u32) -> bool {
        let side = (key & 1) as usize;
        if !(if side == 0 {
            self.wanted.edge
        } else {
            self.wanted.origin
        }) {
            return false;
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
        true
    }

    #[inline]
    fn push_code(&mut self, key: u32, hits: u64, units: u64) {
        if self.mark(key) {
            self.out.keys.push(key);
            self.out
                .values
                .push(if self.wanted.hits { hits } else { units });
        }
    }

    fn finish_ok(&mut self, at_ms: i64, start: usize, totals: [f64; 6]) {
        self.push_totals(totals);
        self.out.polls.push(Poll {
            at_ms,
            ok: true,
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
///
/// For a series that will be downsampled into whole rollup buckets ([`Wanted::bucketing`]),
/// the blocks that lie wholly in the range and hold no rows are read from their rollups
/// instead: instants and success per poll, code sums per bucket. If the range then holds no
/// more polls than the series' points, it will be drawn poll by poll, so it is read again from
/// the chunks (unless no poll of a rollup had codes, which reads the same either way).
pub fn read(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    wanted: Wanted,
) -> Result<Polls, HistoryError> {
    if let Some(bucketing) = wanted.summable() {
        let polls = read_blocks(conn, tid, from_ms, to_ms, wanted, true)?;
        if !polls.has_sums() || polls.distinct() > bucketing.max_points as usize {
            return Ok(polls);
        }
    }
    read_blocks(conn, tid, from_ms, to_ms, wanted, false)
}

type Rows = std::iter::Peekable<std::vec::IntoIter<RowPoll>>;

fn read_blocks(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
    wanted: Wanted,
    use_rollups: bool,
) -> Result<Polls, HistoryError> {
    use super::chunk::{self, Select, BLOCK_MS};
    let rows = row_polls(conn, tid, from_ms, to_ms, wanted)?;
    // Blocks that still hold rows (late polls, or the open block): their rollups lack them.
    let mut blocks_with_rows: Vec<i64> = Vec::new();
    if use_rollups {
        blocks_with_rows = rows.iter().map(|r| chunk::block_of(r.at_ms)).collect();
        blocks_with_rows.dedup();
    }
    let mut rows = rows.into_iter().peekable();
    let span = Span { from_ms, to_ms };
    let mut builder = PollsBuilder::new(wanted);
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
    let range = params![tid, chunk::block_of(from_ms), to_ms];
    if !use_rollups {
        let mut stmt = conn
            .prepare_cached(
                "SELECT block_ms, data FROM chunks
                 WHERE target_id = ?1 AND block_ms BETWEEN ?2 AND ?3 ORDER BY block_ms",
            )
            .map_err(sql)?;
        let mut chunks = stmt.query(range).map_err(sql)?;
        while let Some(r) = chunks.next().map_err(sql)? {
            let block: i64 = r.get(0).map_err(sql)?;
            let bytes = blob(r.get_ref(1).map_err(sql)?);
            push_chunk(conn, &mut builder, &mut rows, block, bytes, select, span)?;
        }
    } else {
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.block_ms, r.data FROM chunks c LEFT JOIN rollups r
                 ON r.target_id = c.target_id AND r.block_ms = c.block_ms
                 WHERE c.target_id = ?1 AND c.block_ms BETWEEN ?2 AND ?3 ORDER BY c.block_ms",
            )
            .map_err(sql)?;
        let mut blocks = stmt.query(range).map_err(sql)?;
        while let Some(r) = blocks.next().map_err(sql)? {
            let block: i64 = r.get(0).map_err(sql)?;
            let whole = block >= from_ms
                && block.saturating_add(BLOCK_MS - 1) <= to_ms
                && blocks_with_rows.binary_search(&block).is_err();
            // The chunk is the truth and the rollup derived from it: a block without a usable
            // rollup (partly in range, with late rows, or a rollup missing or damaged) is read
            // from its chunk, which reports damage of its own.
            let rollup = match r.get_ref(1).map_err(sql)? {
                rusqlite::types::ValueRef::Blob(b) if whole => {
                    Rollup::decode(b, block, wanted.edge, wanted.origin)
                }
                _ => None,
            };
            let Some(rollup) = rollup else {
                let mut one = conn
                    .prepare_cached(
                        "SELECT data FROM chunks WHERE target_id = ?1 AND block_ms = ?2",
                    )
                    .map_err(sql)?;
                let mut found = one.query(params![tid, block]).map_err(sql)?;
                if let Some(c) = found.next().map_err(sql)? {
                    let bytes = blob(c.get_ref(0).map_err(sql)?);
                    push_chunk(conn, &mut builder, &mut rows, block, bytes, select, span)?;
                }
                continue;
            };
            while let Some(r) = rows.next_if(|r| r.at_ms < block) {
                push_row(conn, &mut builder, r)?;
            }
            for (i, &at) in rollup.at_ms.iter().enumerate() {
                builder.push_summed(at, rollup.ok(i));
            }
            for (at, sums) in rollup.buckets() {
                builder.push_sums(at, sums);
            }
        }
    }
    for r in rows {
        push_row(conn, &mut builder, r)?;
    }
    Ok(builder.finish())
}

fn blob(v: rusqlite::types::ValueRef<'_>) -> &[u8] {
    match v {
        rusqlite::types::ValueRef::Blob(b) => b,
        _ => &[],
    }
}

/// The instants a read keeps.
#[derive(Clone, Copy)]
struct Span {
    from_ms: i64,
    to_ms: i64,
}

fn push_row(conn: &Connection, builder: &mut PollsBuilder, r: RowPoll) -> Result<(), HistoryError> {
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
}

/// Pushes the polls of a chunk in `span`, and the rows before each of them.
fn push_chunk(
    conn: &Connection,
    builder: &mut PollsBuilder,
    rows: &mut Rows,
    block: i64,
    bytes: &[u8],
    select: super::chunk::Select,
    span: Span,
) -> Result<(), HistoryError> {
    let damaged = || {
        corrupt(
            conn,
            format!(
                "the chunk of the polls from {} cannot be read",
                super::store::from_ms(block)
            ),
        )
    };
    let chunk = super::chunk::Chunk::decode(bytes, select).ok_or_else(damaged)?;
    let totals_wanted = builder.wanted().totals;
    // Every column of a chunk has a poll with its code: when all the polls are in range, its
    // statuses are seen once here rather than code by code.
    let whole = chunk.at_ms.first().is_some_and(|a| *a >= span.from_ms)
        && chunk.at_ms.last().is_some_and(|a| *a <= span.to_ms);
    if whole {
        for (origin, status) in chunk.column_statuses() {
            builder.mark(u32::from(status) << 1 | u32::from(origin));
        }
    }
    let mut failed = None;
    chunk.walk(span.from_ms, span.to_ms, |p| {
        if failed.is_some() {
            return;
        }
        while let Some(r) = rows.next_if(|r| r.at_ms < p.at_ms) {
            if let Err(e) = push_row(conn, builder, r) {
                failed = Some(e);
                return;
            }
        }
        if !p.ok {
            builder.push_failed(p.at_ms);
            return;
        }
        let totals = if totals_wanted {
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
            None if whole => builder.push_ok_marked(p.at_ms, p.codes, totals),
            None => builder.push_ok_codes(p.at_ms, p.codes, totals),
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
