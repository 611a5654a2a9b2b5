use std::time::Duration;

use super::*;
use crate::handlers::timeseries::series::{build, SeriesSpec};
use crate::history::History;
use crate::query::{GroupBy, Metric, StatusFilter};
use crate::sample::Side;
use crate::upstream::fake::{fetched, server_error, FakeFetch};
use crate::upstream::WINDOW;
use tokio::time::Instant;

fn target(n: u64) -> Target {
    Target::cp_code(n, None)
}

struct Setup {
    fake: Arc<FakeFetch>,
    monitor: Monitor,
    clock: Clock,
    history: History,
}

fn setup_with(
    uid: &str,
    interval_s: u64,
    rate: u32,
    watch: Vec<Target>,
    fake: Option<Arc<FakeFetch>>,
    history: Option<History>,
    clock: Option<Clock>,
) -> Setup {
    let clock = clock.unwrap_or_else(Clock::following_tokio);
    let fake = fake.unwrap_or_else(|| Arc::new(FakeFetch::ok(clock.clone())));
    let history = history.unwrap_or_else(|| History::open(None).unwrap());
    let upstream = Arc::new(Upstream::new(fake.clone(), rate));
    let settings = MonitorSettings::new(
        Duration::from_secs(interval_s),
        Duration::from_secs(7 * 24 * 3600),
        watch,
    );
    let monitor = Monitor::with_clock(
        uid.into(),
        settings,
        upstream,
        history.clone(),
        clock.clone(),
    );
    Setup {
        fake,
        monitor,
        clock,
        history,
    }
}

/// A 10 s, 1000/min monitor on tokio's clock whose fetches the test scripts.
fn scripted(watch: Vec<Target>) -> (Setup, Arc<FakeFetch>) {
    let clock = Clock::following_tokio();
    let fake = Arc::new(FakeFetch::ok(clock.clone()));
    let s = setup_with("ds", 10, 1000, watch, Some(fake.clone()), None, Some(clock));
    (s, fake)
}

fn setup(interval_s: u64, rate: u32, watch: Vec<Target>) -> Setup {
    setup_with("ds", interval_s, rate, watch, None, None, None)
}

