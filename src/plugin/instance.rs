//! Per-data-source state: checked settings, the signed client, the shared upstream budget, the
//! pollers and the history handle. Built on the first request of a data source and rebuilt when
//! Grafana sends changed settings; history survives rebuilds because it lives in the store,
//! keyed by data source uid.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use grafana_plugin_sdk::pluginv2::{DataSourceInstanceSettings, PluginContext};

use crate::estats::{Client, Fetched, UpstreamError};
use crate::handlers::QueryFailure;
use crate::history::{HistoryError, HistoryRegistry};
use crate::poller::{Monitor, MonitorSettings};
use crate::settings::{Settings, Upstream as UpstreamSetting};
use crate::simulator::{Simulator, SimulatorConfig};
use crate::store::{PgBudget, SharedRegistry, Store};
use crate::target::{quote, Target};
use crate::upstream::{Fetch, Upstream};

/// A data source with no request for this long is shut down: Grafana never says that a data
/// source was deleted, and its pollers must not run forever.
const IDLE_INSTANCE: Duration = Duration::from_secs(24 * 3600);

/// How long building an instance may spend on files (`.edgerc`, the history file) before it
/// fails: a file on a hung network mount must not leave the data source's requests waiting.
const FILE_TIMEOUT: Duration = Duration::from_secs(10);

/// One data source's state. Its pollers end when the last handle of its [`Monitor`] goes
/// (the monitor's own guard), so dropping an `Instance` needs no code of its own.
pub struct Instance {
    pub uid: String,
    pub settings: Settings,
    pub client: Client,
    pub upstream: Arc<Upstream>,
    pub monitor: Monitor,
    /// Keeps the in-process simulator of a `simulate: true` data source alive.
    _simulator: Option<Simulator>,
}

impl Instance {
    /// Human description of where calls go, for health messages (never includes credentials).
    pub fn upstream_description(&self) -> String {
        match &self.settings.upstream {
            UpstreamSetting::Simulator => {
                format!("the built-in simulator ({})", self.client.host())
            }
            UpstreamSetting::Akamai { .. } => self.client.host().to_string(),
        }
    }
}

/// The identity a data source's pollers, history rows and metrics are keyed by: its uid, or
/// its numeric id for the rare request (old provisioning) without one.
pub fn data_source_uid(ds: &DataSourceInstanceSettings) -> String {
    if ds.uid.is_empty() {
        format!("id-{}", ds.id)
    } else {
        ds.uid.clone()
    }
}

type Built = Result<Arc<Instance>, QueryFailure>;

struct Entry {
    fingerprint: u64,
    /// Filled once by the first request of these settings; later requests of the same data
    /// source wait on it, requests of other data sources never do.
    built: Arc<tokio::sync::OnceCell<Built>>,
    last_used: Instant,
}

/// All data source instances of this plugin process. The map's lock is held only to look up
/// or replace an entry, never while an instance is built (which reads files and may start a
/// simulator).
pub struct Instances {
    entries: parking_lot::Mutex<HashMap<String, Entry>>,
    histories: Arc<HistoryRegistry>,
    shared: Arc<SharedRegistry>,
}

fn fingerprint(ds: &DataSourceInstanceSettings) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ds.last_updated_ms.hash(&mut h);
    ds.json_data.hash(&mut h);
    let mut secure: Vec<_> = ds.decrypted_secure_json_data.iter().collect();
    secure.sort();
    secure.hash(&mut h);
    h.finish()
}

impl Default for Instances {
    fn default() -> Self {
        Instances {
            entries: Default::default(),
            histories: Arc::new(HistoryRegistry::new()),
            shared: Arc::new(SharedRegistry::new()),
        }
    }
}

