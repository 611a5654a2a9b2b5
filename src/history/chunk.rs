//! Columnar chunks: every poll of one target in one time block ([`BLOCK_MS`], aligned to the
//! epoch) as one compact BLOB, so that a week-long range reads 85 blobs instead of 5,040 rows and
//! a query of one side decodes that side's columns only. Pure (bytes in, rows out): the SQLite
//! history stores them (`chunks` table, schema version 2) and the PostgreSQL store may too.
//!
//! Nothing a row of schema version 1 holds is lost: instants, success, each failure's kind and
//! message, the six side totals (null kept apart from 0, failure percentages bit for bit) and the
//! codes of both sides in their stored order. Layout (varints are LEB128, signed ones zigzag):
//!
//! ```text
//! format byte (1)
//! n                                   polls, ascending by instant, one per instant
//! first instant (signed), n - 1 deltas (ms, > 0)
//! n flag bytes                        ok, raw codes, and which of the 6 totals are present
//! totals section: byte length, then per total (edge hits, origin hits, edge errors,
//!                 origin errors: signed varints; edge and origin failure %: f64 bits, LE)
//!                 the values of the polls that have it
//! failures section: byte length, then kind and message (length, UTF-8) per failed poll
//! raw section: byte length, then a codec blob (length, bytes) per poll whose codes are not
//!              in column order (never written by this plugin, kept for exactness)
//! column count, then per (side, status) column, edge first, each side by status:
//!     key (status << 1 | side), byte length, presence bitmap (n bits), byte length of the
//!     hits, then per present poll its hits, then per present poll its percentage units, each
//!     a signed delta from the column's previous value (a query decodes only the one it draws)
//! ```
//!
//! A column per status code: a week has about 20 codes per side, present in most polls, so the
//! deltas of one code's hits and percentages from poll to poll take 1 to 2 bytes instead of the
//! 3 to 4 of a per-poll blob, and the columns of the side a query does not ask for are skipped by
//! length, never parsed.

use super::store::codec;
use codec::put;

/// The width of a chunk's time block: 2 hours (60 polls at the usual 2-minute interval). Small
/// enough that the polls of the open block, kept as rows until it closes, cost little to read;
/// large enough that a week is 85 blobs.
pub const BLOCK_MS: i64 = 2 * 3600 * 1000;

const FORMAT: u8 = 1;

/// The start of the block holding instant `at_ms`.
pub fn block_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BLOCK_MS).saturating_mul(BLOCK_MS)
}

/// One stored poll, as a row of schema version 1 holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub at_ms: i64,
    pub ok: bool,
    /// Edge hits, origin hits, edge errors, origin errors.
    pub counts: [Option<i64>; 4],
    /// Edge and origin failure percentage.
    pub failure_pct: [Option<f64>; 2],
    /// The status codes of both sides as a [`codec`] blob (successful polls; empty otherwise).
    pub codes: Vec<u8>,
    /// The error of a failed poll.
    pub error_kind: String,
    pub error_message: String,
}

pub const EDGE_HITS: usize = 0;
pub const ORIGIN_HITS: usize = 1;
pub const EDGE_ERRORS: usize = 2;
pub const ORIGIN_ERRORS: usize = 3;

const OK: u8 = 1;
const RAW: u8 = 2;
/// Bits 2..=5: the counts present; bits 6, 7: the failure percentages present.
const COUNT_BIT: u8 = 4;
const PCT_BIT: u8 = 64;

fn put_signed(buf: &mut Vec<u8>, v: i64) {
    put(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A cursor over a chunk's bytes; every read is `None` past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn get(&mut self) -> Option<u64> {
        codec::get(self.buf, &mut self.pos)
    }

    #[inline]
    fn get_signed(&mut self) -> Option<i64> {
        let v = self.get()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.get()?).ok()?;
        self.take(len)
    }
}

