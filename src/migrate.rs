//! `migrate-exporter`: turns the settings file of the old Python exporter (the proof of concept
//! this plugin replaces) into an equivalent data source provisioning file.
//!
//! The old file is Python `configparser` INI:
//!
//! ```ini
//! [Exporter]
//! polling_interval = 120
//! exporter_port = 9877
//!
//! [Akamai]
//! edgerclocation = /home/ops/.edgerc
//! cpcode = 1209788
//! deliverynetwork = STANDARD_TLS
//! accountSwitchKey = B-C-1IE2OH8:1-2RBL
//! ```
//!
//! Everything here is pure: the CLI reads the file and writes the YAML; this module only turns
//! one string into another, so every rule is unit-tested without touching a disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::edgerc::{ini_lines, IniLine, IniProblem};
use crate::target::{Delivery, Target};

/// The uid the migrated data source gets unless the CLI is told otherwise; it is the uid of the
/// real (non-simulator) data source in `provisioning/datasources/akamai-estats.yaml`, so the
/// generated file can replace that entry.
pub const DEFAULT_UID: &str = "akamai-estats";

/// Where the Docker setup keeps the history (a named volume); rows are keyed by data source uid,
/// so several data sources may share the file.
pub const HISTORY_PATH: &str = "/var/lib/grafana/akamai-estats/history.db";

/// eStats answers with a nine-second sample from the last two minutes and allows 40 calls a
/// minute per API client: polling one target faster than this mostly re-reads the same sample
/// and eats the budget that other targets and panels share.
pub const MIN_POLL_INTERVAL_SECONDS: u64 = 30;

/// The exporter's own default (its README: "polled every 120 s").
pub const EXPORTER_DEFAULT_POLLING_INTERVAL: u64 = 120;

/// What the old exporter was configured with, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterSettings {
    /// `[Exporter] polling_interval`, seconds, as written (clamping happens in the YAML).
    pub polling_interval_seconds: u64,
    /// `[Exporter] exporter_port`, kept only to tell the user it is no longer needed.
    pub exporter_port: Option<String>,
    /// `[Akamai] edgerclocation`; `None` when absent or empty.
    pub edgerc_location: Option<String>,
    /// `[Akamai] cpcode`.
    pub cp_code: u64,
    /// `[Akamai] deliverynetwork`; `None` when empty.
    pub delivery: Option<Delivery>,
    /// `[Akamai] accountSwitchKey`; `None` when empty (Akamai customers leave it blank).
    pub account_switch_key: Option<String>,
    /// Keys of the `[Exporter]`/`[Akamai]` sections that the exporter did not know, in file
    /// order, listed in the generated file so typos do not go unnoticed.
    pub ignored: Vec<IgnoredKey>,
}

/// A key of a known section that the exporter did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// As spelt in the file's header.
    pub section: String,
    /// Lower-cased, as `configparser` reads it.
    pub key: String,
    pub line: usize,
}

impl std::fmt::Display for IgnoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} (line {})", self.section, self.key, self.line)
    }
}

/// Why the settings file cannot be migrated; each message names the place and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    // The offending line is not echoed: a wrong file (an .edgerc) could put a secret there.
    #[error("line {line}: {problem}; {fix}")]
    Syntax {
        line: usize,
        problem: &'static str,
        fix: &'static str,
    },
    #[error("the [{section}] section is missing: the exporter's settings file has an [Exporter] and an [Akamai] section, e.g. [Akamai] with cpcode = 1209788")]
    MissingSection { section: &'static str },
    #[error("[{section}] {key} is missing or empty: {fix}")]
    MissingKey {
        section: &'static str,
        key: &'static str,
        fix: &'static str,
    },
    #[error("[{section}] {key} = {} (line {line}) is not usable: {fix}", crate::target::quote(.value))]
    Invalid {
        section: &'static str,
        key: &'static str,
        value: String,
        line: usize,
        fix: String,
    },
    #[error("[{}] {} is set twice (lines {first} and {second}): keep one of them", crate::target::clip(.section), crate::target::clip(.key))]
    Duplicate {
        section: String,
        key: String,
        first: usize,
        second: usize,
    },
    #[error("this looks like an .edgerc credentials file (line {line} sets {key}), not the exporter's settings: pass the exporter's settings file (the one with [Exporter] and [Akamai] sections); its edgerclocation names the .edgerc")]
    LooksLikeEdgerc { line: usize, key: String },
}

