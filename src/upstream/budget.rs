//! The client-side call budget of one data source: at most `limit` calls in any 60 s window,
//! paused as a whole after a 429, and paced down when Akamai says few calls remain.
//!
//! A sliding window of call instants is used rather than a refilling token bucket: a bucket of
//! `limit` tokens refilled at `limit`/min lets up to twice `limit` calls through in one 60 s window
//! (a full bucket plus its refill), while Akamai counts calls per window. The window makes "never
//! more than `limit` in any 60 s" exact.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::estats::{RateLimitHeaders, UpstreamError};

pub const WINDOW: Duration = Duration::from_secs(60);

/// What `/targets` shows about the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetState {
    /// `rateLimitPerMinute`.
    pub limit_per_minute: u32,
    /// Calls that could start now without exceeding the window (0 while paused).
    pub tokens_left: u32,
    /// Calls started in the last 60 s.
    pub calls_last_minute: u32,
    /// Set while a 429 (or an exhausted `RateLimit-Remaining`) pauses every call.
    pub paused_until: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    /// Minimum spacing between calls imposed by a low `RateLimit-Remaining`, in ms (0 = none).
    pub min_gap_ms: u64,
    /// What Akamai last reported as remaining in its own window.
    pub upstream_remaining: Option<u32>,
}

#[derive(Debug)]
struct State {
    calls: VecDeque<Instant>,
    paused_until: Option<Instant>,
    pause_reason: Option<String>,
    min_gap: Duration,
    upstream_remaining: Option<u32>,
    consecutive_429: u32,
}

#[derive(Debug)]
pub struct Budget {
    limit: u32,
    state: Mutex<State>,
    /// Waiters queue here, so calls are granted first come, first served.
    gate: tokio::sync::Mutex<()>,
}

/// A `Mutex` whose holder panicked still holds consistent data here (every update is a single
/// assignment or push), so poisoning is ignored rather than spread.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Budget {
    pub fn new(limit_per_minute: u32) -> Budget {
        Budget {
            limit: limit_per_minute.max(1),
            state: Mutex::new(State {
                calls: VecDeque::new(),
                paused_until: None,
                pause_reason: None,
                min_gap: Duration::ZERO,
                upstream_remaining: None,
                consecutive_429: 0,
            }),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How long the next call must wait from `now` (zero = may start now).
    fn wait_needed(&self, st: &mut State, now: Instant) -> Duration {
        while st.calls.front().is_some_and(|t| *t + WINDOW <= now) {
            st.calls.pop_front();
        }
        let mut ready = now;
        if st.calls.len() >= self.limit as usize {
            let idx = st.calls.len() - self.limit as usize;
            ready = ready.max(st.calls[idx] + WINDOW);
        }
        if let Some(last) = st.calls.back() {
            ready = ready.max(*last + st.min_gap);
        }
        if let Some(until) = st.paused_until {
            if until > now {
                ready = ready.max(until);
            } else {
                st.paused_until = None;
                st.pause_reason = None;
            }
        }
        ready - now
    }

    /// Waits for a call slot and takes it. Fails without waiting when the slot cannot come
    /// before `deadline`, so a query does not hang on a budget that is booked for minutes.
    pub async fn acquire(&self, deadline: Instant) -> Result<(), UpstreamError> {
        let _turn = tokio::time::timeout_at(deadline, self.gate.lock())
            .await
            .map_err(|_| self.exhausted(deadline.saturating_duration_since(Instant::now())))?;
        loop {
            let now = Instant::now();
            let wait = {
                let mut st = lock(&self.state);
                let wait = self.wait_needed(&mut st, now);
                if wait.is_zero() {
                    st.calls.push_back(now);
                    return Ok(());
                }
                wait
            };
            if now + wait > deadline {
                return Err(self.exhausted(wait));
            }
            // Loop rather than trust the computed wait: a 429 seen meanwhile may extend it.
            tokio::time::sleep(wait).await;
        }
    }

    fn exhausted(&self, wait: Duration) -> UpstreamError {
        let st = lock(&self.state);
        let why = match &st.pause_reason {
            Some(reason) => format!("calls are paused ({reason})"),
            None => format!(
                "this data source's budget of {} calls per minute is in use",
                self.limit
            ),
        };
        UpstreamError::RateLimited {
            detail: format!(
                "not sent: {why}; the next call is possible in {} s",
                wait.as_secs().max(1)
            ),
            headers: RateLimitHeaders::default(),
        }
    }

    /// Adjusts the pace to what Akamai reports as left in its window: below a quarter of the
    /// limit, calls are spread over the rest of the minute instead of running into a 429.
    pub fn observe(&self, headers: &RateLimitHeaders) {
        let mut st = lock(&self.state);
        let Some(remaining) = headers.remaining else {
            return;
        };
        st.upstream_remaining = Some(remaining);
        let limit = headers.limit.unwrap_or(self.limit).max(1);
        let threshold = (limit / 4).max(2);
        st.min_gap = if remaining < threshold {
            WINDOW / (remaining + 1)
        } else {
            Duration::ZERO
        };
    }

    pub fn succeeded(&self) {
        lock(&self.state).consecutive_429 = 0;
    }

    /// A 429: pauses every call of the data source until `Next` (measured on the server's
    /// clock), or for an exponentially growing, jittered time when the answer gave none.
    /// Returns the pause.
    pub fn rate_limited(&self, headers: &RateLimitHeaders, now_wall: DateTime<Utc>) -> Duration {
        let mut st = lock(&self.state);
        st.consecutive_429 = st.consecutive_429.saturating_add(1);
        let (pause, reason) = match headers.wait(now_wall) {
            Some(wait) => (
                // A `Next` a few ms in the past still means "not yet" on our side of the wire.
                wait.clamp(Duration::from_millis(250), MAX_PAUSE),
                "Akamai answered 429 and named the next allowed time".to_string(),
            ),
            None => (
                jittered(backoff(
                    RATE_LIMIT_BACKOFF_BASE,
                    st.consecutive_429,
                    MAX_PAUSE,
                )),
                format!(
                    "Akamai answered 429 {} time(s) in a row without a next allowed time",
                    st.consecutive_429
                ),
            ),
        };
        let until = Instant::now() + pause;
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
            st.pause_reason = Some(reason);
        }
        pause
    }

    /// Time left in the current pause, if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let st = lock(&self.state);
        st.paused_until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    pub fn state(&self) -> BudgetState {
        let now = Instant::now();
        let mut st = lock(&self.state);
        // Purges calls older than the window and an expired pause before reporting.
        self.wait_needed(&mut st, now);
        let calls = st.calls.len() as u32;
        let tokens_left = if st.paused_until.is_some() {
            0
        } else {
            self.limit.saturating_sub(calls)
        };
        BudgetState {
            limit_per_minute: self.limit,
            tokens_left,
            calls_last_minute: calls,
            paused_until: st.paused_until.map(|u| wall(u, now)),
            pause_reason: st.pause_reason.clone(),
            min_gap_ms: st.min_gap.as_millis() as u64,
            upstream_remaining: st.upstream_remaining,
        }
    }
}

