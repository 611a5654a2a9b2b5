//! Where a data source's history lives: the embedded SQLite (or memory) [`History`], or the
//! shared PostgreSQL [`PgStore`] of `jsonData.historyDatabase` that replicas of Grafana share.
//!
//! [`Store`] is the one interface the poller and the handlers use; the embedded side delegates
//! to [`History`] unchanged. Only the shared store has leases, notices and a shared budget: those
//! live on [`PgStore`] and the poller asks for them through [`Store::shared`].

pub mod postgres;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::estats::UpstreamError;
use crate::history::polls::{Polls, Wanted};
use crate::history::{History, HistoryError, Point, StoredFailure};
use crate::sample::Sample;
use crate::settings::HistoryDatabase;
use crate::target::Target;

pub use postgres::{Lease, PgError, PgErrorKind, PgStore};

/// The history of one data source. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite at `historyPath`, or memory: this process only.
    Embedded(History),
    /// PostgreSQL: shared by every replica.
    Shared(PgStore),
}

impl From<History> for Store {
    fn from(h: History) -> Store {
        Store::Embedded(h)
    }
}

fn shared_error(e: PgError) -> HistoryError {
    HistoryError::Sqlite(e.message)
}

impl Store {
    pub fn shared(&self) -> Option<&PgStore> {
        match self {
            Store::Shared(s) => Some(s),
            Store::Embedded(_) => None,
        }
    }

    pub fn embedded(&self) -> Option<&History> {
        match self {
            Store::Embedded(h) => Some(h),
            Store::Shared(_) => None,
        }
    }

    /// Where the history is, for health and logs (never a password).
    pub fn describe(&self) -> String {
        match self {
            Store::Embedded(h) => match h.path() {
                Some(p) => format!("SQLite {}", p.display()),
                None => "memory".to_string(),
            },
            Store::Shared(s) => format!(
                "PostgreSQL {} schema {}",
                s.database().describe(),
                s.database().schema
            ),
        }
    }

    /// Stores a sample. `lease`: the epoch the poller holds (shared store only); a stale one is
    /// refused ([`StoreWrite::Fenced`]).
    pub async fn record_sample(
        &self,
        uid: &str,
        target: &Target,
        sample: &Sample,
        lease: Option<Lease>,
    ) -> StoreWrite {
        match self {
            Store::Embedded(h) => h.record_sample(uid, target, sample).await.into(),
            Store::Shared(s) => s.record_sample(uid, target, sample, lease).await.into(),
        }
    }

    /// Stores a failed poll (a gap), as [`Store::record_sample`].
    pub async fn record_failure(
        &self,
        uid: &str,
        target: &Target,
        at: DateTime<Utc>,
        error: &UpstreamError,
        lease: Option<Lease>,
    ) -> StoreWrite {
        match self {
            Store::Embedded(h) => h.record_failure(uid, target, at, error).await.into(),
            Store::Shared(s) => s
                .record_failure(
                    uid,
                    target,
                    at,
                    error.kind().as_str(),
                    &error.to_string(),
                    lease,
                )
                .await
                .into(),
        }
    }

    pub async fn latest(&self, uid: &str, target: &Target) -> Result<Option<Sample>, HistoryError> {
        match self {
            Store::Embedded(h) => h.latest(uid, target).await,
            Store::Shared(s) => s.latest(uid, target).await.map_err(shared_error),
        }
    }

