//! The signed eStats HTTP client.
//!
//! One method call is one logical upstream call: no retries here, because the upstream layer owns
//! the rate budget and backoff and calls again (which signs again). Every request, and every
//! redirect hop, is signed with a fresh timestamp and nonce over the exact URL and body bytes that
//! go on the wire.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, LOCATION};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use url::{Host, Url};

use super::error::{RateLimitHeaders, UpstreamError};
use super::model::{EdgeLocations, EstatsRequest, EstatsResponse, Problem};
use crate::edgegrid::{self, Credentials, SignedRequest};
use crate::target::Target;

/// One successful eStats answer with what its headers said.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub response: EstatsResponse,
    pub rate: RateLimitHeaders,
    pub received_at: DateTime<Utc>,
}

/// Path of the eStats call, below the base URL.
pub const ESTATS_PATH: &str = "/edge-diagnostics/v1/estats";
/// Path of the edge-locations call (the health check's cheap signed probe).
pub const EDGE_LOCATIONS_PATH: &str = "/edge-diagnostics/v1/edge-locations";

const USER_AGENT: &str = concat!(
    "akamai-estats-datasource/",
    env!("CARGO_PKG_VERSION"),
    " (Grafana data source plugin)"
);
const ACCEPT_VALUE: &str = "application/json, application/problem+json";
const MAX_REDIRECTS: usize = 3;
/// A real answer is a few kB; anything this large is not eStats and is not buffered further.
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Upstream texts quoted in errors are cut here so that a chatty proxy page cannot flood logs.
const MAX_DETAIL_CHARS: usize = 300;

/// Query values keep only RFC 3986 unreserved characters, so that what is signed and what the
/// server receives are the same bytes (`:` in switch keys such as `1-5C0YLB:1-8BYUX` included).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// EdgeGrid-signed client of one Akamai API host. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Scheme, host, port and optional path prefix; no query, fragment or user info.
    base: Url,
    host: String,
    credentials: Credentials,
    account_switch_key: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("account_switch_key", &self.inner.account_switch_key)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// What came back from one signed call after redirects were followed.
struct Answer {
    status: u16,
    rate: RateLimitHeaders,
    body: Vec<u8>,
}

