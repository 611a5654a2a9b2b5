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

/// A schema written by version 1 (samples as JSONB) is converted in place by version 2, and
/// reads back as the same polls, samples, failures and codes; new writes use the new layout.
#[tokio::test]
async fn jsonb_samples_of_version_1_are_converted_in_place() {
    let Some((a, b)) = stores("migjson").await else {
        return;
    };
    let s = a.database().schema.clone();
    let t = target(9);
    // PostgreSQL keeps microseconds.
    let t0 = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6) - chrono::Duration::seconds(600);
    let at = |i: i64| t0 + chrono::Duration::seconds(i * 60);
    let mut expected = Vec::new();
    {
        let raw = a.inner.pool.get().await.unwrap();
        let Migration::Sql(v1) = &MIGRATIONS[0] else {
            panic!("version 1 is SQL")
        };
        raw.batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.schema_version (version integer NOT NULL); \
             INSERT INTO {s}.schema_version VALUES (1); {}",
            v1.replace("{s}", &s)
        ))
        .await
        .unwrap();
        for i in 0..5 {
            let mut sample = sample(at(i), 100 + i as u64);
            if i == 3 {
                // Totals an answer lacked stay absent; percentages with four decimals stay exact.
                sample.edge.errors = None;
                sample.origin.codes = vec![crate::estats::model::StatusCodeCount {
                    http_status: 404,
                    hits: 7,
                    percentage: 12.3456,
                }];
                sample.origin.hits = Some(7);
            }
            let body = serde_json::to_value(&sample).unwrap();
            raw.execute(
                &format!(
                    "INSERT INTO {s}.samples (uid, target, sampled_at, sample, epoch) VALUES ($1, $2, $3, $4, 1)"
                ),
                &[&"ds", &t.key(), &sample.sampled_at, &body],
            )
            .await
            .unwrap();
            expected.push(Point {
                at: sample.sampled_at,
                sample: Some(sample),
            });
        }
        raw.execute(
            &format!(
                "INSERT INTO {s}.samples (uid, target, sampled_at, error_kind, error, epoch) VALUES ($1, $2, $3, 'timeout', 'no answer', 1)"
            ),
            &[&"ds", &t.key(), &at(5)],
        )
        .await
        .unwrap();
        expected.push(Point {
            at: at(5),
            sample: None,
        });
    }
    // Two replicas upgrading together: one converts, the other finds version 2.
    let (ra, rb) = tokio::join!(a.check(), b.check());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.version().await.unwrap(), 2);
    let to = t0 + chrono::Duration::seconds(3600);
    let points = a.range("ds", &t, t0, to).await.unwrap();
    assert_eq!(points, expected);
    for wanted in [
        Wanted {
            edge: true,
            origin: true,
            hits: false,
            totals: true,
            bucketing: None,
        },
        Wanted {
            edge: false,
            origin: true,
            hits: true,
            totals: false,
            bucketing: None,
        },
    ] {
        let mut builder = PollsBuilder::new(wanted);
        for p in &expected {
            builder.push_point(p);
        }
        assert_eq!(
            b.polls("ds", &t, t0, to, wanted).await.unwrap(),
            builder.finish()
        );
    }
    assert_eq!(
        a.latest("ds", &t).await.unwrap().as_ref(),
        expected[4].sample.as_ref()
    );
    assert_eq!(
        a.sample_at("ds", &t, at(3)).await.unwrap().as_ref(),
        expected[3].sample.as_ref()
    );
    assert_eq!(a.status_codes("ds", &t).await.unwrap(), vec![200, 404, 503]);
    let failures = a.failures("ds", &t, t0, to).await.unwrap();
    assert_eq!((failures.len(), failures[0].kind.as_str()), (1, "timeout"));
    // The JSONB column is gone; new rows are written in the binary layout.
    assert!(a
        .record_sample("ds", &t, &sample(at(6), 1), None)
        .await
        .unwrap());
    assert_eq!(a.range("ds", &t, t0, to).await.unwrap().len(), 7);
    let raw = a.inner.pool.get().await.unwrap();
    let left = raw
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'samples' AND column_name = 'sample'",
            &[&s],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
    a.drop_schema().await.unwrap();
}

/// A JSONB sample that does not decode stops the migration with a message naming the row; the
/// schema stays at version 1 (one transaction) so nothing is half converted.
#[tokio::test]
async fn an_undecodable_jsonb_sample_stops_the_migration_intact() {
    let Some((a, _)) = stores("migbad").await else {
        return;
    };
    let s = a.database().schema.clone();
    let raw = a.inner.pool.get().await.unwrap();
    let Migration::Sql(v1) = &MIGRATIONS[0] else {
        panic!("version 1 is SQL")
    };
    raw.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.schema_version (version integer NOT NULL); \
         INSERT INTO {s}.schema_version VALUES (1); {}; \
         INSERT INTO {s}.samples (uid, target, sampled_at, sample, epoch) \
         VALUES ('ds', 'cp:1/ANY', now(), '{{\"edge\": 1}}', 1)",
        v1.replace("{s}", &s)
    ))
    .await
    .unwrap();
    let err = a.check().await.unwrap_err();
    assert!(err.message.contains("cp:1/ANY"), "{}", err.message);
    let version = raw
        .query_one(&format!("SELECT max(version) FROM {s}.schema_version"), &[])
        .await
        .unwrap();
    assert_eq!(version.get::<_, Option<i32>>(0), Some(1));
    a.drop_schema().await.unwrap();
}

