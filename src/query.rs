//! A panel query: Grafana's `DataQuery` JSON parsed leniently, then checked into a [`Query`].
//!
//! Every query is parsed on its own, so one malformed query fails only its own refId.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sample::Side;
use crate::target::{quote, Delivery, Subject, Target, TargetError};

/// The largest query JSON answered: a query is a few hundred bytes, so anything near this is
/// not a query; it fails alone (with this message) instead of taking its request down with it.
pub const MAX_QUERY_JSON_BYTES: usize = 1024 * 1024;

/// The most targets one query may name (a CP code list, several URLs, or `"*"`): each is read
/// from the cache or history, and a panel of more is unreadable anyway.
pub const MAX_TARGETS_PER_QUERY: usize = 200;

/// A closed set of names a query field takes: one definition per enum, used by the parser, its
/// messages, live channel paths and the generated frontend contract.
pub trait QueryEnum: Copy + Eq + 'static {
    /// The query JSON key this enum is the value of.
    const FIELD: &'static str;
    /// Every value, in the order the editors offer them.
    const ALL: &'static [Self];
    /// The spelling in query JSON (and in serde, which a test keeps equal).
    fn as_str(self) -> &'static str;

    /// The value spelled `name` (ASCII case ignored, as users type `TimeSeries`).
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// "a, b or c", for messages.
    fn expected() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }

    /// Parses a name; the error names the field and the values it takes.
    fn parse_named(name: &str) -> Result<Self, QueryError> {
        Self::from_name(name).ok_or_else(|| {
            QueryError::new(
                Self::FIELD,
                format!("{} is not one of {}", quote(name), Self::expected()),
            )
        })
    }
}

macro_rules! query_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl QueryEnum for $name {
            const FIELD: &'static str = $field;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl $name {
            /// Every value, in the order the editors offer them.
            pub const ALL: &'static [$name] = <$name as QueryEnum>::ALL;

            pub fn as_str(self) -> &'static str {
                QueryEnum::as_str(self)
            }
        }

        impl FromStr for $name {
            type Err = QueryError;
            fn from_str(s: &str) -> Result<Self, QueryError> {
                Self::parse_named(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

query_enum!(
    /// What a query answers; each has one handler in [`crate::handlers`].
    QueryType, "queryType", {
        Distribution => "distribution",
        Timeseries => "timeseries",
        Summary => "summary",
        TopIps => "topIps",
        /// Annotations: failed polls and threshold crossings ([`crate::handlers::events`]).
        Events => "events",
    }
);

query_enum!(
    /// Whether a query names a CP code or a URL.
    TargetType, "targetType", {
        CpCode => "cpCode",
        Url => "url",
    }
);

query_enum!(
    /// Which sides a query covers.
    SideSelection, "side", {
        Edge => "edge",
        Origin => "origin",
        Both => "both",
    }
);

query_enum!(
    /// How status codes are grouped into series or rows.
    GroupBy, "groupBy", {
        /// One group per HTTP status code ("503").
        Code => "code",
        /// One group per status class ("5xx").
        Class => "class",
        /// One group per side: the totals eStats reports.
        Total => "total",
    }
);

query_enum!(
    /// The number a query shows.
    Metric, "metric", {
        Percentage => "percentage",
        Hits => "hits",
        Errors => "errors",
        FailurePercentage => "failurePercentage",
    }
);

impl QueryType {
    pub const DEFAULT: QueryType = QueryType::Distribution;
}

impl TargetType {
    pub const DEFAULT: TargetType = TargetType::CpCode;
}

impl SideSelection {
    pub const DEFAULT: SideSelection = SideSelection::Both;

    pub fn sides(self) -> &'static [Side] {
        match self {
            SideSelection::Edge => &[Side::Edge],
            SideSelection::Origin => &[Side::Origin],
            SideSelection::Both => &Side::BOTH,
        }
    }
}

impl GroupBy {
    pub const DEFAULT: GroupBy = GroupBy::Code;

    /// The metrics that make sense for this grouping: a status group has a share and a count,
    /// a side's total has a count, an error count and a failure percentage.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            GroupBy::Code | GroupBy::Class => &[Metric::Percentage, Metric::Hits],
            GroupBy::Total => &[Metric::Hits, Metric::Errors, Metric::FailurePercentage],
        }
    }

    /// The metric of a query that names none.
    pub fn default_metric(self) -> Metric {
        match self {
            GroupBy::Code | GroupBy::Class => Metric::Percentage,
            GroupBy::Total => Metric::FailurePercentage,
        }
    }
}

impl Metric {
    /// Whether this metric makes sense for `group_by` (see [`GroupBy::metrics`]).
    pub fn fits(self, group_by: GroupBy) -> bool {
        group_by.metrics().contains(&self)
    }

    /// The metric `name` means under `group_by`: "percentage" of a total is its failure
    /// percentage, the natural spelling for it.
    fn parse_for(name: &str, group_by: GroupBy) -> Result<Metric, QueryError> {
        let metric = match Metric::from_name(name) {
            Some(Metric::Percentage) if group_by == GroupBy::Total => Metric::FailurePercentage,
            Some(m) => m,
            None => return Err(Metric::parse_named(name).unwrap_err()),
        };
        if metric.fits(group_by) {
            return Ok(metric);
        }
        let fitting: Vec<&str> = group_by.metrics().iter().map(|m| m.as_str()).collect();
        Err(QueryError::new(
            "metric",
            format!(
                "{} does not go with groupBy {group_by}: use {} (errors and failurePercentage need groupBy total)",
                metric.as_str(),
                fitting.join(" or ")
            ),
        ))
    }
}

/// The status group a code falls in for a grouping: "503" by code, "5xx" by class.
pub fn status_group(code: u16, group_by: GroupBy) -> String {
    match group_by {
        GroupBy::Class => format!("{}xx", code / 100),
        GroupBy::Code | GroupBy::Total => code.to_string(),
    }
}

