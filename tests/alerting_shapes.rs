//! Every query type's frames, from the real executable over gRPC, read the way Grafana's alerting
//! reads them: server-side expressions turn a response into numbers or series (the dataplane
//! contract for frames that declare `meta.type`, the legacy guesses otherwise), and the rule
//! evaluation then needs one label set per value. The rules below follow Grafana's dataplane
//! contract (grafana/dataplane docs: "Numeric Kind Formats", "Time Series Kind Formats", "Data Plane
//! Contract - Technical Specification") and the SSE conversion (pkg/expr converter and
//! dataplane handling) as documented there.
//!
//! History comes from `history import` into a temporary database, so `timeseries` has 30 polls
//! (one failed) without waiting for pollers.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use common::{context, data_query, decode, Decoded, Plugin};
use estats::estats::model::EstatsRequest;
use estats::simulator::{Simulator, SimulatorConfig};
use grafana_plugin_sdk::pluginv2::{DataResponse, PluginContext, QueryDataRequest};
use serde_json::{json, Value};

const UID: &str = "alert-shapes";
const CP_CODE: u64 = 1209788;
const TARGET_KEY: &str = "cp:1209788/ANY";

#[derive(Debug, Clone, PartialEq)]
enum Column {
    Time(Vec<Option<i64>>),
    Str(Vec<Option<String>>),
    Num(Vec<Option<f64>>),
    Other,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    labels: BTreeMap<String, String>,
    column: Column,
}

#[derive(Debug, Clone)]
struct Frame {
    meta: Value,
    fields: Vec<Field>,
}

impl Frame {
    fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| match &f.column {
            Column::Time(v) => v.len(),
            Column::Str(v) => v.len(),
            Column::Num(v) => v.len(),
            Column::Other => 0,
        })
    }

    fn of(decoded: &Decoded) -> Frame {
        let fields = decoded
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let labels = f
                    .metadata()
                    .get("labels")
                    .map(|l| serde_json::from_str(l).expect("labels are a JSON object"))
                    .unwrap_or_default();
                let name = f.metadata().get("name").cloned().unwrap_or_default();
                let arrays: Vec<_> = decoded
                    .batches
                    .iter()
                    .map(|b| b.column(i).clone())
                    .collect();
                let column = match f.data_type() {
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => Column::Time(
                        arrays
                            .iter()
                            .flat_map(|a| {
                                let a = a
                                    .as_any()
                                    .downcast_ref::<arrow_array::TimestampNanosecondArray>()
                                    .unwrap();
                                a.iter().collect::<Vec<_>>()
                            })
                            .collect(),
                    ),
                    DataType::Utf8 => Column::Str(
                        arrays
                            .iter()
                            .flat_map(|a| {
                                let a = a
                                    .as_any()
                                    .downcast_ref::<arrow_array::StringArray>()
                                    .unwrap();
                                a.iter().map(|s| s.map(str::to_string)).collect::<Vec<_>>()
                            })
                            .collect(),
                    ),
                    DataType::Int64 => Column::Num(
                        arrays
                            .iter()
                            .flat_map(|a| {
                                let a = a
                                    .as_any()
                                    .downcast_ref::<arrow_array::Int64Array>()
                                    .unwrap();
                                a.iter().map(|v| v.map(|v| v as f64)).collect::<Vec<_>>()
                            })
                            .collect(),
                    ),
                    DataType::Float64 => Column::Num(
                        arrays
                            .iter()
                            .flat_map(|a| {
                                let a = a
                                    .as_any()
                                    .downcast_ref::<arrow_array::Float64Array>()
                                    .unwrap();
                                a.iter().collect::<Vec<_>>()
                            })
                            .collect(),
                    ),
                    _ => Column::Other,
                };
                Field {
                    name,
                    labels,
                    column,
                }
            })
            .collect();
        Frame {
            meta: decoded.meta(),
            fields,
        }
    }
}

type Labels = BTreeMap<String, String>;

/// What server-side expressions make of a response.
#[derive(Debug)]
enum Items {
    NoData,
    /// (name, labels, value)
    Numbers(Vec<(String, Labels, Option<f64>)>),
    /// (name, labels, values)
    Series(Vec<(String, Labels, Vec<Option<f64>>)>),
}

