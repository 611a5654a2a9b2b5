//! The client-side call budget of one data source: at most `limit` calls in any 60 s window as
//! Akamai counts them, paused as a whole after a 429, and paced down when Akamai says few calls
//! remain.
//!
//! A sliding window of calls is used rather than a refilling token bucket: a bucket of `limit`
//! tokens refilled at `limit`/min lets up to twice `limit` calls through in one 60 s window (a
//! full bucket plus its refill), while Akamai counts calls per window.
//!
//! The window must hold on Akamai's clock, not ours. Akamai sees a call at some instant between
//! our send and the arrival of its answer, and we cannot know which. So a call holds its slot
//! from its send until its answer is in, and for [`WINDOW`] plus [`MARGIN`] after that. Then any
//! two calls `limit` apart are received more than 60 s apart: if call B starts when call A's slot
//! frees, A was received before A's answer came back, which is at least `WINDOW` before B was
//! sent, and B is received after it is sent. The argument needs no agreement between the two
//! clocks' readings (an offset cancels out of every difference), only on the length of a
//! second; [`MARGIN`] covers what is left: the two clocks' drift over a minute (parts per
//! million), a receiver that counts in whole seconds, and a request still on the wire after we
//! gave up on it at our timeout.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::estats::{RateLimitHeaders, UpstreamError};

pub const WINDOW: Duration = Duration::from_secs(60);
/// Added to every slot after its answer; see the module documentation.
pub const MARGIN: Duration = Duration::from_secs(2);

/// What `/targets` shows about the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetState {
    /// `rateLimitPerMinute`.
    pub limit_per_minute: u32,
    /// Calls that could start now without exceeding the window (0 while paused).
    pub tokens_left: u32,
    /// Calls holding a slot: in flight, or answered less than 60 s (plus the margin) ago.
    pub calls_last_minute: u32,
    /// Set while a 429 (or an exhausted `RateLimit-Remaining`) pauses every call.
    pub paused_until: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    /// Minimum spacing between calls imposed by a low `RateLimit-Remaining`, in ms (0 = none).
    pub min_gap_ms: u64,
    /// What Akamai last reported as remaining in its own window.
    pub upstream_remaining: Option<u32>,
}

/// One call's hold on the window.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    /// When the answer (or failure) came back; `None` while the call is in flight.
    done: Option<Instant>,
}

impl Slot {
    /// When the slot frees, once known.
    fn frees_at(&self) -> Option<Instant> {
        self.done.map(|d| d + WINDOW + MARGIN)
    }
}

#[derive(Debug)]
struct State {
    slots: VecDeque<Slot>,
    next_id: u64,
    last_sent: Option<Instant>,
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
    /// Rung when a call in flight lands, for a waiter whose every slot was in flight.
    landed: Notify,
}

/// A call's slot, held from its send until its answer is in; dropping it starts the slot's
/// last `WINDOW` + `MARGIN`.
#[must_use = "the slot frees when the call ends: hold it across the call"]
#[derive(Debug)]
pub struct Permit<'a> {
    budget: &'a Budget,
    id: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        {
            let mut st = self.budget.state.lock();
            if let Some(slot) = st.slots.iter_mut().find(|s| s.id == self.id) {
                slot.done = Some(now);
            }
        }
        self.budget.landed.notify_waiters();
    }
}

/// When the next call may start.
enum Ready {
    Now,
    At(Instant),
    /// Every slot is held by a call in flight: when one lands.
    WhenOneLands,
}

impl Budget {
    pub fn new(limit_per_minute: u32) -> Budget {
        Budget {
            limit: limit_per_minute.max(1),
            state: Mutex::new(State {
                slots: VecDeque::new(),
                next_id: 0,
                last_sent: None,
                paused_until: None,
                pause_reason: None,
                min_gap: Duration::ZERO,
                upstream_remaining: None,
                consecutive_429: 0,
            }),
            gate: tokio::sync::Mutex::new(()),
            landed: Notify::new(),
        }
    }

