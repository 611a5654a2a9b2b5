//! One eStats answer as the rest of the plugin sees it: a timestamped sample of a target.
//!
//! Handlers, history, resources and streams all work on [`Sample`], never on wire JSON, so that
//! the lenient parsing of [`crate::estats::model`] happens in one place.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::estats::model::{EdgeIpInfo, EstatsResponse, StatusCodeCount};

/// Edge (Akamai to client) or origin (Akamai to origin server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Edge,
    Origin,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Edge, Side::Origin];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Edge => "edge",
            Side::Origin => "origin",
        }
    }
}

/// Totals and the status-code distribution of one side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideStats {
    pub hits: Option<u64>,
    pub errors: Option<u64>,
    pub failure_percentage: Option<f64>,
    /// Sorted by status code, one entry per code.
    pub codes: Vec<StatusCodeCount>,
}

/// Which of the four top-IP lists a row comes from (the `list` column of `topIps` frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TopIpList {
    Error,
    ErrorFromOrigin,
    Success,
    SuccessFromOrigin,
}

impl TopIpList {
    pub fn as_str(self) -> &'static str {
        match self {
            TopIpList::Error => "error",
            TopIpList::ErrorFromOrigin => "errorFromOrigin",
            TopIpList::Success => "success",
            TopIpList::SuccessFromOrigin => "successFromOrigin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopIp {
    pub list: TopIpList,
    pub info: EdgeIpInfo,
}

/// A successful eStats answer for one target at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub sampled_at: DateTime<Utc>,
    pub edge: SideStats,
    pub origin: SideStats,
    pub top_ips: Vec<TopIp>,
}

impl Sample {
    /// Builds a sample from an answer that [`crate::estats::decode`] has checked (SUCCESS,
    /// complete, plausible): nothing here guesses a missing value.
    pub fn from_response(sampled_at: DateTime<Utc>, response: &EstatsResponse) -> Sample {
        let data = response.result.clone().unwrap_or_default();
        let sorted = |codes: Option<Vec<StatusCodeCount>>| {
            let mut codes = codes.unwrap_or_default();
            codes.sort_by_key(|c| c.http_status);
            codes.dedup_by(|b, a| {
                if a.http_status == b.http_status {
                    a.hits += b.hits;
                    a.percentage += b.percentage;
                    true
                } else {
                    false
                }
            });
            codes
        };
        let mut top_ips = Vec::new();
        for (list, entries) in [
            (TopIpList::Error, data.top_edge_ips_with_error),
            (
                TopIpList::ErrorFromOrigin,
                data.top_edge_ips_with_error_from_origin,
            ),
            (TopIpList::Success, data.top_edge_ips_with_success),
            (
                TopIpList::SuccessFromOrigin,
                data.top_edge_ips_with_success_from_origin,
            ),
        ] {
            top_ips.extend(
                entries
                    .unwrap_or_default()
                    .into_iter()
                    .map(|info| TopIp { list, info }),
            );
        }
        Sample {
            sampled_at,
            edge: SideStats {
                hits: data.edge_hits,
                errors: data.edge_errors,
                failure_percentage: data.edge_failure_percentage,
                codes: sorted(data.edge_status_code_distribution),
            },
            origin: SideStats {
                hits: data.origin_hits,
                errors: data.origin_errors,
                failure_percentage: data.origin_failure_percentage,
                codes: sorted(data.origin_status_code_distribution),
            },
            top_ips,
        }
    }

    pub fn side(&self, side: Side) -> &SideStats {
        match side {
            Side::Edge => &self.edge,
            Side::Origin => &self.origin,
        }
    }
}
