//! The sample history: every poll of every target, in SQLite (`historyPath`) or in memory.
//!
//! Rows are keyed by data source uid and target key, so one file can serve several data sources
//! without mixing them. The polls of closed 2-hour blocks sit in columnar chunks ([`chunk`]),
//! those of the open block in rows (see [`schema`]); each chunk has a [`rollup`] of 10-minute
//! code sums that answers downsampled series. Only the latest sample of a target is ever
//! held in RAM (by the poller); ranges are read from the database on demand: [`History::range`]
//! as samples, or [`History::polls`] as [`polls::Polls`] (the `timeseries` handler's fast path,
//! with no sample built per poll).
//!
//! Threading: async methods run their SQL on tokio's blocking pool. Writes go through one writer
//! connection behind a mutex; reads use a small pool of separate connections, and WAL mode lets
//! them read while the writer writes, so a running import or a poll's insert never delays a
//! dashboard. (An in-memory history has a single connection: it cannot be shared across
//! connections without losing WAL, and its writes take microseconds.)
//!
//! Durability: WAL with `synchronous = NORMAL`. A commit has reached the WAL file (the OS) when it
//! returns, so a process killed with SIGKILL loses no committed sample, and the next start replays
//! the WAL. An OS crash or power cut may lose the last few seconds; `FULL` would cost an fsync per
//! poll to cover that too.

pub mod chunk;
pub mod import;
pub mod polls;
pub mod rollup;
pub mod schema;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::estats::UpstreamError;
use crate::sample::Sample;
use crate::target::Target;

pub use import::ImportReport;

/// One poll of a target: its sample, or `None` when the poll failed (drawn as a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub sample: Option<Sample>,
}

/// A failed poll as stored: when, and the error's kind (`UpstreamErrorKind::as_str`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFailure {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot open the history file {}: {reason}", .path.display())]
    Open { path: PathBuf, reason: String },
    #[error("the history file {} is damaged ({detail}): move it aside or delete it and the plugin starts a new one, or restore it from a backup", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("history database error: {0}")]
    Sqlite(String),
    #[error("line {line}: {reason}")]
    Import { line: u64, reason: String },
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// History tasks (reads and writes) running at once; more wait their turn.
const CONCURRENT_TASKS: usize = 4;

/// Read connections kept open; more concurrent readers open (and close) their own.
const READER_POOL: usize = 2;

struct Inner {
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// (uid, target key) -> row id of `targets`; ids never change once created.
    ids: Mutex<HashMap<(String, String), i64>>,
    /// Bounds the history work running at once: a dashboard opening with a hundred targets
    /// would otherwise start a blocking thread, a connection and its cache for each.
    permits: tokio::sync::Semaphore,
}