/// One item of a status filter: an exact code (`404`) or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusMatch {
    Code(u16),
    Class(u8),
}

/// `statusFilter`, e.g. `"5xx,404"`; empty keeps every status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter(Vec<StatusMatch>);

impl StatusFilter {
    pub fn parse(raw: &str) -> Result<StatusFilter, QueryError> {
        let mut items = Vec::new();
        // Multi-value template variables arrive as "{5xx,404}" or "5xx|404"; accept both.
        let cleaned = raw.trim().trim_start_matches('{').trim_end_matches('}');
        for part in cleaned
            .split([',', '|', ' ', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let lower = part.to_ascii_lowercase();
            let item = if let Some(class) = lower.strip_suffix("xx") {
                match class.parse::<u8>() {
                    Ok(c @ 1..=5) => StatusMatch::Class(c),
                    _ => {
                        return Err(QueryError::new(
                            "statusFilter",
                            format!("{} is not a status class: use 1xx to 5xx", quote(part)),
                        ))
                    }
                }
            } else {
                match lower.parse::<u16>() {
                    Ok(c @ 100..=599) => StatusMatch::Code(c),
                    _ => {
                        return Err(QueryError::new(
                            "statusFilter",
                            format!("{} is not an HTTP status: use codes such as 404 or classes such as 5xx, separated by commas", quote(part)),
                        ))
                    }
                }
            };
            if !items.contains(&item) {
                items.push(item);
            }
        }
        Ok(StatusFilter(items))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The filter's items in the order given (duplicates removed), e.g. for live channel paths.
    pub fn items(&self) -> &[StatusMatch] {
        &self.0
    }

    /// The filter as users write it, its items joined by `separator`: `5xx,404`.
    pub fn joined(&self, separator: &str) -> String {
        self.0
            .iter()
            .map(|m| match m {
                StatusMatch::Code(c) => c.to_string(),
                StatusMatch::Class(c) => format!("{c}xx"),
            })
            .collect::<Vec<_>>()
            .join(separator)
    }

    pub fn matches(&self, code: u16) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|m| match m {
                StatusMatch::Code(c) => *c == code,
                StatusMatch::Class(c) => u16::from(*c) == code / 100,
            })
    }

    /// Status groups a filter names explicitly, so that a filtered class that is absent from
    /// every sample still gets a series (of zeros) instead of vanishing from an alert.
    pub fn explicit_groups(&self, group_by: GroupBy) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|m| match (m, group_by) {
                (StatusMatch::Class(c), GroupBy::Class) => Some(format!("{c}xx")),
                (StatusMatch::Code(c), GroupBy::Code) => Some(c.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// A query that failed to parse or check; `field` is the query JSON key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
    /// The query's type when it was read before the failure, so that metrics count a failed
    /// query under its type without parsing it again.
    pub query_type: Option<QueryType>,
}

impl QueryError {
    /// Whether the error names what it blames: a key of [`FIELDS`], the whole `query` JSON, or
    /// the request's `timeRange`. Property tests and fuzzing hold every error to it.
    pub fn names_its_field(&self) -> bool {
        FIELDS.contains(&self.field) || ["query", "timeRange"].contains(&self.field)
    }

    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            field,
            message: message.into(),
            query_type: None,
        }
    }

    /// The label metrics count this failed query under: its type, or "invalid" when even the
    /// type could not be read.
    pub fn type_label(&self) -> &'static str {
        self.query_type.map_or("invalid", QueryType::as_str)
    }
}

/// The targets a query names: one CP code or URL (today's frames), or a set (`"*"`, a list,
/// several URLs; frames gain a `target` column or come one per target). Never empty, no
/// duplicates, in the order asked, at most [`MAX_TARGETS_PER_QUERY`].
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSet {
    targets: Vec<Target>,
    set: bool,
}

impl TargetSet {
    /// One target: the query's frames are those of a single-target query.
    pub fn one(target: Target) -> TargetSet {
        TargetSet {
            targets: vec![target],
            set: false,
        }
    }

    /// Whether the query names a set (even of one target): its frames say which row or frame
    /// is which target.
    pub fn is_set(&self) -> bool {
        self.set
    }

    /// The targets, in the order asked.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The target of a single-target query (the first of a set).
    pub fn first(&self) -> &Target {
        &self.targets[0]
    }
}

/// A checked panel query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub ref_id: String,
    pub query_type: QueryType,
    /// The one target this query answers: the only one of a single-target query, the first of
    /// a set. Handlers answer one target; a set is answered by one query per target
    /// ([`Query::for_target`]), so handlers never see a set.
    pub target: Target,
    /// Every target the query names (one, or a set).
    pub targets: TargetSet,
    pub side: SideSelection,
    pub group_by: GroupBy,
    pub metric: Metric,
    pub status_filter: StatusFilter,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Duration,
    pub max_data_points: u32,
    pub live: bool,
    /// `events`: the percent the status filter's share crosses (see [`threshold`]).
    pub threshold: Option<f64>,
}

/// The keys of a panel query's JSON that the plugin reads (besides Grafana's own `refId`,
/// `datasource`, `hide`, ...), in the order of docs/design.md's query model. [`RawQuery`] has one
/// member per key; a test checks that each of them is read.
pub const FIELDS: &[&str] = &[
    "queryType",
    "targetType",
    "cpCode",
    "url",
    "delivery",
    "side",
    "groupBy",
    "metric",
    "statusFilter",
    "live",
    "threshold",
];

/// The query JSON as sent; every field untyped so that a wrong type gets a message naming the
/// field and what it takes, instead of serde's "invalid type" about the whole document.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawQuery {
    query_type: Value,
    target_type: Value,
    cp_code: Value,
    url: Value,
    delivery: Value,
    side: Value,
    group_by: Value,
    metric: Value,
    status_filter: Value,
    live: Value,
    threshold: Value,
}

