//! The SQL of the history, on plain connections: the async [`super::History`] runs these on
//! blocking threads, the import/export CLI calls them directly.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::chunk::{self, Row as ChunkRow};
use super::{HistoryError, Point};
use crate::estats::model::StatusCodeCount;
use crate::sample::{Sample, SideStats, TopIp};

pub fn sql(e: rusqlite::Error) -> HistoryError {
    HistoryError::Sqlite(e.to_string())
}

pub fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

/// The status-code distributions of both sides as one BLOB: a version byte, then per code three
/// LEB128 varints: `status << 1 | side`, hits, and the percentage in 1/10 000 of a percent
/// (eStats reports at most two decimals, so this is exact for real answers). About 7 bytes a code.
pub mod codec {
    use super::StatusCodeCount;

    const VERSION: u8 = 1;

    /// Appends `v` as an LEB128 varint (also the chunks' integer encoding).
    pub(in crate::history) fn put(buf: &mut Vec<u8>, v: u64) {
        put_wide(buf, u128::from(v));
    }

    /// Reads the LEB128 varint at `*pos` and moves past it; `None` past the end.
    #[inline]
    pub(in crate::history) fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *buf.get(*pos)?;
            *pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// [`put`] for sums wider than 64 bits (the rollups' sums of hits).
    pub(in crate::history) fn put_wide(buf: &mut Vec<u8>, mut v: u128) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                buf.push(byte);
                return;
            }
            buf.push(byte | 0x80);
        }
    }

    /// Reads what [`put_wide`] wrote; `None` past the end or beyond 128 bits.
    #[inline]
    pub(in crate::history) fn get_wide(buf: &[u8], pos: &mut usize) -> Option<u128> {
        // Sums almost always fit in 63 bits (9 bytes), which [`get`] reads exactly with 64-bit
        // shifts; anything longer (or unreadable) starts over in 128 bits.
        let mut narrow = *pos;
        if let Some(v) = get(buf, &mut narrow).filter(|_| narrow - *pos <= 9) {
            *pos = narrow;
            return Some(u128::from(v));
        }
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = *buf.get(*pos)?;
            *pos += 1;
            v |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A percentage in the units stored (1/10 000 of a percent): what a sample's percentage
    /// becomes in the history, and what series sum (exactly, as integers).
    pub fn pct_units(p: f64) -> u64 {
        if p.is_finite() && p > 0.0 {
            (p * 10_000.0).round() as u64
        } else {
            0
        }
    }

    pub fn encode(edge: &[StatusCodeCount], origin: &[StatusCodeCount]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(1 + 7 * (edge.len() + origin.len()));
        buf.push(VERSION);
        for (side, codes) in [(0u64, edge), (1, origin)] {
            for c in codes {
                put(&mut buf, u64::from(c.http_status) << 1 | side);
                put(&mut buf, c.hits);
                put(&mut buf, pct_units(c.percentage));
            }
        }
        buf
    }

    pub type Sides = (Vec<StatusCodeCount>, Vec<StatusCodeCount>);

    /// A stored percentage back from its units (the one conversion [`decode`] uses too).
    #[inline]
    pub fn pct_of_units(units: u64) -> f64 {
        units as f64 / 10_000.0
    }

    /// Calls `f(status << 1 | side, hits, percentage units)` for each code of `buf`, edge codes
    /// first; `None` (after calling `f` for the codes before) where [`decode`] would fail.
    #[inline]
    pub fn walk(buf: &[u8], mut f: impl FnMut(u64, u64, u64)) -> Option<()> {
        let (&version, body) = buf.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut pos = 0;
        while pos < body.len() {
            let key = get(body, &mut pos)?;
            u16::try_from(key >> 1).ok()?;
            let hits = get(body, &mut pos)?;
            let units = get(body, &mut pos)?;
            f(key, hits, units);
        }
        Some(())
    }

    pub fn decode(buf: &[u8]) -> Option<Sides> {
        let (&version, _) = buf.split_first()?;
        if version != VERSION {
            return None;
        }
        // Counting first sizes both lists exactly: growing them code by code cost a week-long
        // range read tens of thousands of reallocations.
        let (mut edge_len, mut origin_len, mut pos) = (0, 0, 1);
        while pos < buf.len() {
            let key = get(buf, &mut pos)?;
            get(buf, &mut pos)?;
            get(buf, &mut pos)?;
            if key & 1 == 0 {
                edge_len += 1;
            } else {
                origin_len += 1;
            }
        }
        let mut pos = 1;
        let (mut edge, mut origin) = (Vec::with_capacity(edge_len), Vec::with_capacity(origin_len));
        while pos < buf.len() {
            let key = get(buf, &mut pos)?;
            let hits = get(buf, &mut pos)?;
            let pct = get(buf, &mut pos)?;
            let c = StatusCodeCount {
                http_status: u16::try_from(key >> 1).ok()?,
                hits,
                percentage: pct_of_units(pct),
            };
            if key & 1 == 0 {
                edge.push(c);
            } else {
                origin.push(c);
            }
        }
        Some((edge, origin))
    }
}