    /// Drops freed slots and an expired pause.
    fn purge(st: &mut State, now: Instant) {
        st.slots.retain(|s| s.frees_at().is_none_or(|t| t > now));
        if st.paused_until.is_some_and(|u| u <= now) {
            st.paused_until = None;
            st.pause_reason = None;
        }
    }

    fn ready(&self, st: &mut State, now: Instant) -> Ready {
        Self::purge(st, now);
        let mut at = now;
        if st.slots.len() >= self.limit as usize {
            // The k-th earliest release frees enough slots for one more call.
            let mut frees: Vec<Instant> = st.slots.iter().filter_map(Slot::frees_at).collect();
            let needed = st.slots.len() + 1 - self.limit as usize;
            if frees.len() < needed {
                return Ready::WhenOneLands;
            }
            frees.sort();
            at = at.max(frees[needed - 1]);
        }
        if let Some(last) = st.last_sent {
            at = at.max(last + st.min_gap);
        }
        if let Some(until) = st.paused_until {
            at = at.max(until);
        }
        if at <= now {
            Ready::Now
        } else {
            Ready::At(at)
        }
    }

    /// Waits for a call slot and takes it; hold the permit until the call's answer is in.
    /// Fails without waiting when the slot cannot come before `deadline`, so a query does not
    /// hang on a budget that is booked for minutes.
    pub async fn acquire(&self, deadline: Instant) -> Result<Permit<'_>, UpstreamError> {
        let _turn = tokio::time::timeout_at(deadline, self.gate.lock())
            .await
            .map_err(|_| self.exhausted(deadline.saturating_duration_since(Instant::now())))?;
        loop {
            let now = Instant::now();
            // Registered before the state is read, so a landing in between is not missed.
            let landed = self.landed.notified();
            let ready = {
                let mut st = self.state.lock();
                match self.ready(&mut st, now) {
                    Ready::Now => {
                        let id = st.next_id;
                        st.next_id += 1;
                        st.slots.push_back(Slot { id, done: None });
                        st.last_sent = Some(now);
                        return Ok(Permit { budget: self, id });
                    }
                    other => other,
                }
            };
            match ready {
                Ready::At(at) if at > deadline => return Err(self.exhausted(at - now)),
                // Loop rather than trust the computed instant: a 429 seen meanwhile may
                // extend it.
                Ready::At(at) => tokio::time::sleep_until(at).await,
                Ready::WhenOneLands | Ready::Now => {
                    if tokio::time::timeout_at(deadline, landed).await.is_err() {
                        return Err(self.exhausted(WINDOW + MARGIN));
                    }
                }
            }
        }
    }

    fn exhausted(&self, wait: Duration) -> UpstreamError {
        let st = self.state.lock();
        let why = match &st.pause_reason {
            Some(reason) => format!("calls are paused ({reason})"),
            None => format!(
                "this data source's budget of {} calls per minute is in use",
                self.limit
            ),
        };
        UpstreamError::budget_exhausted(&format!(
            "not sent: {why}; the next call is possible in {} s",
            wait.as_secs().max(1)
        ))
    }

    /// Adjusts the pace to what Akamai reports as left in its window: below a quarter of the
    /// limit, calls are spread over the rest of the minute instead of running into a 429.
    pub fn observe(&self, headers: &RateLimitHeaders) {
        let mut st = self.state.lock();
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
        self.state.lock().consecutive_429 = 0;
    }

    /// A 429: pauses every call of the data source until `Next` (measured on the server's
    /// clock), or for an exponentially growing, jittered time when the answer gave none.
    /// Returns the pause.
    pub fn rate_limited(&self, headers: &RateLimitHeaders, now_wall: DateTime<Utc>) -> Duration {
        let mut st = self.state.lock();
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
    /// A pause learned from elsewhere: another replica's 429, read from the shared store.
    pub fn pause_for(&self, pause: Duration, reason: &str) {
        let mut st = self.state.lock();
        let until = Instant::now() + pause.min(MAX_PAUSE);
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
            st.pause_reason = Some(reason.to_string());
        }
    }

    pub fn paused_for(&self) -> Option<Duration> {
        let st = self.state.lock();
        st.paused_until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    pub fn state(&self) -> BudgetState {
        let now = Instant::now();
        let mut st = self.state.lock();
        Self::purge(&mut st, now);
        let calls = st.slots.len() as u32;
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
            drop(b.acquire(far).await.unwrap());
        }
        assert_eq!(Instant::now(), start);
        assert_eq!(b.state().tokens_left, 0);
        let _p = b.acquire(far).await.unwrap();
        assert_eq!(Instant::now() - start, WINDOW + MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_in_flight_holds_its_slot_until_its_answer_is_in() {
        let b = std::sync::Arc::new(Budget::new(1));
        let start = Instant::now();
        let far = start + Duration::from_secs(3600);
        let slow_call = b.acquire(far).await.unwrap();
        let b2 = b.clone();
        let next = tokio::spawn(async move {
            let _p = b2.acquire(far).await.unwrap();
            Instant::now()
        });
        // The first call is slow: 100 s, far beyond a window.
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!next.is_finished());
        assert_eq!(b.state().calls_last_minute, 1);
        drop(slow_call);
        assert_eq!(
            next.await.unwrap() - start,
            Duration::from_secs(100) + WINDOW + MARGIN
        );
        // A waiter whose deadline passes while every slot is in flight gives up then.
        let held = b.acquire(far).await.unwrap();
        let t = Instant::now();
        let err = b.acquire(t + Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(Instant::now() - t, Duration::from_secs(5));
        assert!(err.to_string().contains("budget of 1 calls"), "{err}");
        drop(held);
    }

    /// Many callers, answers of random latency, Akamai seeing each call at a random instant
    /// between its send and its answer: no 60 s window on the receiver's side holds more than
    /// `limit` calls.
    #[tokio::test(start_paused = true)]
    async fn no_receiver_window_holds_more_than_the_limit() {
        use rand::{Rng, SeedableRng};
        for limit in [1u32, 3, 40] {
            let b = std::sync::Arc::new(Budget::new(limit));
            let received = std::sync::Arc::new(Mutex::new(Vec::new()));
            let far = Instant::now() + Duration::from_secs(24 * 3600);
            let mut joins = Vec::new();
            for i in 0..(limit as u64 * 5 + 3) {
                let (b, received) = (b.clone(), received.clone());
                joins.push(tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(i);
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..90_000))).await;
                    let _slot = b.acquire(far).await.unwrap();
                    let latency = Duration::from_millis(rng.gen_range(1..8_000));
                    let seen_after = latency.mul_f64(rng.gen_range(0.0..1.0));
                    tokio::time::sleep(seen_after).await;
                    received.lock().push(Instant::now());
                    tokio::time::sleep(latency - seen_after).await;
                }));
            }
            for j in joins {
                j.await.unwrap();
            }
            let mut t = received.lock().clone();
            t.sort();
            for w in t.windows(limit as usize + 1) {
                assert!(w[limit as usize] - w[0] >= WINDOW, "limit {limit}: {w:?}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_when_the_slot_is_past_the_deadline() {
        let b = Budget::new(1);
        let start = Instant::now();
        drop(b.acquire(start + Duration::from_secs(1)).await.unwrap());
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
        drop(b.acquire(far).await.unwrap());
        b.observe(&RateLimitHeaders {
            limit: Some(40),
            remaining: Some(2),
            ..Default::default()
        });
        let t = Instant::now();
        drop(b.acquire(far).await.unwrap());
        assert_eq!(Instant::now() - t, Duration::from_secs(20));
        // Plenty left again: no spacing.
        b.observe(&RateLimitHeaders {
            limit: Some(40),
            remaining: Some(30),
            ..Default::default()
        });
        let t = Instant::now();
        drop(b.acquire(far).await.unwrap());
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
        drop(b.acquire(t + Duration::from_secs(60)).await.unwrap());
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