/// One `key = value` of a known section, with the line it came from.
struct Entry {
    value: String,
    line: usize,
}

/// Parses the exporter's settings file.
///
/// Follows Python `configparser`, which the exporter used: `[Section]` headers, `key = value` or
/// `key: value`, keys case-insensitive, whole-line comments with `;` or `#`, a key set twice is an
/// error. More lenient than the exporter where that loses nothing: section names are
/// case-insensitive, an inline ` ; comment` and surrounding quotes are dropped.
pub fn parse_exporter_settings(text: &str) -> Result<ExporterSettings, MigrateError> {
    // section (lower-case) -> key (lower-case) -> entry
    let mut sections: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
    let mut section_names: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;

    for (line, parsed) in ini_lines(text) {
        let syntax = |problem, fix| MigrateError::Syntax { line, problem, fix };
        let (key, value) = match parsed {
            Err(IniProblem::UnclosedHeader) => {
                return Err(syntax(
                    "a section header without its closing ]",
                    "write it as [Exporter] or [Akamai]",
                ))
            }
            Err(IniProblem::TextAfterHeader) => {
                return Err(syntax(
                    "text after a section header",
                    "put it on a line of its own, or start it with ; to comment it out",
                ))
            }
            Err(IniProblem::EmptySectionName) => {
                return Err(syntax(
                    "an empty section name",
                    "write it as [Exporter] or [Akamai]",
                ))
            }
            Err(IniProblem::NotAPair) => {
                return Err(syntax(
                    "neither a [Section] header nor a key = value line",
                    "write settings as key = value, or start the line with ; to comment it out",
                ))
            }
            Err(IniProblem::EmptyKey) => {
                return Err(syntax(
                    "a value without a key",
                    "write settings as key = value",
                ))
            }
            Ok(IniLine::Section(name)) => {
                let lower = name.to_ascii_lowercase();
                section_names
                    .entry(lower.clone())
                    .or_insert_with(|| name.to_string());
                sections.entry(lower.clone()).or_default();
                current = Some(lower);
                continue;
            }
            Ok(IniLine::Pair { key, value }) => (key.to_ascii_lowercase(), value),
        };
        if matches!(
            key.as_str(),
            "client_secret" | "client_token" | "access_token"
        ) {
            return Err(MigrateError::LooksLikeEdgerc { line, key });
        }
        let Some(section) = current.clone() else {
            return Err(syntax(
                "a setting before any [Section] header",
                "put it under [Exporter] or [Akamai]",
            ));
        };
        let value = clean_value(value);
        let entries = sections.entry(section.clone()).or_default();
        if let Some(previous) = entries.get(&key) {
            return Err(MigrateError::Duplicate {
                section: section_names[&section].clone(),
                key,
                first: previous.line,
                second: line,
            });
        }
        entries.insert(key, Entry { value, line });
    }

    let empty = BTreeMap::new();
    let exporter = sections.get("exporter").unwrap_or(&empty);
    let akamai = sections
        .get("akamai")
        .ok_or(MigrateError::MissingSection { section: "Akamai" })?;

    let mut ignored = Vec::new();
    for (section, known) in [
        ("exporter", &["polling_interval", "exporter_port"][..]),
        (
            "akamai",
            &[
                "edgerclocation",
                "cpcode",
                "deliverynetwork",
                "accountswitchkey",
            ][..],
        ),
    ] {
        if let Some(entries) = sections.get(section) {
            for (key, entry) in entries {
                if !known.contains(&key.as_str()) {
                    ignored.push(IgnoredKey {
                        section: section_names[section].clone(),
                        key: key.clone(),
                        line: entry.line,
                    });
                }
            }
        }
    }
    ignored.sort_by_key(|k| k.line);

    let polling_interval_seconds = match non_empty(exporter.get("polling_interval")) {
        None => EXPORTER_DEFAULT_POLLING_INTERVAL,
        Some(entry) => entry
            .value
            .parse::<u64>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| MigrateError::Invalid {
                section: "Exporter",
                key: "polling_interval",
                value: entry.value.clone(),
                line: entry.line,
                fix: "write a whole number of seconds greater than 0, e.g. polling_interval = 120"
                    .into(),
            })?,
    };

    let cp_entry = non_empty(akamai.get("cpcode")).ok_or(MigrateError::MissingKey {
        section: "Akamai",
        key: "cpcode",
        fix: "set the CP code the exporter watched, e.g. cpcode = 1209788",
    })?;
    let cp_code = Target::parse_cp_code(&cp_entry.value).map_err(|_| {
        let fix = if cp_entry.value.contains(',') {
            "the exporter watched one CP code per settings file: migrate one file per exporter, then merge their watch lists into one data source"
        } else {
            "use the digits of the CP code only, e.g. cpcode = 1209788"
        };
        MigrateError::Invalid {
            section: "Akamai",
            key: "cpcode",
            value: cp_entry.value.clone(),
            line: cp_entry.line,
            fix: fix.into(),
        }
    })?;

    let delivery = match akamai.get("deliverynetwork") {
        None => None,
        Some(entry) => {
            Delivery::parse_optional(&entry.value).map_err(|message| MigrateError::Invalid {
                section: "Akamai",
                key: "deliverynetwork",
                value: entry.value.clone(),
                line: entry.line,
                fix: message,
            })?
        }
    };

    let account_switch_key = match non_empty(akamai.get("accountswitchkey")) {
        None => None,
        Some(entry)
            if entry
                .value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()) =>
        {
            return Err(MigrateError::Invalid {
                section: "Akamai",
                key: "accountSwitchKey",
                value: entry.value.clone(),
                line: entry.line,
                fix: "an account switch key has no spaces, e.g. B-C-1IE2OH8:1-2RBL; leave it empty if you are not a partner or Akamai employee".into(),
            });
        }
        Some(entry) => Some(entry.value.clone()),
    };

    Ok(ExporterSettings {
        polling_interval_seconds,
        exporter_port: non_empty(exporter.get("exporter_port")).map(|e| e.value.clone()),
        edgerc_location: non_empty(akamai.get("edgerclocation")).map(|e| e.value.clone()),
        cp_code,
        delivery,
        account_switch_key,
        ignored,
    })
}

