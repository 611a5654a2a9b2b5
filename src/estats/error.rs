//! Typed upstream errors. Messages say what happened and what to do; they never contain a
//! credential, a signature or an Authorization header.

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

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach {host}: {reason}. Check the host setting, DNS and that this Grafana server may connect to it")]
    Connect { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}. Check the host (it must be the EdgeGrid host of your API client, e.g. akab-xxx.luna.akamaiapis.net)")]
    Tls { host: String, reason: String },
    #[error(
        "Akamai did not answer within {seconds} s. Raise requestTimeoutSeconds or try again later"
    )]
    Timeout { seconds: u64 },
    #[error("Akamai rejected the credentials (401 {detail}). Check client_token, client_secret and access_token; an inactive or deleted API client must be re-activated in Identity and Access Management")]
    Auth { detail: String },
    #[error("the API client may not use Edge Diagnostics (403 {detail}). Grant the API client READ-WRITE access to the Edge Diagnostics API, and check accountSwitchKey")]
    Forbidden { detail: String },
    #[error("Akamai rejected the request time (400 {detail}). This server's clock is off by more than 30 s: synchronise it with NTP")]
    ClockSkew { detail: String },
    #[error("Akamai's rate limit was reached (429 {detail}){}. The plugin slows down by itself; lower rateLimitPerMinute or the number of watched targets if it persists", retry_hint(.headers))]
    RateLimited {
        detail: String,
        headers: RateLimitHeaders,
    },
    #[error("Akamai rejected the request ({status} {detail}). Check the CP code or URL and the delivery network")]
    BadRequest { status: u16, detail: String },
    #[error("Akamai answered 404 ({detail}). Check the host setting: it must be the EdgeGrid API host, not a website")]
    NotFound { detail: String },
    #[error(
        "Akamai failed to answer ({status} {detail}). This is on Akamai's side; the plugin retries"
    )]
    Server { status: u16, detail: String },
    #[error("eStats could not collect the statistics (executionStatus FAILURE{}). Try again later; check that the CP code or URL gets traffic on this delivery network", detail_suffix(.detail))]
    ExecutionFailed { detail: String },
    #[error("Akamai's answer could not be read ({reason})")]
    InvalidResponse { reason: String },
}

fn retry_hint(h: &RateLimitHeaders) -> String {
    match h.next {
        Some(next) => format!("; next request allowed at {}", next.to_rfc3339()),
        None => String::new(),
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl UpstreamError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::Connect { .. } => ErrorKind::Connect,
            UpstreamError::Tls { .. } => ErrorKind::Tls,
            UpstreamError::Timeout { .. } => ErrorKind::Timeout,
            UpstreamError::Auth { .. } => ErrorKind::Auth,
            UpstreamError::Forbidden { .. } => ErrorKind::Forbidden,
            UpstreamError::ClockSkew { .. } => ErrorKind::ClockSkew,
            UpstreamError::RateLimited { .. } => ErrorKind::RateLimited,
            UpstreamError::BadRequest { .. } => ErrorKind::BadRequest,
            UpstreamError::NotFound { .. } => ErrorKind::NotFound,
            UpstreamError::Server { .. } => ErrorKind::Server,
            UpstreamError::ExecutionFailed { .. } => ErrorKind::ExecutionFailed,
            UpstreamError::InvalidResponse { .. } => ErrorKind::InvalidResponse,
        }
    }

    /// The HTTP status Grafana shows for a query that failed this way.
    pub fn grafana_status(&self) -> u16 {
        match self.kind() {
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
            self.kind(),
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Server
                | ErrorKind::RateLimited
                | ErrorKind::ExecutionFailed
        )
    }

    /// Credential problems: retrying every interval only burns budget; back off for minutes.
    pub fn is_credential_problem(&self) -> bool {
        matches!(self.kind(), ErrorKind::Auth | ErrorKind::Forbidden)
    }
}