async fn settle() {
    // Lets spawned tasks and blocking history writes finish without moving the clock far.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn budget_is_never_exceeded_with_many_watched_targets() {
    let watch: Vec<Target> = (0..50).map(target).collect();
    let s = setup(2, 40, watch);
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(180)).await;
    let times = s.fake.times();
    assert!(times.len() >= 100, "the budget is used: {}", times.len());
    for w in times.windows(41) {
        assert!(w[40] - w[0] >= WINDOW, "41 calls within {:?}", w[40] - w[0]);
    }
    // 50 targets every 2 s would need 1,500 calls a minute: the pollers stretch to 84 s
    // (36 calls a minute) instead of being refused by the budget.
    assert_eq!(s.monitor.schedule().effective_interval_seconds, 84);
    let states = s.monitor.targets();
    assert_eq!(states.len(), 50);
    assert!(states.iter().all(|t| t.polling && t.watched));
    assert!(states
        .iter()
        .all(|t| t.samples >= 2 && t.last_error.is_none()));
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_the_budget_fail_naming_it() {
    // Queries spend the budget that the (unstretched) pollers planned with.
    let s = setup(10, 4, vec![target(1)]);
    s.monitor.start_watch();
    for t in 2..=6 {
        let _ = s.monitor.latest(&target(t)).await;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert!(s.monitor.targets().iter().any(|t| t
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("budget"))));
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_queries_on_a_cold_target_make_one_call() {
    let s = setup(60, 40, vec![]);
    let mut joins = Vec::new();
    for _ in 0..100 {
        let m = s.monitor.clone();
        joins.push(tokio::spawn(async move { m.latest(&target(1)).await }));
    }
    for j in joins {
        let latest = j.await.unwrap().unwrap();
        assert!(latest.stale.is_none());
    }
    settle().await;
    assert_eq!(s.fake.count(), 1);
    assert_eq!(s.history.count("ds", &target(1)).await.unwrap(), 1);
    // Then the cache answers while the sample is younger than the interval.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let latest = s.monitor.latest(&target(1)).await.unwrap();
    assert_eq!(s.fake.count(), 1);
    assert!(latest.age >= Duration::from_secs(20) && latest.age < Duration::from_secs(21));
}

#[tokio::test(start_paused = true)]
async fn a_queried_target_is_polled_until_idle() {
    let s = setup(10, 1000, vec![]);
    s.monitor.latest(&target(1)).await.unwrap();
    assert_eq!(s.fake.count(), 1);
    let state = &s.monitor.targets()[0];
    assert!(state.polling && !state.watched);
    // First poll at least half an interval after the query, then every interval.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let n = s.fake.count();
    assert!((6..=7).contains(&n), "{n} calls");
    // Not queried for 10 intervals: polling stops.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let stopped_at = s.fake.count();
    assert!(!s.monitor.targets()[0].polling);
    assert!(s.monitor.targets()[0].next_poll.is_none());
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(s.fake.count(), stopped_at);
    // A new query revives it.
    s.monitor
        .range(
            &target(1),
            s.clock.now() - chrono::Duration::hours(1),
            s.clock.now(),
        )
        .await
        .unwrap();
    assert!(s.monitor.targets()[0].polling);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(s.fake.count() > stopped_at);
}

#[tokio::test(start_paused = true)]
async fn watched_targets_fire_spread_over_the_interval() {
    let watch: Vec<Target> = (0..10).map(target).collect();
    let s = setup(10, 10_000, watch);
    s.monitor.start_watch();
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    let mut first_round = s.fake.times();
    assert_eq!(
        first_round.len(),
        10,
        "each target once in the first interval"
    );
    first_round.sort();
    let min_gap = first_round.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(min_gap >= Duration::from_millis(500), "{min_gap:?}");
    // Steady state: one call per target per interval.
    tokio::time::sleep(Duration::from_secs(100)).await;
    let calls = s.fake.calls.lock().clone();
    for t in 0..10 {
        let n = calls.iter().filter(|c| c.1 == target(t)).count();
        assert!((10..=11).contains(&n), "target {t}: {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_poll_failure_is_a_gap_not_a_zero() {
    let (s, fake) = scripted(vec![target(1)]);
    let start = s.clock.now();
    // The three attempts of the second poll fail.
    fake.push(Ok(fetched(start, &[(200, 90), (503, 10)])));
    for _ in 0..3 {
        fake.push(Err(server_error()));
    }
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(25)).await;
    settle().await;
    let points = s
        .monitor
        .range(&target(1), start, s.clock.now())
        .await
        .unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    assert!(points[0].sample.is_some() && points[1].sample.is_none() && points[2].sample.is_some());
    let set = build(
        &points,
        &SeriesSpec {
            sides: &[Side::Edge],
            group_by: GroupBy::Code,
            metric: Metric::Hits,
            filter: &StatusFilter::default(),
            from: start,
            to: s.clock.now(),
            interval: Duration::from_secs(1),
            max_data_points: 1000,
        },
    );
    let s503 = set.series.iter().find(|x| x.status == "503").unwrap();
    assert_eq!(s503.values, [Some(10.0), None, Some(10.0)]);
    let state = &s.monitor.targets()[0];
    assert_eq!(state.samples, 3);
    assert!(state.last_error.as_deref().unwrap().contains("503"));
}

#[tokio::test(start_paused = true)]
async fn an_old_sample_is_served_stale_when_the_fetch_fails() {
    let (s, fake) = scripted(vec![]);
    let first = s.monitor.latest(&target(1)).await.unwrap();
    s.monitor.shutdown(); // no poller: only the queries call
    tokio::time::sleep(Duration::from_secs(15)).await;
    for _ in 0..3 {
        fake.push(Err(server_error()));
    }
    let stale = s.monitor.latest(&target(1)).await.unwrap();
    assert_eq!(stale.sample.sampled_at, first.sample.sampled_at);
    let notice = stale.stale.unwrap();
    assert!(notice.contains("old") && notice.contains("503"), "{notice}");
    assert_eq!(s.fake.count(), 4);
    // Within the interval after that failure, no new attempt.
    let again = s.monitor.latest(&target(1)).await.unwrap();
    assert!(again.stale.is_some());
    assert_eq!(s.fake.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn no_sample_and_a_failure_is_an_error() {
    let clock = Clock::following_tokio();
    let fake = Arc::new(FakeFetch::with(
        clock.clone(),
        Box::new(|_, _| Err(server_error())),
    ));
    let s = setup_with("ds", 10, 1000, vec![], Some(fake), None, Some(clock));
    let err = s.monitor.latest(&target(1)).await.unwrap_err();
    assert_eq!(err.grafana_status(), 502);
}

#[tokio::test(start_paused = true)]
async fn credential_failures_are_retried_in_minutes_not_every_interval() {
    let clock = Clock::following_tokio();
    let fake = Arc::new(FakeFetch::with(
        clock.clone(),
        Box::new(|_, _| Err(UpstreamError::auth("The signature does not match"))),
    ));
    let s = setup_with(
        "ds",
        1,
        1000,
        vec![target(1), target(2)],
        Some(fake),
        None,
        Some(clock),
    );
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(600)).await;
    // 2 min, 4 min (doubling) after the first: at most 3 calls in 10 minutes, not 1,200.
    let n = s.fake.count();
    assert!((2..=4).contains(&n), "{n} calls");
    let stored = s.history.count("ds", &target(1)).await.unwrap();
    assert!(stored <= 5, "{stored} failed polls stored");
}

#[tokio::test(start_paused = true)]
async fn a_settings_change_keeps_the_history() {
    let history = History::open(None).unwrap();
    let clock = Clock::following_tokio();
    let old = setup_with(
        "ds",
        10,
        1000,
        vec![target(1)],
        None,
        Some(history.clone()),
        Some(clock.clone()),
    );
    let start = clock.now();
    old.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(35)).await;
    settle().await;
    let old_calls = old.fake.count();
    assert!(old_calls >= 3);
    // The instance is replaced: new client and upstream, other interval, same uid and history.
    let Setup {
        fake: old_fake,
        monitor,
        ..
    } = old;
    drop(monitor);
    let new = setup_with(
        "ds",
        20,
        1000,
        vec![target(1)],
        None,
        Some(history.clone()),
        Some(clock.clone()),
    );
    new.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Past the fake's latency, so that the last call started is also stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(old_fake.count(), old_calls, "the old pollers ended");
    assert!(new.fake.count() >= 2);
    let points = new
        .monitor
        .range(&target(1), start, clock.now())
        .await
        .unwrap();
    assert_eq!(points.len(), old_calls + new.fake.count());
    // The latest sample after a restart comes from the history, without a call.
    let fresh = setup_with("ds", 120, 1000, vec![], None, Some(history), Some(clock));
    let latest = fresh.monitor.latest(&target(1)).await.unwrap();
    assert!(latest.stale.is_none());
    assert_eq!(fresh.fake.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn two_data_sources_are_isolated() {
    let history = History::open(None).unwrap();
    let clock = Clock::following_tokio();
    let a = setup_with(
        "a",
        10,
        7,
        vec![target(1)],
        None,
        Some(history.clone()),
        Some(clock.clone()),
    );
    let b = setup_with(
        "b",
        10,
        7,
        vec![],
        None,
        Some(history.clone()),
        Some(clock.clone()),
    );
    let start = clock.now();
    a.monitor.start_watch();
    b.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(25)).await;
    settle().await;
    // Only a watches target 1; b has no pollers and no rows.
    assert!(a.fake.count() >= 3);
    assert_eq!(b.fake.count(), 0);
    assert!(b.monitor.targets().is_empty());
    let b_points = b
        .history
        .range("b", &target(1), start, clock.now())
        .await
        .unwrap();
    assert!(b_points.is_empty());
    // a's budget is spent on a's calls; b's is untouched.
    assert!(a.monitor.budget().tokens_left <= 4);
    assert_eq!(b.monitor.budget().tokens_left, 7);
    let latest = b.monitor.latest(&target(1)).await.unwrap();
    assert_eq!(b.fake.count(), 1);
    assert!(latest.age < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_every_stored_sample_once() {
    let s = setup(10, 1000, vec![target(1)]);
    let mut rx = s.monitor.subscribe();
    s.monitor.start_watch();
    // A query racing with the first poll shares its call and its sample.
    let _ = s.monitor.latest(&target(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    settle().await;
    let mut got = Vec::new();
    while let Ok((t, sample)) = rx.try_recv() {
        assert_eq!(t, target(1));
        got.push(sample.sampled_at.timestamp_millis());
    }
    assert_eq!(got.len(), s.fake.count());
    assert!(got.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_ends_the_tasks() {
    let s = setup(5, 1000, vec![target(1)]);
    let second = s.monitor.clone();
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(12)).await;
    drop(second);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let still = s.fake.count();
    assert!(still >= 4, "a clone's drop does not stop it");
    let Setup { fake, monitor, .. } = s;
    drop(monitor);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.count(), still);
}

#[tokio::test(start_paused = true)]
async fn retention_prunes_at_start() {
    let clock = Clock::following_tokio();
    let history = History::open(None).unwrap();
    let now = clock.now();
    let t = target(1);
    for hours in [200, 100, 1] {
        let at = now - chrono::Duration::hours(hours);
        let f = fetched(at, &[(200, 1)]);
        history
            .record_sample("ds", &t, &Sample::from_response(at, &f.response))
            .await
            .unwrap();
    }
    let s = setup_with(
        "ds",
        10,
        1000,
        vec![t.clone()],
        None,
        Some(history.clone()),
        Some(clock),
    );
    s.monitor.start_watch();
    settle().await;
    // Retention 7 days = 168 h: the 200 h old row goes.
    let points = history
        .range("ds", &t, now - chrono::Duration::days(30), now)
        .await
        .unwrap();
    assert_eq!(points.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn targets_report_state() {
    let s = setup(10, 40, vec![target(2)]);
    s.monitor.latest(&target(1)).await.unwrap();
    s.monitor.start_watch();
    settle().await;
    let states = s.monitor.targets();
    assert_eq!(
        states.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["cp:1/ANY", "cp:2/ANY"]
    );
    let one = &states[0];
    assert!(one.last_success.is_some() && one.last_error.is_none());
    assert!(one.next_poll.unwrap() > s.clock.now());
    assert_eq!(one.samples, 1);
    assert_eq!(one.budget_left, 39);
    let json = serde_json::to_value(one).unwrap();
    assert_eq!(json["target"], serde_json::json!({"cpCode": 1}));
    assert!(json.get("lastSuccess").is_some() && json.get("nextPoll").is_some());
    assert!(states[1].watched);
}

#[tokio::test(start_paused = true)]
async fn latest_cached_reads_memory_only_and_says_when_the_last_attempt_failed() {
    let (s, fake) = scripted(vec![]);
    assert!(s.monitor.latest_cached(&target(1)).is_none());
    assert_eq!(s.fake.count(), 0, "no upstream call for a cached read");
    let first = s.monitor.latest(&target(1)).await.unwrap();
    s.monitor.shutdown();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let cached = s.monitor.latest_cached(&target(1)).unwrap();
    assert_eq!(cached.sample.sampled_at, first.sample.sampled_at);
    assert!(!cached.failing);
    assert!(cached.age >= Duration::from_secs(15), "{:?}", cached.age);
    for _ in 0..3 {
        fake.push(Err(server_error()));
    }
    let _ = s.monitor.latest(&target(1)).await.unwrap();
    let calls = s.fake.count();
    let cached = s.monitor.latest_cached(&target(1)).unwrap();
    assert!(cached.failing);
    assert_eq!(s.fake.count(), calls);
}

#[tokio::test(start_paused = true)]
async fn keep_polling_starts_a_poller_without_fetching_and_holds_off_idling() {
    let s = setup(10, 1000, vec![]);
    s.monitor.keep_polling(&target(1));
    assert_eq!(s.fake.count(), 0, "keep_polling never fetches itself");
    assert!(s.monitor.targets()[0].polling);
    // Touched every interval (as a live stream does), it outlives the 10-interval idle limit.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        s.monitor.keep_polling(&target(1));
    }
    assert!(s.monitor.targets()[0].polling);
    assert!(s.fake.count() >= 28, "{} polls", s.fake.count());
}

#[tokio::test(start_paused = true)]
async fn subscribers_get_each_stored_sample_once_and_no_failed_poll() {
    let (s, fake) = scripted(vec![target(1)]);
    let mut rx = s.monitor.subscribe();
    // The second poll fails (all three attempts).
    fake.push(Ok(fetched(s.clock.now(), &[(200, 1)])));
    for _ in 0..3 {
        fake.push(Err(server_error()));
    }
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(35)).await;
    settle().await;
    let mut got = Vec::new();
    while let Ok((t, sample)) = rx.try_recv() {
        assert_eq!(t, target(1));
        got.push(sample.sampled_at.timestamp_millis());
    }
    let stored = s
        .history
        .range(
            "ds",
            &target(1),
            s.clock.now() - chrono::Duration::hours(1),
            s.clock.now(),
        )
        .await
        .unwrap();
    let ok: Vec<_> = stored
        .iter()
        .filter(|p| p.sample.is_some())
        .map(|p| p.at.timestamp_millis())
        .collect();
    assert!(
        stored.len() > ok.len(),
        "a failed poll is stored: {stored:?}"
    );
    assert_eq!(got, ok, "one event per stored sample, none for failures");
}

#[test]
fn the_schedule_stretches_above_nine_tenths_of_the_budget() {
    let at = |targets, interval_s, limit| {
        Schedule::for_targets(targets, Duration::from_secs(interval_s), limit)
    };
    // 72 targets at 120 s need 36 calls a minute: exactly 90 % of 40, not stretched.
    let s = at(72, 120, 40);
    assert!(!s.stretched && s.notice().is_none());
    assert_eq!(s.interval(), Duration::from_secs(120));
    let s = at(73, 120, 40);
    assert!(s.stretched);
    assert_eq!(s.effective_interval_seconds, 122);
    let s = at(100, 120, 40);
    assert_eq!(
        (s.effective_interval_seconds, s.calls_per_minute_needed),
        (167, 50)
    );
    assert_eq!(
        s.notice().unwrap(),
        "polling every 167 s instead of 120 s: 100 targets need 50 calls a minute, above 90 % of the limit of 40"
    );
    assert_eq!(at(0, 120, 40).interval(), Duration::from_secs(120));
    let json = serde_json::to_value(at(100, 120, 40)).unwrap();
    assert_eq!(json["effectiveIntervalSeconds"], 167);
    assert_eq!(json["callsPerMinuteNeeded"], 50);
}

#[tokio::test(start_paused = true)]
async fn a_hundred_targets_share_a_stretched_interval_evenly_within_the_budget() {
    let watch: Vec<Target> = (1..=100).map(target).collect();
    let s = setup(120, 40, watch.clone());
    let schedule = s.monitor.schedule();
    assert!(schedule.stretched);
    assert_eq!(schedule.effective_interval_seconds, 167);
    s.monitor.start_watch();
    let start = Instant::now();
    // Ten stretched rounds.
    tokio::time::sleep(Duration::from_secs(167 * 10)).await;
    let mut times: Vec<Duration> = s.fake.times().iter().map(|t| *t - start).collect();
    times.sort();
    // Every minute holds at most 90 % of the limit.
    for (i, t) in times.iter().enumerate() {
        let in_minute = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(60))
            .count();
        assert!(
            in_minute <= 36,
            "{in_minute} calls in the minute from {t:?}"
        );
    }
    // Every target polled, as often as every other (none starved), once per stretched round.
    let calls = s.fake.calls.lock().clone();
    let per_target: Vec<usize> = watch
        .iter()
        .map(|t| calls.iter().filter(|c| &c.1 == t).count())
        .collect();
    let (min, max) = (
        *per_target.iter().min().unwrap(),
        *per_target.iter().max().unwrap(),
    );
    assert!(min >= 10 && max - min <= 1, "{min}..{max} polls a target");
    // No poll refused by the budget; the state says how often targets are polled.
    let states = s.monitor.targets();
    assert!(
        states.iter().all(|t| t.last_error.is_none()),
        "{:?}",
        states.iter().find_map(|t| t.last_error.clone())
    );
    assert!(states.iter().all(|t| t.effective_interval_seconds == 167));
    // A cached answer is fresh for the stretched interval: no call of its own.
    let before = s.fake.count();
    let latest = s.monitor.latest(&target(50)).await.unwrap();
    assert!(latest.stale.is_none());
    assert_eq!(s.fake.count(), before);
}

#[tokio::test(start_paused = true)]
async fn few_targets_keep_the_set_interval() {
    let watch: Vec<Target> = (1..=10).map(target).collect();
    let s = setup(120, 40, watch);
    s.monitor.start_watch();
    tokio::time::sleep(Duration::from_secs(120 * 3)).await;
    assert!(!s.monitor.schedule().stretched);
    assert!(s
        .monitor
        .targets()
        .iter()
        .all(|t| t.effective_interval_seconds == 120));
    let n = s.fake.count();
    assert!((30..=31).contains(&n), "{n} calls");
}

#[tokio::test(start_paused = true)]
async fn a_stretched_queried_target_idles_after_ten_stretched_intervals() {
    // 20 watched targets at 10 s with a limit of 60 stretch to 23 s; a queried target too.
    let watch: Vec<Target> = (1..=20).map(target).collect();
    let s = setup(10, 60, watch);
    s.monitor.start_watch();
    s.monitor.latest(&target(100)).await.unwrap();
    let stretched = s.monitor.schedule();
    assert!(stretched.stretched, "{stretched:?}");
    let every = stretched.interval();
    // Past 10 set intervals (100 s), short of 10 stretched ones: still polled.
    tokio::time::sleep(every * 7).await;
    let queried = |s: &Setup| {
        s.monitor
            .targets()
            .into_iter()
            .find(|t| t.key == target(100).key())
            .unwrap()
    };
    assert!(queried(&s).polling);
    tokio::time::sleep(every * 5).await;
    assert!(!queried(&s).polling, "idle after 10 stretched intervals");
}
