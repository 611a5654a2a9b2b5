//! Against the real PostgreSQL (`ESTATS_TEST_DATABASE_URL`), each test in a schema of its own,
//! dropped at the end. Skipped with a line on stderr when the database does not answer (outside CI).

use super::*;
use crate::store::test_database;
use crate::target::Target;

fn target(n: u32) -> Target {
    Target::from_key(&format!("cp:{n}/ANY")).unwrap()
}

fn sample(at: DateTime<Utc>, hits: u64) -> Sample {
    let mut s: Sample = serde_json::from_value(serde_json::json!({
        "sampled_at": at,
        "edge": {"hits": hits, "errors": 1, "failure_percentage": 1.0, "codes": [{"httpStatus": 200, "hits": hits, "percentage": 99.0}, {"httpStatus": 503, "hits": 1, "percentage": 1.0}]},
        "origin": {"hits": null, "errors": null, "failure_percentage": null, "codes": []},
        "top_ips": []
    }))
    .unwrap_or_else(|e| panic!("sample fixture: {e}"));
    s.sampled_at = at;
    s
}

async fn stores(prefix: &str) -> Option<(PgStore, PgStore)> {
    let db = test_database(prefix).await?;
    let a = PgStore::with_replica(&db, "replica-a".into()).unwrap();
    let b = PgStore::with_replica(&db, "replica-b".into()).unwrap();
    Some((a, b))
}

const TTL: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(600);

