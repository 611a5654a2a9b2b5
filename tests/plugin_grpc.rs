//! The plugin executable as Grafana sees it, against the signature-verifying simulator.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    assert_no_secret, context, data_query, ds, frames, simulator, Plugin, ACCESS_TOKEN,
    CLIENT_SECRET, CLIENT_TOKEN,
};
use estats::simulator::{demo_credentials, Fault};
use grafana_plugin_sdk::pluginv2::check_health_response::HealthStatus;
use serde_json::{json, Value};

#[tokio::test]
async fn handshake_is_the_only_stdout_and_health_serves_plugin() {
    let plugin = Plugin::start().await;
    assert!(
        plugin.handshake_line.starts_with("1|2|tcp|127.0.0.1:"),
        "{}",
        plugin.handshake_line
    );
    eprintln!("handshake after {:?}", plugin.handshake_time);
    let mut health = tonic_health::pb::health_client::HealthClient::new(plugin.channel.clone());
    for service in ["", "plugin"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        plugin.extra_stdout().is_empty(),
        "stdout after handshake: {:?}",
        plugin.extra_stdout()
    );
    // Logs are hclog JSON on stderr.
    let logs = plugin.logs();
    let first = logs.lines().next().expect("a log line");
    let parsed: Value = serde_json::from_str(first).expect("hclog JSON");
    assert!(
        parsed.get("@level").is_some() && parsed.get("@message").is_some(),
        "{first}"
    );
}

#[tokio::test]
async fn wrong_protocol_version_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .env_clear()
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn health_ok_against_simulator() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let (r, details) = plugin.health(&ds("h-ok", &sim, json!({}))).await;
    assert_eq!(r.status, HealthStatus::Ok as i32, "{}", r.message);
    assert!(r.message.contains("credentials"), "{}", r.message);
    assert!(details["edgeLocations"].as_u64().unwrap() > 0);
    assert_no_secret(&r.message);
    assert_no_secret(&details.to_string());
}

#[tokio::test]
async fn health_failures_are_actionable() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;

    // Wrong secret: the gateway's 401.
    let bad = context(
        "h-401",
        json!({"host": sim.base_url().as_str(), "pollIntervalSeconds": 5}),
        &[
            ("clientToken", CLIENT_TOKEN),
            (
                "clientSecret",
                "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0xMjM0NTY=",
            ),
            ("accessToken", ACCESS_TOKEN),
        ],
    );
    let (r, details) = plugin.health(&bad).await;
    assert_eq!(r.status, HealthStatus::Error as i32);
    assert!(r.message.contains("401"), "{}", r.message);
    assert_eq!(details["errorKind"], "auth");

    let ctx = ds("h-faults", &sim, json!({}));
    for (fault, kind, words) in [
        (Fault::Status(403), "forbidden", "403"),
        (Fault::ClockSkew, "clock_skew", "clock"),
        (
            Fault::RateLimited {
                next_in: Some(Duration::from_secs(5)),
            },
            "rate_limited",
            "429",
        ),
        (Fault::Status(503), "server_error", "503"),
        (Fault::Latency(Duration::from_secs(4)), "timeout", "timeout"),
    ] {
        sim.faults().set(fault, Some(1));
        let (r, details) = plugin.health(&ctx).await;
        assert_eq!(r.status, HealthStatus::Error as i32, "{kind}");
        assert_eq!(details["errorKind"], kind, "{}", r.message);
        assert!(
            r.message.to_lowercase().contains(words),
            "{kind}: {}",
            r.message
        );
        sim.faults().clear();
    }

    // Nothing listens there: a connection error naming the host.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = context(
        "h-conn",
        json!({"host": format!("http://127.0.0.1:{closed}"), "pollIntervalSeconds": 5}),
        &[
            ("clientToken", CLIENT_TOKEN),
            ("clientSecret", CLIENT_SECRET),
            ("accessToken", ACCESS_TOKEN),
        ],
    );
    let (r, details) = plugin.health(&refused).await;
    assert_eq!(details["errorKind"], "connect", "{}", r.message);

    // Settings that cannot work name the field.
    let missing = context(
        "h-settings",
        json!({"host": "akab-x.luna.akamaiapis.net"}),
        &[("clientToken", CLIENT_TOKEN)],
    );
    let (r, _) = plugin.health(&missing).await;
    assert_eq!(r.status, HealthStatus::Error as i32);
    assert!(r.message.contains("clientSecret"), "{}", r.message);

    assert_no_secret(&plugin.logs());
}

