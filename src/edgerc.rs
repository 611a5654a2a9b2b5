//! `.edgerc` files: INI sections of EdgeGrid credentials, with environment overrides.
//!
//! The format is the one Akamai's EdgeGrid libraries and CLI read: `[section]` headers and
//! `key = value` lines. Real files are hand-edited, so this parser is forgiving where the meaning
//! is unambiguous (key case, dashes for underscores, quotes around values, `https://` before the
//! host, CRLF, a BOM) and strict where a mistake would otherwise surface later as an opaque 401
//! (a misspelt key, an empty token, a host with a path).
//!
//! Values are credentials: no error message ever contains a value read from the file or the
//! environment, only line numbers, section and key names.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use crate::edgegrid::{Credentials, Secret, DEFAULT_MAX_BODY};
use crate::target::clip;

/// Looks up an environment variable; tests pass a closure over a map instead of the process env.
/// The one `Env` of the crate: settings and the CLI take it too.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The largest `.edgerc` read: real ones are a few hundred bytes per section; a path that points
/// at a log file or `/dev/zero` must not be read into memory.
pub const MAX_EDGERC_BYTES: u64 = 64 * 1024;

/// The longest host name DNS allows.
pub const MAX_HOST_CHARS: usize = 253;

/// The checked contents of one `.edgerc` section (after environment overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgercSection {
    /// `https://host[:port]/`, or `http://` for a loopback simulator; see [`base_url`].
    pub base_url: url::Url,
    pub credentials: Credentials,
    /// `account_key`: the account switch key some `.edgerc` files carry for partner accounts.
    pub account_key: Option<String>,
}

/// Why a host setting is unusable. Messages never repeat the value (it may be a pasted secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error(
        "the host is empty: use the host of your API client, e.g. akab-xxxx.luna.akamaiapis.net"
    )]
    Empty,
    #[error(
        "http is only allowed for loopback simulators (127.0.0.1); use your https EdgeGrid host"
    )]
    HttpNotLoopback,
    #[error("the host has an unsupported scheme: give the bare host, e.g. akab-xxxx.luna.akamaiapis.net, or prefix it with https://")]
    Scheme,
    #[error("the host has a path, query or fragment after it: give only the host, e.g. akab-xxxx.luna.akamaiapis.net (the plugin adds /edge-diagnostics/v1/...)")]
    Path,
    #[error("the host contains a user name or password: give only the host, e.g. akab-xxxx.luna.akamaiapis.net")]
    UserInfo,
    #[error("the host is not a valid host name ({0}): use the host of your API client, e.g. akab-xxxx.luna.akamaiapis.net")]
    Invalid(String),
}

/// A `.edgerc` section that cannot be used. `origin` is the file path as given, or
/// "the environment"; `source` names where one value came from ("line 3 of ~/.edgerc" or
/// "environment variable AKAMAI_HOST").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgercError {
    #[error("cannot read {path}: {reason}; check the path (jsonData.edgercPath / --edgerc) and that the plugin's user may read it")]
    Io { path: String, reason: String },
    #[error("{origin} has no section [{section}]; {found}: pick one of those or add a [{section}] section")]
    UnknownSection {
        origin: String,
        section: String,
        /// Human list of the sections that exist, e.g. "sections found: [default], [ccu]".
        found: String,
    },
    #[error("line {line} of {origin}: unknown key `{key}` in section [{section}]: did you mean `{suggestion}`?")]
    UnknownKey {
        origin: String,
        line: usize,
        key: String,
        section: String,
        suggestion: &'static str,
    },
    #[error("line {line} of {origin}: `{key}` is set twice in section [{section}] (first on line {first_line}): keep one")]
    DuplicateKey {
        origin: String,
        line: usize,
        first_line: usize,
        key: &'static str,
        section: String,
    },
    #[error("section [{section}] of {origin} lacks {key}: add `{key} = ...` from your API client's credentials, or set {env_var}")]
    MissingKey {
        origin: String,
        section: String,
        key: &'static str,
        env_var: String,
    },
    #[error("{source_of} gives an empty {key} for section [{section}]: fill in the value from your API client's credentials (an empty value is never used to sign)")]
    EmptyValue {
        source_of: String,
        section: String,
        key: &'static str,
    },
    #[error("{source_of}: max_body of section [{section}] must be a positive whole number of bytes, e.g. 131072")]
    InvalidMaxBody { source_of: String, section: String },
    #[error("{source_of}: host of section [{section}]: {reason}")]
    InvalidHost {
        source_of: String,
        section: String,
        reason: HostError,
    },
    #[error("line {line} of {origin}: {reason}")]
    Syntax {
        origin: String,
        line: usize,
        reason: &'static str,
    },
}