/// The id of (uid, target key); created when `create`, else `None` when never stored.
pub fn target_id(
    conn: &Connection,
    uid: &str,
    key: &str,
    create: bool,
) -> Result<Option<i64>, HistoryError> {
    let found = conn
        .prepare_cached("SELECT id FROM targets WHERE uid = ?1 AND target_key = ?2")
        .and_then(|mut s| s.query_row(params![uid, key], |r| r.get(0)).optional())
        .map_err(sql)?;
    if found.is_some() || !create {
        return Ok(found);
    }
    conn.prepare_cached("INSERT INTO targets (uid, target_key) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![uid, key]))
        .map_err(sql)?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Whether a chunk of target `tid` holds a poll at `at_ms`.
fn chunked(conn: &Connection, tid: i64, at_ms: i64) -> Result<bool, HistoryError> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM chunks WHERE target_id = ?1 AND block_ms = ?2")
        .and_then(|mut s| {
            s.query_row(params![tid, chunk::block_of(at_ms)], |r| r.get(0))
                .optional()
        })
        .map_err(sql)?;
    let Some(data) = data else { return Ok(false) };
    let nothing = chunk::Select {
        edge: false,
        origin: false,
        totals: false,
        failures: false,
        values: chunk::Values::Hits,
    };
    let c = chunk::Chunk::decode(&data, nothing)
        .ok_or_else(|| corrupt(conn, chunk_damaged(chunk::block_of(at_ms))))?;
    Ok(c.at_ms.binary_search(&at_ms).is_ok())
}

fn chunk_damaged(block_ms: i64) -> String {
    format!(
        "the chunk of the polls from {} cannot be read",
        from_ms(block_ms)
    )
}

/// Stores a successful sample; false when one at the same millisecond was already stored.
pub fn insert_sample(conn: &Connection, tid: i64, s: &Sample) -> Result<bool, HistoryError> {
    if chunked(conn, tid, ms(s.sampled_at))? {
        return Ok(false);
    }
    let codes = codec::encode(&s.edge.codes, &s.origin.codes);
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO samples (target_id, sampled_at_ms, ok, edge_hits, edge_errors,
             edge_failure_pct, origin_hits, origin_errors, origin_failure_pct, codes)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut st| {
            st.execute(params![
                tid,
                ms(s.sampled_at),
                to_i64(s.edge.hits),
                to_i64(s.edge.errors),
                s.edge.failure_percentage,
                to_i64(s.origin.hits),
                to_i64(s.origin.errors),
                s.origin.failure_percentage,
                codes
            ])
        })
        .map_err(sql)?;
    Ok(n == 1)
}

/// Stores a failed poll (drawn as a gap); false when that millisecond was already stored.
pub fn insert_failure(
    conn: &Connection,
    tid: i64,
    at_ms: i64,
    kind: &str,
    message: &str,
) -> Result<bool, HistoryError> {
    if chunked(conn, tid, at_ms)? {
        return Ok(false);
    }
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO samples (target_id, sampled_at_ms, ok, error_kind, error_message)
             VALUES (?1, ?2, 0, ?3, ?4)",
        )
        .and_then(|mut st| st.execute(params![tid, at_ms, kind, message]))
        .map_err(sql)?;
    Ok(n == 1)
}

