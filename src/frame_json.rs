//! Grafana's "data frame JSON", the encoding of frames on Grafana Live channels (what the Go SDK's
//! `data.FrameToJSON` writes and the frontend's `StreamingDataFrame` reads):
//!
//! ```json
//! {"schema": {"name": "...", "refId": "A", "meta": {...},
//!             "fields": [{"name": "time", "type": "time", "typeInfo": {"frame": "time.Time"}},
//!                        {"name": "hits", "type": "number",
//!                         "typeInfo": {"frame": "float64", "nullable": true},
//!                         "labels": {...}, "config": {...}}]},
//!  "data": {"values": [[1700000000000], [12.5]], "entities": [null, {"NaN": [3]}]}}
//! ```
//!
//! Times are epoch milliseconds. JSON has no NaN or infinities: such a value is written as null
//! and listed by row in `entities` (one entry per field, null where there is none), so the
//! frontend restores it.

use serde_json::{json, Map, Value};

use crate::frame::{Frame, FrameError, Values};

/// `(type, typeInfo.frame)` as Grafana names them.
fn type_names(values: &Values) -> (&'static str, &'static str) {
    match values {
        Values::Time(_) => ("time", "time.Time"),
        Values::Str(_) | Values::OptStr(_) => ("string", "string"),
        Values::I64(_) | Values::OptI64(_) => ("number", "int64"),
        Values::F64(_) | Values::OptF64(_) => ("number", "float64"),
    }
}

fn nullable(values: &Values) -> bool {
    matches!(
        values,
        Values::OptStr(_) | Values::OptI64(_) | Values::OptF64(_)
    )
}

/// Float values as JSON, with the rows of special values by entity name.
fn floats<'a>(values: impl Iterator<Item = Option<&'a f64>>) -> (Vec<Value>, Map<String, Value>) {
    let mut out = Vec::new();
    let mut entities: Map<String, Value> = Map::new();
    for (row, v) in values.enumerate() {
        let entity = match v {
            Some(x) if x.is_nan() => Some("NaN"),
            Some(x) if x.is_infinite() && *x > 0.0 => Some("Inf"),
            Some(x) if x.is_infinite() => Some("NegInf"),
            _ => None,
        };
        match (entity, v) {
            (Some(name), _) => {
                out.push(Value::Null);
                if let Value::Array(rows) = entities
                    .entry(name)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    rows.push(json!(row));
                }
            }
            (None, Some(x)) => out.push(json!(x)),
            (None, None) => out.push(Value::Null),
        }
    }
    (out, entities)
}

impl Frame {
    /// The frame as Grafana's data frame JSON (schema and data), for Live stream packets.
    pub fn to_grafana_json(&self, ref_id: &str) -> Result<Value, FrameError> {
        let rows = self.rows();
        if let Some(bad) = self.fields.iter().find(|f| f.values.len() != rows) {
            return Err(FrameError::RaggedFields {
                frame: self.name.clone(),
                field: bad.name.clone(),
                expected: rows,
                got: bad.values.len(),
            });
        }

        let mut schema = Map::new();
        if !self.name.is_empty() {
            schema.insert("name".into(), json!(self.name));
        }
        if !ref_id.is_empty() {
            schema.insert("refId".into(), json!(ref_id));
        }
        schema.insert(
            "meta".into(),
            serde_json::to_value(&self.meta).unwrap_or(Value::Null),
        );
        let mut fields = Vec::with_capacity(self.fields.len());
        let mut columns = Vec::with_capacity(self.fields.len());
        let mut entities = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let (kind, frame_type) = type_names(&f.values);
            let mut type_info = Map::new();
            type_info.insert("frame".into(), json!(frame_type));
            if nullable(&f.values) {
                type_info.insert("nullable".into(), json!(true));
            }
            let mut field = Map::new();
            field.insert("name".into(), json!(f.name));
            field.insert("type".into(), json!(kind));
            field.insert("typeInfo".into(), Value::Object(type_info));
            if !f.labels.is_empty() {
                field.insert("labels".into(), json!(f.labels));
            }
            if let Some(config) = &f.config {
                field.insert("config".into(), config.clone());
            }
            fields.push(Value::Object(field));

            let (column, special) = match &f.values {
                Values::Time(v) => (
                    v.iter().map(|t| json!(t.timestamp_millis())).collect(),
                    Map::new(),
                ),
                Values::Str(v) => (v.iter().map(|s| json!(s)).collect(), Map::new()),
                Values::OptStr(v) => (v.iter().map(|s| json!(s)).collect(), Map::new()),
                Values::I64(v) => (v.iter().map(|x| json!(x)).collect(), Map::new()),
                Values::OptI64(v) => (v.iter().map(|x| json!(x)).collect(), Map::new()),
                Values::F64(v) => floats(v.iter().map(Some)),
                Values::OptF64(v) => floats(v.iter().map(Option::as_ref)),
            };
            columns.push(Value::Array(column));
            entities.push(if special.is_empty() {
                Value::Null
            } else {
                Value::Object(special)
            });
        }
        schema.insert("fields".into(), Value::Array(fields));

