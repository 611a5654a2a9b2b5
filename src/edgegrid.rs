//! EdgeGrid EG1-HMAC-SHA256 request signing (Akamai's `{OPEN}` API authentication).
//!
//! The signature covers the method, scheme, host, path with query, the listed headers and a hash
//! of the POST body, so the exact bytes sent are the bytes signed: callers sign the final
//! [`url::Url`] and body right before sending, and sign again for every retry or redirect.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A credential value that never prints itself (Debug and Display show `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Checked EdgeGrid credentials: every value present and non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_token: Secret,
    pub client_secret: Secret,
    pub access_token: Secret,
    /// Bytes of a POST body that are hashed into the signature (`max_body`, default 131072).
    pub max_body: usize,
}

pub const DEFAULT_MAX_BODY: usize = 131_072;

/// The parts of a request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub url: &'a url::Url,
    /// Headers listed in the client's `headers_to_sign`, in that order, with their values.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// `yyyyMMddTHH:mm:ss+0000`, the EdgeGrid timestamp format.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y%m%dT%H:%M:%S+0000").to_string()
}

/// A fresh random nonce (UUID v4 text) for each signature.
pub fn nonce() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn hmac_b64(key: &[u8], data: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    B64.encode(mac.finalize().into_bytes())
}

/// Host as it is signed: the authority of the URL (with a port when one is given).
fn signed_host(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{}", url.path(), q),
        None => url.path().to_string(),
    }
}

fn canonical_headers(headers: &[(&str, &str)]) -> String {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("{}:{}", name.to_ascii_lowercase(), value)
        })
        .collect::<Vec<_>>()
        .join("\t")
}

fn content_hash(method: &str, body: &[u8], max_body: usize) -> String {
    if !method.eq_ignore_ascii_case("POST") || body.is_empty() {
        return String::new();
    }
    let hashed = &body[..body.len().min(max_body)];
    B64.encode(Sha256::digest(hashed))
}

/// The tab-separated text the signature is computed over, without the trailing auth prefix.
/// Exposed for the official test vectors' `expectedDataToSign`.
pub fn data_to_sign(req: &SignedRequest<'_>, max_body: usize) -> String {
    [
        req.method.to_ascii_uppercase(),
        req.url.scheme().to_string(),
        signed_host(req.url),
        path_and_query(req.url),
        canonical_headers(req.headers),
        content_hash(req.method, req.body, max_body),
        String::new(),
    ]
    .join("\t")
}

fn auth_prefix(creds: &Credentials, timestamp: &str, nonce: &str) -> String {
    format!(
        "EG1-HMAC-SHA256 client_token={};access_token={};timestamp={};nonce={};",
        creds.client_token.expose(),
        creds.access_token.expose(),
        timestamp,
        nonce
    )
}

fn signature(
    creds: &Credentials,
    req: &SignedRequest<'_>,
    timestamp: &str,
    prefix: &str,
) -> String {
    let signing_key = hmac_b64(
        creds.client_secret.expose().as_bytes(),
        timestamp.as_bytes(),
    );
    let data = format!("{}{}", data_to_sign(req, creds.max_body), prefix);
    hmac_b64(signing_key.as_bytes(), data.as_bytes())
}

/// The `Authorization` header value for `req`, signed at `timestamp` with `nonce`.
pub fn authorization(
    creds: &Credentials,
    req: &SignedRequest<'_>,
    timestamp: &str,
    nonce: &str,
) -> String {
    let prefix = auth_prefix(creds, timestamp, nonce);
    let sig = signature(creds, req, timestamp, &prefix);
    format!("{prefix}signature={sig}")
}

/// The fields of a received `Authorization` header (the simulator verifies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub client_token: String,
    pub access_token: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("the Authorization header is not EG1-HMAC-SHA256")]
    Scheme,
    #[error("the Authorization header lacks {0}")]
    Missing(&'static str),
    #[error("the timestamp is not of the form yyyyMMddTHH:mm:ss+0000")]
    Timestamp,
}

pub fn parse_authorization(header: &str) -> Result<ParsedAuthorization, AuthorizationError> {
    let rest = header
        .trim()
        .strip_prefix("EG1-HMAC-SHA256 ")
        .ok_or(AuthorizationError::Scheme)?;
    let get = |name: &'static str| -> Result<String, AuthorizationError> {
        rest.split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim() == name)
            // The signature is base64 and may itself end in '='; split_once keeps it whole.
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(AuthorizationError::Missing(name))
    };
    Ok(ParsedAuthorization {
        client_token: get("client_token")?,
        access_token: get("access_token")?,
        timestamp: get("timestamp")?,
        nonce: get("nonce")?,
        signature: get("signature")?,
    })
}

/// Parses an EdgeGrid timestamp back into an instant.
pub fn parse_timestamp(ts: &str) -> Result<chrono::DateTime<chrono::Utc>, AuthorizationError> {
    chrono::DateTime::parse_from_str(ts, "%Y%m%dT%H:%M:%S%z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| AuthorizationError::Timestamp)
}

/// Recomputes the signature of a received request and compares it in constant time.
pub fn verify(creds: &Credentials, req: &SignedRequest<'_>, parsed: &ParsedAuthorization) -> bool {
    let prefix = format!(
        "EG1-HMAC-SHA256 client_token={};access_token={};timestamp={};nonce={};",
        parsed.client_token, parsed.access_token, parsed.timestamp, parsed.nonce
    );
    let expected = signature(creds, req, &parsed.timestamp, &prefix);
    let (a, b) = (expected.as_bytes(), parsed.signature.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