/// Keys this crate uses, in their canonical spelling.
const HOST: &str = "host";
const CLIENT_TOKEN: &str = "client_token";
const CLIENT_SECRET: &str = "client_secret";
const ACCESS_TOKEN: &str = "access_token";
const MAX_BODY: &str = "max_body";
const ACCOUNT_KEY: &str = "account_key";
const USED_KEYS: [&str; 6] = [
    HOST,
    CLIENT_TOKEN,
    CLIENT_SECRET,
    ACCESS_TOKEN,
    MAX_BODY,
    ACCOUNT_KEY,
];
/// Keys other EdgeGrid clients read that mean nothing here (this plugin signs no extra headers).
const IGNORED_KEYS: [&str; 1] = ["headers_to_sign"];

/// `Client-Token` and `client_token` are the same key.
fn canonical_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase().replace('-', "_")
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so `hsot` is one
/// edit from `host`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The used key an unknown key is probably a typo of: at most 3 edits, and at most a third of
/// the known key's length, so that a short unrelated key such as `port` is not taken for `host`.
fn suggest(key: &str) -> Option<&'static str> {
    let squeezed = key.replace('_', "");
    USED_KEYS
        .iter()
        .map(|known| {
            let d =
                edit_distance(key, known).min(edit_distance(&squeezed, &known.replace('_', "")));
            (d, *known)
        })
        .filter(|(d, known)| *d <= 3 && *d * 3 <= known.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// The environment variable that overrides `key` of `section`: `AKAMAI_HOST` for `default`,
/// `AKAMAI_CCU_HOST` for `ccu` (non-alphanumerics become `_`).
pub fn env_var(section: &str, key: &str) -> String {
    let key = key.to_ascii_uppercase();
    if section == "default" {
        format!("AKAMAI_{key}")
    } else {
        let section: String = section
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("AKAMAI_{section}_{key}")
    }
}

/// Host names that always mean this machine (RFC 6761): `localhost` and any name under
/// `.localhost`.
pub const LOOPBACK_HOST_NAMES: [&str; 1] = ["localhost"];

/// The crate's one loopback rule: `localhost` and `*.localhost`, 127.0.0.0/8 and ::1. A
/// loopback host is a local stand-in for Akamai (the simulator), which may be reached over
/// plain http and polled faster.
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            LOOPBACK_HOST_NAMES
                .iter()
                .any(|name| d == *name || d.ends_with(&format!(".{name}")))
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Turns a host setting into the base URL requests go to. Accepts `host`, `host:port`,
/// `https://host/` and quoted forms; `http://` only for loopback (a local simulator), since
/// credentials must never travel in clear text.
pub fn base_url(host: &str) -> Result<url::Url, HostError> {
    let host = strip_quotes(host.trim()).trim();
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("https") => ("https", rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("http") => ("http", rest),
        Some(_) => return Err(HostError::Scheme),
        None => ("https", host),
    };
    if rest.is_empty() || rest == "/" {
        return Err(HostError::Empty);
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(HostError::Invalid("it contains whitespace".into()));
    }
    if rest.chars().any(char::is_control) {
        return Err(HostError::Invalid("it contains a control character".into()));
    }
    // host, a port and a slash; longer is not a host name (and would be echoed in messages).
    if rest.chars().count() > MAX_HOST_CHARS + 8 {
        return Err(HostError::Invalid(format!(
            "it is {} characters long; host names have at most {MAX_HOST_CHARS}",
            rest.chars().count()
        )));
    }
    // url's parse errors name the problem, never the input.
    let url = url::Url::parse(&format!("{scheme}://{rest}"))
        .map_err(|e| HostError::Invalid(e.to_string()))?;
    if url.host_str().is_some_and(|h| h.len() > MAX_HOST_CHARS) {
        return Err(HostError::Invalid(format!(
            "it is longer than {MAX_HOST_CHARS} characters"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HostError::UserInfo);
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(HostError::Path);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(HostError::Empty);
    }
    if scheme == "http" && !is_loopback_url(&url) {
        return Err(HostError::HttpNotLoopback);
    }
    Ok(url)
}

fn strip_quotes(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// One meaningful line of an INI file, as both INI readers of this crate (`.edgerc` here, the
/// old exporter's settings in [`crate::migrate`]) see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IniLine<'a> {
    /// `[name]`, the name trimmed.
    Section(&'a str),
    /// `key = value` or `key: value`: the key trimmed, the value as written after the separator
    /// (each reader cleans values its own way).
    Pair { key: &'a str, value: &'a str },
}

/// Why a line is not INI; each reader words the fix for its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IniProblem {
    UnclosedHeader,
    TextAfterHeader,
    EmptySectionName,
    NotAPair,
    EmptyKey,
}

/// The meaningful lines of INI `text` with their 1-based numbers: a BOM, blank lines and
/// whole-line `#`/`;` comments skipped, a comment after a header allowed.
pub fn ini_lines(text: &str) -> impl Iterator<Item = (usize, Result<IniLine<'_>, IniProblem>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().enumerate().filter_map(|(index, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return None;
        }
        Some((index + 1, ini_line(line)))
    })
}