/// Keeps the top IPs of the newest sample only.
pub fn upsert_top_ips(
    conn: &Connection,
    tid: i64,
    at_ms: i64,
    top: &[TopIp],
) -> Result<(), HistoryError> {
    let json = serde_json::to_string(top).map_err(|e| HistoryError::Sqlite(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO top_ips (target_id, sampled_at_ms, json) VALUES (?1, ?2, ?3)
         ON CONFLICT (target_id) DO UPDATE SET sampled_at_ms = excluded.sampled_at_ms,
         json = excluded.json WHERE excluded.sampled_at_ms >= top_ips.sampled_at_ms",
    )
    .and_then(|mut st| st.execute(params![tid, at_ms, json]))
    .map_err(sql)?;
    Ok(())
}

/// A sample as a stored row (see [`chunk::Row`]).
pub fn row_of_sample(s: &Sample) -> ChunkRow {
    ChunkRow {
        at_ms: ms(s.sampled_at),
        ok: true,
        counts: [
            to_i64(s.edge.hits),
            to_i64(s.origin.hits),
            to_i64(s.edge.errors),
            to_i64(s.origin.errors),
        ],
        failure_pct: [s.edge.failure_percentage, s.origin.failure_percentage],
        codes: codec::encode(&s.edge.codes, &s.origin.codes),
        ..ChunkRow::default()
    }
}

/// A failed poll as a stored row.
pub fn row_of_failure(at_ms: i64, kind: &str, message: &str) -> ChunkRow {
    ChunkRow {
        at_ms,
        error_kind: kind.to_string(),
        error_message: message.to_string(),
        ..ChunkRow::default()
    }
}

const COLUMNS: &str = "sampled_at_ms, ok, edge_hits, origin_hits, edge_errors, origin_errors,
    edge_failure_pct, origin_failure_pct, codes, error_kind, error_message";

fn read_row(r: &Row<'_>) -> rusqlite::Result<ChunkRow> {
    let ok: bool = r.get(1)?;
    Ok(ChunkRow {
        at_ms: r.get(0)?,
        ok,
        counts: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
        failure_pct: [r.get(6)?, r.get(7)?],
        codes: match r.get_ref(8)? {
            rusqlite::types::ValueRef::Blob(b) if ok => b.to_vec(),
            _ if ok => vec![1],
            _ => Vec::new(),
        },
        error_kind: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
        error_message: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
    })
}

/// A stored row: the point, and for failures (kind, message).
pub struct StoredRow {
    pub point: Point,
    pub error: Option<(String, String)>,
}

fn stored(row: ChunkRow) -> Result<StoredRow, String> {
    let at = from_ms(row.at_ms);
    if !row.ok {
        return Ok(StoredRow {
            point: Point { at, sample: None },
            error: Some((row.error_kind, row.error_message)),
        });
    }
    let Some((edge_codes, origin_codes)) = codec::decode(&row.codes) else {
        return Err(format!("the status codes stored for {at} cannot be read"));
    };
    let [edge_hits, origin_hits, edge_errors, origin_errors] = row.counts;
    let sample = Sample {
        sampled_at: at,
        edge: SideStats {
            hits: to_u64(edge_hits),
            errors: to_u64(edge_errors),
            failure_percentage: row.failure_pct[0],
            codes: edge_codes,
        },
        origin: SideStats {
            hits: to_u64(origin_hits),
            errors: to_u64(origin_errors),
            failure_percentage: row.failure_pct[1],
            codes: origin_codes,
        },
        top_ips: Vec::new(),
    };
    Ok(StoredRow {
        point: Point {
            at,
            sample: Some(sample),
        },
        error: None,
    })
}

fn corrupt(conn: &Connection, detail: String) -> HistoryError {
    HistoryError::Corrupt {
        path: conn.path().map(Into::into).unwrap_or_default(),
        detail,
    }
}

/// The polls of `tid` still stored as rows with `lo <= at <= hi`, ascending.
fn table_rows(
    conn: &Connection,
    tid: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<ChunkRow>, HistoryError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM samples WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3
             ORDER BY sampled_at_ms"
        ))
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![tid, lo, hi], read_row)
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// Calls `f(block_ms, data)` for each chunk of `tid` holding polls of `lo..=hi`, ascending.
fn each_chunk(
    conn: &Connection,
    tid: i64,
    lo: i64,
    hi: i64,
    mut f: impl FnMut(i64, &[u8]) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT block_ms, data FROM chunks WHERE target_id = ?1 AND block_ms BETWEEN ?2 AND ?3
             ORDER BY block_ms",
        )
        .map_err(sql)?;
    let mut rows = stmt
        .query(params![tid, chunk::block_of(lo), hi])
        .map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let block: i64 = r.get(0).map_err(sql)?;
        let data = match r.get_ref(1).map_err(sql)? {
            rusqlite::types::ValueRef::Blob(b) => b,
            _ => &[][..],
        };
        f(block, data)?;
    }
    Ok(())
}

