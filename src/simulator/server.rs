//! Request handling: routing, the gateway checks, faults, body validation and answers.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, DATE, LOCATION};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::auth::{self, Refusal};
use super::faults::{Endpoint, Fault};
use super::{data, Shared};
use crate::estats::client::{EDGE_LOCATIONS_PATH, ESTATS_PATH};
use crate::estats::model::EstatsRequest;
use crate::target::{Delivery, Subject, Target};

const FAULTS_PATH: &str = "/_simulator/faults";
const STATS_PATH: &str = "/_simulator/stats";
const MAX_REQUEST_BODY: usize = 1 << 20;
const PROBLEM_JSON: &str = "application/problem+json";

static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_NEXT: HeaderName = HeaderName::from_static("x-ratelimit-next");
static AKAMAI_NEXT: HeaderName = HeaderName::from_static("akamai-ratelimit-next");

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let response = match path.as_str() {
        ESTATS_PATH if parts.method == Method::POST => {
            signed(&shared, Endpoint::Estats, parts, body).await
        }
        EDGE_LOCATIONS_PATH if parts.method == Method::GET => {
            signed(&shared, Endpoint::EdgeLocations, parts, body).await
        }
        ESTATS_PATH => method_not_allowed("POST", &path),
        EDGE_LOCATIONS_PATH => method_not_allowed("GET", &path),
        FAULTS_PATH | STATS_PATH => return control(&shared, peer, &parts.method, &path, body).await,
        _ => problem(
            StatusCode::NOT_FOUND,
            "resource.not.found",
            "Resource not found.",
            Some(&format!(
                "The requested resource couldn't be found: {path}. This API serves {ESTATS_PATH} and {EDGE_LOCATIONS_PATH}."
            )),
            Vec::new(),
        ),
    };
    with_gateway_headers(response, &shared, Utc::now())
}

/// Every API answer carries the rate-limit state and a Date, as Akamai's gateway does.
fn with_gateway_headers(mut response: Response, shared: &Shared, now: DateTime<Utc>) -> Response {
    let (limit, remaining) = {
        let mut gate = shared.gate();
        (gate.window.limit(), gate.window.remaining(Instant::now()))
    };
    let headers = response.headers_mut();
    if !headers.contains_key(&X_LIMIT) {
        headers.insert(X_LIMIT.clone(), HeaderValue::from(limit));
    }
    if !headers.contains_key(&X_REMAINING) {
        headers.insert(X_REMAINING.clone(), HeaderValue::from(remaining));
    }
    if !headers.contains_key(DATE) {
        headers.insert(DATE, http_date(now));
    }
    response
}

fn http_date(t: DateTime<Utc>) -> HeaderValue {
    HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .expect("an HTTP-date is a valid header value")
}

fn rfc3339_value(t: DateTime<Utc>) -> HeaderValue {
    HeaderValue::from_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .expect("an RFC 3339 instant is a valid header value")
}

