//! `Data.QueryData`: every query parsed and answered on its own, concurrently; one bad query
//! (or even a panicking handler) fails only its own refId.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use grafana_plugin_sdk::pluginv2::{
    data_server::Data, DataQuery, DataResponse, QueryDataRequest, QueryDataResponse,
};
use tonic::{Request, Response, Status};

use super::instance::{data_source_uid, Instance, Instances};
use crate::frame::Frame;
use crate::handlers::{alerting, distribution, events, summary, timeseries, top_ips, QueryFailure};
use crate::query::{Query, QueryContext, QueryEnv, QueryError, QueryType};

pub struct DataService {
    pub instances: Arc<Instances>,
}

fn failure_response(f: &QueryFailure) -> DataResponse {
    DataResponse {
        frames: Vec::new(),
        error: f.message.clone(),
        json_meta: Vec::new(),
        status: i32::from(f.status),
    }
}

/// Parses one query of a request against its data source's settings (default delivery, and
/// the watch list that `"*"` stands for), when they could be read.
fn parse(dq: &DataQuery, env: QueryEnv<'_>) -> Result<Query, QueryError> {
    let range = dq.time_range.unwrap_or_default();
    let ctx = QueryContext {
        from_ms: range.from_epoch_ms,
        to_ms: range.to_epoch_ms,
        interval_ms: dq.interval_ms,
        max_data_points: dq.max_data_points,
    };
    Query::parse_with(&dq.ref_id, &dq.json, &dq.query_type, ctx, env)
}

/// The label metrics count a query under, from its one parse.
fn type_label(parsed: &Result<Query, QueryError>) -> &'static str {
    match parsed {
        Ok(query) => query.query_type.as_str(),
        Err(e) => e.type_label(),
    }
}

/// Answers one query with frames, never with a panic; `for_alert`: shaped for an alert rule.
pub async fn answer(instance: &Instance, dq: &DataQuery, for_alert: bool) -> DataResponse {
    let env = QueryEnv {
        default_delivery: instance.settings.default_delivery,
        watch: &instance.settings.watch,
    };
    let parsed = parse(dq, env);
    let label = type_label(&parsed);
    let response = match parsed {
        Ok(query) => answer_query(instance, &query, for_alert).await,
        Err(e) => failure_response(&e.into()),
    };
    crate::metrics::record_query(
        &instance.uid,
        label,
        crate::metrics::query_outcome(response.status),
    );
    response
}

async fn answer_query(instance: &Instance, query: &Query, for_alert: bool) -> DataResponse {
    let result = AssertUnwindSafe(frames_for(instance, query, for_alert))
        .catch_unwind()
        .await;
    let frames = match result {
        Ok(Ok(frames)) => frames,
        Ok(Err(failure)) => return failure_response(&failure),
        Err(_) => {
            tracing::error!(ref_id = %query.ref_id, "query handler panicked");
            return failure_response(&QueryFailure::new(
                500,
                "internal error while answering this query; the plugin logged it",
            ));
        }
    };
    let mut encoded = Vec::with_capacity(frames.len());
    for frame in &frames {
        match frame.encode(&query.ref_id) {
            Ok(bytes) => encoded.push(bytes),
            Err(e) => return failure_response(&QueryFailure::new(500, e.to_string())),
        }
    }
    DataResponse {
        frames: encoded,
        error: String::new(),
        json_meta: Vec::new(),
        status: 200,
    }
}

async fn frames_for(
    instance: &Instance,
    query: &Query,
    for_alert: bool,
) -> Result<Vec<Frame>, QueryFailure> {
    let mut frames = if query.query_type == QueryType::Events {
        // One frame of every target's events, in the order asked.
        events::answer(&instance.monitor, query, query.targets.targets()).await?
    } else if query.targets.is_set() {
        super::fleet::frames(instance, query).await?
    } else {
        frames_of_target(instance, query).await?
    };
    super::fleet::note_stretching(instance, query, &mut frames);
    if for_alert {
        return alerting::for_alerting(query, frames);
    }
    if query.live {
        super::stream::mark_live(&instance.uid, query, &mut frames);
    }
    Ok(frames)
}

/// The frames of a query for one target (a single-target query, or one target of a set).
pub(super) async fn frames_of_target(
    instance: &Instance,
    query: &Query,
) -> Result<Vec<Frame>, QueryFailure> {
    Ok(match query.query_type {
        QueryType::Timeseries if !query.live => {
            let wanted = timeseries::wanted(query);
            let polls = instance
                .monitor
                .polls(&query.target, query.from, query.to, wanted)
                .await
                .map_err(|e| QueryFailure::new(500, format!("reading history failed: {e}")))?;
            vec![timeseries::frame_of_polls(query, &polls)]
        }
        QueryType::Timeseries => {
            let points = instance
                .monitor
                .range(&query.target, query.from, query.to)
                .await
                .map_err(|e| QueryFailure::new(500, format!("reading history failed: {e}")))?;
            vec![super::stream::live_timeseries_frame(instance, query, &points).await]
        }
        QueryType::Distribution | QueryType::Summary | QueryType::TopIps => {
            let latest = instance.monitor.latest(&query.target).await?;
            let stale = latest.stale.as_deref();
            match query.query_type {
                QueryType::Distribution => vec![distribution::frame(query, &latest.sample, stale)],
                QueryType::Summary => vec![summary::frame(query, &latest.sample, stale)],
                _ => vec![top_ips::frame(query, &latest.sample, stale)],
            }
        }
        QueryType::Events => {
            events::answer(
                &instance.monitor,
                query,
                std::slice::from_ref(&query.target),
            )
            .await?
        }
    })
}

#[tonic::async_trait]
impl Data for DataService {
    async fn query_data(
        &self,
        request: Request<QueryDataRequest>,
    ) -> Result<Response<QueryDataResponse>, Status> {
        let request = request.into_inner();
        let mut responses = HashMap::with_capacity(request.queries.len());
        let for_alert = alerting::is_alert_request(&request.headers);
        match self.instances.get(request.plugin_context.as_ref()).await {
            Err(failure) => {
                let uid = request
                    .plugin_context
                    .as_ref()
                    .and_then(|c| c.data_source_instance_settings.as_ref())
                    .map(data_source_uid)
                    .unwrap_or_default();
                for q in &request.queries {
                    crate::metrics::record_query(
                        &uid,
                        type_label(&parse(q, QueryEnv::default())),
                        crate::metrics::query_outcome(i32::from(failure.status)),
                    );
                    responses.insert(q.ref_id.clone(), failure_response(&failure));
                }
            }
            Ok(instance) => {
                let answers = futures::future::join_all(
                    request
                        .queries
                        .iter()
                        .map(|q| answer(&instance, q, for_alert)),
                )
                .await;
                for (q, answer) in request.queries.iter().zip(answers) {
                    if answer.status >= 400 {
                        tracing::warn!(datasource = %instance.uid, ref_id = %q.ref_id, status = answer.status, error = %answer.error, "query failed");
                    }
                    responses.insert(q.ref_id.clone(), answer);
                }
            }
        }
        Ok(Response::new(QueryDataResponse { responses }))
    }
}
