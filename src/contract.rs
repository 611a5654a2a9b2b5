//! The backend's rules the frontend needs, as `frontend/src/generated/contract.json`: settings
//! bounds and defaults, query names, which metrics fit which grouping. The file is built here
//! from the constants and enums validation itself uses, so the editors cannot drift from the
//! backend; a unit test fails while the committed file differs, and
//! `UPDATE_CONTRACT=1 cargo test --lib contract` rewrites it.

use crate::edgerc::{LOOPBACK_HOST_NAMES, MAX_HOST_CHARS};
use crate::handlers::events;
use crate::query::{
    GroupBy, QueryEnum, QueryType, SideSelection, TargetType, MAX_TARGETS_PER_QUERY,
    THRESHOLD_MAX_PERCENT,
};
use crate::settings::{
    Bound, SslMode, DEFAULT_HISTORY_SCHEMA, DEFAULT_POLL_INTERVAL_SECONDS, HISTORY_PASSWORD_FIELD,
    LOOPBACK_LIMITS, MAX_PATH_CHARS, MAX_SCHEMA_CHARS, POLL_INTERVAL_SECONDS,
    RATE_LIMIT_PER_MINUTE, REQUEST_TIMEOUT_SECONDS, RETENTION_HOURS, SECRET_FIELDS, SSL_MODE_PARAM,
    SSL_ROOT_CERT_PARAM,
};
use crate::target::{Delivery, MAX_URL_CHARS};

/// Where the file lives, relative to the crate root.
pub const PATH: &str = "frontend/src/generated/contract.json";

const COMMENT: &str = "Generated from the backend's rules (src/contract.rs); do not edit by hand. `UPDATE_CONTRACT=1 cargo test --lib contract` rewrites it, and `cargo test` fails while it differs.";

/// The frontend's prettier `printWidth`: the file is written as prettier formats it, so that
/// `prettier --check` and this generator agree.
const PRINT_WIDTH: usize = 120;

