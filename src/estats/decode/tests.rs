//! The decoder against the official fixtures, against each kind of answer that is not a
//! measurement, and (proptest) against arbitrary and mutated answers.

use std::time::Duration;

use http::header::HeaderValue;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::estats::ErrorKind;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn none() -> Scrubber {
    Scrubber::default()
}

fn example() -> Value {
    serde_json::from_slice(&fixture("estats.json")).unwrap()
}

fn decode_value(v: &Value) -> Result<EstatsResponse, UpstreamError> {
    decode_estats(v.to_string().as_bytes(), &none())
}

/// Every member name of the answer's model: an error about the answer names one of them.
const MEMBERS: &[&str] = &[
    "executionStatus",
    "result",
    "createdBy",
    "createdTime",
    "completedTime",
    "edgeHits",
    "edgeErrors",
    "edgeFailurePercentage",
    "edgeStatusCodeDistribution",
    "originHits",
    "originErrors",
    "originFailurePercentage",
    "originStatusCodeDistribution",
    "topEdgeIpsWithError",
    "topEdgeIpsWithErrorFromOrigin",
    "topEdgeIpsWithSuccess",
    "topEdgeIpsWithSuccessFromOrigin",
    "httpStatus",
    "hits",
    "percentage",
    "edgeIp",
    "errorCode",
    "edgeLogsLink",
    "edgeIpLocation",
    "objectStatus",
    "city",
    "regionCode",
    "countryCode",
    "asNumber",
    "code",
    "description",
];

#[test]
fn the_official_example_is_a_measurement() {
    let r = decode_value(&example()).unwrap();
    let result = r.result.unwrap();
    let edge = result.edge_status_code_distribution.unwrap();
    assert_eq!(
        (edge[0].http_status, edge[0].hits, edge[0].percentage),
        (200, 72804, 91.4)
    );
    assert_eq!(result.origin_hits, Some(82279));
    assert_eq!(result.edge_failure_percentage, Some(2.0));
}

/// Applies `edit` to the official example and decodes it.
fn edited(edit: impl FnOnce(&mut Value)) -> Result<EstatsResponse, UpstreamError> {
    let mut v = example();
    edit(&mut v);
    decode_value(&v)
}