const DATAPLANE_TYPES: [&str; 6] = [
    "timeseries-wide",
    "timeseries-multi",
    "timeseries-long",
    "numeric-wide",
    "numeric-multi",
    "numeric-long",
];

/// Server-side expressions' reading: the dataplane contract when the first frame declares a
/// supported `meta.type` with a non-zero `typeVersion`, else the legacy guesses.
fn sse_items(frames: &[Frame]) -> Result<Items, String> {
    let Some(first) = frames.first() else {
        return Ok(Items::NoData);
    };
    let frame_type = first.meta["type"].as_str().unwrap_or("");
    let version = first.meta["typeVersion"].clone();
    let zero = version.is_null() || version == json!([0, 0]);
    if DATAPLANE_TYPES.contains(&frame_type) && !zero {
        assert_eq!(version, json!([0, 1]), "the version the readers know");
        // Several wide frames (one per target of a set) are one response of series, unique
        // by name and labels across the frames (dataplane: `frames: [#WideFrame, ...]`).
        if frame_type == "timeseries-wide" && frames.len() > 1 {
            let mut all = Vec::new();
            let mut seen = HashSet::new();
            for f in frames {
                if f.meta["type"] != json!(frame_type) {
                    return Err("frames of one response declare different types".into());
                }
                match timeseries_wide(f)? {
                    Items::Series(series) => {
                        for (name, labels, values) in series {
                            if !seen.insert((name.clone(), labels.clone())) {
                                return Err(format!("duplicate series {name} {labels:?}"));
                            }
                            all.push((name, labels, values));
                        }
                    }
                    _ => return Err("a frame without series beside frames with data".into()),
                }
            }
            return Ok(Items::Series(all));
        }
        // Only one frame carries the type in the other formats this plugin uses.
        if frames.len() != 1 {
            return Err(format!(
                "{frame_type}: one frame expected, got {}",
                frames.len()
            ));
        }
        return match frame_type {
            "numeric-long" => numeric_long(first),
            "timeseries-wide" => timeseries_wide(first),
            other => Err(format!("{other}: not a format this plugin emits")),
        };
    }
    legacy(frames)
}

/// "Numeric Long Format": string fields are dimensions, each numeric field of each row is an
/// item named by the field; more than one row needs a string field; items unique by name and
/// dimensions.
fn numeric_long(frame: &Frame) -> Result<Items, String> {
    if frame.fields.is_empty() || frame.rows() == 0 {
        return Ok(Items::NoData);
    }
    let strings: Vec<&Field> = frame
        .fields
        .iter()
        .filter(|f| matches!(f.column, Column::Str(_)))
        .collect();
    let numbers: Vec<&Field> = frame
        .fields
        .iter()
        .filter(|f| matches!(f.column, Column::Num(_)))
        .collect();
    if numbers.is_empty() {
        return Err("numeric-long without a numeric field".into());
    }
    if frame.rows() > 1 && strings.is_empty() {
        return Err("numeric-long with several rows needs string fields".into());
    }
    if frame
        .fields
        .iter()
        .any(|f| matches!(f.column, Column::Other))
    {
        return Err("numeric-long with a field that is neither string nor number".into());
    }
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    for row in 0..frame.rows() {
        let mut labels = Labels::new();
        for s in &strings {
            let Column::Str(v) = &s.column else {
                unreachable!()
            };
            // SSE reads each dimension as a concrete string: a null would not be one.
            let value = v[row]
                .clone()
                .ok_or_else(|| format!("null in dimension {} row {row}", s.name))?;
            labels.insert(s.name.clone(), value);
        }
        for n in &numbers {
            let Column::Num(v) = &n.column else {
                unreachable!()
            };
            if !seen.insert((n.name.clone(), labels.clone())) {
                return Err(format!("duplicate item {} {labels:?}", n.name));
            }
            items.push((n.name.clone(), labels.clone(), v[row]));
        }
    }
    Ok(Items::Numbers(items))
}

