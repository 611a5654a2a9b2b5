//! Grafana Live channels of live queries: the channel path that encodes a query's target and
//! shape, and the channel marked on a live query's frames. Pure: no I/O, no clock. (The column
//! set that keeps streamed `timeseries` rows aligned with the query's frame is
//! [`crate::handlers::timeseries::columns`].)
//!
//! A live query's frame carries `meta.channel` = `ds/<datasource uid>/<path>`; Grafana subscribes
//! to it and the plugin's stream pushes one frame per new sample. The path is
//! `v1/<target>/<queryType>/<side>/<groupBy>/<metric>/<statusFilter>/<refId>`:
//!
//! - `<target>` is `k.<base64url of the target key>`, or `h.<16 hex digits of its SHA-256>`
//!   when the whole channel would exceed Grafana's 160 characters (long URLs). A key path is
//!   self-contained; a digest path only resolves to a target the data source already knows.
//! - `<statusFilter>` is the filter's items joined by `.` (`5xx.404`), or `-` for none.
//! - `<refId>` is the refId as is when it is made of `[A-Za-z0-9_-]`, else `b.<base64url>`, so
//!   that frames pushed to each query carry its own refId.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::frame::{Frame, Notice, Severity};
use crate::query::{GroupBy, Metric, Query, QueryType, SideSelection, StatusFilter};
use crate::target::{quote, Target};

/// Grafana's limit on a whole channel name (`ds/<uid>/<path>`).
pub const MAX_CHANNEL_LENGTH: usize = 160;

const VERSION: &str = "v1";
const SEGMENTS: usize = 8;

/// How a channel path names its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    Key(Target),
    /// [`digest`] of the target key; resolved among the targets a data source knows.
    Digest(String),
}

impl TargetRef {
    /// Whether `target` is the one named here.
    pub fn matches(&self, target: &Target) -> bool {
        match self {
            TargetRef::Key(t) => t == target,
            TargetRef::Digest(d) => *d == digest(&target.key()),
        }
    }
}

/// A live channel path, decoded: the target and the shape of the frames pushed on it.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePath {
    pub target: TargetRef,
    pub query_type: QueryType,
    pub side: SideSelection,
    pub group_by: GroupBy,
    pub metric: Metric,
    pub status_filter: StatusFilter,
    pub ref_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("live: updates stream for timeseries, distribution and summary queries, not {0}; turn Live off for this query")]
    Unsupported(&'static str),
    #[error("channel path {path} is not a channel of this plugin: {reason}")]
    Malformed { path: String, reason: String },
}