impl Client {
    /// A client for `base_url` (`https://akab-xxx.luna.akamaiapis.net`, or `http://127.0.0.1:PORT`
    /// for a loopback simulator). Plain http to any other host is refused: the signature would
    /// travel in clear text, and Akamai only speaks https.
    pub fn new(
        base_url: Url,
        credentials: Credentials,
        account_switch_key: Option<String>,
        timeout: Duration,
    ) -> Result<Client, UpstreamError> {
        let host = authority(&base_url);
        check_transport(&base_url).map_err(|reason| UpstreamError::Tls {
            host: host.clone(),
            reason,
        })?;
        for (name, value) in [
            ("client_token", credentials.client_token.expose()),
            ("client_secret", credentials.client_secret.expose()),
            ("access_token", credentials.access_token.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(UpstreamError::Auth {
                    detail: format!("{name} is empty, so nothing was sent; fill it in"),
                });
            }
        }
        let mut base = base_url;
        // User info would make reqwest add Basic auth next to the EdgeGrid header.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);

        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| UpstreamError::Tls {
                host: host.clone(),
                reason: format!("the HTTP client could not be set up ({})", e.without_url()),
            })?;
        let account_switch_key = account_switch_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                host,
                credentials,
                account_switch_key,
                timeout,
            }),
        })
    }

    /// The API host (with its port when one is given), for messages.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// `POST /edge-diagnostics/v1/estats` for one target.
    pub async fn estats(&self, target: &Target) -> Result<Fetched, UpstreamError> {
        let body = serde_json::to_vec(&EstatsRequest::from(target)).map_err(|e| {
            UpstreamError::InvalidResponse {
                reason: format!("the request body could not be written ({e})"),
            }
        })?;
        let answer = self.call(Method::POST, ESTATS_PATH, Some(body)).await?;
        let received_at = Utc::now();
        let response = self.decode_estats(answer.status, &answer.body, &answer.rate)?;
        Ok(Fetched {
            response,
            rate: answer.rate,
            received_at,
        })
    }

    /// `GET /edge-diagnostics/v1/edge-locations`: proves host, credentials, grant and clock.
    pub async fn edge_locations(&self) -> Result<(EdgeLocations, RateLimitHeaders), UpstreamError> {
        let answer = self.call(Method::GET, EDGE_LOCATIONS_PATH, None).await?;
        if !(200..300).contains(&answer.status) {
            return Err(self.status_error(answer.status, &answer.body, answer.rate));
        }
        let locations = decode_edge_locations(&answer.body)?;
        Ok((locations, answer.rate))
    }

    fn decode_estats(
        &self,
        status: u16,
        body: &[u8],
        rate: &RateLimitHeaders,
    ) -> Result<EstatsResponse, UpstreamError> {
        if !(200..300).contains(&status) {
            return Err(self.status_error(status, body, rate.clone()));
        }
        decode_estats(body).map_err(|e| self.scrub_error(e))
    }

    fn status_error(&self, status: u16, body: &[u8], rate: RateLimitHeaders) -> UpstreamError {
        self.scrub_error(map_error_status(status, body, rate))
    }

    /// The endpoint URL with the account switch key as its only query parameter.
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.inner.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        if let Some(key) = &self.inner.account_switch_key {
            let encoded = utf8_percent_encode(key, QUERY_VALUE);
            url.set_query(Some(&format!("accountSwitchKey={encoded}")));
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, UpstreamError> {
        let mut url = self.endpoint(path);
        let mut method = method;
        let mut body = body;
        let mut hops = 0;
        loop {
            let response = self.send_signed(&method, &url, body.as_deref()).await?;
            let status = response.status();
            if is_followed_redirect(status.as_u16()) {
                if hops == MAX_REDIRECTS {
                    return Err(UpstreamError::InvalidResponse {
                        reason: format!(
                            "{} redirected more than {MAX_REDIRECTS} times; set the host to the final API host",
                            self.host()
                        ),
                    });
                }
                hops += 1;
                url = self.redirect_target(&url, response.headers())?;
                // 303 means "fetch the result with GET"; 301/302/307/308 keep method and body
                // because an API host that moved still expects the same call.
                if status.as_u16() == 303 {
                    method = Method::GET;
                    body = None;
                }
                continue;
            }
            let rate = RateLimitHeaders::from_headers(response.headers());
            let body = self.read_body(response).await?;
            return Ok(Answer {
                status: status.as_u16(),
                rate,
                body,
            });
        }
    }

    async fn send_signed(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let creds = &self.inner.credentials;
        let timestamp = edgegrid::timestamp(Utc::now());
        let nonce = edgegrid::nonce();
        let signed = SignedRequest {
            method: method.as_str(),
            url,
            headers: &[],
            body: body.unwrap_or_default(),
        };
        let authorization = edgegrid::authorization(creds, &signed, &timestamp, &nonce);
        let mut authorization =
            HeaderValue::from_str(&authorization).map_err(|_| UpstreamError::Auth {
                detail: "a credential contains characters that cannot be sent in a header; copy it again from the .edgerc or Akamai Control Center".into(),
            })?;
        authorization.set_sensitive(true);

        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, ACCEPT_VALUE)
            .header(AUTHORIZATION, authorization);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        request.send().await.map_err(|e| self.transport_error(e))
    }

    /// The next hop of a redirect, if it stays on this API host or on loopback.
    fn redirect_target(&self, from: &Url, headers: &HeaderMap) -> Result<Url, UpstreamError> {
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| UpstreamError::InvalidResponse {
                reason: format!("{} sent a redirect without a Location", self.host()),
            })?;
        let next = from
            .join(location)
            .map_err(|_| UpstreamError::InvalidResponse {
                reason: format!("{} redirected to an unreadable Location", self.host()),
            })?;
        let same_host = next.host_str() == self.inner.base.host_str()
            && next.port_or_known_default() == self.inner.base.port_or_known_default();
        if !(same_host || is_loopback(&next)) {
            return Err(UpstreamError::InvalidResponse {
                reason: format!(
                    "{} redirected to another host ({}), which is not followed with credentials; set the host setting to it if it is the right API host",
                    self.host(),
                    authority(&next)
                ),
            });
        }
        check_transport(&next).map_err(|reason| UpstreamError::Tls {
            host: authority(&next),
            reason: format!("redirect refused: {reason}"),
        })?;
        Ok(next)
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(UpstreamError::InvalidResponse {
                            reason: format!(
                                "the answer is larger than {} MiB, which no eStats answer is",
                                MAX_ANSWER_BYTES >> 20
                            ),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(self.transport_error(e)),
            }
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> UpstreamError {
        let error = error.without_url();
        if error.is_timeout() {
            return UpstreamError::Timeout {
                seconds: (self.inner.timeout.as_secs_f64().ceil() as u64).max(1),
            };
        }
        let chain = error_chain(&error);
        let reason = self.scrub(&truncate(&chain.join(": "), MAX_DETAIL_CHARS));
        let host = self.host().to_string();
        if self.inner.base.scheme() == "https" && is_tls_failure(&error, &chain) {
            UpstreamError::Tls { host, reason }
        } else {
            UpstreamError::Connect { host, reason }
        }
    }

    /// Removes credential values from upstream text before it is quoted in an error, in case a
    /// gateway echoes what it was sent.
    fn scrub(&self, text: &str) -> String {
        let creds = &self.inner.credentials;
        let mut out = match text.find("EG1-HMAC-SHA256") {
            Some(at) => format!("{}***", &text[..at]),
            None => text.to_string(),
        };
        for secret in [
            creds.client_secret.expose(),
            creds.client_token.expose(),
            creds.access_token.expose(),
        ] {
            if secret.len() >= 4 {
                out = out.replace(secret, "***");
            }
        }
        out
    }

    fn scrub_error(&self, error: UpstreamError) -> UpstreamError {
        let s = |t: String| self.scrub(&t);
        match error {
            UpstreamError::Connect { host, reason } => UpstreamError::Connect {
                host,
                reason: s(reason),
            },
            UpstreamError::Tls { host, reason } => UpstreamError::Tls {
                host,
                reason: s(reason),
            },
            UpstreamError::Timeout { seconds } => UpstreamError::Timeout { seconds },
            UpstreamError::Auth { detail } => UpstreamError::Auth { detail: s(detail) },
            UpstreamError::Forbidden { detail } => UpstreamError::Forbidden { detail: s(detail) },
            UpstreamError::ClockSkew { detail } => UpstreamError::ClockSkew { detail: s(detail) },
            UpstreamError::RateLimited { detail, headers } => UpstreamError::RateLimited {
                detail: s(detail),
                headers,
            },
            UpstreamError::BadRequest { status, detail } => UpstreamError::BadRequest {
                status,
                detail: s(detail),
            },
            UpstreamError::NotFound { detail } => UpstreamError::NotFound { detail: s(detail) },
            UpstreamError::Server { status, detail } => UpstreamError::Server {
                status,
                detail: s(detail),
            },
            UpstreamError::ExecutionFailed { detail } => {
                UpstreamError::ExecutionFailed { detail: s(detail) }
            }
            UpstreamError::InvalidResponse { reason } => {
                UpstreamError::InvalidResponse { reason: s(reason) }
            }
        }
    }
}