fn problem(
    status: StatusCode,
    problem_type: &str,
    title: &str,
    detail: Option<&str>,
    errors: Vec<Value>,
) -> Response {
    let mut body = json!({"type": problem_type, "title": title, "status": status.as_u16()});
    if let Some(detail) = detail {
        body["detail"] = json!(detail);
    }
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    (status, [(CONTENT_TYPE, PROBLEM_JSON)], body.to_string()).into_response()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn method_not_allowed(allowed: &'static str, path: &str) -> Response {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method.not.allowed",
        "Method not allowed",
        Some(&format!("Use {allowed} for {path}.")),
        Vec::new(),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    response
}

/// A problem from the auth gateway, which names the called URL in `instance`.
fn gateway_problem(
    status: StatusCode,
    problem_type: &str,
    title: &str,
    detail: &str,
    instance: &str,
) -> Response {
    let mut body = json!({
        "type": problem_type,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if !instance.is_empty() {
        body["instance"] = json!(instance);
    }
    (status, [(CONTENT_TYPE, PROBLEM_JSON)], body.to_string()).into_response()
}

fn unauthorized(detail: &str, instance: &str) -> Response {
    gateway_problem(
        StatusCode::UNAUTHORIZED,
        "https://problems.luna.akamaiapis.net/-/pep-authn/deny",
        "Not authorized",
        detail,
        instance,
    )
}

fn invalid_timestamp(instance: &str) -> Response {
    gateway_problem(
        StatusCode::BAD_REQUEST,
        "https://problems.luna.akamaiapis.net/-/pep-authn/request-error",
        "Bad request",
        "Invalid timestamp",
        instance,
    )
}

fn rate_limited(limit: u32, now: DateTime<Utc>, next: Option<DateTime<Utc>>) -> Response {
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "requests.exceeded.error",
        "Too Many Requests",
        Some("You have exceeded total number of requests configured for this API."),
        Vec::new(),
    );
    let headers = response.headers_mut();
    headers.insert(X_LIMIT.clone(), HeaderValue::from(limit));
    headers.insert(X_REMAINING.clone(), HeaderValue::from(0u32));
    headers.insert(DATE, http_date(now));
    if let Some(next) = next {
        headers.insert(X_NEXT.clone(), rfc3339_value(next));
        headers.insert(AKAMAI_NEXT.clone(), rfc3339_value(next));
    }
    response
}

async fn signed(
    shared: &Shared,
    endpoint: Endpoint,
    parts: http::request::Parts,
    body: Body,
) -> Response {
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload.too.large",
                "Payload too large.",
                Some("The request body is larger than 1 MiB."),
                Vec::new(),
            )
        }
    };
    if let Some(delay) = shared.faults.take_inbound_delay(endpoint) {
        tokio::time::sleep(delay).await;
    }
    let now = Utc::now();
    let instance = auth::received_url(&parts)
        .map(|mut u| {
            u.set_query(None);
            u.to_string()
        })
        .unwrap_or_default();
    let config = &shared.config;
    let parsed = match auth::authenticate(
        &config.credentials,
        &parts,
        &body,
        now,
        config.max_clock_skew,
    ) {
        Ok(parsed) => parsed,
        Err(Refusal::Unauthorized(detail)) => return unauthorized(&detail, &instance),
        Err(Refusal::BadTimestamp) => return invalid_timestamp(&instance),
    };

    let instant = Instant::now();
    shared.arrivals().push(instant);
    let admitted = {
        let mut gate = shared.gate();
        if !gate.nonces.insert(&parsed.nonce, instant) {
            None
        } else {
            Some(gate.window.try_acquire(instant))
        }
    };
    let Some(admitted) = admitted else {
        return unauthorized(
            "The nonce was already used; sign every request afresh",
            &instance,
        );
    };

    let validated = (endpoint == Endpoint::Estats).then(|| validate(&body));
    let key = match &validated {
        Some(Ok(request)) => target_of(request).map(|t| t.key()),
        _ => None,
    };
    if endpoint == Endpoint::Estats {
        shared.count_call(key.clone());
    }

    if let Err(wait) = admitted {
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        return rate_limited(config.rate_limit_per_minute, now, Some(next));
    }

    let target_fault = key.as_deref().and_then(|k| shared.faults.for_target(k));
    match target_fault.or_else(|| shared.faults.take(endpoint)) {
        Some(Fault::Latency(delay)) => tokio::time::sleep(delay).await,
        Some(other) => return fault_response(shared, other, &body, &instance),
        None => {}
    }

    // `validated` is set exactly for eStats calls.
    match validated {
        None => json_response(StatusCode::OK, edge_locations_json()),
        Some(Ok(request)) => match serde_json::to_string(&data::generate(&request, Utc::now())) {
            Ok(text) => json_response(StatusCode::OK, text),
            Err(e) => internal_error(&format!("The answer could not be written: {e}.")),
        },
        Some(Err(invalid)) => invalid.response(),
    }
}

fn internal_error(detail: &str) -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal.server.error",
        "Internal server error.",
        Some(detail),
        Vec::new(),
    )
}