#[tokio::test]
async fn migrations_apply_once_when_replicas_start_together() {
    let Some((a, b)) = stores("mig").await else {
        return;
    };
    let (ra, rb) = tokio::join!(a.check(), b.check());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.version().await.unwrap(), MIGRATIONS.len() as i32);
    let c = PgStore::with_replica(a.database(), "replica-c".into()).unwrap();
    c.check().await.unwrap();
    assert_eq!(c.version().await.unwrap(), MIGRATIONS.len() as i32);
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn leases_spread_fence_stale_writes_and_expire() {
    let Some((a, b)) = stores("lease").await else {
        return;
    };
    let targets: Vec<Target> = (1..=4).map(target).collect();
    a.register("ds", &targets, true).await.unwrap();
    // Alone, a owns everything.
    let round = a.coordinate("ds", TTL, IDLE).await.unwrap();
    assert_eq!(round.owned.len(), 4);
    // b joins: a hands over half, b claims them.
    let rb = b.coordinate("ds", TTL, IDLE).await.unwrap();
    assert!(
        rb.owned.is_empty(),
        "all leases are a's until it hands some over"
    );
    let ra = a.coordinate("ds", TTL, IDLE).await.unwrap();
    assert_eq!((ra.owned.len(), ra.replicas), (2, 2));
    let rb = b.coordinate("ds", TTL, IDLE).await.unwrap();
    assert_eq!(rb.owned.len(), 2);
    let (key_b, epoch_b) = rb.owned[0].clone();
    let t_b = Target::from_key(&key_b).unwrap();
    // a's old lease on that target (epoch before the handover) is refused.
    let old = round
        .owned
        .iter()
        .find(|(k, _)| *k == key_b)
        .map(|(_, e)| *e)
        .unwrap();
    let now = Utc::now();
    let fenced = a
        .record_sample("ds", &t_b, &sample(now, 10), Some(Lease { epoch: old }))
        .await
        .unwrap_err();
    assert_eq!(fenced.kind, PgErrorKind::Fenced);
    assert!(b
        .record_sample("ds", &t_b, &sample(now, 10), Some(Lease { epoch: epoch_b }))
        .await
        .unwrap());
    // The same instant again is stored once.
    assert!(!b
        .record_sample("ds", &t_b, &sample(now, 10), Some(Lease { epoch: epoch_b }))
        .await
        .unwrap());
    assert_eq!(b.count("ds", &t_b).await.unwrap(), 1);
    // b stops renewing: after the lease period, a takes b's targets with a new epoch.
    let short = Duration::from_millis(300);
    a.coordinate("ds", short, IDLE).await.unwrap();
    b.coordinate("ds", short, IDLE).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // b is neither renewing nor seen within the (short) lease period: a's fair share is all.
    let ra = a.coordinate("ds", short, IDLE).await.unwrap();
    assert_eq!(ra.replicas, 1);
    assert_eq!(ra.owned.len(), 4, "a takes over b's expired leases");
    let (_, new_epoch) = ra.owned.iter().find(|(k, _)| *k == key_b).unwrap();
    assert!(*new_epoch > epoch_b);
    let late = b
        .record_sample(
            "ds",
            &t_b,
            &sample(now + chrono::Duration::seconds(1), 11),
            Some(Lease { epoch: epoch_b }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        late.kind,
        PgErrorKind::Fenced,
        "b wrote after losing its lease"
    );
    assert_eq!(a.count("ds", &t_b).await.unwrap(), 1);
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn samples_read_back_by_range_latest_and_codes_per_data_source() {
    let Some((a, _)) = stores("rows").await else {
        return;
    };
    let t = target(7);
    let t0 = Utc::now() - chrono::Duration::seconds(100);
    for i in 0..5 {
        let at = t0 + chrono::Duration::seconds(i * 10);
        a.record_sample("one", &t, &sample(at, 100 + i as u64), None)
            .await
            .unwrap();
    }
    a.record_failure(
        "one",
        &t,
        t0 + chrono::Duration::seconds(55),
        "timeout",
        "no answer",
        None,
    )
    .await
    .unwrap();
    a.record_sample("two", &t, &sample(t0, 999), None)
        .await
        .unwrap();
    let points = a
        .range("one", &t, t0, t0 + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(points.len(), 6);
    assert!(points[5].sample.is_none());
    assert_eq!(points[0].sample.as_ref().unwrap().edge.hits, Some(100));
    let latest = a.latest("one", &t).await.unwrap().unwrap();
    assert_eq!(latest.edge.hits, Some(104));
    assert_eq!(
        a.latest("two", &t).await.unwrap().unwrap().edge.hits,
        Some(999)
    );
    assert_eq!(a.status_codes("one", &t).await.unwrap(), vec![200, 503]);
    let newest = a.newest("one", &t).await.unwrap().unwrap();
    assert_eq!(newest.1.map(|f| f.0), Some("timeout".to_string()));
    assert_eq!(
        a.prune("one", t0 + chrono::Duration::seconds(25))
            .await
            .unwrap(),
        3
    );
    assert_eq!(a.count("one", &t).await.unwrap(), 3);
    assert_eq!(a.count("two", &t).await.unwrap(), 1);
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn stored_samples_are_announced_to_every_store_of_the_schema() {
    let Some((a, b)) = stores("notify").await else {
        return;
    };
    a.check().await.unwrap();
    let mut rx = b.notices();
    // The listener connects in the background; send until a notice arrives.
    let t = target(3);
    let mut got = None;
    for i in 0..40 {
        let at = Utc::now() + chrono::Duration::milliseconds(i);
        a.record_sample("ds", &t, &sample(at, 1), None)
            .await
            .unwrap();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(250), rx.recv()).await {
            got = Some(n);
            break;
        }
    }
    let n = got.expect("no notice within 10 s");
    assert_eq!((n.uid.as_str(), n.target.as_str()), ("ds", "cp:3/ANY"));
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_budget_and_429_pauses_are_shared() {
    let Some((a, b)) = stores("budget").await else {
        return;
    };
    let key = client_key("akab-host", "akab-token");
    assert!(!key.contains("akab"));
    let mut go = 0;
    for store in [&a, &b, &a, &b, &a] {
        if store.admit(&key, 3).await.unwrap() == Admission::Go {
            go += 1;
        }
    }
    assert_eq!(go, 3, "three calls a minute across both replicas");
    assert!(
        matches!(b.admit(&key, 3).await.unwrap(), Admission::Wait(d) if d <= Duration::from_secs(60))
    );
    let other = client_key("akab-host", "another-token");
    assert_eq!(a.admit(&other, 3).await.unwrap(), Admission::Go);
    a.pause(&other, Duration::from_secs(30), "429")
        .await
        .unwrap();
    assert!(
        matches!(b.admit(&other, 3).await.unwrap(), Admission::Paused(d, _) if d > Duration::from_secs(25))
    );
    assert_eq!(a.calls(&key, Duration::from_secs(60)).await.unwrap(), 3);
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let db = crate::settings::history_database(
        "postgres://estats@127.0.0.1:1/history",
        "jsonData.historyDatabase",
        Some(crate::edgegrid::Secret::new("pw-hunter2")),
        "akamai_estats",
    )
    .unwrap();
    let store = PgStore::new(&db).unwrap();
    let err = store.check().await.unwrap_err();
    assert_eq!(err.kind, PgErrorKind::Unreachable);
    assert!(
        err.message.contains("127.0.0.1:1/history"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("hunter2"));
    assert_eq!(store.last_error(), Some(err));
}
