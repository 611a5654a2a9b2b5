//! `.edgerc` text and a section name: never a panic, never a value in an error, errors short.
#![no_main]

use estats::edgerc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line names the section asked for; the whole input is the file.
    let section = text.lines().next().unwrap_or("default").to_string();
    let env = |_: &str| None;
    match edgerc::parse(&text, "~/.edgerc", &section, &env) {
        Ok(s) => assert!(!s.credentials.client_secret.expose().is_empty()),
        Err(e) => assert!(e.to_string().chars().count() <= 1000, "{}", e),
    }
    let _ = edgerc::base_url(&text);
});
