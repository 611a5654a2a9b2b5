//! The polling cache of one data source instance: a [`Monitor`] runs one poller per target,
//! records every poll in the history ([`Store`]), keeps the latest sample of each target in memory and
//! answers `distribution`/`summary`/`topIps` from it while it is fresh.
//!
//! - Watched targets are polled from [`Monitor::start_watch`] (the data source's first request)
//!   on; any other target from the first query naming it, until it has not been queried for
//!   `idle_after` (10 poll intervals by default).
//! - Each poller owns a phase in the poll interval (golden-ratio sequence), so targets fire
//!   spread over the interval rather than together, however many there are and whenever they
//!   start.
//! - Every upstream call goes through the data source's [`Upstream`] (budget, coalescing,
//!   retries). A failed poll is stored as a failed sample (a gap); after 401/403 or a 429 pause the
//!   poller waits out the block instead of failing every interval.
//! - Retention pruning runs at start and every `prune_every`.
//! - Dropping the last [`Monitor`] handle (or [`Monitor::shutdown`]) ends every task.
//!
//! With the shared PostgreSQL store (`jsonData.historyDatabase`, `docs/high-availability.md`)
//! a target is polled by the replica holding its lease only: a coordinator task renews and
//! claims leases every [`lease_round`], pollers start and stop with them, every write carries
//! the lease's epoch (a stale one is refused by the store), queries read the shared history and
//! wait for the owner's first sample instead of calling upstream, and live pushes come from the
//! store's notices, so every replica pushes every sample once. Writes that fail while the
//! database is away are kept in a bounded buffer ([`PENDING_MAX`]) and written when it returns,
//! if the lease is still this replica's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::estats::UpstreamError;
use crate::history::polls::{Polls, Wanted};
use crate::history::{HistoryError, Point, StoredFailure};
use crate::sample::Sample;
use crate::store::postgres::Round;
use crate::store::{Lease, PgStore, Store, StoreWrite};
use crate::target::{Target, TargetSpec};
use crate::upstream::{BudgetState, Upstream};

/// Wall-clock time for sample stamps and ages. `System` in production; tests use a clock that
/// follows tokio's (pausable) clock so that ages and intervals agree with `tokio::time`.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    #[cfg(test)]
    FollowTokio {
        wall: DateTime<Utc>,
        at: Instant,
    },
}

impl Clock {
    /// A wall clock that starts now and advances with `tokio::time` (paused or not).
    #[cfg(test)]
    pub fn following_tokio() -> Clock {
        Clock::FollowTokio {
            wall: Utc::now(),
            at: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            #[cfg(test)]
            Clock::FollowTokio { wall, at } => {
                *wall + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }
}

/// What a [`Monitor`] needs from the data source settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    pub poll_interval: Duration,
    pub retention: Duration,
    pub watch: Vec<Target>,
    /// A target neither watched nor queried for this long stops being polled.
    pub idle_after: Duration,
    pub prune_every: Duration,
    /// With the shared store: how long a query waits for the first sample of a target that no
    /// replica polled yet (the data source's request timeout).
    pub first_sample_wait: Duration,
}

/// How long a lease on a target lasts without renewal: under one poll interval, so that taking
/// over from a dead replica costs at most one missed poll, and never under 5 s, so that a slow
/// round trip does not cost a busy replica its leases. (Always within the contract's bound of
/// `max(3 x pollIntervalSeconds, 10 s)`.)
pub fn lease_period(poll_interval: Duration) -> Duration {
    (poll_interval * 3 / 4).max(Duration::from_secs(5))
}

/// How often a replica renews its leases and claims free ones: five times per lease period,
/// at most once a second.
pub fn lease_round(poll_interval: Duration) -> Duration {
    (lease_period(poll_interval) / 5).min(Duration::from_secs(1))
}

/// Writes kept per target while the shared store is unreachable; older ones are dropped (and
/// show as gaps).
pub const PENDING_MAX: usize = 120;

impl MonitorSettings {
    /// Defaults: idle after 10 intervals, prune every hour. The interval is at least 1 s (the
    /// settings check enforces 30 s for non-loopback hosts).
    pub fn new(poll_interval: Duration, retention: Duration, watch: Vec<Target>) -> Self {
        let poll_interval = poll_interval.max(Duration::from_secs(1));
        MonitorSettings {
            poll_interval,
            retention,
            watch,
            idle_after: poll_interval * 10,
            prune_every: Duration::from_secs(3600),
            first_sample_wait: Duration::from_secs(30),
        }
    }
}

/// Share of `rateLimitPerMinute` the pollers may plan to use: the rest is kept for retries and
/// the first fetches of newly queried targets. As tenths, to keep the arithmetic exact.
pub const POLLING_SHARE_TENTHS: u64 = 9;

/// How often the pollers of a data source run. When the targets polled need more calls a
/// minute (`targets x 60 / pollIntervalSeconds`) than 90 % of `rateLimitPerMinute`, every
/// poller runs at the same stretched interval, `ceil(targets x 60 / (0.9 x limit))` s, rather
/// than some targets being starved by the budget (docs/design.md, "Fair stretching").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// `pollIntervalSeconds`.
    pub interval_seconds: u64,
    /// The interval every poller runs at now.
    pub effective_interval_seconds: u64,
    /// Targets polled: watched ones, and queried ones while their poller runs.
    pub targets: u64,
    /// Calls a minute the targets need at `pollIntervalSeconds` (rounded up).
    pub calls_per_minute_needed: u64,
    pub limit_per_minute: u64,
    pub stretched: bool,
    /// The set interval in milliseconds (sub-second only in tests).
    #[serde(skip)]
    interval_ms: u64,
}

