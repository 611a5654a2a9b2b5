//! Data source settings: Grafana's `jsonData` + `secureJsonData` (or an `.edgerc` file) parsed,
//! then validated into [`Settings`]. Nothing outside this module sees an unchecked value.
//!
//! `jsonData` is parsed leniently (numbers may arrive as numeric strings from provisioning YAML,
//! unknown keys are ignored so older and newer frontends keep working) and then checked strictly.
//! Error messages never repeat a value of `secureJsonData` or of an `.edgerc` file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::edgegrid::{Credentials, Secret, DEFAULT_MAX_BODY};
use crate::edgerc::{self, Env};
use crate::target::{quote, Delivery, Target, TargetError, TargetSpec};

/// Where upstream calls go.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    /// Akamai (or a loopback stand-in) at `base_url`, signed with `credentials`.
    Akamai {
        base_url: url::Url,
        credentials: Credentials,
    },
    /// The built-in simulator, started in-process with demo credentials.
    Simulator,
}

/// Checked settings of one data source instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub upstream: Upstream,
    pub account_switch_key: Option<String>,
    pub default_delivery: Option<Delivery>,
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    pub rate_limit_per_minute: u32,
    pub watch: Vec<Target>,
    pub retention: Duration,
    pub history_path: Option<PathBuf>,
    /// The shared PostgreSQL history (`jsonData.historyDatabase`); `None` keeps the embedded
    /// SQLite (or memory) history of `history_path`.
    pub history_database: Option<HistoryDatabase>,
}

/// The `historyDatabase` URL parameters the plugin reads (libpq's names); any other is refused.
pub const SSL_MODE_PARAM: &str = "sslmode";
pub const SSL_ROOT_CERT_PARAM: &str = "sslrootcert";

/// How a PostgreSQL connection is secured: the `sslmode` of the `historyDatabase` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (loopback or a private network only).
    Disable,
    /// TLS, without checking the server's certificate (encrypts, does not authenticate).
    Require,
    /// TLS, the certificate checked against the web PKI roots and the host name.
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 3] = [SslMode::Disable, SslMode::Require, SslMode::VerifyFull];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A checked `historyDatabase`: where the shared history lives. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryDatabase {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<Secret>,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: a PEM file of CA certificates trusted besides the web PKI roots (a
    /// private CA), with `verify-full` only. Read when the store is created.
    pub ssl_root_cert: Option<PathBuf>,
    pub schema: String,
}

impl HistoryDatabase {
    /// `host:port/database`, for health messages, logs and metrics (never the password).
    pub fn describe(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

/// `historyDatabaseSchema` when empty.
pub const DEFAULT_HISTORY_SCHEMA: &str = "akamai_estats";
/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_SCHEMA_CHARS: usize = 63;
/// The `secureJsonData` key of the history database's password.
pub const HISTORY_PASSWORD_FIELD: &str = "historyDatabasePassword";

/// Parses and checks a `postgres://user@host:port/dbname?sslmode=...` URL. `field` names the
/// setting (or the CLI flag) in errors; a URL with a password is refused, since `jsonData` is
/// readable by every Grafana user.
pub fn history_database(
    raw: &str,
    field: &str,
    password: Option<Secret>,
    schema: &str,
) -> Result<HistoryDatabase, SettingsError> {
    const EXAMPLE: &str = "postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full";
    let url = url::Url::parse(raw.trim())
        .map_err(|e| invalid(field, format!("is not a URL ({e}): write it as {EXAMPLE}")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(
            field,
            format!(
                "must start with postgres:// (got {}://), e.g. {EXAMPLE}",
                quote(url.scheme())
            ),
        ));
    }
    if url.password().is_some() {
        return Err(invalid(
            field,
            format!(
                "must not contain a password (jsonData is visible to every Grafana user): remove it from the URL and enter it in secureJsonData.{HISTORY_PASSWORD_FIELD} (the config editor's password field)"
            ),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => {
            return Err(invalid(
                field,
                format!("names no host: write it as {EXAMPLE}"),
            ))
        }
    };
    let database = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8_lossy()
        .to_string();
    if database.is_empty() || database.contains('/') {
        return Err(invalid(
            field,
            format!("must name one database after the host, e.g. {EXAMPLE}"),
        ));
    }
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8_lossy()
        .to_string();
    if user.is_empty() {
        return Err(invalid(
            field,
            format!("must name the database user before the host, e.g. {EXAMPLE}"),
        ));
    }
    // A non-special scheme leaves IP addresses as domains: parse them here.
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mut ssl_mode = if loopback {
        SslMode::Disable
    } else {
        SslMode::VerifyFull
    };
    let mut ssl_root_cert = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            SSL_MODE_PARAM => {
                ssl_mode = SslMode::ALL
                    .into_iter()
                    .find(|m| m.as_str() == value)
                    .ok_or_else(|| {
                        invalid(
                            field,
                            format!(
                                "sslmode {} is not supported: use disable, require or verify-full",
                                quote(&value)
                            ),
                        )
                    })?;
            }
            SSL_ROOT_CERT_PARAM => {
                let path = PathBuf::from(value.as_ref());
                if !path.is_absolute() {
                    return Err(invalid(
                        field,
                        format!(
                            "sslrootcert {} is not an absolute path: name the PEM file of the CA that signed the database's certificate, e.g. sslrootcert=/etc/grafana/pg-ca.pem",
                            quote(&value)
                        ),
                    ));
                }
                ssl_root_cert = Some(path);
            }
            other => {
                return Err(invalid(
                    field,
                    format!(
                        "the parameter {} is not supported: only sslmode (disable, require, verify-full) and sslrootcert (a CA's PEM file) are",
                        quote(other)
                    ),
                ))
            }
        }
    }
    if ssl_root_cert.is_some() && ssl_mode != SslMode::VerifyFull {
        return Err(invalid(
            field,
            format!(
                "sslrootcert is only used to check the server's certificate: add sslmode=verify-full (sslmode is {})",
                ssl_mode.as_str()
            ),
        ));
    }
    let schema = if schema.trim().is_empty() {
        DEFAULT_HISTORY_SCHEMA.to_string()
    } else {
        schema.trim().to_string()
    };
    let schema_ok = schema.len() <= MAX_SCHEMA_CHARS
        && schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !schema_ok {
        return Err(invalid(
            if field.starts_with("jsonData.") {
                json_field("historyDatabaseSchema")
            } else {
                "--schema".to_string()
            },
            format!(
                "{} is not a schema name: use lower-case letters, digits and _ (at most {MAX_SCHEMA_CHARS}, not starting with a digit), e.g. {DEFAULT_HISTORY_SCHEMA}",
                quote(&schema)
            ),
        ));
    }
    Ok(HistoryDatabase {
        host,
        port: url.port().unwrap_or(5432),
        database,
        user,
        password: password.filter(|p| !p.expose().is_empty()),
        ssl_mode,
        ssl_root_cert,
        schema,
    })
}

/// A setting that cannot be used; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("jsonData is not valid JSON ({0})")]
    Json(String),
    /// `field` is spelled as the user sees it, e.g. `jsonData.pollIntervalSeconds` or
    /// `jsonData.watch[2].cpCode`.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Edgerc(#[from] crate::edgerc::EdgercError),
}

/// A whole-number setting's default and inclusive bounds, as validation applies them and the
/// frontend's contract (`src/contract.rs`) exports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

/// `pollIntervalSeconds` against Akamai: eStats samples the last two minutes, so polling faster
/// than every 30 s only spends the budget.
pub const POLL_INTERVAL_SECONDS: Bound = Bound {
    default: 120,
    min: 30,
    max: 3600,
};
pub const REQUEST_TIMEOUT_SECONDS: Bound = Bound {
    default: 30,
    min: 1,
    max: 300,
};
/// `rateLimitPerMinute` against Akamai, whose limit for the Edge Diagnostics endpoints is 40.
pub const RATE_LIMIT_PER_MINUTE: Bound = Bound {
    default: AKAMAI_RATE_LIMIT_PER_MINUTE as u64,
    min: 1,
    max: AKAMAI_RATE_LIMIT_PER_MINUTE as u64,
};
pub const RETENTION_HOURS: Bound = Bound {
    default: 168,
    min: 1,
    max: 8760,
};

pub const DEFAULT_POLL_INTERVAL_SECONDS: u64 = POLL_INTERVAL_SECONDS.default;
/// Poll interval of [`Settings::simulator`] (the CLI's `--simulate`): short, so output moves
/// within seconds. Data sources with `simulate` keep [`DEFAULT_POLL_INTERVAL_SECONDS`].
pub const SIMULATOR_POLL_INTERVAL_SECONDS: u64 = 5;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = REQUEST_TIMEOUT_SECONDS.default;
/// Akamai's limit for the Edge Diagnostics endpoints, per minute.
pub const AKAMAI_RATE_LIMIT_PER_MINUTE: u32 = 40;
pub const DEFAULT_RETENTION_HOURS: u64 = RETENTION_HOURS.default;

/// The longest path accepted for `edgercPath` and `historyPath` (Linux's PATH_MAX).
pub const MAX_PATH_CHARS: usize = 4096;

/// The `secureJsonData` keys of the credentials, in the order an API client lists them.
pub const SECRET_FIELDS: [&str; 3] = ["clientToken", "clientSecret", "accessToken"];

/// Bounds that depend on whether the upstream is Akamai or a local stand-in: a simulator may be
/// polled every second and as often as a load test needs, Akamai may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min_poll_seconds: u64,
    pub max_rate_per_minute: u64,
}

pub const AKAMAI_LIMITS: Limits = Limits {
    min_poll_seconds: POLL_INTERVAL_SECONDS.min,
    max_rate_per_minute: RATE_LIMIT_PER_MINUTE.max,
};
pub const LOOPBACK_LIMITS: Limits = Limits {
    min_poll_seconds: 1,
    max_rate_per_minute: 6000,
};

/// The `jsonData` keys the plugin reads, in the order of docs/design.md's settings table.
/// [`RawJsonData`] has one member per key; a test checks that each of them is read.
pub const JSON_DATA_KEYS: &[&str] = &[
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
    "historyDatabase",
    "historyDatabaseSchema",
    "simulate",
];

/// `jsonData` as sent, every value still untyped so that a wrong type gets a message naming
/// the field instead of a serde error about the whole document.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawJsonData {
    host: Value,
    account_switch_key: Value,
    edgerc_path: Value,
    edgerc_section: Value,
    delivery: Value,
    poll_interval_seconds: Value,
    request_timeout_seconds: Value,
    rate_limit_per_minute: Value,
    watch: Value,
    retention_hours: Value,
    history_path: Value,
    history_database: Value,
    history_database_schema: Value,
    simulate: Value,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn json_field(name: &str) -> String {
    format!("jsonData.{name}")
}

/// A string setting; `null`/absent is "". Numbers are accepted as their text, since provisioning
/// YAML turns `accountSwitchKey: 12345` into a number.
fn text(value: &Value, name: &str) -> Result<String, SettingsError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(invalid(json_field(name), "must be a string")),
    }
}

