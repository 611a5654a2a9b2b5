//! Issue 9's "one data source never stalls another" and "inputs checked at the door", through the
//! executable as Grafana calls it: one test per defect found.

mod common;

use std::time::Duration;

use common::{assert_no_secret, context, data_query, ds, simulator, Plugin};
use grafana_plugin_sdk::pluginv2::check_health_response::HealthStatus;
use grafana_plugin_sdk::pluginv2::CallResourceRequest;
use serde_json::json;

/// Anything the plugin answers must come back well within this, whatever another data source
/// is doing.
const PROMPT: Duration = Duration::from_secs(5);

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[tokio::test]
async fn an_edgerc_fifo_stalls_neither_its_health_check_nor_another_data_source() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("edgerc");
    mkfifo(&fifo);
    let healthy = ds("healthy", &sim, json!({}));
    for (uid, path) in [
        ("fifo", fifo.display().to_string()),
        ("zero", "/dev/zero".to_string()),
        ("dir", dir.path().display().to_string()),
    ] {
        let stuck = context(uid, json!({ "edgercPath": path }), &[]);
        // The broken data source's health check and the healthy one's query, at once.
        let (broken, good) = tokio::join!(
            tokio::time::timeout(PROMPT, plugin.health(&stuck)),
            tokio::time::timeout(
                PROMPT,
                plugin.query_one(&healthy, json!({"cpCode": "1209788"}))
            ),
        );
        let (health, _) = broken.unwrap_or_else(|_| panic!("{uid}: health check hung"));
        assert_eq!(health.status, HealthStatus::Error as i32, "{uid}");
        assert!(
            health.message.contains("jsonData.edgercPath")
                && (health.message.contains("not a regular file")
                    || health.message.contains("a directory")),
            "{uid}: {}",
            health.message
        );
        let good = good.unwrap_or_else(|_| panic!("{uid}: the healthy data source waited"));
        assert_eq!(good.status, 200, "{uid}: {}", good.error);
        // Queries of the broken one fail fast too, with the same reason.
        let failed = tokio::time::timeout(PROMPT, plugin.query_one(&stuck, json!({"cpCode": 1})))
            .await
            .expect("a query of the broken data source answers");
        assert_eq!(failed.status, 400, "{uid}");
        assert!(
            failed.error.contains("jsonData.edgercPath"),
            "{}",
            failed.error
        );
    }
    assert!(plugin.logs().len() < 1_000_000);
}

#[tokio::test]
async fn every_wrong_json_type_names_its_field_and_the_others_still_answer() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("types", &sim, json!({}));
    let fields = estats::query::FIELDS;
    let mut queries = vec![data_query("good", json!({"cpCode": "1209788"}))];
    let mut expected = Vec::new();
    for &field in fields {
        for (n, wrong) in [json!(5), json!([]), json!({}), json!(true)]
            .into_iter()
            .enumerate()
        {
            // Numbers are CP codes, status codes and thresholds; a list is a status filter; true
            // is live.
            let fine = matches!((field, n), ("cpCode" | "statusFilter" | "threshold", 0))
                || (field, n) == ("statusFilter", 1)
                || (field, n) == ("live", 3);
            if fine {
                continue;
            }
            let mut query = json!({"cpCode": "1209788", "url": "https://www.example.com/"});
            if field == "url" {
                query["targetType"] = json!("url");
            }
            query[field] = wrong;
            let ref_id = format!("{field}-{n}");
            queries.push(data_query(&ref_id, query));
            expected.push((ref_id, field));
        }
    }
    let responses = plugin.query(&ctx, queries).await;
    assert_eq!(responses["good"].status, 200, "{}", responses["good"].error);
    for (ref_id, field) in expected {
        let r = &responses[&ref_id];
        assert_eq!(r.status, 400, "{ref_id}");
        assert!(
            r.error.starts_with(&format!("{field}: ")) && r.error.contains("got "),
            "{ref_id}: {}",
            r.error
        );
        assert!(!r.error.contains("invalid type"), "{ref_id}: {}", r.error);
    }
}

#[tokio::test]
async fn cp_code_zero_and_host_less_or_control_character_urls_are_refused() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("targets", &sim, json!({}));
    let cases = [
        ("zero", json!({"cpCode": 0}), "cpCode"),
        ("zero-text", json!({"cpCode": "0"}), "cpCode"),
        (
            "no-host",
            json!({"targetType": "url", "url": "https:///path"}),
            "url",
        ),
        (
            "nul",
            json!({"targetType": "url", "url": "https://www.example.com/\u{0}x"}),
            "url",
        ),
        (
            "bell",
            json!({"targetType": "url", "url": "https://www.example.com/\u{7}"}),
            "url",
        ),
    ];
    let queries = cases
        .iter()
        .map(|(id, q, _)| data_query(id, q.clone()))
        .collect();
    let responses = plugin.query(&ctx, queries).await;
    for (id, _, field) in cases {
        let r = &responses[id];
        assert_eq!(r.status, 400, "{id}: {}", r.error);
        assert!(
            r.error.starts_with(&format!("{field}: ")),
            "{id}: {}",
            r.error
        );
    }
    // The same rules hold for the watch list.
    let watching_zero = ds("watch-zero", &sim, json!({"watch": [{"cpCode": 0}]}));
    let (health, _) = plugin.health(&watching_zero).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(
        health.message.contains("jsonData.watch[0].cpCode"),
        "{}",
        health.message
    );
}

