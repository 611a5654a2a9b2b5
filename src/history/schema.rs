//! The history database's schema, its version (`PRAGMA user_version`) and the checks made when a
//! file is opened.
//!
//! Version 1:
//! - `targets(id, uid, target_key)`: one row per (data source uid, target key), so that the bulky
//!   tables repeat a small integer instead of two strings in every row;
//! - `samples(target_id, sampled_at_ms, ok, error_kind, error_message, edge_hits, edge_errors,
//!   edge_failure_pct, origin_hits, origin_errors, origin_failure_pct, codes)`: one row per poll,
//!   failed polls included (`ok` = 0, the error in `error_kind`/`error_message`, no codes). The
//!   status-code distribution of both sides is one compact BLOB (see [`super::store::codec`])
//!   instead of a row per code: 7 days of 2-minute samples with 40 codes are 200 k rows instead of
//!   8 M, which keeps imports to seconds and range reads to one index range.
//! - `top_ips(target_id, sampled_at_ms, json)`: the top IPs of the latest sample only.
//!
//! Version 2 adds `chunks(target_id, block_ms, polls, last_ok_ms, data)`: every poll of a target
//! in one 2-hour block (aligned to the epoch) as one columnar BLOB (see [`super::chunk`]), so
//! that a week-long range reads 85 blobs instead of 5,040 rows. `samples` keeps only the polls
//! of blocks still open: a block's rows move into its chunk when a poll of a later block is
//! stored, and an import writes chunks directly. `last_ok_ms` (the newest successful poll of the
//! chunk) finds the latest sample without decoding. The migration from version 1 moves every row
//! into chunks, in the transaction that sets the version.
//!
//! Version 3 adds `rollups(target_id, block_ms, data)`: per chunk, the sums of each status
//! code's hits and percentage units per 10-minute bucket (see [`super::rollup`]), written and
//! deleted with their chunk, so that a downsampled week adds 1,000 sums instead of decoding
//! 5,040 polls. The migration from version 2 computes them from the chunks. Migrations run in one
//! transaction, from the file's version to the newest, and the chunks of a version 1 file are
//! written after every table exists.

use std::path::Path;

use rusqlite::{Connection, ErrorCode};

use super::HistoryError;

/// "ESTS": marks a SQLite file as an eStats history, so that a `historyPath` that points at some
/// other database (grafana.db, say) is refused instead of written into.
pub const APPLICATION_ID: i32 = 0x4553_5453;
pub const VERSION: i32 = 3;

const V1: &str = "
CREATE TABLE targets (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    target_key TEXT NOT NULL,
    UNIQUE (uid, target_key)
);
CREATE TABLE samples (
    target_id INTEGER NOT NULL,
    sampled_at_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error_kind TEXT,
    error_message TEXT,
    edge_hits INTEGER,
    edge_errors INTEGER,
    edge_failure_pct REAL,
    origin_hits INTEGER,
    origin_errors INTEGER,
    origin_failure_pct REAL,
    codes BLOB,
    PRIMARY KEY (target_id, sampled_at_ms)
) WITHOUT ROWID;
CREATE TABLE top_ips (
    target_id INTEGER PRIMARY KEY,
    sampled_at_ms INTEGER NOT NULL,
    json TEXT NOT NULL
);
";

const V2: &str = "
CREATE TABLE chunks (
    target_id INTEGER NOT NULL,
    block_ms INTEGER NOT NULL,
    polls INTEGER NOT NULL,
    last_ok_ms INTEGER,
    data BLOB NOT NULL,
    PRIMARY KEY (target_id, block_ms)
);
";

const V3: &str = "
CREATE TABLE rollups (
    target_id INTEGER NOT NULL,
    block_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (target_id, block_ms)
);
";

/// Migrations from version `i` to `i + 1` (index 0 creates version 1). Chunks and rollups hold
/// kilobytes, hence rowid tables (SQLite advises against WITHOUT ROWID for rows that large).
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema of version 1, for tests that build a file as version 1 wrote it.
#[cfg(test)]
pub const V1_SQL: &str = V1;

/// Maps an SQLite error met while opening to what it means for the user.
pub fn open_error(path: Option<&Path>, e: rusqlite::Error) -> HistoryError {
    let display = path.map(|p| p.to_path_buf()).unwrap_or_default();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => HistoryError::Corrupt {
            path: display,
            detail: e.to_string(),
        },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::ReadOnly) => {
            HistoryError::Open {
                path: display,
                reason: format!(
                    "{e}; check that the Grafana server's user may read and write the file and its directory"
                ),
            }
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => HistoryError::Open {
            path: display,
            reason: format!("{e}; another process holds the file locked, e.g. a running `history import`: wait for it or use another historyPath"),
        },
        _ => HistoryError::Sqlite(e.to_string()),
    }
}

