//! Checks the deployment files (docker-compose.yml, Dockerfile, .dockerignore, provisioning/,
//! docs/) without a Docker engine or a Grafana server: they parse, they agree with each other,
//! with plugin.json and with the query model of docs/design.md, and the Dockerfile builds with
//! the Makefile's targets (which `make -n` shows).
//!
//! `dashboard_queries`, `variable_defaults` and `interpolate` are meant for reuse by the test
//! that runs every panel query through the plugin executable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;
use common::dashboard::{dashboard_panels, dashboard_queries, interpolate, variable_defaults};
use serde_yaml::Value as Yaml;

const PLUGIN_ID: &str = "akamai-estats-datasource";
const PLUGIN_DIR: &str = "/var/lib/grafana/plugins/akamai-estats-datasource";
/// The executable, as Grafana names it without its `_<os>_<arch>` suffix.
const EXE: &str = "gpx_akamai_estats";
const HISTORY_DIR: &str = "/var/lib/grafana/akamai-estats";
const HISTORY_VOLUME: &str = "akamai-estats-history";
const SIM_UID: &str = "akamai-estats-sim";
const REAL_UID: &str = "akamai-estats";
const DASHBOARD_UID: &str = "akamai-estats-overview";

// ---------------------------------------------------------------------------------------------
// Reusable helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Yaml {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn dashboard() -> Json {
    json_file("provisioning/dashboards/akamai-estats.json")
}

fn json_file(rel: &str) -> Json {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"))
}