/// What a JSON value is, for messages that must not repeat it.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string field; `None` when absent, null or blank.
fn text_field<'a>(
    field: &'static str,
    value: &'a Value,
    expected: impl FnOnce() -> String,
) -> Result<Option<&'a str>, QueryError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.trim()).filter(|s| !s.is_empty())),
        other => Err(QueryError::new(
            field,
            format!("must be a string: {}; got {}", expected(), kind_of(other)),
        )),
    }
}

/// A field naming one of an enum's values; `None` when absent, null or blank.
fn enum_field<T: QueryEnum>(value: &Value) -> Result<Option<T>, QueryError> {
    text_field(T::FIELD, value, || format!("one of {}", T::expected()))?
        .map(T::parse_named)
        .transpose()
}

/// What Grafana sends besides the JSON, in the units the checks need.
#[derive(Debug, Clone, Copy)]
pub struct QueryContext {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
    pub max_data_points: i64,
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// What a query is read against besides Grafana's request: the data source's default delivery
/// network and its watch list (what `"*"` stands for).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryEnv<'a> {
    pub default_delivery: Option<Delivery>,
    pub watch: &'a [Target],
}

impl Query {
    /// Parses one query. `query_type_field` is `DataQuery.queryType`, used when the JSON lacks
    /// one; `default_delivery` is the data source's. A data source without a watch list is
    /// assumed (`"*"` names nothing); see [`Query::parse_with`].
    pub fn parse(
        ref_id: &str,
        json: &[u8],
        query_type_field: &str,
        ctx: QueryContext,
        default_delivery: Option<Delivery>,
    ) -> Result<Query, QueryError> {
        let env = QueryEnv {
            default_delivery,
            watch: &[],
        };
        Query::parse_with(ref_id, json, query_type_field, ctx, env)
    }

    /// [`Query::parse`] against a data source's settings: `"*"` is resolved against its watch
    /// list now, so that a checked query names concrete targets.
    pub fn parse_with(
        ref_id: &str,
        json: &[u8],
        query_type_field: &str,
        ctx: QueryContext,
        env: QueryEnv<'_>,
    ) -> Result<Query, QueryError> {
        // Until the JSON is read, DataQuery.queryType is all there is to label a failure with.
        let from_field = if query_type_field.trim().is_empty() {
            Some(QueryType::DEFAULT)
        } else {
            QueryType::from_name(query_type_field)
        };
        let raw = Self::read_json(json).map_err(|mut e| {
            e.query_type = from_field;
            e
        })?;
        let query_type = match enum_field::<QueryType>(&raw.query_type)? {
            Some(t) => t,
            None if query_type_field.trim().is_empty() => QueryType::DEFAULT,
            None => QueryType::parse_named(query_type_field)?,
        };
        Self::parse_rest(ref_id, raw, query_type, ctx, env).map_err(|mut e| {
            e.query_type = Some(query_type);
            e
        })
    }

    fn read_json(json: &[u8]) -> Result<RawQuery, QueryError> {
        if json.len() > MAX_QUERY_JSON_BYTES {
            return Err(QueryError::new(
                "query",
                format!(
                    "the query JSON is {} bytes, more than the {MAX_QUERY_JSON_BYTES} a query may have: save the query again from the query editor",
                    json.len()
                ),
            ));
        }
        Ok(if json.iter().all(u8::is_ascii_whitespace) {
            RawQuery::default()
        } else {
            // serde's syntax errors quote no input, only a line and column.
            let value: Value = serde_json::from_slice(json).map_err(|e| {
                QueryError::new("query", format!("the query JSON is malformed ({e}); save the query again from the query editor"))
            })?;
            if !value.is_object() {
                return Err(QueryError::new(
                    "query",
                    format!("the query JSON must be an object, got {}; save the query again from the query editor", kind_of(&value)),
                ));
            }
            // Every field is a Value, so an object always fits.
            serde_json::from_value(value).unwrap_or_default()
        })
    }

