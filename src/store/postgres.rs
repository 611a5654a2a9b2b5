//! The shared history in PostgreSQL (`jsonData.historyDatabase`): samples, the leases that give
//! each (data source, target) one poller across replicas, the replicas seen, and the shared call
//! budget of each API client. `docs/high-availability.md` argues the choices.
//!
//! - Connections: a deadpool pool of tokio-postgres clients, TLS through rustls (no libpq, no
//!   OpenSSL, so the executable stays static). Creating the store does not connect: the first use
//!   does, and every later use retries, so a database that is down at start heals by itself.
//! - Migrations: versioned, applied in one transaction under `pg_advisory_xact_lock` on a key
//!   derived from the schema name, so replicas starting together apply each step once.
//! - Fencing: a write names the lease epoch its poller acquired; the lease row is read `FOR
//!   SHARE` in the same transaction and the write is refused when the epoch has moved on (another
//!   replica took the target over). The row lock makes a takeover wait for the write to commit.
//! - Live: each stored sample is announced with `pg_notify` in its transaction; one listening
//!   connection per store fans the notices out to the data sources of this process.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::history::polls::{Polls, PollsBuilder, Wanted};
use crate::history::store::codec;
use crate::history::{Point, StoredFailure};
use crate::sample::{Sample, SideStats, TopIp};
use crate::settings::{HistoryDatabase, SslMode};
use crate::target::Target;

/// What went wrong with the shared history; `kind` is what code matches on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    pub kind: PgErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgErrorKind {
    /// No connection (refused, timed out, TLS, authentication).
    Unreachable,
    /// Connected, but a statement failed.
    Query,
    /// A write carried a lease epoch that is no longer the target's: another replica owns it.
    Fenced,
    /// Stored data that does not decode.
    Corrupt,
}

/// How long the pool waits for a connection (connect included) before a use fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per store and process: pollers write one row per poll, queries read.
const POOL_SIZE: usize = 8;
/// One schema step. Never edit a released step: add one.
enum Migration {
    Sql(&'static str),
    /// Version 2: samples from JSONB to the SQLite store's code blob plus total columns (read
    /// with the binary protocol straight into the series builder, no JSON parse). Converted in
    /// place in Rust, through [`codec::encode`], so that one encoder exists.
    SamplesToBinary,
}

/// Schema steps, in order; the index + 1 is the version.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(
        r#"
CREATE TABLE {s}.targets (
    uid text NOT NULL,
    target text NOT NULL,
    watched boolean NOT NULL DEFAULT false,
    last_queried timestamptz NOT NULL DEFAULT now(),
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    PRIMARY KEY (uid, target)
);
CREATE TABLE {s}.samples (
    uid text NOT NULL,
    target text NOT NULL,
    sampled_at timestamptz NOT NULL,
    sample jsonb,
    error_kind text,
    error text,
    epoch bigint NOT NULL,
    PRIMARY KEY (uid, target, sampled_at)
);
CREATE TABLE {s}.top_ips (
    uid text NOT NULL,
    target text NOT NULL,
    sampled_at timestamptz NOT NULL,
    top_ips jsonb NOT NULL,
    PRIMARY KEY (uid, target)
);
CREATE TABLE {s}.replicas (
    id text NOT NULL,
    uid text NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (id, uid)
);
CREATE TABLE {s}.calls (
    client text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX calls_client_at ON {s}.calls (client, at);
CREATE TABLE {s}.pauses (
    client text PRIMARY KEY,
    until timestamptz NOT NULL,
    reason text NOT NULL
);
"#,
    ),
    Migration::SamplesToBinary,
];

/// Rows converted per round trip by [`Migration::SamplesToBinary`].
const CONVERT_BATCH: i64 = 2000;

/// The columns of a successful poll (`codes` NULL marks a failed one).
const SAMPLE_COLUMNS: &str = "codes, edge_hits, edge_errors, edge_failure_pct, origin_hits, \
     origin_errors, origin_failure_pct";

/// A sample as its row stores it: the code blob of both sides and the side totals.
struct Encoded {
    codes: Vec<u8>,
    /// Edge hits, edge errors, origin hits, origin errors.
    counts: [Option<i64>; 4],
    /// Edge and origin failure percentage.
    pcts: [Option<f64>; 2],
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

impl Encoded {
    fn of(sample: &Sample) -> Encoded {
        Encoded {
            codes: codec::encode(&sample.edge.codes, &sample.origin.codes),
            counts: [
                to_i64(sample.edge.hits),
                to_i64(sample.edge.errors),
                to_i64(sample.origin.hits),
                to_i64(sample.origin.errors),
            ],
            pcts: [
                sample.edge.failure_percentage,
                sample.origin.failure_percentage,
            ],
        }
    }
}

/// A sample back from the columns of [`SAMPLE_COLUMNS`] starting at `first`; `None` when its
/// code blob does not decode.
fn decode_row(row: &tokio_postgres::Row, first: usize, at: DateTime<Utc>) -> Option<Sample> {
    let blob: &[u8] = row.try_get::<_, Option<&[u8]>>(first).ok()??;
    let (edge_codes, origin_codes) = codec::decode(blob)?;
    let count = |i: usize| to_u64(row.try_get::<_, Option<i64>>(first + i).ok().flatten());
    let pct = |i: usize| row.try_get::<_, Option<f64>>(first + i).ok().flatten();
    Some(Sample {
        sampled_at: at,
        edge: SideStats {
            hits: count(1),
            errors: count(2),
            failure_percentage: pct(3),
            codes: edge_codes,
        },
        origin: SideStats {
            hits: count(4),
            errors: count(5),
            failure_percentage: pct(6),
            codes: origin_codes,
        },
        top_ips: Vec::new(),
    })
}

/// A lease this replica holds: the fencing token its writes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub epoch: i64,
}

/// A sample stored by some replica, as announced on the notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub uid: String,
    pub target: String,
    pub at: DateTime<Utc>,
}

pub use crate::upstream::Admission;

/// Leases of one data source, as the coordinator of a replica sees them after one round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    /// Every lease this replica holds, renewed: target key -> epoch.
    pub owned: Vec<(String, i64)>,
    /// Replicas serving this data source that were seen within the lease period.
    pub replicas: u64,
}