/// The codes of `blob` as (key, hits, units) when they are in column order (per side by
/// ascending status, no status twice, the edge's first) and the blob is exactly what
/// [`codec::encode`] writes for them; `None` otherwise (the poll is then kept raw).
fn in_column_order(blob: &[u8]) -> Option<Vec<(u32, u64, u64)>> {
    let mut codes = Vec::new();
    codec::walk(blob, |key, hits, units| {
        codes.push((key as u32, hits, units))
    })?;
    let order = |key: u32| (key & 1, key >> 1);
    if !codes.windows(2).all(|w| order(w[0].0) < order(w[1].0)) {
        return None;
    }
    // Re-encoding gives back `blob` exactly when every varint was in its shortest form: a
    // longer form of a value is the only way for the walked bytes to outnumber these.
    let shortest: usize = codes
        .iter()
        .map(|&(key, hits, units)| {
            varint_len(u64::from(key)) + varint_len(hits) + varint_len(units)
        })
        .sum();
    (shortest + 1 == blob.len()).then_some(codes)
}

/// The bytes of `v` as [`put`] writes it.
fn varint_len(v: u64) -> usize {
    ((64 - v.leading_zeros()).max(1) as usize).div_ceil(7)
}

/// Dense indexes for the codes of a block, keyed `status << 1 | side`, in order of first
/// appearance: a table for the statuses below 1024 (every HTTP status), a map beyond. A chunk
/// has thousands of codes and a few dozen distinct ones, so this is what a map per code would
/// cost without the tree walk.
pub(super) struct KeyIndex {
    direct: Vec<u32>,
    other: std::collections::HashMap<u32, u32>,
    keys: Vec<u32>,
}

impl KeyIndex {
    const DIRECT: usize = 2048;
    const NONE: u32 = u32::MAX;

    pub(super) fn new() -> KeyIndex {
        KeyIndex {
            direct: vec![Self::NONE; Self::DIRECT],
            other: Default::default(),
            keys: Vec::new(),
        }
    }

    /// The index of `key`, a new one (the number of keys so far) if it is new.
    #[inline]
    pub(super) fn index(&mut self, key: u32) -> usize {
        let next = self.keys.len() as u32;
        let slot = match self.direct.get_mut(key as usize) {
            Some(slot) => slot,
            None => self.other.entry(key).or_insert(Self::NONE),
        };
        if *slot == Self::NONE {
            *slot = next;
            self.keys.push(key);
        }
        *slot as usize
    }

    /// The indexes in column order: the edge's first, each side by ascending status.
    pub(super) fn in_column_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_unstable_by_key(|&i| (self.keys[i] & 1, self.keys[i] >> 1));
        order
    }

    pub(super) fn key(&self, index: usize) -> u32 {
        self.keys[index]
    }
}

struct ColumnOut {
    bitmap: Vec<u8>,
    hit_deltas: Vec<u8>,
    unit_deltas: Vec<u8>,
    hits: u64,
    units: u64,
}