fn ini_line(line: &str) -> Result<IniLine<'_>, IniProblem> {
    if let Some(rest) = line.strip_prefix('[') {
        let (name, after) = rest.split_once(']').ok_or(IniProblem::UnclosedHeader)?;
        let after = after.trim();
        if !after.is_empty() && !after.starts_with('#') && !after.starts_with(';') {
            return Err(IniProblem::TextAfterHeader);
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(IniProblem::EmptySectionName);
        }
        return Ok(IniLine::Section(name));
    }
    let split = line.find(['=', ':']).ok_or(IniProblem::NotAPair)?;
    let key = line[..split].trim();
    if key.is_empty() {
        return Err(IniProblem::EmptyKey);
    }
    Ok(IniLine::Pair {
        key,
        value: &line[split + 1..],
    })
}

/// One `key = value` line of the requested section.
struct Entry {
    line: usize,
    value: String,
}

/// The raw values of one section, keyed by canonical key, plus where each came from.
#[derive(Default)]
struct RawSection {
    host: Option<Entry>,
    client_token: Option<Entry>,
    client_secret: Option<Entry>,
    access_token: Option<Entry>,
    max_body: Option<Entry>,
    account_key: Option<Entry>,
}

impl RawSection {
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<Entry>)> {
        Some(match key {
            HOST => (HOST, &mut self.host),
            CLIENT_TOKEN => (CLIENT_TOKEN, &mut self.client_token),
            CLIENT_SECRET => (CLIENT_SECRET, &mut self.client_secret),
            ACCESS_TOKEN => (ACCESS_TOKEN, &mut self.access_token),
            MAX_BODY => (MAX_BODY, &mut self.max_body),
            ACCOUNT_KEY => (ACCOUNT_KEY, &mut self.account_key),
            _ => return None,
        })
    }
}

/// Splits a value from a trailing comment and surrounding quotes. A comment starts at `#` or `;`
/// preceded by whitespace: base64 secrets contain neither whitespace nor those characters, and
/// may end in `=`, which therefore is never treated specially.
fn clean_value(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if let Some(q) = raw.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let inner = &raw[1..];
        let end = inner
            .find(q)
            .ok_or("a quoted value lacks its closing quote: close it on the same line")?;
        let after = inner[end + 1..].trim();
        if !after.is_empty() && !after.starts_with('#') && !after.starts_with(';') {
            return Err("text follows a quoted value: remove it or put it in a comment");
        }
        return Ok(inner[..end].to_string());
    }
    let mut prev_ws = false;
    for (i, c) in raw.char_indices() {
        if (c == '#' || c == ';') && prev_ws {
            return Ok(raw[..i].trim_end().to_string());
        }
        prev_ws = c.is_whitespace();
    }
    Ok(raw.to_string())
}

/// How many of a file's sections an unknown-section error names.
const SECTIONS_LISTED: usize = 5;

/// The `.edgerc` wording of an INI problem.
fn ini_reason(problem: IniProblem) -> &'static str {
    match problem {
        IniProblem::UnclosedHeader => "a section header lacks its closing `]`: write it as [name]",
        IniProblem::TextAfterHeader => "text follows a section header: put it on its own line",
        IniProblem::EmptySectionName => "a section header has no name: write it as [name]",
        IniProblem::NotAPair => {
            "this line is neither a [section], a `key = value` pair nor a # comment"
        }
        IniProblem::EmptyKey => "a value has no key before its `=`: write `key = value`",
    }
}