    pub async fn range(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>, HistoryError> {
        match self {
            Store::Embedded(h) => h.range(uid, target, from, to).await,
            Store::Shared(s) => s.range(uid, target, from, to).await.map_err(shared_error),
        }
    }

    /// The polls of a target as the series builder reads them (see [`History::polls`]).
    pub async fn polls(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        wanted: Wanted,
    ) -> Result<Polls, HistoryError> {
        match self {
            Store::Embedded(h) => h.polls(uid, target, from, to, wanted).await,
            Store::Shared(s) => s
                .polls(uid, target, from, to, wanted)
                .await
                .map_err(shared_error),
        }
    }

    /// The failed polls of a target with their errors (see [`History::failures`]).
    pub async fn failures(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredFailure>, HistoryError> {
        match self {
            Store::Embedded(h) => h.failures(uid, target, from, to).await,
            Store::Shared(s) => s
                .failures(uid, target, from, to)
                .await
                .map_err(shared_error),
        }
    }

    pub async fn status_codes(&self, uid: &str, target: &Target) -> Result<Vec<u16>, HistoryError> {
        match self {
            Store::Embedded(h) => h.status_codes(uid, target).await,
            Store::Shared(s) => s.status_codes(uid, target).await.map_err(shared_error),
        }
    }

    pub async fn count(&self, uid: &str, target: &Target) -> Result<u64, HistoryError> {
        match self {
            Store::Embedded(h) => h.count(uid, target).await,
            Store::Shared(s) => s.count(uid, target).await.map_err(shared_error),
        }
    }

    pub async fn prune(&self, uid: &str, older_than: DateTime<Utc>) -> Result<u64, HistoryError> {
        match self {
            Store::Embedded(h) => h.prune(uid, older_than).await,
            Store::Shared(s) => s.prune(uid, older_than).await.map_err(shared_error),
        }
    }

    /// Size of the SQLite file, for metrics (`None` for memory and PostgreSQL).
    pub fn file_size(&self) -> Option<u64> {
        self.embedded().and_then(History::file_size)
    }
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    /// Stored (or already there: the same instant is stored once).
    Stored,
    /// Refused: the lease epoch moved on, another replica polls the target now.
    Fenced,
    /// Not stored: the store failed (unreachable, full, ...).
    Failed(String),
}

impl From<Result<(), HistoryError>> for StoreWrite {
    fn from(r: Result<(), HistoryError>) -> Self {
        match r {
            Ok(()) => StoreWrite::Stored,
            Err(e) => StoreWrite::Failed(e.to_string()),
        }
    }
}

impl From<Result<bool, PgError>> for StoreWrite {
    fn from(r: Result<bool, PgError>) -> Self {
        match r {
            Ok(_) => StoreWrite::Stored,
            Err(e) if e.kind == PgErrorKind::Fenced => StoreWrite::Fenced,
            Err(e) => StoreWrite::Failed(e.message),
        }
    }
}

/// One [`PgStore`] per database, user, password and schema in this process, shared by the data
/// sources naming them (one pool, one listening connection).
#[derive(Default)]
pub struct SharedRegistry {
    stores: Mutex<HashMap<String, PgStore>>,
}

impl SharedRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, db: &HistoryDatabase) -> Result<PgStore, PgError> {
        use sha2::Digest;
        let password = db
            .password
            .as_ref()
            .map(|p| sha2::Sha256::digest(p.expose().as_bytes()).to_vec())
            .unwrap_or_default();
        let key = format!(
            "{}@{}?{}&{:?}#{}/{:?}",
            db.user,
            db.describe(),
            db.ssl_mode.as_str(),
            db.ssl_root_cert,
            db.schema,
            password
        );
        let mut stores = self.stores.lock();
        if let Some(s) = stores.get(&key) {
            return Ok(s.clone());
        }
        let store = PgStore::new(db)?;
        stores.insert(key, store.clone());
        Ok(store)
    }
}

/// The budget of one API client kept in the shared store: every replica's calls count against
/// one `rateLimitPerMinute`, and a 429 pauses them all. Keyed by a digest of host and client
/// token ([`postgres::client_key`]), never the token.
pub struct PgBudget {
    store: PgStore,
    key: String,
    limit: u32,
}

impl PgBudget {
    pub fn new(store: PgStore, host: &str, client_token: &str, limit: u32) -> PgBudget {
        PgBudget {
            store,
            key: postgres::client_key(host, client_token),
            limit,
        }
    }
}

impl crate::upstream::SharedBudget for PgBudget {
    fn admit(&self) -> futures::future::BoxFuture<'_, crate::upstream::Admission> {
        Box::pin(async move {
            match self.store.admit(&self.key, self.limit).await {
                Ok(answer) => answer,
                // The local budget still holds; polling goes on while the database is away.
                Err(_) => crate::upstream::Admission::Go,
            }
        })
    }

    fn rate_limited<'a>(
        &'a self,
        pause: std::time::Duration,
        reason: &'a str,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.store.pause(&self.key, pause, reason).await;
        })
    }
}

