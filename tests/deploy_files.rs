//! Checks the deployment files (docker-compose.yml, Dockerfile, .dockerignore, provisioning/,
//! docs/) without a Docker engine or a Grafana server: they parse, they agree with each other,
//! with `make dist`, with plugin.json and with the query model of DESIGN.md.
//!
//! `dashboard_queries`, `variable_defaults` and `interpolate` are meant for reuse by the test
//! that runs every panel query through the plugin executable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;
use common::dashboard::{dashboard_panels, dashboard_queries, interpolate, variable_defaults};
use serde_yaml::Value as Yaml;

/// The Grafana image the deployment runs; plugin.json's grafanaDependency and the frontend's
/// @grafana/* packages must be of the same major.minor.
const GRAFANA_VERSION: &str = "13.2.3";
const PLUGIN_ID: &str = "akamai-estats-datasource";
const PLUGIN_DIR: &str = "/var/lib/grafana/plugins/akamai-estats-datasource";
const BINARY: &str = "gpx_akamai_estats_linux_amd64";
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

fn read_optional(rel: &str) -> Option<String> {
    let path = repo().join(rel);
    path.exists()
        .then(|| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

fn yaml(rel: &str) -> Yaml {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn dashboard() -> Json {
    let rel = "provisioning/dashboards/akamai-estats.json";
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"))
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

/// Checks one query against the query model of DESIGN.md. Template variables stand for any
/// value of their field.
pub fn check_query(q: &Json) -> Result<(), String> {
    const KEYS: [&str; 11] = [
        "refId",
        "datasource",
        "queryType",
        "targetType",
        "cpCode",
        "url",
        "delivery",
        "side",
        "groupBy",
        "metric",
        "statusFilter",
    ];
    let obj = q.as_object().ok_or("a query is a JSON object")?;
    for key in obj.keys() {
        if !KEYS.contains(&key.as_str()) {
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
        &["distribution", "timeseries", "summary", "topIps"],
    )?;
    let target_type = text("targetType", "cpCode")?;
    one_of("targetType", &target_type, &["cpCode", "url"])?;
    match target_type.as_str() {
        "cpCode" => match obj.get("cpCode") {
            Some(Json::Number(n)) if n.is_u64() => {}
            Some(Json::String(s))
                if is_variable(s) || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) => {}
            other => {
                return Err(format!(
                    "cpCode must be digits or a variable, got {other:?}"
                ))
            }
        },
        _ => {
            let url = text("url", "")?;
            if !(is_variable(&url) || url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("url {url:?} is not an absolute http(s) URL"));
            }
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

// ---------------------------------------------------------------------------------------------
// Dockerfile, Makefile and shell parsing

/// Logical lines: backslash continuations joined, comments and blank lines dropped.
fn logical_lines(text: &str, comment_prefix: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if pending.is_empty() && line.trim_start().starts_with(comment_prefix) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        if !pending.trim().is_empty() {
            out.push(std::mem::take(&mut pending));
        }
        pending.clear();
    }
    if !pending.trim().is_empty() {
        out.push(pending);
    }
    out
}

/// Shell words of a command line, quotes removed; `&&`, `||`, `;`, `|` are separate words.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            ';' | '&' | '|' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                let mut op = c.to_string();
                if matches!(c, '&' | '|') && chars.peek() == Some(&c) {
                    op.push(chars.next().unwrap_or(c));
                }
                words.push(op);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn is_separator(word: &str) -> bool {
    matches!(word, "&&" | "||" | ";" | "|" | "&")
}

/// Simple commands of a shell line, each as its words (env assignments included).
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    shell_words(line)
        .split(|w| is_separator(w))
        .filter(|c| !c.is_empty())
        .map(<[String]>::to_vec)
        .collect()
}

/// What a build does, reduced to what must agree between the Makefile and the Dockerfile.
#[derive(Debug, PartialEq)]
struct BuildSteps {
    /// Arguments after `cargo build`, sorted.
    cargo_args: Vec<Vec<String>>,
    /// RUSTFLAGS in force for `cargo build` (inline, exported or ENV), whitespace-normalised.
    rustflags: BTreeSet<String>,
    /// npm invocations with `--prefix DIR` dropped, e.g. `npm ci`, `npm run build`.
    npm: BTreeSet<String>,
}

fn build_steps(commands: &[Vec<String>], ambient_rustflags: Option<String>) -> BuildSteps {
    let mut steps = BuildSteps {
        cargo_args: Vec::new(),
        rustflags: BTreeSet::new(),
        npm: BTreeSet::new(),
    };
    for command in commands {
        let mut env = BTreeMap::new();
        let mut words = command.as_slice();
        while let Some((first, rest)) = words.split_first() {
            match first.split_once('=') {
                Some((k, v))
                    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
                {
                    env.insert(k.to_string(), v.to_string());
                    words = rest;
                }
                _ => break,
            }
        }
        if words.first().map(String::as_str) == Some("env") {
            words = &words[1..];
            while let Some((first, rest)) = words.split_first() {
                match first.split_once('=') {
                    Some((k, v)) => {
                        env.insert(k.to_string(), v.to_string());
                        words = rest;
                    }
                    None => break,
                }
            }
        }
        match words {
            [cargo, build, args @ ..] if cargo.ends_with("cargo") && build == "build" => {
                let mut args = args.to_vec();
                args.sort();
                steps.cargo_args.push(args);
                if let Some(flags) = env.get("RUSTFLAGS").cloned().or(ambient_rustflags.clone()) {
                    steps
                        .rustflags
                        .insert(flags.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            [npm, rest @ ..] if npm == "npm" => {
                let mut kept = vec!["npm".to_string()];
                let mut i = 0;
                while i < rest.len() {
                    if rest[i] == "--prefix" {
                        i += 2;
                        continue;
                    }
                    if !rest[i].starts_with("--prefix=") {
                        kept.push(rest[i].clone());
                    }
                    i += 1;
                }
                steps.npm.insert(kept.join(" "));
            }
            _ => {}
        }
    }
    steps.cargo_args.sort();
    steps
}

struct Dockerfile {
    /// (image, stage name) per FROM.
    stages: Vec<(String, Option<String>)>,
    /// (stage index, instruction upper-case, arguments)
    instructions: Vec<(usize, String, String)>,
}

fn dockerfile() -> Dockerfile {
    let mut stages = Vec::new();
    let mut instructions = Vec::new();
    for line in logical_lines(&read("Dockerfile"), '#') {
        let line = line.trim();
        let (instruction, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let instruction = instruction.to_ascii_uppercase();
        let args = args.trim().to_string();
        if instruction == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push((words[0].to_string(), name));
        }
        instructions.push((stages.len().saturating_sub(1), instruction, args));
    }
    Dockerfile {
        stages,
        instructions,
    }
}

impl Dockerfile {
    fn build_steps(&self) -> BuildSteps {
        let mut commands = Vec::new();
        let mut env_rustflags = None;
        for (_, instruction, args) in &self.instructions {
            match instruction.as_str() {
                "ENV" => {
                    for word in shell_words(args) {
                        if let Some(v) = word.strip_prefix("RUSTFLAGS=") {
                            env_rustflags = Some(v.to_string());
                        }
                    }
                }
                "RUN" => {
                    let script: Vec<String> = shell_words(args)
                        .into_iter()
                        .skip_while(|w| w.starts_with("--mount") || w.starts_with("--network"))
                        .collect();
                    commands.extend(simple_commands(&shell_join(&script)));
                }
                _ => {}
            }
        }
        build_steps(&commands, env_rustflags)
    }

    /// Host sources of `COPY`/`ADD` without `--from`.
    fn context_sources(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, instruction, args) in &self.instructions {
            if instruction != "COPY" && instruction != "ADD" {
                continue;
            }
            let words: Vec<&str> = args.split_whitespace().collect();
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

    fn final_stage_instructions(&self, instruction: &str) -> Vec<&str> {
        let last = self.stages.len() - 1;
        self.instructions
            .iter()
            .filter(|(stage, i, _)| *stage == last && i == instruction)
            .map(|(_, _, args)| args.as_str())
            .collect()
    }
}

/// Re-quotes words that contain spaces so that splitting again gives the same words.
fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.contains(char::is_whitespace) {
                format!("'{w}'")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Just enough of make: variables (`=`, `:=`, `::=`, `?=`, `+=`, `export`), rules with their
/// prerequisites and tab-indented recipes, `$(VAR)`/`${VAR}` expansion.
struct Makefile {
    vars: BTreeMap<String, String>,
    exported: BTreeSet<String>,
    rules: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

fn parse_makefile(text: &str) -> Makefile {
    let mut mk = Makefile {
        vars: BTreeMap::new(),
        exported: BTreeSet::new(),
        rules: BTreeMap::new(),
    };
    let mut current: Vec<String> = Vec::new();
    for line in logical_lines(text, '#') {
        if let Some(recipe) = line.strip_prefix('\t') {
            for target in &current {
                if let Some(rule) = mk.rules.get_mut(target) {
                    rule.1.push(recipe.trim().to_string());
                }
            }
            continue;
        }
        // Outside recipes `#` starts a comment anywhere on the line.
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (line, export) = match line.strip_prefix("export ") {
            Some(rest) => (rest.trim(), true),
            None => (line, false),
        };
        let assignment = ["::=", ":=", "?=", "+=", "="]
            .iter()
            .filter_map(|op| line.find(op).map(|at| (at, *op)))
            .min_by_key(|(at, _)| *at);
        let colon = line.find(':');
        match (assignment, colon) {
            (Some((at, op)), c) if c.is_none_or(|c| c >= at) => {
                let name = line[..at].trim().to_string();
                let value = line[at + op.len()..].trim().to_string();
                if op == "+=" {
                    let entry = mk.vars.entry(name.clone()).or_default();
                    if !entry.is_empty() {
                        entry.push(' ');
                    }
                    entry.push_str(&value);
                } else if op != "?=" || !mk.vars.contains_key(&name) {
                    mk.vars.insert(name.clone(), value);
                }
                if export {
                    mk.exported.insert(name);
                }
                current.clear();
            }
            (_, Some(c)) => {
                let targets: Vec<String> =
                    line[..c].split_whitespace().map(str::to_string).collect();
                let rest = &line[c + 1..];
                // A target-specific variable (`dist: RUSTFLAGS = ...`) is not a rule.
                if let Some(eq) = rest.find('=') {
                    let name = rest[..eq].trim_end_matches([':', '?', '+']).trim();
                    let value = rest[eq + 1..].trim();
                    // Only an exported one reaches cargo's environment.
                    if let Some(name) = name.strip_prefix("export ") {
                        mk.exported.insert(name.trim().to_string());
                    }
                    let name = name.strip_prefix("export ").unwrap_or(name).trim();
                    mk.vars.insert(name.to_string(), value.to_string());
                    continue;
                }
                let (prereqs, inline) = match rest.split_once(';') {
                    Some((p, r)) => (p, Some(r.trim().to_string())),
                    None => (rest, None),
                };
                let prereqs: Vec<String> = prereqs
                    .split_whitespace()
                    .filter(|p| *p != "|")
                    .map(str::to_string)
                    .collect();
                for target in &targets {
                    let rule = mk.rules.entry(target.clone()).or_default();
                    rule.0.extend(prereqs.iter().cloned());
                    rule.1.extend(inline.iter().cloned());
                }
                current = targets;
            }
            _ if export => {
                mk.exported
                    .extend(line.split_whitespace().map(str::to_string));
            }
            _ => current.clear(),
        }
    }
    mk
}

impl Makefile {
    fn expand(&self, text: &str) -> String {
        let mut out = text.to_string();
        for _ in 0..10 {
            let mut next = String::new();
            let mut rest = out.as_str();
            while let Some(at) = rest.find('$') {
                next.push_str(&rest[..at]);
                let tail = &rest[at + 1..];
                let close = match tail.chars().next() {
                    Some('(') => Some(')'),
                    Some('{') => Some('}'),
                    _ => None,
                };
                match close.and_then(|c| tail.find(c)) {
                    Some(end) => {
                        let name = &tail[1..end];
                        match self.vars.get(name) {
                            Some(v) => next.push_str(v),
                            None => next.push_str(&rest[at..at + 2 + end]),
                        }
                        rest = &tail[end + 1..];
                    }
                    None if tail.starts_with('$') => {
                        // `$$` is make's literal `$`; keep it doubled until the last round.
                        next.push_str("$$");
                        rest = &tail[1..];
                    }
                    None => {
                        next.push('$');
                        rest = tail;
                    }
                }
            }
            next.push_str(rest);
            if next == out {
                break;
            }
            out = next;
        }
        out.replace("$$", "$")
    }

    /// Recipe lines of `target` and, before them, of its prerequisites that are rules.
    fn recipe(&self, target: &str) -> Vec<String> {
        fn walk(mk: &Makefile, target: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
            if !seen.insert(target.to_string()) {
                return;
            }
            if let Some((prereqs, lines)) = mk.rules.get(target) {
                for p in prereqs {
                    walk(mk, &mk.expand(p), seen, out);
                }
                for line in lines {
                    let line = mk.expand(line);
                    out.push(line.trim_start_matches(['@', '-', '+']).to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self, target, &mut BTreeSet::new(), &mut out);
        out
    }

    fn build_steps(&self, target: &str) -> BuildSteps {
        let commands: Vec<Vec<String>> = self
            .recipe(target)
            .iter()
            .flat_map(|line| simple_commands(line))
            .collect();
        let ambient = self
            .exported
            .contains("RUSTFLAGS")
            .then(|| self.vars.get("RUSTFLAGS").map(|v| self.expand(v)))
            .flatten()
            .map(|v| v.trim_matches(['"', '\'']).to_string());
        build_steps(&commands, ambient)
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
        grafana["build"].as_str(),
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

#[test]
fn grafana_versions_agree() {
    let compose = compose();
    let image = |name: &str| {
        service(&compose, name)["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        image("grafana-dev"),
        format!("grafana/grafana:{GRAFANA_VERSION}")
    );
    assert!(
        image("grafana").ends_with(&format!(":{GRAFANA_VERSION}")),
        "the built image is tagged with its Grafana version: {}",
        image("grafana")
    );
    let docker = dockerfile();
    let (final_image, _) = docker.stages.last().expect("a FROM");
    assert_eq!(final_image, &format!("grafana/grafana:{GRAFANA_VERSION}"));

    let major_minor = |v: &str| {
        let v = v.trim_start_matches(|c: char| !c.is_ascii_digit());
        let mut parts = v.split('.');
        format!(
            "{}.{}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        )
    };
    match read_optional("plugin.json") {
        Some(text) => {
            let plugin: Json = serde_json::from_str(&text).expect("plugin.json is JSON");
            let dependency = plugin["dependencies"]["grafanaDependency"]
                .as_str()
                .expect("plugin.json has dependencies.grafanaDependency");
            assert_eq!(
                major_minor(dependency),
                major_minor(GRAFANA_VERSION),
                "plugin.json grafanaDependency {dependency:?} vs image {GRAFANA_VERSION}"
            );
            assert_eq!(plugin["id"], PLUGIN_ID);
        }
        None => {
            eprintln!("note: plugin.json not present yet; its grafanaDependency is not checked")
        }
    }
    match read_optional("frontend/package.json") {
        Some(text) => {
            let package: Json = serde_json::from_str(&text).expect("frontend/package.json is JSON");
            let mut seen = 0;
            for (name, version) in package["dependencies"].as_object().into_iter().flatten() {
                if name.starts_with("@grafana/")
                    && !name.contains("eslint")
                    && !name.contains("tsconfig")
                {
                    seen += 1;
                    assert_eq!(version.as_str(), Some(GRAFANA_VERSION), "{name}");
                }
            }
            assert!(
                seen > 0,
                "frontend/package.json depends on @grafana/* packages"
            );
        }
        None => {
            eprintln!("note: frontend/package.json not present yet; @grafana/* pins not checked")
        }
    }
}

#[test]
fn compose_host_paths_exist() {
    let compose = compose();
    let makefile = read_optional("Makefile");
    for (name, service) in compose["services"].as_mapping().expect("services") {
        for (source, _) in volumes(service) {
            if !(source.starts_with('.') || source.starts_with('/')) {
                continue; // a named volume
            }
            let rel = source.trim_start_matches("./");
            if rel == "dist" {
                // Build output: `make dist` must produce it.
                match &makefile {
                    Some(text) => assert!(
                        parse_makefile(text).rules.contains_key("dist"),
                        "the Makefile has no dist target, but {name:?} mounts ./dist"
                    ),
                    None => eprintln!("note: no Makefile yet; ./dist of {name:?} not checked"),
                }
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

#[test]
fn dockerfile_builds_the_plugin_like_make_dist() {
    let docker = dockerfile();
    let images: Vec<&str> = docker.stages.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        images,
        [
            "rust:1-bookworm",
            "node:20-bookworm",
            &format!("grafana/grafana:{GRAFANA_VERSION}")
        ],
    );

    let steps = docker.build_steps();
    assert_eq!(steps.cargo_args.len(), 1, "one cargo build: {steps:?}");
    let args = &steps.cargo_args[0];
    for expected in ["--release", "--target", "x86_64-unknown-linux-gnu"] {
        assert!(
            args.iter().any(|a| a == expected),
            "cargo build {args:?} lacks {expected}"
        );
    }
    assert_eq!(
        steps.rustflags,
        BTreeSet::from(["-C target-feature=+crt-static".to_string()]),
        "the binary is linked statically"
    );
    assert_eq!(
        steps.npm,
        BTreeSet::from(["npm ci".to_string(), "npm run build".to_string()])
    );

    let copies = docker.final_stage_instructions("COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.contains("--chmod=0755") && c.ends_with(&format!("{PLUGIN_DIR}/{BINARY}"))),
        "the executable lands in the plugin folder, executable: {copies:?}"
    );
    // plugin.json comes with the frontend build's dist/ (the build stamps its date there).
    assert!(
        copies
            .iter()
            .any(|c| c.contains("--from=frontend") && c.ends_with(&format!("{PLUGIN_DIR}/"))),
        "the frontend's dist/ (plugin.json, module.js, img/) lands in the plugin folder: {copies:?}"
    );
    assert!(
        copies.contains(&"provisioning/ /etc/grafana/provisioning/"),
        "{copies:?}"
    );
    let env = docker.final_stage_instructions("ENV").join(" ");
    assert!(
        env.contains(&format!(
            "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS={PLUGIN_ID}"
        )),
        "{env}"
    );
    let runs = docker.final_stage_instructions("RUN").join(" ");
    assert!(
        runs.contains(HISTORY_DIR),
        "the image creates the history directory: {runs}"
    );

    match read_optional("Makefile") {
        Some(text) => {
            let mk = parse_makefile(&text);
            assert!(
                mk.rules.contains_key("dist"),
                "the Makefile has a dist target"
            );
            let make = mk.build_steps("dist");
            assert_eq!(
                make, steps,
                "the Dockerfile's build differs from `make dist` (Makefile left, Dockerfile right)"
            );
            assert!(
                mk.recipe("dist").iter().any(|l| l.contains(BINARY)),
                "make dist copies the executable to dist/{BINARY}"
            );
        }
        None => eprintln!("note: no Makefile yet; the Dockerfile is not compared with make dist"),
    }
}

#[test]
fn makefile_parser_follows_prerequisites_and_variables() {
    let mk = parse_makefile(
        "TARGET := x86_64-unknown-linux-gnu\nexport RUSTFLAGS = -C target-feature=+crt-static\n\
         CARGO ?= cargo\n\n.PHONY: dist backend\ndist: backend frontend\n\t@mkdir -p dist\n\
         \tcp target/$(TARGET)/release/gpx_akamai_estats dist/gpx_akamai_estats_linux_amd64\n\
         backend:\n\t$(CARGO) build --release \\\n\t  --target ${TARGET}\n\
         frontend:\n\tcd frontend && npm ci && npm run build\n",
    );
    let steps = mk.build_steps("dist");
    assert_eq!(
        steps.cargo_args,
        vec![vec![
            "--release".to_string(),
            "--target".into(),
            "x86_64-unknown-linux-gnu".into()
        ]]
    );
    assert_eq!(
        steps.rustflags,
        BTreeSet::from(["-C target-feature=+crt-static".to_string()])
    );
    assert_eq!(
        steps.npm,
        BTreeSet::from(["npm ci".to_string(), "npm run build".to_string()])
    );
    let first: Vec<String> = mk.recipe("dist")[0]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        first,
        [
            "cargo",
            "build",
            "--release",
            "--target",
            "x86_64-unknown-linux-gnu"
        ]
    );

    // Inline RUSTFLAGS, --prefix and a differing flag are all seen.
    let other = parse_makefile(
        "dist:\n\tRUSTFLAGS='-C target-feature=+crt-static' cargo build --release\n\
         \tnpm --prefix frontend ci; npm --prefix=frontend run build\n",
    )
    .build_steps("dist");
    assert_eq!(other.npm, steps.npm);
    assert_eq!(other.rustflags, steps.rustflags);
    assert_ne!(other.cargo_args, steps.cargo_args);
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
        // Only keys of the settings contract (DESIGN.md), so a typo cannot pass silently.
        for key in ds["jsonData"].as_mapping().expect("jsonData").keys() {
            let key = key.as_str().unwrap();
            assert!(
                [
                    "host",
                    "accountSwitchKey",
                    "edgercPath",
                    "edgercSection",
                    "delivery",
                    "pollIntervalSeconds",
                    "requestTimeoutSeconds",
                    "rateLimitPerMinute",
                    "watch",
                    "retentionHours",
                    "historyPath",
                    "simulate",
                ]
                .contains(&key),
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
    assert!(sim.get("secureJsonData").is_none());
    let targets = watch_targets(&sim, &BTreeMap::new());
    let cp_codes = targets
        .iter()
        .filter(|t| matches!(t.subject, estats::target::Subject::CpCode(_)))
        .count();
    assert_eq!(
        (targets.len(), cp_codes),
        (3, 2),
        "two CP codes and one URL"
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
            "clientToken".into()
        ])
    );
    // Anything shaped like Akamai credentials, anywhere in the deployment files.
    for rel in [
        "provisioning/datasources/akamai-estats.yaml",
        "provisioning/dashboards/akamai-estats.json",
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
    let d = dashboard();
    let var_names: BTreeSet<String> = variable_defaults(&d).into_keys().collect();
    let mut ids = BTreeSet::new();
    let panels = dashboard_panels(&d);
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
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
    let d = dashboard();
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

#[test]
fn alert_rule_watches_edge_5xx_share() {
    let doc = yaml("provisioning/alerting/akamai-estats.yaml");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1));
    let group = &doc["groups"][0];
    assert_eq!(group["folder"].as_str(), Some("Akamai"));
    let rules = group["rules"].as_sequence().expect("rules");
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule["for"].as_str(), Some("10m"));
    let data = rule["data"].as_sequence().expect("data");
    let ref_ids: Vec<&str> = data.iter().map(|q| q["refId"].as_str().unwrap()).collect();
    assert!(
        ref_ids.contains(&rule["condition"].as_str().unwrap()),
        "{ref_ids:?}"
    );

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
    check_query(&model).unwrap();
    for (k, v) in [
        ("queryType", "timeseries"),
        ("side", "edge"),
        ("groupBy", "class"),
        ("metric", "percentage"),
        ("statusFilter", "5xx"),
    ] {
        assert_eq!(model[k], v, "{k}");
    }
    assert_eq!(query["relativeTimeRange"]["from"].as_u64(), Some(600));
    let threshold = data
        .iter()
        .find(|q| q["model"]["type"].as_str() == Some("threshold"))
        .expect("a threshold expression");
    let evaluator = &threshold["model"]["conditions"][0]["evaluator"];
    assert_eq!(evaluator["type"].as_str(), Some("gt"));
    assert_eq!(evaluator["params"][0].as_f64(), Some(2.0));

    // The rule links to the dashboard panel that shows the same series.
    let d = dashboard();
    assert_eq!(
        rule["annotations"]["__dashboardUid__"].as_str(),
        Some(DASHBOARD_UID)
    );
    let panel_id: u64 = rule["annotations"]["__panelId__"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let panel = dashboard_panels(&d)
        .into_iter()
        .find(|p| p["id"].as_u64() == Some(panel_id))
        .expect("the linked panel exists");
    assert_eq!(panel["targets"][0]["statusFilter"], "5xx");
    assert_eq!(panel["targets"][0]["side"], "edge");
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
