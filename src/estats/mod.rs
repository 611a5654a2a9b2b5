//! The Edge Diagnostics eStats API: wire types, typed errors, the decoding and checking of
//! answers, and the signed HTTP client (transport only).

pub mod client;
pub mod decode;
pub mod error;
pub mod model;

pub use client::{Client, Fetched};
pub use error::{ErrorKind, RateLimitHeaders, UpstreamError};
pub use model::{EstatsRequest, EstatsResponse, Problem};