/// The short digest naming a target whose key is too long for a channel path.
pub fn digest(key: &str) -> String {
    let hash = Sha256::digest(key.as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `ds/<uid>/<path>`, the channel Grafana subscribes to.
pub fn channel(uid: &str, path: &str) -> String {
    format!("ds/{uid}/{path}")
}

const LIVE_TYPES: [QueryType; 3] = [
    QueryType::Timeseries,
    QueryType::Distribution,
    QueryType::Summary,
];

/// The value of `all` spelled exactly `name`: a channel path is only ever what
/// [`LivePath::encode`] writes, so no case folding or aliases here, unlike the query parser.
fn exactly<T: Copy>(all: &[T], as_str: fn(T) -> &'static str, name: &str) -> Option<T> {
    all.iter().copied().find(|v| as_str(*v) == name)
}

/// The names of a table, for error messages: "a, b or c".
fn one_of(names: impl IntoIterator<Item = &'static str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn filter_segment(filter: &StatusFilter) -> String {
    if filter.is_empty() {
        return "-".into();
    }
    filter.joined(".")
}

impl LivePath {
    /// The channel path of a checked query.
    pub fn for_query(query: &Query) -> Result<LivePath, LiveError> {
        if !LIVE_TYPES.contains(&query.query_type) {
            return Err(LiveError::Unsupported(query.query_type.as_str()));
        }
        Ok(LivePath {
            target: TargetRef::Key(query.target.clone()),
            query_type: query.query_type,
            side: query.side,
            group_by: query.group_by,
            metric: query.metric,
            status_filter: query.status_filter.clone(),
            ref_id: query.ref_id.clone(),
        })
    }

    fn encode_with(&self, target: &str) -> String {
        let ref_id = if is_plain(&self.ref_id) {
            self.ref_id.clone()
        } else {
            format!("b.{}", URL_SAFE_NO_PAD.encode(self.ref_id.as_bytes()))
        };
        [
            VERSION,
            target,
            self.query_type.as_str(),
            self.side.as_str(),
            self.group_by.as_str(),
            self.metric.as_str(),
            &filter_segment(&self.status_filter),
            &ref_id,
        ]
        .join("/")
    }

    /// The path for the data source `uid`: by key when the channel fits Grafana's limit, else
    /// by digest.
    pub fn encode(&self, uid: &str) -> String {
        let (key_form, digest_form) = match &self.target {
            TargetRef::Key(t) => {
                let key = t.key();
                (
                    Some(format!("k.{}", URL_SAFE_NO_PAD.encode(key.as_bytes()))),
                    digest(&key),
                )
            }
            TargetRef::Digest(d) => (None, d.clone()),
        };
        if let Some(k) = key_form {
            let path = self.encode_with(&k);
            if channel(uid, &path).len() <= MAX_CHANNEL_LENGTH {
                return path;
            }
        }
        self.encode_with(&format!("h.{digest_form}"))
    }

    /// Decodes a channel path; any deviation from what [`LivePath::encode`] writes is an error.
    pub fn decode(path: &str) -> Result<LivePath, LiveError> {
        let bad = |reason: String| LiveError::Malformed {
            path: quote(path),
            reason,
        };
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != SEGMENTS {
            return Err(bad(format!(
                "expected {SEGMENTS} segments (v1/target/queryType/side/groupBy/metric/statusFilter/refId), got {}",
                parts.len()
            )));
        }
        if parts[0] != VERSION {
            return Err(bad(format!(
                "unknown version {}: this plugin writes {VERSION}",
                quote(parts[0])
            )));
        }
        let target = if let Some(b64) = parts[1].strip_prefix("k.") {
            let bytes = URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|e| bad(format!("target key is not base64url: {e}")))?;
            let key =
                String::from_utf8(bytes).map_err(|_| bad("target key is not UTF-8".to_string()))?;
            TargetRef::Key(Target::from_key(&key).map_err(|e| bad(e.to_string()))?)
        } else if let Some(hex) = parts[1].strip_prefix("h.") {
            if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(bad(format!(
                    "target digest {} is not 16 lowercase hex digits",
                    quote(hex)
                )));
            }
            TargetRef::Digest(hex.to_string())
        } else {
            return Err(bad(format!(
                "target segment {} starts with neither k. nor h.",
                quote(parts[1])
            )));
        };
        let query_type = exactly(&LIVE_TYPES, QueryType::as_str, parts[2]).ok_or_else(|| {
            bad(format!(
                "query type {} does not stream ({})",
                quote(parts[2]),
                one_of(LIVE_TYPES.map(QueryType::as_str))
            ))
        })?;
        let side =
            exactly(SideSelection::ALL, SideSelection::as_str, parts[3]).ok_or_else(|| {
                bad(format!(
                    "side {} is not {}",
                    quote(parts[3]),
                    one_of(SideSelection::ALL.iter().map(|s| s.as_str()))
                ))
            })?;
        let group_by = exactly(GroupBy::ALL, GroupBy::as_str, parts[4]).ok_or_else(|| {
            bad(format!(
                "groupBy {} is not {}",
                quote(parts[4]),
                one_of(GroupBy::ALL.iter().map(|g| g.as_str()))
            ))
        })?;
        let metric = exactly(Metric::ALL, Metric::as_str, parts[5]).ok_or_else(|| {
            bad(format!(
                "metric {} is not {}",
                quote(parts[5]),
                one_of(Metric::ALL.iter().map(|m| m.as_str()))
            ))
        })?;
        if !metric.fits(group_by) {
            return Err(bad(format!(
                "metric {} does not go with groupBy {}",
                parts[5], parts[4]
            )));
        }
        let status_filter = match parts[6] {
            "-" => StatusFilter::default(),
            "" => return Err(bad("empty status filter segment: use -".to_string())),
            items => {
                let f = StatusFilter::parse(&items.replace('.', ","))
                    .map_err(|e| bad(e.to_string()))?;
                // Only the canonical spelling is accepted: one channel per filter spelling.
                if filter_segment(&f) != items {
                    return Err(bad(format!(
                        "status filter {} is not canonical",
                        quote(items)
                    )));
                }
                f
            }
        };
        let ref_id = if let Some(b64) = parts[7].strip_prefix("b.") {
            let bytes = URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|e| bad(format!("refId is not base64url: {e}")))?;
            String::from_utf8(bytes).map_err(|_| bad("refId is not UTF-8".to_string()))?
        } else if is_plain(parts[7]) {
            parts[7].to_string()
        } else {
            return Err(bad(format!(
                "refId segment {} is malformed",
                quote(parts[7])
            )));
        };
        Ok(LivePath {
            target,
            query_type,
            side,
            group_by,
            metric,
            status_filter,
            ref_id,
        })
    }

    /// The query whose handlers build the frames pushed for one sample of `target` at `at`.
    pub fn query(&self, target: Target, at: chrono::DateTime<chrono::Utc>) -> Query {
        Query {
            ref_id: self.ref_id.clone(),
            query_type: self.query_type,
            targets: crate::query::TargetSet::one(target.clone()),
            target,
            side: self.side,
            group_by: self.group_by,
            metric: self.metric,
            status_filter: self.status_filter.clone(),
            from: at,
            to: at,
            interval: std::time::Duration::ZERO,
            max_data_points: 0,
            live: true,
            threshold: None,
        }
    }
}