/// A JSON value that keeps its keys in the order written (the crate's serde_json sorts them).
enum J {
    Obj(Vec<(&'static str, J)>),
    Arr(Vec<J>),
    Num(u64),
    Str(&'static str),
    Bool(bool),
}

fn strs(items: impl IntoIterator<Item = &'static str>) -> J {
    J::Arr(items.into_iter().map(J::Str).collect())
}

fn bound(b: Bound, extra: Vec<(&'static str, J)>) -> J {
    let mut fields = vec![
        ("default", J::Num(b.default)),
        ("min", J::Num(b.min)),
        ("max", J::Num(b.max)),
    ];
    fields.extend(extra);
    J::Obj(fields)
}

fn choice(values: Vec<&'static str>, default: &'static str) -> J {
    J::Obj(vec![("values", strs(values)), ("default", J::Str(default))])
}

fn enum_choice<T: QueryEnum>(default: T) -> J {
    choice(
        T::ALL.iter().map(|v| v.as_str()).collect(),
        default.as_str(),
    )
}

fn deliveries() -> Vec<&'static str> {
    std::iter::once("")
        .chain(Delivery::ALL.iter().map(|d| d.as_str()))
        .collect()
}

fn contract() -> J {
    let poll = J::Obj(vec![
        ("default", J::Num(POLL_INTERVAL_SECONDS.default)),
        ("min", J::Num(POLL_INTERVAL_SECONDS.min)),
        ("minLoopback", J::Num(LOOPBACK_LIMITS.min_poll_seconds)),
        ("max", J::Num(POLL_INTERVAL_SECONDS.max)),
        // A `simulate: true` data source without pollIntervalSeconds polls this often.
        ("defaultSimulator", J::Num(DEFAULT_POLL_INTERVAL_SECONDS)),
    ]);
    let rate = bound(
        RATE_LIMIT_PER_MINUTE,
        vec![("maxLoopback", J::Num(LOOPBACK_LIMITS.max_rate_per_minute))],
    );
    let settings = J::Obj(vec![
        ("pollIntervalSeconds", poll),
        (
            "requestTimeoutSeconds",
            bound(REQUEST_TIMEOUT_SECONDS, vec![]),
        ),
        ("rateLimitPerMinute", rate),
        ("retentionHours", bound(RETENTION_HOURS, vec![])),
        ("delivery", strs(deliveries())),
        ("loopbackHostNames", strs(LOOPBACK_HOST_NAMES)),
        // Names under a loopback name (`sim.localhost`) are loopback too (RFC 6761).
        ("loopbackSubdomains", J::Bool(true)),
        ("loopbackIpv4Cidr", J::Str("127.0.0.0/8")),
        ("loopbackIpv6", strs(["::1"])),
        ("secureFields", strs(SECRET_FIELDS)),
        ("maxHostChars", J::Num(MAX_HOST_CHARS as u64)),
        ("maxPathChars", J::Num(MAX_PATH_CHARS as u64)),
        // The shared PostgreSQL history (`docs/high-availability.md`).
        (
            "historyDatabase",
            J::Obj(vec![
                ("schemes", strs(["postgres", "postgresql"])),
                ("sslModes", strs(SslMode::ALL.map(SslMode::as_str))),
                ("sslModeParam", J::Str(SSL_MODE_PARAM)),
                // An absolute path, only with sslmode=verify-full.
                ("sslRootCertParam", J::Str(SSL_ROOT_CERT_PARAM)),
                ("sslRootCertMode", J::Str(SslMode::VerifyFull.as_str())),
                ("defaultPort", J::Num(5432)),
                ("passwordField", J::Str(HISTORY_PASSWORD_FIELD)),
                ("defaultSchema", J::Str(DEFAULT_HISTORY_SCHEMA)),
                ("maxSchemaChars", J::Num(MAX_SCHEMA_CHARS as u64)),
                ("schemaPattern", J::Str("^[a-z_][a-z0-9_]*$")),
            ]),
        ),
    ]);
    let metric = J::Obj(
        GroupBy::ALL
            .iter()
            .map(|g| {
                let values = g.metrics().iter().map(|m| m.as_str()).collect();
                (g.as_str(), choice(values, g.default_metric().as_str()))
            })
            .collect(),
    );
    let query = J::Obj(vec![
        ("queryType", enum_choice(QueryType::DEFAULT)),
        ("targetType", enum_choice(TargetType::DEFAULT)),
        ("delivery", choice(deliveries(), "")),
        ("side", enum_choice(SideSelection::DEFAULT)),
        ("groupBy", enum_choice(GroupBy::DEFAULT)),
        ("metric", metric),
        ("maxUrlChars", J::Num(MAX_URL_CHARS as u64)),
        ("maxTargets", J::Num(MAX_TARGETS_PER_QUERY as u64)),
        // `events`: a percent above `min` (exclusive), at most `max`, of the status filter's
        // share (`defaultStatusFilter` when the query names none).
        (
            "threshold",
            J::Obj(vec![
                ("min", J::Num(0)),
                ("minExclusive", J::Bool(true)),
                ("max", J::Num(THRESHOLD_MAX_PERCENT)),
                ("defaultStatusFilter", J::Str(events::DEFAULT_FILTER)),
            ]),
        ),
    ]);
    J::Obj(vec![
        ("_comment", J::Str(COMMENT)),
        ("settings", settings),
        ("query", query),
    ])
}

fn is_flat(j: &J) -> bool {
    match j {
        J::Obj(fields) => fields.iter().all(|(_, v)| !matches!(v, J::Obj(_))),
        _ => true,
    }
}

/// One line, prettier's way: `{ "a": 1 }`, `["x", "y"]`.
fn inline(j: &J) -> String {
    match j {
        J::Obj(fields) if fields.is_empty() => "{}".into(),
        J::Obj(fields) => {
            let items: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", string(k), inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        J::Arr(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        J::Num(n) => n.to_string(),
        J::Str(s) => string(s),
        J::Bool(b) => b.to_string(),
    }
}

fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Writes `j` after `prefix` (indentation and key) at `indent`: objects of objects always
/// broken, anything else on one line when the line fits `PRINT_WIDTH`.
fn write(out: &mut String, j: &J, indent: usize, prefix_len: usize, comma: bool) {
    let one_line = inline(j);
    let fits = prefix_len + one_line.len() + usize::from(comma) <= PRINT_WIDTH;
    let pad = " ".repeat(indent + 2);
    let broken = !(is_flat(j) && fits);
    match j {
        J::Obj(fields) if broken && !fields.is_empty() => {
            out.push_str("{\n");
            for (i, (key, value)) in fields.iter().enumerate() {
                let key = format!("{pad}{}: ", string(key));
                out.push_str(&key);
                write(out, value, indent + 2, key.len(), i + 1 < fields.len());
                out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(indent));
            out.push('}');
        }
        J::Arr(items) if !fits && !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                write(out, item, indent + 2, pad.len(), i + 1 < items.len());
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(indent));
            out.push(']');
        }
        _ => out.push_str(&one_line),
    }
}

/// The contract's JSON text, as committed.
pub fn render() -> String {
    let mut out = String::new();
    write(&mut out, &contract(), 0, 0, false);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::edgerc::is_loopback_url;

    /// A short line diff: the first lines that differ, as `-committed` / `+generated`.
    fn diff(committed: &str, generated: &str) -> String {
        let (old, new): (Vec<&str>, Vec<&str>) =
            (committed.lines().collect(), generated.lines().collect());
        let mut out = Vec::new();
        for i in 0..old.len().max(new.len()) {
            let (a, b) = (old.get(i), new.get(i));
            if a != b {
                if let Some(a) = a {
                    out.push(format!("{:>4} - {a}", i + 1));
                }
                if let Some(b) = b {
                    out.push(format!("{:>4} + {b}", i + 1));
                }
            }
            if out.len() >= 40 {
                out.push("...".into());
                break;
            }
        }
        out.join("\n")
    }

    #[test]
    fn contract_json_is_the_backends() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
        let generated = render();
        if std::env::var_os("UPDATE_CONTRACT").is_some() {
            std::fs::write(&path, &generated).expect("write the contract");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{PATH} differs from the backend's rules (- committed, + generated); run `UPDATE_CONTRACT=1 cargo test --lib contract` and commit it:\n{}",
            diff(&committed, &generated)
        );
    }

    #[test]
    fn the_threshold_bounds_are_the_parsers() {
        let v: serde_json::Value = serde_json::from_str(&render()).expect("the contract is JSON");
        let t = &v["query"]["threshold"];
        let parses = |percent: f64| {
            let json = format!(r#"{{"cpCode": 1, "queryType": "events", "threshold": {percent}}}"#);
            crate::query::Query::parse("A", json.as_bytes(), "", ctx(), None).is_ok()
        };
        let (min, max) = (t["min"].as_f64().unwrap(), t["max"].as_f64().unwrap());
        assert_eq!(t["minExclusive"], true);
        assert!(!parses(min) && parses(min + 0.01) && parses(max) && !parses(max + 0.01));
        assert!(
            crate::query::StatusFilter::parse(t["defaultStatusFilter"].as_str().unwrap()).is_ok()
        );
    }

    fn ctx() -> crate::query::QueryContext {
        crate::query::QueryContext {
            from_ms: 0,
            to_ms: 1,
            interval_ms: 1000,
            max_data_points: 100,
        }
    }

    #[test]
    fn the_loopback_keys_describe_the_rule() {
        let loopback =
            |host: &str| is_loopback_url(&url::Url::parse(&format!("http://{host}/")).unwrap());
        for name in LOOPBACK_HOST_NAMES {
            assert!(loopback(name) && loopback(&format!("a.{name}")));
        }
        assert!(loopback(&Ipv4Addr::new(127, 255, 0, 1).to_string()));
        assert!(!loopback(&Ipv4Addr::new(128, 0, 0, 1).to_string()));
        assert!(loopback(&format!("[{}]", Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn the_contracts_bounds_are_the_validations() {
        use crate::settings::Settings;
        use std::collections::HashMap;
        let v: serde_json::Value = serde_json::from_str(&render()).expect("the contract is JSON");
        let check = |field: &str, value: u64| {
            let json = format!(r#"{{"host": "h.example", "{field}": {value}}}"#);
            let secure: HashMap<String, String> = SECRET_FIELDS
                .iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect();
            Settings::from_grafana(json.as_bytes(), &secure, &|_| None).is_ok()
        };
        for field in [
            "pollIntervalSeconds",
            "requestTimeoutSeconds",
            "rateLimitPerMinute",
            "retentionHours",
        ] {
            let min = v["settings"][field]["min"].as_u64().unwrap();
            let max = v["settings"][field]["max"].as_u64().unwrap();
            let default = v["settings"][field]["default"].as_u64().unwrap();
            assert!(
                check(field, min) && check(field, max) && check(field, default),
                "{field}"
            );
            assert!(!check(field, min - 1) && !check(field, max + 1), "{field}");
        }
    }
}
