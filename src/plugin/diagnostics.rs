//! `Diagnostics.CheckHealth` (a signed probe of `edge-locations`, which proves host,
//! credentials, API grant and clock at once) and `Diagnostics.CollectMetrics`.

use std::sync::Arc;
use std::time::Instant;

use grafana_plugin_sdk::pluginv2::check_health_response::HealthStatus;
use grafana_plugin_sdk::pluginv2::collect_metrics_response::Payload;
use grafana_plugin_sdk::pluginv2::diagnostics_server::Diagnostics;
use grafana_plugin_sdk::pluginv2::{
    CheckHealthRequest, CheckHealthResponse, CollectMetricsRequest, CollectMetricsResponse,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use super::instance::{Instance, Instances};
use crate::metrics::{DataSourceGauges, TargetGauges};
use crate::target::{quote, Target};

/// How long the health check waits for the shared history database.
const STORE_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

pub struct DiagnosticsService {
    pub instances: Arc<Instances>,
}

fn health(
    status: HealthStatus,
    message: String,
    details: serde_json::Value,
) -> Response<CheckHealthResponse> {
    Response::new(CheckHealthResponse {
        status: status as i32,
        message,
        json_details: details.to_string().into_bytes(),
    })
}

/// The gauges of one instance, read from memory (and the history file's size on disk).
fn gauges_of(instance: &Instance) -> DataSourceGauges {
    let monitor = &instance.monitor;
    let targets = monitor
        .targets()
        .into_iter()
        .map(|t| TargetGauges {
            latest: Target::from_key(&t.key)
                .ok()
                .and_then(|target| monitor.latest_cached(&target)),
            key: t.key,
            polling: t.polling,
            last_success: t.last_success,
            last_error_at: t.last_error_at,
            samples: t.samples,
        })
        .collect();
    DataSourceGauges {
        uid: instance.uid.clone(),
        poll_interval: monitor.settings().poll_interval,
        budget: instance.upstream.budget(),
        history_bytes: monitor.store().file_size(),
        targets,
        shared: monitor.shared_state(),
    }
}

#[tonic::async_trait]
impl Diagnostics for DiagnosticsService {
    async fn check_health(
        &self,
        request: Request<CheckHealthRequest>,
    ) -> Result<Response<CheckHealthResponse>, Status> {
        let request = request.into_inner();
        let instance = match self.instances.get(request.plugin_context.as_ref()).await {
            Ok(i) => i,
            Err(failure) => {
                return Ok(health(
                    HealthStatus::Error,
                    failure.message,
                    json!({"stage": "settings"}),
                ));
            }
        };
        // The shared store first: without it no replica answers alike, whatever the probe says.
        let mut store_details = serde_json::Value::Null;
        if let Some(store) = instance.monitor.store().shared() {
            let db = store.database();
            let checked = match tokio::time::timeout(STORE_CHECK, store.check()).await {
                Ok(r) => r.map_err(|e| e.message),
                Err(_) => Err(format!(
                    "the history database {} (PostgreSQL) did not answer within {} s",
                    db.describe(),
                    STORE_CHECK.as_secs()
                )),
            };
            let replicas = match checked {
                Ok(()) => store
                    .replicas(
                        &instance.uid,
                        crate::poller::lease_period(instance.settings.poll_interval),
                    )
                    .await
                    .map_err(|e| e.message),
                Err(e) => Err(e),
            };
            let replicas = match replicas {
                Ok(r) => r,
                Err(message) => {
                    return Ok(health(
                        HealthStatus::Error,
                        format!("History database failed: {message}. Check jsonData.historyDatabase, secureJsonData.historyDatabasePassword and that this Grafana server may connect to it"),
                        json!({
                            "stage": "store",
                            "store": {"kind": "postgres", "host": db.host, "port": db.port, "database": db.database, "schema": db.schema},
                            "errorKind": "store",
                        }),
                    ));
                }
            };
            let shared = instance.monitor.shared_state().unwrap_or_default();
            store_details = json!({
                "kind": "postgres",
                "host": db.host,
                "port": db.port,
                "database": db.database,
                "schema": db.schema,
                "replica": store.replica(),
                "replicas": replicas.iter().map(|(id, owned)| json!({"id": id, "owned": owned})).collect::<Vec<_>>(),
                "ownedHere": shared.owned,
                "state": shared,
            });
        }
        let started = Instant::now();
        let probe = instance.client.edge_locations().await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let history = match (
            &instance.settings.history_database,
            &instance.settings.history_path,
        ) {
            (Some(db), _) => format!(
                "in PostgreSQL {} schema {} ({} replica(s) seen, this one polls {} target(s))",
                db.describe(),
                db.schema,
                store_details["replicas"].as_array().map_or(0, Vec::len),
                store_details["ownedHere"].as_u64().unwrap_or(0)
            ),
            (None, Some(p)) => quote(&p.display().to_string()),
            (None, None) => "in memory".to_string(),
        };
        let target = instance.upstream_description();
        let schedule = instance.monitor.schedule();
        // Stretching is the plugin keeping within the budget, not a fault: the status stays OK.
        let stretching = match schedule.notice() {
            Some(notice) => format!(" Pollers are {notice}: add budget (rateLimitPerMinute), raise pollIntervalSeconds or watch fewer targets to poll at the set interval."),
            None => String::new(),
        };
        Ok(match probe {
            Ok((locations, rate)) => health(
                HealthStatus::Ok,
                format!(
                    "Connected to {target}: credentials, Edge Diagnostics access and clock are fine ({} edge locations, {latency_ms} ms). Watching {} target(s); history {history}.{stretching}",
                    locations.edge_locations.len(),
                    instance.settings.watch.len()
                ),
                json!({
                    "stage": "ok",
                    "host": instance.client.host(),
                    "latencyMs": latency_ms,
                    "edgeLocations": locations.edge_locations.len(),
                    "rateLimit": {"limit": rate.limit, "remaining": rate.remaining},
                    "watch": instance.settings.watch.iter().map(|t| t.key()).collect::<Vec<_>>(),
                    "pollIntervalSeconds": instance.settings.poll_interval.as_secs(),
                    "polling": schedule,
                    "history": history,
                    "store": store_details,
                    "budget": instance.upstream.budget(),
                }),
            ),
            Err(e) => health(
                HealthStatus::Error,
                format!("Health check against {target} failed: {e}"),
                json!({
                    "stage": "probe",
                    "host": instance.client.host(),
                    "errorKind": e.kind().as_str(),
                    "status": e.grafana_status(),
                    "latencyMs": latency_ms,
                }),
            ),
        })
    }

    /// The whole process's metrics, whichever data source Grafana names in the request: Grafana
    /// scrapes a plugin, not a data source, and every series carries its `datasource` label.
    async fn collect_metrics(
        &self,
        _request: Request<CollectMetricsRequest>,
    ) -> Result<Response<CollectMetricsResponse>, Status> {
        let gauges: Vec<DataSourceGauges> = self
            .instances
            .all()
            .await
            .iter()
            .map(|i| gauges_of(i))
            .collect();
        Ok(Response::new(CollectMetricsResponse {
            metrics: Some(Payload {
                prometheus: crate::metrics::render(&gauges).into_bytes(),
            }),
        }))
    }
}