#[test]
fn answers_that_are_not_measurements_name_what_is_wrong() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let row = |side: &'static str, i: usize, key: &'static str, to: Value| -> Edit {
        Box::new(move |v: &mut Value| v["result"][side][i][key] = to)
    };
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| drop(v["result"].as_object_mut().unwrap().remove("edgeStatusCodeDistribution"))),
            "eStats answered SUCCESS without edgeStatusCodeDistribution (edgeHits is 79655)",
        ),
        (
            Box::new(|v| v["result"]["originStatusCodeDistribution"] = Value::Null),
            "eStats answered SUCCESS without originStatusCodeDistribution",
        ),
        (
            Box::new(|v| drop(v["result"]["edgeStatusCodeDistribution"][0].as_object_mut().unwrap().remove("hits"))),
            "result.edgeStatusCodeDistribution[0].hits is missing",
        ),
        (row("edgeStatusCodeDistribution", 1, "hits", Value::Null), "result.edgeStatusCodeDistribution[1].hits is null"),
        (
            Box::new(|v| drop(v["result"]["originStatusCodeDistribution"][1].as_object_mut().unwrap().remove("percentage"))),
            "result.originStatusCodeDistribution[1].percentage is missing",
        ),
        (Box::new(|v| v["executionStatus"] = json!("IN_PROGRESS")), "executionStatus \"IN_PROGRESS\", which is not a finished measurement"),
        (
            Box::new(|v| {
                v["executionStatus"] = Value::Null;
                v["result"] = Value::Null;
            }),
            "executionStatus null",
        ),
        (Box::new(|v| drop(v.as_object_mut().unwrap().remove("executionStatus"))), "without executionStatus"),
        (Box::new(|v| v["executionStatus"] = json!(1)), "executionStatus is a number"),
        (Box::new(|v| v["result"] = Value::Null), "eStats answered SUCCESS without a result"),
        (Box::new(|v| v["result"] = json!({})), "empty result"),
        (Box::new(|v| v["result"] = json!([1])), "result is an array, not an object"),
        (row("edgeStatusCodeDistribution", 0, "hits", json!(-3)), "result.edgeStatusCodeDistribution[0].hits is -3, a negative count"),
        (row("edgeStatusCodeDistribution", 0, "hits", json!(1.5)), "[0].hits is 1.5, not a whole number"),
        (
            row("edgeStatusCodeDistribution", 0, "hits", serde_json::from_str("1180591620717411303424").unwrap()),
            "result.edgeStatusCodeDistribution[0].hits is 1.1805916207174113e+21, larger than any count",
        ),
        (row("edgeStatusCodeDistribution", 0, "hits", json!(9007199254740992u64)), "larger than any count"),
        (row("edgeStatusCodeDistribution", 0, "hits", json!("many")), "[0].hits is \"many\", not a count"),
        (row("edgeStatusCodeDistribution", 0, "percentage", json!(250)), "[0].percentage is 250, outside 0 to 100 %"),
        (row("originStatusCodeDistribution", 0, "percentage", json!(180.5)), "[0].percentage is 180.5, outside"),
        (row("edgeStatusCodeDistribution", 1, "percentage", json!(-20)), "[1].percentage is -20, outside"),
        (Box::new(|v| v["result"]["edgeFailurePercentage"] = json!(1e308)), "result.edgeFailurePercentage is 1e+308, outside 0 to 100 %"),
        (row("edgeStatusCodeDistribution", 0, "httpStatus", json!(0)), "[0].httpStatus is 0, not an HTTP status (100 to 599)"),
        (row("edgeStatusCodeDistribution", 1, "httpStatus", json!(999)), "[1].httpStatus is 999, not an HTTP status"),
        (Box::new(|v| v["result"]["edgeHits"] = json!(1000)), "the rows of result.edgeStatusCodeDistribution add up to 75246 hits, more than result.edgeHits (1000)"),
        (Box::new(|v| v["result"]["originErrors"] = json!(90000)), "result.originErrors (90000) is larger than result.originHits (82279)"),
        (row("edgeStatusCodeDistribution", 1, "percentage", json!(50)), "result.edgeStatusCodeDistribution[1].percentage (50) contradicts its hits (2442 of 79655 edge hits = 3.07 %)"),
        (Box::new(|v| v["result"]["edgeFailurePercentage"] = json!(40)), "result.edgeFailurePercentage (40) contradicts result.edgeErrors / result.edgeHits"),
        (
            Box::new(|v| {
                v["result"].as_object_mut().unwrap().remove("edgeHits");
                v["result"]["edgeStatusCodeDistribution"][1]["percentage"] = json!(91.4);
            }),
            "the percentages of result.edgeStatusCodeDistribution add up to 182.80 %",
        ),
        (Box::new(|v| v["result"]["edgeStatusCodeDistribution"] = json!({"200": 5})), "result.edgeStatusCodeDistribution is an object, not a list"),
        (Box::new(|v| v["result"]["edgeStatusCodeDistribution"][0] = json!("200")), "result.edgeStatusCodeDistribution[0] is a string, not an object"),
        (Box::new(|v| v["result"]["topEdgeIpsWithError"][1]["edgeIp"] = json!([1])), "result.topEdgeIpsWithError[1].edgeIp is an array, not text"),
        (Box::new(|v| v["result"]["topEdgeIpsWithSuccess"][0]["hits"] = json!(0.5)), "result.topEdgeIpsWithSuccess[0].hits is 0.5"),
        (Box::new(|v| v["result"]["topEdgeIpsWithError"][0]["edgeIpLocation"]["asNumber"] = json!(-1)), "result.topEdgeIpsWithError[0].edgeIpLocation.asNumber is -1"),
    ];
    for (edit, words) in cases {
        let err = edited(edit).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
        assert_eq!(err.grafana_status(), 502);
        assert!(
            err.to_string().contains(words),
            "expected {words:?} in: {err}"
        );
        assert!(err.to_string().contains("gap, never a 0"), "{err}");
    }
}

#[test]
fn quiet_and_partial_answers_are_measurements() {
    // The wrong delivery network: SUCCESS, zero hits, nothing to distribute.
    let quiet = json!({"executionStatus": "SUCCESS", "result": {
        "edgeHits": 0, "edgeErrors": 0, "originHits": 0, "originErrors": 0}});
    let r = decode_value(&quiet).unwrap().result.unwrap();
    assert_eq!(
        (r.edge_hits, r.edge_status_code_distribution),
        (Some(0), None)
    );
    // A side eStats left out (a filtered request) is not required.
    let edge_only = edited(|v| {
        let result = v["result"].as_object_mut().unwrap();
        result.retain(|k, _| !k.starts_with("origin") && !k.ends_with("FromOrigin"));
    })
    .unwrap();
    assert_eq!(edge_only.result.unwrap().origin_hits, None);
    // Rounding past 100 % is clamped, whole numbers may be written as floats or strings,
    // case of the status does not matter, unknown members are ignored.
    let r = edited(|v| {
        v["executionStatus"] = json!("success");
        v["somethingNew"] = json!({"x": [1]});
        v["result"]["edgeHits"] = json!(2442.0);
        v["result"]["edgeErrors"] = json!("0");
        v["result"]["edgeFailurePercentage"] = json!(0);
        v["result"]["edgeStatusCodeDistribution"] =
            json!([{"httpStatus": 204, "hits": "2442", "percentage": 100.004, "new": true}]);
    })
    .unwrap()
    .result
    .unwrap();
    let row = &r.edge_status_code_distribution.unwrap()[0];
    assert_eq!((row.hits, row.percentage), (2442, 100.0));
    assert_eq!(r.edge_errors, Some(0));
}