impl Schedule {
    fn of(entries: &HashMap<Target, Entry>, interval: Duration, limit: u32) -> Schedule {
        let targets = entries.values().filter(|e| e.counted()).count() as u64;
        Schedule::for_targets(targets, interval, limit)
    }

    /// The schedule of `targets` polled every `interval` within `limit` calls a minute.
    pub fn for_targets(targets: u64, interval: Duration, limit: u32) -> Schedule {
        let interval_ms = (interval.as_millis() as u64).max(1);
        let limit = u64::from(limit.max(1));
        // targets x 60 / interval > 0.9 x limit, in integers.
        let stretched = targets * 60_000 * 10 > POLLING_SHARE_TENTHS * limit * interval_ms;
        let needed_seconds = (targets * 600).div_ceil(POLLING_SHARE_TENTHS * limit);
        let interval_seconds = interval_ms.div_ceil(1000);
        Schedule {
            interval_seconds,
            effective_interval_seconds: if stretched {
                needed_seconds
            } else {
                interval_seconds
            },
            targets,
            calls_per_minute_needed: (targets * 60_000).div_ceil(interval_ms),
            limit_per_minute: limit,
            stretched,
            interval_ms,
        }
    }

    /// The interval the pollers and the cache use.
    pub fn interval(&self) -> Duration {
        if self.stretched {
            Duration::from_secs(self.effective_interval_seconds)
        } else {
            Duration::from_millis(self.interval_ms)
        }
    }

    /// What a panel answered from the cache is told while the schedule is stretched.
    pub fn notice(&self) -> Option<String> {
        self.stretched.then(|| {
            format!(
                "polling every {} s instead of {} s: {} targets need {} calls a minute, above 90 % of the limit of {}",
                self.effective_interval_seconds,
                self.interval_seconds,
                self.targets,
                self.calls_per_minute_needed,
                self.limit_per_minute
            )
        })
    }
}

/// The answer of [`Monitor::latest`].
#[derive(Debug, Clone)]
pub struct Latest {
    pub sample: Arc<Sample>,
    pub age: Duration,
    /// Why an older sample is shown, when it is older than the poll interval.
    pub stale: Option<String>,
}

/// The answer of [`Monitor::latest_cached`]: what memory holds, without I/O or upstream calls.
#[derive(Debug, Clone)]
pub struct Cached {
    pub sample: Arc<Sample>,
    pub age: Duration,
    /// The last attempt (poll or query) for the target failed.
    pub failing: bool,
}

/// One target as `/targets` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetState {
    pub key: String,
    pub target: TargetSpec,
    pub label: String,
    pub watched: bool,
    pub polling: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub next_poll: Option<DateTime<Utc>>,
    /// Rows held in the history (failed polls included).
    pub samples: u64,
    /// Calls the data source's budget allows right now.
    pub budget_left: u32,
    /// The interval the target is polled at now: `pollIntervalSeconds`, or longer while the
    /// schedule is stretched (see [`Schedule`]).
    pub effective_interval_seconds: u64,
    /// With the shared store: whether this replica holds the target's lease (and polls it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned: Option<bool>,
}

/// Counters and gauges of the shared store, for health and metrics.
#[derive(Debug, Default)]
struct SharedCounters {
    owned: AtomicU64,
    replicas: AtomicU64,
    acquired: AtomicU64,
    lost: AtomicU64,
    fenced: AtomicU64,
    store_errors: AtomicU64,
    buffered: AtomicU64,
    store_up: AtomicBool,
}

/// A snapshot of [`SharedCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedState {
    /// Targets whose lease this replica holds.
    pub owned: u64,
    /// Replicas serving this data source seen within the lease period (this one included).
    pub replicas: u64,
    /// Leases acquired, lost (expired or taken over) and writes refused as stale, since start.
    pub acquired: u64,
    pub lost: u64,
    pub fenced: u64,
    /// Failed uses of the store since start, and writes waiting for it now.
    pub store_errors: u64,
    pub buffered: u64,
    /// The last use of the store succeeded.
    pub store_up: bool,
}

/// A write waiting for the shared store to come back.
#[derive(Debug, Clone)]
enum Pending {
    Sample(Arc<Sample>),
    Failure(DateTime<Utc>, UpstreamError),
}

#[derive(Debug)]
struct Entry {
    target: Target,
    watched: bool,
    task: Option<JoinHandle<()>>,
    /// Creation order, which fixes the target's place among the pollers.
    order: u32,
    /// Where in the interval the target is polled (a fraction of it, golden-ratio sequence).
    phase: f64,
    last_queried: Instant,
    latest: Option<Arc<Sample>>,
    /// The latest sample was looked up in the history once (after a restart).
    latest_loaded: bool,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(DateTime<Utc>, UpstreamError)>,
    /// The last attempt (poll or query) failed.
    failing: bool,
    next_poll: Option<DateTime<Utc>>,
    samples: u64,
    /// Shared store: the lease this replica holds on the target, if any.
    lease: Option<Lease>,
    /// Shared store: writes waiting for the database (oldest first).
    pending: VecDeque<Pending>,
    /// Shared store: when this replica last registered the target as queried.
    registered: Option<Instant>,
    /// Shared store: the newest sample pushed to live streams.
    announced: Option<DateTime<Utc>>,
    /// Held by a query from its last look at memory until the sample it fetched is in memory,
    /// so that a query arriving meanwhile finds that sample instead of calling again (the
    /// single flight alone leaves a gap between a flight's end and its sample's arrival).
    query_fetch: Arc<tokio::sync::Mutex<()>>,
}