fn non_empty(entry: Option<&Entry>) -> Option<&Entry> {
    entry.filter(|e| !e.value.is_empty())
}

fn clean_value(raw: &str) -> String {
    let mut value = raw.trim();
    // An inline comment needs whitespace before it, so a `#` inside a path survives.
    for marker in [" ;", " #", "\t;", "\t#"] {
        if let Some(at) = value.find(marker) {
            value = value[..at].trim_end();
        }
    }
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            value = &value[1..value.len() - 1];
        }
    }
    value.trim().to_string()
}

/// Appends `text` as YAML comment lines of at most about 96 columns at `indent` spaces.
fn comment(out: &mut String, indent: usize, text: &str) {
    let pad = " ".repeat(indent);
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + 2 + line.len() + 1 + word.len() > 96 {
            let _ = writeln!(out, "{pad}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{pad}# {line}");
    }
}

/// A YAML double-quoted scalar that Grafana's provisioning reads back as exactly `value`.
///
/// JSON string syntax is valid YAML; `$` is doubled because Grafana expands `$VAR` in
/// provisioning files and reads `$$` as a literal `$`.
fn yaml_string(value: &str) -> String {
    serde_json::to_string(value)
        .expect("a string always serializes")
        .replace('$', "$$")
}

/// The data source provisioning YAML (apiVersion 1) equivalent to the exporter's settings.
///
/// Credentials stay where they were: the `.edgerc` the exporter read (`edgercPath`), or, when the
/// old file named none, `$AKAMAI_*` environment references in `secureJsonData`. No secret is ever
/// written. The old gauges and the queries replacing them are listed as comments at the end.
pub fn to_provisioning_yaml(s: &ExporterSettings, uid: &str) -> String {
    let mut out = String::new();
    let delivery = s.delivery.map(Delivery::as_str);
    let poll = s.polling_interval_seconds.max(MIN_POLL_INTERVAL_SECONDS);

    comment(
        &mut out,
        0,
        "Data source provisioning generated by `gpx_akamai_estats migrate-exporter` from the \
         Akamai eStats exporter's settings. Put it into Grafana's provisioning/datasources/ and \
         restart Grafana. The data source polls eStats and keeps the history itself: the \
         exporter, Prometheus and the hand-patched dashboard are no longer needed.",
    );
    if let Some(port) = &s.exporter_port {
        let _ = writeln!(
            out,
            "# exporter_port = {port} is gone: nothing scrapes the data source, Grafana queries it."
        );
    }
    for ignored in &s.ignored {
        let _ = writeln!(
            out,
            "# Not migrated, the exporter did not read it either: {ignored}"
        );
    }
    out.push_str("apiVersion: 1\ndatasources:\n");
    let _ = writeln!(
        out,
        "  - name: {}",
        yaml_string(&format!("Akamai eStats (cpCode {})", s.cp_code))
    );
    let _ = writeln!(out, "    uid: {}", yaml_string(uid));
    let _ = writeln!(out, "    type: {}", crate::PLUGIN_ID);
    out.push_str("    access: proxy\n    editable: true\n    jsonData:\n");

    match &s.edgerc_location {
        Some(path) => {
            comment(
                &mut out,
                6,
                "Grafana's server reads this file (not your workstation): mount the .edgerc \
                 there, readable by the grafana user, and fix the path if it differs.",
            );
            if path.starts_with('~') {
                comment(
                    &mut out,
                    6,
                    "The exporter's path starts with ~, which Grafana does not expand: write it \
                     as an absolute path.",
                );
            }
            let _ = writeln!(out, "      edgercPath: {}", yaml_string(path));
            out.push_str("      edgercSection: \"default\"\n");
        }
        None => {
            comment(
                &mut out,
                6,
                "The exporter's settings named no .edgerc: the credentials come from the \
                 environment of the Grafana server (see secureJsonData below).",
            );
            out.push_str("      host: ${AKAMAI_HOST}\n");
        }
    }
    if let Some(key) = &s.account_switch_key {
        let _ = writeln!(out, "      accountSwitchKey: {}", yaml_string(key));
    }
    if let Some(d) = delivery {
        let _ = writeln!(out, "      delivery: {d}");
    }
    if s.polling_interval_seconds < MIN_POLL_INTERVAL_SECONDS {
        comment(
            &mut out,
            6,
            &format!(
                "The exporter polled every {} s; eStats samples nine seconds of the last two \
                 minutes and allows 40 calls a minute, so {MIN_POLL_INTERVAL_SECONDS} s is the floor.",
                s.polling_interval_seconds
            ),
        );
    }
    let _ = writeln!(out, "      pollIntervalSeconds: {poll}");
    let _ = writeln!(out, "      historyPath: {}", yaml_string(HISTORY_PATH));
    out.push_str("      watch:\n");
    let _ = writeln!(out, "        - cpCode: {}", s.cp_code);
    if let Some(d) = delivery {
        let _ = writeln!(out, "          delivery: {d}");
    }
    if s.edgerc_location.is_none() {
        out.push_str(
            "    secureJsonData:\n\
             \x20     clientToken: ${AKAMAI_CLIENT_TOKEN}\n\
             \x20     clientSecret: ${AKAMAI_CLIENT_SECRET}\n\
             \x20     accessToken: ${AKAMAI_ACCESS_TOKEN}\n",
        );
    }

    out.push_str("#\n");
    comment(
        &mut out,
        0,
        &format!(
            "The exporter's Prometheus gauges and the panel query replacing each (with \
             \"targetType\": \"cpCode\", \"cpCode\": \"{}\" added):",
            s.cp_code
        ),
    );
    for (metric, query) in metric_mapping() {
        let _ = writeln!(out, "#   {metric:<10}  {query}");
    }
    out
}

