//! Property tests for every parser of untrusted input: panel query JSON, data source settings,
//! `.edgerc` text, live channel paths, history import lines and resource paths. For any input:
//! no panic, every error names its field (or line, or segment), and no input is echoed beyond a
//! short prefix. 256 cases per property keep `cargo test` fast; `cargo fuzz` (see
//! docs/fuzzing.md) runs the same parsers for as long as one likes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use estats::edgerc;
use estats::plugin::instance::{Instance, Instances};
use estats::query::{Query, QueryContext};
use estats::settings::{Settings, SettingsError};
use estats::target::QUOTE_CHARS;
use grafana_plugin_sdk::pluginv2::{
    CallResourceRequest, DataSourceInstanceSettings, PluginContext,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// 256 cases per property, or `PROPTEST_CASES` for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// No message may be longer than this many characters, whatever the input's size.
const MAX_MESSAGE: usize = 1000;

/// Texts users and attackers send: names the parsers know, printable and control characters,
/// and long runs (lowercase, so that an echo would show verbatim in the message).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", " ", "distribution", "timeseries", "summary", "topIps", "cpCode", "url", "edge",
            "origin", "both", "code", "class", "total", "percentage", "hits", "errors",
            "failurePercentage", "STANDARD_TLS", "enhanced_tls", "5xx", "404", "5xx,404", "0",
            "1209788", "https://www.example.com/", "https:///path", "http://127.0.0.1:9",
            "localhost", "true", "false", "-1", "1e9",
        ]).prop_map(str::to_string),
        2 => "\\PC{0,24}",
        2 => ".{0,24}",
        1 => "[a-z]{200,3000}",
        // Escaped in messages, so a quote of them grows: the bound must still hold.
        1 => "[\\x00-\\x1f]{100,400}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z]{1,12}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object of some of `keys` (and a stray key), each with any JSON value.
fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop_oneof![5 => prop::sample::select(keys), 1 => Just("stray")],
            json_value(),
        ),
        0..8,
    )
    .prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings_in(v, out)
        }),
        _ => {}
    }
}

/// The message is short, and quotes at most a short prefix of each input: no run of the input
/// longer than a quote, taken at its start, middle or end, appears in it.
fn assert_short(message: &str, inputs: &[String]) -> Result<(), TestCaseError> {
    prop_assert!(
        message.chars().count() <= MAX_MESSAGE,
        "{} chars: {}",
        message.chars().count(),
        message.chars().take(200).collect::<String>()
    );
    let window = QUOTE_CHARS + 16;
    for input in inputs {
        let chars: Vec<char> = input.chars().collect();
        if chars.len() < window + 2 {
            continue;
        }
        let last = chars.len() - window;
        for start in [0, last / 2, last] {
            let run: String = chars[start..start + window].iter().collect();
            prop_assert!(
                !message.contains(&run),
                "input echoed beyond a short prefix: {message}"
            );
        }
    }
    Ok(())
}

const QUERY_KEYS: &[&str] = estats::query::FIELDS;

const CTX: QueryContext = QueryContext {
    from_ms: 1_700_000_000_000,
    to_ms: 1_700_003_600_000,
    interval_ms: 60_000,
    max_data_points: 100,
};

proptest! {
    #![proptest_config(config())]

    #[test]
    fn query_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), qt in text()) {
        if let Err(e) = Query::parse("A", &bytes, &qt, CTX, None) {
            prop_assert!(e.names_its_field(), "{e}");
            assert_short(&e.to_string(), &[qt])?;
        }
    }

    #[test]
    fn query_json_errors_name_a_field_and_echo_little(query in object_of(QUERY_KEYS), qt in text()) {
        let bytes = query.to_string().into_bytes();
        match Query::parse("A", &bytes, &qt, CTX, None) {
            Ok(q) => prop_assert!(q.metric.fits(q.group_by)),
            Err(e) => {
                prop_assert!(e.names_its_field(), "{e}");
                prop_assert!(!e.message.is_empty());
                prop_assert!(!e.message.contains("invalid type"), "{e}");
                let mut inputs = vec![qt];
                strings_in(&query, &mut inputs);
                assert_short(&e.to_string(), &inputs)?;
            }
        }
    }

    #[test]
    fn a_wrong_type_is_blamed_on_its_own_field(
        field in prop::sample::select(QUERY_KEYS),
        wrong in prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            Just(json!({})),
            Just(json!({"a": 1})),
            Just(json!([[1]])),
            Just(json!([{}])),
        ],
    ) {
        prop_assume!(!(field == "live" && wrong.is_boolean()));
        let mut query = json!({"cpCode": 1209788, "url": "https://www.example.com/"});
        if field == "url" {
            query["targetType"] = json!("url");
        }
        query[field] = wrong;
        let e = Query::parse("A", query.to_string().as_bytes(), "", CTX, None).unwrap_err();
        prop_assert_eq!(e.field, field, "{}", e);
    }
}