    fn parse_rest(
        ref_id: &str,
        raw: RawQuery,
        query_type: QueryType,
        ctx: QueryContext,
        env: QueryEnv<'_>,
    ) -> Result<Query, QueryError> {
        let asked_delivery = match text_field("delivery", &raw.delivery, || {
            "STANDARD_TLS, ENHANCED_TLS or empty".into()
        })? {
            None => None,
            Some(d) => Delivery::parse_optional(d).map_err(|m| QueryError::new("delivery", m))?,
        };
        let delivery = asked_delivery.or(env.default_delivery);

        let url_given = match &raw.url {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        };
        let target_type = enum_field::<TargetType>(&raw.target_type)?.unwrap_or(
            if url_given && raw.cp_code.is_null() {
                TargetType::Url
            } else {
                TargetType::DEFAULT
            },
        );
        let targets = TargetSet::parse(&raw, target_type, delivery, asked_delivery, env.watch)?;
        let side = enum_field(&raw.side)?.unwrap_or(SideSelection::DEFAULT);
        let group_by = enum_field(&raw.group_by)?.unwrap_or(GroupBy::DEFAULT);
        let metric = match text_field("metric", &raw.metric, || {
            format!("one of {}", Metric::expected())
        })? {
            None => group_by.default_metric(),
            Some(m) => Metric::parse_for(m, group_by)?,
        };

        let status_filter = match &raw.status_filter {
            Value::Null => StatusFilter::default(),
            Value::String(s) => StatusFilter::parse(s)?,
            Value::Number(n) => StatusFilter::parse(&n.to_string())?,
            Value::Array(items) => {
                let mut joined = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => joined.push(s.clone()),
                        Value::Number(n) => joined.push(n.to_string()),
                        other => {
                            return Err(QueryError::new(
                                "statusFilter",
                                format!("list items must be codes such as 404 or classes such as \"5xx\"; got {}", kind_of(other)),
                            ))
                        }
                    }
                }
                StatusFilter::parse(&joined.join(","))?
            }
            other => {
                return Err(QueryError::new(
                    "statusFilter",
                    format!(
                    "must be a string such as \"5xx,404\" or a list such as [\"5xx\", 404]; got {}",
                    kind_of(other)
                ),
                ))
            }
        };

        let live = match &raw.live {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" || s == "false" => s == "true",
            Value::String(s) => {
                return Err(QueryError::new(
                    "live",
                    format!("{} is not true or false", quote(s)),
                ))
            }
            other => {
                return Err(QueryError::new(
                    "live",
                    format!("must be true or false; got {}", kind_of(other)),
                ))
            }
        };

        if live && targets.is_set() {
            return Err(QueryError::new(
                "live",
                format!(
                    "a live query streams one target, and this one names a set of {} (a list or \"*\"): turn live off, or name one CP code or URL",
                    targets.len()
                ),
            ));
        }

        let (from, to) = (millis(ctx.from_ms), millis(ctx.to_ms));
        if ctx.from_ms > ctx.to_ms {
            return Err(QueryError::new(
                "timeRange",
                "the time range ends before it starts",
            ));
        }
        Ok(Query {
            ref_id: ref_id.to_string(),
            query_type,
            target: targets.first().clone(),
            targets,
            side,
            group_by,
            metric,
            status_filter,
            from,
            to,
            interval: Duration::from_millis(ctx.interval_ms.max(0) as u64),
            max_data_points: ctx.max_data_points.clamp(0, u32::MAX as i64) as u32,
            live,
            threshold: threshold(&raw.threshold)?,
        })
    }
}

/// The bounds of `threshold`, in percent: above 0 (every poll would cross 0), at most 100.
pub const THRESHOLD_MAX_PERCENT: u64 = 100;

/// `threshold`: a percent as a number or a numeric string (template variables), `None` when
/// absent, null or blank.
fn threshold(value: &Value) -> Result<Option<f64>, QueryError> {
    let bounds =
        || format!("a percent above 0 and at most {THRESHOLD_MAX_PERCENT}, e.g. 2 or \"2.5\"");
    let percent = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => match s.trim().trim_end_matches('%').trim().parse::<f64>() {
            Ok(p) => Some(p),
            Err(_) => {
                return Err(QueryError::new(
                    "threshold",
                    format!("{} is not a number: use {}", quote(s), bounds()),
                ))
            }
        },
        other => {
            return Err(QueryError::new(
                "threshold",
                format!("must be {}; got {}", bounds(), kind_of(other)),
            ))
        }
    };
    match percent {
        Some(p) if p > 0.0 && p <= THRESHOLD_MAX_PERCENT as f64 => Ok(Some(p)),
        _ => Err(QueryError::new(
            "threshold",
            format!("{} is out of range: use {}", value_text(value), bounds()),
        )),
    }
}

/// A short spelling of a scalar for messages (long strings quoted short).
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

impl Query {
    /// This query for one of its targets alone: how a set is answered, one target at a time,
    /// by the handlers of single targets.
    pub fn for_target(&self, target: &Target) -> Query {
        Query {
            target: target.clone(),
            targets: TargetSet::one(target.clone()),
            ..self.clone()
        }
    }
}

/// The word for a target kind in messages: "CP code" or "URL".
fn kind_word(kind: TargetType) -> &'static str {
    match kind {
        TargetType::CpCode => "CP code",
        TargetType::Url => "URL",
    }
}

