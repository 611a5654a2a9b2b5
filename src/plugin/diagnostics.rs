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
        let started = Instant::now();
        let probe = instance.client.edge_locations().await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let history = match &instance.settings.history_path {
            Some(p) => quote(&p.display().to_string()),
            None => "in memory".to_string(),
        };
        let target = instance.upstream_description();
        Ok(match probe {
            Ok((locations, rate)) => health(
                HealthStatus::Ok,
                format!(
                    "Connected to {target}: credentials, Edge Diagnostics access and clock are fine ({} edge locations, {latency_ms} ms). Watching {} target(s); history {history}.",
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
                    "history": history,
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