/// Encodes `rows` (ascending by instant, one per instant: see [`merge`]).
pub fn encode(rows: &[Row]) -> Vec<u8> {
    debug_assert!(rows.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    let n = rows.len();
    let mut out = Vec::with_capacity(64 + n * 16);
    out.push(FORMAT);
    put(&mut out, n as u64);
    let mut prev = 0;
    for (i, r) in rows.iter().enumerate() {
        if i == 0 {
            put_signed(&mut out, r.at_ms);
        } else {
            put(&mut out, r.at_ms.wrapping_sub(prev) as u64);
        }
        prev = r.at_ms;
    }
    let codes: Vec<Option<Vec<(u32, u64, u64)>>> = rows
        .iter()
        .map(|r| {
            if !r.ok {
                Some(Vec::new())
            } else if r.codes.is_empty() {
                // A successful row without a blob reads as no codes (schema 1 did the same).
                Some(Vec::new())
            } else {
                in_column_order(&r.codes)
            }
        })
        .collect();
    for (r, c) in rows.iter().zip(&codes) {
        let mut flags = 0;
        if r.ok {
            flags |= OK;
        }
        if c.is_none() {
            flags |= RAW;
        }
        for (k, v) in r.counts.iter().enumerate() {
            if v.is_some() {
                flags |= COUNT_BIT << k;
            }
        }
        for (k, v) in r.failure_pct.iter().enumerate() {
            if v.is_some() {
                flags |= PCT_BIT << k;
            }
        }
        out.push(flags);
    }
    let mut section = Vec::new();
    for k in 0..4 {
        for r in rows {
            if let Some(v) = r.counts[k] {
                put_signed(&mut section, v);
            }
        }
    }
    for k in 0..2 {
        for r in rows {
            if let Some(v) = r.failure_pct[k] {
                section.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
    put_bytes(&mut out, &section);
    section.clear();
    for r in rows.iter().filter(|r| !r.ok) {
        put_bytes(&mut section, r.error_kind.as_bytes());
        put_bytes(&mut section, r.error_message.as_bytes());
    }
    put_bytes(&mut out, &section);
    section.clear();
    for (r, _) in rows.iter().zip(&codes).filter(|(_, c)| c.is_none()) {
        put_bytes(&mut section, &r.codes);
    }
    put_bytes(&mut out, &section);

    let mut index = KeyIndex::new();
    let mut columns: Vec<ColumnOut> = Vec::new();
    for (i, c) in codes.iter().enumerate() {
        for &(key, hits, units) in c.iter().flatten() {
            let at = index.index(key);
            if at == columns.len() {
                columns.push(ColumnOut {
                    bitmap: vec![0; n.div_ceil(8)],
                    hit_deltas: Vec::with_capacity(2 * n),
                    unit_deltas: Vec::with_capacity(2 * n),
                    hits: 0,
                    units: 0,
                });
            }
            let col = &mut columns[at];
            col.bitmap[i / 8] |= 1 << (i % 8);
            put_signed(&mut col.hit_deltas, hits.wrapping_sub(col.hits) as i64);
            put_signed(&mut col.unit_deltas, units.wrapping_sub(col.units) as i64);
            col.hits = hits;
            col.units = units;
        }
    }
    put(&mut out, columns.len() as u64);
    for at in index.in_column_order() {
        let col = &columns[at];
        put(&mut out, u64::from(index.key(at)));
        let mut len = Vec::new();
        put(&mut len, col.hit_deltas.len() as u64);
        put(
            &mut out,
            (col.bitmap.len() + len.len() + col.hit_deltas.len() + col.unit_deltas.len()) as u64,
        );
        out.extend_from_slice(&col.bitmap);
        out.extend_from_slice(&len);
        out.extend_from_slice(&col.hit_deltas);
        out.extend_from_slice(&col.unit_deltas);
    }
    out
}

/// Which values of the codes a read decodes (the other reads as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    Both,
    Hits,
    Units,
}

/// What of a chunk a read decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select {
    pub edge: bool,
    pub origin: bool,
    pub totals: bool,
    pub failures: bool,
    pub values: Values,
}

impl Select {
    pub const ALL: Select = Select {
        edge: true,
        origin: true,
        totals: true,
        failures: true,
        values: Values::Both,
    };
}

struct Column {
    key: u32,
    bitmap: Vec<u8>,
    /// (hits, units) of each poll that has the code, in poll order.
    values: Vec<(u64, u64)>,
}

/// A decoded chunk (the parts [`Select`] asked for), walked poll by poll with [`Chunk::walk`].
pub struct Chunk<'a> {
    pub at_ms: Vec<i64>,
    flags: Vec<u8>,
    counts: Vec<[Option<i64>; 4]>,
    pcts: Vec<[Option<f64>; 2]>,
    failures: Vec<(&'a str, &'a str)>,
    raw: Vec<&'a [u8]>,
    columns: Vec<Column>,
}

/// One poll of a chunk as [`Chunk::walk`] gives it.
pub struct PollRef<'c, 'a> {
    pub at_ms: i64,
    pub ok: bool,
    /// Present when [`Select::totals`].
    pub counts: [Option<i64>; 4],
    pub failure_pct: [Option<f64>; 2],
    /// The failure's (kind, message), when [`Select::failures`].
    pub error: Option<(&'a str, &'a str)>,
    /// The codes of the sides selected, as (key, hits, units) in stored order, unless the poll
    /// was kept raw.
    pub codes: &'c [(u32, u64, u64)],
    /// The poll's codec blob when it was kept raw (all sides).
    pub raw: Option<&'a [u8]>,
}

impl<'a> Chunk<'a> {
    /// Decodes what `select` asks of `bytes`; `None` when they are not a chunk.
    pub fn decode(bytes: &'a [u8], select: Select) -> Option<Chunk<'a>> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if *bytes.first()? != FORMAT {
            return None;
        }
        r.pos = 1;
        let n = usize::try_from(r.get()?).ok()?;
        // Each poll takes at least two bytes (a delta and its flags).
        if n > bytes.len() {
            return None;
        }
        let mut at_ms = Vec::with_capacity(n);
        let mut at = 0i64;
        for i in 0..n {
            at = if i == 0 {
                r.get_signed()?
            } else {
                let d = i64::try_from(r.get()?).ok().filter(|d| *d > 0)?;
                at.checked_add(d)?
            };
            at_ms.push(at);
        }
        let flags = r.take(n)?.to_vec();
        let totals = r.bytes()?;
        let mut counts = Vec::new();
        let mut pcts = Vec::new();
        if select.totals {
            counts = vec![[None; 4]; n];
            pcts = vec![[None; 2]; n];
            let mut t = Reader {
                buf: totals,
                pos: 0,
            };
            // Column by column, as written: every poll's first total, then every poll's second.
            for k in 0..4 {
                for (poll, f) in counts.iter_mut().zip(&flags) {
                    if f & (COUNT_BIT << k) != 0 {
                        poll[k] = Some(t.get_signed()?);
                    }
                }
            }
            for k in 0..2 {
                for (poll, f) in pcts.iter_mut().zip(&flags) {
                    if f & (PCT_BIT << k) != 0 {
                        let b = t.take(8)?;
                        poll[k] = Some(f64::from_bits(u64::from_le_bytes(b.try_into().ok()?)));
                    }
                }
            }
        }
        let failure_bytes = r.bytes()?;
        let mut failures = Vec::new();
        if select.failures {
            let mut f = Reader {
                buf: failure_bytes,
                pos: 0,
            };
            for _ in flags.iter().filter(|f| *f & OK == 0) {
                let kind = std::str::from_utf8(f.bytes()?).ok()?;
                let message = std::str::from_utf8(f.bytes()?).ok()?;
                failures.push((kind, message));
            }
        }
        let raw_bytes = r.bytes()?;
        let mut raw = Vec::new();
        let mut rr = Reader {
            buf: raw_bytes,
            pos: 0,
        };
        for _ in flags.iter().filter(|f| *f & RAW != 0) {
            raw.push(rr.bytes()?);
        }
        let ncols = usize::try_from(r.get()?).ok()?;
        let mut columns = Vec::new();
        let bitmap_len = n.div_ceil(8);
        for _ in 0..ncols {
            let key = u32::try_from(r.get()?).ok()?;
            let body = r.bytes()?;
            let wanted = if key & 1 == 0 {
                select.edge
            } else {
                select.origin
            };
            if !wanted {
                continue;
            }
            let bitmap = body.get(..bitmap_len)?.to_vec();
            let present: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
            let mut c = Reader {
                buf: body,
                pos: bitmap_len,
            };
            let hits_len = usize::try_from(c.get()?).ok()?;
            let hit_bytes = c.take(hits_len)?;
            let unit_bytes = &body[c.pos..];
            let mut values = vec![(0u64, 0u64); present];
            if select.values != Values::Units {
                let mut h = Reader {
                    buf: hit_bytes,
                    pos: 0,
                };
                let mut hits = 0u64;
                for v in values.iter_mut() {
                    hits = hits.wrapping_add(h.get_signed()? as u64);
                    v.0 = hits;
                }
            }
            if select.values != Values::Hits {
                let mut u = Reader {
                    buf: unit_bytes,
                    pos: 0,
                };
                let mut units = 0u64;
                for v in values.iter_mut() {
                    units = units.wrapping_add(u.get_signed()? as u64);
                    v.1 = units;
                }
            }
            columns.push(Column {
                key,
                bitmap,
                values,
            });
        }
        Some(Chunk {
            at_ms,
            flags,
            counts,
            pcts,
            failures,
            raw,
            columns,
        })
    }

    pub fn len(&self) -> usize {
        self.at_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at_ms.is_empty()
    }

    /// The statuses of the columns decoded, per side (edge, origin); raw polls not included.
    pub fn column_statuses(&self) -> impl Iterator<Item = (bool, u16)> + '_ {
        self.columns
            .iter()
            .map(|c| (c.key & 1 == 1, (c.key >> 1) as u16))
    }

    /// The blobs of the polls kept raw.
    pub fn raw_blobs(&self) -> &[&'a [u8]] {
        &self.raw
    }

    /// Calls `f` for each poll with `from_ms <= at <= to_ms`, ascending.
    pub fn walk(&self, from_ms: i64, to_ms: i64, mut f: impl FnMut(PollRef<'_, 'a>)) {
        let mut cursors = vec![0usize; self.columns.len()];
        let mut codes: Vec<(u32, u64, u64)> = Vec::with_capacity(self.columns.len());
        let (mut failed, mut raw) = (0, 0);
        for (i, &at) in self.at_ms.iter().enumerate() {
            let flags = self.flags[i];
            codes.clear();
            for (c, cursor) in self.columns.iter().zip(cursors.iter_mut()) {
                if c.bitmap[i / 8] & (1 << (i % 8)) != 0 {
                    let (hits, units) = c.values[*cursor];
                    *cursor += 1;
                    codes.push((c.key, hits, units));
                }
            }
            let error = if flags & OK == 0 {
                failed += 1;
                self.failures.get(failed - 1).copied()
            } else {
                None
            };
            let raw_blob = if flags & RAW != 0 {
                raw += 1;
                self.raw.get(raw - 1).copied()
            } else {
                None
            };
            if at < from_ms || at > to_ms {
                continue;
            }
            f(PollRef {
                at_ms: at,
                ok: flags & OK != 0,
                counts: self.counts.get(i).copied().unwrap_or([None; 4]),
                failure_pct: self.pcts.get(i).copied().unwrap_or([None; 2]),
                error,
                codes: &codes,
                raw: raw_blob,
            });
        }
    }
}