fn is_followed_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Host with its port when the URL names one, e.g. `127.0.0.1:8080` or `akab-x.luna.akamaiapis.net`.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// https anywhere, http only to loopback; the reason names the fix.
fn check_transport(url: &Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{url} has no host; use https://akab-xxx.luna.akamaiapis.net"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain http is refused for {} (it would send the signed request unencrypted); use https://, http is only for a simulator on 127.0.0.1 or localhost",
            authority(url)
        )),
        other => Err(format!(
            "the scheme {other}: is not supported; use https://"
        )),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && chain.last() != Some(&text) {
            chain.push(text);
        }
        current = e.source();
    }
    chain
}

/// TLS failures arrive as text only (rustls is not a direct dependency to downcast to), so they
/// are recognised by rustls's own wording, and by the `InvalidData` I/O error that tokio-rustls
/// wraps them in.
fn is_tls_failure(error: &(dyn std::error::Error + 'static), chain: &[String]) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        current = e.source();
    }
    chain.iter().any(|m| mentions_tls(m))
}

fn mentions_tls(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "certificate",
        "rustls",
        "tls",
        "ssl",
        "handshake",
        "x509",
        "unknownissuer",
        "peer sent",
        "received corrupt message",
        "received unexpected",
        "fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "decrypt",
        "dnsname",
    ]
    .iter()
    .any(|w| m.contains(w))
}

