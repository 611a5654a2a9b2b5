//! Per-data-source state: checked settings, the signed client, the shared upstream budget, the
//! pollers and the history handle. Built on the first request of a data source and rebuilt when
//! Grafana sends changed settings; history survives rebuilds because it lives in the store,
//! keyed by data source uid.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use grafana_plugin_sdk::pluginv2::PluginContext;

use crate::estats::{Client, Fetched, UpstreamError};
use crate::handlers::QueryFailure;
use crate::history::HistoryRegistry;
use crate::poller::{Monitor, MonitorSettings};
use crate::settings::{Settings, Upstream as UpstreamSetting};
use crate::simulator::{Simulator, SimulatorConfig};
use crate::target::Target;
use crate::upstream::{Fetch, Upstream};

/// A data source with no request for this long is shut down: Grafana never says that a data
/// source was deleted, and its pollers must not run forever.
const IDLE_INSTANCE: Duration = Duration::from_secs(24 * 3600);

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

impl Drop for Instance {
    fn drop(&mut self) {
        self.monitor.shutdown();
    }
}

struct Entry {
    fingerprint: u64,
    built: Result<Arc<Instance>, QueryFailure>,
    last_used: Instant,
}

/// All data source instances of this plugin process.
pub struct Instances {
    entries: tokio::sync::Mutex<HashMap<String, Entry>>,
    histories: HistoryRegistry,
}

fn fingerprint(ds: &grafana_plugin_sdk::pluginv2::DataSourceInstanceSettings) -> u64 {
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
            histories: HistoryRegistry::new(),
        }
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
            .await
            .values()
            .filter_map(|e| e.built.as_ref().ok().cloned())
            .collect()
    }

    /// The instance for the data source of a request, built or rebuilt as needed.
    pub async fn get(&self, ctx: Option<&PluginContext>) -> Result<Arc<Instance>, QueryFailure> {
        let ds = ctx
            .and_then(|c| c.data_source_instance_settings.as_ref())
            .ok_or_else(|| QueryFailure::new(400, "the request carries no data source settings; it must come from a data source of this plugin"))?;
        let uid = if ds.uid.is_empty() {
            format!("id-{}", ds.id)
        } else {
            ds.uid.clone()
        };
        let fp = fingerprint(ds);
        let mut entries = self.entries.lock().await;
        entries.retain(|key, e| *key == uid || e.last_used.elapsed() < IDLE_INSTANCE);
        if let Some(entry) = entries.get_mut(&uid) {
            if entry.fingerprint == fp {
                entry.last_used = Instant::now();
                return entry.built.clone();
            }
        }
        // Drop the old instance (ending its pollers) before the new one opens the same history.
        entries.remove(&uid);
        let built = self.build(&uid, ds).await.map(Arc::new);
        if let Ok(instance) = &built {
            instance.monitor.start_watch();
        }
        entries.insert(
            uid,
            Entry {
                fingerprint: fp,
                built: built.clone(),
                last_used: Instant::now(),
            },
        );
        built
    }

    async fn build(
        &self,
        uid: &str,
        ds: &grafana_plugin_sdk::pluginv2::DataSourceInstanceSettings,
    ) -> Result<Instance, QueryFailure> {
        let env = |name: &str| std::env::var(name).ok();
        let settings = Settings::from_grafana(&ds.json_data, &ds.decrypted_secure_json_data, &env)
            .map_err(|e| QueryFailure::new(400, format!("data source settings: {e}")))?;
        let (client, simulator) = connect(&settings).await?;
        let metered = MeteredClient {
            client: client.clone(),
            uid: uid.to_string(),
        };
        let upstream = Arc::new(Upstream::new(
            Arc::new(metered),
            settings.rate_limit_per_minute,
        ));
        let history = self
            .histories
            .get(uid, settings.history_path.as_deref())
            .map_err(|e| QueryFailure::new(500, format!("jsonData.historyPath: {e}")))?;
        let monitor = Monitor::new(
            uid.to_string(),
            MonitorSettings::new(
                settings.poll_interval,
                settings.retention,
                settings.watch.clone(),
            ),
            upstream.clone(),
            history,
        );
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