fn fault_response(shared: &Shared, fault: Fault, body: &Bytes, instance: &str) -> Response {
    let now = Utc::now();
    match fault {
        // Latency only delays; the caller sleeps and answers normally.
        Fault::Latency(_) => internal_error("A latency fault has no answer of its own."),
        Fault::Status(code) => status_fault(code, shared.config.rate_limit_per_minute, instance),
        Fault::MalformedJson => {
            let request = serde_json::from_slice::<EstatsRequest>(body).unwrap_or(EstatsRequest {
                cp_code: Some(0),
                url: None,
                delivery: None,
                error_type: None,
            });
            let mut bytes = serde_json::to_vec(&data::generate(&request, now)).unwrap_or_default();
            // Cut bytes, not a str: a URL in the echoed request may hold multi-byte characters.
            bytes.truncate(bytes.len() / 2);
            (StatusCode::OK, [(CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Fault::ExecutionFailure => {
            let request = serde_json::from_slice::<Value>(body).unwrap_or_else(|_| json!({}));
            let created = now - chrono::Duration::seconds(7);
            json_response(
                StatusCode::OK,
                json!({
                    "createdBy": "estats-simulator",
                    "createdTime": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "completedTime": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "executionStatus": "FAILURE",
                    "request": request,
                })
                .to_string(),
            )
        }
        Fault::RateLimited { next_in } => {
            let next = next_in.map(|d| now + chrono::Duration::from_std(d).unwrap_or_default());
            rate_limited(shared.config.rate_limit_per_minute, now, next)
        }
        Fault::ClockSkew => invalid_timestamp(instance),
        Fault::BadAnswer(bad) => {
            let request = serde_json::from_slice::<EstatsRequest>(body).unwrap_or(EstatsRequest {
                cp_code: Some(0),
                url: None,
                delivery: None,
                error_type: None,
            });
            let mut answer =
                serde_json::to_value(data::generate(&request, now)).unwrap_or(Value::Null);
            bad.apply(&mut answer);
            json_response(StatusCode::OK, answer.to_string())
        }
        Fault::Redirect { status, location } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
            match HeaderValue::from_str(&location) {
                Ok(location) => {
                    let mut response = status.into_response();
                    response.headers_mut().insert(LOCATION, location);
                    response
                }
                Err(_) => internal_error("The redirect location is not a valid header value."),
            }
        }
        // Taken before the gateway; never an answer of its own.
        Fault::InboundDelay(_) => internal_error("An inbound delay has no answer of its own."),
    }
}

fn status_fault(code: u16, limit: u32, instance: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        401 => unauthorized("Inactive client token", instance),
        403 => problem(
            status,
            "forbidden.request.error",
            "Forbidden request.",
            None,
            vec![json!({
                "type": "field.access.denied",
                "title": "Field access denied.",
                "detail": "You don't have access to the requested URL. Contact your Admin to request access.",
            })],
        ),
        429 => rate_limited(limit, Utc::now(), None),
        s => {
            let reason = status.canonical_reason().unwrap_or("Error");
            let problem_type = match s {
                500 => "internal.server.error",
                502 => "bad.gateway.error",
                503 => "service.unavailable.error",
                504 => "gateway.timeout.error",
                _ => "simulated.error",
            };
            problem(
                status,
                problem_type,
                &format!("{reason}."),
                Some("A fault injected into the eStats simulator."),
                Vec::new(),
            )
        }
    }
}

/// A body the schema rejects, with one sub-problem per offending member.
#[derive(Debug)]
pub(crate) struct InvalidBody {
    details: Vec<String>,
    errors: Vec<Value>,
}

impl InvalidBody {
    fn add(&mut self, detail: String, problem_type: &str, title: &str, field: Option<&str>) {
        let mut error = json!({"type": problem_type, "title": title});
        if let Some(field) = field {
            error["requestField"] = json!(field);
        }
        self.details.push(detail);
        self.errors.push(error);
    }

    fn response(self) -> Response {
        problem(
            StatusCode::BAD_REQUEST,
            "bad.request.error",
            "Incorrect request.",
            Some(&self.details.join(" ")),
            self.errors,
        )
    }
}

/// Checks a request body against `estatsPostRequest.yaml`.
pub(crate) fn validate(body: &[u8]) -> Result<EstatsRequest, InvalidBody> {
    let mut invalid = InvalidBody {
        details: Vec::new(),
        errors: Vec::new(),
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            invalid.add(
                format!(
                    "The request body is not valid JSON (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
                "json.invalid",
                "Invalid JSON.",
                None,
            );
            return Err(invalid);
        }
    };
    let Some(object) = value.as_object() else {
        invalid.add(
            "The request body must be a JSON object.".into(),
            "json.invalid",
            "Invalid JSON.",
            None,
        );
        return Err(invalid);
    };
    for key in object.keys() {
        if !["cpCode", "url", "delivery", "errorType"].contains(&key.as_str()) {
            invalid.add(
                format!("Unknown member `{key}`: use cpCode or url, and optionally delivery and errorType."),
                "field.unknown",
                "Unknown field.",
                Some(key),
            );
        }
    }
    let cp_code = match object.get("cpCode") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                invalid.add(
                    format!("`cpCode` must be a non-negative integer, got {v}."),
                    "field.invalid",
                    "Invalid value.",
                    Some("cpCode"),
                );
                None
            }
        },
    };
    let url = match object.get("url") {
        None => None,
        Some(v) => match v.as_str().filter(|u| is_absolute_url(u)) {
            Some(u) => Some(u.to_string()),
            None => {
                invalid.add(
                    format!("`url` must be a fully qualified URL such as https://www.example.com/, got {v}."),
                    "field.invalid",
                    "Invalid value.",
                    Some("url"),
                );
                None
            }
        },
    };
    match (object.contains_key("cpCode"), object.contains_key("url")) {
        (true, true) => {
            invalid
                .details
                .push("Provide only one of these members, either `cpCode` or `url`.".into());
            for field in ["cpCode", "url"] {
                invalid.errors.push(json!({"type": "field.conflict", "title": "Conflicting values.", "requestField": field}));
            }
        }
        (false, false) => invalid.add(
            "Provide one of these members, either `cpCode` or `url`.".into(),
            "field.required",
            "Missing value.",
            None,
        ),
        _ => {}
    }
    let mut enumerated = |field: &str, allowed: [&str; 2]| -> Option<String> {
        let v = object.get(field)?;
        match v.as_str().filter(|s| allowed.contains(s)) {
            Some(s) => Some(s.to_string()),
            None => {
                invalid.add(
                    format!(
                        "`{field}` must be {} or {}, got {v}.",
                        allowed[0], allowed[1]
                    ),
                    "field.invalid",
                    "Invalid value.",
                    Some(field),
                );
                None
            }
        }
    };
    let delivery = enumerated("delivery", ["STANDARD_TLS", "ENHANCED_TLS"]);
    let error_type = enumerated("errorType", ["EDGE_ERRORS", "ORIGIN_ERRORS"]);
    if !invalid.details.is_empty() {
        return Err(invalid);
    }
    Ok(EstatsRequest {
        cp_code,
        url,
        delivery,
        error_type,
    })
}