/// Parses `.edgerc` text and returns `section`, with environment overrides applied.
/// `origin` names the file in messages.
pub fn parse(
    text: &str,
    origin: &str,
    section: &str,
    env: Env<'_>,
) -> Result<EdgercSection, EdgercError> {
    let wanted = section.trim();
    let mut sections: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut raw = RawSection::default();
    let syntax = |line: usize, reason: &'static str| EdgercError::Syntax {
        origin: origin.to_string(),
        line,
        reason,
    };

    for (number, line) in ini_lines(text) {
        let (key, value) = match line.map_err(|problem| syntax(number, ini_reason(problem)))? {
            IniLine::Section(name) => {
                if !sections.iter().any(|s| s == name) {
                    sections.push(name.to_string());
                }
                current = Some(name.to_string());
                continue;
            }
            IniLine::Pair { key, value } => (key, value),
        };
        let Some(in_section) = current.as_deref() else {
            return Err(syntax(
                number,
                "a key comes before any [section] header: add [default] above it",
            ));
        };
        if in_section != wanted {
            // Other sections may belong to other tools; only their syntax matters here.
            clean_value(value).map_err(|reason| syntax(number, reason))?;
            continue;
        }
        let canonical = canonical_key(key);
        let value = clean_value(value).map_err(|reason| syntax(number, reason))?;
        match raw.slot(&canonical) {
            Some((name, slot)) => {
                if let Some(first) = slot {
                    return Err(EdgercError::DuplicateKey {
                        origin: origin.to_string(),
                        line: number,
                        first_line: first.line,
                        key: name,
                        section: clip(wanted),
                    });
                }
                *slot = Some(Entry {
                    line: number,
                    value,
                });
            }
            None if IGNORED_KEYS.contains(&canonical.as_str()) => {}
            None => {
                if let Some(suggestion) = suggest(&canonical) {
                    return Err(EdgercError::UnknownKey {
                        origin: origin.to_string(),
                        line: number,
                        key: clip(key),
                        section: clip(wanted),
                        suggestion,
                    });
                }
            }
        }
    }

    if !sections.iter().any(|s| s == wanted) {
        let found = if sections.is_empty() {
            "it has no sections at all".to_string()
        } else {
            let mut list: Vec<String> = sections
                .iter()
                .take(SECTIONS_LISTED)
                .map(|s| format!("[{}]", clip(s)))
                .collect();
            if sections.len() > SECTIONS_LISTED {
                list.push(format!("and {} more", sections.len() - SECTIONS_LISTED));
            }
            format!("sections found: {}", list.join(", "))
        };
        return Err(EdgercError::UnknownSection {
            origin: origin.to_string(),
            section: clip(wanted),
            found,
        });
    }
    resolve(raw, origin, wanted, env)
}

/// Reads `path` and returns `section`, with environment overrides applied.
pub fn load(path: &Path, section: &str, env: Env<'_>) -> Result<EdgercSection, EdgercError> {
    let origin = clip(&path.display().to_string());
    let text = read_bounded(path).map_err(|reason| EdgercError::Io {
        path: origin.clone(),
        reason,
    })?;
    parse(&text, &origin, section, env)
}

