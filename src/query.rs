//! A panel query: Grafana's `DataQuery` JSON parsed leniently, then checked into a [`Query`].
//!
//! Every query is parsed on its own, so one malformed query fails only its own refId.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::sample::Side;
use crate::target::{Delivery, Subject, Target, TargetError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    Distribution,
    Timeseries,
    Summary,
    TopIps,
}

impl QueryType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::Distribution => "distribution",
            QueryType::Timeseries => "timeseries",
            QueryType::Summary => "summary",
            QueryType::TopIps => "topIps",
        }
    }
}

/// Which sides a query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SideSelection {
    Edge,
    Origin,
    Both,
}

impl SideSelection {
    pub fn sides(self) -> &'static [Side] {
        match self {
            SideSelection::Edge => &[Side::Edge],
            SideSelection::Origin => &[Side::Origin],
            SideSelection::Both => &Side::BOTH,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// One group per HTTP status code ("503").
    Code,
    /// One group per status class ("5xx").
    Class,
    /// One group per side: the totals eStats reports.
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Percentage,
    Hits,
    Errors,
    FailurePercentage,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Percentage => "percentage",
            Metric::Hits => "hits",
            Metric::Errors => "errors",
            Metric::FailurePercentage => "failurePercentage",
        }
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
                            format!("{part:?} is not a status class: use 1xx to 5xx"),
                        ))
                    }
                }
            } else {
                match lower.parse::<u16>() {
                    Ok(c @ 100..=599) => StatusMatch::Code(c),
                    _ => {
                        return Err(QueryError::new(
                            "statusFilter",
                            format!("{part:?} is not an HTTP status: use codes such as 404 or classes such as 5xx, separated by commas"),
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
}

impl QueryError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            field,
            message: message.into(),
        }
    }
}

/// A checked panel query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub ref_id: String,
    pub query_type: QueryType,
    pub target: Target,
    pub side: SideSelection,
    pub group_by: GroupBy,
    pub metric: Metric,
    pub status_filter: StatusFilter,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Duration,
    pub max_data_points: u32,
    pub live: bool,
}

/// The query JSON as sent; every field optional and loosely typed so that checking can say
/// precisely what is wrong instead of "invalid type".
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQuery {
    query_type: Option<String>,
    target_type: Option<String>,
    cp_code: Option<serde_json::Value>,
    url: Option<String>,
    delivery: Option<String>,
    side: Option<String>,
    group_by: Option<String>,
    metric: Option<String>,
    status_filter: Option<serde_json::Value>,
    live: Option<serde_json::Value>,
}

/// What Grafana sends besides the JSON, in the units the checks need.
#[derive(Debug, Clone, Copy)]
pub struct QueryContext {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
    pub max_data_points: i64,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn enum_field<T: Copy>(
    field: &'static str,
    value: Option<&str>,
    default: T,
    options: &[(&str, T)],
) -> Result<T, QueryError> {
    let Some(value) = value else {
        return Ok(default);
    };
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            QueryError::new(
                field,
                format!("{value:?} is not one of {}", names.join(", ")),
            )
        })
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

