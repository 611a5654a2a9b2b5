//! The signed eStats HTTP client: transport only. What the answers mean is read by
//! [`super::decode`].
//!
//! One method call is one logical upstream call: no retries here, because the upstream layer owns
//! the rate budget and backoff and calls again (which signs again). Every request, and every
//! redirect hop, is signed with a fresh timestamp and nonce over the exact URL and body bytes that
//! go on the wire. Redirects are followed only within the configured origin (same scheme, host
//! and port), so the signed `Authorization` header never reaches another server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use url::Url;

use super::decode::{self, truncate, Scrubber, MAX_DETAIL_CHARS};
use super::error::{RateLimitHeaders, UpstreamError};
use super::model::{EdgeLocations, EstatsRequest, EstatsResponse};
use crate::edgegrid::{self, Credentials, SignedRequest};
use crate::edgerc::is_loopback_url;
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
/// A refused redirect's Location is quoted up to here: enough to recognise, too short to carry
/// a payload into logs.
const MAX_LOCATION_CHARS: usize = 64;

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
    scrubber: Scrubber,
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
        check_transport(&base_url).map_err(|reason| UpstreamError::tls(&host, &reason))?;
        for (name, value) in [
            ("client_token", credentials.client_token.expose()),
            ("client_secret", credentials.client_secret.expose()),
            ("access_token", credentials.access_token.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(UpstreamError::auth(&format!(
                    "{name} is empty, so nothing was sent; fill it in"
                )));
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
            .map_err(|e| {
                UpstreamError::tls(
                    &host,
                    &format!("the HTTP client could not be set up ({})", e.without_url()),
                )
            })?;
        let account_switch_key = account_switch_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        let scrubber = Scrubber::new([
            credentials.client_secret.expose(),
            credentials.client_token.expose(),
            credentials.access_token.expose(),
        ]);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                host,
                credentials,
                scrubber,
                account_switch_key,
                timeout,
            }),
        })
    }

    /// The API host (with its port when one is given), for messages.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// `POST /edge-diagnostics/v1/estats` for one target. An answer that is not a finished,
    /// complete and plausible measurement is an error (see [`decode::decode_estats`]).
    pub async fn estats(&self, target: &Target) -> Result<Fetched, UpstreamError> {
        let body = serde_json::to_vec(&EstatsRequest::from(target)).map_err(|e| {
            UpstreamError::invalid_response(&format!("the request body could not be written ({e})"))
        })?;
        let answer = self.call(Method::POST, ESTATS_PATH, Some(body)).await?;
        let received_at = Utc::now();
        if !(200..300).contains(&answer.status) {
            return Err(self.status_error(answer.status, &answer.body, answer.rate));
        }
        let response = decode::decode_estats(&answer.body, &self.inner.scrubber)?;
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
        let locations = decode::decode_edge_locations(&answer.body)?;
        Ok((locations, answer.rate))
    }

    fn status_error(&self, status: u16, body: &[u8], rate: RateLimitHeaders) -> UpstreamError {
        decode::status_error(status, body, rate, &self.inner.scrubber)
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
                    return Err(UpstreamError::redirect_refused(&format!(
                        "{} redirected more than {MAX_REDIRECTS} times; set the host to the final API host",
                        self.host()
                    )));
                }
                hops += 1;
                url = self.redirect_target(&url, response.headers())?;
                // 303 means "fetch the result with GET"; 301/302/307/308 keep method and body
                // because an API host that moved a path still expects the same call.
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
        // The last line of defence for "credentials only to the API host": whatever led here,
        // a request to any other origin is not signed and not sent.
        if !same_origin(url, &self.inner.base) {
            return Err(UpstreamError::redirect_refused(&format!(
                "{} is not the configured API host {}; nothing was sent",
                short_host(url),
                self.host()
            )));
        }
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
        let mut authorization = HeaderValue::from_str(&authorization).map_err(|_| {
            UpstreamError::auth("a credential contains characters that cannot be sent in a header; copy it again from the .edgerc or Akamai Control Center")
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

    /// The next hop of a redirect: only within the configured origin. The Akamai API does not
    /// redirect, so a redirect elsewhere is a misconfigured host or someone fishing for the
    /// signed header; a path moved on the same host is still followed (and signed afresh).
    fn redirect_target(&self, from: &Url, headers: &HeaderMap) -> Result<Url, UpstreamError> {
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                UpstreamError::redirect_refused(&format!(
                    "{} sent a redirect without a readable Location",
                    self.host()
                ))
            })?;
        let next = from.join(location).map_err(|_| {
            UpstreamError::redirect_refused(&format!(
                "{} redirected to an unreadable Location ({})",
                self.host(),
                self.inner
                    .scrubber
                    .apply(&truncate(location, MAX_LOCATION_CHARS))
            ))
        })?;
        if !same_origin(&next, &self.inner.base) {
            return Err(UpstreamError::redirect_refused(&format!(
                "{} redirected to {}, another {}; credentials are only sent to the configured API host. Set the host setting to the final API host if that is the right one",
                self.host(),
                short_host(&next),
                if next.scheme() != self.inner.base.scheme() {
                    "scheme"
                } else if next.host_str() != self.inner.base.host_str() {
                    "host"
                } else {
                    "port"
                }
            )));
        }
        Ok(next)
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(UpstreamError::invalid_response(&format!(
                            "the answer is larger than {} MiB, which no eStats answer is",
                            MAX_ANSWER_BYTES >> 20
                        )));
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
            return UpstreamError::timeout((self.inner.timeout.as_secs_f64().ceil() as u64).max(1));
        }
        let chain = error_chain(&error);
        let reason = self
            .inner
            .scrubber
            .apply(&truncate(&chain.join(": "), MAX_DETAIL_CHARS));
        if self.inner.base.scheme() == "https" && is_tls_failure(&error, &chain) {
            UpstreamError::tls(self.host(), &reason)
        } else {
            UpstreamError::connect(self.host(), &reason)
        }
    }
}