/// Reads a regular file of at most [`MAX_EDGERC_BYTES`]; a FIFO nobody writes, a device or a
/// directory is refused at once, checked before the open and again on the open handle.
fn read_bounded(path: &Path) -> Result<String, String> {
    let regular = |meta: &std::fs::Metadata| -> Result<(), String> {
        if meta.is_file() {
            return Ok(());
        }
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a pipe, socket or device)"
        };
        Err(format!("it is {what}; an .edgerc is a text file"))
    };
    // stat never blocks: a FIFO is refused before it is opened.
    regular(&std::fs::metadata(path).map_err(|e| e.to_string())?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opened non-blocking where the flag is at hand, so that a FIFO swapped in after the check
    // does not block the open either (the caller's timeout covers the rest).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = options.open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    regular(&meta)?;
    if meta.len() > MAX_EDGERC_BYTES {
        return Err(format!(
            "it is {} bytes; an .edgerc has at most {MAX_EDGERC_BYTES}",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the check: never read past the cap.
    (&mut file)
        .take(MAX_EDGERC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_EDGERC_BYTES {
        return Err(format!(
            "it is more than {MAX_EDGERC_BYTES} bytes; an .edgerc is smaller"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

/// Credentials from environment variables alone (`AKAMAI_HOST`, `AKAMAI_CLIENT_TOKEN`, ...; see
/// [`env_var`]), for deployments without an `.edgerc` file.
pub fn from_env(section: &str, env: Env<'_>) -> Result<EdgercSection, EdgercError> {
    resolve(
        RawSection::default(),
        "the environment",
        section.trim(),
        env,
    )
}

/// Where a value came from, for messages.
enum Source {
    Line(usize),
    Env(String),
}

impl Source {
    fn describe(&self, origin: &str) -> String {
        match self {
            Source::Line(n) => format!("line {n} of {origin}"),
            Source::Env(var) => format!("environment variable {var}"),
        }
    }
}

/// Applies environment overrides to the file's values and checks every value.
fn resolve(
    mut raw: RawSection,
    origin: &str,
    section: &str,
    env: Env<'_>,
) -> Result<EdgercSection, EdgercError> {
    let mut take = |key: &'static str| -> Option<(String, Source)> {
        let specific = env_var(section, key);
        let generic = env_var("default", key);
        for var in [specific, generic] {
            if let Some(value) = env(&var) {
                return Some((value, Source::Env(var)));
            }
        }
        raw.slot(key)
            .and_then(|(_, slot)| slot.take())
            .map(|e| (e.value, Source::Line(e.line)))
    };
    let host = take(HOST);
    let client_token = take(CLIENT_TOKEN);
    let client_secret = take(CLIENT_SECRET);
    let access_token = take(ACCESS_TOKEN);
    let max_body = take(MAX_BODY);
    let account_key = take(ACCOUNT_KEY);

    let required = |key: &'static str,
                    found: Option<(String, Source)>|
     -> Result<(String, Source), EdgercError> {
        let (value, source) = found.ok_or_else(|| EdgercError::MissingKey {
            origin: origin.to_string(),
            section: clip(section),
            key,
            env_var: clip(&env_var(section, key)),
        })?;
        let value = strip_quotes(value.trim()).trim().to_string();
        if value.is_empty() {
            return Err(EdgercError::EmptyValue {
                source_of: source.describe(origin),
                section: clip(section),
                key,
            });
        }
        Ok((value, source))
    };

    let (host, host_source) = required(HOST, host)?;
    let base_url = base_url(&host).map_err(|reason| EdgercError::InvalidHost {
        source_of: host_source.describe(origin),
        section: clip(section),
        reason,
    })?;
    let client_token = required(CLIENT_TOKEN, client_token)?.0;
    let client_secret = required(CLIENT_SECRET, client_secret)?.0;
    let access_token = required(ACCESS_TOKEN, access_token)?.0;
    let max_body = match max_body {
        None => DEFAULT_MAX_BODY,
        Some((value, source)) => strip_quotes(value.trim())
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| EdgercError::InvalidMaxBody {
                source_of: source.describe(origin),
                section: clip(section),
            })?,
    };
    let account_key = account_key
        .map(|(v, _)| strip_quotes(v.trim()).trim().to_string())
        .filter(|v| !v.is_empty());

    Ok(EdgercSection {
        base_url,
        credentials: Credentials {
            client_token: Secret::new(client_token),
            client_secret: Secret::new(client_secret),
            access_token: Secret::new(access_token),
            max_body,
        },
        account_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SAMPLE: &str = include_str!("../tests/fixtures/python-sample_edgerc");

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse_default(text: &str) -> Result<EdgercSection, EdgercError> {
        parse(text, "~/.edgerc", "default", &no_env)
    }

    const GOOD: &str = "[default]\nhost = akab-h.luna.akamaiapis.net\nclient_token = akab-ct\nclient_secret = c2VjcmV0Cg==\naccess_token = akab-at\n";

    #[test]
    fn sample_sections() {
        for section in ["default", "broken", "headers", "dashes"] {
            let s = parse(SAMPLE, "sample", section, &no_env)
                .unwrap_or_else(|e| panic!("[{section}]: {e}"));
            assert_eq!(
                s.base_url.as_str(),
                "https://xxxx-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.luna.akamaiapis.net/",
                "[{section}]"
            );
            assert_eq!(
                s.credentials.client_token.expose(),
                "xxxx-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx"
            );
            assert_eq!(
                s.credentials.client_secret.expose(),
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="
            );
            assert_eq!(
                s.credentials.access_token.expose(),
                "xxxx-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx"
            );
            assert_eq!(s.credentials.max_body, 131072);
            assert_eq!(s.account_key, None);
        }
    }

    #[test]
    fn lenient_syntax() {
        let text = "\u{feff}; comment\r\n# another\r\n\r\n[other]\r\nhost = other.example\r\n\
            [ default ]  # trailing comment\r\n\
            Host: \"https://akab-h.luna.akamaiapis.net/\"\r\n\
            Client-Token='akab-ct'\r\n\
            CLIENT_SECRET   =   abc+/def==   ; old secret rotated 2024\r\n\
            access-token = akab-at #x\r\n\
            max-body = 4096\r\n\
            headers_to_sign = X-A, X-B\r\n\
            something_else_entirely = 1\r\n";
        let s = parse_default(text).unwrap();
        assert_eq!(s.base_url.as_str(), "https://akab-h.luna.akamaiapis.net/");
        assert_eq!(s.credentials.client_token.expose(), "akab-ct");
        assert_eq!(s.credentials.client_secret.expose(), "abc+/def==");
        assert_eq!(s.credentials.access_token.expose(), "akab-at");
        assert_eq!(s.credentials.max_body, 4096);
    }

    #[test]
    fn secret_ending_in_hash_like_chars_is_kept() {
        // '#' or ';' inside a value (not after whitespace) is part of it.
        let text = GOOD.replace("c2VjcmV0Cg==", "ab#c;d==");
        let s = parse_default(&text).unwrap();
        assert_eq!(s.credentials.client_secret.expose(), "ab#c;d==");
        let quoted = GOOD.replace("c2VjcmV0Cg==", "\"ab #c==\" ; comment");
        let s = parse_default(&quoted).unwrap();
        assert_eq!(s.credentials.client_secret.expose(), "ab #c==");
    }

    #[test]
    fn account_key_is_read() {
        let text = format!("{GOOD}account_key = 1-ABCDE:1-2345\n");
        assert_eq!(
            parse_default(&text).unwrap().account_key.as_deref(),
            Some("1-ABCDE:1-2345")
        );
    }

    #[test]
    fn typo_keys_suggest_the_right_one() {
        for (typo, right) in [
            ("client_tokn", "client_token"),
            ("clientsecret", "client_secret"),
            ("acess_token", "access_token"),
            ("hsot", "host"),
            ("max_bdy", "max_body"),
            ("Client_Secert", "client_secret"),
        ] {
            let text = format!("[default]\nhost = h.example\n\n{typo} = x\n");
            let err = parse_default(&text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("line 4 of ~/.edgerc: unknown key `{typo}` in section [default]: did you mean `{right}`?")
            );
        }
    }

    #[test]
    fn far_unknown_keys_are_ignored() {
        for key in ["port", "description", "owner_email"] {
            let text = format!("{GOOD}{key} = whatever\n");
            assert!(parse_default(&text).is_ok(), "{key}");
        }
    }

    #[test]
    fn typos_in_other_sections_do_not_matter() {
        let text = format!("[ccu]\nclient_tokn = x\n{GOOD}");
        assert!(parse_default(&text).is_ok());
    }

    #[test]
    fn missing_keys_are_named() {
        for key in ["host", "client_token", "client_secret", "access_token"] {
            let text: String = GOOD
                .lines()
                .filter(|l| !l.starts_with(key))
                .map(|l| format!("{l}\n"))
                .collect();
            let err = parse_default(&text).unwrap_err();
            let expected = format!("section [default] of ~/.edgerc lacks {key}");
            assert!(err.to_string().starts_with(&expected), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("AKAMAI_{}", key.to_ascii_uppercase())),
                "{err}"
            );
        }
    }

    #[test]
    fn empty_values_are_errors() {
        for (line, key) in [
            ("client_token = ", "client_token"),
            ("client_secret = \"\"", "client_secret"),
            ("access_token=''", "access_token"),
            ("host =", "host"),
        ] {
            let text: String = GOOD
                .lines()
                .map(|l| {
                    if l.starts_with(key) {
                        format!("{line}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            let err = parse_default(&text).unwrap_err();
            assert!(
                matches!(&err, EdgercError::EmptyValue { key: k, .. } if *k == key),
                "{err:?}"
            );
            assert!(err.to_string().contains("of ~/.edgerc"), "{err}");
        }
    }

    #[test]
    fn unknown_section_lists_the_others() {
        let text = format!("[ccu]\nhost = x\n{GOOD}");
        let err = parse(&text, "~/.edgerc", "papi", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "~/.edgerc has no section [papi]; sections found: [ccu], [default]: pick one of those or add a [papi] section"
        );
        let err = parse("# nothing\n", "~/.edgerc", "default", &no_env).unwrap_err();
        assert!(err.to_string().contains("no sections at all"), "{err}");
    }

    #[test]
    fn max_body_must_be_positive_integer() {
        for bad in ["0", "-5", "12k", "1.5", "\"\""] {
            let text = format!("{GOOD}max_body = {bad}\n");
            let err = parse_default(&text).unwrap_err();
            assert!(
                matches!(err, EdgercError::InvalidMaxBody { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().starts_with("line 6 of ~/.edgerc"), "{err}");
        }
        let text = format!("{GOOD}max_body = \"2048\"\n");
        assert_eq!(parse_default(&text).unwrap().credentials.max_body, 2048);
        assert_eq!(
            parse_default(GOOD).unwrap().credentials.max_body,
            DEFAULT_MAX_BODY
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let text = format!("{GOOD}Client-Token = other\n");
        let err = parse_default(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 6 of ~/.edgerc: `client_token` is set twice in section [default] (first on line 3): keep one"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            ("[default\nhost = x\n", 1),
            ("host = x\n[default]\n", 1),
            ("[default]\nhost = x\njust-a-secret-value\n", 3),
            ("[default]\nhost = x\nclient_secret = \"abc\n", 3),
            ("[default]\n = value\n", 2),
            ("[]\n", 1),
        ] {
            match parse_default(text) {
                Err(EdgercError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn host_forms() {
        for (input, expected) in [
            (
                "akab-h.luna.akamaiapis.net",
                "https://akab-h.luna.akamaiapis.net/",
            ),
            (
                "akab-h.luna.akamaiapis.net/",
                "https://akab-h.luna.akamaiapis.net/",
            ),
            (
                "HTTPS://akab-h.luna.akamaiapis.net/",
                "https://akab-h.luna.akamaiapis.net/",
            ),
            (
                "'akab-h.luna.akamaiapis.net'",
                "https://akab-h.luna.akamaiapis.net/",
            ),
            (
                "akab-h.luna.akamaiapis.net:8443",
                "https://akab-h.luna.akamaiapis.net:8443/",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("http://127.1.2.3:8080/", "http://127.1.2.3:8080/"),
            ("http://localhost:9000", "http://localhost:9000/"),
            ("http://[::1]:9000", "http://[::1]:9000/"),
            ("https://127.0.0.1:8443", "https://127.0.0.1:8443/"),
        ] {
            assert_eq!(base_url(input).unwrap().as_str(), expected, "{input}");
        }
        for (input, err) in [
            ("", HostError::Empty),
            ("\"\"", HostError::Empty),
            ("https://", HostError::Empty),
            (
                "http://akab-h.luna.akamaiapis.net",
                HostError::HttpNotLoopback,
            ),
            ("http://10.0.0.1:8080", HostError::HttpNotLoopback),
            ("ftp://akab-h.luna.akamaiapis.net", HostError::Scheme),
            (
                "akab-h.luna.akamaiapis.net/edge-diagnostics/v1",
                HostError::Path,
            ),
            ("akab-h.luna.akamaiapis.net//", HostError::Path),
            ("akab-h.luna.akamaiapis.net?x=1", HostError::Path),
            ("user:pw@akab-h.luna.akamaiapis.net", HostError::UserInfo),
        ] {
            assert_eq!(base_url(input), Err(err), "{input}");
        }
        assert!(matches!(
            base_url("akab h.example"),
            Err(HostError::Invalid(_))
        ));
        assert!(matches!(
            base_url("host:notaport"),
            Err(HostError::Invalid(_))
        ));
        assert_eq!(
            HostError::HttpNotLoopback.to_string(),
            "http is only allowed for loopback simulators (127.0.0.1); use your https EdgeGrid host"
        );
    }

    #[test]
    fn bad_host_in_file_names_line_and_section() {
        let text = GOOD.replace(
            "akab-h.luna.akamaiapis.net",
            "http://akab-h.luna.akamaiapis.net",
        );
        let err = parse_default(&text).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "line 2 of ~/.edgerc: host of section [default]: http is only allowed"
            ),
            "{err}"
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_var("default", "host"), "AKAMAI_HOST");
        assert_eq!(env_var("default", "client_secret"), "AKAMAI_CLIENT_SECRET");
        assert_eq!(env_var("ccu", "host"), "AKAMAI_CCU_HOST");
        assert_eq!(
            env_var("my-api.v2", "max_body"),
            "AKAMAI_MY_API_V2_MAX_BODY"
        );
    }

    #[test]
    fn env_overrides_single_keys() {
        let env = env_of(&[
            ("AKAMAI_CLIENT_SECRET", "from-env-secret"),
            ("AKAMAI_MAX_BODY", "1024"),
        ]);
        let s = parse(GOOD, "~/.edgerc", "default", &env).unwrap();
        assert_eq!(s.credentials.client_secret.expose(), "from-env-secret");
        assert_eq!(s.credentials.client_token.expose(), "akab-ct");
        assert_eq!(s.credentials.max_body, 1024);
    }

    #[test]
    fn section_env_wins_over_generic() {
        let text = GOOD.replace("[default]", "[ccu]");
        let env = env_of(&[
            ("AKAMAI_HOST", "generic.example"),
            ("AKAMAI_CCU_HOST", "specific.example"),
            ("AKAMAI_ACCESS_TOKEN", "generic-at"),
        ]);
        let s = parse(&text, "~/.edgerc", "ccu", &env).unwrap();
        assert_eq!(s.base_url.as_str(), "https://specific.example/");
        assert_eq!(s.credentials.access_token.expose(), "generic-at");
        assert_eq!(s.credentials.client_token.expose(), "akab-ct");
    }

    #[test]
    fn env_overrides_fill_missing_keys_and_typos_still_fail() {
        let text = "[default]\nhost = h.example\nclient_token = ct\naccess_token = at\n";
        let env = env_of(&[("AKAMAI_CLIENT_SECRET", "s=")]);
        assert!(parse(text, "f", "default", &env).is_ok());
        let env = env_of(&[("AKAMAI_CLIENT_SECRET", "")]);
        let err = parse(text, "f", "default", &env).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "environment variable AKAMAI_CLIENT_SECRET gives an empty client_secret"
            ),
            "{err}"
        );
        let env = env_of(&[("AKAMAI_MAX_BODY", "lots")]);
        let err = parse(GOOD, "f", "default", &env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable AKAMAI_MAX_BODY: max_body"),
            "{err}"
        );
    }

    #[test]
    fn from_env_alone() {
        let env = env_of(&[
            ("AKAMAI_HOST", "https://akab-h.luna.akamaiapis.net/"),
            ("AKAMAI_CLIENT_TOKEN", "ct"),
            ("AKAMAI_CLIENT_SECRET", "cs"),
            ("AKAMAI_ACCESS_TOKEN", "at"),
            ("AKAMAI_ACCOUNT_KEY", "1-ABC"),
        ]);
        let s = from_env("default", &env).unwrap();
        assert_eq!(s.base_url.as_str(), "https://akab-h.luna.akamaiapis.net/");
        assert_eq!(s.credentials.client_secret.expose(), "cs");
        assert_eq!(s.account_key.as_deref(), Some("1-ABC"));
        let err = from_env("default", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "section [default] of the environment lacks host: add `host = ...` from your API client's credentials, or set AKAMAI_HOST"
        );
    }

    #[test]
    fn load_reads_files_and_reports_io_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgerc");
        std::fs::write(&path, GOOD).unwrap();
        let s = load(&path, "default", &no_env).unwrap();
        assert_eq!(s.credentials.access_token.expose(), "akab-at");

        let missing = dir.path().join("nope");
        let err = load(&missing, "default", &no_env).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&missing.display().to_string()), "{text}");
        assert!(text.contains("No such file"), "{text}");

        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let err = load(&path, "default", &no_env).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn errors_never_contain_values() {
        const S: &str = "SuperSecretValue+/Zz9=";
        let cases = [
            format!("[default]\nhost = h.example\nclient_token = {S}\nclient_secret = \"{S}\n"),
            format!("[default]\n{S}\n"),
            format!("[default]\nhost = h.example/{S}\nclient_token = {S}\n"),
            format!("[default]\nhost = http://{S}.example\n"),
            format!("[default]\nhost = {S}\n"),
            format!("{GOOD}max_body = {S}\n"),
            format!("{GOOD}client_secret = {S}\n"),
            format!("[default]\nclient_secret = '{S}' trailing\n"),
            format!("[default]\nclient_secret = {S}\nhost = h.example\n"),
        ];
        for text in &cases {
            let err = parse_default(text).unwrap_err();
            assert!(!err.to_string().contains(S), "{err}");
            assert!(!format!("{err:?}").contains(S), "{err:?}");
            assert!(!err.to_string().contains("SuperSecret"), "{err}");
        }
        let env = env_of(&[("AKAMAI_HOST", S), ("AKAMAI_MAX_BODY", S)]);
        for err in [
            parse(GOOD, "f", "default", &env).unwrap_err(),
            from_env("default", &env_of(&[("AKAMAI_CLIENT_SECRET", S)])).unwrap_err(),
        ] {
            assert!(!err.to_string().contains("SuperSecret"), "{err}");
        }
        let ok = parse_default(GOOD).unwrap();
        assert!(!format!("{ok:?}").contains("c2VjcmV0Cg=="));
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let big = dir.path().join("big");
        std::fs::write(&big, "#".repeat(MAX_EDGERC_BYTES as usize + 1)).unwrap();
        for (path, why) in [
            (fifo.as_path(), "not a regular file"),
            (Path::new("/dev/zero"), "not a regular file"),
            (dir.path(), "a directory"),
            (big.as_path(), "bytes"),
        ] {
            // A FIFO nobody writes would block a plain read for ever: this returns at once.
            let err = load(path, "default", &no_env).unwrap_err();
            assert!(matches!(err, EdgercError::Io { .. }), "{err:?}");
            assert!(err.to_string().contains(why), "{err}");
            assert!(err.to_string().contains("jsonData.edgercPath"), "{err}");
        }
    }

    #[test]
    fn loopback_rule() {
        let yes = [
            "http://localhost/",
            "http://LOCALHOST:9/",
            "http://a.b.localhost/",
            "http://127.0.0.1/",
            "http://127.9.8.7/",
            "http://[::1]/",
        ];
        let no = [
            "http://localhost.example/",
            "http://notlocalhost/",
            "http://10.0.0.1/",
            "http://[::2]/",
            "https://akab-h.luna.akamaiapis.net/",
        ];
        for u in yes {
            assert!(is_loopback_url(&url::Url::parse(u).unwrap()), "{u}");
        }
        for u in no {
            assert!(!is_loopback_url(&url::Url::parse(u).unwrap()), "{u}");
        }
    }

    #[test]
    fn long_hosts_and_sections_are_not_echoed() {
        let long = "a".repeat(10_000);
        let err = base_url(&long).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
        let err = parse(GOOD, "~/.edgerc", &long, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{err}");
        let many: String = (0..100).map(|i| format!("[s{i}]\n")).collect();
        let err = parse(&many, "f", "default", &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("and 95 more") && err.len() < 400, "{err}");
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("host", "host"), 0);
        assert_eq!(edit_distance("hsot", "host"), 1);
        assert_eq!(edit_distance("acess_token", "access_token"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("port"), None);
        assert_eq!(suggest("clientsecret"), Some("client_secret"));
    }
}