#[tokio::test]
async fn a_request_over_4_mib_answers_its_good_queries_and_fails_only_the_oversized_one() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("big", &sim, json!({}));
    let pad = "x".repeat(5 * 1024 * 1024);
    let queries = vec![
        data_query("A", json!({"cpCode": "1209788"})),
        data_query("huge", json!({"cpCode": "1209788", "pad": pad})),
        data_query("B", json!({"cpCode": "1209788", "groupBy": "class"})),
    ];
    let responses = plugin.query(&ctx, queries).await;
    for id in ["A", "B"] {
        assert_eq!(responses[id].status, 200, "{id}: {}", responses[id].error);
        assert!(!responses[id].frames.is_empty(), "{id}");
    }
    let huge = &responses["huge"];
    assert_eq!(huge.status, 400);
    assert!(
        huge.error.starts_with("query: ") && huge.error.contains("bytes"),
        "{}",
        huge.error
    );
    assert!(huge.error.len() < 300, "{}", huge.error);
}

#[tokio::test]
async fn long_inputs_are_quoted_by_a_short_prefix() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let long = "a".repeat(10_000);

    let long_host = ds("long-host", &sim, json!({"host": long}));
    let (health, details) = plugin.health(&long_host).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(
        health.message.contains("jsonData.host"),
        "{}",
        health.message
    );
    assert!(health.message.len() < 500, "{} chars", health.message.len());
    assert!(details.to_string().len() < 500);

    let long_paths = ds(
        "long-paths",
        &sim,
        json!({"historyPath": format!("/nonexistent/{long}")}),
    );
    let (health, _) = plugin.health(&long_paths).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(health.message.len() < 500, "{}", health.message);
    let long_edgerc = context(
        "long-edgerc",
        json!({"edgercPath": format!("/nonexistent/{long}"), "edgercSection": long}),
        &[],
    );
    let (health, _) = plugin.health(&long_edgerc).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(health.message.len() < 500, "{}", health.message);

    let ctx = ds("long-query", &sim, json!({}));
    for query in [
        json!({"cpCode": long}),
        json!({"targetType": "url", "url": format!("https://www.example.com/{long}")}),
        json!({"targetType": "url", "url": long}),
        json!({"cpCode": 1, "statusFilter": long}),
        json!({"cpCode": 1, "queryType": long}),
        json!({"cpCode": 1, "side": long}),
        json!({"cpCode": 1, "delivery": long}),
    ] {
        let r = plugin.query_one(&ctx, query).await;
        assert_eq!(r.status, 400);
        assert!(r.error.len() < 300, "{}", r.error);
    }

    let huge_path = "p".repeat(100 * 1024);
    let (code, body) = plugin.resource(&ctx, &huge_path).await;
    assert_eq!(code, 404);
    assert!(
        body.to_string().len() < 300,
        "{} bytes",
        body.to_string().len()
    );
    let (code, body) = plugin
        .resource(&ctx, &format!("status-codes?target={huge_path}"))
        .await;
    assert_eq!(code, 400);
    assert!(
        body.to_string().len() < 300,
        "{} bytes",
        body.to_string().len()
    );
    // An absurd method is not echoed whole either.
    let mut stream = plugin
        .resources()
        .call_resource(CallResourceRequest {
            plugin_context: Some(ctx.clone()),
            path: "targets".into(),
            method: huge_path.clone(),
            url: "targets".into(),
            headers: Default::default(),
            body: Default::default(),
        })
        .await
        .expect("CallResource answers")
        .into_inner();
    let first = stream.message().await.unwrap().expect("one message");
    assert_eq!(first.code, 405);
    assert!(first.body.len() < 300, "{} bytes", first.body.len());
    assert_no_secret(&plugin.logs());
}

#[tokio::test]
async fn a_history_file_with_this_plugins_marks_but_foreign_tables_fails_the_health_check() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE samples (id INTEGER PRIMARY KEY, value REAL);
             PRAGMA application_id = {}; PRAGMA user_version = {};",
            estats::history::schema::APPLICATION_ID,
            estats::history::schema::VERSION
        ))
        .unwrap();
    }
    let ctx = ds(
        "foreign",
        &sim,
        json!({"historyPath": path.display().to_string()}),
    );
    let (health, details) = plugin.health(&ctx).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(
        health.message.contains("jsonData.historyPath")
            && health.message.contains("its table samples has the columns"),
        "{}",
        health.message
    );
    assert_eq!(details["stage"], "settings");
    // Queries fail with the same reason, not with "no such column".
    let r = plugin.query_one(&ctx, json!({"cpCode": "1209788"})).await;
    assert!(
        r.status >= 400 && !r.error.contains("no such column"),
        "{}",
        r.error
    );
    assert!(r.error.contains("jsonData.historyPath"), "{}", r.error);
}

#[tokio::test]
async fn a_history_path_given_as_a_number_is_refused_and_creates_no_file() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    // The plugin runs in the test's working directory: a file named 5 would appear there.
    let stray = std::path::Path::new("5");
    let existed = stray.exists();
    let plugin = Plugin::start().await;
    let ctx = ds("number", &sim, json!({"historyPath": 5}));
    let (health, _) = plugin.health(&ctx).await;
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(
        health.message.contains("jsonData.historyPath") && health.message.contains("a number"),
        "{}",
        health.message
    );
    assert_eq!(stray.exists(), existed, "a file named 5 was created");
    // A FIFO as historyPath is refused too, promptly.
    let fifo = dir.path().join("history.db");
    mkfifo(&fifo);
    let ctx = ds(
        "fifo-history",
        &sim,
        json!({"historyPath": fifo.display().to_string()}),
    );
    let (health, _) = tokio::time::timeout(PROMPT, plugin.health(&ctx))
        .await
        .expect("health check answers");
    assert_eq!(health.status, HealthStatus::Error as i32);
    assert!(
        health.message.contains("jsonData.historyPath")
            && health.message.contains("not a regular file"),
        "{}",
        health.message
    );
}
