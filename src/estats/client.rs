//! The signed eStats HTTP client (in progress).

use chrono::{DateTime, Utc};

use super::error::RateLimitHeaders;
use super::model::EstatsResponse;

/// One successful eStats answer with what its headers said.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub response: EstatsResponse,
    pub rate: RateLimitHeaders,
    pub received_at: DateTime<Utc>,
}

pub struct Client;