/// The chunked polls of `tid` with `lo <= at <= hi`, ascending.
fn chunk_rows(
    conn: &Connection,
    tid: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<ChunkRow>, HistoryError> {
    let mut out = Vec::new();
    each_chunk(conn, tid, lo, hi, |block, data| {
        let rows = chunk::decode(data).ok_or_else(|| corrupt(conn, chunk_damaged(block)))?;
        out.extend(rows.into_iter().filter(|r| r.at_ms >= lo && r.at_ms <= hi));
        Ok(())
    })?;
    Ok(out)
}

/// A chunked poll as a stored row, its codes decoded straight from the chunk's columns.
fn stored_of(p: &chunk::PollRef<'_, '_>) -> Result<StoredRow, String> {
    let at = from_ms(p.at_ms);
    if !p.ok {
        let (kind, message) = p.error.unwrap_or_default();
        return Ok(StoredRow {
            point: Point { at, sample: None },
            error: Some((kind.to_string(), message.to_string())),
        });
    }
    let (edge_codes, origin_codes) = match p.raw {
        Some(raw) => codec::decode(raw)
            .ok_or_else(|| format!("the status codes stored for {at} cannot be read"))?,
        None => {
            let origin_len = p.codes.iter().filter(|c| c.0 & 1 == 1).count();
            let mut edge = Vec::with_capacity(p.codes.len() - origin_len);
            let mut origin = Vec::with_capacity(origin_len);
            for &(key, hits, units) in p.codes {
                let code = crate::estats::model::StatusCodeCount {
                    http_status: (key >> 1) as u16,
                    hits,
                    percentage: codec::pct_of_units(units),
                };
                if key & 1 == 0 {
                    edge.push(code);
                } else {
                    origin.push(code);
                }
            }
            (edge, origin)
        }
    };
    let [edge_hits, origin_hits, edge_errors, origin_errors] = p.counts;
    Ok(StoredRow {
        point: Point {
            at,
            sample: Some(Sample {
                sampled_at: at,
                edge: SideStats {
                    hits: to_u64(edge_hits),
                    errors: to_u64(edge_errors),
                    failure_percentage: p.failure_pct[0],
                    codes: edge_codes,
                },
                origin: SideStats {
                    hits: to_u64(origin_hits),
                    errors: to_u64(origin_errors),
                    failure_percentage: p.failure_pct[1],
                    codes: origin_codes,
                },
                top_ips: Vec::new(),
            }),
        },
        error: None,
    })
}

/// Rows of a target with `from_ms <= sampled_at_ms <= to_ms`, chunked or not, ascending.
pub fn rows(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredRow>, HistoryError> {
    let mut chunked: Vec<StoredRow> = Vec::new();
    each_chunk(conn, tid, from_ms, to_ms, |block, data| {
        let c = chunk::Chunk::decode(data, chunk::Select::ALL)
            .ok_or_else(|| corrupt(conn, chunk_damaged(block)))?;
        let mut bad = None;
        c.walk(from_ms, to_ms, |p| {
            if bad.is_none() {
                match stored_of(&p) {
                    Ok(row) => chunked.push(row),
                    Err(d) => bad = Some(d),
                }
            }
        });
        bad.map_or(Ok(()), |d| Err(corrupt(conn, d)))
    })?;
    let table = table_rows(conn, tid, from_ms, to_ms)?
        .into_iter()
        .map(|r| stored(r).map_err(|d| corrupt(conn, d)))
        .collect::<Result<Vec<_>, _>>()?;
    if chunked.is_empty() {
        return Ok(table);
    }
    if table.is_empty() {
        return Ok(chunked);
    }
    // The rows of an open block may sit between its chunked polls; an instant is never in both.
    let mut out = Vec::with_capacity(chunked.len() + table.len());
    let mut table = table.into_iter().peekable();
    for c in chunked {
        while let Some(t) = table.next_if(|t| t.point.at < c.point.at) {
            out.push(t);
        }
        out.push(c);
    }
    out.extend(table);
    Ok(out)
}

/// The newest successful sample, with the top IPs when they belong to it.
pub fn latest(conn: &Connection, tid: i64) -> Result<Option<Sample>, HistoryError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM samples WHERE target_id = ?1 AND ok = 1
             ORDER BY sampled_at_ms DESC LIMIT 1"
        ))
        .and_then(|mut s| s.query_row(params![tid], read_row).optional())
        .map_err(sql)?;
    // The newest chunk with a successful poll: chunks never overlap, so its newest success is
    // the newest of all chunks.
    let newest_chunk: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT block_ms, last_ok_ms FROM chunks WHERE target_id = ?1 AND last_ok_ms IS NOT NULL
             ORDER BY block_ms DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row(params![tid], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql)?;
    let row = match (row, newest_chunk) {
        (row, Some((block, at))) if row.as_ref().is_none_or(|r| r.at_ms < at) => {
            chunk_rows(conn, tid, block, at)?
                .into_iter()
                .rfind(|r| r.at_ms == at && r.ok)
        }
        (row, _) => row,
    };
    let Some(row) = row else { return Ok(None) };
    let row = stored(row).map_err(|d| corrupt(conn, d))?;
    let Some(mut sample) = row.point.sample else {
        return Ok(None);
    };
    sample.top_ips = top_ips_at(conn, tid, ms(sample.sampled_at))?;
    Ok(Some(sample))
}

