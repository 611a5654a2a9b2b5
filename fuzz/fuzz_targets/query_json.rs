//! A panel query's JSON (and the DataQuery.queryType beside it): never a panic, every error
//! names a query field and stays short.
#![no_main]

use estats::query::{Query, QueryContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line, when there is one, is DataQuery.queryType; the rest the JSON.
    let (query_type, json) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            &data[at + 1..],
        ),
        None => (String::new(), data),
    };
    let ctx = QueryContext {
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_003_600_000,
        interval_ms: 60_000,
        max_data_points: 100,
    };
    match Query::parse("A", json, &query_type, ctx, None) {
        Ok(q) => assert!(q.metric.fits(q.group_by)),
        Err(e) => {
            assert!(e.names_its_field(), "{e}");
            assert!(e.to_string().chars().count() <= 1000, "{}", e);
        }
    }
});