#[tokio::test]
async fn each_query_type_answers_with_its_frame_shape() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("q-shapes", &sim, json!({}));

    let r = plugin
        .query_one(
            &ctx,
            json!({"cpCode": "1209788", "queryType": "distribution"}),
        )
        .await;
    let f = &frames(&r)[0];
    assert_eq!(f.meta()["type"], "numeric-long");
    assert_eq!(f.meta()["typeVersion"], json!([0, 1]));
    assert_eq!(f.schema.metadata()["refId"], "A");
    let sides = f.strings("side");
    assert!(sides.contains(&Some("edge".into())) && sides.contains(&Some("origin".into())));
    let pct: f64 = f
        .floats("percentage")
        .iter()
        .zip(&sides)
        .filter(|(_, s)| s.as_deref() == Some("edge"))
        .map(|(p, _)| p.unwrap())
        .sum();
    assert!((pct - 100.0).abs() < 1.0, "edge percentages sum to {pct}");
    assert!(f.ints("hits").iter().all(|h| h.unwrap() >= 0));

    let r = plugin
        .query_one(&ctx, json!({"cpCode": 1209788, "queryType": "summary"}))
        .await;
    let f = &frames(&r)[0];
    assert_eq!(f.meta()["type"], "numeric-long");
    assert_eq!(
        f.strings("side"),
        vec![Some("edge".into()), Some("origin".into())]
    );
    assert!(f.meta()["custom"]["sampledAt"].is_string());
    let hits = f.ints("hits");
    let errors = f.ints("errors");
    assert!(hits[0].unwrap() >= errors[0].unwrap());

    let r = plugin
        .query_one(&ctx, json!({"cpCode": 1209788, "queryType": "topIps"}))
        .await;
    let f = &frames(&r)[0];
    assert_eq!(f.meta()["type"], "table");
    assert!(f.rows() > 0);
    for name in [
        "list",
        "edgeIp",
        "httpStatus",
        "hits",
        "errorCode",
        "city",
        "countryCode",
        "asNumber",
        "objectStatus",
        "edgeLogsLink",
    ] {
        assert!(f.schema.index_of(name).is_ok(), "topIps lacks {name}");
    }

    let r = plugin
        .query_one(
            &ctx,
            json!({"url": "https://www.example.com/", "targetType": "url", "groupBy": "class"}),
        )
        .await;
    let f = &frames(&r)[0];
    assert!(f
        .strings("status")
        .iter()
        .all(|s| s.as_deref().unwrap().ends_with("xx")));
}

#[tokio::test]
async fn bad_queries_fail_alone() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("q-bad", &sim, json!({}));
    let mut malformed = data_query("B", json!({}));
    malformed.json = b"{\"cpCode\": ".to_vec();
    let responses = plugin
        .query(
            &ctx,
            vec![
                data_query("A", json!({"cpCode": "1209788"})),
                malformed,
                data_query("C", json!({"cpCode": "12ab"})),
                data_query("D", json!({"targetType": "url", "url": "www.example.com"})),
                data_query(
                    "E",
                    json!({"cpCode": 1, "groupBy": "code", "metric": "errors"}),
                ),
                data_query("F", json!({"cpCode": 1, "queryType": "nope"})),
            ],
        )
        .await;
    assert_eq!(responses["A"].status, 200);
    assert_eq!(frames(&responses["A"]).len(), 1);
    for (ref_id, field) in [
        ("B", "query"),
        ("C", "cpCode"),
        ("D", "url"),
        ("E", "metric"),
        ("F", "queryType"),
    ] {
        let r = &responses[ref_id];
        assert_eq!(r.status, 400, "{ref_id}: {}", r.error);
        assert!(r.error.starts_with(field), "{ref_id}: {}", r.error);
        assert!(r.frames.is_empty());
    }
}

