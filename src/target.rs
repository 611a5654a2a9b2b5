//! What is measured: a CP code or a URL, on a delivery network.
//!
//! A [`Target`] is the unit that pollers, history rows, resources and live channels are keyed by.
//! Its [`Target::key`] is a stable string; the JSON form (`{"cpCode": 1, "delivery": "STANDARD_TLS"}`
//! or `{"url": "https://..."}`) is the one of the `watch` setting and of `history import` lines.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many characters of a user's input an error message quotes: enough to recognise the value,
/// never a pasted 100 KB document (or most of a secret that landed in the wrong field).
pub const QUOTE_CHARS: usize = 64;

/// A user input as error messages show it: debug-quoted, at most [`QUOTE_CHARS`] characters of
/// it, and the total length when it was cut. Every message built from untrusted input goes
/// through here.
pub fn quote(input: &str) -> String {
    // The bound is on what is shown: escapes (`\u{3}`) count, so that a run of control
    // characters cannot make a quote six times longer.
    let mut shown = String::from("\"");
    let mut cut = false;
    for c in input.chars() {
        if shown.chars().count() > QUOTE_CHARS {
            cut = true;
            break;
        }
        shown.extend(c.escape_debug());
    }
    shown.push('"');
    if cut {
        shown.push_str(&format!("... ({} characters)", input.chars().count()));
    }
    shown
}

/// [`quote`] for a name a message already frames (`[section]`, `` `key` ``): the name itself
/// when short and printable, else its quoted prefix.
pub fn clip(name: &str) -> String {
    if name.chars().count() <= QUOTE_CHARS && !name.chars().any(char::is_control) {
        name.to_string()
    } else {
        quote(name)
    }
}

/// The longest URL a target may have: browsers and CDNs stop far below this, and eStats keys,
/// channel paths and history rows repeat it.
pub const MAX_URL_CHARS: usize = 2048;

/// Akamai's delivery networks, as the eStats API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Delivery {
    #[serde(rename = "STANDARD_TLS")]
    StandardTls,
    #[serde(rename = "ENHANCED_TLS")]
    EnhancedTls,
}

impl Delivery {
    /// Every network, in the order the editors offer them (after "not set").
    pub const ALL: [Delivery; 2] = [Delivery::StandardTls, Delivery::EnhancedTls];

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::StandardTls => "STANDARD_TLS",
            Delivery::EnhancedTls => "ENHANCED_TLS",
        }
    }

    /// Parses the setting/query spelling; "" means "not set".
    pub fn parse_optional(value: &str) -> Result<Option<Delivery>, String> {
        match value.trim() {
            "" => Ok(None),
            v if v.eq_ignore_ascii_case("STANDARD_TLS") => Ok(Some(Delivery::StandardTls)),
            v if v.eq_ignore_ascii_case("ENHANCED_TLS") => Ok(Some(Delivery::EnhancedTls)),
            other => Err(format!(
                "unknown delivery network {}: use STANDARD_TLS, ENHANCED_TLS or leave it empty",
                quote(other)
            )),
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thing eStats is asked about: exactly one of a CP code or an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    CpCode(u64),
    Url(String),
}

/// A subject on a delivery network (`None` lets Akamai pick the network the subject uses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub subject: Subject,
    pub delivery: Option<Delivery>,
}