/// A whole number given as a JSON number or a numeric string; `None` when absent or "".
fn whole_number(value: &Value, name: &str, unit: &str) -> Result<Option<u64>, SettingsError> {
    let wrong = || {
        invalid(
            json_field(name),
            format!("must be a whole number of {unit}, e.g. {}", example(name)),
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s.trim().parse::<u64>().map(Some).map_err(|_| wrong()),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            // 120.0 from a JavaScript number input is still 120.
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                Ok(Some(f as u64))
            }
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

/// The example a message gives for a whole-number setting: its default.
fn example(name: &str) -> u64 {
    match name {
        "pollIntervalSeconds" => POLL_INTERVAL_SECONDS.default,
        "requestTimeoutSeconds" => REQUEST_TIMEOUT_SECONDS.default,
        "rateLimitPerMinute" => RATE_LIMIT_PER_MINUTE.default,
        "retentionHours" => RETENTION_HOURS.default,
        _ => 1,
    }
}

fn bounded(
    value: &Value,
    name: &str,
    unit: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    why_min: &str,
) -> Result<u64, SettingsError> {
    let v = whole_number(value, name, unit)?.unwrap_or(default);
    if v < *range.start() {
        return Err(invalid(
            json_field(name),
            format!(
                "must be at least {} {unit}{why_min}; got {v}",
                range.start()
            ),
        ));
    }
    if v > *range.end() {
        return Err(invalid(
            json_field(name),
            format!("must be at most {} {unit}; got {v}", range.end()),
        ));
    }
    Ok(v)
}

/// A file path setting: a string only (a number is a mistake, not a file named `5`), of at
/// most [`MAX_PATH_CHARS`], without control characters.
fn path_text(value: &Value, name: &str) -> Result<String, SettingsError> {
    let text = match value {
        Value::Null => return Ok(String::new()),
        Value::String(s) => s.trim().to_string(),
        other => {
            let kind = match other {
                Value::Number(_) => "a number",
                Value::Bool(_) => "true or false",
                Value::Array(_) => "a list",
                _ => "an object",
            };
            return Err(invalid(
                json_field(name),
                format!("must be a file path as a string, e.g. \"/var/lib/grafana/estats-history.db\"; got {kind}"),
            ));
        }
    };
    if text.chars().count() > MAX_PATH_CHARS {
        return Err(invalid(
            json_field(name),
            format!(
                "{} is longer than {MAX_PATH_CHARS} characters: give the file's absolute path",
                quote(&text)
            ),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(
            json_field(name),
            format!(
                "{} contains a control character (a NUL or line break): type the path again",
                quote(&text)
            ),
        ));
    }
    Ok(text)
}

fn flag(value: &Value, name: &str) -> Result<bool, SettingsError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("false") => {
            Ok(false)
        }
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        _ => Err(invalid(json_field(name), "must be true or false")),
    }
}

fn host_url(host: &str, field: &str) -> Result<url::Url, SettingsError> {
    edgerc::base_url(host).map_err(|e| invalid(field, e.to_string()))
}

fn account_switch_key(raw: &str) -> Result<Option<String>, SettingsError> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.chars().any(char::is_whitespace) {
        return Err(invalid(
            json_field("accountSwitchKey"),
            "must not contain spaces: copy the key exactly as Akamai gives it, e.g. 1-5C0YLB:1-8BYUX, or leave it empty",
        ));
    }
    Ok(Some(key.to_string()))
}

