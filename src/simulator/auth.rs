//! What Akamai's API gateway checks before a call reaches eStats: the EdgeGrid signature over the
//! request as received, the clock, nonce reuse, and the per-minute rate limit.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::request::Parts;
use tokio::time::Instant;

use crate::edgegrid::{self, Credentials, ParsedAuthorization, SignedRequest};

/// Akamai's rate limits are per minute, over a sliding window.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Why the gateway refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401 with this detail.
    Unauthorized(String),
    /// 400 "Invalid timestamp".
    BadTimestamp,
}

/// The URL as the client must have signed it: plain http (the simulator has no TLS), the Host
/// header as received, and the path and query exactly as on the request line.
pub(crate) fn received_url(parts: &Parts) -> Option<url::Url> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    url::Url::parse(&format!("http://{host}{path_and_query}")).ok()
}

/// Checks the Authorization header of a received request against `creds`.
pub(crate) fn authenticate(
    creds: &Credentials,
    parts: &Parts,
    body: &[u8],
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<ParsedAuthorization, Refusal> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| Refusal::Unauthorized("Missing Authorization header".into()))?
        .to_str()
        .map_err(|_| Refusal::Unauthorized("Invalid authorization header".into()))?;
    let parsed = edgegrid::parse_authorization(header)
        .map_err(|e| Refusal::Unauthorized(format!("Invalid authorization header: {e}")))?;
    if parsed.client_token != creds.client_token.expose() {
        return Err(Refusal::Unauthorized("Invalid client token".into()));
    }
    if parsed.access_token != creds.access_token.expose() {
        return Err(Refusal::Unauthorized("Invalid access token".into()));
    }
    let signed_at =
        edgegrid::parse_timestamp(&parsed.timestamp).map_err(|_| Refusal::BadTimestamp)?;
    let url = received_url(parts)
        .ok_or_else(|| Refusal::Unauthorized("The signature does not match".into()))?;
    let request = SignedRequest {
        method: parts.method.as_str(),
        url: &url,
        headers: &[],
        body,
    };
    if !edgegrid::verify(creds, &request, &parsed) {
        return Err(Refusal::Unauthorized("The signature does not match".into()));
    }
    let skew = (now - signed_at).abs().to_std().unwrap_or(Duration::MAX);
    if skew > max_skew {
        return Err(Refusal::BadTimestamp);
    }
    Ok(parsed)
}

/// Nonces accepted recently; a second use within the retention is a replay.
#[derive(Debug)]
pub(crate) struct NonceCache {
    retention: Duration,
    order: VecDeque<(Instant, String)>,
    seen: HashSet<String>,
}

impl NonceCache {
    pub(crate) fn new(retention: Duration) -> Self {
        NonceCache {
            retention,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Records `nonce`; false when it was already used within the retention.
    pub(crate) fn insert(&mut self, nonce: &str, now: Instant) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.retention {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        if !self.seen.insert(nonce.to_string()) {
            return false;
        }
        self.order.push_back((now, nonce.to_string()));
        true
    }
}

/// Accepted calls in the last minute.
#[derive(Debug)]
pub(crate) struct RateWindow {
    limit: u32,
    accepted: VecDeque<Instant>,
}

impl RateWindow {
    pub(crate) fn new(limit: u32) -> Self {
        RateWindow {
            limit,
            accepted: VecDeque::new(),
        }
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    fn prune(&mut self, now: Instant) {
        while let Some(at) = self.accepted.front() {
            if now.saturating_duration_since(*at) < RATE_WINDOW {
                break;
            }
            self.accepted.pop_front();
        }
    }

    /// Takes a slot: `Ok(remaining)` after this call, or `Err(wait)` until a slot frees.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> Result<u32, Duration> {
        self.prune(now);
        if (self.accepted.len() as u64) < u64::from(self.limit) {
            self.accepted.push_back(now);
            return Ok(self.limit - self.accepted.len() as u32);
        }
        Err(match self.accepted.front() {
            Some(oldest) => RATE_WINDOW.saturating_sub(now.saturating_duration_since(*oldest)),
            // A limit of 0 never frees a slot; a minute is the honest "later".
            None => RATE_WINDOW,
        })
    }

    pub(crate) fn remaining(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.limit.saturating_sub(self.accepted.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_slides() {
        let mut w = RateWindow::new(3);
        let start = Instant::now();
        assert_eq!(w.try_acquire(start), Ok(2));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(w.try_acquire(Instant::now()), Ok(1));
        assert_eq!(w.try_acquire(Instant::now()), Ok(0));
        assert_eq!(w.try_acquire(Instant::now()), Err(Duration::from_secs(40)));
        assert_eq!(w.remaining(Instant::now()), 0);
        tokio::time::advance(Duration::from_secs(40)).await;
        // The first call has left the window; the other two have not.
        assert_eq!(w.remaining(Instant::now()), 1);
        assert_eq!(w.try_acquire(Instant::now()), Ok(0));
        assert_eq!(w.try_acquire(Instant::now()), Err(Duration::from_secs(20)));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(w.remaining(Instant::now()), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_limit_refuses_everything() {
        let mut w = RateWindow::new(0);
        assert_eq!(w.try_acquire(Instant::now()), Err(RATE_WINDOW));
        assert_eq!(w.limit(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn nonces_expire() {
        let mut n = NonceCache::new(Duration::from_secs(300));
        assert!(n.insert("a", Instant::now()));
        assert!(!n.insert("a", Instant::now()));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(!n.insert("a", Instant::now()));
        assert!(n.insert("b", Instant::now()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(n.insert("a", Instant::now()));
        assert!(!n.insert("b", Instant::now()));
    }
}
