//! Upstream stewardship of one data source: every eStats call, from pollers and from queries,
//! goes through one [`Upstream`], which
//!
//! - keeps the client-side budget (`rateLimitPerMinute` calls in any 60 s window, see [`budget`]),
//! - coalesces concurrent calls for the same target into one (see [`coalesce`]),
//! - retries transient failures with jittered exponential backoff, each retry a fresh call (and
//!   so a fresh signature),
//! - pauses the whole data source after a 429 until `RateLimit-Next`, or backs off
//!   exponentially, and paces down when `RateLimit-Remaining` runs low,
//! - stops calling for minutes after 401 (whole data source) or 403 (that target), since
//!   credentials do not fix themselves between two polls.
//!
//! The HTTP client is behind [`Fetch`] so that tests drive all of this with fakes.

pub mod budget;
pub mod coalesce;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::estats::decode::check_estats;
use crate::estats::{ErrorKind, Fetched, UpstreamError};
use crate::target::Target;

use budget::{backoff, jittered, Budget};
pub use budget::{BudgetState, WINDOW};
use coalesce::SingleFlight;

/// One eStats call, signed afresh each time it is invoked.
///
/// Implementations return `Err` for HTTP errors. An `Ok` answer is checked again by [`Upstream`]
/// with the decoder's rules ([`check_estats`]), so a `Fetch` other than the real client (a fake,
/// a replay) cannot slip a FAILURE or an implausible answer in as a measurement.
pub trait Fetch: Send + Sync + 'static {
    fn estats<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Fetched, UpstreamError>>;
}

/// What a budget shared with other processes says about one more call.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Go,
    /// The shared budget is spent: a slot frees up after this.
    Wait(Duration),
    /// A process saw a 429: every process pauses this long.
    Paused(Duration, String),
}

/// A budget shared by every replica of a data source (kept in the shared history store, see
/// `docs/high-availability.md`): asked before every call, after the local budget; told about
/// every 429 so that all replicas pause. An implementation that cannot reach its store answers
/// [`Admission::Go`]: the local budget still holds, and polling goes on.
pub trait SharedBudget: Send + Sync + 'static {
    fn admit(&self) -> BoxFuture<'_, Admission>;
    fn rate_limited<'a>(&'a self, pause: Duration, reason: &'a str) -> BoxFuture<'a, ()>;
}

/// Tunables of [`Upstream`]; [`UpstreamConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub rate_limit_per_minute: u32,
    /// Calls per request at most, the first included (transient errors and 429 retry).
    pub attempts: u32,
    /// First retry delay after a transient error; doubles per attempt, ±25 % jitter.
    pub retry_base: Duration,
    /// How long [`Upstream::estats`] may take in all, budget waits and retries included.
    pub max_wait: Duration,
    /// First pause after 401/403; doubles while the error persists.
    pub credential_backoff: Duration,
    pub credential_backoff_max: Duration,
}

impl UpstreamConfig {
    pub fn new(rate_limit_per_minute: u32) -> Self {
        UpstreamConfig {
            rate_limit_per_minute,
            attempts: 3,
            retry_base: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
            credential_backoff: Duration::from_secs(120),
            credential_backoff_max: Duration::from_secs(1800),
        }
    }
}

type Answer = Result<Arc<Fetched>, UpstreamError>;

/// A remembered credential failure: answered without calling until `until`.
#[derive(Debug, Clone)]
struct Block {
    until: Instant,
    error: UpstreamError,
    strikes: u32,
}

struct Inner {
    fetch: Arc<dyn Fetch>,
    budget: Budget,
    shared: Option<Arc<dyn SharedBudget>>,
    config: UpstreamConfig,
    /// Key `None`: the whole data source (401); `Some(target)`: one target (403).
    blocks: Mutex<HashMap<Option<Target>, Block>>,
}

/// The upstream of one data source instance. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
    flights: Arc<SingleFlight<Target, Answer>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("config", &self.inner.config)
            .field("budget", &self.inner.budget.state())
            .finish_non_exhaustive()
    }
}

