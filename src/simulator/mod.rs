//! A local eStats server for demos, tests and benchmarks: the same API as Akamai
//! (`POST /edge-diagnostics/v1/estats`, `GET /edge-diagnostics/v1/edge-locations`), with every
//! EdgeGrid signature verified, nonce replays and clock skew refused, Akamai's per-minute rate
//! limit enforced with its headers, schema-checked request bodies, and generated answers that
//! look like real traffic (see [`data`]).
//!
//! It also takes injected failures ([`Fault`]) from code through [`FaultControl`], or from other
//! processes on the same host through unsigned control endpoints:
//!
//! - `POST /_simulator/faults` with `{"fault":"status","status":503,"times":2}`,
//!   `{"fault":"latency","ms":5000}`, `{"fault":"malformedJson"}`, `{"fault":"failure"}`,
//!   `{"fault":"rateLimited","nextInMs":2000}` (without `nextInMs`: no `*-RateLimit-Next`
//!   headers), `{"fault":"clockSkew"}`, `{"fault":"badAnswer","answer":"missingDistributions"}`
//!   (an answer that is not a measurement, see [`BadAnswer`] for the names),
//!   `{"fault":"redirect","status":307,"location":"http://127.0.0.1:9/x"}` or
//!   `{"fault":"inboundDelay","ms":3000}` (the request reaches the gateway that much later);
//!   without `times` the fault lasts until cleared.
//! - `DELETE /_simulator/faults` clears, `GET /_simulator/faults` shows the fault in force.
//! - `GET /_simulator/stats` answers `{"calls":N,"byTarget":{"cp:1/ANY":N}}`.
//!
//! Control endpoints answer loopback peers only, so a simulator bound to all interfaces for a
//! demo cannot be steered from the network.

mod auth;
pub mod data;
mod faults;
mod server;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use data::generate;
pub use faults::{BadAnswer, Fault, FaultControl};

use crate::edgegrid::{Credentials, Secret, DEFAULT_MAX_BODY};

/// Demo client token. Not a secret: it only opens the local simulator (`simulate: true`).
pub const DEMO_CLIENT_TOKEN: &str = "akab-simulator-client-token-demo0000000000";
/// Demo client secret. Not a secret: it only opens the local simulator.
pub const DEMO_CLIENT_SECRET: &str = "SimulatorDemoSecretNotForAkamai000000000000=";
/// Demo access token. Not a secret: it only opens the local simulator.
pub const DEMO_ACCESS_TOKEN: &str = "akab-simulator-access-token-demo0000000000";

/// The fixed credentials that the simulator accepts by default and the plugin uses with
/// `simulate: true`. They are published here on purpose and grant nothing at Akamai.
pub fn demo_credentials() -> Credentials {
    Credentials {
        client_token: Secret::new(DEMO_CLIENT_TOKEN),
        client_secret: Secret::new(DEMO_CLIENT_SECRET),
        access_token: Secret::new(DEMO_ACCESS_TOKEN),
        max_body: DEFAULT_MAX_BODY,
    }
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Credentials whose signatures are accepted.
    pub credentials: Credentials,
    /// Accepted signed calls (both endpoints together) per sliding minute; Akamai's is 40.
    pub rate_limit_per_minute: u32,
    /// Largest accepted distance between a request's timestamp and the simulator's clock.
    pub max_clock_skew: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            credentials: demo_credentials(),
            rate_limit_per_minute: 40,
            max_clock_skew: Duration::from_secs(30),
        }
    }
}

/// State shared by the request handlers.
pub(crate) struct Shared {
    config: SimulatorConfig,
    faults: FaultControl,
    gate: Mutex<Gate>,
    calls: AtomicU64,
    by_target: Mutex<BTreeMap<String, u64>>,
    /// When each signed call reached the gateway, as Akamai would count it.
    arrivals: Mutex<Vec<Instant>>,
}

/// Gateway bookkeeping, under one lock because every signed call touches both.
pub(crate) struct Gate {
    nonces: auth::NonceCache,
    window: auth::RateWindow,
}