/// Samples stored while the listening connection is down are announced once it is back, each
/// once, in order, after the ones announced before.
#[tokio::test]
async fn a_reconnecting_listener_catches_up_on_what_it_missed_without_duplicates() {
    let Some((a, b)) = stores("catchup").await else {
        return;
    };
    let t = target(4);
    a.register("ds", std::slice::from_ref(&t), true)
        .await
        .unwrap();
    let mut rx = b.notices();
    let t0 = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let at = |i: i64| t0 + chrono::Duration::milliseconds(i * 10);
    // Up: the first notice arrives live.
    let mut i = 0;
    let first = loop {
        a.record_sample("ds", &t, &sample(at(i), 1), None)
            .await
            .unwrap();
        i += 1;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(250), rx.recv()).await {
            break n;
        }
        assert!(i < 40, "no notice within 10 s");
    };
    while rx.try_recv().is_ok() {}
    let wait_until = async |up: bool| {
        for _ in 0..200 {
            if b.listening() == up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the listener is not {}", if up { "up" } else { "down" });
    };
    wait_until(true).await;
    assert!(b.terminate_listeners().await.unwrap() >= 1);
    wait_until(false).await;
    // Stored while nobody listens (the listener waits 200 ms before reconnecting).
    let missed: Vec<_> = (i..i + 5).map(at).collect();
    for m in &missed {
        a.record_sample("ds", &t, &sample(*m, 2), None)
            .await
            .unwrap();
    }
    wait_until(true).await;
    let live = at(i + 5);
    a.record_sample("ds", &t, &sample(live, 3), None)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        assert_eq!((n.uid.as_str(), n.target.as_str()), ("ds", "cp:4/ANY"));
        got.push(n.at);
    }
    let mut want = missed.clone();
    want.push(live);
    assert_eq!(got, want, "first notice was {}", first.at);
    a.drop_schema().await.unwrap();
}

/// `sslrootcert` adds a private CA: a server whose certificate it signed passes `verify-full`,
/// and without it the same server is refused; a bad file is named with the parameter.
#[tokio::test]
async fn a_private_ca_from_sslrootcert_verifies_the_server() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl CLI");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=estats test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
    ]);
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.pem"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path("ext.cnf"),
        "-out",
        &path("server.pem"),
    ]);
    // A PostgreSQL server as far as TLS goes: answers the SSLRequest with 'S', then the
    // handshake; reports whether the handshake completed.
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(path("server.key")).unwrap();
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, handshakes) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { return };
            let mut request = [0u8; 8];
            if tcp.read_exact(&mut request).is_err() || tcp.write_all(b"S").is_err() {
                continue;
            }
            let mut conn = rustls::ServerConnection::new(server.clone()).unwrap();
            let mut ok = true;
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    ok = false;
                    break;
                }
            }
            let _ = done.send(ok);
        }
    });
    let url = |params: &str| format!("postgres://estats@localhost:{port}/test?{params}");
    let store = |params: &str| {
        let db = crate::settings::history_database(
            &url(params),
            "jsonData.historyDatabase",
            None,
            "akamai_estats",
        )
        .unwrap();
        PgStore::new(&db)
    };
    let ca = path("ca.pem");
    // With the CA: the handshake completes (the fake server then hangs up).
    let with_ca = store(&format!("sslmode=verify-full&sslrootcert={ca}")).unwrap();
    let err = with_ca.reachable().await.unwrap_err();
    assert_eq!(
        handshakes.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "{}",
        err.message
    );
    // Without it: the web PKI roots do not know the CA.
    let without = store("sslmode=verify-full").unwrap();
    let err = without.reachable().await.unwrap_err();
    assert!(
        err.message.to_lowercase().contains("certificate"),
        "{}",
        err.message
    );
    assert_eq!(handshakes.recv_timeout(Duration::from_secs(10)), Ok(false));
    // A missing file and a file that is not a certificate are named with the parameter.
    std::fs::write(path("junk.pem"), "not a certificate\n").unwrap();
    for bad in [path("missing.pem"), path("junk.pem")] {
        let err = store(&format!("sslmode=verify-full&sslrootcert={bad}")).unwrap_err();
        assert!(
            err.message.contains("historyDatabase")
                && err.message.contains("sslrootcert")
                && err.message.contains(&bad),
            "{}",
            err.message
        );
    }
}