impl TargetSet {
    /// The targets `cpCode` or `url` names (see docs/design.md, "Many targets per query"):
    /// one, a list, several URLs, or `"*"` (the watched targets of that kind on the query's
    /// delivery network, or every network when the query names none).
    fn parse(
        raw: &RawQuery,
        kind: TargetType,
        delivery: Option<Delivery>,
        asked_delivery: Option<Delivery>,
        watch: &[Target],
    ) -> Result<TargetSet, QueryError> {
        let field = kind.as_str();
        let value = match kind {
            TargetType::CpCode => &raw.cp_code,
            TargetType::Url => &raw.url,
        };
        let (items, set): (Vec<String>, bool) = match value {
            Value::Null => (Vec::new(), false),
            Value::Number(n) if kind == TargetType::CpCode => (vec![n.to_string()], false),
            Value::String(s) if s.trim() == "*" => {
                return TargetSet::watched(kind, asked_delivery, watch)
            }
            Value::String(s) => {
                let text = s.trim();
                let items = split_items(kind, text);
                let set = items.len() > 1 || (items.len() == 1 && items[0] != text);
                (items, set)
            }
            Value::Array(list) => {
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    match item {
                        Value::String(s) => items.push(s.clone()),
                        Value::Number(n) if kind == TargetType::CpCode => {
                            items.push(n.to_string())
                        }
                        other => {
                            return Err(QueryError::new(
                                field,
                                format!(
                                    "list items must be {}; got {}",
                                    match kind {
                                        TargetType::CpCode => "CP codes as strings or numbers, e.g. [\"1209788\", 1209789]",
                                        TargetType::Url => "URLs as strings, e.g. [\"https://www.example.com/\"]",
                                    },
                                    kind_of(other)
                                ),
                            ))
                        }
                    }
                }
                if items.is_empty() {
                    return Err(QueryError::new(
                        field,
                        format!(
                            "no {} given: got an empty list",
                            kind_word(kind)
                        ),
                    ));
                }
                (items, true)
            }
            other => {
                return Err(QueryError::new(
                    field,
                    match kind {
                        TargetType::CpCode => format!("must be the CP code's digits as a string or a number (e.g. 1209788), a list of them, or \"*\"; got {}", kind_of(other)),
                        TargetType::Url => format!("must be a string: an absolute URL such as https://www.example.com/, several separated by spaces, or \"*\", or a list of URLs; got {}", kind_of(other)),
                    },
                ))
            }
        };
        if items.iter().all(|i| i.trim().is_empty()) {
            return Err(QueryError::new(
                field,
                match kind {
                    TargetType::CpCode => {
                        "no CP code given: enter the CP code's digits, e.g. 1209788"
                    }
                    TargetType::Url => {
                        "no URL given: enter an absolute URL such as https://www.example.com/"
                    }
                },
            ));
        }
        let count = items.len();
        let mut targets = Vec::new();
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let subject = match kind {
                TargetType::CpCode => Target::parse_cp_code(item).map(Subject::CpCode),
                TargetType::Url => Target::parse_url(item).map(Subject::Url),
            }
            .map_err(|e| {
                let message = target_message(e);
                QueryError::new(
                    field,
                    if set {
                        format!("item {} of {count}: {message}", i + 1)
                    } else {
                        message
                    },
                )
            })?;
            let target = Target { subject, delivery };
            if seen.insert(target.clone()) {
                targets.push(target);
            }
        }
        TargetSet::bounded(field, targets, set, "given")
    }

    /// `"*"`: the watched targets of `kind` on the asked network (any network when unset).
    fn watched(
        kind: TargetType,
        asked_delivery: Option<Delivery>,
        watch: &[Target],
    ) -> Result<TargetSet, QueryError> {
        let field = kind.as_str();
        let targets: Vec<Target> = watch
            .iter()
            .filter(|t| {
                matches!(
                    (&t.subject, kind),
                    (Subject::CpCode(_), TargetType::CpCode) | (Subject::Url(_), TargetType::Url)
                )
            })
            .filter(|t| asked_delivery.is_none() || t.delivery == asked_delivery)
            .cloned()
            .collect();
        if targets.is_empty() {
            let network = asked_delivery.map_or(String::new(), |d| format!(" on {d}"));
            return Err(QueryError::new(
                field,
                format!(
                    "\"*\" stands for every watched {}{network}, and the data source watches none: add them to the data source's watch list (jsonData.watch), or name the {}s",
                    kind_word(kind),
                    kind_word(kind)
                ),
            ));
        }
        TargetSet::bounded(field, targets, true, "watched")
    }

    fn bounded(
        field: &'static str,
        targets: Vec<Target>,
        set: bool,
        how: &str,
    ) -> Result<TargetSet, QueryError> {
        if targets.len() > MAX_TARGETS_PER_QUERY {
            return Err(QueryError::new(
                field,
                format!(
                    "{} distinct targets {how}, more than the {MAX_TARGETS_PER_QUERY} a query may name: split them over several queries",
                    targets.len()
                ),
            ));
        }
        Ok(TargetSet { targets, set })
    }
}

/// The items of a `cpCode` or `url` string: CP codes are separated by commas and/or
/// whitespace, URLs (which may hold commas, never raw whitespace) by whitespace. Multi-value
/// template variables may arrive wrapped in braces (`{1,2}`), which are dropped.
fn split_items(kind: TargetType, text: &str) -> Vec<String> {
    match kind {
        TargetType::CpCode => {
            let inner = text
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or(text);
            inner
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        }
        TargetType::Url => text.split_whitespace().map(str::to_string).collect(),
    }
}

/// A target error without its field prefix (the query error names the field).
fn target_message(e: TargetError) -> String {
    let text = e.to_string();
    ["cpCode ", "url "]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .map_or_else(|| text.clone(), str::to_string)
}