        let mut data = Map::new();
        data.insert("values".into(), Value::Array(columns));
        if entities.iter().any(|e| !e.is_null()) {
            data.insert("entities".into(), Value::Array(entities));
        }
        Ok(json!({ "schema": schema, "data": data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Field, FrameType};

    #[test]
    fn schema_and_data_as_grafana_writes_them() {
        let t0 = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let mut frame = Frame::new("timeseries", FrameType::TimeseriesWide)
            .with_field(Field::new("time", Values::Time(vec![t0])))
            .with_field(
                Field::new("percentage", Values::OptF64(vec![Some(2.5)]))
                    .with_labels([("side".to_string(), "edge".to_string())])
                    .with_config(json!({"unit": "percent"})),
            )
            .with_field(Field::new("hits", Values::I64(vec![7])))
            .with_field(Field::new("side", Values::Str(vec!["edge".into()])));
        frame.meta.channel = Some("ds/u/v1/x".into());
        let v = frame.to_grafana_json("A").unwrap();
        assert_eq!(
            v,
            json!({
                "schema": {
                    "name": "timeseries",
                    "refId": "A",
                    "meta": {"type": "timeseries-wide", "typeVersion": [0, 1], "channel": "ds/u/v1/x"},
                    "fields": [
                        {"name": "time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                        {"name": "percentage", "type": "number",
                         "typeInfo": {"frame": "float64", "nullable": true},
                         "labels": {"side": "edge"}, "config": {"unit": "percent"}},
                        {"name": "hits", "type": "number", "typeInfo": {"frame": "int64"}},
                        {"name": "side", "type": "string", "typeInfo": {"frame": "string"}},
                    ]
                },
                "data": {"values": [[1_700_000_000_123_i64], [2.5], [7], ["edge"]]}
            })
        );
    }

    #[test]
    fn nulls_and_special_floats() {
        let frame = Frame::new("x", FrameType::Table)
            .with_field(Field::new("a", Values::OptI64(vec![None, Some(1), None])))
            .with_field(Field::new(
                "b",
                Values::OptF64(vec![Some(f64::NAN), None, Some(f64::NEG_INFINITY)]),
            ))
            .with_field(Field::new(
                "c",
                Values::F64(vec![f64::INFINITY, 1.5, f64::INFINITY]),
            ));
        let v = frame.to_grafana_json("").unwrap();
        assert!(v["schema"].get("refId").is_none());
        assert_eq!(
            v["data"],
            json!({
                "values": [[null, 1, null], [null, null, null], [null, 1.5, null]],
                "entities": [null, {"NaN": [0], "NegInf": [2]}, {"Inf": [0, 2]}]
            })
        );
        // The output is plain JSON: it serialises (serde_json would refuse NaN silently as null).
        assert!(serde_json::to_string(&v).unwrap().contains("entities"));
    }

    #[test]
    fn ragged_frame_is_an_error() {
        let frame = Frame::new("x", FrameType::Table)
            .with_field(Field::new("a", Values::I64(vec![1, 2])))
            .with_field(Field::new("b", Values::I64(vec![1])));
        assert!(matches!(
            frame.to_grafana_json("A"),
            Err(FrameError::RaggedFields { .. })
        ));
    }

    #[test]
    fn empty_frame_has_empty_fields() {
        let v = Frame::new("empty", FrameType::Table)
            .to_grafana_json("B")
            .unwrap();
        assert_eq!(v["schema"]["fields"], json!([]));
        assert_eq!(v["data"]["values"], json!([]));
    }
}