/// The stored top IPs when they were taken at `at_ms`, else none.
pub fn top_ips_at(conn: &Connection, tid: i64, at_ms: i64) -> Result<Vec<TopIp>, HistoryError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT json FROM top_ips WHERE target_id = ?1 AND sampled_at_ms = ?2")
        .and_then(|mut s| s.query_row(params![tid, at_ms], |r| r.get(0)).optional())
        .map_err(sql)?;
    match json {
        None => Ok(Vec::new()),
        Some(j) => serde_json::from_str(&j)
            .map_err(|e| corrupt(conn, format!("stored top IPs cannot be read ({e})"))),
    }
}

pub fn status_codes(conn: &Connection, tid: i64) -> Result<Vec<u16>, HistoryError> {
    let mut stmt = conn
        .prepare_cached("SELECT codes FROM samples WHERE target_id = ?1 AND ok = 1")
        .map_err(sql)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = stmt.query(params![tid]).map_err(sql)?;
    let unreadable = || corrupt(conn, "stored status codes cannot be read".into());
    let mut add = |blob: &[u8]| -> Result<(), HistoryError> {
        let (edge, origin) = codec::decode(blob).ok_or_else(unreadable)?;
        seen.extend(edge.iter().chain(&origin).map(|c| c.http_status));
        Ok(())
    };
    while let Some(row) = rows.next().map_err(sql)? {
        let blob: Option<Vec<u8>> = row.get(0).map_err(sql)?;
        let Some(blob) = blob else { continue };
        add(&blob)?;
    }
    let mut columns = Vec::new();
    each_chunk(conn, tid, i64::MIN, i64::MAX, |block, data| {
        let codes_only = chunk::Select {
            edge: true,
            origin: true,
            totals: false,
            failures: false,
            values: chunk::Values::Hits,
        };
        let c = chunk::Chunk::decode(data, codes_only)
            .ok_or_else(|| corrupt(conn, chunk_damaged(block)))?;
        for raw in c.raw_blobs() {
            add(raw)?;
        }
        columns.extend(c.column_statuses().map(|(_, status)| status));
        Ok(())
    })?;
    seen.extend(columns);
    Ok(seen.into_iter().collect())
}