fn is_absolute_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

fn target_of(request: &EstatsRequest) -> Option<Target> {
    let subject = match (&request.cp_code, &request.url) {
        (Some(cp), None) => Subject::CpCode(*cp),
        (None, Some(url)) => Subject::Url(url.clone()),
        _ => return None,
    };
    let delivery = Delivery::parse_optional(request.delivery.as_deref().unwrap_or("")).ok()?;
    Some(Target { subject, delivery })
}

const EDGE_LOCATIONS: [(&str, &str); 16] = [
    ("tokyojapan", "Tokyo, Japan"),
    ("osakajapan", "Osaka, Japan"),
    ("frankfurtgermany", "Frankfurt, Germany"),
    ("londonunitedkingdom", "London, United Kingdom"),
    ("parisfrance", "Paris, France"),
    ("amsterdamnetherlands", "Amsterdam, Netherlands"),
    ("newyorkny", "New York, NY, United States"),
    ("ashburnva", "Ashburn, VA, United States"),
    ("chicagoil", "Chicago, IL, United States"),
    ("dallastx", "Dallas, TX, United States"),
    ("losangelesca", "Los Angeles, CA, United States"),
    ("sanjoseca", "San Jose, CA, United States"),
    ("singaporesingapore", "Singapore, Singapore"),
    ("sydneyaustralia", "Sydney, Australia"),
    ("saopaulobrazil", "Sao Paulo, Brazil"),
    ("mumbaiindia", "Mumbai, India"),
];

fn edge_locations_json() -> String {
    let list: Vec<Value> = EDGE_LOCATIONS
        .iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({ "edgeLocations": list }).to_string()
}

/// The unsigned control endpoints, for loopback peers only.
async fn control(
    shared: &Shared,
    peer: SocketAddr,
    method: &Method,
    path: &str,
    body: Body,
) -> Response {
    if !peer.ip().is_loopback() {
        return problem(
            StatusCode::FORBIDDEN,
            "forbidden.request.error",
            "Forbidden request.",
            Some("The simulator control endpoints answer only on loopback."),
            Vec::new(),
        );
    }
    match (path, method.clone()) {
        (STATS_PATH, Method::GET) => {
            let by_target = shared.targets().clone();
            json_response(
                StatusCode::OK,
                json!({"calls": shared.calls.load(Ordering::Relaxed), "byTarget": by_target})
                    .to_string(),
            )
        }
        (STATS_PATH, _) => method_not_allowed("GET", path),
        (FAULTS_PATH, Method::GET) => active_fault(shared),
        (FAULTS_PATH, Method::DELETE) => {
            shared.faults.clear();
            active_fault(shared)
        }
        (FAULTS_PATH, Method::POST) => {
            let body = axum::body::to_bytes(body, MAX_REQUEST_BODY)
                .await
                .unwrap_or_default();
            let parsed = serde_json::from_slice::<Value>(&body)
                .map_err(|e| format!("the body is not JSON ({e})"))
                .and_then(|v| Fault::from_json(&v));
            match parsed {
                Ok((fault, times)) => {
                    shared.faults.set(fault, times);
                    active_fault(shared)
                }
                Err(detail) => problem(
                    StatusCode::BAD_REQUEST,
                    "bad.request.error",
                    "Incorrect request.",
                    Some(&detail),
                    Vec::new(),
                ),
            }
        }
        (_, _) => method_not_allowed("GET, POST, DELETE", path),
    }
}

fn active_fault(shared: &Shared) -> Response {
    let active = shared
        .faults
        .active()
        .map(|(fault, times)| fault.to_json(times))
        .unwrap_or(Value::Null);
    json_response(StatusCode::OK, json!({ "active": active }).to_string())
}