/// Sets `meta.channel` on the frames of a live query; a query type that does not stream gets a
/// notice instead.
pub fn mark_live(uid: &str, query: &Query, frames: &mut [Frame]) {
    match LivePath::for_query(query) {
        Ok(path) => {
            let channel = channel(uid, &path.encode(uid));
            for f in frames {
                f.meta.channel = Some(channel.clone());
            }
        }
        Err(e) => {
            for f in frames {
                f.meta.notices.push(Notice {
                    severity: Severity::Info,
                    text: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Delivery, Subject};

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "")
    }

    #[test]
    fn paths_round_trip_for_every_shape() {
        for json in [
            r#"{"cpCode": 1209788, "queryType": "timeseries", "live": true}"#,
            r#"{"cpCode": 1, "delivery": "ENHANCED_TLS", "queryType": "timeseries", "groupBy": "class", "metric": "hits", "side": "edge", "statusFilter": "5xx,404"}"#,
            r#"{"cpCode": 1, "queryType": "timeseries", "groupBy": "total", "metric": "errors", "side": "origin"}"#,
            r#"{"url": "https://www.example.com/a?b=c", "queryType": "distribution"}"#,
            r#"{"cpCode": 7, "queryType": "summary"}"#,
        ] {
            let q = query(json);
            let p = LivePath::for_query(&q).unwrap();
            let path = p.encode("ds-uid");
            let decoded = LivePath::decode(&path).unwrap();
            assert_eq!(decoded, p, "{path}");
            assert!(decoded.target.matches(&q.target));
            // Only the characters Grafana allows in a channel path.
            assert!(
                path.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-=/.".contains(&b)),
                "{path}"
            );
        }
    }

    #[test]
    fn readable_layout() {
        let q = query(
            r#"{"cpCode": 1209788, "delivery": "STANDARD_TLS", "queryType": "timeseries", "statusFilter": "5xx,404"}"#,
        );
        let path = LivePath::for_query(&q).unwrap().encode("u");
        assert_eq!(
            path,
            format!(
                "v1/k.{}/timeseries/both/code/percentage/5xx.404/A",
                URL_SAFE_NO_PAD.encode("cp:1209788/STANDARD_TLS")
            )
        );
        assert_eq!(channel("u", &path), format!("ds/u/{path}"));
    }

    #[test]
    fn long_targets_use_a_digest_that_fits() {
        let url = format!("https://www.example.com/{}", "segment/".repeat(20));
        let target = Target {
            subject: Subject::Url(url.clone()),
            delivery: Some(Delivery::StandardTls),
        };
        let q = query(&format!(
            r#"{{"url": "{url}", "delivery": "STANDARD_TLS", "queryType": "timeseries"}}"#
        ));
        let uid = "a".repeat(40);
        let path = LivePath::for_query(&q).unwrap().encode(&uid);
        assert!(channel(&uid, &path).len() <= MAX_CHANNEL_LENGTH, "{path}");
        let decoded = LivePath::decode(&path).unwrap();
        assert_eq!(decoded.target, TargetRef::Digest(digest(&target.key())));
        assert!(decoded.target.matches(&target));
        assert!(!decoded.target.matches(&Target::cp_code(1, None)));
    }

    #[test]
    fn odd_ref_ids_are_encoded() {
        let mut q = query(r#"{"cpCode": 1, "queryType": "summary"}"#);
        for ref_id in ["My query/1", "", "é"] {
            q.ref_id = ref_id.to_string();
            let path = LivePath::for_query(&q).unwrap().encode("u");
            assert!(path.ends_with(&format!("/b.{}", URL_SAFE_NO_PAD.encode(ref_id.as_bytes()))));
            assert_eq!(LivePath::decode(&path).unwrap().ref_id, ref_id);
        }
    }

    #[test]
    fn top_ips_does_not_stream() {
        let q = query(r#"{"cpCode": 1, "queryType": "topIps"}"#);
        assert_eq!(
            LivePath::for_query(&q),
            Err(LiveError::Unsupported("topIps"))
        );
    }

    #[test]
    fn malformed_paths_say_why() {
        let good = LivePath::for_query(&query(r#"{"cpCode": 1, "queryType": "timeseries"}"#))
            .unwrap()
            .encode("u");
        let seg = |i: usize, v: &str| {
            let mut parts: Vec<&str> = good.split('/').collect();
            parts[i] = v;
            parts.join("/")
        };
        let cases = [
            ("", "segments".to_string()),
            ("garbage", "segments".to_string()),
            (&format!("{good}/extra") as &str, "segments".to_string()),
            (&seg(0, "v2"), "version".to_string()),
            (&seg(1, "k.!!"), "base64url".to_string()),
            (
                &seg(1, &format!("k.{}", URL_SAFE_NO_PAD.encode("nope"))),
                "target key".to_string(),
            ),
            (&seg(1, "h.123"), "hex".to_string()),
            (&seg(1, "x.1"), "neither".to_string()),
            (&seg(2, "topIps"), "does not stream".to_string()),
            (&seg(3, "middle"), "side".to_string()),
            (&seg(4, "status"), "groupBy".to_string()),
            (&seg(5, "speed"), "metric".to_string()),
            (&seg(5, "errors"), "does not go with".to_string()),
            (&seg(6, "6xx"), "statusFilter".to_string()),
            (&seg(6, "404.404"), "canonical".to_string()),
            (&seg(6, ""), "empty".to_string()),
            (&seg(7, "a b"), "refId".to_string()),
            (&seg(7, "b.%%"), "refId".to_string()),
        ];
        for (path, words) in cases {
            match LivePath::decode(path) {
                Err(LiveError::Malformed { reason, .. }) => {
                    assert!(reason.contains(&words), "{path}: {reason}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn decode_errors_list_the_names_of_each_segment() {
        let good = LivePath::for_query(&query(r#"{"cpCode": 1, "queryType": "timeseries"}"#))
            .unwrap()
            .encode("u");
        let with = |i: usize, v: &str| {
            let mut parts: Vec<&str> = good.split('/').collect();
            parts[i] = v;
            LivePath::decode(&parts.join("/")).unwrap_err().to_string()
        };
        assert!(with(2, "x").contains("(timeseries, distribution or summary)"));
        assert!(with(3, "x").contains("is not edge, origin or both"));
        assert!(with(4, "x").contains("is not code, class or total"));
        assert!(with(5, "x").contains("is not percentage, hits, errors or failurePercentage"));
    }

    #[test]
    fn live_marks_the_channel_or_says_why_not() {
        let q = query(r#"{"cpCode": 1, "queryType": "summary", "live": true}"#);
        let mut frames = vec![Frame::new("summary", crate::frame::FrameType::NumericLong)];
        mark_live("uid-1", &q, &mut frames);
        let channel = frames[0].meta.channel.clone().unwrap();
        assert!(channel.starts_with("ds/uid-1/v1/k."), "{channel}");
        let path = channel.strip_prefix("ds/uid-1/").unwrap();
        assert_eq!(
            LivePath::decode(path).unwrap(),
            LivePath::for_query(&q).unwrap()
        );

        let q = query(r#"{"cpCode": 1, "queryType": "topIps", "live": true}"#);
        let mut frames = vec![Frame::new("topIps", crate::frame::FrameType::Table)];
        mark_live("uid-1", &q, &mut frames);
        assert!(frames[0].meta.channel.is_none());
        assert!(frames[0].meta.notices[0].text.contains("topIps"));
    }
}