pub fn count(conn: &Connection, tid: i64) -> Result<u64, HistoryError> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM samples WHERE target_id = ?1)
              + (SELECT coalesce(sum(polls), 0) FROM chunks WHERE target_id = ?1)",
    )
    .and_then(|mut s| s.query_row(params![tid], |r| r.get::<_, i64>(0)))
    .map(|n| n.max(0) as u64)
    .map_err(sql)
}

/// Writes the chunk of (`tid`, `block`) holding `rows` (ascending, one per instant) and its
/// rollup, or deletes both when there are none.
fn write_chunk(
    conn: &Connection,
    tid: i64,
    block: i64,
    rows: &[ChunkRow],
) -> Result<(), HistoryError> {
    write_rollup(conn, tid, block, rows)?;
    if rows.is_empty() {
        conn.prepare_cached("DELETE FROM chunks WHERE target_id = ?1 AND block_ms = ?2")
            .and_then(|mut s| s.execute(params![tid, block]))
            .map_err(sql)?;
        return Ok(());
    }
    let last_ok = rows.iter().rev().find(|r| r.ok).map(|r| r.at_ms);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO chunks (target_id, block_ms, polls, last_ok_ms, data)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tid,
            block,
            rows.len() as i64,
            last_ok,
            chunk::encode(rows)
        ])
    })
    .map_err(sql)?;
    Ok(())
}

/// Writes the rollup of the chunk of (`tid`, `block`) holding `rows`. A chunk without one
/// (no rows, or codes that cannot be read) is read poll by poll.
fn write_rollup(
    conn: &Connection,
    tid: i64,
    block: i64,
    rows: &[ChunkRow],
) -> Result<(), HistoryError> {
    match super::rollup::encode(rows).filter(|_| !rows.is_empty()) {
        Some(data) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO rollups (target_id, block_ms, data) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![tid, block, data])),
        None => conn
            .prepare_cached("DELETE FROM rollups WHERE target_id = ?1 AND block_ms = ?2")
            .and_then(|mut s| s.execute(params![tid, block])),
    }
    .map_err(sql)?;
    Ok(())
}

