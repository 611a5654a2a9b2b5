//! Reading Akamai's answers: eStats bodies into the wire model, checked before they are believed;
//! error answers into typed errors; rate-limit headers.
//!
//! The eStats decoder is written by hand over `serde_json::Value` rather than derived, so that
//! every complaint names the member it is about (`result.edgeStatusCodeDistribution[2].hits`)
//! and quotes at most a short prefix of what was there. Unknown members are ignored, integers
//! may come as `12.0` or `"12"`. What makes an answer a measurement is written down in
//! `docs/upstream-validation.md`; the constants below are its numbers.

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, DATE};
use serde_json::{Map, Value};

use super::error::{RateLimitHeaders, UpstreamError};
use super::model::{
    EdgeIpInfo, EdgeIpLocation, EdgeLocations, EstatsData, EstatsResponse, ObjectStatus, Problem,
    StatusCodeCount,
};

/// Largest count believed: 2^53 - 1. Counts travel as JSON numbers to Grafana (and through
/// `f64` percentages), which hold integers exactly only up to here; Akamai's counts for a
/// nine-second sample are many orders of magnitude below it.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Percentages may leave 0..=100 by this much (Akamai rounds to two decimals); beyond it the
/// value is not a percentage. Values within the slack are clamped into 0..=100.
pub const PERCENT_SLACK: f64 = 0.05;
/// A percentage may differ by this many points from the one its counts give (a row's
/// `percentage` against `hits / side hits`, a side's `FailurePercentage` against
/// `Errors / Hits`). The schema declares failure percentages as integers, so rounding alone
/// accounts for up to one point.
pub const CONSISTENCY_POINTS: f64 = 1.0;
/// HTTP statuses believed in a distribution row.
pub const HTTP_STATUSES: std::ops::RangeInclusive<u64> = 100..=599;
/// Upstream texts quoted in errors are cut here so that a chatty proxy page cannot flood logs.
pub const MAX_DETAIL_CHARS: usize = 300;
/// Values of the answer quoted in a validation error are cut here.
const MAX_QUOTED_CHARS: usize = 40;

/// Removes credential values from upstream text before an error quotes it, in case a gateway
/// echoes what it was sent. The client builds one from its credentials.
#[derive(Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Scrubber {
        Scrubber {
            // Short values would blank ordinary words; real credentials are long.
            secrets: secrets
                .into_iter()
                .filter(|s| s.len() >= 4)
                .map(str::to_string)
                .collect(),
        }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = match text.find("EG1-HMAC-SHA256") {
            Some(at) => format!("{}***", &text[..at]),
            None => text.to_string(),
        };
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