fn is_followed_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Same scheme, host and port (a default port spelled out or not is the same port).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Host with its port when the URL names one, e.g. `127.0.0.1:8080` or `akab-x.luna.akamaiapis.net`.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The scheme and authority of a URL someone else chose, cut short.
fn short_host(url: &Url) -> String {
    truncate(
        &format!("{}://{}", url.scheme(), authority(url)),
        MAX_LOCATION_CHARS,
    )
}

/// https anywhere, http only to loopback; the reason names the fix.
fn check_transport(url: &Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{} has no host; use https://akab-xxx.luna.akamaiapis.net",
            truncate(url.as_str(), MAX_LOCATION_CHARS)
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_url(url) => Ok(()),
        "http" => Err(format!(
            "plain http is refused for {} (it would send the signed request unencrypted); use https://, http is only for a simulator on 127.0.0.1 or localhost",
            truncate(&authority(url), MAX_LOCATION_CHARS)
        )),
        other => Err(format!(
            "the scheme {}: is not supported; use https://",
            truncate(other, 16)
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

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

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
        rec.seen.lock().push(Seen {
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
        let seen = rec.seen.lock().clone();
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
            if let Fault::Status(code) = fault {
                assert!(err.to_string().contains(&code.to_string()), "{err}");
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
            assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
            let headers = err.rate_limit().unwrap();
            assert!(err.to_string().contains("exceeded"));
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
        let headers = err.rate_limit().expect("RateLimited carries its headers");
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
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
        let headers = err.rate_limit().unwrap();
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
            // Wide enough that a loaded CI machine answers the 50 ms call below in time.
            Duration::from_secs(1),
        )
        .unwrap();
        sim.faults()
            .set(Fault::Latency(Duration::from_secs(3)), Some(1));
        let err = client.estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("within 1 s"), "{err}");

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

    #[tokio::test]
    async fn a_redirect_within_the_api_host_is_signed_again() {
        let sim = simulator().await;
        // The simulator moves its eStats path once; the client follows on the same origin and
        // signs the new URL (the simulator checks the signature against what arrived).
        sim.faults().set(
            Fault::Redirect {
                status: 307,
                location: format!("{ESTATS_PATH}?moved=1"),
            },
            Some(1),
        );
        let client = client_for(&sim);
        let fetched = client.estats(&cp(77, None)).await.unwrap();
        assert_eq!(
            fetched.response.execution_status.as_deref(),
            Some("SUCCESS")
        );
        assert_eq!(sim.calls(), 2);
    }

    #[tokio::test]
    async fn redirects_to_another_origin_are_refused_and_send_nothing() {
        let (rec, elsewhere) = recorder(fixture("estats.json")).await;
        let sim = simulator().await;
        let client = client_for(&sim);
        let sim_port = sim.local_addr().port();
        let other_port = elsewhere.port().unwrap();
        for (location, words) in [
            // Another port of the same loopback address.
            (
                format!("http://127.0.0.1:{other_port}{ESTATS_PATH}"),
                format!("127.0.0.1:{other_port}, another port"),
            ),
            // Another loopback address, same port.
            (
                format!("http://127.0.0.2:{sim_port}{ESTATS_PATH}"),
                "127.0.0.2".to_string(),
            ),
            (
                format!("http://localhost:{other_port}{ESTATS_PATH}"),
                "localhost".to_string(),
            ),
            (
                format!("https://127.0.0.1:{sim_port}{ESTATS_PATH}"),
                "another scheme".to_string(),
            ),
            (
                "https://evil.example.com/x".to_string(),
                "evil.example.com".to_string(),
            ),
        ] {
            sim.faults().set(
                Fault::Redirect {
                    status: 308,
                    location,
                },
                Some(1),
            );
            let err = client.estats(&cp(1, None)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
            assert_eq!(err.grafana_status(), 502);
            assert!(err.to_string().contains("redirect refused"), "{err}");
            assert!(err.to_string().contains(&words), "{words}: {err}");
            assert_clean(&err);
        }
        assert!(rec.seen.lock().is_empty(), "the other origin got a request");

        // A long Location is quoted short.
        let long = format!("http://{}.example.com/", "a".repeat(5000));
        sim.faults().set(
            Fault::Redirect {
                status: 302,
                location: long,
            },
            Some(1),
        );
        let err = client.edge_locations().await.unwrap_err();
        assert!(err.to_string().len() < 500, "{err}");
    }

    #[tokio::test]
    async fn redirect_loops_are_refused() {
        let sim = simulator().await;
        sim.faults().set(
            Fault::Redirect {
                status: 302,
                location: ESTATS_PATH.to_string(),
            },
            None,
        );
        let err = client_for(&sim).estats(&cp(1, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains("more than 3"), "{err}");
    }

    #[tokio::test]
    async fn nothing_is_signed_for_another_origin() {
        let (rec, elsewhere) = recorder(fixture("estats.json")).await;
        let client = client_for(&simulator().await);
        let err = client
            .send_signed(&Method::GET, &elsewhere.join(ESTATS_PATH).unwrap(), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        assert!(rec.seen.lock().is_empty());
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