/// Writes the rollup of every chunk (the migration to schema version 3).
pub fn roll_up_all(conn: &Connection) -> Result<(), HistoryError> {
    let chunks: Vec<(i64, i64)> = conn
        .prepare("SELECT target_id, block_ms FROM chunks ORDER BY target_id, block_ms")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    for (tid, block) in chunks {
        // A damaged chunk gets no rollup: its block is then read from the chunk, and only the
        // queries that touch it report the damage, as before the migration (failing here
        // would keep the whole file from opening).
        match chunk_of(conn, tid, block) {
            Ok(rows) => write_rollup(conn, tid, block, &rows)?,
            Err(HistoryError::Corrupt { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The rows of the chunk of (`tid`, `block`), if any.
fn chunk_of(conn: &Connection, tid: i64, block: i64) -> Result<Vec<ChunkRow>, HistoryError> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM chunks WHERE target_id = ?1 AND block_ms = ?2")
        .and_then(|mut s| s.query_row(params![tid, block], |r| r.get(0)).optional())
        .map_err(sql)?;
    match data {
        None => Ok(Vec::new()),
        Some(d) => chunk::decode(&d).ok_or_else(|| corrupt(conn, chunk_damaged(block))),
    }
}

/// Stores `new` (ascending, one per instant, all in block `block`) in the block's chunk,
/// together with what the chunk and the rows of that block held; what was stored first wins
/// at an instant. Returns, per row of `new`, whether it was stored.
pub fn store_block(
    conn: &Connection,
    tid: i64,
    block: i64,
    new: Vec<ChunkRow>,
) -> Result<Vec<bool>, HistoryError> {
    let end = block.saturating_add(chunk::BLOCK_MS - 1);
    let old = chunk_of(conn, tid, block)?;
    let rows = table_rows(conn, tid, block, end)?;
    let had_rows = !rows.is_empty();
    let old = if had_rows {
        chunk::merge(old, rows).0
    } else {
        old
    };
    let (merged, kept) = chunk::merge(old, new);
    write_chunk(conn, tid, block, &merged)?;
    if had_rows {
        conn.prepare_cached(
            "DELETE FROM samples WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3",
        )
        .and_then(|mut s| s.execute(params![tid, block, end]))
        .map_err(sql)?;
    }
    Ok(kept)
}

/// Moves the polls of `tid` stored as rows before `before_ms` into their blocks' chunks.
pub fn compact(conn: &Connection, tid: i64, before_ms: i64) -> Result<(), HistoryError> {
    let rows = table_rows(conn, tid, i64::MIN, before_ms.saturating_sub(1))?;
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let block = chunk::block_of(first.at_ms);
        let mut group = vec![first];
        while let Some(r) = rows.next_if(|r| chunk::block_of(r.at_ms) == block) {
            group.push(r);
        }
        let old = chunk_of(conn, tid, block)?;
        let merged = if old.is_empty() {
            group
        } else {
            chunk::merge(old, group).0
        };
        write_chunk(conn, tid, block, &merged)?;
    }
    conn.prepare_cached("DELETE FROM samples WHERE target_id = ?1 AND sampled_at_ms < ?2")
        .and_then(|mut s| s.execute(params![tid, before_ms]))
        .map_err(sql)?;
    Ok(())
}

/// After a poll at `at_ms` was stored: the blocks before its own are closed, so the polls of
/// `tid` still stored as rows there move into chunks.
pub fn settle(conn: &Connection, tid: i64, at_ms: i64) -> Result<(), HistoryError> {
    let open = chunk::block_of(at_ms);
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT min(sampled_at_ms) FROM samples WHERE target_id = ?1")
        .and_then(|mut s| s.query_row(params![tid], |r| r.get(0)))
        .map_err(sql)?;
    match oldest {
        Some(oldest) if oldest < open => compact(conn, tid, open),
        _ => Ok(()),
    }
}

/// Moves every poll stored as a row into chunks (the migration to schema version 2).
pub fn compact_all(conn: &Connection) -> Result<(), HistoryError> {
    let ids: Vec<i64> = conn
        .prepare("SELECT DISTINCT target_id FROM samples")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()
        })
        .map_err(sql)?;
    for tid in ids {
        compact(conn, tid, i64::MAX)?;
    }
    Ok(())
}

/// Deletes the rows of data source `uid` older than `before_ms`; returns how many.
pub fn prune(conn: &Connection, uid: &str, before_ms: i64) -> Result<u64, HistoryError> {
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let mut n = tx
        .execute(
            "DELETE FROM samples WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1)
             AND sampled_at_ms < ?2",
            params![uid, before_ms],
        )
        .map_err(sql)? as u64;
    let whole_before = chunk::block_of(before_ms);
    let whole: i64 = tx
        .query_row(
            "SELECT coalesce(sum(polls), 0) FROM chunks
             WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1) AND block_ms < ?2",
            params![uid, whole_before],
            |r| r.get(0),
        )
        .map_err(sql)?;
    n += whole.max(0) as u64;
    for table in ["chunks", "rollups"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1)
                 AND block_ms < ?2"
            ),
            params![uid, whole_before],
        )
        .map_err(sql)?;
    }
    // The block that `before_ms` cuts keeps its newer polls.
    let cut: Vec<(i64, Vec<u8>)> = tx
        .prepare(
            "SELECT target_id, data FROM chunks
             WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1) AND block_ms = ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![uid, whole_before], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    for (tid, data) in cut {
        let rows = chunk::decode(&data).ok_or_else(|| corrupt(&tx, chunk_damaged(whole_before)))?;
        let before = rows.len();
        let rows: Vec<ChunkRow> = rows.into_iter().filter(|r| r.at_ms >= before_ms).collect();
        if rows.len() != before {
            n += (before - rows.len()) as u64;
            write_chunk(&tx, tid, whole_before, &rows)?;
        }
    }
    tx.execute(
        "DELETE FROM top_ips WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1)
         AND sampled_at_ms < ?2",
        params![uid, before_ms],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(n)
}