/// Control characters blanked, cut at `max_chars` with an ellipsis.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() <= max_chars {
        clean.to_string()
    } else {
        let cut: String = clean.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// Parses a 2xx eStats answer and checks that it is a finished, complete and plausible
/// measurement. `executionStatus: FAILURE` is [`ErrorKind::ExecutionFailed`]; anything else that
/// is not a measurement is [`ErrorKind::InvalidResponse`] with a message naming the member.
///
/// [`ErrorKind::ExecutionFailed`]: super::ErrorKind::ExecutionFailed
/// [`ErrorKind::InvalidResponse`]: super::ErrorKind::InvalidResponse
pub fn decode_estats(body: &[u8], scrub: &Scrubber) -> Result<EstatsResponse, UpstreamError> {
    let value = parse_object(body)?;
    estats_from_value(&value, scrub)
}

/// [`decode_estats`] for a response held in the wire model (from a fake, an import or the
/// simulator): the same rules, applied to its JSON form.
pub fn check_estats(response: &EstatsResponse) -> Result<(), UpstreamError> {
    let value = serde_json::to_value(response)
        .map_err(|e| UpstreamError::invalid_response(&format!("it could not be re-read ({e})")))?;
    estats_from_value(&value, &Scrubber::default()).map(|_| ())
}

fn estats_from_value(value: &Value, scrub: &Scrubber) -> Result<EstatsResponse, UpstreamError> {
    let top = value
        .as_object()
        .ok_or_else(|| UpstreamError::invalid_response("the answer is JSON but not an object"))?;
    if !top.contains_key("executionStatus") && !top.contains_key("result") {
        return Err(UpstreamError::invalid_response(
            "the answer has neither executionStatus nor result; is the host an Akamai API host?",
        ));
    }
    let status = match top.get("executionStatus") {
        None => Err("eStats answered without executionStatus, so the measurement is not known to be finished".to_string()),
        Some(Value::Null) => Err("eStats answered executionStatus null, so the measurement is not known to be finished".to_string()),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(format!("executionStatus is {}, not SUCCESS or FAILURE", kind_of(other))),
    }
    .map_err(|p| UpstreamError::not_a_measurement(&scrub.apply(&p)))?;
    if status.eq_ignore_ascii_case("FAILURE") {
        return Err(UpstreamError::execution_failed(
            &scrub.apply(&failure_detail(value)),
        ));
    }
    if !status.eq_ignore_ascii_case("SUCCESS") {
        return Err(UpstreamError::not_a_measurement(&scrub.apply(&format!(
            "eStats answered executionStatus {}, which is not a finished measurement (only SUCCESS is)",
            quote(status)
        ))));
    }
    read_response(top).map_err(|p| UpstreamError::not_a_measurement(&scrub.apply(&p)))
}

/// A complaint about the answer, naming the member.
type Checked<T> = Result<T, String>;

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short, quoted prefix of an upstream string.
fn quote(text: &str) -> String {
    format!("\"{}\"", truncate(text, MAX_QUOTED_CHARS))
}

/// A number as it appeared, briefly (`1e308`, `-5`, `1.5`, `"12x"`).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Number(n) => truncate(&n.to_string(), MAX_QUOTED_CHARS),
        other => kind_of(other).to_string(),
    }
}

/// A number, or a string holding one (some gateways quote numbers).
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// The single rule for a count: a whole number in 0..=[`MAX_COUNT`] (`12.0` and `"12"` are 12).
/// The error says what is wrong with the value, for "`<field>` is ...".
pub fn count_of(v: &Value) -> Result<u64, String> {
    if let Value::Number(n) = v {
        if let Some(u) = n.as_u64() {
            return if u <= MAX_COUNT {
                Ok(u)
            } else {
                Err(format!(
                    "{u}, larger than any count eStats reports (at most 2^53 - 1)"
                ))
            };
        }
    }
    let Some(f) = as_number(v) else {
        return Err(format!("{}, not a count", shown(v)));
    };
    if !f.is_finite() {
        Err(format!("{}, not a count", shown(v)))
    } else if f < 0.0 {
        Err(format!("{}, a negative count", shown(v)))
    } else if f.fract() != 0.0 {
        Err(format!("{}, not a whole number of hits", shown(v)))
    } else if f > MAX_COUNT as f64 {
        Err(format!(
            "{}, larger than any count eStats reports (at most 2^53 - 1)",
            shown(v)
        ))
    } else {
        Ok(f as u64)
    }
}

/// The single rule for a percentage: a number in 0..=100 up to [`PERCENT_SLACK`], clamped.
pub fn percentage_of(v: &Value) -> Result<f64, String> {
    let Some(f) = as_number(v).filter(|f| f.is_finite()) else {
        return Err(format!("{}, not a percentage", shown(v)));
    };
    if !(-PERCENT_SLACK..=100.0 + PERCENT_SLACK).contains(&f) {
        return Err(format!("{}, outside 0 to 100 %", shown(v)));
    }
    Ok(f.clamp(0.0, 100.0))
}

fn field_at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Checked<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format!("{path} is {}, not an object", kind_of(v)))
}

