//! `Resource.CallResource`: JSON endpoints for the frontend's editors and variables.
//!
//! - `GET targets`: every known target with its poller state (and the interval it is polled
//!   at), the budget and the polling schedule.
//! - `GET status-codes?target=KEY`: status codes seen for a target (KEY as in `targets`, or a
//!   bare CP code or URL).

use std::collections::HashMap;
use std::sync::Arc;

use grafana_plugin_sdk::pluginv2::resource_server::Resource;
use grafana_plugin_sdk::pluginv2::{CallResourceRequest, CallResourceResponse, StringList};
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::instance::{Instance, Instances};
use crate::target::{quote, Subject, Target};

pub struct ResourceService {
    pub instances: Arc<Instances>,
}

fn json_response(code: u16, body: Value) -> CallResourceResponse {
    CallResourceResponse {
        code: i32::from(code),
        headers: HashMap::from([(
            "Content-Type".to_string(),
            StringList {
                values: vec!["application/json".to_string()],
            },
        )]),
        body: body.to_string().into_bytes().into(),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Reads a target the way users and variables spell it: a key, a CP code or a URL.
fn parse_target(raw: &str, instance: &Instance) -> Result<Target, String> {
    let raw = raw.trim();
    if let Ok(t) = Target::from_key(raw) {
        return Ok(t);
    }
    let delivery = instance.settings.default_delivery;
    if let Ok(code) = Target::parse_cp_code(raw) {
        return Ok(Target::cp_code(code, delivery));
    }
    Target::parse_url(raw)
        .map(|u| Target { subject: Subject::Url(u), delivery })
        .map_err(|_| format!("target {} is not a target key (cp:1209788/STANDARD_TLS), a CP code or an absolute URL", quote(raw)))
}

pub async fn handle(instance: &Instance, request: &CallResourceRequest) -> CallResourceResponse {
    if !request.method.eq_ignore_ascii_case("GET") {
        return json_response(
            405,
            json!({"error": format!("{} is not supported: resources are read with GET", quote(&request.method))}),
        );
    }
    let path = request.path.trim_matches('/');
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        "targets" => json_response(
            200,
            json!({
                "targets": instance.monitor.targets(),
                "budget": instance.upstream.budget(),
                "schedule": instance.monitor.schedule(),
            }),
        ),
        "status-codes" => {
            let Some(raw) = query_param(&request.url, "target") else {
                return json_response(
                    400,
                    json!({"error": "status-codes needs ?target=<key, CP code or URL>"}),
                );
            };
            let target = match parse_target(&raw, instance) {
                Ok(t) => t,
                Err(message) => return json_response(400, json!({"error": message})),
            };
            match instance.monitor.status_codes(&target).await {
                Ok(codes) => {
                    json_response(200, json!({"target": target.key(), "statusCodes": codes}))
                }
                Err(e) => json_response(
                    500,
                    json!({"error": format!("reading history failed: {e}")}),
                ),
            }
        }
        other => json_response(
            404,
            json!({"error": format!("no resource {}; known: targets, status-codes", quote(other))}),
        ),
    }
}

#[tonic::async_trait]
impl Resource for ResourceService {
    type CallResourceStream = ReceiverStream<Result<CallResourceResponse, Status>>;

    async fn call_resource(
        &self,
        request: Request<CallResourceRequest>,
    ) -> Result<Response<Self::CallResourceStream>, Status> {
        let request = request.into_inner();
        let response = match self.instances.get(request.plugin_context.as_ref()).await {
            Ok(instance) => handle(&instance, &request).await,
            Err(failure) => json_response(failure.status, json!({"error": failure.message})),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        // The receiver is returned below, so this send cannot fail.
        let _ = tx.send(Ok(response)).await;
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