#[test]
fn simulated_answers_are_measurements() {
    use crate::estats::model::EstatsRequest;
    for cp in [1_209_788u64, 1_209_787, 42, 555_555] {
        for delivery in [None, Some("ENHANCED_TLS"), Some("STANDARD_TLS")] {
            for error_type in [None, Some("EDGE_ERRORS"), Some("ORIGIN_ERRORS")] {
                let request = EstatsRequest {
                    cp_code: Some(cp),
                    url: None,
                    delivery: delivery.map(str::to_string),
                    error_type: error_type.map(str::to_string),
                };
                for minute in 0..20 {
                    let at =
                        chrono::DateTime::from_timestamp(1_760_000_000 + minute * 97, 0).unwrap();
                    let response = crate::simulator::generate(&request, at);
                    check_estats(&response).unwrap_or_else(|e| panic!("{request:?} at {at}: {e}"));
                }
            }
        }
    }
}

#[test]
fn messages_quote_only_a_short_prefix_and_no_secret() {
    let long = "IN_PROGRESS".repeat(100);
    let err = edited(|v| v["executionStatus"] = json!(long)).unwrap_err();
    assert!(err.to_string().len() < 400, "{err}");
    assert!(err.to_string().contains("IN_PROGRESS"));

    let scrub = Scrubber::new(["akab-secret-access-token"]);
    let body = json!({"executionStatus": "akab-secret-access-token", "result": {}}).to_string();
    let err = decode_estats(body.as_bytes(), &scrub).unwrap_err();
    assert!(!err.to_string().contains("akab-secret"), "{err}");
}

#[test]
fn counts_and_percentages_follow_one_rule() {
    assert_eq!(count_of(&json!(12.0)), Ok(12));
    assert_eq!(count_of(&json!(" 7 ")), Ok(7));
    assert_eq!(count_of(&json!(MAX_COUNT)), Ok(MAX_COUNT));
    assert!(count_of(&json!(MAX_COUNT + 1)).is_err());
    assert!(count_of(&json!(true)).is_err());
    assert_eq!(percentage_of(&json!(-0.01)), Ok(0.0));
    assert!(percentage_of(&json!(-0.5)).is_err());
    assert!(percentage_of(&json!("NaN")).is_err());
}

#[test]
fn fixtures_map_to_kinds() {
    let rate = RateLimitHeaders {
        limit: Some(40),
        remaining: Some(0),
        next: None,
        server_date: None,
    };
    let cases = [
        ("400.json", 400, ErrorKind::BadRequest, "edgeLocationId"),
        ("401.json", 401, ErrorKind::Auth, "Inactive client token"),
        (
            "403.json",
            403,
            ErrorKind::Forbidden,
            "You don't have access",
        ),
        ("404.json", 404, ErrorKind::NotFound, "couldn't be found"),
        ("405.json", 405, ErrorKind::BadRequest, "Method not allowed"),
        (
            "429.json",
            429,
            ErrorKind::RateLimited,
            "exceeded total number",
        ),
    ];
    for (file, status, kind, words) in cases {
        let err = status_error(status, &fixture(file), rate.clone(), &none());
        assert_eq!(err.kind(), kind, "{file}");
        assert!(err.to_string().contains(words), "{file}: {err}");
    }
    let limited = status_error(429, &fixture("429.json"), rate.clone(), &none());
    assert_eq!(limited.rate_limit(), Some(&rate));

    let skew = br#"{"type":"bad.request","title":"Bad request","status":400,"detail":"Invalid timestamp"}"#;
    assert_eq!(
        status_error(400, skew, RateLimitHeaders::default(), &none()).kind(),
        ErrorKind::ClockSkew
    );
    assert_eq!(
        status_error(422, b"{}", RateLimitHeaders::default(), &none()).kind(),
        ErrorKind::BadRequest
    );
    let html = status_error(
        502,
        b"<html>Bad gateway</html>",
        RateLimitHeaders::default(),
        &none(),
    );
    assert_eq!(html.kind(), ErrorKind::Server);
    assert!(html.to_string().contains("502 Bad Gateway"), "{html}");
}