/// An optional member: absent and null are `None`.
fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// An optional count. Absent is `None`; present it must be a count (null included: it is
/// neither a number nor silence).
fn opt_count(obj: &Map<String, Value>, path: &str, key: &str) -> Checked<Option<u64>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => count_of(v)
            .map(Some)
            .map_err(|why| format!("{} is {why}", field_at(path, key))),
    }
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
    what: &str,
) -> Checked<&'a Value> {
    match obj.get(key) {
        None => Err(format!("{} is missing; {what}", field_at(path, key))),
        Some(Value::Null) => Err(format!("{} is null; {what}", field_at(path, key))),
        Some(v) => Ok(v),
    }
}

/// Informational text: strings, and numbers or booleans written as text, are taken.
fn opt_text(obj: &Map<String, Value>, path: &str, key: &str) -> Checked<Option<String>> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(v) => Err(format!(
            "{} is {}, not text",
            field_at(path, key),
            kind_of(v)
        )),
    }
}

fn status_of(v: &Value, field: &str) -> Checked<u16> {
    let n = count_of(v).map_err(|why| format!("{field} is {why}"))?;
    if HTTP_STATUSES.contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("{field} is {n}, not an HTTP status (100 to 599)"))
    }
}

fn array<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Checked<Option<&'a Vec<Value>>> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(format!(
            "{} is {}, not a list",
            field_at(path, key),
            kind_of(v)
        )),
    }
}

fn read_response(top: &Map<String, Value>) -> Checked<EstatsResponse> {
    let result = match top.get("result") {
        None | Some(Value::Null) => {
            return Err("eStats answered SUCCESS without a result".to_string())
        }
        Some(v) => read_result(object(v, "result")?)?,
    };
    Ok(EstatsResponse {
        created_by: opt_text(top, "", "createdBy")?,
        created_time: opt_text(top, "", "createdTime")?,
        completed_time: opt_text(top, "", "completedTime")?,
        execution_status: Some("SUCCESS".to_string()),
        request: member(top, "request").cloned(),
        result: Some(result),
    })
}

/// The member names of one side of `result`.
struct SideNames {
    name: &'static str,
    hits: &'static str,
    errors: &'static str,
    failure: &'static str,
    distribution: &'static str,
    top_error: &'static str,
    top_success: &'static str,
}

const EDGE: SideNames = SideNames {
    name: "edge",
    hits: "edgeHits",
    errors: "edgeErrors",
    failure: "edgeFailurePercentage",
    distribution: "edgeStatusCodeDistribution",
    top_error: "topEdgeIpsWithError",
    top_success: "topEdgeIpsWithSuccess",
};

const ORIGIN: SideNames = SideNames {
    name: "origin",
    hits: "originHits",
    errors: "originErrors",
    failure: "originFailurePercentage",
    distribution: "originStatusCodeDistribution",
    top_error: "topEdgeIpsWithErrorFromOrigin",
    top_success: "topEdgeIpsWithSuccessFromOrigin",
};

#[derive(Default)]
struct SideRead {
    hits: Option<u64>,
    errors: Option<u64>,
    failure: Option<f64>,
    distribution: Option<Vec<StatusCodeCount>>,
    top_error: Option<Vec<EdgeIpInfo>>,
    top_success: Option<Vec<EdgeIpInfo>>,
}

fn read_result(r: &Map<String, Value>) -> Checked<EstatsData> {
    let edge = read_side(r, &EDGE)?;
    let origin = read_side(r, &ORIGIN)?;
    if edge.is_none() && origin.is_none() {
        return Err(
            "eStats answered SUCCESS with an empty result: no edge or origin statistics".into(),
        );
    }
    let (edge, origin) = (edge.unwrap_or_default(), origin.unwrap_or_default());
    Ok(EstatsData {
        edge_errors: edge.errors,
        edge_hits: edge.hits,
        edge_failure_percentage: edge.failure,
        origin_errors: origin.errors,
        origin_hits: origin.hits,
        origin_failure_percentage: origin.failure,
        top_edge_ips_with_error: edge.top_error,
        top_edge_ips_with_error_from_origin: origin.top_error,
        top_edge_ips_with_success: edge.top_success,
        top_edge_ips_with_success_from_origin: origin.top_success,
        edge_status_code_distribution: edge.distribution,
        origin_status_code_distribution: origin.distribution,
    })
}