/// Runs blocking file work on the blocking pool, giving up after [`FILE_TIMEOUT`] (the thread
/// is left to finish on its own; nothing waits for it).
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T, QueryFailure> + Send + 'static,
) -> Result<T, QueryFailure> {
    match tokio::time::timeout(FILE_TIMEOUT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(QueryFailure::new(
            500,
            format!("{what} failed unexpectedly; the plugin logged it"),
        )),
        Err(_) => Err(QueryFailure::new(
            500,
            format!(
                "{what} took longer than {} s: check that the file is on a local, responsive file system",
                FILE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// A history error as the health check shows it: naming the setting, the path quoted short.
fn history_failure(path: Option<&Path>, e: HistoryError) -> QueryFailure {
    let shown = path.map_or_else(
        || "in memory".to_string(),
        |p| quote(&p.display().to_string()),
    );
    let detail = match e {
        HistoryError::Open { reason, .. } => format!("cannot open the history file {shown}: {reason}"),
        HistoryError::Corrupt { detail, .. } => format!(
            "the history file {shown} is damaged ({}): move it aside or delete it and the plugin starts a new one, or restore it from a backup",
            detail.chars().take(200).collect::<String>()
        ),
        other => other.to_string(),
    };
    QueryFailure::new(500, format!("jsonData.historyPath: {detail}"))
}

/// Refuses a history path that is something other than a file (a FIFO would block SQLite's
/// first read for ever); a path that does not exist yet is fine, SQLite creates it.
fn check_history_path(path: &Path) -> Result<(), QueryFailure> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(history_failure(
            Some(path),
            HistoryError::Open {
                path: path.to_path_buf(),
                reason: "it is not a regular file (a directory, device or pipe): historyPath names a file, e.g. /var/lib/grafana/estats-history.db".into(),
            },
        )),
        _ => Ok(()),
    }
}

/// The signed client as the upstream layer sees it, counting every call in the metrics.
struct MeteredClient {
    client: Client,
    uid: String,
}

impl Fetch for MeteredClient {
    fn estats<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Fetched, UpstreamError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.client.estats(target).await;
            let outcome = match &result {
                Ok(f) if f.response.is_failure() => "execution_failed",
                Ok(_) => "ok",
                Err(e) => e.kind().as_str(),
            };
            crate::metrics::record_upstream_call(
                &self.uid,
                &target.key(),
                "estats",
                outcome,
                started.elapsed(),
            );
            result
        })
    }
}

impl Instances {
    /// Every live instance, for process-wide views such as metrics.
    pub async fn all(&self) -> Vec<Arc<Instance>> {
        self.entries
            .lock()
            .values()
            .filter_map(|e| e.built.get().and_then(|b| b.as_ref().ok().cloned()))
            .collect()
    }

    /// The instance for the data source of a request, built or rebuilt as needed.
    pub async fn get(&self, ctx: Option<&PluginContext>) -> Built {
        let ds = ctx
            .and_then(|c| c.data_source_instance_settings.as_ref())
            .ok_or_else(|| QueryFailure::new(400, "the request carries no data source settings; it must come from a data source of this plugin"))?;
        let uid = data_source_uid(ds);
        let fp = fingerprint(ds);
        let (cell, expired) = {
            let mut entries = self.entries.lock();
            let mut expired = Vec::new();
            entries.retain(|key, e| {
                let keep = *key == uid || e.last_used.elapsed() < IDLE_INSTANCE;
                if !keep {
                    expired.push(key.clone());
                }
                keep
            });
            let now = Instant::now();
            let entry = entries.entry(uid.clone()).or_insert_with(|| Entry {
                fingerprint: fp,
                built: Default::default(),
                last_used: now,
            });
            if entry.fingerprint != fp {
                // Replacing the entry drops the old instance's handle; its pollers end with
                // its last user.
                *entry = Entry {
                    fingerprint: fp,
                    built: Default::default(),
                    last_used: now,
                };
            }
            entry.last_used = now;
            (entry.built.clone(), expired)
        };
        if !expired.is_empty() {
            self.histories
                .retain_memory(|u| !expired.iter().any(|gone| gone == u));
        }
        cell.get_or_init(|| async {
            let built = self.build(&uid, ds).await.map(Arc::new);
            if let Ok(instance) = &built {
                instance.monitor.start_watch();
            }
            built
        })
        .await
        .clone()
    }

