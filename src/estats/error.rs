//! Typed upstream errors, modelled on reqwest's `Error`: one struct with an [`ErrorKind`] the code
//! matches on, a message a user can act on, and the rate-limit headers of a 429. Messages say
//! what happened and what to do; they never contain a credential, a signature or an
//! Authorization header (see [`UpstreamError::new`]).

use std::fmt;

use chrono::{DateTime, Utc};

/// Coarse classes of upstream failure, for matching, metrics and Grafana status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Connect,
    Tls,
    Timeout,
    Auth,
    Forbidden,
    ClockSkew,
    RateLimited,
    BadRequest,
    NotFound,
    Server,
    ExecutionFailed,
    /// An answer that is not a measurement: unreadable, incomplete or implausible (see
    /// `docs/upstream-validation.md`), or a redirect that was not followed.
    InvalidResponse,
}

impl ErrorKind {
    /// Label used in metrics (`result` label) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ClockSkew => "clock_skew",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::BadRequest => "client_error",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Server => "server_error",
            ErrorKind::ExecutionFailed => "execution_failed",
            ErrorKind::InvalidResponse => "invalid_response",
        }
    }
}

/// Rate-limit information read from an answer's headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitHeaders {
    /// `X-RateLimit-Limit` / `Akamai-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining` / `Akamai-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Next` / `Akamai-RateLimit-Next`: when a request will be accepted again.
    pub next: Option<DateTime<Utc>>,
    /// The answer's `Date` header, to measure `next` against the server's clock, not ours.
    pub server_date: Option<DateTime<Utc>>,
}

impl RateLimitHeaders {
    /// How long to wait before the next call, measured on the server's clock when it sent one.
    pub fn wait(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let next = self.next?;
        let reference = self.server_date.unwrap_or(now);
        (next - reference).to_std().ok()
    }
}

/// A failed upstream call. Cheap to clone (the plugin shares one failure between the callers of
/// a coalesced call and remembers it for credential backoff).
#[derive(Clone, PartialEq)]
pub struct UpstreamError {
    kind: ErrorKind,
    message: String,
    /// The headers of a 429 (empty for a client-side budget refusal).
    rate_limit: Option<RateLimitHeaders>,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for UpstreamError {}

impl UpstreamError {
    /// The one constructor: every message passes through [`scrub_authorization`], so that an
    /// upstream that echoes an `Authorization` header cannot carry it into logs or panels.
    /// Credential values themselves are removed by the client before it quotes upstream text,
    /// since only the client knows them.
    fn new(kind: ErrorKind, message: String) -> UpstreamError {
        UpstreamError {
            kind,
            message: scrub_authorization(&message),
            rate_limit: None,
        }
    }

    pub fn connect(host: &str, reason: &str) -> UpstreamError {
        Self::new(ErrorKind::Connect, format!("cannot reach {host}: {reason}. Check the host setting, DNS and that this Grafana server may connect to it"))
    }

    pub fn tls(host: &str, reason: &str) -> UpstreamError {
        Self::new(ErrorKind::Tls, format!("TLS with {host} failed: {reason}. Check the host (it must be the EdgeGrid host of your API client, e.g. akab-xxx.luna.akamaiapis.net)"))
    }

    pub fn timeout(seconds: u64) -> UpstreamError {
        Self::new(
            ErrorKind::Timeout,
            format!(
                "Akamai did not answer within {seconds} s. Raise requestTimeoutSeconds or try again later"
            ),
        )
    }

    pub fn auth(detail: &str) -> UpstreamError {
        Self::new(ErrorKind::Auth, format!("Akamai rejected the credentials (401 {detail}). Check client_token, client_secret and access_token; an inactive or deleted API client must be re-activated in Identity and Access Management"))
    }

    pub fn forbidden(detail: &str) -> UpstreamError {
        Self::new(ErrorKind::Forbidden, format!("the API client may not use Edge Diagnostics (403 {detail}). Grant the API client READ-WRITE access to the Edge Diagnostics API, and check accountSwitchKey"))
    }

    pub fn clock_skew(detail: &str) -> UpstreamError {
        Self::new(ErrorKind::ClockSkew, format!("Akamai rejected the request time (400 {detail}). This server's clock is off by more than 30 s: synchronise it with NTP"))
    }

    /// A 429 from Akamai, with its headers.
    pub fn rate_limited(detail: &str, headers: RateLimitHeaders) -> UpstreamError {
        let hint = match headers.next {
            Some(next) => format!("; next request allowed at {}", next.to_rfc3339()),
            None => String::new(),
        };
        let mut e = Self::new(ErrorKind::RateLimited, format!("Akamai's rate limit was reached (429 {detail}){hint}. The plugin slows down by itself; lower rateLimitPerMinute or the number of watched targets if it persists"));
        e.rate_limit = Some(headers);
        e
    }

    /// A failure learned from the shared history (`jsonData.historyDatabase`) rather than from
    /// a call of this process: the store itself failing, or the poll of the replica that owns
    /// the target, stored with its kind (`kind` as [`ErrorKind::as_str`] spells it; unknown
    /// kinds count as `connect`). The message is already written for the user.
    pub fn shared(kind: &str, message: &str) -> UpstreamError {
        const ALL: [ErrorKind; 12] = [
            ErrorKind::Connect,
            ErrorKind::Tls,
            ErrorKind::Timeout,
            ErrorKind::Auth,
            ErrorKind::Forbidden,
            ErrorKind::ClockSkew,
            ErrorKind::RateLimited,
            ErrorKind::BadRequest,
            ErrorKind::NotFound,
            ErrorKind::Server,
            ErrorKind::ExecutionFailed,
            ErrorKind::InvalidResponse,
        ];
        let kind = ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap_or(ErrorKind::Connect);
        Self::new(kind, message.to_string())
    }