/// One side, or `None` when the answer says nothing about it (eStats leaves a side out when the
/// request filtered it away).
fn read_side(r: &Map<String, Value>, n: &SideNames) -> Checked<Option<SideRead>> {
    let path = "result";
    let mentioned = [
        n.hits,
        n.errors,
        n.failure,
        n.distribution,
        n.top_error,
        n.top_success,
    ]
    .iter()
    .any(|k| r.contains_key(*k));
    if !mentioned {
        return Ok(None);
    }
    let hits = opt_count(r, path, n.hits)?;
    let errors = opt_count(r, path, n.errors)?;
    let failure = match r.get(n.failure) {
        None => None,
        Some(v) => Some(percentage_of(v).map_err(|why| format!("{path}.{} is {why}", n.failure))?),
    };
    let distribution = match array(r, path, n.distribution)? {
        Some(rows) => Some(read_rows(rows, &format!("{path}.{}", n.distribution))?),
        // A side that counted no hits has nothing to distribute: that is how eStats answers
        // for a delivery network the target does not use.
        None if hits == Some(0) => None,
        None => {
            let context = hits
                .map(|h| format!(" ({} is {h})", n.hits))
                .unwrap_or_default();
            return Err(format!(
                "eStats answered SUCCESS without {}{context}",
                n.distribution
            ));
        }
    };
    let top_error = read_top(r, path, n.top_error)?;
    let top_success = read_top(r, path, n.top_success)?;

    if let Some(rows) = &distribution {
        check_rows(rows, hits, &format!("{path}.{}", n.distribution), n)?;
    }
    if let (Some(h), Some(e)) = (hits, errors) {
        if e > h {
            return Err(format!(
                "{path}.{} ({e}) is larger than {path}.{} ({h}): more errors than hits",
                n.errors, n.hits
            ));
        }
    }
    if let (Some(p), Some(h), Some(e)) = (failure, hits, errors) {
        let expected = if h == 0 {
            0.0
        } else {
            e as f64 * 100.0 / h as f64
        };
        if (p - expected).abs() > CONSISTENCY_POINTS {
            return Err(format!(
                "{path}.{} ({}) contradicts {path}.{} / {path}.{} ({e} of {h} = {:.2} %)",
                n.failure,
                round2(p),
                n.errors,
                n.hits,
                expected
            ));
        }
    }
    Ok(Some(SideRead {
        hits,
        errors,
        failure,
        distribution,
        top_error,
        top_success,
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn read_rows(rows: &[Value], path: &str) -> Checked<Vec<StatusCodeCount>> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("{path}[{i}]");
            let obj = object(row, &at)?;
            let status = required(obj, &at, "httpStatus", "every row needs its HTTP status")?;
            let hits = required(obj, &at, "hits", "every row needs its count of hits")?;
            let percentage = required(
                obj,
                &at,
                "percentage",
                "every row needs its share of the traffic",
            )?;
            Ok(StatusCodeCount {
                http_status: status_of(status, &format!("{at}.httpStatus"))?,
                hits: count_of(hits).map_err(|why| format!("{at}.hits is {why}"))?,
                percentage: percentage_of(percentage)
                    .map_err(|why| format!("{at}.percentage is {why}"))?,
            })
        })
        .collect()
}

/// Rows against their side's totals. eStats lists a subset of the status codes (the official
/// example's rows cover 94 % of `edgeHits`), so rows may add up to less than the total, never
/// to more; each row's percentage is its share of the side's total hits.
fn check_rows(
    rows: &[StatusCodeCount],
    hits: Option<u64>,
    path: &str,
    n: &SideNames,
) -> Checked<()> {
    if let Some(total) = hits {
        let sum_hits: u128 = rows.iter().map(|r| u128::from(r.hits)).sum();
        if sum_hits > u128::from(total) {
            return Err(format!(
                "the rows of {path} add up to {sum_hits} hits, more than result.{} ({total})",
                n.hits
            ));
        }
        for (i, r) in rows.iter().enumerate().filter(|_| total > 0) {
            let share = r.hits as f64 * 100.0 / total as f64;
            if (r.percentage - share).abs() > CONSISTENCY_POINTS {
                return Err(format!(
                    "{path}[{i}].percentage ({}) contradicts its hits ({} of {} {} hits = {:.2} %)",
                    round2(r.percentage),
                    r.hits,
                    total,
                    n.name,
                    share
                ));
            }
        }
    }
    let sum_pct: f64 = rows.iter().map(|r| r.percentage).sum();
    if sum_pct > 100.0 + CONSISTENCY_POINTS {
        return Err(format!(
            "the percentages of {path} add up to {sum_pct:.2} %, more than 100 %"
        ));
    }
    Ok(())
}

fn read_top(r: &Map<String, Value>, path: &str, key: &str) -> Checked<Option<Vec<EdgeIpInfo>>> {
    let Some(list) = array(r, path, key)? else {
        return Ok(None);
    };
    let path = format!("{path}.{key}");
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("{path}[{i}]");
            let o = object(v, &at)?;
            Ok(EdgeIpInfo {
                edge_ip: opt_text(o, &at, "edgeIp")?.unwrap_or_default(),
                http_status: member(o, "httpStatus")
                    .map(|s| status_of(s, &format!("{at}.httpStatus")))
                    .transpose()?,
                hits: opt_count(o, &at, "hits")?,
                error_code: opt_text(o, &at, "errorCode")?,
                edge_logs_link: opt_text(o, &at, "edgeLogsLink")?,
                edge_ip_location: member(o, "edgeIpLocation")
                    .map(|l| read_location(l, &format!("{at}.edgeIpLocation")))
                    .transpose()?,
                object_status: array(o, &at, "objectStatus")?
                    .map(|list| {
                        list.iter()
                            .enumerate()
                            .map(|(j, s)| {
                                let sat = format!("{at}.objectStatus[{j}]");
                                let so = object(s, &sat)?;
                                Ok(ObjectStatus {
                                    code: opt_text(so, &sat, "code")?,
                                    description: opt_text(so, &sat, "description")?,
                                })
                            })
                            .collect::<Checked<Vec<_>>>()
                    })
                    .transpose()?,
            })
        })
        .collect::<Checked<Vec<_>>>()
        .map(Some)
}