/// Every dashboard the provider loads (each JSON file of provisioning/dashboards), by path.
fn dashboards() -> Vec<(String, Json)> {
    let mut rels: Vec<String> = std::fs::read_dir(repo().join("provisioning/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("provisioning/dashboards/{name}"))
        .collect();
    rels.sort();
    assert!(
        rels.len() >= 2,
        "the overview and the fleet dashboards: {rels:?}"
    );
    rels.into_iter()
        .map(|rel| (rel.clone(), json_file(&rel)))
        .collect()
}

fn fleet_dashboard() -> Json {
    json_file("provisioning/dashboards/akamai-estats-fleet.json")
}

/// Names referenced as `$name`, `${name}` or `[[name]]` in a string.
fn variable_references(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = s.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let braced = bytes.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let mut end = start;
            while end < bytes.len() && ident(bytes[end]) {
                end += 1;
            }
            if end > start {
                names.push(s[start..end].to_string());
            }
            i = end.max(i + 1);
        } else if s[i..].starts_with("[[") {
            if let Some(close) = s[i..].find("]]") {
                names.push(s[i + 2..i + close].to_string());
                i += close + 2;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
    names
}

fn is_variable(s: &str) -> bool {
    let refs = variable_references(s);
    refs.len() == 1 && (s == format!("${}", refs[0]) || s == format!("${{{}}}", refs[0]))
}

/// Checks one query against the query model of docs/design.md. Template variables stand for any
/// value of their field.
pub fn check_query(q: &Json) -> Result<(), String> {
    // Grafana's own keys, then the plugin's.
    let known =
        |key: &str| ["refId", "datasource"].contains(&key) || estats::query::FIELDS.contains(&key);
    let obj = q.as_object().ok_or("a query is a JSON object")?;
    for key in obj.keys() {
        if !known(key) {
            return Err(format!("unknown key {key:?}"));
        }
    }
    let text = |key: &str, default: &'static str| -> Result<String, String> {
        match obj.get(key) {
            None => Ok(default.to_string()),
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{key} must be a string, got {other}")),
        }
    };
    let one_of = |key: &str, value: &str, allowed: &[&str]| -> Result<(), String> {
        if allowed.contains(&value) || is_variable(value) {
            Ok(())
        } else {
            Err(format!("{key} {value:?} is not one of {allowed:?}"))
        }
    };
    if text("refId", "")?.is_empty() {
        return Err("refId missing".into());
    }
    let query_type = text("queryType", "distribution")?;
    one_of(
        "queryType",
        &query_type,
        &["distribution", "timeseries", "summary", "topIps", "events"],
    )?;
    let target_type = text("targetType", "cpCode")?;
    one_of("targetType", &target_type, &["cpCode", "url"])?;
    let key = if target_type == "url" {
        "url"
    } else {
        "cpCode"
    };
    check_targets(key, obj.get(key))?;
    match obj.get("threshold") {
        None => {}
        Some(t) if query_type == "events" => {
            let t = t.as_f64().ok_or("threshold must be a number (percent)")?;
            if !(t > 0.0 && t <= 100.0) {
                return Err(format!("threshold {t} is not in (0, 100]"));
            }
        }
        Some(_) => {
            return Err(format!(
                "threshold has no meaning for queryType {query_type}"
            ))
        }
    }
    one_of(
        "delivery",
        &text("delivery", "")?,
        &["", "STANDARD_TLS", "ENHANCED_TLS"],
    )?;
    one_of("side", &text("side", "both")?, &["edge", "origin", "both"])?;
    match query_type.as_str() {
        "distribution" | "timeseries" => {
            let group_by = text("groupBy", "code")?;
            let metric = text("metric", "percentage")?;
            let groups: &[&str] = if query_type == "distribution" {
                &["code", "class"]
            } else {
                &["code", "class", "total"]
            };
            one_of("groupBy", &group_by, groups)?;
            let metrics: &[&str] = if group_by == "total" {
                &["hits", "errors", "failurePercentage"]
            } else {
                &["percentage", "hits"]
            };
            one_of("metric", &metric, metrics)
                .map_err(|e| format!("{e} (for groupBy {group_by})"))?;
        }
        _ => {
            for key in ["groupBy", "metric"] {
                if obj.contains_key(key) {
                    return Err(format!("{key} has no meaning for queryType {query_type}"));
                }
            }
        }
    }
    let filter = text("statusFilter", "")?;
    if !filter.trim().is_empty() && !is_variable(&filter) {
        for token in filter.split(',').map(str::trim) {
            let b = token.as_bytes();
            let class = b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && &token[1..] == "xx";
            let code = b.len() == 3
                && (b'1'..=b'5').contains(&b[0])
                && b[1..].iter().all(u8::is_ascii_digit);
            if !(class || code) {
                return Err(format!(
                    "statusFilter entry {token:?} is neither a class (5xx) nor a code (404)"
                ));
            }
        }
    }
    Ok(())
}

/// The target forms of docs/design.md ("Many targets per query"): one CP code or URL, a list (CP
/// codes separated by commas and/or whitespace, URLs by whitespace, or a JSON list), or `*`; at
/// most `MAX_TARGETS_PER_QUERY` distinct. Variables stand for any of these.
fn check_targets(key: &str, value: Option<&Json>) -> Result<Vec<String>, String> {
    let items: Vec<String> = match value {
        Some(Json::Number(n)) if key == "cpCode" && n.is_u64() => vec![n.to_string()],
        Some(Json::String(s)) if key == "cpCode" => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Json::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Json::Array(list)) => list
            .iter()
            .map(|v| match v {
                Json::String(s) => Ok(s.trim().to_string()),
                Json::Number(n) if key == "cpCode" && n.is_u64() => Ok(n.to_string()),
                other => Err(format!("{key} list entry {other} is not a {key}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("{key} is missing or not a {key}: {other:?}")),
    };
    if items.is_empty() {
        return Err(format!("{key} is empty"));
    }
    if items.iter().any(|i| i == "*") {
        return if items.len() == 1 {
            Ok(items)
        } else {
            Err(format!("{key}: * stands alone"))
        };
    }
    for item in &items {
        let ok = is_variable(item)
            || if key == "cpCode" {
                item.bytes().all(|b| b.is_ascii_digit())
            } else {
                item.starts_with("https://") || item.starts_with("http://")
            };
        if !ok {
            return Err(format!("{key} entry {item:?} is not a {key} or a variable"));
        }
    }
    let distinct: BTreeSet<&String> = items.iter().collect();
    if distinct.len() > estats::query::MAX_TARGETS_PER_QUERY {
        return Err(format!("{key}: {} targets", distinct.len()));
    }
    Ok(items)
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and Makefile readers

/// One Dockerfile instruction: the stage it belongs to (`None` before the first `FROM`), its
/// keyword in upper case and its arguments, continuation lines joined.
struct Instruction {
    stage: Option<usize>,
    keyword: String,
    args: String,
}

struct Dockerfile {
    /// The image of each `FROM`, in order.
    stages: Vec<String>,
    instructions: Vec<Instruction>,
}

fn dockerfile() -> Dockerfile {
    let mut stages = Vec::new();
    let mut instructions = Vec::new();
    let mut line = String::new();
    for raw in read("Dockerfile").lines() {
        let raw = raw.trim();
        if raw.starts_with('#') || (raw.is_empty() && line.is_empty()) {
            continue;
        }
        match raw.strip_suffix('\\') {
            Some(part) => {
                line.push_str(part);
                continue;
            }
            None => line.push_str(raw),
        }
        let text = std::mem::take(&mut line);
        let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let image = args.split_whitespace().find(|w| !w.starts_with("--"));
            stages.push(image.expect("FROM names an image").to_string());
        }
        instructions.push(Instruction {
            stage: stages.len().checked_sub(1),
            keyword,
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    Dockerfile {
        stages,
        instructions,
    }
}

impl Dockerfile {
    /// The arguments of every `keyword` instruction of stage `stage`.
    fn stage(&self, stage: Option<usize>, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|i| i.stage == stage && i.keyword == keyword)
            .map(|i| i.args.as_str())
            .collect()
    }

    fn final_stage(&self, keyword: &str) -> Vec<&str> {
        self.stage(Some(self.stages.len() - 1), keyword)
    }

    /// The default of a global `ARG name=default` (declared before the first `FROM`).
    fn global_arg(&self, name: &str) -> Option<String> {
        self.stage(None, "ARG")
            .into_iter()
            .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    /// Host sources of `COPY`/`ADD` without `--from`.
    fn context_sources(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in &self.instructions {
            if i.keyword != "COPY" && i.keyword != "ADD" {
                continue;
            }
            let words: Vec<&str> = i.args.split_whitespace().collect();
            if words.iter().any(|w| w.starts_with("--from")) {
                continue;
            }
            let paths: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
            if let Some((_, sources)) = paths.split_last() {
                out.extend(sources.iter().map(|s| s.to_string()));
            }
        }
        out
    }
}

/// What `make -n` would run for `target` with `args`: make's own reading of the Makefile.
fn make_dry_run(target: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("make")
        .arg("-n")
        .arg(target)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make -n {target} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `X.Y.Z` of a version such as `13.2.3`, `^12.4.2`, `>=12.3.0-0` (pre-release parts dropped).
fn version(v: &str) -> (u32, u32, u32) {
    let v = v.trim_start_matches(|c: char| !c.is_ascii_digit());
    let v = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u32> = v
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("{v:?} is not X.Y.Z")))
        .collect();
    match parts.as_slice() {
        [x, y, z] => (*x, *y, *z),
        _ => panic!("{v:?} is not X.Y.Z"),
    }
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

fn compose() -> Yaml {
    yaml("docker-compose.yml")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(s.is_mapping(), "docker-compose.yml has no service {name:?}");
    s
}

fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Null => String::new(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                };
                (k.as_str().unwrap().to_string(), value)
            })
            .collect(),
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| {
                let (k, v) = i
                    .as_str()
                    .unwrap()
                    .split_once('=')
                    .unwrap_or((i.as_str().unwrap(), ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// (source, target) of each short-syntax volume of a service.
fn volumes(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| {
            let parts: Vec<&str> = v
                .as_str()
                .expect("short volume syntax")
                .split(':')
                .collect();
            assert!(parts.len() >= 2, "volume {v:?} needs source:target");
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

#[test]
fn compose_has_the_grafana_service_and_its_settings() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    assert_eq!(
        grafana["build"]["context"].as_str(),
        Some("."),
        "grafana builds the Dockerfile"
    );
    let ports: Vec<&str> = grafana["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(ports.contains(&"3000:3000"), "{ports:?}");

    for name in ["grafana", "grafana-dev"] {
        let env = environment(service(&compose, name));
        assert_eq!(
            env.get("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS")
                .map(String::as_str),
            Some(PLUGIN_ID),
            "{name}"
        );
        // Every variable the data source provisioning expands reaches Grafana, from the host.
        for var in provisioning_env_references() {
            let value = env
                .get(&var)
                .unwrap_or_else(|| panic!("{name} does not pass {var} to Grafana"));
            assert_eq!(
                value,
                &format!("${{{var}:-}}"),
                "{name}: {var} is passed through"
            );
        }
        // No value of the environment is a literal secret: only pass-through or plain settings.
        for (key, value) in &env {
            if key.contains("SECRET") || key.contains("TOKEN") || key.contains("PASSWORD") {
                assert!(
                    value.starts_with("${") && value.ends_with('}'),
                    "{name}: {key}"
                );
            }
        }
        let history: Vec<_> = volumes(service(&compose, name))
            .into_iter()
            .filter(|(_, target)| target == HISTORY_DIR)
            .collect();
        assert_eq!(
            history,
            vec![(HISTORY_VOLUME.to_string(), HISTORY_DIR.to_string())],
            "{name}"
        );
    }
    assert!(
        compose["volumes"]
            .as_mapping()
            .is_some_and(|v| v.contains_key(HISTORY_VOLUME)),
        "the named volume {HISTORY_VOLUME} is declared"
    );

    let dev = service(&compose, "grafana-dev");
    let dev_volumes = volumes(dev);
    assert!(
        dev_volumes.contains(&("./dist".into(), PLUGIN_DIR.into())),
        "{dev_volumes:?}"
    );
    assert!(dev_volumes.contains(&("./provisioning".into(), "/etc/grafana/provisioning".into())));
    assert!(
        dev["profiles"].as_sequence().is_some_and(|p| !p.is_empty()),
        "grafana-dev is opt-in (a profile), so `docker compose up` starts one Grafana"
    );
}

/// `$VAR` / `${VAR}` references of the data source provisioning file.
fn provisioning_env_references() -> BTreeSet<String> {
    let text = read("provisioning/datasources/akamai-estats.yaml");
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(variable_references)
        .collect()
}

/// `${GRAFANA_VERSION:-<default>}` in a compose value: the default, or a panic naming `what`.
fn compose_version_default(value: &str, what: &str) -> String {
    let start = value
        .find("${GRAFANA_VERSION:-")
        .unwrap_or_else(|| panic!("{what} {value:?} does not take ${{GRAFANA_VERSION:-...}}"));
    let rest = &value[start + "${GRAFANA_VERSION:-".len()..];
    rest[..rest.find('}').expect("closing brace")].to_string()
}

/// The Grafana the deployment runs is a variable with one default, the newest 13.x, no older
/// than plugin.json's floor; the frontend is built against a Grafana between the two.
#[test]
fn grafana_versions_agree() {
    let docker = dockerfile();
    let default = docker
        .global_arg("GRAFANA_VERSION")
        .expect("the Dockerfile declares ARG GRAFANA_VERSION=<default> before its first FROM");
    assert_eq!(
        docker.stages.last().map(String::as_str),
        Some("grafana/grafana:${GRAFANA_VERSION}")
    );
    assert_eq!(version(&default).0, 13, "the default is a 13.x: {default}");

    let compose = compose();
    let grafana = service(&compose, "grafana");
    let uses = [
        (
            "grafana build arg",
            grafana["build"]["args"]["GRAFANA_VERSION"].as_str(),
            "",
        ),
        (
            "grafana image",
            grafana["image"].as_str(),
            "akamai-estats-grafana:",
        ),
        (
            "grafana-dev image",
            service(&compose, "grafana-dev")["image"].as_str(),
            "grafana/grafana:",
        ),
    ];
    for (what, value, prefix) in uses {
        let value = value.unwrap_or_else(|| panic!("docker-compose.yml lacks the {what}"));
        assert!(value.starts_with(prefix), "{what}: {value}");
        assert_eq!(
            compose_version_default(value, what),
            default,
            "{what} and the Dockerfile default to one Grafana version"
        );
    }

    let plugin: Json = serde_json::from_str(&read("plugin.json")).expect("plugin.json is JSON");
    assert_eq!(plugin["id"], PLUGIN_ID);
    let dependency = plugin["dependencies"]["grafanaDependency"]
        .as_str()
        .expect("plugin.json has dependencies.grafanaDependency");
    let floor = dependency.strip_prefix(">=").unwrap_or_else(|| {
        panic!("grafanaDependency {dependency:?} is a floor (>=X.Y.Z or >=X.Y.Z-0)")
    });
    assert!(
        version(floor) <= version(&default),
        "the default Grafana {default} is older than plugin.json's floor {dependency}"
    );

    let package: Json = serde_json::from_str(&read("frontend/package.json"))
        .expect("frontend/package.json is JSON");
    let mut seen = 0;
    for (name, pin) in package["dependencies"].as_object().into_iter().flatten() {
        // The packages versioned with Grafana itself (not its tooling: eslint config, e2e, ...).
        if [
            "@grafana/data",
            "@grafana/runtime",
            "@grafana/ui",
            "@grafana/schema",
        ]
        .contains(&name.as_str())
        {
            seen += 1;
            let pin = pin.as_str().unwrap_or_default();
            assert!(
                version(floor) <= version(pin) && version(pin) <= version(&default),
                "{name} {pin} is outside the Grafana versions the plugin runs on ({dependency}, default {default})"
            );
        }
    }
    assert!(
        seen > 0,
        "frontend/package.json depends on @grafana/* packages"
    );
}

/// Docker runs the images of its own machine: nothing forces a platform (emulation).
#[test]
fn compose_runs_on_the_host_platform() {
    let compose = compose();
    for (name, service) in compose["services"].as_mapping().expect("services") {
        assert!(
            service.get("platform").is_none(),
            "service {name:?} forces platform {:?}",
            service["platform"]
        );
    }
}

#[test]
fn compose_host_paths_exist() {
    let compose = compose();
    for (name, service) in compose["services"].as_mapping().expect("services") {
        for (source, _) in volumes(service) {
            if !(source.starts_with('.') || source.starts_with('/')) {
                continue; // a named volume
            }
            let rel = source.trim_start_matches("./");
            if rel == "dist" {
                // Build output: `make dist` must produce it.
                assert!(
                    make_dry_run("dist", &[]).contains("dist/"),
                    "make dist writes no dist/, but {name:?} mounts ./dist"
                );
                continue;
            }
            assert!(
                repo().join(rel).exists(),
                "{name:?} mounts {source}, which is not in the repository"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and Makefile

/// The image builds with the Makefile's targets, for the platform it is built for, so it holds
/// what `make dist` builds and no build command is written twice.
#[test]
fn dockerfile_builds_the_plugin_with_make() {
    let docker = dockerfile();
    assert_eq!(
        docker.stages,
        [
            "rust:1-bookworm",
            "node:20-bookworm",
            "grafana/grafana:${GRAFANA_VERSION}"
        ],
    );
    let runs = |stage: usize| docker.stage(Some(stage), "RUN").join("\n");
    assert!(
        docker.stage(Some(0), "ARG").contains(&"TARGETARCH")
            && runs(0).ends_with("make dist-backend ARCH=${TARGETARCH}"),
        "the backend stage runs make dist-backend for the build platform: {}",
        runs(0)
    );
    assert!(
        runs(1).contains("make frontend-deps") && runs(1).ends_with("make dist-frontend"),
        "the frontend stage runs make dist-frontend: {}",
        runs(1)
    );
    for i in &docker.instructions {
        if i.keyword == "RUN" {
            for tool in ["cargo ", "npm ", "npx ", "rustc ", "webpack"] {
                assert!(
                    !i.args.contains(tool),
                    "RUN {} calls {tool}directly: the Makefile is where builds are written",
                    i.args
                );
            }
        }
    }

    assert!(docker.final_stage("ARG").contains(&"TARGETARCH"));
    let copies = docker.final_stage("COPY");
    assert!(
        copies.contains(&&*format!(
            "--from=backend --chmod=0755 /src/dist/{EXE}_linux_${{TARGETARCH}} {PLUGIN_DIR}/"
        )),
        "the executable of the build platform lands in the plugin folder, executable: {copies:?}"
    );
    // plugin.json comes with the frontend build's dist/ (the build stamps its date there).
    assert!(
        copies.contains(&&*format!("--from=frontend /src/dist/ {PLUGIN_DIR}/")),
        "the frontend's dist/ (plugin.json, module.js, img/) lands in the plugin folder: {copies:?}"
    );
    assert!(
        copies.contains(&"provisioning/ /etc/grafana/provisioning/"),
        "{copies:?}"
    );
    let env = docker.final_stage("ENV").join(" ");
    assert!(
        env.contains(&format!(
            "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS={PLUGIN_ID}"
        )),
        "{env}"
    );
    let runs = docker.final_stage("RUN").join(" ");
    assert!(
        runs.contains(HISTORY_DIR),
        "the image creates the history directory: {runs}"
    );
}

/// `make dist` builds a static executable for the machine it runs on, named as Grafana looks for
/// it; ARCH (Docker's TARGETARCH) picks another.
#[test]
fn make_dist_builds_for_the_machine_it_runs_on() {
    for (arch, triple) in [
        ("amd64", "x86_64-unknown-linux-gnu"),
        ("arm64", "aarch64-unknown-linux-gnu"),
    ] {
        let plan = make_dry_run("dist", &[&format!("ARCH={arch}")]);
        for expected in [
            "RUSTFLAGS=\"-C target-feature=+crt-static\"".to_string(),
            format!("--release --target {triple} --bin {EXE}"),
            format!("cp target/{triple}/release/{EXE} dist/{EXE}_linux_{arch}"),
            "npm run build".to_string(),
        ] {
            assert!(
                plan.contains(&expected),
                "make dist ARCH={arch} lacks {expected:?}:\n{plan}"
            );
        }
    }
    for (uname, arch) in [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
    ] {
        let plan = make_dry_run("dist-backend", &[&format!("UNAME_M={uname}")]);
        assert!(
            plan.contains(&format!("dist/{EXE}_linux_{arch}")),
            "uname -m {uname}:\n{plan}"
        );
    }
    let here = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert!(make_dry_run("dist-backend", &[]).contains(&format!("dist/{EXE}_linux_{here}")));

    // An architecture the plugin is not built for stops before compiling anything.
    let out = std::process::Command::new("make")
        .args(["dist-backend", "ARCH=mips"])
        .current_dir(repo())
        .output()
        .expect("make runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ARCH=amd64 or ARCH=arm64"), "{stderr}");
}

#[test]
fn dockerignore_keeps_sources_and_drops_outputs() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target/", "dist/", "frontend/node_modules/", ".env", ".git"] {
        assert!(patterns.contains(&needed), ".dockerignore lacks {needed}");
    }
    let docker = dockerfile();
    let others_provide = [
        "plugin.json",
        "frontend/package.json",
        "frontend/package-lock.json",
    ];
    for source in docker.context_sources() {
        let rel = source.trim_start_matches("./").trim_end_matches('/');
        for pattern in &patterns {
            let p = pattern.trim_end_matches('/');
            assert!(
                rel != p && !rel.starts_with(&format!("{p}/")),
                "the Dockerfile copies {source}, which .dockerignore ({pattern}) leaves out"
            );
        }
        if rel == "." {
            continue;
        }
        if !repo().join(rel).exists() {
            assert!(
                others_provide.contains(&rel),
                "the Dockerfile copies {source}, which is not in the repository"
            );
            eprintln!("note: {rel} not present yet (written by another part of the project)");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data source provisioning

fn datasources() -> Vec<Yaml> {
    let doc = yaml("provisioning/datasources/akamai-estats.yaml");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1));
    doc["datasources"]
        .as_sequence()
        .expect("datasources")
        .clone()
}

fn datasource(uid: &str) -> Yaml {
    datasources()
        .into_iter()
        .find(|d| d["uid"].as_str() == Some(uid))
        .unwrap_or_else(|| panic!("no data source with uid {uid}"))
}

fn is_env_reference(value: &str) -> bool {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'));
    name.is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn watch_targets(ds: &Yaml, env: &BTreeMap<String, String>) -> Vec<estats::target::Target> {
    let watch = serde_json::to_value(&ds["jsonData"]["watch"]).expect("watch as JSON");
    let watch = interpolate(&watch, env);
    let specs: Vec<estats::target::TargetSpec> =
        serde_json::from_value(watch).expect("watch entries are targets");
    specs
        .iter()
        .map(|s| {
            s.check()
                .unwrap_or_else(|e| panic!("watch entry {s:?}: {e}"))
        })
        .collect()
}

#[test]
fn datasources_are_the_simulator_and_the_real_api() {
    let all = datasources();
    assert_eq!(all.len(), 2);
    for ds in &all {
        assert_eq!(ds["type"].as_str(), Some(PLUGIN_ID));
        assert_eq!(ds["access"].as_str(), Some("proxy"));
        // Only keys of the settings contract (docs/design.md), so a typo cannot pass silently.
        for key in ds["jsonData"].as_mapping().expect("jsonData").keys() {
            let key = key.as_str().unwrap();
            assert!(
                estats::settings::JSON_DATA_KEYS.contains(&key),
                "jsonData key {key:?} is not a setting"
            );
        }
        let history = ds["jsonData"]["historyPath"].as_str().expect("historyPath");
        assert_eq!(
            Path::new(history).parent(),
            Some(Path::new(HISTORY_DIR)),
            "the history lives on the named volume"
        );
    }
    let defaults: Vec<_> = all
        .iter()
        .filter(|d| d["isDefault"].as_bool() == Some(true))
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        defaults,
        [SIM_UID],
        "the simulator is the default data source"
    );

    let sim = datasource(SIM_UID);
    assert_eq!(sim["name"].as_str(), Some("Akamai eStats (simulator)"));
    assert_eq!(sim["jsonData"]["simulate"].as_bool(), Some(true));
    assert_eq!(sim["jsonData"]["pollIntervalSeconds"].as_u64(), Some(10));
    // The simulator needs no credentials: its only secret is the shared history's password.
    assert!(sim["secureJsonData"].as_mapping().is_none_or(|m| m
        .keys()
        .all(|k| k.as_str() == Some("historyDatabasePassword"))));
    let targets = watch_targets(&sim, &BTreeMap::new());
    let cp_codes = targets
        .iter()
        .filter(|t| matches!(t.subject, estats::target::Subject::CpCode(_)))
        .count();
    assert_eq!(
        (targets.len(), cp_codes),
        (4, 3),
        "several CP codes (the fleet dashboard's rows, the fleet rule's instances) and one URL"
    );

    let real = datasource(REAL_UID);
    assert_eq!(real["name"].as_str(), Some("Akamai eStats"));
    assert_eq!(real["jsonData"]["host"].as_str(), Some("${AKAMAI_HOST}"));
    assert_eq!(
        real["jsonData"]["accountSwitchKey"].as_str(),
        Some("${AKAMAI_ACCOUNT_SWITCH_KEY}")
    );
    assert_eq!(real["jsonData"]["pollIntervalSeconds"].as_u64(), Some(120));
    assert_ne!(real["jsonData"]["simulate"].as_bool(), Some(true));
    let env = BTreeMap::from([("AKAMAI_CPCODE".to_string(), "1209788".to_string())]);
    assert_eq!(
        watch_targets(&real, &env),
        vec![estats::target::Target::cp_code(1209788, None)],
        "the CP code comes from the environment, as a string"
    );
    let text = read("provisioning/datasources/akamai-estats.yaml");
    assert!(
        text.contains("# edgercPath: /etc/grafana/akamai/.edgerc"),
        "edgerc alternative"
    );
}

#[test]
fn no_literal_secret_in_provisioning() {
    let mut secure_keys = BTreeSet::new();
    for ds in datasources() {
        if let Some(secure) = ds["secureJsonData"].as_mapping() {
            for (key, value) in secure {
                let key = key.as_str().unwrap().to_string();
                let value = value.as_str().unwrap_or_default();
                assert!(
                    is_env_reference(value),
                    "secureJsonData.{key} is {value:?}, not $ENV"
                );
                secure_keys.insert(key);
            }
        }
        for secret in [
            "clientToken",
            "clientSecret",
            "accessToken",
            "client_secret",
        ] {
            assert!(
                ds["jsonData"].get(secret).is_none(),
                "{secret} must be in secureJsonData, never jsonData"
            );
        }
    }
    assert_eq!(
        secure_keys,
        BTreeSet::from([
            "accessToken".into(),
            "clientSecret".into(),
            "clientToken".into(),
            "historyDatabasePassword".into()
        ])
    );
    // Anything shaped like Akamai credentials, anywhere in the deployment files.
    for rel in [
        "provisioning/datasources/akamai-estats.yaml",
        "provisioning/dashboards/akamai-estats.json",
        "provisioning/dashboards/akamai-estats-fleet.json",
        "provisioning/alerting/akamai-estats.yaml",
        "docker-compose.yml",
        "Dockerfile",
    ] {
        let text = read(rel);
        assert!(!text.contains("akab-"), "{rel} contains an Akamai token");
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c))) {
            let mixed = word.bytes().any(|b| b.is_ascii_digit())
                && word.bytes().any(|b| b.is_ascii_uppercase())
                && word.bytes().any(|b| b.is_ascii_lowercase());
            assert!(
                !(word.len() >= 32 && mixed),
                "{rel}: {word:.6}... looks like a secret"
            );
        }
    }
}

#[test]
fn dashboard_provider_points_at_the_dashboard() {
    let doc = yaml("provisioning/dashboards/akamai-estats.yaml");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1));
    let provider = &doc["providers"][0];
    assert_eq!(provider["folder"].as_str(), Some("Akamai"));
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert_eq!(provider["allowUiUpdates"].as_bool(), Some(true));
    let path = provider["options"]["path"].as_str().expect("options.path");
    assert_eq!(path, "/etc/grafana/provisioning/dashboards");
    // Both the image and the dev mount put provisioning/ at /etc/grafana/provisioning.
    let json = path.replace("/etc/grafana/provisioning", "provisioning") + "/akamai-estats.json";
    assert!(repo().join(&json).exists(), "{json}");
    let compose = compose();
    let home = environment(service(&compose, "grafana"))
        ["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .clone();
    assert_eq!(home, format!("{path}/akamai-estats.json"));
}

// ---------------------------------------------------------------------------------------------
// Dashboard

fn our_datasource(value: &Json) -> bool {
    value["type"] == PLUGIN_ID && value["uid"] == "${datasource}"
}

/// Grafana's custom variable options: comma-separated, `\,` escapes, `label : value` pairs,
/// both trimmed.
fn custom_variable_options(query: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                item.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut item)),
            c => item.push(c),
        }
    }
    items.push(item);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .map(|text| {
            // /^\s*(.+)\s:\s(.+)$/ with a greedy first group: the last " : " with text after it.
            let b = text.as_bytes();
            let split = (1..b.len().saturating_sub(2)).rev().find(|&i| {
                b[i].is_ascii_whitespace()
                    && b[i + 1] == b':'
                    && b.get(i + 2).is_some_and(u8::is_ascii_whitespace)
                    && i + 3 < b.len()
                    && !text[..i].trim().is_empty()
            });
            match split {
                Some(i) => (
                    text[..i].trim().to_string(),
                    text[i + 3..].trim().to_string(),
                ),
                None => (text.trim().to_string(), text.trim().to_string()),
            }
        })
        .collect()
}

#[test]
fn dashboard_identity_and_variables() {
    let d = dashboard();
    assert_eq!(d["uid"], DASHBOARD_UID);
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
        "schemaVersion"
    );
    assert_eq!(d["refresh"], "30s");
    assert_eq!(d["time"]["from"], "now-6h");
    assert_eq!(d["time"]["to"], "now");

    let vars: BTreeMap<&str, &Json> = d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let ds = vars["datasource"];
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], PLUGIN_ID);
    assert_eq!(ds["current"]["value"], SIM_UID);
    datasource(SIM_UID);

    let target = vars["target"];
    assert!(matches!(
        target["type"].as_str(),
        Some("textbox" | "custom")
    ));
    assert_eq!(target["current"]["value"], "1209788");
    assert_eq!(target["query"], "1209788");

    let delivery = vars["delivery"];
    assert_eq!(delivery["type"], "custom");
    let options = custom_variable_options(delivery["query"].as_str().unwrap());
    let values: Vec<&str> = options.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["", "STANDARD_TLS", "ENHANCED_TLS"], "{options:?}");
    assert_eq!(delivery["current"]["value"], "");
    let stored: Vec<(String, String)> = delivery["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["text"].as_str().unwrap().into(),
                o["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        stored, options,
        "stored options match what Grafana derives from the query"
    );
}

#[test]
fn custom_variable_parsing_matches_grafana() {
    assert_eq!(
        custom_variable_options("a,b\\,c, x : y ,Default :  "),
        vec![
            ("a".into(), "a".into()),
            ("b,c".into(), "b,c".into()),
            ("x".into(), "y".into()),
            ("Default".into(), "".into())
        ]
    );
    assert_eq!(
        custom_variable_options("Default : "),
        vec![("Default :".into(), "Default :".into())]
    );
}

#[test]
fn every_panel_queries_our_datasource_with_a_valid_query() {
    for (rel, d) in dashboards() {
        panels_query_our_datasource_with_valid_queries(&rel, &d);
    }
}

fn panels_query_our_datasource_with_valid_queries(rel: &str, d: &Json) {
    let d = d.clone();
    let var_names: BTreeSet<String> = variable_defaults(&d).into_keys().collect();
    let mut ids = BTreeSet::new();
    let panels = dashboard_panels(&d);
    for panel in &panels {
        let title = format!("{rel}: {}", panel["title"].as_str().unwrap_or_default());
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            our_datasource(&panel["datasource"]),
            "{title}: panel datasource"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut ref_ids = BTreeSet::new();
        for t in targets {
            assert!(
                our_datasource(&t["datasource"]),
                "{title}: query datasource"
            );
            assert!(
                ref_ids.insert(t["refId"].as_str().unwrap_or_default()),
                "{title}: refId"
            );
            check_query(t).unwrap_or_else(|e| panic!("{title}: {e}\n{t}"));
            for (key, value) in t.as_object().unwrap() {
                if let Some(s) = value.as_str() {
                    for name in variable_references(s) {
                        assert!(var_names.contains(&name), "{title}: {key} uses ${name}");
                    }
                }
            }
        }
    }
    assert_eq!(
        dashboard_queries(&d).len(),
        panels
            .iter()
            .map(|p| p["targets"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    );
}

#[test]
fn queries_are_valid_once_variables_are_expanded() {
    let d = dashboard();
    let vars = variable_defaults(&d);
    assert_eq!(vars["datasource"], SIM_UID);
    for (title, q) in dashboard_queries(&d) {
        let q = interpolate(&q, &vars);
        assert_eq!(q["datasource"]["uid"], SIM_UID, "{title}");
        assert_eq!(q["cpCode"], "1209788", "{title}");
        assert_eq!(q["delivery"], "", "{title}");
        check_query(&q).unwrap_or_else(|e| panic!("{title}: {e}"));
    }
}

#[test]
fn query_checker_rejects_what_the_plugin_rejects() {
    let base = serde_json::json!({"refId": "A", "queryType": "timeseries", "cpCode": "1",
        "groupBy": "class", "metric": "percentage", "statusFilter": "5xx,404"});
    check_query(&base).unwrap();
    let with = |key: &str, value: Json| {
        let mut q = base.clone();
        q[key] = value;
        check_query(&q)
    };
    assert!(with("metric", "failurePercentage".into()).is_err());
    assert!(
        with("groupBy", "total".into()).is_err(),
        "percentage is not a total metric"
    );
    assert!(with("queryType", "heatmap".into()).is_err());
    assert!(with("side", "client".into()).is_err());
    assert!(with("cpCode", "12a".into()).is_err());
    assert!(with("cpCode", 12.into()).is_ok());
    assert!(with("delivery", "FF".into()).is_err());
    assert!(with("statusFilter", "5xy".into()).is_err());
    assert!(with("statusFilter", "$codes".into()).is_ok());
    assert!(with("cpcode", "1".into()).is_err(), "unknown key");
    assert!(with("refId", "".into()).is_err());
    let summary =
        serde_json::json!({"refId": "A", "queryType": "summary", "cpCode": "1", "metric": "hits"});
    assert!(check_query(&summary).is_err());
    let url = serde_json::json!({"refId": "A", "targetType": "url", "url": "www.example.com"});
    assert!(check_query(&url).is_err());

    // Many targets (docs/design.md, "Many targets per query").
    for ok in [
        Json::from("*"),
        "1209788, 1209789 555".into(),
        serde_json::json!([1209788, "1209789"]),
        "$cps".into(),
    ] {
        assert!(with("cpCode", ok.clone()).is_ok(), "{ok}");
    }
    for bad in [
        Json::from("*, 1209788"),
        "1209788;1209789".into(),
        serde_json::json!([]),
        "".into(),
        (1..=estats::query::MAX_TARGETS_PER_QUERY + 1)
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
            .into(),
    ] {
        assert!(with("cpCode", bad.clone()).is_err(), "{bad:.40}");
    }
    let urls = |url: Json| {
        check_query(&serde_json::json!({"refId": "A", "targetType": "url", "url": url}))
    };
    assert!(urls("*".into()).is_ok());
    assert!(urls("https://a.example/x,y\n https://b.example/".into()).is_ok());
    assert!(urls(serde_json::json!(["https://a.example/", "$url"])).is_ok());
    assert!(urls("https://a.example/ b.example".into()).is_err());
    assert!(urls("* https://a.example/".into()).is_err());

    // Annotations.
    let events = serde_json::json!({"refId": "Anno", "queryType": "events", "cpCode": "*",
        "side": "edge", "statusFilter": "5xx", "threshold": 2});
    check_query(&events).unwrap();
    let mut over = events.clone();
    over["threshold"] = 0.into();
    assert!(check_query(&over).is_err());
    over["threshold"] = 100.5.into();
    assert!(check_query(&over).is_err());
    over["threshold"] = "2".into();
    assert!(check_query(&over).is_err());
    assert!(
        with("threshold", 2.into()).is_err(),
        "threshold is for events only"
    );
    let mut grouped = events.clone();
    grouped["groupBy"] = "class".into();
    assert!(check_query(&grouped).is_err());
}

/// The panel whose single query matches all of `want`.
fn panels_with<'a>(d: &'a Json, want: &[(&str, &str)]) -> Vec<&'a Json> {
    dashboard_panels(d)
        .into_iter()
        .filter(|p| {
            p["targets"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| want.iter().all(|(k, v)| t[*k].as_str() == Some(*v)))
            })
        })
        .collect()
}

