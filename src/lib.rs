//! Akamai eStats for Grafana: a backend data source that turns panel queries into EdgeGrid-signed
//! Edge Diagnostics eStats calls and answers with HTTP status-code distributions as data frames.
//!
//! Layout, from the wire inwards:
//!
//! - [`main`](../gpx_akamai_estats/index.html) is thin: Grafana starts it with
//!   `grafana_plugin_type` set and gets the plugin; anyone else gets the [`cli`].
//! - [`plugin`]: Grafana's pluginv2 gRPC services (handshake, QueryData, CheckHealth,
//!   CallResource, Stream), one file per service, plus the per-data-source [`plugin::instance`].
//! - [`query`]: a panel query's JSON parsed and checked into a [`query::Query`].
//! - [`handlers`]: one file per query type, each turning samples into [`frame::Frame`]s.
//! - [`frame`]: Grafana data frames and their Arrow IPC encoding (with `meta.type`);
//!   [`frame_json`]: their JSON encoding for Grafana Live packets.
//! - [`live`]: live channel paths of live queries (streamed `timeseries` rows keep the columns
//!   of [`handlers::timeseries::columns`]).
//! - [`poller`], [`upstream`], [`history`]: the polling cache: pollers per target, the shared
//!   rate-limit budget with request coalescing and backoff, and the SQLite history.
//! - [`store`]: the one history interface over the embedded SQLite history and the shared
//!   PostgreSQL one (`jsonData.historyDatabase`), with the leases that give each target one
//!   poller across Grafana replicas (`docs/high-availability.md`).
//! - [`estats`]: the eStats API: wire model, typed errors, the signed HTTP client.
//! - [`edgegrid`], [`edgerc`], [`settings`]: request signing, `.edgerc` files, and data source
//!   settings validated into one checked type.
//! - [`target`], [`sample`]: the domain: what is measured, and one measurement.
//! - [`simulator`]: a signature-verifying eStats server for demos and tests.
//! - [`metrics`]: the plugin's own Prometheus metrics; [`migrate`]: the old exporter's settings
//!   turned into provisioning YAML.
//! - [`contract`]: the backend's bounds and query names, generated into the frontend's
//!   `frontend/src/generated/contract.json`.

pub mod cli;
pub mod contract;
pub mod edgegrid;
pub mod edgerc;
pub mod estats;
pub mod frame;
pub mod frame_json;
pub mod handlers;
pub mod history;
pub mod live;
pub mod metrics;
pub mod migrate;
pub mod plugin;
pub mod poller;
pub mod query;
pub mod sample;
pub mod settings;
pub mod simulator;
pub mod store;
pub mod target;
pub mod upstream;

/// The plugin id of `plugin.json`.
pub const PLUGIN_ID: &str = "akamai-estats-datasource";
