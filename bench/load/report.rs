//! Percentiles and the report: Markdown sections and their numbers as JSON.

use std::time::Duration;

use serde_json::Value;

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) sections: Vec<String>,
    pub(crate) json: serde_json::Map<String, Value>,
}

impl Report {
    pub(crate) fn section(&mut self, text: String) {
        println!("{text}");
        self.sections.push(text);
    }
}