#[test]
fn estats_fixture_parses() {
    let response = decode_estats(&fixture("estats.json"), &none()).unwrap();
    assert_eq!(response.created_by.as_deref(), Some("adevi"));
    let result = response.result.unwrap();
    assert_eq!(result.edge_hits, Some(79655));
    assert_eq!(result.origin_failure_percentage, Some(1.0));
    let top = result.top_edge_ips_with_error.unwrap();
    assert_eq!(top[1].error_code.as_deref(), Some("18:ACCESS_DENIED"));
    assert_eq!(
        top[0].edge_ip_location.as_ref().unwrap().as_number,
        Some(1234)
    );
    assert_eq!(
        result.edge_status_code_distribution.unwrap()[1].http_status,
        204
    );
}

#[test]
fn unknown_fields_are_tolerated() {
    let body = br#"{
        "createdBy": "x", "executionStatus": "SUCCESS", "somethingNew": {"a": [1]},
        "request": {"cpCode": 1, "future": true},
        "result": {
            "edgeHits": 10.0, "edgeErrors": "2", "edgeFailurePercentage": 20.5, "newCounter": 3,
            "edgeStatusCodeDistribution": [{"httpStatus": 200, "hits": 8, "percentage": 80, "x": 1}],
            "topEdgeIpsWithError": [{"edgeIp": "1.2.3.4", "httpStatus": 503, "rank": 1,
                "edgeIpLocation": {"city": "X", "continent": "EU"}}]
        }
    }"#;
    let response = decode_estats(body, &none()).unwrap();
    let result = response.result.unwrap();
    assert_eq!(result.edge_hits, Some(10));
    assert_eq!(result.edge_errors, Some(2));
    assert_eq!(result.edge_failure_percentage, Some(20.5));
    assert_eq!(
        result.top_edge_ips_with_error.unwrap()[0].http_status,
        Some(503)
    );
}

#[test]
fn bad_success_bodies_are_invalid_responses() {
    for (body, words) in [
        (&b""[..], "empty"),
        (b"{\"executionStatus\": \"SUCC", "ends early"),
        (b"<html>hello</html>", "not valid JSON"),
        (b"[1,2]", "not an object"),
        (b"{\"hello\": 1}", "neither executionStatus nor result"),
        (
            b"{\"executionStatus\": \"SUCCESS\", \"result\": {\"edgeHits\": -5}}",
            "result.edgeHits is -5, a negative count",
        ),
    ] {
        let err = decode_estats(body, &none()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains(words), "{err}");
    }
    let failed = decode_estats(
        br#"{"executionStatus":"FAILURE","errors":[{"title":"t","detail":"No edge data"}]}"#,
        &none(),
    )
    .unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::ExecutionFailed);
    assert!(failed.to_string().contains("No edge data"));
    assert!(decode_edge_locations(b"{}").is_err());
    assert_eq!(
        decode_edge_locations(br#"{"edgeLocations":[{"id":"a","value":"A","n":1}]}"#)
            .unwrap()
            .edge_locations[0]
            .value,
        "A"
    );
}

#[test]
fn rate_headers_in_all_spellings() {
    let mut h = HeaderMap::new();
    h.insert("Akamai-RateLimit-Limit", HeaderValue::from_static("40"));
    h.insert("Akamai-RateLimit-Remaining", HeaderValue::from_static("0"));
    h.insert(
        "Akamai-RateLimit-Next",
        HeaderValue::from_static("2025-01-02T03:04:35.500Z"),
    );
    h.insert(
        "Date",
        HeaderValue::from_static("Thu, 02 Jan 2025 03:04:05 GMT"),
    );
    let r = RateLimitHeaders::from_headers(&h);
    assert_eq!(r.limit, Some(40));
    assert_eq!(r.remaining, Some(0));
    assert_eq!(r.wait(Utc::now()), Some(Duration::from_millis(30_500)));

    let mut h = HeaderMap::new();
    h.insert("X-RateLimit-Limit", HeaderValue::from_static("10"));
    h.insert("Akamai-RateLimit-Limit", HeaderValue::from_static("40"));
    h.insert("X-RateLimit-Remaining", HeaderValue::from_static(" 5 "));
    h.insert(
        "X-RateLimit-Next",
        HeaderValue::from_static("Thu, 02 Jan 2025 03:05:00 GMT"),
    );
    let r = RateLimitHeaders::from_headers(&h);
    assert_eq!((r.limit, r.remaining), (Some(10), Some(5)));
    assert_eq!(r.next.unwrap().to_rfc3339(), "2025-01-02T03:05:00+00:00");
    assert_eq!(r.server_date, None);
    assert_eq!(parse_instant("Thursday, 02-Jan-25 03:05:00 GMT"), r.next);
    assert_eq!(parse_instant("Thu Jan  2 03:05:00 2025"), r.next);
    assert_eq!(parse_instant("soon"), None);
    assert_eq!(
        RateLimitHeaders::from_headers(&HeaderMap::new()),
        RateLimitHeaders::default()
    );
}