/// What [`copy_sqlite`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows read from SQLite (samples and failed polls).
    pub rows: u64,
    /// Rows new to PostgreSQL (the others were there already).
    pub inserted: u64,
}

/// Copies data source `uid`'s history from the SQLite file `from` into `to`, through the
/// history's own JSON-lines export (one format for moving history). Rows already in PostgreSQL
/// are skipped, so running it twice is harmless. Written without a lease: run it before the
/// replicas start polling, or alongside them (a row they wrote wins).
pub async fn copy_sqlite(
    from: &std::path::Path,
    uid: &str,
    to: &PgStore,
) -> Result<CopyReport, String> {
    use crate::history::import::Line;
    if !from.is_file() {
        return Err(format!("--from {}: no such file", from.display()));
    }
    let (path, owner) = (from.to_path_buf(), uid.to_string());
    let lines = tokio::task::spawn_blocking(move || {
        let history = History::open(Some(&path)).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        history
            .export_jsonl(&owner, &mut out)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(out)
    })
    .await
    .map_err(|e| format!("reading {} failed ({e})", from.display()))??;
    to.check().await.map_err(|e| e.message)?;
    let mut report = CopyReport::default();
    for (n, text) in lines.split(|b| *b == b'\n').enumerate() {
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |why: String| format!("{} row {}: {why}", from.display(), n + 1);
        let line: Line = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        let target = line.target.check().map_err(|e| bad(e.to_string()))?;
        let at = DateTime::parse_from_rfc3339(&line.sampled_at)
            .map_err(|e| bad(e.to_string()))?
            .with_timezone(&Utc);
        let inserted = match (&line.response, &line.error) {
            (Some(response), _) => {
                let sample = Sample::from_response(at, response);
                to.record_sample(uid, &target, &sample, None).await
            }
            (None, Some(error)) => {
                to.record_failure(uid, &target, at, &error.kind, &error.message, None)
                    .await
            }
            (None, None) => return Err(bad("neither a response nor an error".into())),
        }
        .map_err(|e| e.message)?;
        report.rows += 1;
        report.inserted += u64::from(inserted);
    }
    Ok(report)
}

/// The PostgreSQL the tests use: `ESTATS_TEST_DATABASE_URL` or `postgres://postgres@127.0.0.1:5432/test`.
pub const TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema name for one test (tests run in parallel, each in its own schema).
pub fn test_schema(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

/// The test database with a schema of its own, or `None` (after saying so on stderr) when
/// PostgreSQL does not answer and `CI` is not set. With `CI` set an unreachable database fails.
pub async fn test_database(prefix: &str) -> Option<HistoryDatabase> {
    let url =
        std::env::var("ESTATS_TEST_DATABASE_URL").unwrap_or_else(|_| TEST_DATABASE_URL.into());
    let password = std::env::var("ESTATS_TEST_DATABASE_PASSWORD")
        .ok()
        .map(crate::edgegrid::Secret::new);
    let db = crate::settings::history_database(
        &url,
        "ESTATS_TEST_DATABASE_URL",
        password,
        &test_schema(prefix),
    )
    .expect("ESTATS_TEST_DATABASE_URL must be a postgres:// URL without password");
    let store = PgStore::with_replica(&db, "probe".into()).ok()?;
    let why =
        match tokio::time::timeout(std::time::Duration::from_secs(10), store.reachable()).await {
            Ok(Ok(())) => return Some(db),
            Ok(Err(e)) => e.message,
            Err(_) => "no answer within 10 s".to_string(),
        };
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL for the tests is unreachable ({why}); CI needs it (set ESTATS_TEST_DATABASE_URL)");
    }
    eprintln!("skipped: PostgreSQL tests need a database ({why}); set ESTATS_TEST_DATABASE_URL");
    None
}