pub const RATE_LIMIT_BACKOFF_BASE: Duration = Duration::from_secs(5);
/// No answer makes the plugin go quiet for longer than this.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// `base * 2^(n-1)`, capped.
pub fn backoff(base: Duration, n: u32, cap: Duration) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(cap)
}

/// ±25 % jitter, so that data sources (and processes) that failed together do not retry
/// together.
pub fn jittered(d: Duration) -> Duration {
    use rand::Rng;
    d.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
}

/// An instant of the monotonic clock as wall-clock time, for display.
fn wall(at: Instant, now: Instant) -> DateTime<Utc> {
    let ahead = at.saturating_duration_since(now);
    Utc::now() + chrono::Duration::from_std(ahead).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_allows_limit_then_waits_for_the_oldest_call() {
        let b = Budget::new(3);
        let start = Instant::now();
        let far = start + Duration::from_secs(3600);
        for _ in 0..3 {
            b.acquire(far).await.unwrap();
        }
        assert_eq!(Instant::now(), start);
        assert_eq!(b.state().tokens_left, 0);
        b.acquire(far).await.unwrap();
        assert_eq!(Instant::now() - start, WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_when_the_slot_is_past_the_deadline() {
        let b = Budget::new(1);
        let start = Instant::now();
        b.acquire(start + Duration::from_secs(1)).await.unwrap();
        let err = b
            .acquire(start + Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("budget of 1 calls per minute"));
        assert_eq!(Instant::now(), start, "no pointless wait");
    }

    #[tokio::test(start_paused = true)]
    async fn low_remaining_spreads_calls() {
        let b = Budget::new(40);
        let far = Instant::now() + Duration::from_secs(3600);
        b.acquire(far).await.unwrap();
        b.observe(&RateLimitHeaders {
            limit: Some(40),
            remaining: Some(2),
            ..Default::default()
        });
        let t = Instant::now();
        b.acquire(far).await.unwrap();
        assert_eq!(Instant::now() - t, Duration::from_secs(20));
        // Plenty left again: no spacing.
        b.observe(&RateLimitHeaders {
            limit: Some(40),
            remaining: Some(30),
            ..Default::default()
        });
        let t = Instant::now();
        b.acquire(far).await.unwrap();
        assert_eq!(Instant::now(), t);
    }

    #[tokio::test(start_paused = true)]
    async fn next_is_measured_on_the_server_clock() {
        let b = Budget::new(40);
        let server_date: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        // Our wall clock is far off; only Next - Date counts.
        let pause = b.rate_limited(
            &RateLimitHeaders {
                next: Some(server_date + chrono::Duration::seconds(7)),
                server_date: Some(server_date),
                ..Default::default()
            },
            Utc::now(),
        );
        assert_eq!(pause, Duration::from_secs(7));
        assert_eq!(b.state().tokens_left, 0);
        let t = Instant::now();
        b.acquire(t + Duration::from_secs(60)).await.unwrap();
        assert_eq!(Instant::now() - t, Duration::from_secs(7));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1, MAX_PAUSE), base);
        assert_eq!(backoff(base, 3, MAX_PAUSE), Duration::from_secs(20));
        assert_eq!(backoff(base, 40, MAX_PAUSE), MAX_PAUSE);
        for _ in 0..100 {
            let j = jittered(base);
            assert!(j >= base.mul_f64(0.75) && j <= base.mul_f64(1.25));
        }
    }
}