fn truncate(text: &str, max_chars: usize) -> String {
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

/// The upstream's own words for a failed call: the problem summary when the body is
/// problem+json, else the status's reason phrase.
fn problem_detail(status: u16, body: &[u8]) -> (String, Option<Problem>) {
    let problem = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(serde_json::Value::is_object)
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
pub fn map_error_status(status: u16, body: &[u8], rate: RateLimitHeaders) -> UpstreamError {
    let (detail, problem) = problem_detail(status, body);
    match status {
        401 => UpstreamError::Auth { detail },
        403 => UpstreamError::Forbidden { detail },
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
                UpstreamError::ClockSkew { detail }
            } else {
                UpstreamError::BadRequest { status, detail }
            }
        }
        404 => UpstreamError::NotFound { detail },
        429 => UpstreamError::RateLimited {
            detail,
            headers: rate,
        },
        500..=599 => UpstreamError::Server { status, detail },
        300..=399 => UpstreamError::InvalidResponse {
            reason: format!("unexpected {status} redirect ({detail})"),
        },
        _ => UpstreamError::BadRequest { status, detail },
    }
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

fn parse_object(body: &[u8]) -> Result<serde_json::Value, UpstreamError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(UpstreamError::InvalidResponse {
            reason: "the answer is empty".into(),
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| UpstreamError::InvalidResponse {
            reason: json_error_reason(&e),
        })?;
    if !value.is_object() {
        return Err(UpstreamError::InvalidResponse {
            reason: "the answer is JSON but not an object".into(),
        });
    }
    Ok(value)
}

/// Parses a 2xx eStats answer; `executionStatus: FAILURE` becomes [`UpstreamError::ExecutionFailed`].
pub fn decode_estats(body: &[u8]) -> Result<EstatsResponse, UpstreamError> {
    let value = parse_object(body)?;
    if value.get("executionStatus").is_none() && value.get("result").is_none() {
        return Err(UpstreamError::InvalidResponse {
            reason:
                "the answer has neither executionStatus nor result; is the host an Akamai API host?"
                    .into(),
        });
    }
    let failure_detail = failure_detail(&value);
    let response: EstatsResponse =
        serde_json::from_value(value).map_err(|e| UpstreamError::InvalidResponse {
            reason: json_error_reason(&e),
        })?;
    if response.is_failure() {
        return Err(UpstreamError::ExecutionFailed {
            detail: failure_detail,
        });
    }
    Ok(response)
}

/// Whatever text a FAILURE answer carries about its cause (the schema defines none, so the usual
/// problem-style member names are looked for).
fn failure_detail(value: &serde_json::Value) -> String {
    let from = |v: &serde_json::Value| -> Option<String> {
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

/// Parses a 2xx edge-locations answer.
pub fn decode_edge_locations(body: &[u8]) -> Result<EdgeLocations, UpstreamError> {
    let value = parse_object(body)?;
    if !value.get("edgeLocations").is_some_and(|v| v.is_array()) {
        return Err(UpstreamError::InvalidResponse {
            reason: "the answer has no edgeLocations list; is the host an Akamai API host?".into(),
        });
    }
    serde_json::from_value(value).map_err(|e| UpstreamError::InvalidResponse {
        reason: json_error_reason(&e),
    })
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
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::response::IntoResponse;

    use super::*;
    use crate::edgegrid::Secret;
    use crate::estats::ErrorKind;
    use crate::simulator::{demo_credentials, Fault, Simulator, SimulatorConfig};
    use crate::target::{Delivery, Subject};

    const TIMEOUT: Duration = Duration::from_secs(5);

    async fn simulator_with_limit(limit: u32) -> Simulator {
        Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            SimulatorConfig {
                rate_limit_per_minute: limit,
                ..SimulatorConfig::default()
            },
        )
        .await
        .unwrap()
    }

    async fn simulator() -> Simulator {
        simulator_with_limit(1000).await
    }

    fn client_for(sim: &Simulator) -> Client {
        Client::new(sim.base_url(), demo_credentials(), None, TIMEOUT).unwrap()
    }

    /// A client for a test server of its own at `addr`.
    fn client_at(addr: impl std::fmt::Display) -> Client {
        Client::new(
            Url::parse(&format!("http://{addr}")).unwrap(),
            demo_credentials(),
            None,
            TIMEOUT,
        )
        .unwrap()
    }

    fn cp(code: u64, delivery: Option<Delivery>) -> Target {
        Target::cp_code(code, delivery)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Every error this client returned must be free of credential material.
    fn assert_clean(error: &UpstreamError) {
        let creds = demo_credentials();
        let texts = [error.to_string(), format!("{error:?}")];
        for text in texts {
            for needle in [
                creds.client_secret.expose(),
                creds.client_token.expose(),
                creds.access_token.expose(),
                "signature=",
                "EG1-HMAC",
                "wrong-secret-value",
            ] {
                assert!(!text.contains(needle), "{needle:?} leaked into {text:?}");
            }
        }
    }

    #[tokio::test]
    async fn cp_code_with_delivery_and_switch_key() {
        let sim = simulator().await;
        let client = Client::new(
            sim.base_url(),
            demo_credentials(),
            Some("1-5C0YLB:1-8BYUX".into()),
            TIMEOUT,
        )
        .unwrap();
        let target = cp(1209788, Some(Delivery::StandardTls));
        let fetched = client.estats(&target).await.unwrap();
        assert_eq!(
            fetched.response.execution_status.as_deref(),
            Some("SUCCESS")
        );
        let request = fetched.response.request.clone().unwrap();
        assert_eq!(request["cpCode"], 1209788);
        assert_eq!(request["delivery"], "STANDARD_TLS");
        let result = fetched.response.result.as_ref().unwrap();
        assert!(result.edge_hits.unwrap() > 0);
        assert!(!result
            .edge_status_code_distribution
            .as_ref()
            .unwrap()
            .is_empty());
        assert_eq!(fetched.rate.limit, Some(1000));
        assert_eq!(fetched.rate.remaining, Some(999));
        assert!(fetched.rate.server_date.is_some());
        assert!((Utc::now() - fetched.received_at).num_seconds().abs() < 5);
        assert_eq!(sim.calls(), 1);
        assert_eq!(sim.calls_for(&target.key()), 1);
        assert_eq!(client.host(), sim.base_url().authority());
    }

    #[tokio::test]
    async fn url_target_without_delivery() {
        let sim = simulator().await;
        let client = client_for(&sim);
        let target = Target {
            subject: Subject::Url("https://www.example.com/index.html?q=1".into()),
            delivery: None,
        };
        let fetched = client.estats(&target).await.unwrap();
        let request = fetched.response.request.unwrap();
        assert_eq!(request["url"], "https://www.example.com/index.html?q=1");
        assert!(request.get("delivery").is_none());
        assert!(request.get("cpCode").is_none());
        assert!(fetched.response.result.unwrap().origin_hits.unwrap() > 0);
        assert_eq!(sim.calls_for(&target.key()), 1);
    }

    #[tokio::test]
    async fn edge_locations_are_listed() {
        let sim = simulator().await;
        let (locations, rate) = client_for(&sim).edge_locations().await.unwrap();
        assert!(locations.edge_locations.len() > 5);
        assert!(locations
            .edge_locations
            .iter()
            .all(|l| !l.id.is_empty() && !l.value.is_empty()));
        assert_eq!(rate.limit, Some(1000));
        // edge-locations is not an estats call.
        assert_eq!(sim.calls(), 0);
    }

    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        uri: String,
        body: Vec<u8>,
        authorization: Option<String>,
    }

    /// A server that records the raw requests and answers 200 with a fixed JSON body.
    #[derive(Clone)]
    struct Recorder {
        seen: Arc<Mutex<Vec<Seen>>>,
        answer: Arc<Vec<u8>>,
    }

    async fn record(
        State(rec): State<Recorder>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
        rec.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            body,
            authorization: parts
                .headers
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_string()),
        });
        (
            [(CONTENT_TYPE, "application/json")],
            rec.answer.as_ref().clone(),
        )
            .into_response()
    }

    async fn recorder(answer: Vec<u8>) -> (Recorder, Url) {
        let rec = Recorder {
            seen: Arc::default(),
            answer: Arc::new(answer),
        };
        let app = axum::Router::new().fallback(record).with_state(rec.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (rec, Url::parse(&format!("http://{addr}")).unwrap())
    }

    #[tokio::test]
    async fn request_bytes_are_the_signed_ones() {
        let (rec, base) = recorder(fixture("estats.json")).await;
        let client = Client::new(
            base,
            demo_credentials(),
            Some("1-5C0YLB:1-8 BYUX".into()),
            TIMEOUT,
        )
        .unwrap();
        let fetched = client
            .estats(&cp(42, Some(Delivery::EnhancedTls)))
            .await
            .unwrap();
        assert_eq!(fetched.response.result.unwrap().edge_hits, Some(79655));
        let seen = rec.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        assert_eq!(seen.method, "POST");
        assert_eq!(
            seen.uri,
            "/edge-diagnostics/v1/estats?accountSwitchKey=1-5C0YLB%3A1-8%20BYUX"
        );
        assert_eq!(
            std::str::from_utf8(&seen.body).unwrap(),
            r#"{"cpCode":42,"delivery":"ENHANCED_TLS"}"#
        );
        let authorization = seen.authorization.as_deref().unwrap();
        assert!(authorization.starts_with("EG1-HMAC-SHA256 client_token="));
        // The signature verifies over exactly what arrived.
        let parsed = edgegrid::parse_authorization(authorization).unwrap();
        let arrived = base_url_of(&client).join(&seen.uri).unwrap();
        assert!(edgegrid::verify(
            &demo_credentials(),
            &SignedRequest {
                method: "POST",
                url: &arrived,
                headers: &[],
                body: &seen.body,
            },
            &parsed
        ));
    }

    fn base_url_of(client: &Client) -> Url {
        client.inner.base.clone()
    }

    #[tokio::test]
    async fn wrong_secret_is_auth_and_leaks_nothing() {
        let sim = simulator().await;
        let mut creds = demo_credentials();
        creds.client_secret = Secret::new("wrong-secret-value");
        let client = Client::new(sim.base_url(), creds, None, TIMEOUT).unwrap();
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("The signature does not match"));
        assert_clean(&err);
        assert!(!format!("{client:?}").contains("wrong-secret-value"));
        assert_eq!(sim.calls(), 0);

        let mut creds = demo_credentials();
        creds.client_token = Secret::new("akab-not-the-right-token");
        let client = Client::new(sim.base_url(), creds, None, TIMEOUT).unwrap();
        let err = client.edge_locations().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("Invalid client token"));
    }

    #[tokio::test]
    async fn injected_faults_map_to_their_kinds() {
        let sim = simulator().await;
        let client = client_for(&sim);
        let faults = sim.faults();
        let target = cp(1209788, None);
        let cases = [
            (Fault::Status(401), ErrorKind::Auth),
            (Fault::Status(403), ErrorKind::Forbidden),
            (Fault::Status(500), ErrorKind::Server),
            (Fault::Status(502), ErrorKind::Server),
            (Fault::Status(503), ErrorKind::Server),
            (Fault::Status(504), ErrorKind::Server),
            (Fault::ClockSkew, ErrorKind::ClockSkew),
            (Fault::MalformedJson, ErrorKind::InvalidResponse),
            (Fault::ExecutionFailure, ErrorKind::ExecutionFailed),
            (Fault::RateLimited { next_in: None }, ErrorKind::RateLimited),
        ];
        for (fault, kind) in cases {
            faults.set(fault.clone(), Some(1));
            let err = client.estats(&target).await.unwrap_err();
            assert_eq!(err.kind(), kind, "{fault:?} gave {err}");
            assert_clean(&err);
            if let UpstreamError::Server { status, .. } = &err {
                assert_eq!(Fault::Status(*status), fault);
            }
            // The fault was for one call only.
            client.estats(&target).await.unwrap();
        }
    }

    #[tokio::test]
    async fn rate_limited_fault_carries_next() {
        let sim = simulator().await;
        let client = client_for(&sim);
        sim.faults().set(
            Fault::RateLimited {
                next_in: Some(Duration::from_secs(2)),
            },
            None,
        );
        for _ in 0..2 {
            let err = client.estats(&cp(5, None)).await.unwrap_err();
            let UpstreamError::RateLimited { headers, detail } = &err else {
                panic!("expected RateLimited, got {err:?}");
            };
            assert!(detail.contains("exceeded"));
            assert_eq!(headers.limit, Some(1000));
            assert_eq!(headers.remaining, Some(0));
            let wait = headers.wait(Utc::now()).unwrap();
            assert!(
                wait >= Duration::from_secs(1) && wait <= Duration::from_secs(3),
                "{wait:?}"
            );
            assert!(err.to_string().contains("next request allowed at"));
        }
        sim.faults().clear();
        client.estats(&cp(5, None)).await.unwrap();

        sim.faults()
            .set(Fault::RateLimited { next_in: None }, Some(1));
        let err = client.estats(&cp(5, None)).await.unwrap_err();
        let UpstreamError::RateLimited { headers, .. } = err else {
            panic!("expected RateLimited");
        };
        assert_eq!(headers.next, None);
        assert_eq!(headers.remaining, Some(0));
        assert!(headers.server_date.is_some());
    }

    #[tokio::test]
    async fn real_rate_limit_after_three_calls() {
        let sim = simulator_with_limit(3).await;
        let client = client_for(&sim);
        let mut remaining = Vec::new();
        for _ in 0..3 {
            remaining.push(client.estats(&cp(9, None)).await.unwrap().rate.remaining);
        }
        assert_eq!(remaining, vec![Some(2), Some(1), Some(0)]);
        let err = client.estats(&cp(9, None)).await.unwrap_err();
        let UpstreamError::RateLimited { headers, .. } = &err else {
            panic!("expected RateLimited, got {err:?}");
        };
        assert_eq!(headers.limit, Some(3));
        assert_eq!(headers.remaining, Some(0));
        let wait = headers.wait(Utc::now()).unwrap();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(61));
        // edge-locations shares the budget.
        assert_eq!(
            client.edge_locations().await.unwrap_err().kind(),
            ErrorKind::RateLimited
        );
    }

    #[tokio::test]
    async fn latency_beyond_timeout_is_timeout() {
        let sim = simulator().await;
        let client = Client::new(
            sim.base_url(),
            demo_credentials(),
            None,
            Duration::from_millis(300),
        )
        .unwrap();
        sim.faults()
            .set(Fault::Latency(Duration::from_secs(3)), Some(1));
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(matches!(err, UpstreamError::Timeout { seconds: 1 }));

        // Latency below the timeout only slows the answer down.
        sim.faults()
            .set(Fault::Latency(Duration::from_millis(50)), Some(1));
        client.estats(&cp(1, None)).await.unwrap();
    }

    #[tokio::test]
    async fn connection_refused_is_connect() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = client_at(addr);
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.to_string().contains(&addr.to_string()));
        assert_clean(&err);
    }

    #[tokio::test]
    async fn https_to_a_plain_http_server_is_tls() {
        let sim = simulator().await;
        let mut base = sim.base_url();
        base.set_scheme("https").unwrap();
        let client = Client::new(base, demo_credentials(), None, TIMEOUT).unwrap();
        let err = client.edge_locations().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert_clean(&err);
    }

    async fn redirector(to: String, status: u16) -> SocketAddr {
        let app = axum::Router::new().fallback(move |uri: http::Uri| {
            let to = to.clone();
            async move {
                let location = format!("{to}{}", uri.path_and_query().unwrap());
                (
                    http::StatusCode::from_u16(status).unwrap(),
                    [(LOCATION, location)],
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn redirects_are_signed_again() {
        let sim = simulator().await;
        let sim_base = sim.base_url().as_str().trim_end_matches('/').to_string();
        let hop = redirector(sim_base, 307).await;
        let client = Client::new(
            Url::parse(&format!("http://{hop}")).unwrap(),
            demo_credentials(),
            Some("1-ABC:1-DEF".into()),
            TIMEOUT,
        )
        .unwrap();
        // The simulator checks the signature against its own host: only a re-signed hop passes.
        let fetched = client.estats(&cp(77, None)).await.unwrap();
        assert_eq!(
            fetched.response.execution_status.as_deref(),
            Some("SUCCESS")
        );
        assert_eq!(sim.calls(), 1);
        client.edge_locations().await.unwrap();
    }

    #[tokio::test]
    async fn redirect_loops_and_foreign_hosts_are_refused() {
        // A redirector that points at itself loops.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(move || async move {
            (
                http::StatusCode::FOUND,
                [(
                    LOCATION,
                    format!("http://{addr}/edge-diagnostics/v1/estats"),
                )],
            )
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = client_at(addr);
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains("more than 3"), "{err}");

        let away = redirector("https://evil.example.com".into(), 308).await;
        let client = client_at(away);
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains("evil.example.com"), "{err}");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let new = |u: &str| Client::new(Url::parse(u).unwrap(), demo_credentials(), None, TIMEOUT);
        let err = new("http://akab-x.luna.akamaiapis.net").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(err.to_string().contains("plain http is refused"));
        assert!(new("http://10.0.0.1:8080").is_err());
        assert!(new("ftp://akab-x.luna.akamaiapis.net").is_err());
        assert!(new("https://akab-x.luna.akamaiapis.net").is_ok());
        assert!(new("http://127.0.0.1:9").is_ok());
        assert!(new("http://127.8.9.10:9").is_ok());
        assert!(new("http://localhost:9").is_ok());
        assert!(new("http://[::1]:9").is_ok());

        let mut creds = demo_credentials();
        creds.access_token = Secret::new(" ");
        let err = Client::new(
            Url::parse("https://akab-x.luna.akamaiapis.net").unwrap(),
            creds,
            None,
            TIMEOUT,
        )
        .unwrap_err();
        assert!(err.to_string().contains("access_token is empty"));
    }

    #[test]
    fn base_path_prefix_and_user_info() {
        let client = Client::new(
            Url::parse("https://user:pw@akab-x.luna.akamaiapis.net/prefix/?a=b#f").unwrap(),
            demo_credentials(),
            Some("  ".into()),
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            client.endpoint(ESTATS_PATH).as_str(),
            "https://akab-x.luna.akamaiapis.net/prefix/edge-diagnostics/v1/estats"
        );
        assert_eq!(client.host(), "akab-x.luna.akamaiapis.net");
    }

    #[test]
    fn fixtures_map_to_kinds() {
        let rate = RateLimitHeaders {
            limit: Some(40),
            remaining: Some(0),
            next: None,
            server_date: None,
        };
        let cases = [
            ("400.json", 400, ErrorKind::BadRequest, "edgeLocationId"),
            ("401.json", 401, ErrorKind::Auth, "Inactive client token"),
            (
                "403.json",
                403,
                ErrorKind::Forbidden,
                "You don't have access",
            ),
            ("404.json", 404, ErrorKind::NotFound, "couldn't be found"),
            ("405.json", 405, ErrorKind::BadRequest, "Method not allowed"),
            (
                "429.json",
                429,
                ErrorKind::RateLimited,
                "exceeded total number",
            ),
        ];
        for (file, status, kind, words) in cases {
            let err = map_error_status(status, &fixture(file), rate.clone());
            assert_eq!(err.kind(), kind, "{file}");
            assert!(err.to_string().contains(words), "{file}: {err}");
        }
        let UpstreamError::RateLimited { headers, .. } =
            map_error_status(429, &fixture("429.json"), rate.clone())
        else {
            panic!("429 must be RateLimited");
        };
        assert_eq!(headers, rate);

        let skew = br#"{"type":"bad.request","title":"Bad request","status":400,"detail":"Invalid timestamp"}"#;
        assert_eq!(
            map_error_status(400, skew, RateLimitHeaders::default()).kind(),
            ErrorKind::ClockSkew
        );
        assert_eq!(
            map_error_status(422, b"{}", RateLimitHeaders::default()).kind(),
            ErrorKind::BadRequest
        );
        let html = map_error_status(
            502,
            b"<html>Bad gateway</html>",
            RateLimitHeaders::default(),
        );
        assert!(
            matches!(html, UpstreamError::Server { status: 502, ref detail } if detail == "Bad Gateway")
        );
    }

    #[test]
    fn estats_fixture_parses() {
        let response = decode_estats(&fixture("estats.json")).unwrap();
        assert_eq!(response.created_by.as_deref(), Some("adevi"));
        let result = response.result.unwrap();
        assert_eq!(result.edge_hits, Some(79655));
        assert_eq!(result.origin_failure_percentage, Some(1.0));
        let top = result.top_edge_ips_with_error.unwrap();
        assert_eq!(top[1].error_code.as_deref(), Some("18:ACCESS_DENIED"));
        assert_eq!(
            top[0].edge_ip_location.as_ref().unwrap().as_number,
            Some(1234)
        );
        assert_eq!(
            result.edge_status_code_distribution.unwrap()[1].http_status,
            204
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let body = br#"{
            "createdBy": "x", "executionStatus": "SUCCESS", "somethingNew": {"a": [1]},
            "request": {"cpCode": 1, "future": true},
            "result": {
                "edgeHits": 10.0, "edgeErrors": "2", "edgeFailurePercentage": 20.5, "newCounter": 3,
                "edgeStatusCodeDistribution": [{"httpStatus": 200, "hits": 8, "percentage": 80, "x": 1}],
                "topEdgeIpsWithError": [{"edgeIp": "1.2.3.4", "httpStatus": 503, "rank": 1,
                    "edgeIpLocation": {"city": "X", "continent": "EU"}}]
            }
        }"#;
        let response = decode_estats(body).unwrap();
        let result = response.result.unwrap();
        assert_eq!(result.edge_hits, Some(10));
        assert_eq!(result.edge_errors, Some(2));
        assert_eq!(result.edge_failure_percentage, Some(20.5));
        assert_eq!(
            result.top_edge_ips_with_error.unwrap()[0].http_status,
            Some(503)
        );
    }

    #[test]
    fn bad_success_bodies_are_invalid_responses() {
        for (body, words) in [
            (&b""[..], "empty"),
            (b"{\"executionStatus\": \"SUCC", "ends early"),
            (b"<html>hello</html>", "not valid JSON"),
            (b"[1,2]", "not an object"),
            (b"{\"hello\": 1}", "neither executionStatus nor result"),
            (
                b"{\"executionStatus\": \"SUCCESS\", \"result\": {\"edgeHits\": -5}}",
                "unexpected shape",
            ),
        ] {
            let err = decode_estats(body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse);
            assert!(err.to_string().contains(words), "{err}");
        }
        let failed = decode_estats(
            br#"{"executionStatus":"FAILURE","errors":[{"title":"t","detail":"No edge data"}]}"#,
        )
        .unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::ExecutionFailed);
        assert!(failed.to_string().contains("No edge data"));
        assert!(decode_edge_locations(b"{}").is_err());
        assert_eq!(
            decode_edge_locations(br#"{"edgeLocations":[{"id":"a","value":"A","n":1}]}"#)
                .unwrap()
                .edge_locations[0]
                .value,
            "A"
        );
    }

    #[test]
    fn rate_headers_in_all_spellings() {
        let mut h = HeaderMap::new();
        h.insert("Akamai-RateLimit-Limit", HeaderValue::from_static("40"));
        h.insert("Akamai-RateLimit-Remaining", HeaderValue::from_static("0"));
        h.insert(
            "Akamai-RateLimit-Next",
            HeaderValue::from_static("2025-01-02T03:04:35.500Z"),
        );
        h.insert(
            "Date",
            HeaderValue::from_static("Thu, 02 Jan 2025 03:04:05 GMT"),
        );
        let r = RateLimitHeaders::from_headers(&h);
        assert_eq!(r.limit, Some(40));
        assert_eq!(r.remaining, Some(0));
        assert_eq!(r.wait(Utc::now()), Some(Duration::from_millis(30_500)));

        let mut h = HeaderMap::new();
        h.insert("X-RateLimit-Limit", HeaderValue::from_static("10"));
        h.insert("Akamai-RateLimit-Limit", HeaderValue::from_static("40"));
        h.insert("X-RateLimit-Remaining", HeaderValue::from_static(" 5 "));
        h.insert(
            "X-RateLimit-Next",
            HeaderValue::from_static("Thu, 02 Jan 2025 03:05:00 GMT"),
        );
        let r = RateLimitHeaders::from_headers(&h);
        assert_eq!((r.limit, r.remaining), (Some(10), Some(5)));
        assert_eq!(r.next.unwrap().to_rfc3339(), "2025-01-02T03:05:00+00:00");
        assert_eq!(r.server_date, None);
        assert_eq!(parse_instant("Thursday, 02-Jan-25 03:05:00 GMT"), r.next);
        assert_eq!(parse_instant("Thu Jan  2 03:05:00 2025"), r.next);
        assert_eq!(parse_instant("soon"), None);
        assert_eq!(
            RateLimitHeaders::from_headers(&HeaderMap::new()),
            RateLimitHeaders::default()
        );
    }

    #[test]
    fn upstream_text_is_scrubbed() {
        let client = Client::new(
            Url::parse("https://akab-x.luna.akamaiapis.net").unwrap(),
            demo_credentials(),
            None,
            TIMEOUT,
        )
        .unwrap();
        let creds = demo_credentials();
        let body = format!(
            r#"{{"title":"Not authorized","detail":"token {} with header EG1-HMAC-SHA256 client_token=x;signature=abc"}}"#,
            creds.access_token.expose()
        );
        let err = client.status_error(401, body.as_bytes(), RateLimitHeaders::default());
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_clean(&err);
        assert!(err.to_string().contains("token *** with header ***"));
    }
}