#[tokio::test]
async fn upstream_failures_become_query_errors_never_zeros() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let cases: Vec<(Fault, i32, &str)> = vec![
        (Fault::Status(401), 401, "401"),
        (Fault::Status(403), 403, "403"),
        (Fault::RateLimited { next_in: None }, 429, "429"),
        (Fault::Status(500), 502, "500"),
        (Fault::ExecutionFailure, 502, "FAILURE"),
        (Fault::MalformedJson, 502, "could not be read"),
        (
            Fault::Latency(Duration::from_secs(5)),
            504,
            "did not answer",
        ),
    ];
    for (i, (fault, status, words)) in cases.into_iter().enumerate() {
        sim.faults().set(fault, None);
        // A fresh data source per case: a 401 rightly blocks its whole data source for minutes,
        // and nothing cached may be served instead of the error.
        let ctx = ds(&format!("q-upstream-{i}"), &sim, json!({}));
        let r = plugin
            .query_one(&ctx, json!({"cpCode": 5000 + i, "queryType": "summary"}))
            .await;
        sim.faults().clear();
        assert_eq!(r.status, status, "case {i}: {}", r.error);
        assert!(r.error.contains(words), "case {i}: {}", r.error);
        assert!(r.frames.is_empty(), "case {i} returned frames");
        assert_no_secret(&r.error);
    }
    let mut plugin = plugin;
    assert!(plugin.is_running());
    let r = plugin
        .query_one(
            &ds("q-upstream-after", &sim, json!({})),
            json!({"cpCode": 77}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.error);
    assert_no_secret(&plugin.logs());
}

#[tokio::test]
async fn role_none_and_no_user_are_served() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let mut ctx = ds("q-role", &sim, json!({}));
    ctx.user.as_mut().unwrap().role = "None".into();
    assert_eq!(
        plugin.query_one(&ctx, json!({"cpCode": 1})).await.status,
        200
    );
    ctx.user = None;
    assert_eq!(
        plugin.query_one(&ctx, json!({"cpCode": 1})).await.status,
        200
    );
}

/// A newer Grafana's messages carry fields the SDK 0.5 proto does not know.
mod newer_grafana {
    use grafana_plugin_sdk::pluginv2::{
        DataQuery, DataSourceInstanceSettings, QueryDataResponse, User,
    };

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginContext {
        #[prost(int64, tag = "1")]
        pub org_id: i64,
        #[prost(string, tag = "2")]
        pub plugin_id: String,
        #[prost(message, optional, tag = "3")]
        pub user: Option<User>,
        #[prost(message, optional, tag = "5")]
        pub data_source_instance_settings: Option<DataSourceInstanceSettings>,
        #[prost(map = "string, string", tag = "6")]
        pub grafana_config: std::collections::HashMap<String, String>,
        #[prost(string, tag = "7")]
        pub user_agent: String,
        #[prost(string, tag = "8")]
        pub api_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryDataRequest {
        #[prost(message, optional, tag = "1")]
        pub plugin_context: Option<PluginContext>,
        #[prost(map = "string, string", tag = "2")]
        pub headers: std::collections::HashMap<String, String>,
        #[prost(message, repeated, tag = "3")]
        pub queries: Vec<DataQuery>,
    }

    pub async fn query(
        channel: tonic::transport::Channel,
        request: QueryDataRequest,
    ) -> QueryDataResponse {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let codec = tonic::codec::ProstCodec::<QueryDataRequest, QueryDataResponse>::default();
        let path = http::uri::PathAndQuery::from_static("/pluginv2.Data/QueryData");
        grpc.unary(tonic::Request::new(request), path, codec)
            .await
            .expect("QueryData answers")
            .into_inner()
    }
}

#[tokio::test]
async fn unknown_fields_from_newer_grafana_are_ignored() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let old = ds("q-newer", &sim, json!({}));
    let request = newer_grafana::QueryDataRequest {
        plugin_context: Some(newer_grafana::PluginContext {
            org_id: 1,
            plugin_id: "akamai-estats-datasource".into(),
            user: old.user.clone(),
            data_source_instance_settings: old.data_source_instance_settings.clone(),
            grafana_config: HashMap::from([(
                "concurrent_query_count".to_string(),
                "10".to_string(),
            )]),
            user_agent: "Grafana/13.2.3 (linux; amd64)".into(),
            api_version: "v0alpha1".into(),
        }),
        headers: HashMap::new(),
        queries: vec![data_query("A", json!({"cpCode": 1209788}))],
    };
    let response = newer_grafana::query(plugin.channel.clone(), request).await;
    assert_eq!(
        response.responses["A"].status, 200,
        "{}",
        response.responses["A"].error
    );
}