/// Each gauge of the old exporter (`edge_1xx` .. `origin_5xx`, the share of that status class in
/// percent) and the JSON of the panel query that gives the same series, minus the target.
pub fn metric_mapping() -> Vec<(&'static str, String)> {
    const METRICS: [&str; 10] = [
        "edge_1xx",
        "edge_2xx",
        "edge_3xx",
        "edge_4xx",
        "edge_5xx",
        "origin_1xx",
        "origin_2xx",
        "origin_3xx",
        "origin_4xx",
        "origin_5xx",
    ];
    METRICS
        .iter()
        .map(|&metric| {
            let (side, class) = metric.split_once('_').expect("every name has a side");
            // Written by hand to keep the keys in the order of the query editor.
            let query = format!(
                r#"{{"queryType":"timeseries","side":"{side}","groupBy":"class","metric":"percentage","statusFilter":"{class}"}}"#
            );
            (metric, query)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/fixtures/exportersettings.sample");

    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn first_datasource(doc: &serde_yaml::Value) -> &serde_yaml::Value {
        &doc["datasources"][0]
    }

    #[test]
    fn parses_the_sample() {
        let s = parse_exporter_settings(SAMPLE).unwrap();
        assert_eq!(
            s,
            ExporterSettings {
                polling_interval_seconds: 120,
                exporter_port: Some("9877".into()),
                edgerc_location: Some("/home/ops/.edgerc".into()),
                cp_code: 1209788,
                delivery: Some(Delivery::StandardTls),
                account_switch_key: Some("B-C-1IE2OH8:1-2RBL".into()),
                ignored: vec![],
            }
        );
    }

    #[test]
    fn sample_becomes_equivalent_provisioning() {
        let s = parse_exporter_settings(SAMPLE).unwrap();
        let text = to_provisioning_yaml(&s, "akamai-estats");
        let doc = yaml(&text);
        assert_eq!(doc["apiVersion"], serde_yaml::Value::from(1));
        let ds = first_datasource(&doc);
        assert_eq!(ds["uid"].as_str(), Some("akamai-estats"));
        assert_eq!(ds["type"].as_str(), Some("akamai-estats-datasource"));
        assert_eq!(ds["name"].as_str(), Some("Akamai eStats (cpCode 1209788)"));
        let j = &ds["jsonData"];
        assert_eq!(j["edgercPath"].as_str(), Some("/home/ops/.edgerc"));
        assert_eq!(j["edgercSection"].as_str(), Some("default"));
        assert_eq!(j["accountSwitchKey"].as_str(), Some("B-C-1IE2OH8:1-2RBL"));
        assert_eq!(j["delivery"].as_str(), Some("STANDARD_TLS"));
        assert_eq!(j["pollIntervalSeconds"].as_u64(), Some(120));
        assert_eq!(j["historyPath"].as_str(), Some(HISTORY_PATH));
        assert!(ds.get("secureJsonData").is_none(), "{text}");
        assert!(text.contains("exporter_port = 9877 is gone"), "{text}");

        // The watch list is the shape the settings module checks.
        let watch: Vec<crate::target::TargetSpec> =
            serde_yaml::from_value(j["watch"].clone()).unwrap();
        assert_eq!(watch.len(), 1);
        assert_eq!(
            watch[0].check().unwrap(),
            Target::cp_code(1209788, Some(Delivery::StandardTls))
        );
    }

    #[test]
    fn every_old_metric_is_mapped_in_the_output() {
        let s = parse_exporter_settings(SAMPLE).unwrap();
        let text = to_provisioning_yaml(&s, DEFAULT_UID);
        let mapping = metric_mapping();
        assert_eq!(mapping.len(), 10);
        for (metric, query) in &mapping {
            assert!(text.contains(metric), "{metric} missing");
            let q: serde_json::Value = serde_json::from_str(query).unwrap();
            let (side, class) = metric.split_once('_').unwrap();
            assert_eq!(q["queryType"], "timeseries");
            assert_eq!(q["side"], side);
            assert_eq!(q["groupBy"], "class");
            assert_eq!(q["metric"], "percentage");
            assert_eq!(q["statusFilter"], class);
        }
    }

    #[test]
    fn fast_polling_is_clamped_with_a_comment() {
        let text = SAMPLE.replace("polling_interval = 120", "polling_interval = 10");
        let s = parse_exporter_settings(&text).unwrap();
        assert_eq!(s.polling_interval_seconds, 10);
        let out = to_provisioning_yaml(&s, DEFAULT_UID);
        let doc = yaml(&out);
        assert_eq!(
            first_datasource(&doc)["jsonData"]["pollIntervalSeconds"].as_u64(),
            Some(MIN_POLL_INTERVAL_SECONDS)
        );
        assert!(out.contains("The exporter polled every 10 s"), "{out}");
    }

    #[test]
    fn keys_and_sections_are_case_insensitive_and_comments_skipped() {
        let text = "# comment\n\n[exporter]\nPOLLING_INTERVAL: 300 ; five minutes\n\
                    [AKAMAI]\n; old\nCpCode = '42'\nDeliveryNetwork = enhanced_tls\n\
                    ACCOUNTSWITCHKEY =\nEdgercLocation = \"/etc/edgerc#1\"\n";
        let s = parse_exporter_settings(text).unwrap();
        assert_eq!(s.polling_interval_seconds, 300);
        assert_eq!(s.cp_code, 42);
        assert_eq!(s.delivery, Some(Delivery::EnhancedTls));
        assert_eq!(s.account_switch_key, None);
        assert_eq!(s.edgerc_location.as_deref(), Some("/etc/edgerc#1"));
        assert_eq!(s.exporter_port, None);
    }

    #[test]
    fn missing_exporter_section_uses_the_exporter_default() {
        let s = parse_exporter_settings("[Akamai]\ncpcode = 7\n").unwrap();
        assert_eq!(
            s.polling_interval_seconds,
            EXPORTER_DEFAULT_POLLING_INTERVAL
        );
        assert_eq!(s.delivery, None);
        assert_eq!(s.edgerc_location, None);
    }

    #[test]
    fn without_edgerc_credentials_come_from_env_references() {
        let s = parse_exporter_settings("[Akamai]\ncpcode = 7\n").unwrap();
        let out = to_provisioning_yaml(&s, "x");
        let doc = yaml(&out);
        let ds = first_datasource(&doc);
        assert_eq!(ds["jsonData"]["host"].as_str(), Some("${AKAMAI_HOST}"));
        assert!(ds["jsonData"].get("edgercPath").is_none());
        assert!(ds["jsonData"].get("delivery").is_none());
        assert!(ds["jsonData"]["watch"][0].get("delivery").is_none());
        for key in ["clientToken", "clientSecret", "accessToken"] {
            let v = ds["secureJsonData"][key].as_str().unwrap();
            assert!(v.starts_with("${AKAMAI_") && v.ends_with('}'), "{key}: {v}");
        }
    }

    #[test]
    fn values_are_quoted_and_dollars_escaped_for_grafana() {
        let text = "[Akamai]\ncpcode = 7\nedgerclocation = /srv/$HOME/\"x\": y\n\
                    accountSwitchKey = 1-2:3\n";
        let s = parse_exporter_settings(text).unwrap();
        let out = to_provisioning_yaml(&s, "a\"b");
        let doc = yaml(&out);
        let ds = first_datasource(&doc);
        assert_eq!(ds["uid"].as_str(), Some("a\"b"));
        // Grafana turns `$$` back into `$` instead of expanding $HOME.
        assert_eq!(
            ds["jsonData"]["edgercPath"].as_str(),
            Some("/srv/$$HOME/\"x\": y")
        );
        assert_eq!(ds["jsonData"]["accountSwitchKey"].as_str(), Some("1-2:3"));
    }

    #[test]
    fn tilde_path_gets_a_warning() {
        let s = parse_exporter_settings("[Akamai]\ncpcode=1\nedgerclocation=~/.edgerc\n").unwrap();
        assert!(to_provisioning_yaml(&s, "u").contains("does not expand"));
    }

    #[test]
    fn unknown_keys_are_listed_not_fatal() {
        let text = format!("{SAMPLE}\ncpcod = 1\n");
        let s = parse_exporter_settings(&text).unwrap();
        assert_eq!(
            s.ignored,
            vec![IgnoredKey {
                section: "Akamai".into(),
                key: "cpcod".into(),
                line: 12
            }]
        );
        assert_eq!(s.ignored[0].to_string(), "[Akamai] cpcod (line 12)");
        assert!(to_provisioning_yaml(&s, "u").contains("[Akamai] cpcod (line 12)"));
    }

    #[test]
    fn bad_cp_code_names_key_and_fix() {
        let err = parse_exporter_settings(&SAMPLE.replace("1209788", "12O9788")).unwrap_err();
        assert!(matches!(
            err,
            MigrateError::Invalid {
                section: "Akamai",
                key: "cpcode",
                line: 8,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("[Akamai] cpcode") && msg.contains("digits"),
            "{msg}"
        );

        let err = parse_exporter_settings(&SAMPLE.replace("1209788", "1,2")).unwrap_err();
        assert!(err.to_string().contains("one CP code per settings file"));
    }

    #[test]
    fn missing_cp_code_and_section() {
        let err =
            parse_exporter_settings(&SAMPLE.replace("cpcode = 1209788", "cpcode =")).unwrap_err();
        assert_eq!(
            err,
            MigrateError::MissingKey {
                section: "Akamai",
                key: "cpcode",
                fix: "set the CP code the exporter watched, e.g. cpcode = 1209788",
            }
        );
        let err = parse_exporter_settings("[Exporter]\npolling_interval = 60\n").unwrap_err();
        assert_eq!(err, MigrateError::MissingSection { section: "Akamai" });
        assert_eq!(
            parse_exporter_settings("").unwrap_err(),
            MigrateError::MissingSection { section: "Akamai" }
        );
    }

    #[test]
    fn bad_polling_interval_and_delivery() {
        for bad in [
            "polling_interval = 2m",
            "polling_interval = 0",
            "polling_interval = -5",
        ] {
            let err = parse_exporter_settings(&SAMPLE.replace("polling_interval = 120", bad))
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    MigrateError::Invalid {
                        key: "polling_interval",
                        line: 3,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let err =
            parse_exporter_settings(&SAMPLE.replace("STANDARD_TLS", "FF_STANDARD")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("[Akamai] deliverynetwork") && msg.contains("STANDARD_TLS, ENHANCED_TLS"),
            "{msg}"
        );
        let err =
            parse_exporter_settings(&SAMPLE.replace("B-C-1IE2OH8:1-2RBL", "B-C 1")).unwrap_err();
        assert!(matches!(
            err,
            MigrateError::Invalid {
                key: "accountSwitchKey",
                ..
            }
        ));
    }

    #[test]
    fn syntax_errors_name_the_line_without_echoing_it() {
        let err = parse_exporter_settings("[Akamai\ncpcode = 1\n").unwrap_err();
        assert!(matches!(err, MigrateError::Syntax { line: 1, .. }));
        let err = parse_exporter_settings("cpcode = 1\n[Akamai]\n").unwrap_err();
        assert!(err.to_string().contains("before any [Section]"));
        let err =
            parse_exporter_settings("[Akamai]\ncpcode = 1\nsecret-ish junk line\n").unwrap_err();
        assert_eq!(
            err,
            MigrateError::Syntax {
                line: 3,
                problem: "neither a [Section] header nor a key = value line",
                fix: "write settings as key = value, or start the line with ; to comment it out",
            }
        );
        assert!(!err.to_string().contains("junk"));
        let err = parse_exporter_settings("[]\n").unwrap_err();
        assert!(matches!(err, MigrateError::Syntax { line: 1, .. }));
        let err = parse_exporter_settings("[Akamai]\n= 5\n").unwrap_err();
        assert!(matches!(err, MigrateError::Syntax { line: 2, .. }));
    }

    #[test]
    fn duplicate_keys_are_rejected_like_configparser() {
        let err =
            parse_exporter_settings("[Akamai]\ncpcode = 1\n[akamai]\nCPCODE = 2\n").unwrap_err();
        assert_eq!(
            err,
            MigrateError::Duplicate {
                section: "Akamai".into(),
                key: "cpcode".into(),
                first: 2,
                second: 4,
            }
        );
    }

    #[test]
    fn an_edgerc_is_recognised_and_its_secret_not_echoed() {
        let edgerc =
            "[default]\nclient_secret = abcdEcSnaAtasdas123=\nhost = akab-x.luna.akamaiapis.net\n\
                      access_token = akab-a\nClient_token = akab-b\n";
        let err = parse_exporter_settings(edgerc).unwrap_err();
        assert_eq!(
            err,
            MigrateError::LooksLikeEdgerc {
                line: 2,
                key: "client_secret".into()
            }
        );
        let msg = err.to_string();
        assert!(!msg.contains("abcd") && !msg.contains("akab-"), "{msg}");
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let text = format!("\u{feff}{}", SAMPLE.replace('\n', "\r\n"));
        assert_eq!(
            parse_exporter_settings(&text).unwrap(),
            parse_exporter_settings(SAMPLE).unwrap()
        );
    }
}
