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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const CASES: &str = include_str!("../tests/fixtures/python-testcases.json");
    const DATA: &str = include_str!("../tests/fixtures/python-testdata.json");

    fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string"))
    }

    fn vector_credentials(data: &Value) -> Credentials {
        Credentials {
            client_token: Secret::new(str_of(data, "client_token")),
            client_secret: Secret::new(str_of(data, "client_secret")),
            access_token: Secret::new(str_of(data, "access_token")),
            max_body: data["max_body"].as_u64().unwrap() as usize,
        }
    }

    /// The signed headers of a vector: those named in `headers_to_sign` that the case sends,
    /// in `headers_to_sign` order, as the reference implementation picks them.
    fn signed_headers(data: &Value, request: &Value) -> Vec<(String, String)> {
        let sent: Vec<(String, String)> = request["headers"]
            .as_array()
            .map(|list| {
                list.iter()
                    .flat_map(|h| h.as_object().unwrap().iter())
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        data["headers_to_sign"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|name| {
                let name = name.as_str().unwrap();
                sent.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| (name.to_string(), v.clone()))
            })
            .collect()
    }

    #[test]
    fn official_vectors() {
        let data: Value = serde_json::from_str(DATA).unwrap();
        let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
        assert_eq!(cases.len(), 15);
        let creds = vector_credentials(&data);
        let base = url::Url::parse(str_of(&data, "base_url")).unwrap();
        let (ts, nonce) = (str_of(&data, "timestamp"), str_of(&data, "nonce"));
        let mut data_checked = 0;
        for case in &cases {
            let name = str_of(case, "testName");
            let request = &case["request"];
            let url = base.join(str_of(request, "path")).unwrap();
            let headers = signed_headers(&data, request);
            let header_refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = request["data"].as_str().unwrap_or("").as_bytes();
            let req = SignedRequest {
                method: str_of(request, "method"),
                url: &url,
                headers: &header_refs,
                body,
            };
            assert_eq!(
                authorization(&creds, &req, ts, nonce),
                str_of(case, "expectedAuthorization"),
                "authorization of {name:?}"
            );
            if let Some(expected) = case["expectedDataToSign"].as_str() {
                assert_eq!(
                    data_to_sign(&req, creds.max_body),
                    expected,
                    "data to sign of {name:?}"
                );
                data_checked += 1;
            }
            // Whatever we sign must verify with the same credentials.
            let parsed = parse_authorization(&authorization(&creds, &req, ts, nonce)).unwrap();
            assert!(verify(&creds, &req, &parsed), "verify of {name:?}");
        }
        assert_eq!(data_checked, 14);
    }

    #[test]
    fn official_extra_hashes() {
        let data: Value = serde_json::from_str(DATA).unwrap();
        let creds = vector_credentials(&data);
        assert_eq!(
            hmac_b64(
                creds.client_secret.expose().as_bytes(),
                str_of(&data, "timestamp").as_bytes()
            ),
            str_of(&data, "sign_key_test")
        );
    }

    fn demo_credentials() -> Credentials {
        Credentials {
            client_token: Secret::new("akab-client-token-demo"),
            client_secret: Secret::new("c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw=="),
            access_token: Secret::new("akab-access-token-demo"),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    fn demo_url() -> url::Url {
        url::Url::parse("https://akab-demo.luna.akamaiapis.net/edge-diagnostics/v1/estats?accountSwitchKey=1-ABC")
            .unwrap()
    }

    #[test]
    fn verify_accepts_fresh_signature_and_rejects_changes() {
        let creds = demo_credentials();
        let url = demo_url();
        let body = br#"{"cpCode":1209788}"#;
        let req = SignedRequest {
            method: "POST",
            url: &url,
            headers: &[],
            body,
        };
        let ts = timestamp(chrono::Utc::now());
        let header = authorization(&creds, &req, &ts, &nonce());
        let parsed = parse_authorization(&header).unwrap();
        assert!(verify(&creds, &req, &parsed));

        let other_body = SignedRequest {
            body: br#"{"cpCode":1209789}"#,
            ..req
        };
        assert!(!verify(&creds, &other_body, &parsed));

        let other_url =
            url::Url::parse("https://akab-demo.luna.akamaiapis.net/edge-diagnostics/v1/edge-locations?accountSwitchKey=1-ABC")
                .unwrap();
        let other_path = SignedRequest {
            url: &other_url,
            ..req
        };
        assert!(!verify(&creds, &other_path, &parsed));

        let other_query_url = url::Url::parse(
            "https://akab-demo.luna.akamaiapis.net/edge-diagnostics/v1/estats?accountSwitchKey=1-XYZ",
        )
        .unwrap();
        let other_query = SignedRequest {
            url: &other_query_url,
            ..req
        };
        assert!(!verify(&creds, &other_query, &parsed));

        let other_method = SignedRequest {
            method: "PUT",
            ..req
        };
        assert!(!verify(&creds, &other_method, &parsed));

        let wrong_secret = Credentials {
            client_secret: Secret::new("another-secret"),
            ..creds.clone()
        };
        assert!(!verify(&wrong_secret, &req, &parsed));

        let mut tampered = parsed.clone();
        tampered.nonce = nonce();
        assert!(!verify(&creds, &req, &tampered));
        let mut tampered = parsed.clone();
        tampered.timestamp = timestamp(chrono::Utc::now() + chrono::Duration::seconds(61));
        assert!(!verify(&creds, &req, &tampered));
        let mut truncated = parsed;
        truncated.signature.pop();
        assert!(!verify(&creds, &req, &truncated));
    }

    #[test]
    fn parse_authorization_round_trip() {
        let creds = demo_credentials();
        let url = demo_url();
        let req = SignedRequest {
            method: "GET",
            url: &url,
            headers: &[],
            body: b"",
        };
        let header = authorization(&creds, &req, "20240102T03:04:05+0000", "n-1");
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.client_token, "akab-client-token-demo");
        assert_eq!(parsed.access_token, "akab-access-token-demo");
        assert_eq!(parsed.timestamp, "20240102T03:04:05+0000");
        assert_eq!(parsed.nonce, "n-1");
        assert!(header.ends_with(&format!("signature={}", parsed.signature)));
        // An HMAC-SHA256 in base64 is 44 characters, ending in one '='.
        assert_eq!(parsed.signature.len(), 44);
        assert!(parsed.signature.ends_with('='));
        assert_eq!(
            parse_timestamp(&parsed.timestamp).unwrap(),
            chrono::DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap()
        );
    }

    #[test]
    fn parse_authorization_errors() {
        assert_eq!(
            parse_authorization("Bearer abc"),
            Err(AuthorizationError::Scheme)
        );
        assert_eq!(parse_authorization(""), Err(AuthorizationError::Scheme));
        let full = "EG1-HMAC-SHA256 client_token=c;access_token=a;timestamp=20240102T03:04:05+0000;nonce=n;signature=s=";
        assert!(parse_authorization(full).is_ok());
        for field in [
            "client_token",
            "access_token",
            "timestamp",
            "nonce",
            "signature",
        ] {
            let without: String = full
                .strip_prefix("EG1-HMAC-SHA256 ")
                .unwrap()
                .split(';')
                .filter(|kv| !kv.starts_with(&format!("{field}=")))
                .collect::<Vec<_>>()
                .join(";");
            assert_eq!(
                parse_authorization(&format!("EG1-HMAC-SHA256 {without}")),
                Err(AuthorizationError::Missing(field)),
                "without {field}"
            );
            let empty = full.replace(&format!("{field}="), &format!("{field}=;x="));
            assert_eq!(
                parse_authorization(&empty),
                Err(AuthorizationError::Missing(field)),
                "empty {field}"
            );
        }
        assert_eq!(
            parse_timestamp("2024-01-02 03:04:05"),
            Err(AuthorizationError::Timestamp)
        );
    }

    #[test]
    fn nonce_is_unique_and_uuid_shaped() {
        let nonces: std::collections::HashSet<String> = (0..1000).map(|_| nonce()).collect();
        assert_eq!(nonces.len(), 1000);
        for n in &nonces {
            let groups: Vec<&str> = n.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{n}"
            );
            assert!(n
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
            assert!(groups[2].starts_with('4'), "version 4: {n}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "RFC 4122 variant: {n}"
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let creds = demo_credentials();
        let shown = format!("{creds:?} {:?} {}", creds.client_secret, creds.access_token);
        for secret in [
            creds.client_token.expose(),
            creds.client_secret.expose(),
            creds.access_token.expose(),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("***"));
        assert!(shown.contains("131072"), "max_body stays visible: {shown}");
    }

    #[test]
    fn timestamp_format() {
        let at = chrono::DateTime::parse_from_rfc3339("2014-03-21T19:34:21Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(timestamp(at), "20140321T19:34:21+0000");
        assert_eq!(parse_timestamp("20140321T19:34:21+0000").unwrap(), at);
    }

    #[test]
    fn body_hash_only_for_post_and_capped_at_max_body() {
        let url = demo_url();
        let long = vec![b'x'; 300];
        let post = SignedRequest {
            method: "post",
            url: &url,
            headers: &[],
            body: &long,
        };
        let capped = SignedRequest {
            body: &long[..100],
            ..post
        };
        assert_eq!(data_to_sign(&post, 100), data_to_sign(&capped, 100));
        assert_ne!(data_to_sign(&post, 200), data_to_sign(&capped, 200));
        assert!(data_to_sign(&post, 100).starts_with("POST\thttps\t"));
        let put = SignedRequest {
            method: "PUT",
            ..post
        };
        assert!(data_to_sign(&put, 100).ends_with("\t\t\t"));
    }
}