fn unreachable_error(db: &HistoryDatabase, e: &dyn std::fmt::Display) -> PgError {
    PgError {
        kind: PgErrorKind::Unreachable,
        message: format!(
            "the history database {} (PostgreSQL, user {}) is unreachable: {e}",
            db.describe(),
            db.user
        ),
    }
}

/// A tokio-postgres error as a message without the connection string (which it never holds).
fn pg_error(db: &HistoryDatabase, e: tokio_postgres::Error) -> PgError {
    if let Some(db_error) = e.as_db_error() {
        return PgError {
            kind: PgErrorKind::Query,
            message: format!(
                "the history database {} refused a statement: {} ({})",
                db.describe(),
                db_error.message(),
                db_error.code().code()
            ),
        };
    }
    // tokio-postgres shows "error connecting to server" and keeps the why (refused, timed out,
    // authentication) in its sources; none of them holds the password.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    unreachable_error(db, &text)
}

fn pool_error(db: &HistoryDatabase, e: deadpool_postgres::PoolError) -> PgError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(db, e),
        deadpool_postgres::PoolError::Timeout(_) => unreachable_error(
            db,
            &format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
        ),
        other => unreachable_error(db, &other),
    }
}

fn corrupt(message: String) -> PgError {
    PgError {
        kind: PgErrorKind::Corrupt,
        message,
    }
}