/// (id, target key) of every target of `uid`, by key.
pub fn targets(conn: &Connection, uid: &str) -> Result<Vec<(i64, String)>, HistoryError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, target_key FROM targets WHERE uid = ?1 ORDER BY target_key")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// The failed polls of target `tid` with `lo <= at <= hi` (milliseconds), ascending.
pub fn failures(
    conn: &Connection,
    tid: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<super::StoredFailure>, HistoryError> {
    let mut out = Vec::new();
    let failures_only = chunk::Select {
        edge: false,
        origin: false,
        totals: false,
        failures: true,
        values: chunk::Values::Hits,
    };
    each_chunk(conn, tid, lo, hi, |block, data| {
        let c = chunk::Chunk::decode(data, failures_only)
            .ok_or_else(|| corrupt(conn, chunk_damaged(block)))?;
        c.walk(lo, hi, |p| {
            if let Some((kind, message)) = p.error.filter(|_| !p.ok) {
                out.push(super::StoredFailure {
                    at: from_ms(p.at_ms),
                    kind: kind.to_string(),
                    message: message.to_string(),
                });
            }
        });
        Ok(())
    })?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT sampled_at_ms, error_kind, error_message FROM samples
             WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3 AND ok = 0
             ORDER BY sampled_at_ms",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![tid, lo, hi], |r| {
            Ok(super::StoredFailure {
                at: from_ms(r.get(0)?),
                kind: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                message: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })
        .map_err(sql)?;
    for row in rows {
        out.push(row.map_err(sql)?);
    }
    // Rows of an open block may sit between chunked polls of the same block.
    out.sort_by_key(|f| f.at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::codec::*;
    use super::*;

    #[test]
    fn wide_varints_round_trip_on_both_sides_of_64_bits() {
        // The 64-bit fast path ends at 9 bytes (63 bits); wider values take the 128-bit one.
        let values = [
            0,
            127,
            128,
            (1u128 << 63) - 1,
            1 << 63,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 2,
            u128::MAX,
        ];
        let mut buf = Vec::new();
        for v in values {
            put_wide(&mut buf, v);
        }
        let mut pos = 0;
        for v in values {
            assert_eq!(get_wide(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        for cut in 0..buf.len() {
            let mut pos = 0;
            let read = std::iter::from_fn(|| get_wide(&buf[..cut], &mut pos)).count();
            assert!(read < values.len(), "cut at {cut}");
        }
        // 19 continuation bytes: beyond 128 bits.
        assert_eq!(get_wide(&[0x80; 19], &mut 0), None);
    }

    #[test]
    fn codec_round_trips() {
        let edge = vec![
            StatusCodeCount {
                http_status: 200,
                hits: 123_456_789,
                percentage: 93.45,
            },
            StatusCodeCount {
                http_status: 503,
                hits: 0,
                percentage: 0.0,
            },
        ];
        let origin = vec![StatusCodeCount {
            http_status: 404,
            hits: 7,
            percentage: 100.0,
        }];
        let blob = encode(&edge, &origin);
        assert_eq!(decode(&blob), Some((edge, origin)));
        assert_eq!(decode(&encode(&[], &[])), Some((vec![], vec![])));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[9, 1, 2, 3]), None);
        assert_eq!(decode(&[1, 0x80]), None, "truncated varint");
    }
}