    async fn build(
        &self,
        uid: &str,
        ds: &DataSourceInstanceSettings,
    ) -> Result<Instance, QueryFailure> {
        let (json, secure) = (ds.json_data.clone(), ds.decrypted_secure_json_data.clone());
        let settings = blocking(
            "reading the data source settings (jsonData.edgercPath)",
            move || {
                Settings::from_grafana(&json, &secure, &crate::edgerc::process_env)
                    .map_err(|e| QueryFailure::new(400, format!("data source settings: {e}")))
            },
        )
        .await?;
        let (client, simulator) = connect(&settings).await?;
        let metered = MeteredClient {
            client: client.clone(),
            uid: uid.to_string(),
        };
        // The shared store does not connect here: a database that is down at start fails the
        // queries and the health check with its own message, and heals when it returns.
        let (store, shared_budget) = match &settings.history_database {
            Some(db) => {
                let pg = self.shared.get(db).map_err(|e| {
                    QueryFailure::new(502, format!("data source settings: {}", e.message))
                })?;
                let budget: Arc<dyn crate::upstream::SharedBudget> = Arc::new(PgBudget::new(
                    pg.clone(),
                    client.host(),
                    &budget_identity(&settings),
                    settings.rate_limit_per_minute,
                ));
                (Store::Shared(pg), Some(budget))
            }
            None => {
                let histories = self.histories.clone();
                let owner = uid.to_string();
                let path: Option<std::path::PathBuf> = settings.history_path.clone();
                let history = blocking(
                    "opening the history file (jsonData.historyPath)",
                    move || {
                        if let Some(p) = &path {
                            check_history_path(p)?;
                        }
                        histories
                            .get(&owner, path.as_deref())
                            .map_err(|e| history_failure(path.as_deref(), e))
                    },
                )
                .await?;
                (Store::Embedded(history), None)
            }
        };
        let upstream = Arc::new(Upstream::with_shared_budget(
            Arc::new(metered),
            crate::upstream::UpstreamConfig::new(settings.rate_limit_per_minute),
            shared_budget,
        ));
        let mut monitor_settings = MonitorSettings::new(
            settings.poll_interval,
            settings.retention,
            settings.watch.clone(),
        );
        monitor_settings.first_sample_wait = settings.request_timeout;
        let monitor = Monitor::new(uid.to_string(), monitor_settings, upstream.clone(), store);
        tracing::info!(datasource = uid, upstream = %client.host(), watch = settings.watch.len(), "data source instance ready");
        Ok(Instance {
            uid: uid.to_string(),
            settings,
            client,
            upstream,
            monitor,
            _simulator: simulator,
        })
    }
}

/// What identifies the API client whose budget replicas share: its client token (only a digest
/// of it, with the host, is stored). The simulator has none: its host (a port of its own per
/// process) keeps each process's budget apart.
fn budget_identity(settings: &Settings) -> String {
    match &settings.upstream {
        UpstreamSetting::Akamai { credentials, .. } => {
            credentials.client_token.expose().to_string()
        }
        UpstreamSetting::Simulator => String::new(),
    }
}

/// The signed client for checked settings, and the in-process simulator it talks to when the
/// settings say `simulate` (kept alive by the caller for as long as the client is used).
pub async fn connect(settings: &Settings) -> Result<(Client, Option<Simulator>), QueryFailure> {
    let (base_url, credentials, simulator) = match &settings.upstream {
        UpstreamSetting::Akamai {
            base_url,
            credentials,
        } => (base_url.clone(), credentials.clone(), None),
        UpstreamSetting::Simulator => {
            let config = SimulatorConfig::default();
            let credentials = config.credentials.clone();
            let sim = Simulator::start(([127, 0, 0, 1], 0).into(), config)
                .await
                .map_err(|e| {
                    QueryFailure::new(500, format!("the built-in simulator could not start: {e}"))
                })?;
            (sim.base_url(), credentials, Some(sim))
        }
    };
    let client = Client::new(
        base_url,
        credentials,
        settings.account_switch_key.clone(),
        settings.request_timeout,
    )
    .map_err(|e| QueryFailure::new(400, format!("data source settings: {e}")))?;
    Ok((client, simulator))
}
