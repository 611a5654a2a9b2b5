//! Data source settings: Grafana's `jsonData` + `secureJsonData` (or an `.edgerc` file) parsed,
//! then validated into [`Settings`]. Nothing outside this module sees an unchecked value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::edgegrid::Credentials;
use crate::target::{Delivery, Target};

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
}

/// A setting that cannot be used; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("jsonData is not valid JSON ({0})")]
    Json(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Edgerc(#[from] crate::edgerc::EdgercError),
}

pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Parses and checks the settings Grafana sends for a data source instance.
    pub fn from_grafana(
        json_data: &[u8],
        secure: &HashMap<String, String>,
        env: Env<'_>,
    ) -> Result<Settings, SettingsError> {
        let _ = (json_data, secure, env);
        unimplemented!("filled in by the settings work")
    }
}
