//! Every panel of every provisioned dashboard (the overview and the fleet), queried through the
//! plugin executable as Grafana would, against the provisioned simulator data source: each
//! answers with non-empty frames; each dashboard's events annotation answers with the frame
//! Grafana turns into annotations.

mod common;

use std::time::{Duration, Instant};

use common::dashboard::{dashboard_queries, interpolate, variable_defaults};
use common::{context, frames, Plugin};
use serde_json::Value;

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[tokio::test]
async fn every_provisioned_panel_answers_with_data() {
    let provisioning: serde_yaml::Value =
        serde_yaml::from_str(&repo_file("provisioning/datasources/akamai-estats.yaml")).unwrap();
    let sim_ds = provisioning["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|d| d["jsonData"]["simulate"] == serde_yaml::Value::Bool(true))
        .expect("a simulator data source is provisioned");
    let uid = sim_ds["uid"].as_str().unwrap();
    let mut json_data: Value = serde_json::to_value(&sim_ds["jsonData"]).unwrap();
    // Grafana expands ${VAR} from its environment; none is set here, so each is "" (the shared
    // history database, for one, stays off).
    for value in json_data.as_object_mut().unwrap().values_mut() {
        if value
            .as_str()
            .is_some_and(|s| s.starts_with("${") && s.ends_with('}'))
        {
            *value = "".into();
        }
    }
    // As provisioned, but polling fast and keeping history in a scratch file.
    let dir = tempfile::tempdir().unwrap();
    json_data["pollIntervalSeconds"] = 1.into();
    // Every watched target polled every second, within budget.
    json_data["rateLimitPerMinute"] = 6000.into();
    json_data["historyPath"] = dir.path().join("history.db").to_str().unwrap().into();
    let ctx = context(uid, json_data, &[]);
    let watched_cp_codes = sim_ds["jsonData"]["watch"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|w| !w["cpCode"].is_null())
        .count();
    assert!(watched_cp_codes >= 2, "a fleet of several CP codes");

    let mut queries = Vec::new();
    let mut annotations = Vec::new();
    let dir_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("provisioning/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir_path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "overview and fleet: {files:?}");
    for file in &files {
        let dashboard: Value =
            serde_json::from_str(&repo_file(&format!("provisioning/dashboards/{file}"))).unwrap();
        let mut vars = variable_defaults(&dashboard);
        vars.insert("datasource".into(), uid.into());
        let panels = dashboard_queries(&dashboard);
        assert!(
            panels.len() >= 4,
            "{file} has its panels ({})",
            panels.len()
        );
        queries.extend(
            panels
                .into_iter()
                .map(|(title, q)| (format!("{file}: {title}"), interpolate(&q, &vars))),
        );
        for a in dashboard["annotations"]["list"].as_array().unwrap() {
            if a["datasource"]["type"] == "akamai-estats-datasource" {
                annotations.push((file.clone(), interpolate(&a["target"], &vars)));
            }
        }
    }
    assert!(
        queries.len() >= 19,
        "the dashboards have their panels ({})",
        queries.len()
    );
    assert_eq!(
        annotations.len(),
        files.len(),
        "one events annotation a dashboard"
    );

    let plugin = Plugin::start().await;

    // The fleet alert rule's query, as a panel would send it: one row per watched CP code.
    let alerting: serde_yaml::Value =
        serde_yaml::from_str(&repo_file("provisioning/alerting/akamai-estats.yaml")).unwrap();
    for rule in alerting["groups"][0]["rules"].as_sequence().unwrap() {
        for q in rule["data"].as_sequence().unwrap() {
            if q["datasourceUid"].as_str() == Some(uid) {
                let mut model: Value = serde_json::to_value(&q["model"]).unwrap();
                model["datasource"] =
                    serde_json::json!({"type": "akamai-estats-datasource", "uid": uid});
                queries.push(("alert rule".to_string(), model));
            }
        }
    }

    let deadline = Instant::now() + Duration::from_secs(40);
    let mut pending = queries;
    // Time series panels need a few polls of history; the others answer at once.
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (title, query) in pending {
            assert_eq!(
                query["datasource"]["type"], "akamai-estats-datasource",
                "{title}"
            );
            let r = plugin.query_one(&ctx, query.clone()).await;
            let frames = frames(&r);
            let mut ok = r.status == 200
                && frames
                    .iter()
                    .any(|f| f.rows() > 0 && f.schema.fields().len() > 1);
            // `*`: every watched CP code answers (a target without a sample yet is left out,
            // so this waits for all of them): a `target` column, or one frame per target.
            if ok && query["cpCode"] == "*" {
                let targets: std::collections::BTreeSet<String> =
                    if query["queryType"] == "timeseries" {
                        frames
                            .iter()
                            .filter_map(|f| f.schema.metadata().get("name").cloned())
                            .collect()
                    } else {
                        frames[0].strings("target").into_iter().flatten().collect()
                    };
                if query["queryType"] == "timeseries" {
                    assert!(
                        frames.len() <= watched_cp_codes,
                        "{title}: a frame per target"
                    );
                }
                ok = targets.len() == watched_cp_codes;
            }
            if !ok {
                assert!(
                    Instant::now() < deadline,
                    "panel {title:?} gave no data: status {} {:?}",
                    r.status,
                    r.error
                );
                still.push((title, query));
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Annotations: Grafana maps the frame's time, timeEnd, title, text and tags fields itself. A
    // healthy simulator may give no event, so the fields are checked, not the rows.
    for (file, query) in &annotations {
        assert_eq!(query["queryType"], "events", "{file}");
        let r = plugin.query_one(&ctx, query.clone()).await;
        assert_eq!(r.status, 200, "{file}: annotation query: {:?}", r.error);
        let frames = frames(&r);
        assert_eq!(frames.len(), 1, "{file}: one events frame");
        let names: Vec<String> = frames[0]
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for field in ["time", "timeEnd", "title", "text", "tags", "target"] {
            assert!(
                names.iter().any(|n| n == field),
                "{file}: {field} in {names:?}"
            );
        }
    }
}
