//! A live channel path as Grafana forwards it: never a panic; what decodes encodes back.
#![no_main]

use estats::live::LivePath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(decoded) = LivePath::decode(path) {
        assert!(LivePath::decode(&decoded.encode("uid")).is_ok());
    }
});