/// A query from JSON for unit tests, with a fixed one-second context.
#[cfg(test)]
pub(crate) fn for_test(json: &str, query_type: &str) -> Query {
    let ctx = QueryContext {
        from_ms: 0,
        to_ms: 1,
        interval_ms: 1000,
        max_data_points: 100,
    };
    Query::parse("A", json.as_bytes(), query_type, ctx, None).expect("test query parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: QueryContext = QueryContext {
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_003_600_000,
        interval_ms: 60_000,
        max_data_points: 100,
    };

    fn parse(json: &str) -> Result<Query, QueryError> {
        Query::parse("A", json.as_bytes(), "", CTX, None)
    }

    #[test]
    fn defaults_are_a_distribution_by_code_of_both_sides() {
        let q = parse(r#"{"cpCode": "1209788"}"#).unwrap();
        assert_eq!(q.query_type, QueryType::Distribution);
        assert_eq!(q.target, Target::cp_code(1209788, None));
        assert_eq!(
            (q.side, q.group_by, q.metric),
            (SideSelection::Both, GroupBy::Code, Metric::Percentage)
        );
        assert!(q.status_filter.is_empty());
    }

    #[test]
    fn cp_code_as_number_and_default_delivery() {
        let q = Query::parse(
            "A",
            br#"{"cpCode": 42}"#,
            "",
            CTX,
            Some(Delivery::EnhancedTls),
        )
        .unwrap();
        assert_eq!(q.target, Target::cp_code(42, Some(Delivery::EnhancedTls)));
        let q = Query::parse(
            "A",
            br#"{"cpCode": 42, "delivery": "STANDARD_TLS"}"#,
            "",
            CTX,
            Some(Delivery::EnhancedTls),
        )
        .unwrap();
        assert_eq!(q.target.delivery, Some(Delivery::StandardTls));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(parse(r#"{"cpCode": "12ab"}"#).unwrap_err().field, "cpCode");
        assert_eq!(
            parse(r#"{"targetType": "url", "url": "example.com"}"#)
                .unwrap_err()
                .field,
            "url"
        );
        assert_eq!(
            parse(r#"{"cpCode": 1, "queryType": "pie"}"#)
                .unwrap_err()
                .field,
            "queryType"
        );
        assert_eq!(
            parse(r#"{"cpCode": 1, "side": "middle"}"#)
                .unwrap_err()
                .field,
            "side"
        );
        assert_eq!(
            parse(r#"{"cpCode": 1, "metric": "errors"}"#)
                .unwrap_err()
                .field,
            "metric"
        );
        assert_eq!(
            parse(r#"{"cpCode": 1, "statusFilter": "6xx"}"#)
                .unwrap_err()
                .field,
            "statusFilter"
        );
        assert_eq!(
            parse(r#"{"cpCode": 1, "delivery": "FAST"}"#)
                .unwrap_err()
                .field,
            "delivery"
        );
        assert_eq!(parse(r#"{"cpCode": 1"#).unwrap_err().field, "query");
        assert_eq!(parse(r#"{}"#).unwrap_err().field, "cpCode");
    }

    #[test]
    fn metric_follows_group_by() {
        let q = parse(r#"{"cpCode": 1, "groupBy": "total"}"#).unwrap();
        assert_eq!(q.metric, Metric::FailurePercentage);
        let q = parse(r#"{"cpCode": 1, "groupBy": "total", "metric": "errors"}"#).unwrap();
        assert_eq!(q.metric, Metric::Errors);
        let q = parse(r#"{"cpCode": 1, "groupBy": "class", "metric": "hits"}"#).unwrap();
        assert_eq!(q.metric, Metric::Hits);
    }

    #[test]
    fn status_filter_forms() {
        let f = StatusFilter::parse("5xx, 404").unwrap();
        assert!(f.matches(503) && f.matches(404) && !f.matches(200) && !f.matches(403));
        let f = StatusFilter::parse("{5xx,404}").unwrap();
        assert!(f.matches(500) && f.matches(404));
        assert!(StatusFilter::parse("").unwrap().matches(200));
        let q = parse(r#"{"cpCode": 1, "statusFilter": ["2xx", 304]}"#).unwrap();
        assert!(
            q.status_filter.matches(204)
                && q.status_filter.matches(304)
                && !q.status_filter.matches(301)
        );
        assert_eq!(
            StatusFilter::parse("5xx,404")
                .unwrap()
                .explicit_groups(GroupBy::Class),
            vec!["5xx"]
        );
    }

    #[test]
    fn query_type_from_data_query_field() {
        let q = Query::parse("A", br#"{"cpCode": 1}"#, "summary", CTX, None).unwrap();
        assert_eq!(q.query_type, QueryType::Summary);
    }

    #[test]
    fn url_target_inferred() {
        let q = parse(r#"{"url": "https://www.example.com/"}"#).unwrap();
        assert_eq!(
            q.target.subject,
            Subject::Url("https://www.example.com/".into())
        );
    }

    #[test]
    fn wrong_json_types_name_the_field_and_the_values() {
        // Also proves that every key of FIELDS is read: an ignored key would not be blamed.
        for &field in FIELDS {
            for wrong in ["5", "[]", "{}", "true"] {
                if ((field == "cpCode" || field == "statusFilter") && wrong == "5")
                    || (field == "statusFilter" && wrong == "[]")
                    || (field == "live" && wrong == "true")
                    || (field == "threshold" && wrong == "5")
                {
                    continue;
                }
                let mut query = serde_json::json!({"cpCode": 1, "url": "https://x.example/"});
                if field == "url" {
                    query["targetType"] = "url".into();
                }
                query[field] = serde_json::from_str(wrong).unwrap();
                let err = parse(&query.to_string()).unwrap_err();
                assert_eq!(err.field, field, "{field} = {wrong}: {err}");
                assert!(err.message.contains("got "), "{field} = {wrong}: {err}");
                assert!(!err.message.contains("invalid type"), "{err}");
            }
        }
        let err = parse(r#"{"cpCode": 1, "side": 5}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "side: must be a string: one of edge, origin or both; got a number"
        );
        let err = parse(r#"{"cpCode": 1, "queryType": "pie"}"#).unwrap_err();
        assert!(
            err.message
                .ends_with("is not one of distribution, timeseries, summary, topIps or events"),
            "{err}"
        );
        for not_object in ["5", "[]", "\"x\"", "true", "null"] {
            assert_eq!(
                parse(not_object).unwrap_err().field,
                "query",
                "{not_object}"
            );
        }
    }

    #[test]
    fn cp_code_zero_and_bad_urls_are_refused() {
        assert_eq!(parse(r#"{"cpCode": 0}"#).unwrap_err().field, "cpCode");
        assert_eq!(parse(r#"{"cpCode": "000"}"#).unwrap_err().field, "cpCode");
        for url in [
            "https:///path",
            "https://x.example/a\\u0000b",
            "https://x.example/\\u0007",
        ] {
            let json = format!(r#"{{"targetType": "url", "url": "{url}"}}"#);
            assert_eq!(parse(&json).unwrap_err().field, "url", "{url}");
        }
    }

    #[test]
    fn long_inputs_are_quoted_short() {
        let long = "x".repeat(10_000);
        for json in [
            serde_json::json!({"cpCode": long}),
            serde_json::json!({"targetType": "url", "url": long}),
            serde_json::json!({"cpCode": 1, "queryType": long}),
            serde_json::json!({"cpCode": 1, "delivery": long}),
            serde_json::json!({"cpCode": 1, "statusFilter": long}),
            serde_json::json!({"cpCode": 1, "live": long}),
            serde_json::json!({"cpCode": 1, "metric": long}),
            serde_json::json!({"cpCode": 1, "threshold": long}),
        ] {
            let err = parse(&json.to_string()).unwrap_err();
            assert!(err.to_string().len() < 300, "{err}");
        }
    }

    #[test]
    fn oversized_query_fails_alone_with_its_size() {
        let big = format!(
            r#"{{"cpCode": 1, "pad": "{}"}}"#,
            "x".repeat(MAX_QUERY_JSON_BYTES)
        );
        let err = parse(&big).unwrap_err();
        assert_eq!(err.field, "query");
        assert!(err.message.contains("bytes"), "{err}");
        // Labelled by DataQuery.queryType, which is all there is before the JSON is read.
        assert_eq!(err.type_label(), "distribution");
        let err = Query::parse("A", b"{", "summary", CTX, None).unwrap_err();
        assert_eq!(err.type_label(), "summary");
        let err = Query::parse("A", b"{", "pie", CTX, None).unwrap_err();
        assert_eq!(err.type_label(), "invalid");
    }

    #[test]
    fn failed_queries_keep_their_type_for_metrics() {
        let err = parse(r#"{"queryType": "summary", "cpCode": "x"}"#).unwrap_err();
        assert_eq!(err.type_label(), "summary");
        let err = Query::parse("A", br#"{"cpCode": 0}"#, "timeseries", CTX, None).unwrap_err();
        assert_eq!(err.type_label(), "timeseries");
        assert_eq!(
            parse(r#"{"queryType": 5}"#).unwrap_err().type_label(),
            "invalid"
        );
    }

    #[test]
    fn enum_names_are_one_definition() {
        fn check<T: QueryEnum + Serialize + std::fmt::Debug + FromStr<Err = QueryError>>() {
            for v in T::ALL {
                assert_eq!(serde_json::to_value(v).unwrap(), v.as_str(), "{v:?}");
                assert_eq!(v.as_str().parse::<T>().unwrap(), *v);
                assert_eq!(v.as_str().to_uppercase().parse::<T>().unwrap(), *v);
            }
            assert_eq!(T::from_name("nope"), None);
        }
        check::<QueryType>();
        check::<TargetType>();
        check::<SideSelection>();
        check::<GroupBy>();
        check::<Metric>();
        for g in GroupBy::ALL {
            assert!(g.default_metric().fits(*g));
            for m in Metric::ALL {
                let json = format!(r#"{{"cpCode": 1, "groupBy": "{g}", "metric": "{m}"}}"#);
                let parsed = parse(&json);
                let fits = m.fits(*g) || (*g == GroupBy::Total && *m == Metric::Percentage);
                assert_eq!(parsed.is_ok(), fits, "{json}");
            }
        }
    }

    fn parse_watching(json: &str, watch: &[Target]) -> Result<Query, QueryError> {
        let env = QueryEnv {
            default_delivery: None,
            watch,
        };
        Query::parse_with("A", json.as_bytes(), "", CTX, env)
    }

    fn keys(q: &Query) -> Vec<String> {
        q.targets.targets().iter().map(Target::key).collect()
    }

    #[test]
    fn one_target_is_not_a_set() {
        for json in [
            r#"{"cpCode": 1209788}"#,
            r#"{"cpCode": " 1209788 "}"#,
            r#"{"url": "https://www.example.com/a,b"}"#,
        ] {
            let q = parse(json).unwrap();
            assert!(!q.targets.is_set(), "{json}");
            assert_eq!(q.targets.targets(), std::slice::from_ref(&q.target));
        }
    }

    #[test]
    fn cp_code_lists_in_every_spelling_keep_order_and_drop_duplicates() {
        for json in [
            r#"{"cpCode": "3, 1,2"}"#,
            r#"{"cpCode": "3 1\n2 3"}"#,
            r#"{"cpCode": "{3,1,2}"}"#,
            r#"{"cpCode": ["3", 1, "2", 3]}"#,
        ] {
            let q = parse(json).unwrap();
            assert!(q.targets.is_set(), "{json}");
            assert_eq!(keys(&q), ["cp:3/ANY", "cp:1/ANY", "cp:2/ANY"], "{json}");
            assert_eq!(q.target, Target::cp_code(3, None));
        }
        // A list of one is a set: its frames say which target a row is.
        assert!(parse(r#"{"cpCode": ["7"]}"#).unwrap().targets.is_set());
        assert!(parse(r#"{"cpCode": "7,"}"#).unwrap().targets.is_set());
        let q = parse(r#"{"cpCode": "1,2", "delivery": "ENHANCED_TLS"}"#).unwrap();
        assert_eq!(keys(&q), ["cp:1/ENHANCED_TLS", "cp:2/ENHANCED_TLS"]);
    }

    #[test]
    fn several_urls_split_on_whitespace_only() {
        let q =
            parse(r#"{"url": "https://a.example/x,y https://b.example/\nhttps://a.example/x,y"}"#)
                .unwrap();
        assert!(q.targets.is_set());
        assert_eq!(
            keys(&q),
            [
                "url:https://a.example/x,y/ANY",
                "url:https://b.example//ANY"
            ]
        );
        let q = parse(r#"{"url": ["https://a.example/", "https://b.example/"]}"#).unwrap();
        assert_eq!(q.targets.len(), 2);
        assert_eq!(q.query_type, QueryType::Distribution);
    }

    #[test]
    fn star_is_the_watch_list_of_the_kind_and_network() {
        let watch = [
            Target::cp_code(1, Some(Delivery::StandardTls)),
            Target {
                subject: Subject::Url("https://a.example/".into()),
                delivery: None,
            },
            Target::cp_code(2, Some(Delivery::EnhancedTls)),
            Target::cp_code(3, None),
        ];
        let q = parse_watching(r#"{"cpCode": "*"}"#, &watch).unwrap();
        assert!(q.targets.is_set());
        assert_eq!(
            keys(&q),
            ["cp:1/STANDARD_TLS", "cp:2/ENHANCED_TLS", "cp:3/ANY"]
        );
        let q = parse_watching(r#"{"cpCode": "*", "delivery": "ENHANCED_TLS"}"#, &watch).unwrap();
        assert_eq!(keys(&q), ["cp:2/ENHANCED_TLS"]);
        let q = parse_watching(r#"{"targetType": "url", "url": " * "}"#, &watch).unwrap();
        assert_eq!(keys(&q), ["url:https://a.example//ANY"]);
        // Nothing of the kind watched: the field is blamed and the watch list named.
        let e = parse_watching(
            r#"{"targetType": "url", "url": "*", "delivery": "STANDARD_TLS"}"#,
            &watch,
        )
        .unwrap_err();
        assert_eq!(e.field, "url");
        assert!(
            e.message.contains("watch list") && e.message.contains("STANDARD_TLS"),
            "{e}"
        );
        let e = parse(r#"{"cpCode": "*"}"#).unwrap_err();
        assert_eq!(e.field, "cpCode");
        assert!(e.message.contains("jsonData.watch"), "{e}");
    }

    #[test]
    fn more_than_the_maximum_is_refused_with_the_count() {
        let codes: Vec<String> = (1..=MAX_TARGETS_PER_QUERY + 1)
            .map(|c| c.to_string())
            .collect();
        let e = parse(&serde_json::json!({"cpCode": codes.join(",")}).to_string()).unwrap_err();
        assert_eq!(e.field, "cpCode");
        assert!(
            e.message.contains("201") && e.message.contains("200"),
            "{e}"
        );
        // Duplicates do not count.
        let mut dup = codes[..MAX_TARGETS_PER_QUERY].to_vec();
        dup.extend(codes[..50].iter().cloned());
        let q = parse(&serde_json::json!({"cpCode": dup}).to_string()).unwrap();
        assert_eq!(q.targets.len(), MAX_TARGETS_PER_QUERY);
        let watch: Vec<Target> = (1..=201).map(|c| Target::cp_code(c, None)).collect();
        let e = parse_watching(r#"{"cpCode": "*"}"#, &watch).unwrap_err();
        assert!(e.message.contains("201"), "{e}");
        let urls: Vec<String> = (0..=MAX_TARGETS_PER_QUERY)
            .map(|i| format!("https://x.example/{i}"))
            .collect();
        let e = parse(&serde_json::json!({"url": urls.join(" ")}).to_string()).unwrap_err();
        assert_eq!(e.field, "url");
    }

    #[test]
    fn a_bad_item_is_named_by_its_place() {
        let e = parse(r#"{"cpCode": "1, 2, x3"}"#).unwrap_err();
        assert_eq!(e.field, "cpCode");
        assert!(e.message.starts_with("item 3 of 3: \"x3\""), "{e}");
        let e = parse(r#"{"url": ["https://a.example/", "b.example"]}"#).unwrap_err();
        assert_eq!(e.field, "url");
        assert!(e.message.starts_with("item 2 of 2"), "{e}");
        for json in [
            r#"{"cpCode": [[1]]}"#,
            r#"{"cpCode": [{}]}"#,
            r#"{"cpCode": []}"#,
            r#"{"url": [5]}"#,
            r#"{"url": []}"#,
        ] {
            let e = parse(json).unwrap_err();
            assert!(
                e.names_its_field() && e.message.contains("got "),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn live_streams_one_target() {
        let e = parse(r#"{"cpCode": "1,2", "live": true}"#).unwrap_err();
        assert_eq!(e.field, "live");
        assert!(e.message.contains("one target"), "{e}");
        assert!(parse(r#"{"cpCode": "1", "live": true}"#).is_ok());
    }

    #[test]
    fn for_target_is_a_single_target_query() {
        let q = parse(r#"{"cpCode": "1,2", "side": "edge"}"#).unwrap();
        let one = q.for_target(&Target::cp_code(2, None));
        assert!(!one.targets.is_set());
        assert_eq!(one.target, Target::cp_code(2, None));
        assert_eq!((one.side, &one.ref_id), (q.side, &q.ref_id));
    }

    #[test]
    fn threshold_is_a_percent_above_0_up_to_100() {
        let threshold = |json: &str| parse(json).map(|q| q.threshold);
        assert_eq!(threshold(r#"{"cpCode": 1}"#), Ok(None));
        for blank in ["null", "\"\"", "\"  \""] {
            let json = format!(r#"{{"cpCode": 1, "threshold": {blank}}}"#);
            assert_eq!(threshold(&json), Ok(None), "{json}");
        }
        for (given, percent) in [
            ("2", 2.0),
            ("2.5", 2.5),
            ("100", 100.0),
            ("0.01", 0.01),
            ("\"7.5\"", 7.5),
            ("\" 3 % \"", 3.0),
        ] {
            let json = format!(r#"{{"cpCode": 1, "queryType": "events", "threshold": {given}}}"#);
            assert_eq!(threshold(&json), Ok(Some(percent)), "{json}");
        }
        for bad in [
            "0", "-1", "100.5", "1e9", "\"0\"", "\"abc\"", "\"NaN\"", "\"inf\"", "true", "[2]",
            "{}",
        ] {
            let json = format!(r#"{{"cpCode": 1, "queryType": "events", "threshold": {bad}}}"#);
            let err = parse(&json).unwrap_err();
            assert_eq!(err.field, "threshold", "{json}: {err}");
            assert!(err.message.contains("above 0 and at most 100"), "{err}");
        }
        assert_eq!(
            parse(r#"{"cpCode": 1, "threshold": -1}"#).unwrap_err().to_string(),
            "threshold: -1 is out of range: use a percent above 0 and at most 100, e.g. 2 or \"2.5\""
        );
        let q = parse(r#"{"cpCode": 1, "queryType": "events"}"#).unwrap();
        assert_eq!(q.query_type, QueryType::Events);
    }

    #[test]
    fn status_group_names() {
        assert_eq!(status_group(503, GroupBy::Class), "5xx");
        assert_eq!(status_group(503, GroupBy::Code), "503");
    }
}