#[tokio::test]
async fn resources_list_targets_and_codes() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds(
        "r-targets",
        &sim,
        json!({"watch": [{"cpCode": 1209788, "delivery": "STANDARD_TLS"}]}),
    );
    assert_eq!(
        plugin
            .query_one(&ctx, json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"}))
            .await
            .status,
        200
    );
    let (code, body) = plugin.resource(&ctx, "targets").await;
    assert_eq!(code, 200, "{body}");
    let keys: Vec<&str> = body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"cp:1209788/STANDARD_TLS"), "{body}");
    let (code, body) = plugin
        .resource(&ctx, "status-codes?target=cp%3A1209788%2FSTANDARD_TLS")
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["statusCodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == 200),
        "{body}"
    );
    let (code, _) = plugin.resource(&ctx, "nope").await;
    assert_eq!(code, 404);
    assert_no_secret(&body.to_string());
}

#[tokio::test]
async fn invalid_settings_fail_every_query_with_the_field() {
    let plugin = Plugin::start().await;
    let ctx = context(
        "s-bad",
        json!({"host": "akab-x.luna.akamaiapis.net", "pollIntervalSeconds": "often"}),
        &[],
    );
    let responses = plugin
        .query(
            &ctx,
            vec![
                data_query("A", json!({"cpCode": 1})),
                data_query("B", json!({"cpCode": 2})),
            ],
        )
        .await;
    for r in responses.values() {
        assert_eq!(r.status, 400);
        assert!(r.error.contains("data source settings"), "{}", r.error);
    }
}

#[tokio::test]
async fn simulate_setting_needs_no_account() {
    let plugin = Plugin::start().await;
    let ctx = context(
        "s-sim",
        json!({"simulate": true, "pollIntervalSeconds": 5}),
        &[],
    );
    let (r, _) = plugin.health(&ctx).await;
    assert_eq!(r.status, HealthStatus::Ok as i32, "{}", r.message);
    let r = plugin.query_one(&ctx, json!({"cpCode": 1209788})).await;
    assert!(!frames(&r)[0].strings("status").is_empty());
    let _ = demo_credentials();
}

