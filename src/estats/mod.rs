//! The Edge Diagnostics eStats API: wire types, typed errors and the signed HTTP client.

pub mod client;
pub mod error;
pub mod model;

pub use client::{Client, Fetched};
pub use error::{ErrorKind, RateLimitHeaders, UpstreamError};
pub use model::{EstatsRequest, EstatsResponse, Problem};