    /// A call this plugin did not send (or stopped waiting for) to stay within the budget.
    pub fn budget_exhausted(reason: &str) -> UpstreamError {
        let mut e = Self::new(
            ErrorKind::RateLimited,
            format!("{reason}. The plugin keeps this data source within rateLimitPerMinute by itself; raise pollIntervalSeconds or watch fewer targets if it persists"),
        );
        e.rate_limit = Some(RateLimitHeaders::default());
        e
    }

    pub fn bad_request(status: u16, detail: &str) -> UpstreamError {
        Self::new(ErrorKind::BadRequest, format!("Akamai rejected the request ({status} {detail}). Check the CP code or URL and the delivery network"))
    }

    pub fn not_found(detail: &str) -> UpstreamError {
        Self::new(ErrorKind::NotFound, format!("Akamai answered 404 ({detail}). Check the host setting: it must be the EdgeGrid API host, not a website"))
    }

    pub fn server(status: u16, detail: &str) -> UpstreamError {
        Self::new(
            ErrorKind::Server,
            format!(
                "Akamai failed to answer ({status} {detail}). This is on Akamai's side; the plugin retries"
            ),
        )
    }

    pub fn execution_failed(detail: &str) -> UpstreamError {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        Self::new(ErrorKind::ExecutionFailed, format!("eStats could not collect the statistics (executionStatus FAILURE{detail}). Try again later; check that the CP code or URL gets traffic on this delivery network"))
    }

    /// An answer that could not be read.
    pub fn invalid_response(reason: &str) -> UpstreamError {
        Self::new(
            ErrorKind::InvalidResponse,
            format!("Akamai's answer could not be read ({reason})"),
        )
    }

    /// A readable answer that is not a measurement (see `docs/upstream-validation.md`).
    pub fn not_a_measurement(problem: &str) -> UpstreamError {
        Self::new(
            ErrorKind::InvalidResponse,
            format!("Akamai's answer was not used: {problem}. The poll counts as failed (a gap, never a 0); if this persists, report the answer to Akamai support"),
        )
    }

    /// A redirect that was not followed.
    pub fn redirect_refused(reason: &str) -> UpstreamError {
        Self::new(
            ErrorKind::InvalidResponse,
            format!("redirect refused: {reason}"),
        )
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The rate-limit headers of a 429 (defaults when the plugin's own budget refused).
    pub fn rate_limit(&self) -> Option<&RateLimitHeaders> {
        self.rate_limit.as_ref()
    }

    /// The HTTP status Grafana shows for a query that failed this way.
    pub fn grafana_status(&self) -> u16 {
        match self.kind {
            ErrorKind::Auth => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::RateLimited => 429,
            ErrorKind::Timeout => 504,
            ErrorKind::BadRequest => 400,
            _ => 502,
        }
    }

    /// Worth trying again soon with a fresh signature (the upstream layer decides when).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Server
                | ErrorKind::RateLimited
                | ErrorKind::ExecutionFailed
        )
    }
}

/// Cuts an EdgeGrid Authorization value out of a text: everything from its scheme name on is
/// replaced, since its parts (tokens, signature) follow it in one run.
fn scrub_authorization(text: &str) -> String {
    match text.find("EG1-HMAC-SHA256") {
        Some(at) => format!("{}***", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_statuses_and_messages() {
        let e = UpstreamError::server(503, "Service Unavailable");
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.grafana_status(), 502);
        assert!(e.is_transient());
        assert!(e.to_string().contains("503 Service Unavailable"), "{e}");

        let e = UpstreamError::rate_limited(
            "Too Many Requests",
            RateLimitHeaders {
                next: Some("2030-01-01T00:00:00Z".parse().unwrap()),
                ..Default::default()
            },
        );
        assert_eq!(e.grafana_status(), 429);
        assert!(e.rate_limit().unwrap().next.is_some());
        assert!(
            e.to_string().contains("next request allowed at 2030"),
            "{e}"
        );

        let e = UpstreamError::not_a_measurement(
            "eStats answered SUCCESS without edgeStatusCodeDistribution",
        );
        assert_eq!(e.kind().as_str(), "invalid_response");
        assert_eq!(e.grafana_status(), 502);
        assert!(!e.is_transient());
        assert_eq!(UpstreamError::auth("x").grafana_status(), 401);
        assert_eq!(UpstreamError::timeout(3).grafana_status(), 504);
        assert_eq!(
            UpstreamError::execution_failed("")
                .to_string()
                .matches("FAILURE)")
                .count(),
            1
        );
    }

    #[test]
    fn authorization_values_are_cut_at_construction() {
        let e = UpstreamError::auth(
            "header EG1-HMAC-SHA256 client_token=akab-x;access_token=akab-y;signature=abc",
        );
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("signature=") && !text.contains("akab-"),
            "{text}"
        );
        assert!(text.contains("header ***"), "{text}");
    }
}
