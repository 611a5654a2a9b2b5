//! A data source's jsonData, with or without credentials in secureJsonData: never a panic, no
//! secret in an error, errors short.
#![no_main]

use std::collections::HashMap;

use estats::settings::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secure: HashMap<String, String> = if data.first().is_some_and(|b| b % 2 == 0) {
        ["clientToken", "clientSecret", "accessToken"]
            .iter()
            .map(|k| (k.to_string(), format!("FUZZSECRET-{k}")))
            .collect()
    } else {
        HashMap::new()
    };
    let env = |_: &str| None;
    if let Err(e) = Settings::from_grafana(data.get(1..).unwrap_or_default(), &secure, &env) {
        let message = e.to_string();
        assert!(!message.contains("FUZZSECRET"), "{message}");
        assert!(message.chars().count() <= 1000, "{message}");
    }
});
