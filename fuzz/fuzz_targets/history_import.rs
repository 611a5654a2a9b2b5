//! `history import` lines into an in-memory history: never a panic; a refused line is named.
#![no_main]

use estats::history::{History, HistoryError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let history = History::open(None).expect("an in-memory history opens");
    let lines = data.split(|b| *b == b'\n').count() as u64;
    match history.import_jsonl("fuzz", data) {
        Ok(report) => assert!(report.lines <= lines),
        Err(HistoryError::Import { line, .. }) => assert!(line >= 1 && line <= lines),
        Err(other) => panic!("not an import error: {other}"),
    }
});