fn target_field(index: usize, err: &TargetError) -> String {
    let member = match err {
        TargetError::CpCodeNotNumeric(_) | TargetError::CpCodeZero => ".cpCode",
        TargetError::UrlInvalid(..) => ".url",
        TargetError::Delivery(_) => ".delivery",
        TargetError::SubjectCount(_) | TargetError::Key(_) => "",
    };
    format!("jsonData.watch[{index}]{member}")
}

fn watch_list(value: &Value) -> Result<Vec<Target>, SettingsError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                json_field("watch"),
                r#"must be a list of targets, e.g. [{"cpCode": 1209788}, {"url": "https://www.example.com/"}]"#,
            ))
        }
    };
    let mut targets: Vec<Target> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let spec: TargetSpec = serde_json::from_value(item.clone()).map_err(|_| {
            invalid(
                format!("jsonData.watch[{index}]"),
                r#"must be an object with cpCode or url (and optionally delivery), e.g. {"cpCode": 1209788}"#,
            )
        })?;
        let target = spec
            .check()
            .map_err(|e| invalid(target_field(index, &e), e.to_string()))?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// Credentials from `secureJsonData`, if any of them is set (`Ok(None)` when none is).
fn secure_credentials(
    secure: &HashMap<String, String>,
) -> Result<Option<Credentials>, SettingsError> {
    let values: Vec<Option<String>> = SECRET_FIELDS
        .iter()
        .map(|name| {
            secure
                .get(*name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let missing: Vec<&str> = SECRET_FIELDS
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        let field = match missing.as_slice() {
            [one] => format!("secureJsonData.{one}"),
            _ => "secureJsonData".to_string(),
        };
        return Err(invalid(
            field,
            format!(
                "{} {} missing: clientToken, clientSecret and accessToken go together; copy all three from the same API client in Akamai Control Center",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" },
            ),
        ));
    }
    let mut values = values.into_iter().flatten();
    let mut next = || Secret::new(values.next().unwrap_or_default());
    Ok(Some(Credentials {
        client_token: next(),
        client_secret: next(),
        access_token: next(),
        max_body: DEFAULT_MAX_BODY,
    }))
}

fn is_loopback_upstream(upstream: &Upstream) -> bool {
    match upstream {
        Upstream::Simulator => true,
        Upstream::Akamai { base_url, .. } => edgerc::is_loopback_url(base_url),
    }
}

impl Settings {
    /// Parses and checks the settings Grafana sends for a data source instance.
    ///
    /// Credentials come from, in this order: `secureJsonData` (all three values, with
    /// `jsonData.host`), the `.edgerc` file at `jsonData.edgercPath` (section
    /// `jsonData.edgercSection`, environment overrides applied, `jsonData.host` replacing the
    /// file's host when set), or nothing at all with `jsonData.simulate`.
    pub fn from_grafana(
        json_data: &[u8],
        secure: &HashMap<String, String>,
        env: Env<'_>,
    ) -> Result<Settings, SettingsError> {
        const SHAPE: &str =
            "it must be a JSON object such as {\"host\": \"akab-xxxx.luna.akamaiapis.net\"}";
        let raw: RawJsonData = if json_data.iter().all(u8::is_ascii_whitespace) {
            RawJsonData::default()
        } else {
            // Parsed as a Value first: serde's type errors quote the offending text, and only
            // syntax errors (which quote nothing but a position) may reach the message.
            let value: Value = serde_json::from_slice(json_data)
                .map_err(|e| SettingsError::Json(format!("{e}; {SHAPE}")))?;
            if !value.is_object() {
                return Err(SettingsError::Json(format!("not an object; {SHAPE}")));
            }
            serde_json::from_value(value)
                .map_err(|_| SettingsError::Json(format!("unexpected shape; {SHAPE}")))?
        };

        let host = text(&raw.host, "host")?;
        let mut account_key =
            account_switch_key(&text(&raw.account_switch_key, "accountSwitchKey")?)?;

        // Checked whichever credentials are used, so that a wrong type never passes unseen.
        let edgerc_path = path_text(&raw.edgerc_path, "edgercPath")?;
        let edgerc_section = text(&raw.edgerc_section, "edgercSection")?;

        let upstream = if flag(&raw.simulate, "simulate")? {
            Upstream::Simulator
        } else if let Some(credentials) = secure_credentials(secure)? {
            if host.is_empty() {
                return Err(invalid(
                    json_field("host"),
                    "the EdgeGrid host is required with API credentials: copy `host` from the same API client, e.g. akab-xxxx.luna.akamaiapis.net",
                ));
            }
            Upstream::Akamai {
                base_url: host_url(&host, "jsonData.host")?,
                credentials,
            }
        } else {
            let path = edgerc_path;
            if path.is_empty() {
                return Err(invalid(
                    "secureJsonData",
                    "no credentials: either enter clientToken, clientSecret and accessToken of an API client (with jsonData.host), \
                     or set jsonData.edgercPath to an .edgerc file on the Grafana host, \
                     or set jsonData.simulate to true to use the built-in simulator",
                ));
            }
            let section = edgerc_section;
            let section = if section.is_empty() {
                "default"
            } else {
                section.as_str()
            };
            let loaded = edgerc::load(Path::new(&path), section, env)?;
            if account_key.is_none() {
                account_key = loaded.account_key;
            }
            let base_url = if host.is_empty() {
                loaded.base_url
            } else {
                host_url(&host, "jsonData.host")?
            };
            Upstream::Akamai {
                base_url,
                credentials: loaded.credentials,
            }
        };

        let loopback = is_loopback_upstream(&upstream);
        let limits = if loopback {
            LOOPBACK_LIMITS
        } else {
            AKAMAI_LIMITS
        };
        let poll = bounded(
            &raw.poll_interval_seconds,
            "pollIntervalSeconds",
            "seconds",
            DEFAULT_POLL_INTERVAL_SECONDS,
            limits.min_poll_seconds..=POLL_INTERVAL_SECONDS.max,
            if loopback {
                ""
            } else {
                " (eStats samples the last two minutes; polling Akamai faster only spends its requests-per-minute budget)"
            },
        )?;
        let timeout = bounded(
            &raw.request_timeout_seconds,
            "requestTimeoutSeconds",
            "seconds",
            REQUEST_TIMEOUT_SECONDS.default,
            REQUEST_TIMEOUT_SECONDS.min..=REQUEST_TIMEOUT_SECONDS.max,
            "",
        )?;
        let rate = whole_number(&raw.rate_limit_per_minute, "rateLimitPerMinute", "requests")?
            .unwrap_or(RATE_LIMIT_PER_MINUTE.default);
        if rate < RATE_LIMIT_PER_MINUTE.min || rate > limits.max_rate_per_minute {
            let message = if loopback {
                format!(
                    "must be between {} and {} requests per minute; got {rate}",
                    RATE_LIMIT_PER_MINUTE.min, limits.max_rate_per_minute
                )
            } else {
                format!(
                    "must be between {} and {} requests per minute (Akamai allows {AKAMAI_RATE_LIMIT_PER_MINUTE} per minute for eStats; more only earns 429 answers); got {rate}",
                    RATE_LIMIT_PER_MINUTE.min, limits.max_rate_per_minute
                )
            };
            return Err(invalid(json_field("rateLimitPerMinute"), message));
        }
        let retention_hours = bounded(
            &raw.retention_hours,
            "retentionHours",
            "hours",
            RETENTION_HOURS.default,
            RETENTION_HOURS.min..=RETENTION_HOURS.max,
            "",
        )?;
        let default_delivery = Delivery::parse_optional(&text(&raw.delivery, "delivery")?)
            .map_err(|e| invalid(json_field("delivery"), e))?;
        let history_path = path_text(&raw.history_path, "historyPath")?;
        let database = text(&raw.history_database, "historyDatabase")?;
        let schema = text(&raw.history_database_schema, "historyDatabaseSchema")?;
        let history_database = if database.is_empty() {
            None
        } else {
            let password = secure
                .get(HISTORY_PASSWORD_FIELD)
                .map(|p| Secret::new(p.clone()));
            Some(history_database(
                &database,
                &json_field("historyDatabase"),
                password,
                &schema,
            )?)
        };

        Ok(Settings {
            upstream,
            account_switch_key: account_key,
            default_delivery,
            poll_interval: Duration::from_secs(poll),
            request_timeout: Duration::from_secs(timeout),
            rate_limit_per_minute: u32::try_from(rate).unwrap_or(u32::MAX),
            watch: watch_list(&raw.watch)?,
            retention: Duration::from_secs(retention_hours * 3600),
            history_path: (!history_path.is_empty()).then(|| PathBuf::from(history_path)),
            history_database,
        })
    }

    /// Settings for the CLI: credentials (and `account_key`) from an `.edgerc` section with
    /// environment overrides; everything else at its default.
    pub fn from_edgerc(
        path: &Path,
        section: &str,
        env: Env<'_>,
    ) -> Result<Settings, SettingsError> {
        let loaded = edgerc::load(path, section, env)?;
        Ok(Settings {
            account_switch_key: loaded.account_key,
            ..Settings::defaults(Upstream::Akamai {
                base_url: loaded.base_url,
                credentials: loaded.credentials,
            })
        })
    }

    /// The built-in simulator with defaults, except that it is polled every
    /// [`SIMULATOR_POLL_INTERVAL_SECONDS`] so demos show movement quickly.
    pub fn simulator() -> Settings {
        Settings {
            poll_interval: Duration::from_secs(SIMULATOR_POLL_INTERVAL_SECONDS),
            ..Settings::defaults(Upstream::Simulator)
        }
    }

    fn defaults(upstream: Upstream) -> Settings {
        Settings {
            upstream,
            account_switch_key: None,
            default_delivery: None,
            poll_interval: Duration::from_secs(DEFAULT_POLL_INTERVAL_SECONDS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            rate_limit_per_minute: AKAMAI_RATE_LIMIT_PER_MINUTE,
            watch: Vec::new(),
            retention: Duration::from_secs(DEFAULT_RETENTION_HOURS * 3600),
            history_path: None,
            history_database: None,
        }
    }

    /// True for the simulator and for loopback hosts (a local stand-in for Akamai), which get
    /// looser polling and rate limits.
    pub fn is_loopback(&self) -> bool {
        is_loopback_upstream(&self.upstream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/fixtures/python-sample_edgerc");
    const SECRET: &str = "Zm9vYmFyU2VjcmV0VmFsdWU+/xyz=";
    const TOKEN: &str = "akab-TOKENVALUE-abcdefgh12345678";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn secrets() -> HashMap<String, String> {
        HashMap::from([
            ("clientToken".to_string(), TOKEN.to_string()),
            ("clientSecret".to_string(), SECRET.to_string()),
            (
                "accessToken".to_string(),
                "akab-ACCESSVALUE-abcdefgh1234".to_string(),
            ),
        ])
    }

    fn with_secrets(json: &str) -> Result<Settings, SettingsError> {
        Settings::from_grafana(json.as_bytes(), &secrets(), &no_env)
    }

    fn sim(json: &str) -> Result<Settings, SettingsError> {
        let obj: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap();
        let mut obj = obj;
        obj.insert("simulate".into(), Value::Bool(true));
        Settings::from_grafana(
            Value::Object(obj).to_string().as_bytes(),
            &HashMap::new(),
            &no_env,
        )
    }

    fn field_of(err: &SettingsError) -> &str {
        match err {
            SettingsError::Invalid { field, .. } => field,
            other => panic!("not Invalid: {other:?}"),
        }
    }

    #[test]
    fn every_listed_key_is_read() {
        // A key the parser ignored would not be blamed for a value of the wrong type.
        for &key in JSON_DATA_KEYS {
            let json = format!(r#"{{"host": "akab-x.luna.akamaiapis.net", "{key}": {{"a": 1}}}}"#);
            let err = with_secrets(&json).expect_err(key);
            assert_eq!(field_of(&err), format!("jsonData.{key}"), "{err}");
        }
    }

    /// Every error message is checked against all credential values used in these tests.
    fn assert_no_secret(err: &SettingsError) {
        let shown = format!("{err} {err:?}");
        for s in [SECRET, TOKEN, "ACCESSVALUE", "TOKENVALUE", "Zm9vYmFy"] {
            assert!(!shown.contains(s), "{shown}");
        }
    }

    fn edgerc_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgerc");
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }

    fn edgerc_json(path: &str, section: &str) -> String {
        serde_json::json!({"edgercPath": path, "edgercSection": section}).to_string()
    }

    #[test]
    fn simulate_needs_no_credentials_and_ignores_host() {
        let s = Settings::from_grafana(
            br#"{"simulate": true, "host": "http://example.com/path"}"#,
            &HashMap::new(),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.upstream, Upstream::Simulator);
        assert!(s.is_loopback());
        assert_eq!(s.poll_interval, Duration::from_secs(120));
    }

    #[test]
    fn secure_json_data_with_host() {
        let s = with_secrets(r#"{"host": "https://akab-h.luna.akamaiapis.net/"}"#).unwrap();
        match &s.upstream {
            Upstream::Akamai {
                base_url,
                credentials,
            } => {
                assert_eq!(base_url.as_str(), "https://akab-h.luna.akamaiapis.net/");
                assert_eq!(credentials.client_token.expose(), TOKEN);
                assert_eq!(credentials.client_secret.expose(), SECRET);
                assert_eq!(
                    credentials.access_token.expose(),
                    "akab-ACCESSVALUE-abcdefgh1234"
                );
                assert_eq!(credentials.max_body, DEFAULT_MAX_BODY);
            }
            other => panic!("{other:?}"),
        }
        assert!(!s.is_loopback());
        // Defaults of the settings table in docs/design.md.
        assert_eq!(s.poll_interval, Duration::from_secs(120));
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert_eq!(s.rate_limit_per_minute, 40);
        assert_eq!(s.retention, Duration::from_secs(168 * 3600));
        assert_eq!(s.history_path, None);
        assert_eq!(s.account_switch_key, None);
        assert_eq!(s.default_delivery, None);
        assert!(s.watch.is_empty());
        let shown = format!("{s:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    }

    #[test]
    fn empty_json_data_is_an_empty_object() {
        let err = Settings::from_grafana(b"", &HashMap::new(), &no_env).unwrap_err();
        assert_eq!(field_of(&err), "secureJsonData");
        let msg = err.to_string();
        assert!(
            msg.contains("clientToken, clientSecret and accessToken"),
            "{msg}"
        );
        assert!(msg.contains("jsonData.edgercPath"), "{msg}");
        assert!(msg.contains("jsonData.simulate"), "{msg}");
        assert!(Settings::from_grafana(b"  ", &HashMap::new(), &no_env).is_err());
    }

    #[test]
    fn invalid_json() {
        let quoted_secret = format!("\"{SECRET}\"");
        for bad in [&b"{"[..], b"[1]", quoted_secret.as_bytes(), b"{\"host\": }"] {
            let err = Settings::from_grafana(bad, &secrets(), &no_env).unwrap_err();
            assert!(matches!(err, SettingsError::Json(_)), "{err:?}");
            assert_no_secret(&err);
        }
    }

    #[test]
    fn partial_secrets_name_the_missing_ones() {
        let mut secure = secrets();
        secure.remove("clientSecret");
        let err =
            Settings::from_grafana(br#"{"host": "h.example"}"#, &secure, &no_env).unwrap_err();
        assert_eq!(field_of(&err), "secureJsonData.clientSecret");
        assert!(err.to_string().contains("clientSecret is missing"), "{err}");
        assert_no_secret(&err);

        let secure = HashMap::from([
            ("accessToken".to_string(), "   ".to_string()),
            ("clientToken".to_string(), TOKEN.to_string()),
        ]);
        let err =
            Settings::from_grafana(br#"{"host": "h.example"}"#, &secure, &no_env).unwrap_err();
        assert_eq!(field_of(&err), "secureJsonData");
        assert!(
            err.to_string()
                .contains("clientSecret and accessToken are missing"),
            "{err}"
        );
        assert_no_secret(&err);
    }

    #[test]
    fn secrets_need_a_host() {
        for json in ["{}", r#"{"host": ""}"#, r#"{"host": null}"#] {
            let err = with_secrets(json).unwrap_err();
            assert_eq!(field_of(&err), "jsonData.host");
            assert_no_secret(&err);
        }
    }

    #[test]
    fn host_rules() {
        let err = with_secrets(r#"{"host": "http://akab-h.luna.akamaiapis.net"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "jsonData.host: http is only allowed for loopback simulators (127.0.0.1); use your https EdgeGrid host"
        );
        let err =
            with_secrets(r#"{"host": "akab-h.luna.akamaiapis.net/edge-diagnostics/v1/estats"}"#)
                .unwrap_err();
        assert_eq!(field_of(&err), "jsonData.host");
        let s = with_secrets(r#"{"host": "http://127.0.0.1:18080"}"#).unwrap();
        assert!(s.is_loopback());
        let s = with_secrets(r#"{"host": "akab-h.luna.akamaiapis.net"}"#).unwrap();
        assert!(!s.is_loopback());
        // A secret pasted into the host field is not echoed back.
        let err = with_secrets(&format!(r#"{{"host": "{SECRET}"}}"#)).unwrap_err();
        assert_no_secret(&err);
    }

    #[test]
    fn account_switch_key_rules() {
        let s =
            with_secrets(r#"{"host": "h.example", "accountSwitchKey": "  1-ABC:1-DEF "}"#).unwrap();
        assert_eq!(s.account_switch_key.as_deref(), Some("1-ABC:1-DEF"));
        let s = with_secrets(r#"{"host": "h.example", "accountSwitchKey": "   "}"#).unwrap();
        assert_eq!(s.account_switch_key, None);
        let err = with_secrets(r#"{"host": "h.example", "accountSwitchKey": "1-ABC 1-DEF"}"#)
            .unwrap_err();
        assert_eq!(field_of(&err), "jsonData.accountSwitchKey");
    }

    #[test]
    fn delivery_rule() {
        let s = with_secrets(r#"{"host": "h.example", "delivery": "enhanced_tls"}"#).unwrap();
        assert_eq!(s.default_delivery, Some(Delivery::EnhancedTls));
        let err = with_secrets(r#"{"host": "h.example", "delivery": "FAST"}"#).unwrap_err();
        assert_eq!(field_of(&err), "jsonData.delivery");
        assert!(err.to_string().contains("STANDARD_TLS"), "{err}");
    }

    #[test]
    fn poll_interval_bounds_depend_on_loopback() {
        let real = |v: &str| {
            with_secrets(&format!(
                r#"{{"host": "h.example", "pollIntervalSeconds": {v}}}"#
            ))
        };
        assert_eq!(real("30").unwrap().poll_interval, Duration::from_secs(30));
        assert_eq!(
            real("3600").unwrap().poll_interval,
            Duration::from_secs(3600)
        );
        for bad in ["29", "0", "3601", "-1", "1.5", "\"soon\"", "true"] {
            let err = real(bad).unwrap_err();
            assert_eq!(field_of(&err), "jsonData.pollIntervalSeconds", "{bad}");
        }
        assert!(real("29")
            .unwrap_err()
            .to_string()
            .contains("at least 30 seconds"));

        let loopback = |v: &str| {
            with_secrets(&format!(
                r#"{{"host": "http://localhost:8080", "pollIntervalSeconds": {v}}}"#
            ))
        };
        assert_eq!(loopback("1").unwrap().poll_interval, Duration::from_secs(1));
        assert!(loopback("0").is_err());
        assert!(loopback("3601").is_err());
        assert_eq!(
            sim(r#"{"pollIntervalSeconds": 2}"#).unwrap().poll_interval,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn numbers_as_strings() {
        let s = with_secrets(
            r#"{"host": "h.example", "pollIntervalSeconds": "60", "requestTimeoutSeconds": " 10 ",
                "rateLimitPerMinute": "20", "retentionHours": "24", "simulate": "false"}"#,
        )
        .unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.rate_limit_per_minute, 20);
        assert_eq!(s.retention, Duration::from_secs(24 * 3600));
        // Empty strings (a cleared form field) mean the default; 120.0 is 120.
        let s = with_secrets(
            r#"{"host": "h.example", "pollIntervalSeconds": "", "retentionHours": 48.0}"#,
        )
        .unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(120));
        assert_eq!(s.retention, Duration::from_secs(48 * 3600));
        let s =
            Settings::from_grafana(br#"{"simulate": "true"}"#, &HashMap::new(), &no_env).unwrap();
        assert_eq!(s.upstream, Upstream::Simulator);
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(
            with_secrets(r#"{"host": "h.example", "tlsSkipVerify": true, "foo": [1]}"#).is_ok()
        );
    }

    #[test]
    fn request_timeout_bounds() {
        for (v, ok) in [("1", true), ("300", true), ("0", false), ("301", false)] {
            let r = with_secrets(&format!(
                r#"{{"host": "h.example", "requestTimeoutSeconds": {v}}}"#
            ));
            assert_eq!(r.is_ok(), ok, "{v}");
            if let Err(e) = r {
                assert_eq!(field_of(&e), "jsonData.requestTimeoutSeconds");
            }
        }
    }

    #[test]
    fn rate_limit_bounds_depend_on_loopback() {
        let real = |v: &str| {
            with_secrets(&format!(
                r#"{{"host": "h.example", "rateLimitPerMinute": {v}}}"#
            ))
        };
        assert_eq!(real("1").unwrap().rate_limit_per_minute, 1);
        assert_eq!(real("40").unwrap().rate_limit_per_minute, 40);
        for bad in ["0", "41"] {
            let err = real(bad).unwrap_err();
            assert_eq!(field_of(&err), "jsonData.rateLimitPerMinute");
            assert!(err.to_string().contains("between 1 and 40"), "{err}");
        }
        let local = |v: &str| {
            with_secrets(&format!(
                r#"{{"host": "http://127.0.0.1:9", "rateLimitPerMinute": {v}}}"#
            ))
        };
        assert_eq!(local("6000").unwrap().rate_limit_per_minute, 6000);
        assert!(local("6001").is_err());
        assert!(local("0").is_err());
        assert_eq!(
            sim(r#"{"rateLimitPerMinute": 600}"#)
                .unwrap()
                .rate_limit_per_minute,
            600
        );
    }

    #[test]
    fn retention_and_history_path() {
        for (v, ok) in [("1", true), ("8760", true), ("0", false), ("8761", false)] {
            let r = sim(&format!(r#"{{"retentionHours": {v}}}"#));
            assert_eq!(r.is_ok(), ok, "{v}");
            if let Err(e) = r {
                assert_eq!(field_of(&e), "jsonData.retentionHours");
            }
        }
        assert_eq!(sim(r#"{"historyPath": ""}"#).unwrap().history_path, None);
        assert_eq!(
            sim(r#"{"historyPath": " /var/lib/grafana/estats.db "}"#)
                .unwrap()
                .history_path,
            Some(PathBuf::from("/var/lib/grafana/estats.db"))
        );
    }

    #[test]
    fn paths_are_strings_of_sane_length() {
        for (json, field) in [
            (r#"{"historyPath": 5}"#, "jsonData.historyPath"),
            (r#"{"historyPath": [5]}"#, "jsonData.historyPath"),
            (r#"{"historyPath": "a\u0000b"}"#, "jsonData.historyPath"),
        ] {
            let err = sim(json).unwrap_err();
            assert_eq!(field_of(&err), field, "{json}");
            assert!(err.to_string().len() < 300, "{err}");
        }
        let long = serde_json::json!({"historyPath": "/".repeat(5000)}).to_string();
        let err = sim(&long).unwrap_err();
        assert_eq!(field_of(&err), "jsonData.historyPath");
        assert!(err.to_string().len() < 300, "{err}");
        let err =
            Settings::from_grafana(br#"{"edgercPath": 5}"#, &HashMap::new(), &no_env).unwrap_err();
        assert_eq!(field_of(&err), "jsonData.edgercPath");
    }

    #[test]
    fn long_inputs_are_quoted_short() {
        let long = "a".repeat(10_000);
        for json in [
            serde_json::json!({"host": long}),
            serde_json::json!({"host": format!("http://{long}")}),
            serde_json::json!({"host": "h.example", "delivery": long}),
            serde_json::json!({"host": "h.example", "watch": [{"url": long}]}),
            serde_json::json!({"host": "h.example", "watch": [{"cpCode": long}]}),
        ] {
            let err = with_secrets(&json.to_string()).unwrap_err();
            assert!(err.to_string().len() < 400, "{err}");
        }
        let json = serde_json::json!({"edgercPath": format!("/nonexistent/{long}")}).to_string();
        let err = Settings::from_grafana(json.as_bytes(), &HashMap::new(), &no_env).unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
        let json =
            serde_json::json!({"edgercPath": "/nonexistent", "edgercSection": long}).to_string();
        let err = Settings::from_grafana(json.as_bytes(), &HashMap::new(), &no_env).unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn loopback_names_get_loopback_limits() {
        for host in [
            "http://localhost:8080",
            "http://sim.localhost:8080",
            "http://127.0.0.2:9",
            "http://[::1]:9",
        ] {
            let s = with_secrets(&format!(
                r#"{{"host": "{host}", "pollIntervalSeconds": 1}}"#
            ))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
            assert!(s.is_loopback(), "{host}");
        }
        for host in ["http://localhost.example.com", "http://10.0.0.1"] {
            assert!(
                with_secrets(&format!(r#"{{"host": "{host}"}}"#)).is_err(),
                "{host}"
            );
        }
    }

    #[test]
    fn watch_list_checks_and_dedupes() {
        let s = sim(
            r#"{"watch": [{"cpCode": 1209788, "delivery": "STANDARD_TLS"}, {"url": "https://www.example.com/"},
                          {"cpCode": "1209788", "delivery": "standard_tls"}, {"cpCode": 7}]}"#,
        )
        .unwrap();
        assert_eq!(
            s.watch,
            vec![
                Target::cp_code(1209788, Some(Delivery::StandardTls)),
                Target {
                    subject: crate::target::Subject::Url("https://www.example.com/".into()),
                    delivery: None
                },
                Target::cp_code(7, None),
            ]
        );
        for (json, field) in [
            (
                r#"[{"cpCode": 1}, {"cpCode": 2}, {"cpCode": "12a"}]"#,
                "jsonData.watch[2].cpCode",
            ),
            (r#"[{"url": "www.example.com"}]"#, "jsonData.watch[0].url"),
            (
                r#"[{"cpCode": 1, "delivery": "X"}]"#,
                "jsonData.watch[0].delivery",
            ),
            (
                r#"[{"cpCode": 1, "url": "https://x/"}]"#,
                "jsonData.watch[0]",
            ),
            (r#"[{}]"#, "jsonData.watch[0]"),
            (r#"[1, 2]"#, "jsonData.watch[0]"),
            (r#"{"cpCode": 1}"#, "jsonData.watch"),
        ] {
            let err = sim(&format!(r#"{{"watch": {json}}}"#)).unwrap_err();
            assert_eq!(field_of(&err), field, "{json}: {err}");
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (json, field) in [
            (r#"{"host": ["h"]}"#, "jsonData.host"),
            (
                r#"{"host": "h.example", "simulate": 3}"#,
                "jsonData.simulate",
            ),
            (
                r#"{"host": "h.example", "delivery": {}}"#,
                "jsonData.delivery",
            ),
            (
                r#"{"host": "h.example", "historyPath": false}"#,
                "jsonData.historyPath",
            ),
        ] {
            let err = with_secrets(json).unwrap_err();
            assert_eq!(field_of(&err), field, "{json}");
        }
        // A numeric account switch key from YAML is its text.
        let s = with_secrets(r#"{"host": "h.example", "accountSwitchKey": 12345}"#).unwrap();
        assert_eq!(s.account_switch_key.as_deref(), Some("12345"));
    }

    #[test]
    fn python_sample_edgerc_sections() {
        let (_dir, path) = edgerc_file(SAMPLE);
        for section in ["default", "broken", "dashes", "headers"] {
            let s = Settings::from_grafana(
                edgerc_json(&path, section).as_bytes(),
                &HashMap::new(),
                &no_env,
            )
            .unwrap_or_else(|e| panic!("[{section}]: {e}"));
            match s.upstream {
                Upstream::Akamai {
                    base_url,
                    credentials,
                } => {
                    assert_eq!(
                        base_url.as_str(),
                        "https://xxxx-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.luna.akamaiapis.net/"
                    );
                    assert_eq!(
                        credentials.client_secret.expose(),
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="
                    );
                    assert_eq!(credentials.max_body, 131072);
                }
                other => panic!("{other:?}"),
            }
        }
        // Section defaults to "default".
        let json = serde_json::json!({ "edgercPath": path }).to_string();
        assert!(Settings::from_grafana(json.as_bytes(), &HashMap::new(), &no_env).is_ok());
        let err = Settings::from_grafana(
            edgerc_json(&path, "nope").as_bytes(),
            &HashMap::new(),
            &no_env,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("[default], [broken], [headers], [dashes]"),
            "{err}"
        );
    }

    #[test]
    fn typod_edgerc_is_reported() {
        let text = format!(
            "[default]\nhost = akab-h.luna.akamaiapis.net\nclient_token = {TOKEN}\nclient_secert = {SECRET}\naccess_token = at\n"
        );
        let (_dir, path) = edgerc_file(&text);
        let err = Settings::from_grafana(
            edgerc_json(&path, "default").as_bytes(),
            &HashMap::new(),
            &no_env,
        )
        .unwrap_err();
        assert!(matches!(err, SettingsError::Edgerc(_)), "{err:?}");
        assert!(
            err.to_string().ends_with(
                "line 4 of PATH: unknown key `client_secert` in section [default]: did you mean `client_secret`?"
                    .replace("PATH", &path)
                    .as_str()
            ),
            "{err}"
        );
        assert_no_secret(&err);

        let (_dir2, empty) = edgerc_file(&format!(
            "[default]\nhost = h.example\nclient_token = {TOKEN}\nclient_secret =\naccess_token = at\n"
        ));
        let err = Settings::from_grafana(
            edgerc_json(&empty, "default").as_bytes(),
            &HashMap::new(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty client_secret"), "{err}");
        assert_no_secret(&err);

        let err = Settings::from_grafana(
            edgerc_json("/nonexistent/edgerc", "default").as_bytes(),
            &HashMap::new(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/edgerc"), "{err}");
    }

    #[test]
    fn edgerc_with_env_overrides_and_account_key() {
        let (_dir, path) = edgerc_file(SAMPLE);
        let env = |name: &str| match name {
            "AKAMAI_DASHES_HOST" => Some("http://127.0.0.1:18080".to_string()),
            "AKAMAI_CLIENT_SECRET" => Some(SECRET.to_string()),
            "AKAMAI_DASHES_ACCOUNT_KEY" => Some("1-FROMENV".to_string()),
            _ => None,
        };
        let s = Settings::from_grafana(
            edgerc_json(&path, "dashes").as_bytes(),
            &HashMap::new(),
            &env,
        )
        .unwrap();
        assert!(s.is_loopback());
        assert_eq!(s.account_switch_key.as_deref(), Some("1-FROMENV"));
        match &s.upstream {
            Upstream::Akamai {
                base_url,
                credentials,
            } => {
                assert_eq!(base_url.as_str(), "http://127.0.0.1:18080/");
                assert_eq!(credentials.client_secret.expose(), SECRET);
            }
            other => panic!("{other:?}"),
        }
        // jsonData wins over the file for host and accountSwitchKey.
        let json = serde_json::json!({
            "edgercPath": path, "host": "https://other.example", "accountSwitchKey": "1-JSON"
        })
        .to_string();
        let s = Settings::from_grafana(json.as_bytes(), &HashMap::new(), &env).unwrap();
        assert_eq!(s.account_switch_key.as_deref(), Some("1-JSON"));
        assert!(
            matches!(&s.upstream, Upstream::Akamai { base_url, .. } if base_url.as_str() == "https://other.example/")
        );
    }

    #[test]
    fn secure_json_data_wins_over_edgerc() {
        let json =
            serde_json::json!({"edgercPath": "/nonexistent", "host": "h.example"}).to_string();
        let s = Settings::from_grafana(json.as_bytes(), &secrets(), &no_env).unwrap();
        assert!(
            matches!(&s.upstream, Upstream::Akamai { credentials, .. } if credentials.client_token.expose() == TOKEN)
        );
    }

    #[test]
    fn from_edgerc_and_simulator_constructors() {
        let (_dir, path) = edgerc_file(&format!("{SAMPLE}\n[acct]\nhost = h.example\nclient_token = a\nclient_secret = b\naccess_token = c\naccount_key = 1-XYZ\n"));
        let s = Settings::from_edgerc(Path::new(&path), "broken", &no_env).unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(120));
        assert_eq!(s.rate_limit_per_minute, 40);
        assert!(!s.is_loopback());
        let s = Settings::from_edgerc(Path::new(&path), "acct", &no_env).unwrap();
        assert_eq!(s.account_switch_key.as_deref(), Some("1-XYZ"));
        let err = Settings::from_edgerc(Path::new(&path), "missing", &no_env).unwrap_err();
        assert!(matches!(err, SettingsError::Edgerc(_)));

        let s = Settings::simulator();
        assert_eq!(s.upstream, Upstream::Simulator);
        assert!(s.is_loopback());
        assert_eq!(
            s.poll_interval,
            Duration::from_secs(SIMULATOR_POLL_INTERVAL_SECONDS)
        );
        assert_eq!(s.rate_limit_per_minute, 40);
    }

    #[test]
    fn no_error_shows_a_secret() {
        // Provoke every kind of error with secret-looking values around.
        let jsons = [
            format!(r#"{{"host": "{SECRET}"}}"#),
            format!(r#"{{"host": "http://{SECRET}"}}"#),
            format!(r#"{{"host": "h.example", "pollIntervalSeconds": "{SECRET}"}}"#),
            format!(r#"{{"host": "h.example", "rateLimitPerMinute": "{SECRET}"}}"#),
            format!(r#"{{"host": "h.example", "accountSwitchKey": "{SECRET} x"}}"#),
            r#"{"host": "h.example", "retentionHours": 0}"#.to_string(),
            r#"{"host": "h.example", "requestTimeoutSeconds": 0}"#.to_string(),
            format!(r#"{{"host": "h.example", "simulate": "{SECRET}"}}"#),
            r#"{"host": "h.example", "watch": 5}"#.to_string(),
            "{".to_string(),
        ];
        for json in &jsons {
            let err = with_secrets(json).unwrap_err();
            assert_no_secret(&err);
        }
        for missing in SECRET_FIELDS {
            let mut secure = secrets();
            secure.remove(missing);
            let err =
                Settings::from_grafana(br#"{"host": "h.example"}"#, &secure, &no_env).unwrap_err();
            assert_no_secret(&err);
        }
        let env = |name: &str| (name == "AKAMAI_MAX_BODY").then(|| SECRET.to_string());
        let (_dir, path) = edgerc_file(SAMPLE);
        let err = Settings::from_grafana(
            edgerc_json(&path, "default").as_bytes(),
            &HashMap::new(),
            &env,
        )
        .unwrap_err();
        assert_no_secret(&err);
    }

    #[test]
    fn history_database_url_rules() {
        let s = sim("{}").unwrap();
        assert_eq!(s.history_database, None);
        let s = sim(r#"{"historyDatabase": "postgres://grafana@127.0.0.1/test"}"#).unwrap();
        let db = s.history_database.unwrap();
        assert_eq!(
            (
                db.host.as_str(),
                db.port,
                db.database.as_str(),
                db.user.as_str()
            ),
            ("127.0.0.1", 5432, "test", "grafana")
        );
        assert_eq!(db.ssl_mode, SslMode::Disable);
        assert_eq!(db.schema, DEFAULT_HISTORY_SCHEMA);
        assert_eq!(db.describe(), "127.0.0.1:5432/test");
        let s = sim(
            r#"{"historyDatabase": "postgresql://g@db.example.com:6543/gf", "historyDatabaseSchema": "estats_2"}"#,
        )
        .unwrap();
        let db = s.history_database.unwrap();
        assert_eq!((db.port, db.ssl_mode), (6543, SslMode::VerifyFull));
        assert_eq!(db.schema, "estats_2");
        assert_eq!(db.ssl_root_cert, None);
        let s = sim(
            r#"{"historyDatabase": "postgres://g@db.example.com/gf?sslmode=verify-full&sslrootcert=/etc/grafana/pg%20ca.pem"}"#,
        )
        .unwrap();
        assert_eq!(
            s.history_database.unwrap().ssl_root_cert,
            Some(PathBuf::from("/etc/grafana/pg ca.pem"))
        );
        for mode in SslMode::ALL {
            let json = format!(
                r#"{{"historyDatabase": "postgres://g@db.example.com/gf?sslmode={}"}}"#,
                mode.as_str()
            );
            assert_eq!(sim(&json).unwrap().history_database.unwrap().ssl_mode, mode);
        }
        for (json, field, words) in [
            (
                r#"{"historyDatabase": "postgres://g:hunter2@db/gf"}"#,
                "jsonData.historyDatabase",
                "secureJsonData.historyDatabasePassword",
            ),
            (
                r#"{"historyDatabase": "mysql://g@db/gf"}"#,
                "jsonData.historyDatabase",
                "postgres://",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/"}"#,
                "jsonData.historyDatabase",
                "database",
            ),
            (
                r#"{"historyDatabase": "postgres://db/gf"}"#,
                "jsonData.historyDatabase",
                "user",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/gf?sslmode=prefer"}"#,
                "jsonData.historyDatabase",
                "verify-full",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/gf?password=x"}"#,
                "jsonData.historyDatabase",
                "only sslmode",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/gf?sslrootcert=ca.pem"}"#,
                "jsonData.historyDatabase",
                "absolute path",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/gf?sslmode=require&sslrootcert=/ca.pem"}"#,
                "jsonData.historyDatabase",
                "sslmode=verify-full",
            ),
            (
                r#"{"historyDatabase": "postgres://g@db/gf", "historyDatabaseSchema": "Bad-Name"}"#,
                "jsonData.historyDatabaseSchema",
                "lower-case",
            ),
            (
                r#"{"historyDatabase": "not a url"}"#,
                "jsonData.historyDatabase",
                "postgres://",
            ),
        ] {
            let err = sim(json).unwrap_err();
            assert_eq!(field_of(&err), field, "{json}");
            assert!(err.to_string().contains(words), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn history_database_password_comes_from_secure_json_data() {
        let secure = HashMap::from([(HISTORY_PASSWORD_FIELD.to_string(), "s3cret".to_string())]);
        let s = Settings::from_grafana(
            br#"{"simulate": true, "historyDatabase": "postgres://g@127.0.0.1/test"}"#,
            &secure,
            &no_env,
        )
        .unwrap();
        let db = s.history_database.unwrap();
        assert_eq!(db.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{db:?}").contains("s3cret"));
    }
}