fn read_location(v: &Value, at: &str) -> Checked<EdgeIpLocation> {
    let o = object(v, at)?;
    Ok(EdgeIpLocation {
        city: opt_text(o, at, "city")?,
        region_code: opt_text(o, at, "regionCode")?,
        country_code: opt_text(o, at, "countryCode")?,
        as_number: match member(o, "asNumber") {
            None => None,
            Some(n) => Some(count_of(n).map_err(|why| format!("{at}.asNumber is {why}"))?),
        },
    })
}

/// Whatever text a FAILURE answer carries about its cause (the schema defines none, so the usual
/// problem-style member names are looked for).
fn failure_detail(value: &Value) -> String {
    let from = |v: &Value| -> Option<String> {
        for key in ["detail", "message", "errorMessage", "reason", "error"] {
            if let Some(text) = v.get(key).and_then(|t| t.as_str()) {
                if !text.trim().is_empty() {
                    return Some(text.to_string());
                }
            }
        }
        let errors = v.get("errors")?.as_array()?;
        let parts: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                e.get("detail")
                    .or_else(|| e.get("title"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string)
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    };
    from(value)
        .or_else(|| value.get("result").and_then(from))
        .map(|t| truncate(&t, MAX_DETAIL_CHARS))
        .unwrap_or_default()
}

fn json_error_reason(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => format!(
            "the JSON ends early at line {}, column {}",
            e.line(),
            e.column()
        ),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            format!("not valid JSON at line {}, column {}", e.line(), e.column())
        }
        serde_json::error::Category::Data => {
            format!("unexpected shape: {}", truncate(&e.to_string(), 160))
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Value, UpstreamError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(UpstreamError::invalid_response("the answer is empty"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| UpstreamError::invalid_response(&json_error_reason(&e)))?;
    if !value.is_object() {
        return Err(UpstreamError::invalid_response(
            "the answer is JSON but not an object",
        ));
    }
    Ok(value)
}

/// Parses a 2xx edge-locations answer.
pub fn decode_edge_locations(body: &[u8]) -> Result<EdgeLocations, UpstreamError> {
    let value = parse_object(body)?;
    if !value.get("edgeLocations").is_some_and(|v| v.is_array()) {
        return Err(UpstreamError::invalid_response(
            "the answer has no edgeLocations list; is the host an Akamai API host?",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| UpstreamError::invalid_response(&json_error_reason(&e)))
}

/// The upstream's own words for a failed call: the problem summary when the body is
/// problem+json, else the status's reason phrase.
fn problem_detail(status: u16, body: &[u8]) -> (String, Option<Problem>) {
    let problem = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .and_then(|v| serde_json::from_value::<Problem>(v).ok());
    let summary = problem.as_ref().map(Problem::summary).unwrap_or_default();
    let detail = if summary.trim().is_empty() {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no details")
            .to_string()
    } else {
        truncate(&summary, MAX_DETAIL_CHARS)
    };
    (detail, problem)
}

/// Maps a non-2xx answer to its typed error.
pub fn status_error(
    status: u16,
    body: &[u8],
    rate: RateLimitHeaders,
    scrub: &Scrubber,
) -> UpstreamError {
    let (detail, problem) = problem_detail(status, body);
    let detail = scrub.apply(&detail);
    match status {
        401 => UpstreamError::auth(&detail),
        403 => UpstreamError::forbidden(&detail),
        400 => {
            let mentions_timestamp = |t: &Option<String>| {
                t.as_deref()
                    .is_some_and(|t| t.to_ascii_lowercase().contains("timestamp"))
            };
            let skew = problem
                .as_ref()
                .is_some_and(|p| mentions_timestamp(&p.title) || mentions_timestamp(&p.detail))
                || detail.to_ascii_lowercase().contains("timestamp");
            if skew {
                UpstreamError::clock_skew(&detail)
            } else {
                UpstreamError::bad_request(status, &detail)
            }
        }
        404 => UpstreamError::not_found(&detail),
        429 => UpstreamError::rate_limited(&detail, rate),
        500..=599 => UpstreamError::server(status, &detail),
        300..=399 => {
            UpstreamError::invalid_response(&format!("unexpected {status} redirect ({detail})"))
        }
        _ => UpstreamError::bad_request(status, &detail),
    }
}

/// An RFC 3339 instant or an HTTP-date (IMF-fixdate, RFC 850 and asctime forms).
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

impl RateLimitHeaders {
    /// Reads `X-RateLimit-*` and `Akamai-RateLimit-*` (the X- form wins when both are sent),
    /// `*-RateLimit-Next`, and `Date`.
    pub fn from_headers(headers: &HeaderMap) -> RateLimitHeaders {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| text(n).and_then(|v| v.trim().parse::<u32>().ok()))
        };
        RateLimitHeaders {
            limit: number(["x-ratelimit-limit", "akamai-ratelimit-limit"]),
            remaining: number(["x-ratelimit-remaining", "akamai-ratelimit-remaining"]),
            next: ["x-ratelimit-next", "akamai-ratelimit-next"]
                .iter()
                .find_map(|n| text(n).and_then(parse_instant)),
            server_date: headers
                .get(DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_instant),
        }
    }
}

#[cfg(test)]
mod tests;
