//! Reading the provisioned dashboard as Grafana does: its panels, their queries, and the
//! template variables' defaults interpolated into them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Every panel of a dashboard, rows' nested panels included, in document order.
pub fn dashboard_panels(dashboard: &Json) -> Vec<&Json> {
    fn walk<'a>(panels: &'a Json, out: &mut Vec<&'a Json>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// (panel title, query JSON) for every query of every panel, as stored (variables not expanded).
pub fn dashboard_queries(dashboard: &Json) -> Vec<(String, Json)> {
    dashboard_panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), t.clone()))
        })
        .collect()
}

/// The value each template variable starts with (datasource: the uid).
pub fn variable_defaults(dashboard: &Json) -> BTreeMap<String, String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let value = match &v["current"]["value"] {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            };
            (v["name"].as_str().unwrap_or_default().to_string(), value)
        })
        .collect()
}

/// `query` with `$name` and `${name}` replaced in every string, as Grafana does before sending it.
pub fn interpolate(query: &Json, vars: &BTreeMap<String, String>) -> Json {
    match query {
        Json::String(s) => Json::String(replace_variables(s, vars)),
        Json::Array(items) => Json::Array(items.iter().map(|i| interpolate(i, vars)).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn replace_variables(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    // Longest names first so `$target` is not taken for a prefix of a longer name.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out
            .replace(&format!("${{{name}}}"), &vars[name])
            .replace(&format!("${name}"), &vars[name]);
    }
    out
}