/// Checks the file (integrity, identity, version), creates or migrates the schema and sets the
/// journal. `path` is `None` for an in-memory history.
pub fn prepare(conn: &Connection, path: Option<&Path>) -> Result<(), HistoryError> {
    let err = |e| open_error(path, e);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    // The first read of the header is where a file that is not SQLite shows itself.
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if path.is_some() {
        integrity(conn, path)?;
    }
    let display = || path.map(|p| p.to_path_buf()).unwrap_or_default();
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(HistoryError::Open {
            path: display(),
            reason: "this SQLite file belongs to another application: point historyPath at a new file, e.g. /var/lib/grafana/estats-history.db".into(),
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err)?;
        if tables > 0 {
            return Err(HistoryError::Open {
                path: display(),
                reason: "this SQLite file already holds other tables: point historyPath at a new file, e.g. /var/lib/grafana/estats-history.db".into(),
            });
        }
    }
    if version > VERSION {
        return Err(HistoryError::Open {
            path: display(),
            reason: format!(
                "the file has history schema version {version}, written by a newer plugin (this one reads up to {VERSION}): upgrade the plugin or use another historyPath"
            ),
        });
    }
    if version >= 1 {
        tables_match(conn, version, path)?;
    }
    if path.is_some() {
        // WAL: readers never wait for the writer, and a commit is one append to the WAL file.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(HistoryError::Open {
                path: display(),
                reason: format!("SQLite cannot use write-ahead logging there (journal mode stays {mode}): put historyPath on a local file system"),
            });
        }
    }
    // NORMAL in WAL mode: a committed transaction is in the WAL file (the OS has it) before the
    // commit returns, so killing the process loses nothing committed; only an OS crash or power
    // loss may lose the last commits. FULL would add an fsync per sample for that case.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;")
        .map_err(err)?;
    if version < VERSION {
        let migrate = || -> Result<(), HistoryError> {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            for sql in MIGRATIONS.iter().skip(version as usize) {
                conn.execute_batch(sql).map_err(err)?;
            }
            // Rows into chunks (version 2) writes their rollups too (version 3).
            if version == 1 {
                super::store::compact_all(conn)?;
            } else if version == 2 {
                super::store::roll_up_all(conn)?;
            }
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION}; COMMIT;"
            ))
            .map_err(err)
        };
        if let Err(e) = migrate() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// Every table and its columns, by table name (SQLite's own tables left out).
fn tables(conn: &Connection) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .into_iter()
        .map(|name| {
            let columns = conn
                .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
                .query_map([&name], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((name, columns))
        })
        .collect()
}

/// Checks that a file marked as a history of `version` has that version's tables and columns,
/// so that a file that only carries the marks (or lost a table) is refused when opened, not
/// with "no such column" at the first query. The expectation is read from the migrations
/// themselves, applied to an empty in-memory database.
fn tables_match(conn: &Connection, version: i32, path: Option<&Path>) -> Result<(), HistoryError> {
    let expected = {
        let scratch = Connection::open_in_memory().map_err(|e| open_error(None, e))?;
        for sql in MIGRATIONS.iter().take(version as usize) {
            scratch
                .execute_batch(sql)
                .map_err(|e| open_error(None, e))?;
        }
        tables(&scratch).map_err(|e| open_error(None, e))?
    };
    let found = tables(conn).map_err(|e| open_error(path, e))?;
    // A table of ours with other columns first: it says more about the file than a table that
    // a later version added and this file lacks.
    let mut problems: Vec<_> = expected.iter().collect();
    problems.sort_by_key(|(table, _)| !found.iter().any(|(name, _)| name == table));
    for (table, columns) in problems {
        let problem = match found.iter().find(|(name, _)| name == table) {
            None => format!("it lacks the table {table}"),
            Some((_, have)) if have != columns => format!(
                "its table {table} has the columns ({}) instead of ({})",
                have.iter()
                    .take(20)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                columns.join(", ")
            ),
            Some(_) => continue,
        };
        return Err(HistoryError::Open {
            path: path.map(|p| p.to_path_buf()).unwrap_or_default(),
            reason: format!(
                "the file is marked as an eStats history (schema version {version}) but {problem}: it was not written by this plugin, or was altered; point historyPath at a new file, e.g. /var/lib/grafana/estats-history.db"
            ),
        });
    }
    Ok(())
}

/// `PRAGMA quick_check`: verifies every page and record (not that indexes match their tables,
/// which `integrity_check` adds at several times the cost on a large file).
fn integrity(conn: &Connection, path: Option<&Path>) -> Result<(), HistoryError> {
    let display = || path.map(|p| p.to_path_buf()).unwrap_or_default();
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| open_error(path, e))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| open_error(path, e))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(HistoryError::Corrupt {
            path: display(),
            detail: rows.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked_file(sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"
        ))
        .unwrap();
        (dir, path)
    }

    #[test]
    fn marked_files_with_foreign_tables_are_refused() {
        for (sql, problem) in [
            (
                "CREATE TABLE samples (x INTEGER)",
                "its table samples has the columns (x)",
            ),
            (
                &format!("{V1}{V2}").replace("codes BLOB,", "")[..],
                "its table samples has the columns",
            ),
            (V1, "lacks the table chunks"),
            ("CREATE TABLE t (a)", "lacks the table"),
        ] {
            let (_dir, path) = marked_file(sql);
            let conn = Connection::open(&path).unwrap();
            let err = prepare(&conn, Some(&path)).unwrap_err();
            assert!(matches!(err, HistoryError::Open { .. }), "{err:?}");
            assert!(err.to_string().contains(problem), "{err}");
            assert!(err.to_string().contains("historyPath"), "{err}");
        }
    }

    #[test]
    fn a_history_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        prepare(&Connection::open(&path).unwrap(), Some(&path)).unwrap();
        prepare(&Connection::open(&path).unwrap(), Some(&path)).unwrap();
        // Extra tables next to ours are tolerated.
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE notes (n TEXT)")
            .unwrap();
        prepare(&Connection::open(&path).unwrap(), Some(&path)).unwrap();
    }
}