const SETTINGS_KEYS: &[&str] = estats::settings::JSON_DATA_KEYS;

fn secure(with: bool) -> HashMap<String, String> {
    if !with {
        return HashMap::new();
    }
    ["clientToken", "clientSecret", "accessToken"]
        .iter()
        .map(|k| (k.to_string(), format!("SECRETVALUE-{k}")))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn settings_errors_name_a_field_and_echo_little(
        json_data in object_of(SETTINGS_KEYS),
        with_secrets in any::<bool>(),
    ) {
        let bytes = json_data.to_string().into_bytes();
        let env = |_: &str| None;
        if let Err(e) = Settings::from_grafana(&bytes, &secure(with_secrets), &env) {
            match &e {
                SettingsError::Invalid { field, .. } => prop_assert!(
                    field.starts_with("jsonData.") || field.starts_with("secureJsonData"),
                    "{e}"
                ),
                SettingsError::Json(_) => {}
                SettingsError::Edgerc(inner) => {
                    prop_assert!(inner.to_string().contains("jsonData.edgercPath") || !matches!(inner, edgerc::EdgercError::Io { .. }), "{e}")
                }
            }
            let message = e.to_string();
            prop_assert!(!message.contains("SECRETVALUE"), "{message}");
            let mut inputs = Vec::new();
            strings_in(&json_data, &mut inputs);
            assert_short(&message, &inputs)?;
        }
    }

    #[test]
    fn settings_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let env = |_: &str| None;
        if let Err(e) = Settings::from_grafana(&bytes, &HashMap::new(), &env) {
            prop_assert!(e.to_string().chars().count() <= MAX_MESSAGE);
        }
    }
}

/// `.edgerc` lines: headers, the keys (some misspelt) with secret-marked values, comments and
/// noise.
fn edgerc_line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["[default]", "[other]", "[ default ]", "[", "[]", "; c", "# c", ""])
            .prop_map(str::to_string),
        4 => (
            prop::sample::select(vec![
                "host", "client_token", "client_secret", "access_token", "max_body",
                "account_key", "Client-Token", "client_secert", "hsot", "headers_to_sign", "x",
            ]),
            prop::sample::select(vec![" = ", "=", ": ", " = \"", " = '"]),
            "[A-Za-z0-9+/=]{0,12}",
        )
            .prop_map(|(k, sep, v)| format!("{k}{sep}SECRETVALUE{v}")),
        1 => Just("host = akab-h.luna.akamaiapis.net".to_string()),
        1 => Just("host = http://127.0.0.1:9".to_string()),
        2 => "\\PC{0,40}",
        1 => "[a-z]{200,2000}",
        1 => "\\[[a-z\\x00-\\x1f\\[]{70,300}\\]",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn edgerc_errors_never_show_a_value_and_echo_little(
        lines in prop::collection::vec(edgerc_line(), 0..12),
        crlf in any::<bool>(),
        section in prop_oneof![3 => Just("default".to_string()), 1 => text()],
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        let env = |_: &str| None;
        if let Err(e) = edgerc::parse(&text, "~/.edgerc", &section, &env) {
            let message = e.to_string();
            prop_assert!(!message.contains("SECRETVALUE"), "{message}");
            let mut inputs = lines.clone();
            inputs.push(section.clone());
            assert_short(&message, &inputs)?;
        }
    }

    #[test]
    fn host_settings_never_panic_and_echo_nothing(host in text()) {
        if let Err(e) = edgerc::base_url(&host) {
            assert_short(&e.to_string(), &[host])?;
        }
    }
}