/// Why a target could not be built; each names the field and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The value is kept already quoted (see [`quote`]).
    #[error("cpCode {0} is not a CP code: use the digits only, e.g. 1209788")]
    CpCodeNotNumeric(String),
    #[error("cpCode 0 is not a CP code: CP codes start at 1, e.g. 1209788")]
    CpCodeZero,
    /// The value is kept already quoted (see [`quote`]); the second part says what is wrong.
    #[error("url {0} is not usable: {1}")]
    UrlInvalid(String, &'static str),
    #[error("a target needs exactly one of cpCode or url, got {0}")]
    SubjectCount(&'static str),
    #[error("delivery: {0}")]
    Delivery(String),
    /// The key is kept already quoted (see [`quote`]).
    #[error("target key {0} is not of the form cp:<digits>/<delivery> or url:<url>/<delivery>")]
    Key(String),
}

impl Target {
    pub fn cp_code(code: u64, delivery: Option<Delivery>) -> Self {
        Target {
            subject: Subject::CpCode(code),
            delivery,
        }
    }

    /// Parses a CP code given as text (template variables arrive as strings).
    pub fn parse_cp_code(raw: &str) -> Result<u64, TargetError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TargetError::CpCodeNotNumeric(quote(raw)));
        }
        match trimmed.parse::<u64>() {
            Ok(0) => Err(TargetError::CpCodeZero),
            Ok(code) => Ok(code),
            Err(_) => Err(TargetError::CpCodeNotNumeric(quote(raw))),
        }
    }

    /// Checks that a URL is absolute http(s) with a host, as eStats requires. The text is
    /// checked before it is parsed, because the URL parser forgives what eStats would not:
    /// it turns `https:///path` into host `path` and percent-encodes a NUL.
    pub fn parse_url(raw: &str) -> Result<String, TargetError> {
        let trimmed = raw.trim();
        let bad = |why: &'static str| TargetError::UrlInvalid(quote(raw), why);
        if trimmed.chars().count() > MAX_URL_CHARS {
            return Err(bad("it is longer than 2048 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(bad(
                "it contains a control character (a NUL, tab or line break): copy the URL again",
            ));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(bad("it contains a space: percent-encode it as %20"));
        }
        const ABSOLUTE: &str = "write it with its scheme and host, e.g. https://www.example.com/";
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(bad(ABSOLUTE));
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(bad("only http and https URLs are measured by eStats"));
        }
        if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
            return Err(bad(
                "it has no host after the scheme: write it as https://www.example.com/path",
            ));
        }
        match url::Url::parse(trimmed) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(trimmed.to_string()),
            _ => Err(bad(ABSOLUTE)),
        }
    }

    /// Stable identity used by history rows, pollers, resources and live channels.
    pub fn key(&self) -> String {
        let delivery = self.delivery.map(Delivery::as_str).unwrap_or("ANY");
        match &self.subject {
            Subject::CpCode(c) => format!("cp:{c}/{delivery}"),
            Subject::Url(u) => format!("url:{u}/{delivery}"),
        }
    }

    /// Inverse of [`Target::key`].
    pub fn from_key(key: &str) -> Result<Target, TargetError> {
        let bad = || TargetError::Key(quote(key));
        let (rest, delivery) = key.rsplit_once('/').ok_or_else(bad)?;
        let delivery = match delivery {
            "ANY" => None,
            d => Some(
                Delivery::parse_optional(d)
                    .map_err(|_| bad())?
                    .ok_or_else(bad)?,
            ),
        };
        if let Some(code) = rest.strip_prefix("cp:") {
            let code = Target::parse_cp_code(code).map_err(|_| bad())?;
            Ok(Target::cp_code(code, delivery))
        } else if let Some(url) = rest.strip_prefix("url:") {
            let url = Target::parse_url(url).map_err(|_| bad())?;
            Ok(Target {
                subject: Subject::Url(url),
                delivery,
            })
        } else {
            Err(bad())
        }
    }

    /// Short human label for frames and legends, e.g. `cpCode 1209788 (STANDARD_TLS)`.
    pub fn label(&self) -> String {
        let subject = match &self.subject {
            Subject::CpCode(c) => format!("cpCode {c}"),
            Subject::Url(u) => u.clone(),
        };
        match self.delivery {
            Some(d) => format!("{subject} ({d})"),
            None => subject,
        }
    }
}