/// The frames carry exactly what the simulator served for that instant.
#[tokio::test]
async fn frames_equal_what_the_simulator_served() {
    use estats::estats::EstatsRequest;
    use estats::target::Target;
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("q-equal", &sim, json!({}));
    let r = plugin
        .query(
            &ctx,
            vec![
                data_query("D", json!({"cpCode": 1209788, "delivery": "STANDARD_TLS"})),
                data_query(
                    "S",
                    json!({"cpCode": 1209788, "delivery": "STANDARD_TLS", "queryType": "summary"}),
                ),
                data_query(
                    "T",
                    json!({"cpCode": 1209788, "delivery": "STANDARD_TLS", "queryType": "topIps"}),
                ),
            ],
        )
        .await;
    let dist = &frames(&r["D"])[0];
    let summary = &frames(&r["S"])[0];
    let top = &frames(&r["T"])[0];
    let sampled_at =
        chrono::DateTime::parse_from_rfc3339(dist.meta()["custom"]["sampledAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    let request = EstatsRequest::from(&Target::cp_code(
        1209788,
        Some(estats::target::Delivery::StandardTls),
    ));
    // The simulator answers per 10 s bucket; the answer may have left it just before a boundary.
    let served = [sampled_at, sampled_at - chrono::Duration::seconds(1)]
        .into_iter()
        .map(|at| estats::simulator::generate(&request, at).result.unwrap())
        .find(|res| Some(res.edge_hits.unwrap() as i64) == summary.ints("hits")[0])
        .expect("the summary's edge hits match a generated answer");

    assert_eq!(
        summary.ints("hits"),
        vec![
            served.edge_hits.map(|v| v as i64),
            served.origin_hits.map(|v| v as i64)
        ]
    );
    assert_eq!(
        summary.ints("errors"),
        vec![
            served.edge_errors.map(|v| v as i64),
            served.origin_errors.map(|v| v as i64)
        ]
    );
    assert_eq!(
        summary.floats("failurePercentage"),
        vec![
            served.edge_failure_percentage,
            served.origin_failure_percentage
        ]
    );

    let mut expected: Vec<(String, String, i64, f64)> = Vec::new();
    for (side, codes) in [
        ("edge", &served.edge_status_code_distribution),
        ("origin", &served.origin_status_code_distribution),
    ] {
        let mut codes = codes.clone().unwrap_or_default();
        codes.sort_by_key(|c| c.http_status);
        expected.extend(codes.iter().map(|c| {
            (
                side.to_string(),
                c.http_status.to_string(),
                c.hits as i64,
                c.percentage,
            )
        }));
    }
    let actual: Vec<(String, String, i64, f64)> = (0..dist.rows())
        .map(|i| {
            (
                dist.strings("side")[i].clone().unwrap(),
                dist.strings("status")[i].clone().unwrap(),
                dist.ints("hits")[i].unwrap(),
                dist.floats("percentage")[i].unwrap(),
            )
        })
        .collect();
    assert_eq!(actual, expected);

    let served_ips: usize = [
        &served.top_edge_ips_with_error,
        &served.top_edge_ips_with_error_from_origin,
        &served.top_edge_ips_with_success,
        &served.top_edge_ips_with_success_from_origin,
    ]
    .iter()
    .map(|l| l.as_ref().map_or(0, Vec::len))
    .sum();
    assert_eq!(top.rows(), served_ips);
    // Rows come list by list (error, errorFromOrigin, success, successFromOrigin), as served.
    let first_served = [
        &served.top_edge_ips_with_error,
        &served.top_edge_ips_with_error_from_origin,
        &served.top_edge_ips_with_success,
        &served.top_edge_ips_with_success_from_origin,
    ]
    .into_iter()
    .find_map(|l| l.as_ref().and_then(|l| l.first()))
    .expect("the simulator serves top IPs");
    assert_eq!(
        top.strings("edgeIp")[0].as_deref(),
        Some(first_served.edge_ip.as_str())
    );
    assert_eq!(top.ints("hits")[0], first_served.hits.map(|h| h as i64));
}

/// The wrong delivery network gives an empty SUCCESS upstream; the panel says why it is empty.
#[tokio::test]
async fn an_empty_answer_carries_a_delivery_hint() {
    let sim = simulator().await;
    let plugin = Plugin::start().await;
    let ctx = ds("q-empty", &sim, json!({}));
    // The simulator's CP codes ending in 7 have no ENHANCED_TLS traffic.
    let r = plugin
        .query_one(&ctx, json!({"cpCode": 1209787, "delivery": "ENHANCED_TLS"}))
        .await;
    let f = &frames(&r)[0];
    assert_eq!(f.rows(), 0);
    let notices = f.meta()["notices"].to_string();
    assert!(
        notices.contains("no traffic") && notices.contains("ENHANCED_TLS"),
        "{notices}"
    );
}