/// "Time Series Wide Format": the first time field is the index (no nulls, ascending, no
/// duplicates), every numeric field a series with its labels, unique by name and labels.
fn timeseries_wide(frame: &Frame) -> Result<Items, String> {
    if frame.fields.is_empty() {
        return Ok(Items::NoData);
    }
    let time = frame
        .fields
        .iter()
        .find_map(|f| match &f.column {
            Column::Time(t) => Some(t),
            _ => None,
        })
        .ok_or("timeseries-wide without a time field")?;
    if !matches!(frame.fields[0].column, Column::Time(_)) {
        return Err("the time field is not the first field".into());
    }
    if !frame.fields[0].labels.is_empty() {
        return Err("the time field carries labels".into());
    }
    let times: Vec<i64> = time
        .iter()
        .map(|t| t.ok_or("null in the time field"))
        .collect::<Result<_, _>>()?;
    if !times.windows(2).all(|w| w[0] < w[1]) {
        return Err("the time field is not strictly ascending (unsorted or duplicates)".into());
    }
    if frame
        .fields
        .iter()
        .any(|f| matches!(f.column, Column::Str(_)))
    {
        // Remainder data to the contract; this plugin promises none.
        return Err("string fields in a timeseries-wide frame".into());
    }
    let mut series = Vec::new();
    let mut seen = HashSet::new();
    for f in &frame.fields[1..] {
        let Column::Num(v) = &f.column else {
            continue;
        };
        if !seen.insert((f.name.clone(), f.labels.clone())) {
            return Err(format!("duplicate series {} {:?}", f.name, f.labels));
        }
        series.push((f.name.clone(), f.labels.clone(), v.clone()));
    }
    if series.is_empty() {
        return Err("timeseries-wide without a value field".into());
    }
    Ok(Items::Series(series))
}

/// The conversion for frames without a usable `meta.type`: no fields is no data; one frame
/// with exactly one numeric field and otherwise strings is a set of numbers; anything else
/// must be a wide time series (a time field, numbers, no strings).
fn legacy(frames: &[Frame]) -> Result<Items, String> {
    if frames.len() == 1 {
        let f = &frames[0];
        if f.fields.is_empty() {
            return Ok(Items::NoData);
        }
        let numeric = f
            .fields
            .iter()
            .filter(|x| matches!(x.column, Column::Num(_)))
            .count();
        let other = f
            .fields
            .iter()
            .filter(|x| matches!(x.column, Column::Time(_) | Column::Other))
            .count();
        if numeric == 1 && other == 0 {
            let mut frame = f.clone();
            frame.meta = json!({"type": "numeric-long", "typeVersion": [0, 1]});
            return numeric_long(&frame);
        }
    }
    let mut series = Vec::new();
    for f in frames {
        let has_time = f.fields.iter().any(|x| matches!(x.column, Column::Time(_)));
        let has_string = f.fields.iter().any(|x| matches!(x.column, Column::Str(_)));
        if !has_time || has_string {
            return Err(format!(
                "input data must be a wide series but got type {}",
                if has_time { "long" } else { "not" }
            ));
        }
        match timeseries_wide(f)? {
            Items::Series(s) => series.extend(s),
            _ => return Err("no value field".into()),
        }
    }
    Ok(Items::Series(series))
}

/// The rule evaluation: after a reduce, every value becomes an alert instance identified by
/// its labels alone (the name is not part of it), so label sets must be unique.
fn alert_instances(items: &Items) -> Result<Vec<Labels>, String> {
    let labels: Vec<Labels> = match items {
        Items::NoData => return Ok(Vec::new()),
        Items::Numbers(n) => n.iter().map(|(_, l, _)| l.clone()).collect(),
        Items::Series(s) => s.iter().map(|(_, l, _)| l.clone()).collect(),
    };
    let mut seen = HashSet::new();
    for l in &labels {
        if !seen.insert(l.clone()) {
            return Err(format!(
                "frame cannot uniquely be identified by its labels: has duplicate results with labels {l:?}"
            ));
        }
    }
    Ok(labels)
}

// --- the plugin ---------------------------------------------------------------------------

struct Setup {
    plugin: Plugin,
    ctx: PluginContext,
    failed_at: DateTime<Utc>,
    _sim: Simulator,
    _dir: tempfile::TempDir,
}