/// The rows of a chunk, all of them; `None` when the bytes are not a chunk.
pub fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    let chunk = Chunk::decode(bytes, Select::ALL)?;
    let mut rows = Vec::with_capacity(chunk.len());
    chunk.walk(i64::MIN, i64::MAX, |p| {
        let codes = if !p.ok {
            Vec::new()
        } else if let Some(raw) = p.raw {
            raw.to_vec()
        } else {
            let mut blob = Vec::with_capacity(1 + 7 * p.codes.len());
            blob.push(1);
            for &(key, hits, units) in p.codes {
                put(&mut blob, u64::from(key));
                put(&mut blob, hits);
                put(&mut blob, units);
            }
            blob
        };
        let (kind, message) = p.error.unwrap_or_default();
        rows.push(Row {
            at_ms: p.at_ms,
            ok: p.ok,
            counts: p.counts,
            failure_pct: p.failure_pct,
            codes,
            error_kind: kind.to_string(),
            error_message: message.to_string(),
        });
    });
    // A chunk whose columns or sections are shorter than its polls say is damaged.
    (rows.len() == chunk.len()).then_some(rows)
}

/// `old` and `new` (each ascending, one per instant) as one list; at an instant in both, the
/// row of `old` stays (storing an instant again is a no-op). Also says, per row of `new`,
/// whether it was kept.
pub fn merge(old: Vec<Row>, new: Vec<Row>) -> (Vec<Row>, Vec<bool>) {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut kept = Vec::with_capacity(new.len());
    let mut old = old.into_iter().peekable();
    for r in new {
        while let Some(o) = old.next_if(|o| o.at_ms < r.at_ms) {
            out.push(o);
        }
        let fresh = old.peek().is_none_or(|o| o.at_ms != r.at_ms);
        kept.push(fresh);
        if fresh {
            out.push(r);
        }
    }
    out.extend(old);
    (out, kept)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::estats::model::StatusCodeCount;
    use proptest::prelude::*;

    pub(in crate::history) fn code(status: u16, hits: u64, pct: f64) -> StatusCodeCount {
        StatusCodeCount {
            http_status: status,
            hits,
            percentage: pct,
        }
    }

    fn ok_row(at_ms: i64, edge: &[StatusCodeCount], origin: &[StatusCodeCount]) -> Row {
        Row {
            at_ms,
            ok: true,
            counts: [Some(100), Some(7), Some(3), None],
            failure_pct: [Some(3.0), None],
            codes: codec::encode(edge, origin),
            ..Row::default()
        }
    }

    fn failed_row(at_ms: i64) -> Row {
        Row {
            at_ms,
            error_kind: "server_error".into(),
            error_message: "upstream answered 502 Bad Gateway".into(),
            ..Row::default()
        }
    }

    #[test]
    fn rows_round_trip_with_failures_raw_codes_and_missing_totals() {
        let rows = vec![
            ok_row(
                -5,
                &[code(200, 9, 90.0), code(503, 1, 10.0)],
                &[code(404, 7, 100.0)],
            ),
            failed_row(120_000),
            ok_row(240_000, &[code(200, 10, 100.0)], &[]),
            // Codes out of order, and a status twice: kept raw, byte for byte.
            ok_row(360_000, &[code(503, 1, 10.0), code(200, 9, 90.0)], &[]),
            ok_row(480_000, &[code(200, 1, 50.0), code(200, 1, 50.0)], &[]),
            // A blob that is not a codec blob at all.
            Row {
                codes: vec![1, 0x85],
                ..ok_row(600_000, &[], &[])
            },
            ok_row(720_000, &[], &[code(1234, u64::MAX, 0.01)]),
            Row {
                counts: [None; 4],
                failure_pct: [Some(f64::MIN_POSITIVE), Some(-0.0)],
                ..ok_row(840_000, &[], &[])
            },
        ];
        let bytes = encode(&rows);
        assert_eq!(decode(&bytes).unwrap(), rows);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_side_is_decoded_alone_and_ranges_cut_the_walk() {
        let rows: Vec<Row> = (0..60)
            .map(|i| {
                if i % 7 == 3 {
                    failed_row(i * 120_000)
                } else {
                    ok_row(
                        i * 120_000,
                        &[code(200, 1000 + i as u64, 97.5), code(503, i as u64, 2.5)],
                        &[code(200, 10, 100.0)],
                    )
                }
            })
            .collect();
        let bytes = encode(&rows);
        let edge_only = Select {
            edge: true,
            origin: false,
            totals: false,
            failures: false,
            values: Values::Hits,
        };
        let chunk = Chunk::decode(&bytes, edge_only).unwrap();
        assert_eq!(
            chunk.column_statuses().collect::<Vec<_>>(),
            [(false, 200), (false, 503)]
        );
        let mut seen = Vec::new();
        chunk.walk(600_000, 1_200_000, |p| {
            assert!(p.codes.iter().all(|(key, ..)| key & 1 == 0));
            assert_eq!(p.error, None, "failures not selected");
            seen.push((p.at_ms, p.ok, p.codes.len()));
        });
        assert_eq!(
            seen,
            [
                (600_000, true, 2),
                (720_000, true, 2),
                (840_000, true, 2),
                (960_000, true, 2),
                (1_080_000, true, 2),
                (1_200_000, false, 0)
            ]
        );
        // Compact: the codes take well under the 7 bytes a code of a per-poll blob takes.
        let bare: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                counts: [None; 4],
                failure_pct: [None; 2],
                ..r.clone()
            })
            .collect();
        let no_codes: Vec<Row> = bare
            .iter()
            .map(|r| Row {
                codes: if r.ok { vec![1] } else { Vec::new() },
                ..r.clone()
            })
            .collect();
        let codes = rows.iter().filter(|r| r.ok).count() * 3;
        let size = encode(&bare).len() - encode(&no_codes).len();
        assert!(size < codes * 3, "{size} bytes for {codes} codes");
    }

    #[test]
    fn damaged_chunks_are_refused() {
        let rows = vec![ok_row(0, &[code(200, 9, 90.0)], &[]), failed_row(120_000)];
        let bytes = encode(&rows);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[9]), None, "unknown format");
        for cut in 1..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn merge_keeps_the_first_stored_row_of_an_instant() {
        let old = vec![failed_row(0), failed_row(240_000)];
        let new = vec![
            ok_row(0, &[], &[]),
            ok_row(120_000, &[], &[]),
            ok_row(360_000, &[], &[]),
        ];
        let (merged, kept) = merge(old, new);
        assert_eq!(kept, [false, true, true]);
        assert_eq!(
            merged.iter().map(|r| (r.at_ms, r.ok)).collect::<Vec<_>>(),
            [
                (0, false),
                (120_000, true),
                (240_000, false),
                (360_000, true)
            ]
        );
        assert_eq!(block_of(-1), -BLOCK_MS);
        assert_eq!(block_of(BLOCK_MS + 5), BLOCK_MS);
    }

    fn arb_codes() -> impl Strategy<Value = Vec<StatusCodeCount>> {
        prop::collection::vec(
            (
                prop_oneof![100u16..600, any::<u16>()],
                prop_oneof![0u64..10_000, any::<u64>()],
                0u32..1_000_000,
            ),
            0..6,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(s, h, u)| code(s, h, f64::from(u) / 10_000.0))
                .collect()
        })
    }

    fn arb_row() -> impl Strategy<Value = Row> {
        (
            any::<bool>(),
            any::<bool>(),
            arb_codes(),
            arb_codes(),
            prop::array::uniform4(prop::option::of(any::<i64>())),
            prop::array::uniform2(prop::option::of(-1e6f64..1e6)),
            ".{0,12}",
            ".{0,40}",
        )
            .prop_map(
                |(ok, sorted, mut edge, mut origin, counts, failure_pct, kind, message)| {
                    if sorted {
                        for side in [&mut edge, &mut origin] {
                            side.sort_by_key(|c| c.http_status);
                            side.dedup_by_key(|c| c.http_status);
                        }
                    }
                    if ok {
                        Row {
                            at_ms: 0,
                            ok,
                            counts,
                            failure_pct,
                            codes: codec::encode(&edge, &origin),
                            ..Row::default()
                        }
                    } else {
                        Row {
                            at_ms: 0,
                            ok,
                            counts,
                            failure_pct,
                            error_kind: kind,
                            error_message: message,
                            ..Row::default()
                        }
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn any_rows_round_trip(
            rows in prop::collection::vec((1i64..10_000_000, arb_row()), 0..40),
            start in any::<i32>(),
        ) {
            let mut at = i64::from(start) * 1000;
            let rows: Vec<Row> = rows
                .into_iter()
                .map(|(step, mut r)| {
                    at += step;
                    r.at_ms = at;
                    r
                })
                .collect();
            let bytes = encode(&rows);
            prop_assert_eq!(decode(&bytes).unwrap(), rows);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut b = bytes;
            if let Some(first) = b.first_mut() {
                *first = FORMAT;
            }
            let _ = decode(&b);
        }
    }
}