/// Accepts any server certificate: `sslmode=require` encrypts without authenticating, as
/// libpq's `require` does.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The CA certificates of `sslrootcert`, or an error naming the parameter and the fix.
fn root_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| {
        format!(
            "historyDatabase parameter sslrootcert={}: {why}; give a PEM file holding the certificate of the CA that signed the database server's certificate",
            path.display()
        )
    };
    let text = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn tls_config(db: &HistoryDatabase) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(match db.ssl_mode {
        SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        _ => {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(path) = &db.ssl_root_cert {
                for cert in root_certs(path)? {
                    roots.add(cert).map_err(|e| {
                        format!(
                            "historyDatabase parameter sslrootcert={}: a certificate is not a usable CA ({e})",
                            path.display()
                        )
                    })?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

fn pg_config(db: &HistoryDatabase) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(db.port)
        .dbname(&db.database)
        .user(&db.user)
        // The schema in the name lets an administrator (and the tests) tell stores apart in
        // pg_stat_activity.
        .application_name(format!("akamai-estats {}", db.schema))
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .ssl_mode(match db.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
    if let Some(p) = &db.password {
        config.password(p.expose());
    }
    config
}

/// A 64-bit advisory lock key (or channel suffix) derived from text, stable across versions.
fn digest64(text: &str) -> i64 {
    let d = Sha256::digest(text.as_bytes());
    i64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The shared history of one database and schema. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: HistoryDatabase,
    pool: Pool,
    replica: String,
    migrated: tokio::sync::Mutex<bool>,
    notices: broadcast::Sender<Stored>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether the listening connection is up (its catch-up done).
    listening: Arc<std::sync::atomic::AtomicBool>,
    /// The last error of any use, for health (`None` after a success).
    last_error: Mutex<Option<PgError>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.listener.lock().take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("db", &self.inner.db.describe())
            .field("schema", &self.inner.db.schema)
            .field("replica", &self.inner.replica)
            .finish_non_exhaustive()
    }
}

/// This process's replica id: host name, pid and a random part (a restarted process is a new
/// replica, so a lease it held before is not mistaken for its own).
pub fn replica_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "replica".to_string());
        format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
    .clone()
}

impl PgStore {
    /// A store for `db`; connects on first use.
    pub fn new(db: &HistoryDatabase) -> Result<PgStore, PgError> {
        PgStore::with_replica(db, replica_id())
    }

    /// As [`PgStore::new`] under a given replica id (tests run several replicas in a process).
    pub fn with_replica(db: &HistoryDatabase, replica: String) -> Result<PgStore, PgError> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let config = pg_config(db);
        let manager = match db.ssl_mode {
            SslMode::Disable => Manager::from_config(config, NoTls, manager_config),
            _ => {
                // A bad sslrootcert is a setting to fix, not an outage: its own message.
                let tls = tls_config(db).map_err(|message| PgError {
                    kind: PgErrorKind::Unreachable,
                    message,
                })?;
                Manager::from_config(
                    config,
                    tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                    manager_config,
                )
            }
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| unreachable_error(db, &e))?;
        let (notices, _) = broadcast::channel(1024);
        Ok(PgStore {
            inner: Arc::new(Inner {
                db: db.clone(),
                pool,
                replica,
                migrated: tokio::sync::Mutex::new(false),
                notices,
                listener: Mutex::new(None),
                listening: Arc::default(),
                last_error: Mutex::new(None),
            }),
        })
    }

    pub fn database(&self) -> &HistoryDatabase {
        &self.inner.db
    }

    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// The error of the last failed use, cleared by the next success.
    pub fn last_error(&self) -> Option<PgError> {
        self.inner.last_error.lock().clone()
    }

    fn s(&self) -> &str {
        &self.inner.db.schema
    }

    fn channel(&self) -> String {
        format!("akamai_estats_{:016x}", digest64(self.s()) as u64)
    }

    fn note<T>(&self, result: Result<T, PgError>) -> Result<T, PgError> {
        match &result {
            Ok(_) => *self.inner.last_error.lock() = None,
            Err(e) if e.kind == PgErrorKind::Unreachable || e.kind == PgErrorKind::Query => {
                *self.inner.last_error.lock() = Some(e.clone())
            }
            Err(_) => {}
        }
        result
    }

    /// A pooled connection, the schema migrated first (once per process, retried until it works).
    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        let result = async {
            let client = self
                .inner
                .pool
                .get()
                .await
                .map_err(|e| pool_error(&self.inner.db, e))?;
            let mut migrated = self.inner.migrated.lock().await;
            if !*migrated {
                self.migrate(&client).await?;
                *migrated = true;
            }
            Ok(client)
        }
        .await;
        self.note(result)
    }

    async fn migrate(&self, client: &deadpool_postgres::Object) -> Result<(), PgError> {
        let err = |e| pg_error(&self.inner.db, e);
        let s = self.s();
        // The transaction-scoped lock serialises replicas starting together; the second one
        // finds the version already raised and applies nothing.
        client.batch_execute("BEGIN").await.map_err(err)?;
        let result = async {
            client
                .execute(
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&digest64(&format!("akamai_estats migrate {s}"))],
                )
                .await
                .map_err(err)?;
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; \
                     CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"
                ))
                .await
                .map_err(err)?;
            let row = client
                .query_opt(&format!("SELECT max(version) FROM {s}.schema_version"), &[])
                .await
                .map_err(err)?;
            let have: i32 = row.and_then(|r| r.get::<_, Option<i32>>(0)).unwrap_or(0);
            let known = MIGRATIONS.len() as i32;
            if have > known {
                return Err(PgError {
                    kind: PgErrorKind::Query,
                    message: format!(
                        "the history schema {s} in {} is at version {have}, newer than this plugin's {known}: upgrade the plugin on every replica",
                        self.inner.db.describe()
                    ),
                });
            }
            for (i, step) in MIGRATIONS.iter().enumerate().skip(have as usize) {
                match step {
                    Migration::Sql(sql) => client
                        .batch_execute(&sql.replace("{s}", s))
                        .await
                        .map_err(err)?,
                    Migration::SamplesToBinary => self.samples_to_binary(client).await?,
                }
                client
                    .execute(
                        &format!("INSERT INTO {s}.schema_version (version) VALUES ($1)"),
                        &[&(i as i32 + 1)],
                    )
                    .await
                    .map_err(err)?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => client.batch_execute("COMMIT").await.map_err(err),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    /// Schema step 2, inside the migration's transaction: adds the binary columns, fills them
    /// from each JSONB sample (in batches, through a cursor), and drops the JSONB column.
    async fn samples_to_binary(&self, client: &deadpool_postgres::Object) -> Result<(), PgError> {
        let err = |e| pg_error(&self.inner.db, e);
        let s = self.s();
        client
            .batch_execute(&format!(
                "ALTER TABLE {s}.samples ADD COLUMN codes bytea, ADD COLUMN edge_hits bigint, \
                 ADD COLUMN edge_errors bigint, ADD COLUMN edge_failure_pct float8, \
                 ADD COLUMN origin_hits bigint, ADD COLUMN origin_errors bigint, \
                 ADD COLUMN origin_failure_pct float8; \
                 DECLARE estats_convert NO SCROLL CURSOR FOR SELECT uid, target, sampled_at, \
                 sample::text FROM {s}.samples WHERE sample IS NOT NULL"
            ))
            .await
            .map_err(err)?;
        let update = client
            .prepare(&format!(
                "UPDATE {s}.samples s SET codes = v.codes, edge_hits = v.eh, edge_errors = v.ee, \
                 edge_failure_pct = v.ep, origin_hits = v.oh, origin_errors = v.oe, \
                 origin_failure_pct = v.op \
                 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[], $5::int8[], \
                   $6::int8[], $7::float8[], $8::int8[], $9::int8[], $10::float8[]) \
                   AS v(uid, target, at, codes, eh, ee, ep, oh, oe, op) \
                 WHERE s.uid = v.uid AND s.target = v.target AND s.sampled_at = v.at"
            ))
            .await
            .map_err(err)?;
        loop {
            let rows = client
                .query(&format!("FETCH {CONVERT_BATCH} FROM estats_convert"), &[])
                .await
                .map_err(err)?;
            if rows.is_empty() {
                break;
            }
            let mut uids = Vec::with_capacity(rows.len());
            let mut targets = Vec::with_capacity(rows.len());
            let mut ats = Vec::with_capacity(rows.len());
            let mut codes = Vec::with_capacity(rows.len());
            let mut counts: [Vec<Option<i64>>; 4] = Default::default();
            let mut pcts: [Vec<Option<f64>>; 2] = Default::default();
            for r in &rows {
                let (uid, target, at): (String, String, DateTime<Utc>) =
                    (r.get(0), r.get(1), r.get(2));
                let text: &str = r.get(3);
                let sample = serde_json::from_str::<Sample>(text).map_err(|e| {
                    corrupt(format!(
                        "migrating {s} in {}: the stored sample of {target} at {at} does not decode ({e}); delete that row and start again",
                        self.inner.db.describe()
                    ))
                })?;
                let e = Encoded::of(&sample);
                for (column, v) in counts.iter_mut().zip(e.counts) {
                    column.push(v);
                }
                for (column, v) in pcts.iter_mut().zip(e.pcts) {
                    column.push(v);
                }
                uids.push(uid);
                targets.push(target);
                ats.push(at);
                codes.push(e.codes);
            }
            client
                .execute(
                    &update,
                    &[
                        &uids, &targets, &ats, &codes, &counts[0], &counts[1], &pcts[0],
                        &counts[2], &counts[3], &pcts[1],
                    ],
                )
                .await
                .map_err(err)?;
        }
        client
            .batch_execute(&format!(
                "CLOSE estats_convert; ALTER TABLE {s}.samples DROP COLUMN sample"
            ))
            .await
            .map_err(err)
    }

    /// Connects and migrates now: the health check's probe of the store.
    pub async fn check(&self) -> Result<(), PgError> {
        let client = self.client().await?;
        let result = client
            .query_one("SELECT 1", &[])
            .await
            .map(|_| ())
            .map_err(|e| pg_error(&self.inner.db, e));
        self.note(result)
    }

    /// Connects without migrating: whether the server answers at all.
    pub async fn reachable(&self) -> Result<(), PgError> {
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&self.inner.db, e))?;
        client
            .query_one("SELECT 1", &[])
            .await
            .map(|_| ())
            .map_err(|e| pg_error(&self.inner.db, e))
    }

    /// The schema's version (0 before the first migration).
    pub async fn version(&self) -> Result<i32, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT coalesce(max(version), 0) FROM {}.schema_version",
                    self.s()
                ),
                &[],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.get(0))
    }

    /// Notices of every sample stored in this schema by any replica, from now on. Starts the
    /// listening connection on first use; it reconnects by itself.
    pub fn notices(&self) -> broadcast::Receiver<Stored> {
        let rx = self.inner.notices.subscribe();
        let mut slot = self.inner.listener.lock();
        if slot.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            let weak = Arc::downgrade(&self.inner);
            let channel = self.channel();
            *slot = Some(tokio::spawn(listen(weak, channel)));
        }
        rx
    }

    /// Whether the listening connection of [`PgStore::notices`] is up and caught up.
    pub fn listening(&self) -> bool {
        self.inner
            .listening
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Registers targets of data source `uid` as wanted: `watched` ones for good, others as
    /// queried now (idle ones are released by their owner after a while).
    pub async fn register(
        &self,
        uid: &str,
        targets: &[Target],
        watched: bool,
    ) -> Result<(), PgError> {
        if targets.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let keys: Vec<String> = targets.iter().map(Target::key).collect();
        let result = client
            .execute(
                &format!(
                    "INSERT INTO {s}.targets (uid, target, watched, last_queried) \
                     SELECT $1, k, $3, now() FROM unnest($2::text[]) AS k \
                     ON CONFLICT (uid, target) DO UPDATE SET last_queried = now(), \
                     watched = {s}.targets.watched OR excluded.watched",
                    s = self.s()
                ),
                &[&uid, &keys, &watched],
            )
            .await
            .map(|_| ())
            .map_err(|e| pg_error(&self.inner.db, e));
        self.note(result)
    }

    /// One coordination round for data source `uid`: note this replica as alive, renew its
    /// leases, give up the idle ones and those above its fair share, and claim unowned or expired
    /// ones up to it. `idle`: a target not queried (nor watched) for this long is not polled.
    pub async fn coordinate(
        &self,
        uid: &str,
        ttl: Duration,
        idle: Duration,
    ) -> Result<Round, PgError> {
        let result = self.coordinate_inner(uid, ttl, idle).await;
        self.note(result)
    }

    async fn coordinate_inner(
        &self,
        uid: &str,
        ttl: Duration,
        idle: Duration,
    ) -> Result<Round, PgError> {
        let client = self.client().await?;
        let err = |e| pg_error(&self.inner.db, e);
        let s = self.s();
        let me = self.replica();
        let ttl_s = ttl.as_secs_f64();
        let idle_s = idle.as_secs_f64();
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.replicas (id, uid, seen_at) VALUES ($1, $2, now()) \
                     ON CONFLICT (id, uid) DO UPDATE SET seen_at = now()"
                ),
                &[&me, &uid],
            )
            .await
            .map_err(err)?;
        // Give up idle targets first, so that they are not counted below.
        client
            .execute(
                &format!(
                    "UPDATE {s}.targets SET owner = NULL, expires_at = NULL \
                     WHERE uid = $1 AND owner = $2 AND NOT watched \
                     AND last_queried < now() - make_interval(secs => $3)"
                ),
                &[&uid, &me, &idle_s],
            )
            .await
            .map_err(err)?;
        let row = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}.replicas WHERE uid = $1 \
                       AND seen_at > now() - make_interval(secs => $2)), \
                     (SELECT count(*) FROM {s}.targets WHERE uid = $1 \
                       AND (watched OR last_queried >= now() - make_interval(secs => $3)))"
                ),
                &[&uid, &ttl_s, &idle_s],
            )
            .await
            .map_err(err)?;
        let replicas: i64 = row.get(0);
        let wanted: i64 = row.get(1);
        let replicas = replicas.max(1);
        let share = (wanted + replicas - 1) / replicas;
        let renewed = client
            .query(
                &format!(
                    "UPDATE {s}.targets SET expires_at = now() + make_interval(secs => $3) \
                     WHERE uid = $1 AND owner = $2 AND expires_at > now() \
                     RETURNING target, epoch"
                ),
                &[&uid, &me, &ttl_s],
            )
            .await
            .map_err(err)?;
        let mut owned: Vec<(String, i64)> = renewed.iter().map(|r| (r.get(0), r.get(1))).collect();
        owned.sort();
        let excess = owned.len() as i64 - share;
        if excess > 0 {
            // Another replica joined: hand over what is above the fair share. Expired at once,
            // so the others claim them in their next round.
            let give: Vec<String> = owned
                .iter()
                .rev()
                .take(excess as usize)
                .map(|(k, _)| k.clone())
                .collect();
            client
                .execute(
                    &format!(
                        "UPDATE {s}.targets SET owner = NULL, expires_at = NULL \
                         WHERE uid = $1 AND owner = $2 AND target = ANY($3)"
                    ),
                    &[&uid, &me, &give],
                )
                .await
                .map_err(err)?;
            owned.retain(|(k, _)| !give.contains(k));
        } else if excess < 0 {
            let claimed = client
                .query(
                    &format!(
                        "UPDATE {s}.targets t SET owner = $2, epoch = t.epoch + 1, \
                           expires_at = now() + make_interval(secs => $3) \
                         FROM (SELECT uid, target FROM {s}.targets \
                               WHERE uid = $1 AND (watched OR last_queried >= now() - make_interval(secs => $4)) \
                                 AND (owner IS NULL OR expires_at IS NULL OR expires_at <= now()) \
                               ORDER BY random() LIMIT $5 FOR UPDATE SKIP LOCKED) c \
                         WHERE t.uid = c.uid AND t.target = c.target \
                           AND (t.owner IS NULL OR t.expires_at IS NULL OR t.expires_at <= now()) \
                         RETURNING t.target, t.epoch"
                    ),
                    &[&uid, &me, &ttl_s, &idle_s, &(-excess)],
                )
                .await
                .map_err(err)?;
            owned.extend(claimed.iter().map(|r| (r.get(0), r.get(1))));
            owned.sort();
        }
        Ok(Round {
            owned,
            replicas: replicas as u64,
        })
    }

    /// Gives up every lease this replica holds for `uid` (a clean shutdown), so others take
    /// over at once instead of after the lease period.
    pub async fn release_all(&self, uid: &str) -> Result<(), PgError> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "UPDATE {}.targets SET owner = NULL, expires_at = NULL WHERE uid = $1 AND owner = $2",
                    self.s()
                ),
                &[&uid, &self.replica()],
            )
            .await
            .map(|_| ())
            .map_err(|e| pg_error(&self.inner.db, e))
    }

    /// Stores a sample under lease `lease` (`None`: no lease check, for `history copy`).
    /// Returns whether a row was inserted (false: that instant was stored already). A stale
    /// epoch is refused with [`PgErrorKind::Fenced`] and nothing is written.
    pub async fn record_sample(
        &self,
        uid: &str,
        target: &Target,
        sample: &Sample,
        lease: Option<Lease>,
    ) -> Result<bool, PgError> {
        let top = serde_json::to_value(&sample.top_ips).map_err(|e| corrupt(e.to_string()))?;
        let result = self
            .write(
                uid,
                target,
                sample.sampled_at,
                lease,
                Some((Encoded::of(sample), top)),
                None,
            )
            .await;
        self.note(result)
    }

    /// Stores a failed poll (a gap) under lease `lease`, as [`PgStore::record_sample`].
    pub async fn record_failure(
        &self,
        uid: &str,
        target: &Target,
        at: DateTime<Utc>,
        kind: &str,
        message: &str,
        lease: Option<Lease>,
    ) -> Result<bool, PgError> {
        let result = self
            .write(uid, target, at, lease, None, Some((kind, message)))
            .await;
        self.note(result)
    }

    async fn write(
        &self,
        uid: &str,
        target: &Target,
        at: DateTime<Utc>,
        lease: Option<Lease>,
        sample: Option<(Encoded, serde_json::Value)>,
        failure: Option<(&str, &str)>,
    ) -> Result<bool, PgError> {
        let mut client = self.client().await?;
        let err = |e| pg_error(&self.inner.db, e);
        let s = self.s();
        let key = target.key();
        let tx = client.transaction().await.map_err(err)?;
        let epoch = match lease {
            Some(lease) => {
                // FOR SHARE: a takeover's UPDATE of this row waits until this write commits,
                // and a write after a takeover sees the new epoch.
                let row = tx
                    .query_opt(
                        &format!(
                            "SELECT epoch FROM {s}.targets WHERE uid = $1 AND target = $2 \
                             AND owner = $3 AND epoch = $4 FOR SHARE"
                        ),
                        &[&uid, &key, &self.replica(), &lease.epoch],
                    )
                    .await
                    .map_err(err)?;
                if row.is_none() {
                    return Err(PgError {
                        kind: PgErrorKind::Fenced,
                        message: format!(
                            "lease epoch {} of {key} is no longer this replica's: another replica polls it",
                            lease.epoch
                        ),
                    });
                }
                lease.epoch
            }
            None => 0,
        };
        let (kind, message) = match failure {
            Some((k, m)) => (Some(k), Some(m)),
            None => (None, None),
        };
        let none = Encoded {
            codes: Vec::new(),
            counts: [None; 4],
            pcts: [None; 2],
        };
        let (body, top) = match &sample {
            Some((b, t)) => (b, Some(t)),
            None => (&none, None),
        };
        let codes = sample.as_ref().map(|(b, _)| b.codes.as_slice());
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {s}.samples (uid, target, sampled_at, {SAMPLE_COLUMNS}, error_kind, \
                     error, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &uid,
                    &key,
                    &at,
                    &codes,
                    &body.counts[0],
                    &body.counts[1],
                    &body.pcts[0],
                    &body.counts[2],
                    &body.counts[3],
                    &body.pcts[1],
                    &kind,
                    &message,
                    &epoch,
                ],
            )
            .await
            .map_err(err)?
            == 1;
        if inserted {
            if let Some(top) = top {
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.top_ips (uid, target, sampled_at, top_ips) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (uid, target) DO UPDATE SET sampled_at = excluded.sampled_at, top_ips = excluded.top_ips \
                         WHERE {s}.top_ips.sampled_at < excluded.sampled_at"
                    ),
                    &[&uid, &key, &at, top],
                )
                .await
                .map_err(err)?;
                let notice = serde_json::to_string(&Stored {
                    uid: uid.to_string(),
                    target: key.clone(),
                    at,
                })
                .map_err(|e| corrupt(e.to_string()))?;
                tx.execute("SELECT pg_notify($1, $2)", &[&self.channel(), &notice])
                    .await
                    .map_err(err)?;
            }
        }
        tx.commit().await.map_err(err)?;
        Ok(inserted)
    }

    fn undecodable(&self, key: &str, at: DateTime<Utc>) -> PgError {
        corrupt(format!(
            "the stored sample of {key} at {} in {} does not decode",
            at.to_rfc3339(),
            self.inner.db.describe()
        ))
    }

    /// The newest successful sample of a target, with its top IPs.
    pub async fn latest(&self, uid: &str, target: &Target) -> Result<Option<Sample>, PgError> {
        self.sample_where(uid, target, None).await
    }

    /// The successful sample of a target stored for instant `at`, with its top IPs when it is
    /// the newest (what a live push of that instant shows).
    pub async fn sample_at(
        &self,
        uid: &str,
        target: &Target,
        at: DateTime<Utc>,
    ) -> Result<Option<Sample>, PgError> {
        self.sample_where(uid, target, Some(at)).await
    }

    async fn sample_where(
        &self,
        uid: &str,
        target: &Target,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<Sample>, PgError> {
        let result = async {
            let client = self.client().await?;
            let key = target.key();
            let statement = client
                .prepare_cached(&format!(
                    "SELECT s.sampled_at, t.top_ips, t.sampled_at = s.sampled_at, \
                     {SAMPLE_COLUMNS} FROM {s}.samples s \
                     LEFT JOIN {s}.top_ips t ON t.uid = s.uid AND t.target = s.target \
                     WHERE s.uid = $1 AND s.target = $2 AND s.codes IS NOT NULL {at} \
                     ORDER BY s.sampled_at DESC LIMIT 1",
                    s = self.s(),
                    at = if at.is_some() {
                        "AND s.sampled_at = $3"
                    } else {
                        ""
                    }
                ))
                .await
                .map_err(|e| pg_error(&self.inner.db, e))?;
            let row = match &at {
                Some(at) => client.query_opt(&statement, &[&uid, &key, at]).await,
                None => client.query_opt(&statement, &[&uid, &key]).await,
            }
            .map_err(|e| pg_error(&self.inner.db, e))?;
            let Some(row) = row else { return Ok(None) };
            let at: DateTime<Utc> = row.get(0);
            let mut sample = decode_row(&row, 3, at).ok_or_else(|| self.undecodable(&key, at))?;
            if row.get::<_, Option<bool>>(2) == Some(true) {
                let top: Option<serde_json::Value> = row.get(1);
                if let Some(top) = top {
                    sample.top_ips = serde_json::from_value::<Vec<TopIp>>(top).unwrap_or_default();
                }
            }
            Ok(Some(sample))
        }
        .await;
        self.note(result)
    }

    /// The newest row of a target, failed polls included: `(at, Err((kind, message)))` for a
    /// failure. Lets a replica waiting for a first sample learn that the owner's poll failed.
    pub async fn newest(
        &self,
        uid: &str,
        target: &Target,
    ) -> Result<Option<(DateTime<Utc>, Option<(String, String)>)>, PgError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT sampled_at, error_kind, error, codes IS NULL FROM {}.samples \
                     WHERE uid = $1 AND target = $2 ORDER BY sampled_at DESC LIMIT 1",
                    self.s()
                ),
                &[&uid, &target.key()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.map(|r| {
            let failed: bool = r.get(3);
            let failure = failed.then(|| {
                (
                    r.get::<_, Option<String>>(1).unwrap_or_default(),
                    r.get::<_, Option<String>>(2).unwrap_or_default(),
                )
            });
            (r.get(0), failure)
        }))
    }

    /// The rows of a target with `from <= at <= to`, ascending: instant, then (successful
    /// polls) the columns of [`SAMPLE_COLUMNS`], the totals only when `totals`.
    async fn rows(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        totals: bool,
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        let client = self.client().await?;
        let columns = if totals { SAMPLE_COLUMNS } else { "codes" };
        // Prepared once per connection: the rows come back in the binary protocol, the code
        // blob as the bytes the series builder walks.
        let statement = client
            .prepare_cached(&format!(
                "SELECT sampled_at, {columns} FROM {}.samples WHERE uid = $1 AND target = $2 \
                 AND sampled_at BETWEEN $3 AND $4 ORDER BY sampled_at",
                self.s()
            ))
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        client
            .query(&statement, &[&uid, &target.key(), &from, &to])
            .await
            .map_err(|e| pg_error(&self.inner.db, e))
    }

    /// Every poll with `from <= at <= to`, ascending; failed polls have no sample. Samples carry
    /// no top IPs.
    pub async fn range(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>, PgError> {
        let result = async {
            let key = target.key();
            let rows = self.rows(uid, target, from, to, true).await?;
            rows.iter()
                .map(|r| {
                    let at: DateTime<Utc> = r.get(0);
                    let failed = matches!(r.try_get::<_, Option<&[u8]>>(1), Ok(None));
                    let sample = if failed {
                        None
                    } else {
                        Some(decode_row(r, 1, at).ok_or_else(|| self.undecodable(&key, at))?)
                    };
                    Ok(Point { at, sample })
                })
                .collect()
        }
        .await;
        self.note(result)
    }

    /// The failed polls of a target with `from <= at <= to`, ascending, with their errors.
    pub async fn failures(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredFailure>, PgError> {
        let result = async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT sampled_at, error_kind, error FROM {}.samples WHERE uid = $1 \
                         AND target = $2 AND sampled_at BETWEEN $3 AND $4 AND codes IS NULL \
                         ORDER BY sampled_at",
                        self.s()
                    ),
                    &[&uid, &target.key(), &from, &to],
                )
                .await
                .map_err(|e| pg_error(&self.inner.db, e))?;
            Ok(rows
                .into_iter()
                .map(|r| StoredFailure {
                    at: r.get(0),
                    kind: r.get::<_, Option<String>>(1).unwrap_or_default(),
                    message: r.get::<_, Option<String>>(2).unwrap_or_default(),
                })
                .collect())
        }
        .await;
        self.note(result)
    }

    /// The polls of a target with `from <= at <= to` as the series builder reads them: each
    /// row's code blob goes straight into the builder, as the SQLite store's rows do.
    pub async fn polls(
        &self,
        uid: &str,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        wanted: Wanted,
    ) -> Result<Polls, PgError> {
        let result = async {
            let rows = self.rows(uid, target, from, to, wanted.totals).await?;
            let mut builder = PollsBuilder::new(wanted);
            for r in &rows {
                let at: DateTime<Utc> = r.get(0);
                let at_ms = at.timestamp_millis();
                let Some(blob) = r.try_get::<_, Option<&[u8]>>(1).ok().flatten() else {
                    builder.push_failed(at_ms);
                    continue;
                };
                let mut totals = [0.0; 6];
                if wanted.totals {
                    let count = |i: usize| {
                        r.try_get::<_, Option<i64>>(i)
                            .ok()
                            .flatten()
                            .map_or(0.0, |v| v.max(0) as f64)
                    };
                    let pct =
                        |i: usize| r.try_get::<_, Option<f64>>(i).ok().flatten().unwrap_or(0.0);
                    totals = [count(2), count(3), pct(4), count(5), count(6), pct(7)];
                }
                if builder.push_ok(at_ms, Some(blob), totals).is_none() {
                    return Err(self.undecodable(&target.key(), at));
                }
            }
            Ok(builder.finish())
        }
        .await;
        self.note(result)
    }

    /// Status codes seen in any stored sample of a target (either side), ascending: each
    /// row's code blob walked, without decoding the samples.
    pub async fn status_codes(&self, uid: &str, target: &Target) -> Result<Vec<u16>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT codes FROM {}.samples WHERE uid = $1 AND target = $2 \
                     AND codes IS NOT NULL",
                    self.s()
                ),
                &[&uid, &target.key()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if let Some(blob) = r.try_get::<_, Option<&[u8]>>(0).ok().flatten() {
                // An unreadable blob adds the codes before the damage; range reads report it.
                let _ = codec::walk(blob, |key, _, _| {
                    seen.insert((key >> 1) as u16);
                });
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// Rows stored for a target, failed polls included.
    pub async fn count(&self, uid: &str, target: &Target) -> Result<u64, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.samples WHERE uid = $1 AND target = $2",
                    self.s()
                ),
                &[&uid, &target.key()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Deletes what data source `uid` stored before `older_than`, and call records and replicas
    /// no longer relevant; returns the sample rows deleted.
    pub async fn prune(&self, uid: &str, older_than: DateTime<Utc>) -> Result<u64, PgError> {
        let client = self.client().await?;
        let s = self.s();
        let err = |e| pg_error(&self.inner.db, e);
        let n = client
            .execute(
                &format!("DELETE FROM {s}.samples WHERE uid = $1 AND sampled_at < $2"),
                &[&uid, &older_than],
            )
            .await
            .map_err(err)?;
        client
            .batch_execute(&format!(
                "DELETE FROM {s}.calls WHERE at < now() - interval '10 minutes'; \
                 DELETE FROM {s}.replicas WHERE seen_at < now() - interval '1 day'"
            ))
            .await
            .map_err(err)?;
        Ok(n)
    }

    /// Replicas that served data source `uid` within `within`, and the targets each owns.
    pub async fn replicas(
        &self,
        uid: &str,
        within: Duration,
    ) -> Result<Vec<(String, u64)>, PgError> {
        let client = self.client().await?;
        let s = self.s();
        let rows = client
            .query(
                &format!(
                    "SELECT r.id, (SELECT count(*) FROM {s}.targets t WHERE t.uid = r.uid \
                       AND t.owner = r.id AND t.expires_at > now()) \
                     FROM {s}.replicas r WHERE r.uid = $1 \
                       AND r.seen_at > now() - make_interval(secs => $2) ORDER BY r.id"
                ),
                &[&uid, &within.as_secs_f64()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// Asks the shared budget of API client `client` (a digest, never a credential) for one
    /// call: at most `limit` in any 60 s, none while a 429 pause holds. One transaction under an
    /// advisory lock per client, so replicas asking together count each other's calls.
    pub async fn admit(&self, client_key: &str, limit: u32) -> Result<Admission, PgError> {
        let result = async {
            let mut client = self.client().await?;
            let err = |e| pg_error(&self.inner.db, e);
            let s = self.s();
            let tx = client.transaction().await.map_err(err)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&digest64(&format!("akamai_estats budget {s} {client_key}"))],
            )
            .await
            .map_err(err)?;
            let pause = tx
                .query_opt(
                    &format!(
                        "SELECT extract(epoch FROM until - clock_timestamp())::float8, reason \
                         FROM {s}.pauses WHERE client = $1 AND until > clock_timestamp()"
                    ),
                    &[&client_key],
                )
                .await
                .map_err(err)?;
            if let Some(p) = pause {
                let secs: f64 = p.get(0);
                tx.commit().await.map_err(err)?;
                return Ok(Admission::Paused(
                    Duration::from_secs_f64(secs.max(0.0)),
                    p.get(1),
                ));
            }
            let row = tx
                .query_one(
                    &format!(
                        "SELECT count(*), extract(epoch FROM min(at) + interval '60 seconds' - clock_timestamp())::float8 \
                         FROM {s}.calls WHERE client = $1 AND at > clock_timestamp() - interval '60 seconds'"
                    ),
                    &[&client_key],
                )
                .await
                .map_err(err)?;
            let used: i64 = row.get(0);
            let answer = if used < i64::from(limit) {
                tx.execute(
                    &format!("INSERT INTO {s}.calls (client, at) VALUES ($1, clock_timestamp())"),
                    &[&client_key],
                )
                .await
                .map_err(err)?;
                Admission::Go
            } else {
                let wait: Option<f64> = row.get(1);
                Admission::Wait(Duration::from_secs_f64(wait.unwrap_or(1.0).clamp(0.01, 60.0)))
            };
            tx.commit().await.map_err(err)?;
            Ok(answer)
        }
        .await;
        self.note(result)
    }

    /// Records a 429 pause of API client `client_key` for every replica.
    pub async fn pause(
        &self,
        client_key: &str,
        pause: Duration,
        reason: &str,
    ) -> Result<(), PgError> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.pauses (client, until, reason) \
                     VALUES ($1, clock_timestamp() + make_interval(secs => $2), $3) \
                     ON CONFLICT (client) DO UPDATE SET until = greatest({s}.pauses.until, excluded.until), \
                     reason = excluded.reason",
                    s = self.s()
                ),
                &[&client_key, &pause.as_secs_f64(), &reason],
            )
            .await
            .map(|_| ())
            .map_err(|e| pg_error(&self.inner.db, e))
    }

    /// Upstream calls recorded for `client_key` in the last `within`: the budget's own count.
    pub async fn calls(&self, client_key: &str, within: Duration) -> Result<u64, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.calls WHERE client = $1 AND at > now() - make_interval(secs => $2)",
                    self.s()
                ),
                &[&client_key, &within.as_secs_f64()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// The lease row of a target: its owner (if any) and epoch.
    pub async fn lease(
        &self,
        uid: &str,
        target: &Target,
    ) -> Result<Option<(Option<String>, i64)>, PgError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT CASE WHEN expires_at > now() THEN owner END, epoch FROM {}.targets WHERE uid = $1 AND target = $2",
                    self.s()
                ),
                &[&uid, &target.key()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The instant and lease epoch of every row of a target, ascending: who wrote what.
    pub async fn writes(
        &self,
        uid: &str,
        target: &Target,
    ) -> Result<Vec<(DateTime<Utc>, i64)>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT sampled_at, epoch FROM {}.samples WHERE uid = $1 AND target = $2 ORDER BY sampled_at",
                    self.s()
                ),
                &[&uid, &target.key()],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Ends every connection of this store's schema, from any process (`pg_terminate_backend`):
    /// the tests' database outage. Returns how many were ended.
    pub async fn terminate_connections(&self) -> Result<u64, PgError> {
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&self.inner.db, e))?;
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name IN ($1, $1 || ' listen') AND pid <> pg_backend_pid()",
                &[&format!("akamai-estats {}", self.s())],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Ends the listening connections of this store's schema, from any process: the tests'
    /// listener outage. Returns how many were ended.
    pub async fn terminate_listeners(&self) -> Result<u64, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&format!("akamai-estats {} listen", self.s())],
            )
            .await
            .map_err(|e| pg_error(&self.inner.db, e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Drops the schema and everything in it (tests, and an administrator starting over).
    pub async fn drop_schema(&self) -> Result<(), PgError> {
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&self.inner.db, e))?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.s()))
            .await
            .map_err(|e| pg_error(&self.inner.db, e))
    }
}