// ---- property tests: no panic, errors name a member, nothing long is echoed ----

/// A 60-character marker: no error may quote it whole.
const MARKER: &str = "QUOTEDxQUOTEDxQUOTEDxQUOTEDxQUOTEDxQUOTEDxQUOTEDxQUOTEDxQUOTED";

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(MEMBERS).prop_map(str::to_string),
        1 => "[a-zA-Z]{1,12}",
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0u16..1000).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,20}".prop_map(Value::String),
        Just(json!(MARKER)),
        Just(json!("SUCCESS")),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `v`.
fn paths(v: &Value, at: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = at.clone();
                p.push(PathStep::Key(k.clone()));
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(PathStep::Index(i));
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

/// What every error of the decoder must satisfy.
fn check_error(err: &UpstreamError) -> Result<(), TestCaseError> {
    let text = err.to_string();
    prop_assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidResponse | ErrorKind::ExecutionFailed
        ),
        "{err:?}"
    );
    prop_assert!(
        !text.contains(&MARKER[..MAX_QUOTED_CHARS + 1]),
        "echoed: {text}"
    );
    prop_assert!(text.chars().count() < 700, "too long: {text}");
    Ok(())
}

/// An answer error about a member names one (syntax errors have none to name).
fn names_a_member(err: &UpstreamError) -> bool {
    let text = err.to_string();
    err.kind() == ErrorKind::ExecutionFailed
        || MEMBERS.iter().any(|m| text.contains(m))
        || text.contains("not an object")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = decode_estats(&bytes, &none()) {
            check_error(&e)?;
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json(), wrap in any::<bool>()) {
        // Half the time inside a SUCCESS answer, so that the checks of `result` are reached.
        let v = if wrap { json!({"executionStatus": "SUCCESS", "result": v}) } else { v };
        match decode_value(&v) {
            Ok(r) => prop_assert!(r.result.is_some()),
            Err(e) => {
                check_error(&e)?;
                prop_assert!(names_a_member(&e), "names no member: {e}");
            }
        }
    }

    #[test]
    fn mutated_official_examples_never_panic(pick in any::<prop::sample::Index>(), to in arb_json(), remove in any::<bool>()) {
        let mut v = example();
        let mut all = Vec::new();
        paths(&v, Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        match (remove, path.split_last()) {
            (true, Some((PathStep::Key(k), parent))) => {
                if let Some(o) = at_path(&mut v, parent).as_object_mut() {
                    o.remove(k);
                }
            }
            _ => *at_path(&mut v, &path) = to,
        }
        match decode_value(&v) {
            Ok(r) => {
                // Whatever was accepted is within the rules.
                let result = r.result.unwrap();
                for rows in [&result.edge_status_code_distribution, &result.origin_status_code_distribution].into_iter().flatten() {
                    for row in rows {
                        prop_assert!(HTTP_STATUSES.contains(&u64::from(row.http_status)));
                        prop_assert!(row.hits <= MAX_COUNT);
                        prop_assert!((0.0..=100.0).contains(&row.percentage));
                    }
                }
            }
            Err(e) => {
                check_error(&e)?;
                prop_assert!(names_a_member(&e), "names no member: {e}");
            }
        }
    }

    #[test]
    fn consistent_distributions_are_believed_exactly(hits in prop::collection::btree_map(100u16..600, 1u64..1_000_000_000, 1..12)) {
        let total: u64 = hits.values().sum();
        let rows: Vec<Value> = hits
            .iter()
            .map(|(s, h)| json!({"httpStatus": s, "hits": h, "percentage": round2(*h as f64 * 100.0 / total as f64)}))
            .collect();
        let v = json!({"executionStatus": "SUCCESS", "result": {"edgeHits": total, "edgeStatusCodeDistribution": rows}});
        let r = decode_value(&v).unwrap().result.unwrap();
        let got: Vec<(u16, u64)> = r.edge_status_code_distribution.unwrap().iter().map(|c| (c.http_status, c.hits)).collect();
        prop_assert_eq!(got, hits.into_iter().collect::<Vec<_>>());
    }
}