fn red_threshold(panel: &Json) -> Option<f64> {
    panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()?
        .iter()
        .find(|s| s["color"] == "red")?["value"]
        .as_f64()
}

#[test]
fn dashboard_covers_the_old_one_and_more() {
    let d = dashboard();
    // The old dashboard: edge and origin x 2xx..5xx share over time.
    for side in ["edge", "origin"] {
        for class in ["2xx", "3xx", "4xx", "5xx"] {
            let found = panels_with(
                &d,
                &[
                    ("queryType", "timeseries"),
                    ("side", side),
                    ("groupBy", "class"),
                    ("metric", "percentage"),
                    ("statusFilter", class),
                ],
            );
            assert_eq!(found.len(), 1, "{side} {class}");
            let panel = found[0];
            assert_eq!(panel["type"], "timeseries");
            assert_eq!(
                panel["fieldConfig"]["defaults"]["unit"], "percent",
                "{side} {class}"
            );
            if class == "5xx" {
                assert_eq!(red_threshold(panel), Some(2.0), "{side} 5xx red above 2%");
            }
        }
    }
    // And beyond it.
    for side in ["edge", "origin"] {
        let pies = panels_with(
            &d,
            &[
                ("queryType", "distribution"),
                ("side", side),
                ("groupBy", "code"),
            ],
        );
        assert!(
            pies.iter().any(|p| p["type"] == "piechart"),
            "{side} distribution pie"
        );
        let stats = panels_with(&d, &[("queryType", "summary"), ("side", side)]);
        let fields: BTreeSet<&str> = stats
            .iter()
            .filter(|p| p["type"] == "stat")
            .filter_map(|p| p["options"]["reduceOptions"]["fields"].as_str())
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from(["/^failurePercentage$/", "/^hits$/"]),
            "{side} failure percentage and hits"
        );
    }
    let top = panels_with(&d, &[("queryType", "topIps")]);
    assert!(top.iter().any(|p| p["type"] == "table"), "top IPs table");
    let codes = panels_with(
        &d,
        &[
            ("queryType", "timeseries"),
            ("groupBy", "code"),
            ("metric", "hits"),
        ],
    );
    assert_eq!(codes.len(), 1, "status codes over time");
    let failure = panels_with(
        &d,
        &[
            ("queryType", "timeseries"),
            ("groupBy", "total"),
            ("metric", "failurePercentage"),
        ],
    );
    assert_eq!(failure.len(), 1, "failure rate over time");
}