/// The digest a shared budget is keyed by: host and client token identify an API client, and
/// only a digest of them is stored.
pub fn client_key(host: &str, client_token: &str) -> String {
    let d = Sha256::digest(format!("{host}\n{client_token}").as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// How many missed samples one reconnect pushes at most (per schema): beyond that the live
/// panels have been away long enough that a refresh is the better answer.
const CATCH_UP_LIMIT: i64 = 1000;

/// What the listener remembers across reconnects to catch up on what it missed.
#[derive(Default)]
struct Seen {
    /// The database's `now()` when the first `LISTEN` took effect: nothing before was promised.
    since: Option<DateTime<Utc>>,
    /// The newest instant announced per (uid, target).
    newest: std::collections::HashMap<(String, String), DateTime<Utc>>,
}

impl Seen {
    fn note(&mut self, n: &Stored) {
        let at = self
            .newest
            .entry((n.uid.clone(), n.target.clone()))
            .or_insert(n.at);
        *at = (*at).max(n.at);
    }
}

/// The samples stored while the listener was away: per (uid, target) of the schema, those
/// after the newest one it announced (or after it first listened, for a target it never saw),
/// ascending. Read after the new `LISTEN` took effect, so nothing falls between the two.
async fn missed(
    client: &tokio_postgres::Client,
    schema: &str,
    seen: &Seen,
    since: DateTime<Utc>,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let (mut uids, mut targets, mut ats) = (Vec::new(), Vec::new(), Vec::new());
    for ((uid, target), at) in &seen.newest {
        uids.push(uid.as_str());
        targets.push(target.as_str());
        ats.push(*at);
    }
    // Driven by the lease rows (every polled target has one), so each lookup is an index range.
    let rows = client
        .query(
            &format!(
                "SELECT t.uid, t.target, x.sampled_at FROM {schema}.targets t \
                 LEFT JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS seen(uid, target, at) \
                   ON seen.uid = t.uid AND seen.target = t.target \
                 CROSS JOIN LATERAL (SELECT s.sampled_at FROM {schema}.samples s \
                   WHERE s.uid = t.uid AND s.target = t.target AND s.codes IS NOT NULL \
                   AND s.sampled_at > coalesce(seen.at, $4) ORDER BY s.sampled_at LIMIT $5) x \
                 ORDER BY x.sampled_at LIMIT $5"
            ),
            &[&uids, &targets, &ats, &since, &CATCH_UP_LIMIT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Stored {
            uid: r.get(0),
            target: r.get(1),
            at: r.get(2),
        })
        .collect())
}

/// The listening connection: `LISTEN`s on the schema's channel and forwards every notice;
/// reconnects with backoff while the store is alive. Notices sent while it was disconnected
/// are caught up after it reconnects (see [`missed`]): each stored sample is announced once.
async fn listen(inner: std::sync::Weak<Inner>, channel: String) {
    let mut delay = Duration::from_millis(200);
    let mut seen = Seen::default();
    loop {
        let Some(store) = inner.upgrade() else { return };
        let db = store.db.clone();
        let sender = store.notices.clone();
        let listening = Arc::clone(&store.listening);
        drop(store);
        let mut config = pg_config(&db);
        // Its own name, so that an administrator (and the tests) can tell it from the pool.
        config.application_name(format!("akamai-estats {} listen", db.schema));
        let connected = match db.ssl_mode {
            SslMode::Disable => config
                .connect(NoTls)
                .await
                .map(|(c, conn)| (c, conn.boxed_connection())),
            _ => match tls_config(&db) {
                Ok(tls) => config
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                    .await
                    .map(|(c, conn)| (c, conn.boxed_connection())),
                Err(_) => return,
            },
        };
        match connected {
            Ok((client, mut messages)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Stored>();
                let driver = async move {
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if let Ok(stored) = serde_json::from_str::<Stored>(n.payload()) {
                                    let _ = tx.send(stored);
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                };
                // Notices arriving while the catch-up reads wait in `rx`; the ones the catch-up
                // also found are sent once.
                let seen = &mut seen;
                let listening = &listening;
                let sender = &sender;
                let schema = db.schema.clone();
                let channel = &channel;
                let control = async move {
                    if client
                        .batch_execute(&format!("LISTEN {channel}"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let mut caught = std::collections::HashSet::new();
                    match seen.since {
                        None => match client.query_one("SELECT now()", &[]).await {
                            Ok(row) => seen.since = Some(row.get(0)),
                            Err(_) => return,
                        },
                        Some(since) => match missed(&client, &schema, seen, since).await {
                            Ok(found) => {
                                for n in found {
                                    seen.note(&n);
                                    caught.insert((n.uid.clone(), n.target.clone(), n.at));
                                    let _ = sender.send(n);
                                }
                            }
                            // Live pushes from now on beat none: what was missed stays in the
                            // history, and the next reconnect tries again from `seen`.
                            Err(e) => {
                                tracing::warn!(error = %e, "history database listener cannot catch up on the samples stored while it was away");
                            }
                        },
                    }
                    listening.store(true, std::sync::atomic::Ordering::SeqCst);
                    while let Some(n) = rx.recv().await {
                        if !caught.is_empty()
                            && caught.remove(&(n.uid.clone(), n.target.clone(), n.at))
                        {
                            continue;
                        }
                        seen.note(&n);
                        let _ = sender.send(n);
                    }
                };
                // The driver must run for the statements to complete. Either ending ends the
                // other: the driver (on an error) closes `rx`, the control (returning early)
                // drops the client, which closes the connection. The control forwards what the
                // driver received before the end.
                tokio::join!(driver, control);
                listening.store(false, std::sync::atomic::Ordering::SeqCst);
                delay = Duration::from_millis(200);
            }
            Err(e) => {
                tracing::debug!(error = %e, "history database listener cannot connect");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A connection's message stream, boxed (the TLS and plain connections differ in type).
trait BoxConnection {
    fn boxed_connection(
        self,
    ) -> futures::stream::BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>;
}

impl<S, T> BoxConnection for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn boxed_connection(
        mut self,
    ) -> futures::stream::BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>> {
        futures::stream::poll_fn(move |cx| self.poll_message(cx)).boxed()
    }
}

#[cfg(test)]
mod tests;