fn panicked(reason: String) -> Answer {
    Err(UpstreamError::invalid_response(&format!(
        "the upstream call failed internally ({reason})"
    )))
}

impl Upstream {
    pub fn new(fetch: Arc<dyn Fetch>, rate_limit_per_minute: u32) -> Upstream {
        Upstream::with_config(fetch, UpstreamConfig::new(rate_limit_per_minute))
    }

    pub fn with_config(fetch: Arc<dyn Fetch>, config: UpstreamConfig) -> Upstream {
        Upstream::with_shared_budget(fetch, config, None)
    }

    /// As [`Upstream::with_config`], every call also admitted by `shared` (replicas sharing
    /// one API client's budget and 429 pauses).
    pub fn with_shared_budget(
        fetch: Arc<dyn Fetch>,
        config: UpstreamConfig,
        shared: Option<Arc<dyn SharedBudget>>,
    ) -> Upstream {
        Upstream {
            inner: Arc::new(Inner {
                fetch,
                shared,
                budget: Budget::new(config.rate_limit_per_minute),
                config,
                blocks: Mutex::new(HashMap::new()),
            }),
            flights: Arc::new(SingleFlight::new(panicked)),
        }
    }

    #[cfg(test)]
    pub fn config(&self) -> &UpstreamConfig {
        &self.inner.config
    }

    /// The eStats answer for `target`, within the configured `max_wait`.
    pub async fn estats(&self, target: &Target) -> Answer {
        self.estats_within(target, self.inner.config.max_wait).await
    }

    /// As [`Upstream::estats`], giving up after `max_wait`. A caller joining a call already in
    /// flight for the same target shares that call; when the flight (say a poller's, queued
    /// behind the budget) outlasts the joiner's `max_wait`, the joiner stops waiting and the
    /// flight goes on to fill the cache.
    pub async fn estats_within(&self, target: &Target, max_wait: Duration) -> Answer {
        let inner = Arc::clone(&self.inner);
        let owned = target.clone();
        let (flight, joined) = self.flights.run(target.clone(), move || async move {
            inner.call(&owned, Instant::now() + max_wait).await
        });
        if !joined {
            return flight.await;
        }
        match tokio::time::timeout(max_wait, flight).await {
            Ok(answer) => answer,
            Err(_) => Err(UpstreamError::budget_exhausted(&format!(
                "no answer within {} s: a call for this target is queued behind this data source's call budget; its sample goes into the cache when it lands",
                max_wait.as_secs()
            ))),
        }
    }

    pub fn budget(&self) -> BudgetState {
        self.inner.budget.state()
    }

    /// How long calls for `target` stay suspended by a 429 pause or a credential failure.
    pub fn blocked_for(&self, target: &Target) -> Option<Duration> {
        let now = Instant::now();
        let blocks = self.inner.blocks.lock();
        let credential = [None, Some(target.clone())]
            .iter()
            .filter_map(|k| blocks.get(k))
            .map(|b| b.until.saturating_duration_since(now))
            .max();
        credential
            .into_iter()
            .chain(self.inner.budget.paused_for())
            .max()
            .filter(|d| !d.is_zero())
    }
}

impl Inner {
    /// Waits for the shared budget to admit one call, within `deadline`. A pause that another
    /// replica learned from a 429 pauses this one too (its local budget included).
    async fn admit_shared(
        &self,
        shared: &dyn SharedBudget,
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        loop {
            match shared.admit().await {
                Admission::Go => return Ok(()),
                Admission::Wait(wait) => {
                    if Instant::now() + wait >= deadline {
                        return Err(UpstreamError::budget_exhausted(&format!(
                            "the budget of this API client, shared by every replica of this data source, is spent for the next {} s",
                            wait.as_secs().max(1)
                        )));
                    }
                    tokio::time::sleep(wait).await;
                }
                Admission::Paused(pause, reason) => {
                    self.budget.pause_for(pause, &reason);
                    return Err(UpstreamError::budget_exhausted(&format!(
                        "calls are paused for {} s on every replica: {reason}",
                        pause.as_secs().max(1)
                    )));
                }
            }
        }
    }