impl Entry {
    fn polling(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Whether the target counts among the targets polled, for [`Schedule`]: watched targets
    /// always, others while their poller runs (here, or under this replica's lease).
    fn counted(&self) -> bool {
        self.watched || self.polling() || self.lease.is_some()
    }
}

struct Inner {
    uid: String,
    settings: MonitorSettings,
    upstream: Arc<Upstream>,
    store: Store,
    clock: Clock,
    entries: Mutex<HashMap<Target, Entry>>,
    events: broadcast::Sender<(Target, Arc<Sample>)>,
    watch_started: AtomicBool,
    closed: AtomicBool,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    /// Shared store: the lease coordinator and the notice forwarder.
    coordination: Mutex<Vec<JoinHandle<()>>>,
    counters: SharedCounters,
    /// `rateLimitPerMinute`, which the [`Schedule`] keeps the pollers within.
    rate_limit: u32,
    next_phase: AtomicU32,
    epoch: Instant,
}

/// Ends the tasks when the last [`Monitor`] handle goes (tasks hold `Inner`, not this).
struct Guard(Weak<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.shutdown();
        }
    }
}

/// The polling cache of one data source instance. Clones share it; dropping the last clone
/// ends its tasks.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("uid", &self.inner.uid)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

impl Monitor {
    pub fn new(
        uid: String,
        settings: MonitorSettings,
        upstream: Arc<Upstream>,
        store: impl Into<Store>,
    ) -> Monitor {
        Monitor::with_clock(uid, settings, upstream, store, Clock::System)
    }

    fn with_clock(
        uid: String,
        settings: MonitorSettings,
        upstream: Arc<Upstream>,
        store: impl Into<Store>,
        clock: Clock,
    ) -> Monitor {
        let (events, _) = broadcast::channel(256);
        let now = Instant::now();
        let rate_limit = upstream.budget().limit_per_minute;
        let inner = Arc::new(Inner {
            uid,
            upstream,
            store: store.into(),
            clock,
            entries: Mutex::new(HashMap::new()),
            events,
            watch_started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            maintenance: Mutex::new(None),
            coordination: Mutex::new(Vec::new()),
            counters: SharedCounters::default(),
            rate_limit,
            next_phase: AtomicU32::new(0),
            epoch: now,
            settings,
        });
        {
            let mut entries = inner.entries.lock();
            for t in &inner.settings.watch {
                let e = inner.new_entry(t, now);
                entries.entry(t.clone()).or_insert(e).watched = true;
            }
        }
        Monitor {
            _guard: Arc::new(Guard(Arc::downgrade(&inner))),
            inner,
        }
    }

    pub fn settings(&self) -> &MonitorSettings {
        &self.inner.settings
    }

    /// Where this data source's history lives.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// With the shared store: leases, replicas and store health as this replica sees them.
    pub fn shared_state(&self) -> Option<SharedState> {
        self.inner.store.shared()?;
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(SharedState {
            owned: get(&c.owned),
            replicas: get(&c.replicas),
            acquired: get(&c.acquired),
            lost: get(&c.lost),
            fenced: get(&c.fenced),
            store_errors: get(&c.store_errors),
            buffered: get(&c.buffered),
            store_up: c.store_up.load(Ordering::Relaxed),
        })
    }

    pub fn budget(&self) -> BudgetState {
        self.inner.upstream.budget()
    }

    /// How often the pollers run now (stretched when the budget cannot poll every target at
    /// the set interval).
    pub fn schedule(&self) -> Schedule {
        self.inner.schedule()
    }