/// Live channel path segments, valid and not.
fn live_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "v1", "k.Y3A6MTIwOTc4OC9BTlk", "h.0123456789abcdef", "h.XYZ", "k.!!", "timeseries",
            "distribution", "summary", "topIps", "edge", "both", "code", "class", "total",
            "percentage", "hits", "failurePercentage", "-", "5xx.404", "404.5xx", "", "A", "b.QQ",
            "b.!",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z0-9._-]{0,12}",
        1 => "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Grafana never forwards a channel longer than its limit, so the bound on what a message
    /// quotes is checked for paths within it.
    #[test]
    fn live_paths_never_panic(segments in prop::collection::vec(live_segment(), 0..10)) {
        let path = segments.join("/");
        match estats::live::LivePath::decode(&path) {
            Ok(decoded) => {
                // What decodes, encodes back to a path that decodes to the same thing.
                let again = estats::live::LivePath::decode(&decoded.encode("uid"));
                prop_assert!(again.is_ok());
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("channel path"), "{message}");
                if path.len() <= estats::live::MAX_CHANNEL_LENGTH {
                    prop_assert!(message.chars().count() <= MAX_MESSAGE, "{message}");
                }
            }
        }
    }
}

/// History import lines: sample lines with mutated fields, and noise.
fn import_line() -> impl Strategy<Value = String> {
    let sampled_at = prop_oneof![
        3 => Just(json!("2024-05-01T12:00:00Z")),
        1 => json_value(),
    ];
    let target = prop_oneof![
        3 => Just(json!({"cpCode": 1209788})),
        1 => Just(json!({"cpCode": 0})),
        1 => Just(json!({"url": "https:///path"})),
        1 => json_value(),
    ];
    let body = prop_oneof![
        2 => Just(("response", json!({"executionStatus": "SUCCESS", "result": null}))),
        2 => Just(("error", json!({"kind": "server_error", "message": "boom"}))),
        1 => json_value().prop_map(|v| ("response", v)),
        1 => json_value().prop_map(|v| ("error", v)),
    ];
    prop_oneof![
        5 => (sampled_at, target, body).prop_map(|(at, target, (key, value))| {
            let mut line = json!({"sampledAt": at, "target": target});
            line[key] = value;
            line.to_string()
        }),
        1 => "\\PC{0,60}",
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn history_import_lines_never_panic_and_name_their_line(
        lines in prop::collection::vec(import_line(), 1..6),
    ) {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        estats::history::schema::prepare(&conn, None).unwrap();
        let text = lines.join("\n");
        match estats::history::import::import(&conn, "uid", text.as_bytes()) {
            Ok(report) => prop_assert!(report.lines <= lines.len() as u64),
            Err(estats::history::HistoryError::Import { line, reason }) => {
                prop_assert!(line >= 1 && line <= lines.len() as u64);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "not an import error: {other}"),
        }
    }
}

/// One simulator-backed instance for every resource case (building one per case would start a
/// simulator each time).
fn resource_instance() -> &'static (tokio::runtime::Runtime, Arc<Instance>) {
    static INSTANCE: OnceLock<(tokio::runtime::Runtime, Arc<Instance>)> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ctx = PluginContext {
            data_source_instance_settings: Some(DataSourceInstanceSettings {
                uid: "prop".into(),
                json_data: br#"{"simulate": true}"#.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let instances = Instances::default();
        let instance = runtime
            .block_on(instances.get(Some(&ctx)))
            .expect("a simulator instance builds");
        // The instance outlives `instances`: its pollers end with it.
        (runtime, instance)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn resource_paths_never_panic_and_echo_little(
        path in prop_oneof![
            2 => prop::sample::select(vec!["targets", "status-codes", "/targets/", "nope", ""]).prop_map(str::to_string),
            1 => text(),
        ],
        target in prop_oneof![Just(None), text().prop_map(Some)],
        method in prop_oneof![4 => Just("GET".to_string()), 1 => text()],
    ) {
        let url = match &target {
            Some(t) => format!("{path}?target={}", url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()),
            None => path.clone(),
        };
        let request = CallResourceRequest {
            path: path.clone(),
            method: method.clone(),
            url,
            ..Default::default()
        };
        let (runtime, instance) = resource_instance();
        let response = runtime.block_on(estats::plugin::resource::handle(instance, &request));
        let body: Value = serde_json::from_slice(&response.body).expect("resource bodies are JSON");
        if response.code >= 400 {
            let message = body["error"].as_str().unwrap_or_default().to_string();
            prop_assert!(!message.is_empty(), "{body}");
            let mut inputs = vec![path, method];
            inputs.extend(target);
            assert_short(&message, &inputs)?;
        }
    }
}