    fn blocked(&self, target: &Target) -> Option<UpstreamError> {
        let now = Instant::now();
        let blocks = self.blocks.lock();
        [None, Some(target.clone())]
            .iter()
            .filter_map(|k| blocks.get(k))
            .find(|b| b.until > now)
            .map(|b| b.error.clone())
    }

    fn block(&self, key: Option<Target>, error: &UpstreamError) {
        let mut blocks = self.blocks.lock();
        let strikes = blocks.get(&key).map_or(0, |b| b.strikes) + 1;
        let pause = backoff(
            self.config.credential_backoff,
            strikes,
            self.config.credential_backoff_max,
        );
        blocks.insert(
            key,
            Block {
                until: Instant::now() + pause,
                error: error.clone(),
                strikes,
            },
        );
    }

    fn unblock(&self, target: &Target) {
        let mut blocks = self.blocks.lock();
        blocks.remove(&None);
        blocks.remove(&Some(target.clone()));
    }

    async fn call(&self, target: &Target, deadline: Instant) -> Answer {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(error) = self.blocked(target) {
                return Err(error);
            }
            let result = {
                // The call occupies its budget slot from its send until its answer is in.
                let _slot = self.budget.acquire(deadline).await?;
                if let Some(shared) = &self.shared {
                    self.admit_shared(shared.as_ref(), deadline).await?;
                }
                self.fetch.estats(target).await
            }
            .and_then(|f| check_estats(&f.response).map(|()| f));
            let error = match result {
                Ok(fetched) => {
                    self.budget.observe(&fetched.rate);
                    self.budget.succeeded();
                    self.unblock(target);
                    return Ok(Arc::new(fetched));
                }
                Err(e) => e,
            };
            let retry_in = match error.kind() {
                ErrorKind::RateLimited => {
                    // Not `observe`: a 429 says Remaining 0 by nature, and its Next (or the
                    // backoff) already sets the pace. The budget pause delays the retry.
                    let headers = error.rate_limit().cloned().unwrap_or_default();
                    let pause = self.budget.rate_limited(&headers, Utc::now());
                    if let Some(shared) = &self.shared {
                        shared
                            .rate_limited(
                                pause,
                                "another replica of this data source got 429 from Akamai",
                            )
                            .await;
                    }
                    Some(pause)
                }
                ErrorKind::Auth => {
                    self.block(None, &error);
                    None
                }
                ErrorKind::Forbidden => {
                    self.block(Some(target.clone()), &error);
                    None
                }
                _ if error.is_transient() => Some(jittered(backoff(
                    self.config.retry_base,
                    attempt,
                    Duration::from_secs(60),
                ))),
                _ => None,
            };
            match retry_in {
                Some(wait)
                    if attempt < self.config.attempts && Instant::now() + wait < deadline =>
                {
                    if error.kind() != ErrorKind::RateLimited {
                        tokio::time::sleep(wait).await;
                    }
                }
                _ => return Err(error),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted [`Fetch`] for tests: answers from a queue (then a default), records when
    //! each call happened.

    use super::*;
    use crate::estats::model::{EstatsData, EstatsResponse, StatusCodeCount};
    use crate::estats::RateLimitHeaders;
    use std::collections::VecDeque;

    pub type Script = Box<dyn Fn(&Target, u32) -> Result<Fetched, UpstreamError> + Send + Sync>;

    pub struct FakeFetch {
        pub calls: Mutex<Vec<(Instant, Target)>>,
        pub queue: Mutex<VecDeque<Result<Fetched, UpstreamError>>>,
        /// Answer when the queue is empty: (target, call number) -> result.
        pub default: Script,
        /// Simulated network time of each call.
        pub latency: Duration,
        /// Wall clock of the answers (`received_at`), following tokio's clock.
        pub clock: crate::poller::Clock,
    }

    impl FakeFetch {
        pub fn ok(clock: crate::poller::Clock) -> FakeFetch {
            let c = clock.clone();
            FakeFetch::with(
                clock,
                Box::new(move |_, n| {
                    Ok(fetched(c.now(), &[(200, 90 + (n % 5) as u64), (503, 10)]))
                }),
            )
        }

        pub fn with(clock: crate::poller::Clock, default: Script) -> FakeFetch {
            FakeFetch {
                calls: Mutex::new(Vec::new()),
                queue: Mutex::new(VecDeque::new()),
                default,
                latency: Duration::from_millis(200),
                clock,
            }
        }

        pub fn push(&self, r: Result<Fetched, UpstreamError>) {
            self.queue.lock().push_back(r);
        }

        pub fn count(&self) -> usize {
            self.calls.lock().len()
        }

        pub fn times(&self) -> Vec<Instant> {
            self.calls.lock().iter().map(|c| c.0).collect()
        }
    }

    /// An answer whose edge side has the given (status, hits); percentages follow the hits.
    pub fn fetched(at: chrono::DateTime<Utc>, codes: &[(u16, u64)]) -> Fetched {
        let total: u64 = codes.iter().map(|c| c.1).sum();
        let dist: Vec<StatusCodeCount> = codes
            .iter()
            .map(|&(s, h)| StatusCodeCount {
                http_status: s,
                hits: h,
                percentage: if total == 0 {
                    0.0
                } else {
                    h as f64 * 100.0 / total as f64
                },
            })
            .collect();
        let errors: u64 = codes.iter().filter(|c| c.0 >= 400).map(|c| c.1).sum();
        Fetched {
            response: EstatsResponse {
                execution_status: Some("SUCCESS".into()),
                result: Some(EstatsData {
                    edge_hits: Some(total),
                    edge_errors: Some(errors),
                    edge_failure_percentage: Some(if total == 0 {
                        0.0
                    } else {
                        errors as f64 * 100.0 / total as f64
                    }),
                    edge_status_code_distribution: Some(dist),
                    ..Default::default()
                }),
                ..Default::default()
            },
            rate: RateLimitHeaders::default(),
            received_at: at,
        }
    }

    pub fn server_error() -> UpstreamError {
        UpstreamError::server(503, "Service Unavailable")
    }

    impl Fetch for FakeFetch {
        fn estats<'a>(
            &'a self,
            target: &'a Target,
        ) -> BoxFuture<'a, Result<Fetched, UpstreamError>> {
            Box::pin(async move {
                let n = {
                    let mut calls = self.calls.lock();
                    calls.push((Instant::now(), target.clone()));
                    calls.len() as u32
                };
                tokio::time::sleep(self.latency).await;
                let queued = self.queue.lock().pop_front();
                match queued {
                    Some(mut r) => {
                        if let Ok(f) = &mut r {
                            f.received_at = self.clock.now();
                        }
                        r
                    }
                    None => (self.default)(target, n),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use crate::estats::RateLimitHeaders;
    use crate::poller::Clock;

    fn target(n: u64) -> Target {
        Target::cp_code(n, None)
    }

    fn setup(rate: u32) -> (Arc<FakeFetch>, Upstream) {
        let fake = Arc::new(FakeFetch::ok(Clock::following_tokio()));
        let up = Upstream::new(fake.clone(), rate);
        (fake, up)
    }

    #[tokio::test(start_paused = true)]
    async fn hundred_concurrent_calls_on_one_target_make_one_upstream_call() {
        let (fake, up) = setup(40);
        let mut joins = Vec::new();
        for _ in 0..100 {
            let up = up.clone();
            joins.push(tokio::spawn(async move { up.estats(&target(1)).await }));
        }
        let mut answers = Vec::new();
        for j in joins {
            answers.push(j.await.unwrap().unwrap());
        }
        assert_eq!(fake.count(), 1);
        assert!(answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])));
        assert_eq!(up.budget().calls_last_minute, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_joiner_waits_no_longer_than_its_own_deadline() {
        let (fake, up) = setup(1);
        up.estats(&target(9)).await.unwrap();
        // The budget is spent for a minute: a patient caller queues a flight for target 1 ...
        let patient = up.clone();
        let queued = tokio::spawn(async move {
            patient
                .estats_within(&target(1), Duration::from_secs(120))
                .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ... and an impatient one joining it gives up after its own 5 s.
        let t = Instant::now();
        let err = up
            .estats_within(&target(1), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(Instant::now() - t, Duration::from_secs(5));
        assert!(err.to_string().contains("queued"), "{err}");
        assert!(queued.await.unwrap().is_ok());
        assert_eq!(fake.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_growing_jittered_delays() {
        let (fake, up) = setup(40);
        fake.push(Err(server_error()));
        fake.push(Err(server_error()));
        let start = Instant::now();
        let got = up.estats(&target(1)).await;
        assert!(got.is_ok());
        let times = fake.times();
        assert_eq!(times.len(), 3);
        let latency = fake.latency;
        let first_gap = times[1] - times[0] - latency;
        let second_gap = times[2] - times[1] - latency;
        assert!(
            first_gap >= Duration::from_millis(750) && first_gap <= Duration::from_millis(1250)
        );
        assert!(
            second_gap >= Duration::from_millis(1500) && second_gap <= Duration::from_millis(2500)
        );
        assert!(Instant::now() - start < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_after_the_attempt_limit() {
        let clock = Clock::following_tokio();
        let fake = Arc::new(FakeFetch::with(clock, Box::new(|_, _| Err(server_error()))));
        let up = Upstream::new(fake.clone(), 40);
        let err = up.estats(&target(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(fake.count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn bad_requests_are_not_retried() {
        let (fake, up) = setup(40);
        fake.push(Err(UpstreamError::bad_request(400, "bad cpCode")));
        assert!(up.estats(&target(1)).await.is_err());
        assert_eq!(fake.count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn execution_failure_with_http_200_is_an_error() {
        let (fake, up) = setup(40);
        let mut failed = fetched(Utc::now(), &[]);
        failed.response.execution_status = Some("FAILURE".into());
        for _ in 0..3 {
            fake.push(Ok(failed.clone()));
        }
        let err = up.estats(&target(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExecutionFailed);
        assert_eq!(fake.count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_is_not_a_measurement_is_refused_and_not_retried() {
        let (fake, up) = setup(40);
        let mut no_rows = fetched(Utc::now(), &[(200, 90), (503, 10)]);
        let result = no_rows.response.result.as_mut().unwrap();
        result.edge_status_code_distribution = None;
        fake.push(Ok(no_rows));
        let err = up.estats(&target(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(
            err.to_string()
                .contains("without edgeStatusCodeDistribution (edgeHits is 100)"),
            "{err}"
        );
        assert_eq!(fake.count(), 1);
        // The next call measures again.
        assert!(up.estats(&target(1)).await.is_ok());
    }

    fn limited(next_in: Option<i64>) -> UpstreamError {
        let date: chrono::DateTime<Utc> = "2030-05-05T10:00:00Z".parse().unwrap();
        UpstreamError::rate_limited(
            "Too Many Requests",
            RateLimitHeaders {
                limit: Some(40),
                remaining: Some(0),
                next: next_in.map(|s| date + chrono::Duration::seconds(s)),
                server_date: Some(date),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_next_pauses_every_target_of_the_data_source() {
        let (fake, up) = setup(40);
        fake.push(Err(limited(Some(12))));
        let t0 = Instant::now();
        let up2 = up.clone();
        let first = tokio::spawn(async move { up2.estats(&target(1)).await });
        // Let the 429 land, then ask for another target: it must wait for the same pause.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(up.budget().paused_until.is_some());
        assert_eq!(up.budget().tokens_left, 0);
        let other = up.estats(&target(2)).await;
        assert!(other.is_ok());
        assert!(first.await.unwrap().is_ok());
        let times = fake.times();
        assert_eq!(times.len(), 3);
        let resume = t0 + fake.latency + Duration::from_secs(12);
        assert!(
            times[1] >= resume && times[2] >= resume,
            "{times:?} vs {resume:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_without_next_backs_off_exponentially() {
        let (fake, up) = setup(40);
        let mut config = up.config().clone();
        config.attempts = 4;
        config.max_wait = Duration::from_secs(120);
        let up = Upstream::with_config(fake.clone(), config);
        fake.push(Err(limited(None)));
        fake.push(Err(limited(None)));
        assert!(up.estats(&target(1)).await.is_ok());
        let t = fake.times();
        let l = fake.latency;
        let g1 = t[1] - t[0] - l;
        let g2 = t[2] - t[1] - l;
        assert!(
            g1 >= Duration::from_millis(3750) && g1 <= Duration::from_millis(6250),
            "{g1:?}"
        );
        assert!(
            g2 >= Duration::from_millis(7500) && g2 <= Duration::from_millis(12500),
            "{g2:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_deadline_fails_fast() {
        let (fake, up) = setup(40);
        fake.push(Err(limited(Some(300))));
        let start = Instant::now();
        let err = up.estats(&target(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(Instant::now() - start < Duration::from_secs(1));
        // And the next request does not even try.
        let err = up.estats(&target(2)).await.unwrap_err();
        assert!(err.to_string().contains("paused"), "{err}");
        assert_eq!(fake.count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn credential_failures_stop_calls_for_minutes() {
        let (fake, up) = setup(40);
        fake.push(Err(UpstreamError::auth("invalid token")));
        assert_eq!(
            up.estats(&target(1)).await.unwrap_err().kind(),
            ErrorKind::Auth
        );
        // Every target of the data source is refused without a call.
        assert_eq!(
            up.estats(&target(2)).await.unwrap_err().kind(),
            ErrorKind::Auth
        );
        assert_eq!(fake.count(), 1);
        assert!(up.blocked_for(&target(3)).unwrap() >= Duration::from_secs(119));
        tokio::time::sleep(Duration::from_secs(121)).await;
        assert!(up.estats(&target(2)).await.is_ok());
        assert_eq!(fake.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn forbidden_blocks_only_that_target() {
        let (fake, up) = setup(40);
        fake.push(Err(UpstreamError::forbidden("no access to cpcode")));
        assert!(up.estats(&target(1)).await.is_err());
        assert!(up.estats(&target(1)).await.is_err());
        assert!(up.estats(&target(2)).await.is_ok());
        assert_eq!(fake.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn low_remaining_header_slows_the_pace() {
        let clock = Clock::following_tokio();
        let c = clock.clone();
        let fake = Arc::new(FakeFetch::with(
            clock,
            Box::new(move |_, _| {
                let mut f = fetched(c.now(), &[(200, 1)]);
                f.rate = RateLimitHeaders {
                    limit: Some(40),
                    remaining: Some(3),
                    ..Default::default()
                };
                Ok(f)
            }),
        ));
        let up = Upstream::new(fake.clone(), 40);
        up.estats(&target(1)).await.unwrap();
        up.estats(&target(2)).await.unwrap();
        let t = fake.times();
        assert_eq!(t[1] - t[0], Duration::from_secs(15));
        assert_eq!(up.budget().min_gap_ms, 15_000);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_never_exceeded_by_many_callers() {
        let (fake, up) = setup(10);
        let mut joins = Vec::new();
        for i in 0..35 {
            let up = up.clone();
            joins.push(tokio::spawn(async move {
                up.estats_within(&target(i), Duration::from_secs(600)).await
            }));
        }
        for j in joins {
            j.await.unwrap().unwrap();
        }
        let t = fake.times();
        assert_eq!(t.len(), 35);
        for w in t.windows(11) {
            assert!(w[10] - w[0] >= WINDOW);
        }
    }
}