/// 30 polls a minute apart ending a minute ago, the 11th a failure, imported with the CLI.
fn import_history(db: &std::path::Path, dir: &std::path::Path) -> DateTime<Utc> {
    let file = dir.join("history.jsonl");
    let mut out = std::fs::File::create(&file).unwrap();
    let end = Utc::now().trunc_subsecs(0) - ChronoDuration::minutes(1);
    let request = EstatsRequest {
        cp_code: Some(CP_CODE),
        url: None,
        delivery: None,
        error_type: None,
    };
    let mut failed_at = end;
    for i in 0..30 {
        let at = end - ChronoDuration::minutes(29 - i);
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let line = if i == 10 {
            failed_at = at;
            json!({"sampledAt": stamp, "target": {"cpCode": CP_CODE},
                   "error": {"kind": "server_error", "message": "upstream answered 503"}})
        } else {
            json!({"sampledAt": stamp, "target": {"cpCode": CP_CODE},
                   "response": estats::simulator::generate(&request, at)})
        };
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .env_clear()
        .args(["history", "import", "--db"])
        .arg(db)
        .args(["--datasource", UID])
        .arg(&file)
        .output()
        .expect("CLI runs");
    assert!(
        status.status.success(),
        "history import: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    failed_at
}

async fn setup() -> Setup {
    let sim = Simulator::start(
        ([127, 0, 0, 1], 0).into(),
        SimulatorConfig {
            rate_limit_per_minute: 1000,
            ..SimulatorConfig::default()
        },
    )
    .await
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let failed_at = import_history(&db, dir.path());
    let plugin = Plugin::start().await;
    let creds = estats::simulator::demo_credentials();
    let ctx = context(
        UID,
        json!({
            "host": sim.base_url().as_str().trim_end_matches('/'),
            "pollIntervalSeconds": 60,
            "requestTimeoutSeconds": 5,
            "rateLimitPerMinute": 600,
            "historyPath": db.to_str().unwrap(),
        }),
        &[
            ("clientToken", creds.client_token.expose()),
            ("clientSecret", creds.client_secret.expose()),
            ("accessToken", creds.access_token.expose()),
        ],
    );
    Setup {
        plugin,
        ctx,
        failed_at,
        _sim: sim,
        _dir: dir,
    }
}

async fn ask(s: &Setup, query: &Value, from_alert: bool) -> DataResponse {
    let mut q = query.clone();
    if q.get("cpCode").is_none() {
        q["cpCode"] = json!(CP_CODE.to_string());
    }
    let mut headers = HashMap::new();
    if from_alert {
        // As Grafana's rule evaluation (and the rule editor's preview) send it.
        headers.insert("FromAlert".to_string(), "true".to_string());
    }
    let request = QueryDataRequest {
        plugin_context: Some(s.ctx.clone()),
        headers,
        queries: vec![data_query("A", q)],
    };
    s.plugin
        .data()
        .query_data(request)
        .await
        .expect("QueryData answers")
        .into_inner()
        .responses
        .remove("A")
        .expect("refId A answered")
}

fn frames_of(r: &DataResponse, query: &Value) -> Vec<Frame> {
    assert!(
        r.error.is_empty(),
        "{query}: error {:?} ({})",
        r.error,
        r.status
    );
    r.frames.iter().map(|b| Frame::of(&decode(b))).collect()
}

fn queries(query_type: &str) -> Vec<Value> {
    let combos: &[Value] = match query_type {
        "distribution" => &[
            json!({}),
            json!({"groupBy": "class", "side": "edge"}),
            json!({"groupBy": "class", "side": "edge", "statusFilter": "5xx"}),
            json!({"groupBy": "class", "side": "origin", "statusFilter": "1xx"}),
            json!({"groupBy": "code", "metric": "hits", "statusFilter": "5xx,404"}),
            json!({"groupBy": "total", "metric": "hits"}),
        ],
        "summary" => &[
            json!({}),
            json!({"side": "edge", "groupBy": "total", "metric": "errors"}),
            json!({"side": "origin", "groupBy": "total", "metric": "hits"}),
        ],
        "timeseries" => &[
            json!({"groupBy": "class", "side": "edge", "metric": "percentage", "statusFilter": "5xx"}),
            json!({"groupBy": "class", "side": "both", "statusFilter": "1xx"}),
            json!({"groupBy": "code", "side": "both", "metric": "hits"}),
            json!({"groupBy": "total", "side": "both", "metric": "failurePercentage"}),
            json!({"groupBy": "total", "side": "origin", "metric": "errors"}),
        ],
        "topIps" => &[json!({}), json!({"side": "origin", "statusFilter": "5xx"})],
        other => panic!("{other}"),
    };
    combos
        .iter()
        .map(|c| {
            let mut q = c.clone();
            q["queryType"] = json!(query_type);
            q
        })
        .collect()
}

#[tokio::test]
async fn every_query_type_is_alert_ready_or_says_why_not() {
    let s = setup().await;

    for query_type in ["distribution", "summary", "timeseries"] {
        for q in queries(query_type) {
            // Panels: valid dataplane frames of the declared type.
            let panel = frames_of(&ask(&s, &q, false).await, &q);
            let declared = panel[0].meta["type"].as_str().unwrap().to_string();
            let want = if query_type == "timeseries" {
                "timeseries-wide"
            } else {
                "numeric-long"
            };
            assert_eq!(declared, want, "{q}");
            sse_items(&panel).unwrap_or_else(|e| panic!("{q} (panel): {e}"));

            // Alert rules: the same, and one label set per value.
            let alert = frames_of(&ask(&s, &q, true).await, &q);
            assert_eq!(alert[0].meta["type"], json!(want), "{q}");
            let items = sse_items(&alert).unwrap_or_else(|e| panic!("{q} (alert): {e}"));
            let instances = alert_instances(&items).unwrap_or_else(|e| panic!("{q} (alert): {e}"));
            assert!(!instances.is_empty(), "{q}: no data where data exists");
            check_values(&q, &items);
        }
    }

    for q in queries("topIps") {
        // Panels get their table ...
        let panel = frames_of(&ask(&s, &q, false).await, &q);
        assert_eq!(panel[0].meta["type"], json!("table"), "{q}");
        // ... which Grafana could not alert on (it falls back to the legacy reading) ...
        let refused = sse_items(&panel);
        assert!(
            matches!(&refused, Err(e) if e.contains("wide series")),
            "{q}: {refused:?}"
        );
        // ... so an alert query gets a clear error instead.
        let r = ask(&s, &q, true).await;
        assert_eq!(r.status, 400, "{q}");
        assert!(r.frames.is_empty());
        assert!(
            r.error.contains("topIps") && r.error.contains("distribution"),
            "{}",
            r.error
        );
    }
}

/// A query naming several targets: every alert instance is one (target, side, status), and
/// each target answered appears (the second one's history starts with the first query's fetch).
#[tokio::test]
async fn sets_of_targets_are_alert_ready_with_unique_label_sets() {
    let s = setup().await;
    let set = json!(format!("{CP_CODE}, 1209799"));
    for query_type in ["distribution", "summary", "timeseries"] {
        for mut q in queries(query_type) {
            q["cpCode"] = set.clone();
            let panel = frames_of(&ask(&s, &q, false).await, &q);
            sse_items(&panel).unwrap_or_else(|e| panic!("{q} (panel): {e}"));
            let alert = frames_of(&ask(&s, &q, true).await, &q);
            let items = sse_items(&alert).unwrap_or_else(|e| panic!("{q} (alert): {e}"));
            let instances = alert_instances(&items).unwrap_or_else(|e| panic!("{q} (alert): {e}"));
            let targets: HashSet<&str> = instances
                .iter()
                .map(|l| l.get("target").map(String::as_str).expect("a target label"))
                .collect();
            assert_eq!(targets, HashSet::from(["1209788", "1209799"]), "{q}");
        }
    }
}

/// Values that matter to alerts: absent classes are 0 (not no data), failed polls are gaps.
fn check_values(q: &Value, items: &Items) {
    let filter = q["statusFilter"].as_str().unwrap_or("");
    match items {
        Items::Numbers(numbers) => {
            let metric = q["metric"].as_str();
            let names: HashSet<&str> = numbers.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(
                names.len(),
                1,
                "{q}: one numeric field per alert frame: {names:?}"
            );
            let name = *names.iter().next().unwrap();
            let expected = match (q["queryType"].as_str().unwrap(), metric) {
                ("summary", None) => "failurePercentage",
                (_, Some(m)) => m,
                (_, None) => "percentage",
            };
            assert_eq!(name, expected, "{q}");
            if filter == "1xx" {
                assert_eq!(numbers.len(), 1, "{q}: {numbers:?}");
                let (_, labels, v) = &numbers[0];
                assert_eq!(labels["status"], "1xx");
                assert_eq!(*v, Some(0.0), "{q}: an absent class is 0");
            }
        }
        Items::Series(series) => {
            for (name, labels, values) in series {
                assert_eq!(labels["target"], TARGET_KEY, "{q}");
                assert_eq!(name, q["metric"].as_str().unwrap_or("percentage"), "{q}");
                assert!(values.len() >= 30, "{q}: {} rows", values.len());
                assert!(
                    values.iter().any(Option::is_none),
                    "{q}: the failed poll is a gap"
                );
                if filter == "1xx" {
                    assert!(
                        values.iter().flatten().all(|v| *v == 0.0),
                        "{q}: absent class is 0 in every successful sample"
                    );
                }
            }
        }
        Items::NoData => panic!("{q}: no data"),
    }
}

#[tokio::test]
async fn the_failed_poll_is_a_null_row_at_its_instant() {
    let s = setup().await;
    let q = json!({"queryType": "timeseries", "groupBy": "class", "side": "edge",
                   "metric": "percentage", "statusFilter": "5xx"});
    let frames = frames_of(&ask(&s, &q, true).await, &q);
    let Column::Time(times) = &frames[0].fields[0].column else {
        panic!("time first")
    };
    let at = s.failed_at.timestamp_nanos_opt().unwrap();
    let row = times
        .iter()
        .position(|t| *t == Some(at))
        .expect("a row at the failed poll's instant");
    for f in &frames[0].fields[1..] {
        let Column::Num(v) = &f.column else {
            panic!("numbers")
        };
        assert_eq!(v[row], None, "{}: gap, not 0", f.name);
        assert!(v[row - 1].is_some() && v[row + 1].is_some());
    }
}

#[test]
fn the_checker_rejects_what_grafana_rejects() {
    let field = |name: &str, labels: &[(&str, &str)], column: Column| Field {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        column,
    };
    let frame = |t: &str, fields: Vec<Field>| Frame {
        meta: json!({"type": t, "typeVersion": [0, 1]}),
        fields,
    };
    let side = || {
        field(
            "side",
            &[],
            Column::Str(vec![Some("edge".into()), Some("edge".into())]),
        )
    };
    let num = |n: &str| field(n, &[], Column::Num(vec![Some(1.0), Some(2.0)]));
    // Two rows with the same dimensions.
    assert!(numeric_long(&frame("numeric-long", vec![side(), num("hits")])).is_err());
    // Unique items per name, but two values per label set: the rule evaluation refuses.
    let two = frame(
        "numeric-long",
        vec![
            field(
                "side",
                &[],
                Column::Str(vec![Some("edge".into()), Some("origin".into())]),
            ),
            num("hits"),
            num("percentage"),
        ],
    );
    let items = sse_items(&[two]).unwrap();
    assert!(alert_instances(&items)
        .unwrap_err()
        .contains("duplicate results"));
    // Several rows without dimensions.
    assert!(numeric_long(&frame("numeric-long", vec![num("hits")])).is_err());
    // Time series: unsorted, duplicate instants, duplicate series, strings.
    let t = |v: &[i64]| {
        field(
            "time",
            &[],
            Column::Time(v.iter().map(|x| Some(*x)).collect()),
        )
    };
    let s = |l: &str| {
        field(
            "percentage",
            &[("side", l)],
            Column::Num(vec![Some(1.0), None]),
        )
    };
    assert!(timeseries_wide(&frame("timeseries-wide", vec![t(&[2, 1]), s("edge")])).is_err());
    assert!(timeseries_wide(&frame("timeseries-wide", vec![t(&[1, 1]), s("edge")])).is_err());
    assert!(timeseries_wide(&frame(
        "timeseries-wide",
        vec![t(&[1, 2]), s("edge"), s("edge")]
    ))
    .is_err());
    assert!(timeseries_wide(&frame("timeseries-wide", vec![t(&[1, 2]), side()])).is_err());
    assert!(timeseries_wide(&frame(
        "timeseries-wide",
        vec![t(&[1, 2]), s("edge"), s("origin")]
    ))
    .is_ok());
    // A table with several numeric fields and no time: neither numbers nor series.
    let table = frame("table", vec![side(), num("hits"), num("asNumber")]);
    assert!(sse_items(&[table]).is_err());
}
