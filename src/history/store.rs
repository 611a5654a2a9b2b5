//! The SQL of the history, on plain connections: the async [`super::History`] runs these on
//! blocking threads, the import/export CLI calls them directly.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

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

    fn put(buf: &mut Vec<u8>, mut v: u64) {
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

    fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
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

    fn pct_units(p: f64) -> u64 {
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

/// Stores a successful sample; false when one at the same millisecond was already stored.
pub fn insert_sample(conn: &Connection, tid: i64, s: &Sample) -> Result<bool, HistoryError> {
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

const COLUMNS: &str = "sampled_at_ms, ok, edge_hits, edge_errors, edge_failure_pct, origin_hits,
    origin_errors, origin_failure_pct, codes, error_kind, error_message";

/// A stored row: the point, and for failures (kind, message).
pub struct StoredRow {
    pub point: Point,
    pub error: Option<(String, String)>,
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<Result<StoredRow, String>> {
    let at_ms: i64 = r.get(0)?;
    let at = from_ms(at_ms);
    let ok: bool = r.get(1)?;
    if !ok {
        let kind: Option<String> = r.get(9)?;
        let message: Option<String> = r.get(10)?;
        return Ok(Ok(StoredRow {
            point: Point { at, sample: None },
            error: Some((kind.unwrap_or_default(), message.unwrap_or_default())),
        }));
    }
    // Borrowed, not copied: a week-long range decodes thousands of these.
    let blob = match r.get_ref(8)? {
        rusqlite::types::ValueRef::Blob(b) => b,
        _ => &[1][..],
    };
    let Some((edge_codes, origin_codes)) = codec::decode(blob) else {
        return Ok(Err(format!(
            "the status codes stored for {at} cannot be read"
        )));
    };
    let sample = Sample {
        sampled_at: at,
        edge: SideStats {
            hits: to_u64(r.get(2)?),
            errors: to_u64(r.get(3)?),
            failure_percentage: r.get(4)?,
            codes: edge_codes,
        },
        origin: SideStats {
            hits: to_u64(r.get(5)?),
            errors: to_u64(r.get(6)?),
            failure_percentage: r.get(7)?,
            codes: origin_codes,
        },
        top_ips: Vec::new(),
    };
    Ok(Ok(StoredRow {
        point: Point {
            at,
            sample: Some(sample),
        },
        error: None,
    }))
}

fn corrupt(conn: &Connection, detail: String) -> HistoryError {
    HistoryError::Corrupt {
        path: conn.path().map(Into::into).unwrap_or_default(),
        detail,
    }
}

/// Rows of a target with `from_ms <= sampled_at_ms <= to_ms`, ascending.
pub fn rows(
    conn: &Connection,
    tid: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredRow>, HistoryError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM samples WHERE target_id = ?1 AND sampled_at_ms BETWEEN ?2 AND ?3
             ORDER BY sampled_at_ms"
        ))
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![tid, from_ms, to_ms], read_row)
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql)?.map_err(|d| corrupt(conn, d))?);
    }
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
    let Some(row) = row else { return Ok(None) };
    let row = row.map_err(|d| corrupt(conn, d))?;
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
    while let Some(row) = rows.next().map_err(sql)? {
        let blob: Option<Vec<u8>> = row.get(0).map_err(sql)?;
        let Some(blob) = blob else { continue };
        let (edge, origin) = codec::decode(&blob)
            .ok_or_else(|| corrupt(conn, "stored status codes cannot be read".into()))?;
        seen.extend(edge.iter().chain(&origin).map(|c| c.http_status));
    }
    Ok(seen.into_iter().collect())
}

pub fn count(conn: &Connection, tid: i64) -> Result<u64, HistoryError> {
    conn.prepare_cached("SELECT count(*) FROM samples WHERE target_id = ?1")
        .and_then(|mut s| s.query_row(params![tid], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(sql)
}

/// Deletes the rows of data source `uid` older than `before_ms`; returns how many.
pub fn prune(conn: &Connection, uid: &str, before_ms: i64) -> Result<u64, HistoryError> {
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let n = tx
        .execute(
            "DELETE FROM samples WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1)
             AND sampled_at_ms < ?2",
            params![uid, before_ms],
        )
        .map_err(sql)?;
    tx.execute(
        "DELETE FROM top_ips WHERE target_id IN (SELECT id FROM targets WHERE uid = ?1)
         AND sampled_at_ms < ?2",
        params![uid, before_ms],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(n as u64)
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
    rows.collect::<Result<_, _>>().map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::codec::*;
    use super::*;

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