impl Query {
    /// The query type's label for metrics, even for a query that does not parse.
    pub fn type_label(json: &[u8], query_type_field: &str) -> &'static str {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct TypeOnly {
            query_type: Option<String>,
        }
        let from_json = serde_json::from_slice::<TypeOnly>(json)
            .ok()
            .and_then(|t| t.query_type);
        let raw = from_json
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(query_type_field);
        [
            QueryType::Distribution,
            QueryType::Timeseries,
            QueryType::Summary,
            QueryType::TopIps,
        ]
        .into_iter()
        .find(|t| {
            t.as_str().eq_ignore_ascii_case(raw)
                || (raw.is_empty() && *t == QueryType::Distribution)
        })
        .map_or("invalid", QueryType::as_str)
    }

    /// Parses one query. `query_type_field` is `DataQuery.queryType`, used when the JSON lacks
    /// one; `default_delivery` is the data source's.
    pub fn parse(
        ref_id: &str,
        json: &[u8],
        query_type_field: &str,
        ctx: QueryContext,
        default_delivery: Option<Delivery>,
    ) -> Result<Query, QueryError> {
        let raw: RawQuery = if json.iter().all(u8::is_ascii_whitespace) {
            RawQuery::default()
        } else {
            serde_json::from_slice(json).map_err(|e| {
                QueryError::new("query", format!("the query JSON is malformed ({e}); save the query again from the query editor"))
            })?
        };

        let query_type = enum_field(
            "queryType",
            non_empty(&raw.query_type).or(Some(query_type_field).filter(|s| !s.trim().is_empty())),
            QueryType::Distribution,
            &[
                ("distribution", QueryType::Distribution),
                ("timeseries", QueryType::Timeseries),
                ("summary", QueryType::Summary),
                ("topIps", QueryType::TopIps),
            ],
        )?;

        let delivery = match non_empty(&raw.delivery) {
            None => default_delivery,
            Some(d) => Delivery::parse_optional(d).map_err(|m| QueryError::new("delivery", m))?,
        };

        let target_type = non_empty(&raw.target_type).unwrap_or(
            if non_empty(&raw.url).is_some() && raw.cp_code.is_none() {
                "url"
            } else {
                "cpCode"
            },
        );
        let subject = if target_type.eq_ignore_ascii_case("cpCode") {
            let text = match &raw.cp_code {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            if text.trim().is_empty() {
                return Err(QueryError::new(
                    "cpCode",
                    "no CP code given: enter the CP code's digits, e.g. 1209788",
                ));
            }
            Subject::CpCode(
                Target::parse_cp_code(&text)
                    .map_err(|e| QueryError::new("cpCode", target_message(e)))?,
            )
        } else if target_type.eq_ignore_ascii_case("url") {
            let url = non_empty(&raw.url).ok_or_else(|| {
                QueryError::new(
                    "url",
                    "no URL given: enter an absolute URL such as https://www.example.com/",
                )
            })?;
            Subject::Url(
                Target::parse_url(url).map_err(|e| QueryError::new("url", target_message(e)))?,
            )
        } else {
            return Err(QueryError::new(
                "targetType",
                format!("{target_type:?} is not one of cpCode, url"),
            ));
        };

        let side = enum_field(
            "side",
            non_empty(&raw.side),
            SideSelection::Both,
            &[
                ("edge", SideSelection::Edge),
                ("origin", SideSelection::Origin),
                ("both", SideSelection::Both),
            ],
        )?;
        let group_by = enum_field(
            "groupBy",
            non_empty(&raw.group_by),
            GroupBy::Code,
            &[
                ("code", GroupBy::Code),
                ("class", GroupBy::Class),
                ("total", GroupBy::Total),
            ],
        )?;
        let metric = match (group_by, non_empty(&raw.metric)) {
            (GroupBy::Total, None) => Metric::FailurePercentage,
            // "percentage" of a total is its failure percentage; accept the natural spelling.
            (GroupBy::Total, Some(m)) if m.eq_ignore_ascii_case("percentage") => {
                Metric::FailurePercentage
            }
            (GroupBy::Total, m) => enum_field(
                "metric",
                m,
                Metric::FailurePercentage,
                &[
                    ("hits", Metric::Hits),
                    ("errors", Metric::Errors),
                    ("failurePercentage", Metric::FailurePercentage),
                ],
            )?,
            (_, m) => enum_field(
                "metric",
                m,
                Metric::Percentage,
                &[("percentage", Metric::Percentage), ("hits", Metric::Hits)],
            )
            .map_err(|e| {
                QueryError::new(
                    "metric",
                    format!(
                        "{} (errors and failurePercentage need groupBy total)",
                        e.message
                    ),
                )
            })?,
        };

        let status_filter = match &raw.status_filter {
            None | Some(serde_json::Value::Null) => StatusFilter::default(),
            Some(serde_json::Value::String(s)) => StatusFilter::parse(s)?,
            Some(serde_json::Value::Number(n)) => StatusFilter::parse(&n.to_string())?,
            Some(serde_json::Value::Array(items)) => {
                let joined: Vec<String> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                StatusFilter::parse(&joined.join(","))?
            }
            Some(other) => {
                return Err(QueryError::new(
                    "statusFilter",
                    format!("{other} is not a list such as \"5xx,404\""),
                ))
            }
        };

        let live = match &raw.live {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => {
                return Err(QueryError::new(
                    "live",
                    format!("{other} is not true or false"),
                ))
            }
        };

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
            target: Target { subject, delivery },
            side,
            group_by,
            metric,
            status_filter,
            from,
            to,
            interval: Duration::from_millis(ctx.interval_ms.max(0) as u64),
            max_data_points: ctx.max_data_points.clamp(0, u32::MAX as i64) as u32,
            live,
        })
    }
}

fn target_message(e: TargetError) -> String {
    match e {
        TargetError::CpCodeNotNumeric(v) => format!("{v:?} is not a CP code: use the digits only, e.g. 1209788"),
        TargetError::UrlNotAbsolute(v) => format!("{v:?} is not an absolute http(s) URL: write it with its scheme, e.g. https://www.example.com/"),
        other => other.to_string(),
    }
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
    fn status_group_names() {
        assert_eq!(status_group(503, GroupBy::Class), "5xx");
        assert_eq!(status_group(503, GroupBy::Code), "503");
    }
}