impl Shared {
    fn new(config: SimulatorConfig) -> Self {
        // Nonces older than the allowed skew fail the timestamp check anyway; keep them a bit
        // longer than that window (and at least five minutes, like Akamai's gateway).
        let retention =
            (config.max_clock_skew * 2 + Duration::from_secs(60)).max(Duration::from_secs(300));
        Shared {
            gate: Mutex::new(Gate {
                nonces: auth::NonceCache::new(retention),
                window: auth::RateWindow::new(config.rate_limit_per_minute),
            }),
            config,
            faults: FaultControl::default(),
            calls: AtomicU64::new(0),
            by_target: Mutex::new(BTreeMap::new()),
            arrivals: Mutex::new(Vec::new()),
        }
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock()
    }

    fn targets(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.by_target.lock()
    }

    fn arrivals(&self) -> MutexGuard<'_, Vec<Instant>> {
        self.arrivals.lock()
    }

    fn count_call(&self, target_key: Option<String>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(key) = target_key {
            *self.targets().entry(key).or_insert(0) += 1;
        }
    }
}

/// A running simulator. Stops on [`Simulator::shutdown`] or when dropped.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds `addr` (use port 0 for any free port) and serves until shut down.
    pub async fn start(addr: SocketAddr, config: SimulatorConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let result = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "eStats simulator stopped");
            }
        });
        Ok(Simulator {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (a wildcard bind address is reached through loopback).
    pub fn base_url(&self) -> url::Url {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let authority = SocketAddr::new(ip, self.addr.port());
        url::Url::parse(&format!("http://{authority}"))
            .expect("a socket address always forms a valid http URL")
    }

    /// Handle to inject failures into the next calls.
    pub fn faults(&self) -> FaultControl {
        self.shared.faults.clone()
    }

    /// eStats calls that passed the gateway checks (signature, clock, nonce), including those
    /// then refused by the rate limit, a fault or the body schema.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// [`Simulator::calls`] for one target, by [`crate::target::Target::key`] (valid bodies only).
    pub fn calls_for(&self, target_key: &str) -> u64 {
        self.shared.targets().get(target_key).copied().unwrap_or(0)
    }

    /// When each signed call (both endpoints, refused ones included) passed the signature
    /// check, in order: the instants Akamai's rate limit would count.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.arrivals().clone()
    }

    /// Stops accepting, lets answers in flight finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::{json, Value};

    use super::*;
    use crate::edgegrid::{self, SignedRequest};

    async fn start(limit: u32) -> Simulator {
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

    struct Answer {
        status: u16,
        headers: http::HeaderMap,
        body: Value,
    }

    /// Sends a request signed by hand, so that tests control every signed part.
    async fn send_raw(
        sim: &Simulator,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        sign: Option<(&Credentials, DateTime<Utc>, &str)>,
    ) -> Answer {
        let url = sim.base_url().join(path_and_query).unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::Client::new()
            .request(method.clone(), url.clone())
            .body(body.to_vec());
        if let Some((creds, at, nonce)) = sign {
            let auth = edgegrid::authorization(
                creds,
                &SignedRequest {
                    method: method.as_str(),
                    url: &url,
                    headers: &[],
                    body,
                },
                &edgegrid::timestamp(at),
                nonce,
            );
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post_estats(sim: &Simulator, body: &[u8]) -> Answer {
        let creds = demo_credentials();
        let nonce = edgegrid::nonce();
        send_raw(
            sim,
            "POST",
            "/edge-diagnostics/v1/estats",
            body,
            Some((&creds, Utc::now(), &nonce)),
        )
        .await
    }

    #[tokio::test]
    async fn schema_invalid_bodies_are_400() {
        let sim = start(1000).await;
        let cases: [(&[u8], &str); 12] = [
            (b"{}", "either `cpCode` or `url`"),
            (br#"{"cpCode": 1, "url": "https://x/"}"#, "only one of"),
            (
                br#"{"cpCode": -1}"#,
                "`cpCode` must be a non-negative integer",
            ),
            (
                br#"{"cpCode": "12"}"#,
                "`cpCode` must be a non-negative integer",
            ),
            (br#"{"cpCode": 1.5}"#, "`cpCode` must be"),
            (
                br#"{"url": "www.example.com"}"#,
                "`url` must be a fully qualified URL",
            ),
            (br#"{"url": 5}"#, "`url` must be"),
            (
                br#"{"cpCode": 1, "delivery": "FAST_TLS"}"#,
                "`delivery` must be",
            ),
            (
                br#"{"cpCode": 1, "errorType": "ALL"}"#,
                "`errorType` must be",
            ),
            (
                br#"{"cpCode": 1, "edgeIp": "1.2.3.4"}"#,
                "Unknown member `edgeIp`",
            ),
            (b"[1]", "must be a JSON object"),
            (b"{\"cpCode\": 1", "not valid JSON"),
        ];
        for (body, words) in cases {
            let answer = post_estats(&sim, body).await;
            assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(answer.headers["content-type"], "application/problem+json");
            let detail = answer.body["detail"].as_str().unwrap();
            assert!(detail.contains(words), "{detail}");
            assert_eq!(answer.body["title"], "Incorrect request.");
            assert!(answer.body["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty()));
        }
        // They passed the gateway, so they count, but under no target.
        assert_eq!(sim.calls(), 12);
        let ok = post_estats(&sim, br#"{"cpCode": 0, "errorType": "EDGE_ERRORS"}"#).await;
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.body["request"],
            json!({"cpCode": 0, "errorType": "EDGE_ERRORS"})
        );
        assert_eq!(sim.calls_for("cp:0/ANY"), 1);
    }

    #[tokio::test]
    async fn gateway_refusals() {
        let sim = start(1000).await;
        let creds = demo_credentials();
        let path = "/edge-diagnostics/v1/estats?accountSwitchKey=1-AB%3A1-CD";
        let body = br#"{"cpCode": 1}"#;

        let missing = send_raw(&sim, "POST", path, body, None).await;
        assert_eq!(missing.status, 401);
        assert_eq!(missing.body["detail"], "Missing Authorization header");
        assert_eq!(
            missing.body["type"],
            "https://problems.luna.akamaiapis.net/-/pep-authn/deny"
        );
        assert!(missing.body["instance"]
            .as_str()
            .unwrap()
            .ends_with("/edge-diagnostics/v1/estats"));

        let mut other = demo_credentials();
        other.client_token = Secret::new("akab-someone-else");
        let nonce = edgegrid::nonce();
        let wrong_token =
            send_raw(&sim, "POST", path, body, Some((&other, Utc::now(), &nonce))).await;
        assert_eq!(wrong_token.body["detail"], "Invalid client token");

        let mut other = demo_credentials();
        other.access_token = Secret::new("akab-someone-else");
        let wrong_access =
            send_raw(&sim, "POST", path, body, Some((&other, Utc::now(), &nonce))).await;
        assert_eq!(wrong_access.body["detail"], "Invalid access token");

        let mut other = demo_credentials();
        other.client_secret = Secret::new("not-it");
        let wrong_secret =
            send_raw(&sim, "POST", path, body, Some((&other, Utc::now(), &nonce))).await;
        assert_eq!(wrong_secret.status, 401);
        assert_eq!(wrong_secret.body["detail"], "The signature does not match");

        let old = Utc::now() - chrono::Duration::seconds(45);
        let skewed = send_raw(&sim, "POST", path, body, Some((&creds, old, &nonce))).await;
        assert_eq!(skewed.status, 400);
        assert_eq!(skewed.body["detail"], "Invalid timestamp");
        let within = Utc::now() - chrono::Duration::seconds(20);
        let ok = send_raw(&sim, "POST", path, body, Some((&creds, within, &nonce))).await;
        assert_eq!(ok.status, 200);

        let replay = send_raw(&sim, "POST", path, body, Some((&creds, Utc::now(), &nonce))).await;
        assert_eq!(replay.status, 401);
        assert!(replay.body["detail"].as_str().unwrap().contains("nonce"));
        assert_eq!(sim.calls(), 1);
    }

    #[tokio::test]
    async fn the_signature_covers_body_query_and_host() {
        let sim = start(1000).await;
        let creds = demo_credentials();
        let url = sim
            .base_url()
            .join("/edge-diagnostics/v1/estats?accountSwitchKey=A")
            .unwrap();
        let sign = |url: &url::Url, body: &[u8]| {
            edgegrid::authorization(
                &creds,
                &SignedRequest {
                    method: "POST",
                    url,
                    headers: &[],
                    body,
                },
                &edgegrid::timestamp(Utc::now()),
                &edgegrid::nonce(),
            )
        };
        let http = reqwest::Client::new();
        let body = br#"{"cpCode": 1}"#.to_vec();
        let tampered_body = http
            .post(url.clone())
            .header("Authorization", sign(&url, &body))
            .body(br#"{"cpCode": 2}"#.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(tampered_body.status(), 401);

        let other_query = sim
            .base_url()
            .join("/edge-diagnostics/v1/estats?accountSwitchKey=B")
            .unwrap();
        let tampered_query = http
            .post(other_query)
            .header("Authorization", sign(&url, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(tampered_query.status(), 401);

        let mut other_host = url.clone();
        other_host.set_host(Some("localhost")).unwrap();
        let signed_for_other_host = http
            .post(url.clone())
            .header("Authorization", sign(&other_host, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(signed_for_other_host.status(), 401);

        let honest = http
            .post(url.clone())
            .header("Authorization", sign(&url, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(honest.status(), 200);
    }

    #[tokio::test]
    async fn routing_and_gateway_headers() {
        let sim = start(7).await;
        let creds = demo_credentials();
        let unknown = send_raw(&sim, "GET", "/edge-diagnostics/v1/nothing", b"", None).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.body["type"], "resource.not.found");
        assert_eq!(unknown.headers["x-ratelimit-limit"], "7");

        let wrong_method = send_raw(&sim, "GET", "/edge-diagnostics/v1/estats", b"", None).await;
        assert_eq!(wrong_method.status, 405);
        assert_eq!(wrong_method.headers["allow"], "POST");
        assert_eq!(wrong_method.body["title"], "Method not allowed");
        let wrong_method = send_raw(
            &sim,
            "POST",
            "/edge-diagnostics/v1/edge-locations",
            b"",
            None,
        )
        .await;
        assert_eq!(wrong_method.status, 405);

        let nonce = edgegrid::nonce();
        let locations = send_raw(
            &sim,
            "GET",
            "/edge-diagnostics/v1/edge-locations",
            b"",
            Some((&creds, Utc::now(), &nonce)),
        )
        .await;
        assert_eq!(locations.status, 200);
        assert!(locations.body["edgeLocations"][0]["id"].is_string());
        assert_eq!(locations.headers["x-ratelimit-limit"], "7");
        assert_eq!(locations.headers["x-ratelimit-remaining"], "6");
        assert!(locations.headers.contains_key("date"));
    }

    #[tokio::test]
    async fn control_endpoints_over_http() {
        let sim = start(1000).await;
        let http = reqwest::Client::new();
        let faults = sim.base_url().join("/_simulator/faults").unwrap();
        let set = http
            .post(faults.clone())
            .body(r#"{"fault":"status","status":503,"times":2}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200);
        let set: Value = set.json().await.unwrap();
        assert_eq!(
            set["active"],
            json!({"fault":"status","status":503,"times":2})
        );
        for expected in [503, 503, 200] {
            assert_eq!(
                post_estats(&sim, br#"{"cpCode": 3}"#).await.status,
                expected
            );
        }

        let bad = http
            .post(faults.clone())
            .body(r#"{"fault":"status","status":200}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let bad: Value = bad.json().await.unwrap();
        assert!(bad["detail"]
            .as_str()
            .unwrap()
            .contains("not an error status"));

        http.post(faults.clone())
            .body(r#"{"fault":"malformedJson"}"#)
            .send()
            .await
            .unwrap();
        let unicode = r#"{"url": "https://例え.jp/パス/ページ"}"#;
        for body in [unicode.as_bytes(), br#"{"cpCode": 3}"#] {
            let answer = post_estats(&sim, body).await;
            assert_eq!(answer.status, 200);
            assert!(answer.body.is_string(), "the JSON must be cut off");
        }
        let current: Value = http
            .get(faults.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(current["active"]["fault"], "malformedJson");
        let cleared: Value = http
            .delete(faults.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cleared["active"], Value::Null);

        http.post(faults.clone())
            .body(r#"{"fault":"failure","times":1}"#)
            .send()
            .await
            .unwrap();
        let failed = post_estats(&sim, br#"{"cpCode": 3}"#).await;
        assert_eq!(failed.body["executionStatus"], "FAILURE");
        assert_eq!(failed.body["request"]["cpCode"], 3);

        let stats: Value = http
            .get(sim.base_url().join("/_simulator/stats").unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["calls"], 6);
        assert_eq!(stats["byTarget"]["cp:3/ANY"], 5);
        assert_eq!(sim.calls_for("cp:3/ANY"), 5);
        assert_eq!(sim.calls_for("url:https://例え.jp/パス/ページ/ANY"), 1);
        assert_eq!(sim.calls_for("cp:4/ANY"), 0);
    }

    #[tokio::test]
    async fn rate_limit_answers_like_akamai() {
        let sim = start(3).await;
        for remaining in ["2", "1", "0"] {
            let ok = post_estats(&sim, br#"{"cpCode": 1}"#).await;
            assert_eq!(ok.status, 200);
            assert_eq!(ok.headers["x-ratelimit-remaining"], remaining);
        }
        let limited = post_estats(&sim, br#"{"cpCode": 1}"#).await;
        assert_eq!(limited.status, 429);
        assert_eq!(limited.body["title"], "Too Many Requests");
        assert_eq!(limited.headers["x-ratelimit-limit"], "3");
        assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
        let next = limited.headers["x-ratelimit-next"].to_str().unwrap();
        assert_eq!(
            next,
            limited.headers["akamai-ratelimit-next"].to_str().unwrap()
        );
        let next = DateTime::parse_from_rfc3339(next).unwrap();
        let wait = next.with_timezone(&Utc) - Utc::now();
        assert!(wait > chrono::Duration::seconds(55) && wait <= chrono::Duration::seconds(60));
        // Refused calls do not take a slot, but they were calls.
        assert_eq!(sim.calls(), 4);
    }

    #[tokio::test]
    async fn shutdown_and_drop_stop_serving() {
        let sim = start(10).await;
        let url = sim.base_url();
        sim.shutdown().await;
        assert!(reqwest::get(url).await.is_err());

        let sim = start(10).await;
        let url = sim.base_url();
        drop(sim);
        // The aborted task releases the listener when the runtime next polls it.
        let mut refused = false;
        for _ in 0..100 {
            tokio::task::yield_now().await;
            if reqwest::get(url.clone()).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "the simulator still answers after drop");
    }

    #[tokio::test]
    async fn wildcard_bind_gives_loopback_url() {
        let sim = Simulator::start("0.0.0.0:0".parse().unwrap(), SimulatorConfig::default())
            .await
            .unwrap();
        assert_eq!(sim.base_url().host_str(), Some("127.0.0.1"));
        assert_eq!(sim.base_url().port(), Some(sim.local_addr().port()));
        assert!(format!("{:?}", SimulatorConfig::default()).contains("***"));
        assert!(!format!("{:?}", SimulatorConfig::default()).contains(DEMO_CLIENT_SECRET));
    }
}