#[test]
fn dashboard_layout_has_no_overlaps() {
    for (_, d) in dashboards() {
        layout_has_no_overlaps(&d);
    }
}

fn layout_has_no_overlaps(d: &Json) {
    let d = d.clone();
    let mut cells = BTreeMap::new();
    for panel in dashboard_panels(&d) {
        let g = &panel["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{}", panel["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), panel["title"].clone()) {
                    panic!("{} overlaps {other}", panel["title"]);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Alerting

/// The CP codes of the simulator data source's watch list, as a list in the contract's form.
fn watched_cp_codes() -> String {
    watch_targets(&datasource(SIM_UID), &BTreeMap::new())
        .iter()
        .filter_map(|t| match t.subject {
            estats::target::Subject::CpCode(cp) => Some(cp.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `Query::parse` of the backend, as Grafana would send the query: the contract's forms parse.
/// `*` needs the data source's watch list, which `Query::parse` does not see: it is replaced by
/// the list of the CP codes the provisioned simulator watches (what `*` resolves to there).
fn parses(model: &Json) -> Result<estats::query::Query, estats::query::QueryError> {
    let mut model = model.clone();
    if model["cpCode"] == "*" {
        model["cpCode"] = watched_cp_codes().into();
    }
    let ctx = estats::query::QueryContext {
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_000_600_000,
        interval_ms: 10_000,
        max_data_points: 1000,
    };
    estats::query::Query::parse(
        model["refId"].as_str().unwrap_or("A"),
        model.to_string().as_bytes(),
        "",
        ctx,
        None,
    )
}

#[test]
fn alert_rule_watches_edge_5xx_share_of_every_watched_cp_code() {
    let doc = yaml("provisioning/alerting/akamai-estats.yaml");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1));
    let group = &doc["groups"][0];
    assert_eq!(group["folder"].as_str(), Some("Akamai"));
    let rules = group["rules"].as_sequence().expect("rules");
    assert_eq!(rules.len(), 1, "one rule for the fleet");
    let rule = &rules[0];
    assert_eq!(rule["for"].as_str(), Some("10m"));
    let data = rule["data"].as_sequence().expect("data");
    let ref_ids: Vec<&str> = data.iter().map(|q| q["refId"].as_str().unwrap()).collect();
    let condition = rule["condition"].as_str().unwrap();
    assert!(ref_ids.contains(&condition), "{ref_ids:?}");

    let uids: BTreeSet<String> = datasources()
        .iter()
        .map(|d| d["uid"].as_str().unwrap().to_string())
        .collect();
    let query = data
        .iter()
        .find(|q| q["datasourceUid"].as_str() != Some("__expr__"))
        .expect("a query of our data source");
    assert!(uids.contains(query["datasourceUid"].as_str().unwrap()));
    let model = serde_json::to_value(&query["model"]).unwrap();
    assert_eq!(model["refId"], query["refId"].as_str().unwrap());
    check_query(&model).unwrap();
    // One query naming every watched CP code: its alert shape has one number per (target, side,
    // status), so every CP code is an instance of its own.
    for (k, v) in [
        ("queryType", "distribution"),
        ("cpCode", "*"),
        ("side", "edge"),
        ("groupBy", "class"),
        ("metric", "percentage"),
        ("statusFilter", "5xx"),
    ] {
        assert_eq!(model[k], v, "{k}");
    }
    parses(&model).unwrap_or_else(|e| panic!("the rule's query does not parse: {e}"));

    // Expressions in Grafana's provisioning format: each reads a refId defined before it, and
    // the condition is a threshold: above 2 (percent).
    let mut defined = BTreeSet::new();
    for q in data {
        let ref_id = q["refId"].as_str().unwrap();
        if q["datasourceUid"].as_str() == Some("__expr__") {
            let model = &q["model"];
            assert_eq!(model["refId"].as_str(), Some(ref_id));
            assert!(
                matches!(
                    model["type"].as_str(),
                    Some("reduce" | "threshold" | "math")
                ),
                "{model:?}"
            );
            let input = model["expression"].as_str().expect("expression");
            assert!(
                defined.contains(input),
                "{ref_id} reads {input} before it is defined"
            );
        }
        defined.insert(ref_id.to_string());
    }
    let threshold = data
        .iter()
        .find(|q| q["refId"].as_str() == Some(condition))
        .unwrap();
    assert_eq!(threshold["model"]["type"].as_str(), Some("threshold"));
    let evaluator = &threshold["model"]["conditions"][0]["evaluator"];
    assert_eq!(evaluator["type"].as_str(), Some("gt"));
    assert_eq!(evaluator["params"][0].as_f64(), Some(2.0));
    assert!(
        rule["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("$labels.target")),
        "the summary names the CP code of the instance"
    );

    // The rule links to the fleet panel that shows the same share over time.
    assert_eq!(
        rule["annotations"]["__dashboardUid__"].as_str(),
        Some("akamai-estats-fleet")
    );
    let panel_id: u64 = rule["annotations"]["__panelId__"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let d = fleet_dashboard();
    let panel = dashboard_panels(&d)
        .into_iter()
        .find(|p| p["id"].as_u64() == Some(panel_id))
        .expect("the linked panel exists");
    for k in ["cpCode", "side", "statusFilter", "groupBy", "metric"] {
        assert_eq!(panel["targets"][0][k], model[k], "{k}");
    }
}

/// The annotations of a dashboard that query our data source.
fn event_annotations(d: &Json) -> Vec<&Json> {
    d["annotations"]["list"]
        .as_array()
        .expect("annotations.list")
        .iter()
        .filter(|a| our_datasource(&a["datasource"]))
        .collect()
}

#[test]
fn dashboards_show_the_events_annotation() {
    for (rel, d) in dashboards() {
        let vars = variable_defaults(&d);
        let annotations = event_annotations(&d);
        assert_eq!(annotations.len(), 1, "{rel}: one events annotation");
        let a = annotations[0];
        assert_eq!(a["enable"], true, "{rel}");
        assert!(a["name"].as_str().is_some_and(|n| !n.is_empty()), "{rel}");
        let target = &a["target"];
        assert_eq!(target["queryType"], "events", "{rel}");
        check_query(target).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for value in target.as_object().unwrap().values() {
            for name in value.as_str().map(variable_references).unwrap_or_default() {
                assert!(vars.contains_key(&name), "{rel}: annotation uses ${name}");
            }
        }
        let expanded = interpolate(target, &vars);
        parses(&expanded)
            .unwrap_or_else(|e| panic!("{rel}: the annotation query does not parse: {e}"));
    }
}

#[test]
fn fleet_dashboard_lists_every_watched_target() {
    let d = fleet_dashboard();
    assert_eq!(d["uid"], "akamai-estats-fleet");
    assert_eq!(d["title"], "Akamai eStats fleet");
    let vars = variable_defaults(&d);
    assert_eq!(vars["datasource"], SIM_UID);

    // The table: one row per target, its share of 2xx/4xx/5xx, hits and failure rate.
    let tables: Vec<&Json> = dashboard_panels(&d)
        .into_iter()
        .filter(|p| p["type"] == "table")
        .collect();
    assert_eq!(tables.len(), 1, "one table of the watched targets");
    let table = tables[0];
    let targets = table["targets"].as_array().unwrap();
    let by_type = |t: &str| {
        targets
            .iter()
            .find(|q| q["queryType"] == t)
            .unwrap_or_else(|| panic!("a {t} query"))
    };
    let shares = by_type("distribution");
    assert_eq!(shares["cpCode"], "*");
    assert_eq!(shares["groupBy"], "class");
    assert_eq!(shares["metric"], "percentage");
    let filter: BTreeSet<&str> = shares["statusFilter"]
        .as_str()
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(filter, BTreeSet::from(["2xx", "4xx", "5xx"]));
    let summary = by_type("summary");
    assert_eq!(summary["cpCode"], "*");
    assert_eq!(summary["side"], shares["side"], "both read the same side");

    let transformations = table["transformations"]
        .as_array()
        .expect("transformations");
    let ids: Vec<&str> = transformations
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let pivot = transformations
        .iter()
        .find(|t| t["id"] == "groupingToMatrix")
        .expect("the shares pivoted to one row per target");
    assert_eq!(pivot["options"]["rowField"], "target");
    assert_eq!(pivot["options"]["columnField"], "status");
    assert_eq!(pivot["options"]["valueField"], "percentage");
    assert_eq!(pivot["filter"]["options"], shares["refId"]);
    // Grouping to matrix names its first column `target\status` and returns a frame without a
    // refId, so the rename that lets the join find `target` must not be filtered by refId.
    let rename = transformations
        .iter()
        .find(|t| t["options"]["renameByName"]["target\\status"] == "target")
        .expect("the pivot's row column renamed to target");
    assert!(rename["filter"].is_null(), "{rename}");
    let join = transformations
        .iter()
        .find(|t| t["id"] == "joinByField")
        .expect("shares and summary joined");
    assert_eq!(join["options"]["byField"], "target");
    let sort = transformations.last().unwrap();
    assert_eq!(sort["id"], "sortBy", "{ids:?}");
    assert_eq!(sort["options"]["sort"][0]["field"], "5xx", "worst first");
    assert_eq!(sort["options"]["sort"][0]["desc"], true);
    // The names the overrides give are those the columns have after the transformations.
    let overrides: BTreeSet<&str> = table["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["matcher"]["options"].as_str())
        .collect();
    for column in ["target", "2xx", "4xx", "5xx", "hits", "failurePercentage"] {
        assert!(overrides.contains(column), "{column} is labelled");
    }

    // 5xx share over time, one series per target.
    let share = panels_with(
        &d,
        &[
            ("queryType", "timeseries"),
            ("cpCode", "*"),
            ("side", "edge"),
            ("groupBy", "class"),
            ("metric", "percentage"),
            ("statusFilter", "5xx"),
        ],
    );
    assert_eq!(share.len(), 1, "5xx share per target over time");
    assert_eq!(share[0]["type"], "timeseries");
    assert_eq!(share[0]["fieldConfig"]["defaults"]["unit"], "percent");
    assert_eq!(red_threshold(share[0]), Some(2.0));

    // Every query of the fleet names every watched CP code.
    for (title, q) in dashboard_queries(&d) {
        assert_eq!(q["cpCode"], "*", "{title}");
    }
    let annotation = event_annotations(&d)[0];
    assert_eq!(annotation["target"]["cpCode"], "*");
    assert_eq!(annotation["target"]["threshold"].as_f64(), Some(2.0));
}

// ---------------------------------------------------------------------------------------------
// Docs

#[test]
fn docs_cover_every_old_metric_and_docker_caveat() {
    let migration = read("docs/migration.md");
    for (metric, _) in estats::migrate::metric_mapping() {
        assert!(
            migration.contains(&format!("`{metric}`")),
            "docs/migration.md lacks {metric}"
        );
    }
    assert!(migration.contains("migrate-exporter"));
    let docker = read("docs/docker.md");
    assert!(docker.contains("needs Docker; not run in CI"));
    for needed in ["GRAFANA_VERSION", "arm64", "amd64", "TARGETARCH"] {
        assert!(
            docker.contains(needed),
            "docs/docker.md does not explain {needed}"
        );
    }
    let dashboard_doc = read("docs/dashboard.md");
    for panel in dashboard_panels(&dashboard()) {
        let title = panel["title"].as_str().unwrap();
        if panel["type"] != "row" {
            assert!(
                dashboard_doc.contains(title),
                "docs/dashboard.md does not explain {title:?}"
            );
        }
    }
    let alerting = read("docs/alerting.md");
    assert!(alerting.contains("failurePercentage") && alerting.contains("statusFilter"));
}