/// The history database. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens (or creates) the history at `path`, or an empty in-memory one for `None`.
    /// The parent directory must exist: creating directories is the administrator's choice.
    pub fn open(path: Option<&Path>) -> Result<History, HistoryError> {
        let (conn, path) = match path {
            None => (
                Connection::open_in_memory().map_err(|e| schema::open_error(None, e))?,
                None,
            ),
            Some(p) => {
                if p.as_os_str().is_empty() {
                    return History::open(None);
                }
                let parent = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(HistoryError::Open {
                        path: p.to_path_buf(),
                        reason: format!(
                            "the directory {} does not exist: create it (writable by the Grafana server's user) or change historyPath",
                            parent.display()
                        ),
                    });
                }
                if p.is_dir() {
                    return Err(HistoryError::Open {
                        path: p.to_path_buf(),
                        reason: "this is a directory: historyPath names a file, e.g. /var/lib/grafana/estats-history.db".into(),
                    });
                }
                (
                    Connection::open(p).map_err(|e| schema::open_error(Some(p), e))?,
                    Some(p.to_path_buf()),
                )
            }
        };
        schema::prepare(&conn, path.as_deref())?;
        Ok(History {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(CONCURRENT_TASKS),
                ids: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Bytes on disk (database and its WAL); `None` in memory.
    pub fn file_size(&self) -> Option<u64> {
        let path = self.inner.path.as_ref()?;
        let main = std::fs::metadata(path).ok()?.len();
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        Some(main + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0))
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        f(&self.inner.writer.lock())
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        let Some(path) = &self.inner.path else {
            return self.with_writer(f);
        };
        let pooled = self.inner.readers.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| schema::open_error(Some(path), e))?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(store::sql)?;
                // Read-write open (a read-only one may not map the WAL index), but no writes.
                // A 1 MiB page cache each: a week-long range reads about as much, and the plugin
                // must stay small with many targets.
                c.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -1024")
                    .map_err(store::sql)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.inner.readers.lock();
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }

    fn cached_id(&self, uid: &str, key: &str) -> Option<i64> {
        self.inner
            .ids
            .lock()
            .get(&(uid.to_string(), key.to_string()))
            .copied()
    }

    fn remember_id(&self, uid: &str, key: &str, id: i64) {
        self.inner
            .ids
            .lock()
            .insert((uid.to_string(), key.to_string()), id);
    }

    /// The target's row id; `create` makes one (on the writer connection).
    fn id_on(
        &self,
        conn: &Connection,
        uid: &str,
        key: &str,
        create: bool,
    ) -> Result<Option<i64>, HistoryError> {
        if let Some(id) = self.cached_id(uid, key) {
            return Ok(Some(id));
        }
        let id = store::target_id(conn, uid, key, create)?;
        if let Some(id) = id {
            self.remember_id(uid, key, id);
        }
        Ok(id)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(History) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| HistoryError::Sqlite("the history is closed".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| HistoryError::Sqlite(format!("the history task failed ({e})")))?
    }

    /// Stores a sample (and its top IPs as the target's latest). Storing the same instant again
    /// is a no-op.
    pub async fn record_sample(
        &self,
        uid: &str,
        target: &Target,
        sample: &Sample,
    ) -> Result<(), HistoryError> {
        let (uid, key, sample) = (uid.to_string(), target.key(), sample.clone());
        self.blocking(move |h| h.record_sample_sync(&uid, &key, &sample))
            .await
    }

    fn record_sample_sync(
        &self,
        uid: &str,
        key: &str,
        sample: &Sample,
    ) -> Result<(), HistoryError> {
        let out = self.with_writer(|conn| {
            let tx = conn.unchecked_transaction().map_err(store::sql)?;
            let tid = self
                .id_on(&tx, uid, key, true)?
                .ok_or_else(|| HistoryError::Sqlite("target row not created".into()))?;
            if store::insert_sample(&tx, tid, sample)? {
                store::upsert_top_ips(&tx, tid, store::ms(sample.sampled_at), &sample.top_ips)?;
                store::settle(&tx, tid, store::ms(sample.sampled_at))?;
            }
            tx.commit().map_err(store::sql)
        });
        if out.is_err() {
            // The target row may have been rolled back with the sample.
            self.inner
                .ids
                .lock()
                .remove(&(uid.to_string(), key.to_string()));
        }
        out
    }

    /// Stores a failed poll: a gap in every series at `at`.
    pub async fn record_failure(
        &self,
        uid: &str,
        target: &Target,
        at: DateTime<Utc>,
        error: &UpstreamError,
    ) -> Result<(), HistoryError> {
        let (uid, key) = (uid.to_string(), target.key());
        let (kind, message) = (error.kind().as_str().to_string(), error.to_string());
        self.blocking(move |h| {
            let out = h.with_writer(|conn| {
                let tx = conn.unchecked_transaction().map_err(store::sql)?;
                let tid = h
                    .id_on(&tx, &uid, &key, true)?
                    .ok_or_else(|| HistoryError::Sqlite("target row not created".into()))?;
                if store::insert_failure(&tx, tid, store::ms(at), &kind, &message)? {
                    store::settle(&tx, tid, store::ms(at))?;
                }
                tx.commit().map_err(store::sql)
            });
            if out.is_err() {
                // The target row may have been rolled back with the failure.
                h.inner.ids.lock().remove(&(uid.clone(), key.clone()));
            }
            out
        })
        .await
    }

    /// Runs a read for a target; `None` when the target has never been stored.
    async fn read<T: Send + 'static>(
        &self,
        uid: &str,
        target: &Target,
        f: impl FnOnce(&Connection, i64) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<Option<T>, HistoryError> {
        let (uid, key) = (uid.to_string(), target.key());
        self.blocking(move |h| {
            h.with_reader(|conn| match h.id_on(conn, &uid, &key, false)? {
                None => Ok(None),
                Some(tid) => {
                    // One snapshot: a block's rows may move into its chunk between two SELECTs.
                    let tx = conn.unchecked_transaction().map_err(store::sql)?;
                    f(&tx, tid).map(Some)
                }
            })
        })
        .await
    }

    /// The newest successful sample of a target, with its top IPs.
    pub async fn latest(&self, uid: &str, target: &Target) -> Result<Option<Sample>, HistoryError> {
        Ok(self.read(uid, target, store::latest).await?.flatten())
    }

    /// Every poll with `from <= at <= to`, ascending; failed polls have no sample. Samples carry
    /// no top IPs.
    pub async fn range(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>, HistoryError> {
        let (from, to) = (store::ms(from), store::ms(to));
        Ok(self
            .read(uid, target, move |conn, tid| {
                Ok(store::rows(conn, tid, from, to)?
                    .into_iter()
                    .map(|r| r.point)
                    .collect())
            })
            .await?
            .unwrap_or_default())
    }

    /// The polls of a target with `from <= at <= to`, ascending, as the `timeseries` handler
    /// reads them ([`polls::Polls`]: no sample built per poll), keeping what `wanted` asks.
    pub async fn polls(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        wanted: polls::Wanted,
    ) -> Result<polls::Polls, HistoryError> {
        let (from, to) = (store::ms(from), store::ms(to));
        Ok(self
            .read(uid, target, move |conn, tid| {
                polls::read(conn, tid, from, to, wanted)
            })
            .await?
            .unwrap_or_default())
    }

    /// The failed polls of a target with `from <= at <= to`, ascending, with the error each
    /// was stored with (what `events` annotations are made of).
    pub async fn failures(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredFailure>, HistoryError> {
        let (from, to) = (store::ms(from), store::ms(to));
        Ok(self
            .read(uid, target, move |conn, tid| {
                store::failures(conn, tid, from, to)
            })
            .await?
            .unwrap_or_default())
    }

    /// Status codes seen in any stored sample of a target (either side), ascending.
    pub async fn status_codes(&self, uid: &str, target: &Target) -> Result<Vec<u16>, HistoryError> {
        Ok(self
            .read(uid, target, store::status_codes)
            .await?
            .unwrap_or_default())
    }

    /// Rows stored for a target, failed polls included.
    pub async fn count(&self, uid: &str, target: &Target) -> Result<u64, HistoryError> {
        Ok(self.read(uid, target, store::count).await?.unwrap_or(0))
    }

    /// Deletes what data source `uid` stored before `older_than`; returns the rows deleted.
    pub async fn prune(&self, uid: &str, older_than: DateTime<Utc>) -> Result<u64, HistoryError> {
        let uid = uid.to_string();
        let before = store::ms(older_than);
        self.blocking(move |h| h.with_writer(|conn| store::prune(conn, &uid, before)))
            .await
    }

    /// Loads JSON lines (see [`import`]) as data source `uid`'s samples, in one transaction:
    /// all lines or none. Blocking; for the CLI.
    pub fn import_jsonl(
        &self,
        uid: &str,
        reader: impl std::io::BufRead,
    ) -> Result<ImportReport, HistoryError> {
        self.with_writer(|conn| import::import(conn, uid, reader))
    }

    /// Writes every stored row of data source `uid` as JSON lines; returns the lines written.
    /// Blocking; for the CLI.
    pub fn export_jsonl(
        &self,
        uid: &str,
        writer: impl std::io::Write,
    ) -> Result<u64, HistoryError> {
        self.with_reader(|conn| import::export(conn, uid, writer))
    }
}

/// One [`History`] per `historyPath`, shared by every data source naming it, and one in-memory
/// history per data source uid (so that a settings change, which builds a new instance, keeps it).
#[derive(Default)]
pub struct HistoryRegistry {
    files: Mutex<HashMap<PathBuf, History>>,
    memory: Mutex<HashMap<String, History>>,
}

impl HistoryRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, uid: &str, path: Option<&Path>) -> Result<History, HistoryError> {
        match path.filter(|p| !p.as_os_str().is_empty()) {
            None => {
                let mut memory = self.memory.lock();
                if let Some(h) = memory.get(uid) {
                    return Ok(h.clone());
                }
                let h = History::open(None)?;
                memory.insert(uid.to_string(), h.clone());
                Ok(h)
            }
            Some(p) => {
                // The same file under two spellings must still get one writer.
                let canonical = p
                    .parent()
                    .and_then(|d| d.canonicalize().ok())
                    .and_then(|d| p.file_name().map(|f| d.join(f)))
                    .unwrap_or_else(|| p.to_path_buf());
                let mut files = self.files.lock();
                if let Some(h) = files.get(&canonical) {
                    return Ok(h.clone());
                }
                let h = History::open(Some(p))?;
                files.insert(canonical, h.clone());
                Ok(h)
            }
        }
    }

    /// Frees the in-memory histories of the data sources `keep` rejects: Grafana never says
    /// that a data source was deleted, so the instances that expire say it, and their history
    /// goes with them once their pollers (which hold a handle too) are gone. File histories
    /// stay: their data is on disk, and other data sources may share the file.
    pub fn retain_memory(&self, keep: impl Fn(&str) -> bool) {
        self.memory.lock().retain(|uid, _| keep(uid));
    }
}

#[cfg(test)]
mod tests;
