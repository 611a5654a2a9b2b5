//! Wire types of the Edge Diagnostics eStats API.
//!
//! Real answers differ from the published schema: members of `result` may be absent, failure
//! percentages are floats, and new fields appear. Answers from Akamai are read into these types
//! by [`super::decode`], which also checks them; the serde derives here serve the simulator,
//! history imports and tests, and read counts by the decoder's one rule ([`count_of`]).
use serde::{Deserialize, Deserializer, Serialize};

use super::decode::count_of;
use crate::target::{Subject, Target};

/// Body of `POST /edge-diagnostics/v1/estats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstatsRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cp_code: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delivery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_type: Option<String>,
}

impl From<&Target> for EstatsRequest {
    fn from(t: &Target) -> Self {
        let (cp_code, url) = match &t.subject {
            Subject::CpCode(c) => (Some(*c), None),
            Subject::Url(u) => (None, Some(u.clone())),
        };
        EstatsRequest {
            cp_code,
            url,
            delivery: t.delivery.map(|d| d.as_str().to_string()),
            error_type: None,
        }
    }
}

/// Answer of `POST /edge-diagnostics/v1/estats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstatsResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<EstatsData>,
}

impl EstatsResponse {
    pub fn is_failure(&self) -> bool {
        self.execution_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("FAILURE"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstatsData {
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub edge_errors: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub edge_hits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_failure_percentage: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_errors: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_hits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_failure_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_edge_ips_with_error: Option<Vec<EdgeIpInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_edge_ips_with_error_from_origin: Option<Vec<EdgeIpInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_edge_ips_with_success: Option<Vec<EdgeIpInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_edge_ips_with_success_from_origin: Option<Vec<EdgeIpInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_status_code_distribution: Option<Vec<StatusCodeCount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_status_code_distribution: Option<Vec<StatusCodeCount>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCodeCount {
    #[serde(deserialize_with = "lenient_u16_required")]
    pub http_status: u16,
    #[serde(deserialize_with = "lenient_u64_required")]
    pub hits: u64,
    pub percentage: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeIpInfo {
    #[serde(default)]
    pub edge_ip: String,
    #[serde(
        default,
        deserialize_with = "lenient_u16",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_status: Option<u16>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub hits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_logs_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_ip_location: Option<EdgeIpLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_status: Option<Vec<ObjectStatus>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeIpLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub as_number: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `application/problem+json` error body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_u16",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<serde_json::Value>>,
}

impl Problem {
    /// The most specific human text of the problem: detail, else title, else type.
    pub fn summary(&self) -> String {
        let mut text = self
            .detail
            .clone()
            .or_else(|| self.title.clone())
            .or_else(|| self.problem_type.clone())
            .unwrap_or_default();
        if let Some(errors) = &self.errors {
            let subs: Vec<String> = errors
                .iter()
                .filter_map(|e| {
                    e.get("detail")
                        .or_else(|| e.get("title"))
                        .and_then(|d| d.as_str())
                        .map(str::to_string)
                })
                .collect();
            if !subs.is_empty() {
                text = format!("{text} ({})", subs.join("; "));
            }
        }
        text
    }
}

/// Answer of `GET /edge-diagnostics/v1/edge-locations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeLocations {
    #[serde(default)]
    pub edge_locations: Vec<EdgeLocation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeLocation {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub value: String,
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => count_of(&v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A count that must be there: a row without its hits is not a row of a measurement.
fn lenient_u64_required<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    lenient_u64(d)?.ok_or_else(|| serde::de::Error::custom("hits is required"))
}

fn lenient_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match lenient_u64(d)? {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{n} is not an HTTP status"))),
    }
}

fn lenient_u16_required<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    lenient_u16(d)?.ok_or_else(|| serde::de::Error::custom("httpStatus is required"))
}