impl Target {
    /// The name a target goes by in frames of a query naming several targets (the `target`
    /// column, frame names, legends): the CP code's digits or the URL, with the delivery network
    /// in brackets when the target names one. Short and stable, unlike [`Target::label`], so
    /// that it reads well in a legend and as an alert label.
    pub fn display_name(&self) -> String {
        let subject = match &self.subject {
            Subject::CpCode(c) => c.to_string(),
            Subject::Url(u) => u.clone(),
        };
        match self.delivery {
            Some(d) => format!("{subject} ({d})"),
            None => subject,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The JSON shape of a target in settings (`watch`) and import files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cp_code: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

impl TargetSpec {
    pub fn check(&self) -> Result<Target, TargetError> {
        let delivery = Delivery::parse_optional(self.delivery.as_deref().unwrap_or(""))
            .map_err(TargetError::Delivery)?;
        let url = self.url.as_deref().filter(|u| !u.trim().is_empty());
        let cp = self
            .cp_code
            .as_ref()
            .filter(|v| !v.is_null() && v.as_str() != Some(""));
        match (cp, url) {
            (Some(cp), None) => {
                let text = match cp {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok(Target::cp_code(Target::parse_cp_code(&text)?, delivery))
            }
            (None, Some(u)) => Ok(Target {
                subject: Subject::Url(Target::parse_url(u)?),
                delivery,
            }),
            (Some(_), Some(_)) => Err(TargetError::SubjectCount("both")),
            (None, None) => Err(TargetError::SubjectCount("neither")),
        }
    }
}

impl From<&Target> for TargetSpec {
    fn from(t: &Target) -> Self {
        let (cp_code, url) = match &t.subject {
            Subject::CpCode(c) => (Some(serde_json::Value::from(*c)), None),
            Subject::Url(u) => (None, Some(u.clone())),
        };
        TargetSpec {
            cp_code,
            url,
            delivery: t.delivery.map(|d| d.as_str().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips() {
        for t in [
            Target::cp_code(1209788, Some(Delivery::StandardTls)),
            Target::cp_code(1, None),
            Target {
                subject: Subject::Url("https://www.example.com/a/b?c=d".into()),
                delivery: Some(Delivery::EnhancedTls),
            },
        ] {
            assert_eq!(Target::from_key(&t.key()).unwrap(), t);
        }
    }

    #[test]
    fn display_names_are_the_subject_and_the_named_network() {
        assert_eq!(Target::cp_code(1209788, None).display_name(), "1209788");
        assert_eq!(
            Target::cp_code(1209788, Some(Delivery::StandardTls)).display_name(),
            "1209788 (STANDARD_TLS)"
        );
        let url = Target {
            subject: Subject::Url("https://www.example.com/a,b".into()),
            delivery: Some(Delivery::EnhancedTls),
        };
        assert_eq!(
            url.display_name(),
            "https://www.example.com/a,b (ENHANCED_TLS)"
        );
    }

    #[test]
    fn cp_code_must_be_digits() {
        assert!(matches!(
            Target::parse_cp_code("12a"),
            Err(TargetError::CpCodeNotNumeric(_))
        ));
        assert!(matches!(
            Target::parse_cp_code(""),
            Err(TargetError::CpCodeNotNumeric(_))
        ));
        assert_eq!(Target::parse_cp_code(" 42 ").unwrap(), 42);
    }

    #[test]
    fn url_must_be_absolute() {
        assert!(Target::parse_url("www.example.com").is_err());
        assert!(Target::parse_url("/path").is_err());
        assert!(Target::parse_url("ftp://x/").is_err());
        assert!(Target::parse_url("https://x/").is_ok());
        assert!(Target::parse_url(" HTTPS://www.example.com/a?b=c ").is_ok());
        for bad in [
            "https:///path",
            "https://",
            "http://?x",
            "https://www.example.com/\0a",
            "https://www.example.com/a\u{7f}",
            "https://www.example.com/a b",
            "https://www.example.com/\nx",
        ] {
            assert!(
                matches!(Target::parse_url(bad), Err(TargetError::UrlInvalid(..))),
                "{bad:?}"
            );
        }
        let long = format!("https://www.example.com/{}", "a".repeat(3000));
        let err = Target::parse_url(&long).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn cp_code_zero_is_refused() {
        assert_eq!(Target::parse_cp_code("0"), Err(TargetError::CpCodeZero));
        assert_eq!(Target::parse_cp_code("000"), Err(TargetError::CpCodeZero));
    }

    #[test]
    fn quote_keeps_a_short_prefix() {
        assert_eq!(quote("abc"), "\"abc\"");
        let q = quote(&"x".repeat(10_000));
        assert!(q.len() < 100 && q.ends_with("(10000 characters)"), "{q}");
        // Cut on characters, never inside one.
        let q = quote(&"é".repeat(100));
        assert!(q.contains("(100 characters)"), "{q}");
        // Escapes count towards the bound.
        let q = quote(&"\u{3}".repeat(1000));
        assert!(q.len() < 110 && q.contains("(1000 characters)"), "{q}");
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
    }

    #[test]
    fn spec_accepts_number_or_string_cp_code() {
        let a: TargetSpec =
            serde_json::from_str(r#"{"cpCode": 12, "delivery": "STANDARD_TLS"}"#).unwrap();
        let b: TargetSpec =
            serde_json::from_str(r#"{"cpCode": "12", "delivery": "STANDARD_TLS"}"#).unwrap();
        assert_eq!(a.check().unwrap(), b.check().unwrap());
        let both: TargetSpec =
            serde_json::from_str(r#"{"cpCode": 12, "url": "https://x/"}"#).unwrap();
        assert_eq!(both.check(), Err(TargetError::SubjectCount("both")));
    }
}