    /// Starts the pollers of every watched target, and retention pruning. Idempotent.
    pub fn start_watch(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            // Nothing can be spawned here; the next call from inside the runtime starts them.
            return;
        }
        self.inner.ensure_maintenance();
        if self.inner.watch_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        for t in &self.inner.settings.watch {
            self.inner.ensure_poller(t, false, now);
        }
    }

    /// The latest sample of `target`, from memory or history while younger than the poll
    /// interval, else fetched now. Starts (or keeps) the target's poller.
    pub async fn latest(&self, target: &Target) -> Result<Latest, UpstreamError> {
        let inner = &self.inner;
        inner.touch(target);
        if let Some(store) = inner.store.shared() {
            return inner.latest_shared(store, target).await;
        }
        // A stretched schedule stretches what counts as fresh: a query must not spend the
        // calls the pollers were slowed down to save.
        let interval = inner.interval();
        let cached = inner.cached_latest(target).await;
        let now = inner.clock.now();
        let age_of = |s: &Sample| (now - s.sampled_at).to_std().unwrap_or_default();
        if let Some(s) = &cached {
            if age_of(s) < interval {
                return Ok(Latest {
                    sample: Arc::clone(s),
                    age: age_of(s),
                    stale: None,
                });
            }
        }
        let fetch_lock = inner
            .entries
            .lock()
            .get(target)
            .map(|e| Arc::clone(&e.query_fetch));
        let _fetching = match &fetch_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        // A failure within the last interval is not retried for every panel refresh: the
        // poller tries again on its schedule.
        let recent_failure = {
            let entries = inner.entries.lock();
            entries.get(target).and_then(|e| match &e.last_error {
                Some((at, err))
                    if e.failing && (now - *at).to_std().unwrap_or_default() < interval =>
                {
                    Some(err.clone())
                }
                _ => None,
            })
        };
        // A concurrent query's call may have landed while this one waited or read the
        // history: its sample is this query's answer, and calling again would spend a second
        // call.
        let landed = inner
            .entries
            .lock()
            .get(target)
            .and_then(|e| e.latest.clone())
            .filter(|s| age_of(s) < interval);
        if let Some(sample) = landed {
            return Ok(Latest {
                age: age_of(&sample),
                sample,
                stale: None,
            });
        }
        let error = match recent_failure {
            Some(e) => e,
            None => match inner.upstream.estats(target).await {
                Ok(fetched) => {
                    let sample = Sample::from_response(fetched.received_at, &fetched.response);
                    let sample = inner.accept(target, sample).await;
                    let age = (inner.clock.now() - sample.sampled_at)
                        .to_std()
                        .unwrap_or_default();
                    return Ok(Latest {
                        sample,
                        age,
                        stale: None,
                    });
                }
                Err(e) => {
                    inner.note_failure(target, &e);
                    e
                }
            },
        };
        match cached {
            Some(s) => {
                let age = age_of(&s);
                Ok(Latest {
                    stale: Some(format!(
                        "showing the sample of {} ({} old) because a new one could not be fetched: {error}",
                        s.sampled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        human(age)
                    )),
                    sample: s,
                    age,
                })
            }
            None => Err(error),
        }
    }

    /// Stored polls of `target` in `[from, to]`. Starts (or keeps) the target's poller.
    pub async fn range(
        &self,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>, HistoryError> {
        self.inner.touch(target);
        self.inner
            .store
            .range(&self.inner.uid, target, from, to)
            .await
    }

    /// The history of `target` as flat columns for the series builder, the read of time series
    /// (`History::polls`). Starts (or keeps) the target's poller.
    pub async fn polls(
        &self,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        wanted: Wanted,
    ) -> Result<Polls, HistoryError> {
        self.inner.touch(target);
        self.inner
            .store
            .polls(&self.inner.uid, target, from, to, wanted)
            .await
    }

    /// The failed polls of `target` in `[from, to]` with their errors (`events`).
    pub async fn failures(
        &self,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredFailure>, HistoryError> {
        self.inner
            .store
            .failures(&self.inner.uid, target, from, to)
            .await
    }

    pub async fn status_codes(&self, target: &Target) -> Result<Vec<u16>, HistoryError> {
        self.inner.store.status_codes(&self.inner.uid, target).await
    }

    /// Every known target (watched, or queried since start), by key.
    pub fn targets(&self) -> Vec<TargetState> {
        let budget_left = self.inner.upstream.budget().tokens_left;
        let shared = self.inner.store.shared().is_some();
        let entries = self.inner.entries.lock();
        let effective_interval_seconds = Schedule::of(
            &entries,
            self.inner.settings.poll_interval,
            self.inner.rate_limit,
        )
        .effective_interval_seconds;
        let mut out: Vec<TargetState> = entries
            .iter()
            .map(|(target, e)| TargetState {
                key: target.key(),
                target: TargetSpec::from(&e.target),
                label: e.target.label(),
                watched: e.watched,
                polling: e.polling(),
                last_success: e.last_success,
                last_error: e.last_error.as_ref().map(|(_, err)| err.to_string()),
                last_error_at: e.last_error.as_ref().map(|(at, _)| *at),
                next_poll: if e.polling() { e.next_poll } else { None },
                samples: e.samples,
                budget_left,
                effective_interval_seconds,
                owned: shared.then_some(e.lease.is_some()),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The latest successful sample of `target` held in memory, for metrics: unlike
    /// [`Monitor::latest`] it neither reads the history nor calls upstream, and does not count
    /// as a query of the target.
    pub fn latest_cached(&self, target: &Target) -> Option<Cached> {
        let entries = self.inner.entries.lock();
        let e = entries.get(target)?;
        let sample = Arc::clone(e.latest.as_ref()?);
        let age = (self.inner.clock.now() - sample.sampled_at)
            .to_std()
            .unwrap_or_default();
        Some(Cached {
            sample,
            age,
            failing: e.failing,
        })
    }

    /// Every sample stored from now on, for live streaming. Failed polls are not sent.
    pub fn subscribe(&self) -> broadcast::Receiver<(Target, Arc<Sample>)> {
        self.inner.events.subscribe()
    }

    /// Marks `target` as queried, without fetching: a live stream calls this so that the
    /// target's poller runs (or starts) and is not stopped as idle while someone watches.
    pub fn keep_polling(&self, target: &Target) {
        self.inner.touch(target);
    }

    /// Ends every task of this data source now.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn new_entry(&self, target: &Target, now: Instant) -> Entry {
        // Golden-ratio phases: the k-th poller lands in the largest free stretch of the
        // interval, so any number of pollers, started at any time, stay spread.
        let k = self.next_phase.fetch_add(1, Ordering::Relaxed);
        let phase = (f64::from(k) * 0.618_033_988_749_895).fract();
        Entry {
            target: target.clone(),
            watched: false,
            task: None,
            order: k,
            phase,
            last_queried: now,
            latest: None,
            latest_loaded: false,
            last_success: None,
            last_error: None,
            failing: false,
            next_poll: None,
            samples: 0,
            lease: None,
            pending: VecDeque::new(),
            registered: None,
            announced: None,
            query_fetch: Arc::default(),
        }
    }

    /// The polling schedule now: the set interval, or a stretched one when the targets polled
    /// need more calls than the budget gives (see [`Schedule`]).
    fn schedule(&self) -> Schedule {
        Schedule::of(
            &self.entries.lock(),
            self.settings.poll_interval,
            self.rate_limit,
        )
    }

    /// The interval a poller and the cache use now.
    fn interval(&self) -> Duration {
        self.schedule().interval()
    }

    /// The first poll instant of `target` at or after `at`. Unstretched, each target keeps
    /// its golden-ratio phase of the set interval; stretched, the targets polled are spread
    /// evenly over the stretched interval in creation order, so that no minute holds more
    /// than its share of calls (golden-ratio phases bunch by two or three calls a window).
    fn next_slot(&self, target: &Target, at: Instant) -> Instant {
        let entries = self.entries.lock();
        self.next_slot_in(&entries, target, at)
    }

    fn next_slot_in(
        &self,
        entries: &HashMap<Target, Entry>,
        target: &Target,
        at: Instant,
    ) -> Instant {
        let schedule = Schedule::of(entries, self.settings.poll_interval, self.rate_limit);
        let interval = schedule.interval();
        let Some(e) = entries.get(target) else {
            return at;
        };
        let phase = if schedule.stretched {
            let rank = entries
                .values()
                .filter(|o| o.counted() && o.order < e.order)
                .count();
            rank as f64 / schedule.targets.max(1) as f64
        } else {
            e.phase
        };
        let base = self.epoch + interval.mul_f64(phase.clamp(0.0, 1.0));
        if at <= base {
            return base;
        }
        let n = (at - base).as_nanos().div_ceil(interval.as_nanos());
        base + interval * u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        let now = Instant::now();
        let ahead = at.saturating_duration_since(now);
        self.clock.now() + chrono::Duration::from_std(ahead).unwrap_or_default()
    }

    /// Marks a target as queried and makes sure it is polled.
    fn touch(self: &Arc<Self>, target: &Target) {
        self.ensure_maintenance();
        let now = Instant::now();
        let register = {
            let mut entries = self.entries.lock();
            let e = entries
                .entry(target.clone())
                .or_insert_with(|| self.new_entry(target, now));
            e.last_queried = now;
            // Registered at most every quarter of the idle period: enough to keep the owner
            // polling, not a write per panel refresh.
            let due = e
                .registered
                .is_none_or(|at| now.duration_since(at) >= self.settings.idle_after / 4);
            if due && self.store.shared().is_some() {
                e.registered = Some(now);
            }
            due
        };
        if let Some(store) = self.store.shared() {
            if register && tokio::runtime::Handle::try_current().is_ok() {
                let (store, uid, target) = (store.clone(), self.uid.clone(), target.clone());
                let inner = Arc::clone(self);
                tokio::spawn(async move {
                    if let Err(e) = store
                        .register(&uid, std::slice::from_ref(&target), false)
                        .await
                    {
                        inner.store_failed(&e.message);
                        if let Some(entry) = inner.entries.lock().get_mut(&target) {
                            entry.registered = None;
                        }
                    }
                });
            }
            return;
        }
        self.ensure_poller(target, true, now);
    }

    fn store_failed(&self, message: &str) {
        self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
        if self.counters.store_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(uid = %self.uid, error = %message, "the shared history database failed");
        }
    }

    fn store_ok(&self) {
        if !self.counters.store_up.swap(true, Ordering::Relaxed) {
            tracing::info!(uid = %self.uid, "the shared history database answers");
        }
    }

    /// A query on a replica with the shared store: the shared latest sample, or (for a target
    /// nobody polled yet) the first one its owner stores, waited for within
    /// `first_sample_wait`. Never calls upstream itself, so that every replica answers alike.
    async fn latest_shared(
        self: &Arc<Self>,
        store: &PgStore,
        target: &Target,
    ) -> Result<Latest, UpstreamError> {
        let failed = |e: crate::store::PgError| UpstreamError::shared("connect", &e.message);
        let interval = self.settings.poll_interval;
        let first_ask = self
            .entries
            .lock()
            .get(target)
            .is_some_and(|e| e.latest.is_none());
        if first_ask {
            store
                .register(&self.uid, std::slice::from_ref(target), false)
                .await
                .map_err(failed)?;
        }
        let deadline = Instant::now() + self.settings.first_sample_wait;
        let mut notices = store.notices();
        loop {
            let stored = store.latest(&self.uid, target).await.map_err(failed)?;
            if let Some(sample) = stored {
                let sample = Arc::new(sample);
                self.remember(target, &sample);
                let age = (self.clock.now() - sample.sampled_at)
                    .to_std()
                    .unwrap_or_default();
                let stale = (age >= interval * 2).then(|| {
                    format!(
                        "showing the sample of {} ({} old): the replica that polls this target has stored nothing newer (see the data source's health for the replicas seen)",
                        sample.sampled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        human(age)
                    )
                });
                return Ok(Latest { sample, age, stale });
            }
            if let Some((_, Some((kind, message)))) =
                store.newest(&self.uid, target).await.map_err(failed)?
            {
                return Err(UpstreamError::shared(&kind, &message));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(UpstreamError::shared(
                    "timeout",
                    &format!(
                        "no replica stored a first sample of {} within {} s; the replica that owns the target polls it on its schedule: try again shortly",
                        target.label(),
                        self.settings.first_sample_wait.as_secs()
                    ),
                ));
            }
            // A notice (of any target) or a short pause, whichever comes first.
            let wait = (deadline - now).min(Duration::from_millis(250));
            let _ = tokio::time::timeout(wait, notices.recv()).await;
        }
    }

    /// Keeps a sample seen in the shared store as the target's latest in memory, if newer.
    fn remember(&self, target: &Target, sample: &Arc<Sample>) {
        if let Some(e) = self.entries.lock().get_mut(target) {
            if e.latest
                .as_ref()
                .is_none_or(|have| have.sampled_at < sample.sampled_at)
            {
                e.latest = Some(Arc::clone(sample));
                e.last_success = Some(sample.sampled_at);
                e.failing = false;
            }
        }
    }

    /// Starts the target's poller unless it runs. `queried`: the query fetches now, so the
    /// first poll comes at least half an interval later.
    fn ensure_poller(self: &Arc<Self>, target: &Target, queried: bool, now: Instant) {
        if self.closed.load(Ordering::SeqCst) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut entries = self.entries.lock();
        let entry = entries
            .entry(target.clone())
            .or_insert_with(|| self.new_entry(target, now));
        if entry.polling() {
            return;
        }
        // With the shared store only the lease holder polls.
        if self.store.shared().is_some() && entry.lease.is_none() {
            return;
        }
        let after = if queried {
            now + self.settings.poll_interval / 2
        } else {
            now
        };

        let first = self.next_slot_in(&entries, target, after);
        let Some(entry) = entries.get_mut(target) else {
            return;
        };
        entry.next_poll = Some(self.wall(first));
        let inner = Arc::clone(self);
        let target = target.clone();
        entry.task = Some(tokio::spawn(
            async move { inner.poll_loop(target, first).await },
        ));
    }

    fn ensure_maintenance(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut slot = self.maintenance.lock();
        if slot.is_some() {
            return;
        }
        let inner = Arc::clone(self);
        *slot = Some(tokio::spawn(async move {
            loop {
                inner.prune().await;
                tokio::time::sleep(inner.settings.prune_every).await;
            }
        }));
        if let Some(store) = self.store.shared() {
            let mut tasks = self.coordination.lock();
            let inner = Arc::clone(self);
            let s = store.clone();
            tasks.push(tokio::spawn(async move { inner.coordinate_loop(s).await }));
            let inner = Arc::clone(self);
            let s = store.clone();
            tasks.push(tokio::spawn(async move { inner.forward_notices(s).await }));
        }
    }

    /// Shared store: every [`lease_round`], renews this replica's leases and claims its fair
    /// share of the wanted targets; pollers start and stop with the leases.
    async fn coordinate_loop(self: Arc<Self>, store: PgStore) {
        let interval = self.settings.poll_interval;
        let (ttl, round) = (lease_period(interval), lease_round(interval));
        let mut watch_registered = self.settings.watch.is_empty();
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            if !watch_registered {
                watch_registered = store
                    .register(&self.uid, &self.settings.watch, true)
                    .await
                    .is_ok();
            }
            match store
                .coordinate(&self.uid, ttl, self.settings.idle_after)
                .await
            {
                Ok(r) => {
                    self.store_ok();
                    self.apply_round(r);
                    self.flush_pending().await;
                }
                Err(e) => self.store_failed(&e.message),
            }
            tokio::time::sleep(round).await;
        }
    }

    fn apply_round(self: &Arc<Self>, round: Round) {
        let now = Instant::now();
        let owned: HashMap<String, i64> = round.owned.into_iter().collect();
        let mut start = Vec::new();
        {
            let mut entries = self.entries.lock();
            for e in entries.values_mut() {
                if let Some(lease) = e.lease {
                    if owned.get(&e.target.key()) != Some(&lease.epoch) {
                        tracing::info!(uid = %self.uid, target = %e.target, epoch = lease.epoch, "lease lost: another replica polls this target");
                        e.lease = None;
                        e.next_poll = None;
                        e.pending.clear();
                        if let Some(task) = e.task.take() {
                            task.abort();
                        }
                        self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for (key, epoch) in &owned {
                let Ok(target) = Target::from_key(key) else {
                    continue;
                };
                let e = entries
                    .entry(target.clone())
                    .or_insert_with(|| self.new_entry(&target, now));
                if e.lease.map(|l| l.epoch) != Some(*epoch) {
                    tracing::info!(uid = %self.uid, target = %target, epoch, "lease acquired");
                    e.lease = Some(Lease { epoch: *epoch });
                    if let Some(task) = e.task.take() {
                        task.abort();
                    }
                    self.counters.acquired.fetch_add(1, Ordering::Relaxed);
                    start.push(target);
                } else if !e.polling() {
                    start.push(target);
                }
            }
            let buffered: usize = entries.values().map(|e| e.pending.len()).sum();
            self.counters
                .buffered
                .store(buffered as u64, Ordering::Relaxed);
        }
        self.counters
            .owned
            .store(owned.len() as u64, Ordering::Relaxed);
        self.counters
            .replicas
            .store(round.replicas, Ordering::Relaxed);
        for target in start {
            self.ensure_poller(&target, false, now);
        }
    }

    /// Shared store: pushes every sample any replica stores for this data source to the live
    /// streams of this replica (once each), and keeps the latest in memory for metrics.
    async fn forward_notices(self: Arc<Self>, store: PgStore) {
        let mut rx = store.notices();
        loop {
            let notice = match rx.recv().await {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if notice.uid != self.uid {
                continue;
            }
            let Ok(target) = Target::from_key(&notice.target) else {
                continue;
            };
            if !self.entries.lock().contains_key(&target) {
                continue;
            }
            // The noticed instant, not the newest: a reconnecting listener catches up on
            // several samples of a target, each pushed once.
            let sample = match store.sample_at(&self.uid, &target, notice.at).await {
                Ok(Some(s)) => Arc::new(s),
                _ => continue,
            };
            self.remember(&target, &sample);
            let fresh = {
                let mut entries = self.entries.lock();
                match entries.get_mut(&target) {
                    Some(e) if e.announced.is_none_or(|a| a < sample.sampled_at) => {
                        e.announced = Some(sample.sampled_at);
                        if e.lease.is_none() {
                            e.samples += 1;
                        }
                        true
                    }
                    _ => false,
                }
            };
            if fresh {
                let _ = self.events.send((target, sample));
            }
        }
    }

    /// Shared store: writes a poll's outcome under the target's lease, after anything the
    /// buffer holds. A refused epoch ends the lease here; a failing store buffers.
    async fn write_shared(&self, target: &Target, item: Option<Pending>) {
        let Some(store) = self.store.shared() else {
            return;
        };
        let (lease, mut queue) = {
            let mut entries = self.entries.lock();
            let Some(e) = entries.get_mut(target) else {
                return;
            };
            let Some(lease) = e.lease else {
                return;
            };
            let mut queue = std::mem::take(&mut e.pending);
            queue.extend(item);
            (lease, queue)
        };
        while let Some(item) = queue.front() {
            let outcome = match item {
                Pending::Sample(s) => store
                    .record_sample(&self.uid, target, s, Some(lease))
                    .await
                    .into(),
                Pending::Failure(at, error) => store
                    .record_failure(
                        &self.uid,
                        target,
                        *at,
                        error.kind().as_str(),
                        &error.to_string(),
                        Some(lease),
                    )
                    .await
                    .into(),
            };
            match outcome {
                StoreWrite::Stored => {
                    self.store_ok();
                    queue.pop_front();
                }
                StoreWrite::Fenced => {
                    tracing::info!(uid = %self.uid, target = %target, epoch = lease.epoch, "write refused: the lease moved to another replica");
                    self.counters.fenced.fetch_add(1, Ordering::Relaxed);
                    let mut entries = self.entries.lock();
                    if let Some(e) = entries.get_mut(target) {
                        if e.lease == Some(lease) {
                            e.lease = None;
                            e.next_poll = None;
                            self.counters.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        e.pending.clear();
                    }
                    return;
                }
                StoreWrite::Failed(message) => {
                    self.store_failed(&message);
                    while queue.len() > PENDING_MAX {
                        queue.pop_front();
                    }
                    if let Some(e) = self.entries.lock().get_mut(target) {
                        e.pending = queue;
                    }
                    return;
                }
            }
        }
    }

    /// Writes what the buffer holds (after the store came back).
    async fn flush_pending(&self) {
        let waiting: Vec<Target> = self
            .entries
            .lock()
            .values()
            .filter(|e| !e.pending.is_empty() && e.lease.is_some())
            .map(|e| e.target.clone())
            .collect();
        for target in waiting {
            self.write_shared(&target, None).await;
        }
    }

    async fn prune(&self) {
        let retention =
            chrono::Duration::from_std(self.settings.retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .clock
            .now()
            .checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        match self.store.prune(&self.uid, cutoff).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(uid = %self.uid, rows = n, "pruned history");
                let targets: Vec<Target> = self
                    .entries
                    .lock()
                    .values()
                    .map(|e| e.target.clone())
                    .collect();
                for t in targets {
                    self.refresh_count(&t).await;
                }
            }
            Err(e) => tracing::warn!(uid = %self.uid, error = %e, "pruning the history failed"),
        }
    }

    async fn refresh_count(&self, target: &Target) {
        if let Ok(n) = self.store.count(&self.uid, target).await {
            if let Some(e) = self.entries.lock().get_mut(target) {
                e.samples = n;
            }
        }
    }

    /// The latest sample in memory, or (once per target, after a start) from the history.
    async fn cached_latest(&self, target: &Target) -> Option<Arc<Sample>> {
        {
            let entries = self.entries.lock();
            let e = entries.get(target)?;
            if e.latest.is_some() || e.latest_loaded {
                return e.latest.clone();
            }
        }
        let stored = match self.store.latest(&self.uid, target).await {
            Ok(s) => s.map(Arc::new),
            Err(e) => {
                tracing::warn!(uid = %self.uid, error = %e, "reading the latest sample failed");
                None
            }
        };
        let mut entries = self.entries.lock();
        let e = entries.get_mut(target)?;
        e.latest_loaded = true;
        if e.latest.is_none() {
            e.latest = stored;
            if let Some(s) = &e.latest {
                e.last_success = e.last_success.max(Some(s.sampled_at));
            }
        }
        e.latest.clone()
    }

    /// Takes a fresh sample: memory, history, subscribers. A sample already taken (a query and
    /// a poll sharing one call) is taken once; returns the sample that is now the latest.
    async fn accept(&self, target: &Target, sample: Sample) -> Arc<Sample> {
        let sample = Arc::new(sample);
        {
            let mut entries = self.entries.lock();
            let Some(e) = entries.get_mut(target) else {
                return sample;
            };
            if let Some(have) = &e.latest {
                if have.sampled_at >= sample.sampled_at {
                    return Arc::clone(have);
                }
            }
            e.latest = Some(Arc::clone(&sample));
            e.last_success = Some(sample.sampled_at);
            e.failing = false;
            e.samples += 1;
        }
        match &self.store {
            Store::Embedded(history) => {
                if let Err(e) = history.record_sample(&self.uid, target, &sample).await {
                    tracing::warn!(uid = %self.uid, target = %target, error = %e, "storing a sample failed");
                }
                // Nobody listening is fine.
                let _ = self.events.send((target.clone(), Arc::clone(&sample)));
            }
            // Live pushes come from the store's notice, on every replica alike.
            Store::Shared(_) => {
                self.write_shared(target, Some(Pending::Sample(Arc::clone(&sample))))
                    .await
            }
        }
        sample
    }

    fn note_failure(&self, target: &Target, error: &UpstreamError) {
        if let Some(e) = self.entries.lock().get_mut(target) {
            e.last_error = Some((self.clock.now(), error.clone()));
            e.failing = true;
        }
    }

    async fn poll_loop(self: Arc<Self>, target: Target, first: Instant) {
        let interval = self.settings.poll_interval;
        self.refresh_count(&target).await;
        let mut next = first;
        let shared = self.store.shared().is_some();
        if let Some(store) = self.store.shared() {
            // A new owner polls at once unless the former one polled within the interval:
            // a takeover misses at most one poll and adds none.
            next = Instant::now();
            if let Ok(Some(s)) = store.latest(&self.uid, &target).await {
                let age = (self.clock.now() - s.sampled_at)
                    .to_std()
                    .unwrap_or_default();
                if age < interval {
                    next += interval - age;
                }
            }
        }
        loop {
            tokio::time::sleep_until(next).await;
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            // Stretched when the targets polled need more calls than the budget gives.
            let interval = self.interval();
            // Idle after 10 intervals as they run: a stretched poller is not idle for missing
            // queries it could not have answered.
            let idle_after = self.settings.idle_after.max(interval * 10);
            let fresh_age = {
                let mut entries = self.entries.lock();
                let Some(e) = entries.get_mut(&target) else {
                    return;
                };
                if shared && e.lease.is_none() {
                    e.next_poll = None;
                    e.task = None;
                    return;
                }
                // With the shared store, idleness is every replica's queries', judged by the
                // store (the lease is released).
                if !shared && !e.watched && now.duration_since(e.last_queried) >= idle_after {
                    // Idle: stop, and free the in-memory sample (the history keeps it).
                    e.next_poll = None;
                    e.latest = None;
                    e.latest_loaded = false;
                    // Detach now, so a query racing with this exit starts a new poller.
                    e.task = None;
                    return;
                }
                e.latest.as_ref().map(|s| {
                    (self.clock.now() - s.sampled_at)
                        .to_std()
                        .unwrap_or_default()
                })
            };
            // A query fetched this target moments ago: that sample is this poll's.
            if let Some(age) = fresh_age.filter(|a| *a < interval / 2) {
                next = self.next_slot(&target, now + interval / 2 - age);
                self.set_next(&target, next);
                continue;
            }
            let mut delay = interval / 2;
            match self.upstream.estats_within(&target, interval).await {
                Ok(fetched) => {
                    let sample = Sample::from_response(fetched.received_at, &fetched.response);
                    self.accept(&target, sample).await;
                }
                Err(error) => {
                    self.note_failure(&target, &error);
                    let at = self.clock.now();
                    match &self.store {
                        Store::Embedded(history) => {
                            match history.record_failure(&self.uid, &target, at, &error).await {
                                Ok(()) => {
                                    if let Some(e) = self.entries.lock().get_mut(&target) {
                                        e.samples += 1;
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(uid = %self.uid, target = %target, error = %e, "storing a failed poll failed")
                                }
                            }
                        }
                        Store::Shared(_) => {
                            self.write_shared(&target, Some(Pending::Failure(at, error.clone())))
                                .await;
                            if let Some(e) = self.entries.lock().get_mut(&target) {
                                e.samples += 1;
                            }
                        }
                    }
                    tracing::debug!(uid = %self.uid, target = %target, error = %error, "poll failed");
                    // Credentials and 429 pauses: wait the block out instead of failing (and
                    // storing a gap) every interval.
                    if let Some(blocked) = self.upstream.blocked_for(&target) {
                        delay = delay.max(blocked);
                    }
                }
            }
            next = self.next_slot(&target, Instant::now() + delay);
            self.set_next(&target, next);
        }
    }

    fn set_next(&self, key: &Target, next: Instant) {
        let wall = self.wall(next);
        if let Some(e) = self.entries.lock().get_mut(key) {
            e.next_poll = Some(wall);
        }
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(task) = self.maintenance.lock().take() {
            task.abort();
        }
        for task in self.coordination.lock().drain(..) {
            task.abort();
        }
        if let Some(store) = self.store.shared() {
            // Handing the leases over now spares the other replicas the lease period.
            if tokio::runtime::Handle::try_current().is_ok() {
                let (store, uid) = (store.clone(), self.uid.clone());
                tokio::spawn(async move {
                    let _ = store.release_all(&uid).await;
                });
            }
        }
        for e in self.entries.lock().values_mut() {
            if let Some(task) = e.task.take() {
                task.abort();
            }
            e.next_poll = None;
        }
    }
}

#[cfg(test)]
mod tests;
