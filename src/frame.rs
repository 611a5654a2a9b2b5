//! Grafana data frames and their Arrow IPC encoding.
//!
//! Grafana reads a frame from an Arrow IPC *file* whose schema metadata holds `name`, `refId`
//! and `meta` (JSON), and whose fields carry `name`, `labels` and `config` metadata. The SDK's
//! own frame type cannot carry `meta.type`, which dataplane consumers (alerting, recorded
//! queries) need, so frames are built and encoded here with arrow-rs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, RecordBatch, RecordBatchOptions, TimestampNanosecondArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field as ArrowField, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Dataplane frame types this plugin emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FrameType {
    #[serde(rename = "numeric-long")]
    NumericLong,
    #[serde(rename = "timeseries-wide")]
    TimeseriesWide,
    #[serde(rename = "table")]
    Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub severity: Severity,
    pub text: String,
}

/// `meta` of a frame, serialised as Grafana's `FrameMeta` JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameMeta {
    #[serde(rename = "type")]
    pub frame_type: FrameType,
    pub type_version: [u32; 2],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(
        rename = "preferredVisualisationType",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_visualisation: Option<&'static str>,
}

impl FrameMeta {
    pub fn new(frame_type: FrameType) -> Self {
        FrameMeta {
            frame_type,
            type_version: [0, 1],
            notices: Vec::new(),
            custom: None,
            channel: None,
            preferred_visualisation: None,
        }
    }
}

/// A column's values. Optional variants encode `None` as Arrow nulls (gaps, unknowns).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Time(Vec<DateTime<Utc>>),
    Str(Vec<String>),
    OptStr(Vec<Option<String>>),
    I64(Vec<i64>),
    OptI64(Vec<Option<i64>>),
    F64(Vec<f64>),
    OptF64(Vec<Option<f64>>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Time(v) => v.len(),
            Values::Str(v) => v.len(),
            Values::OptStr(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::OptI64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::OptF64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `other`'s values (a column of the same field in another frame). Columns of one
    /// kind with and without nulls join as the nullable variant; columns of different kinds
    /// cannot join, and `other` is given back.
    pub fn append(&mut self, other: Values) -> Result<(), Values> {
        fn opt<T>(v: Vec<T>) -> Vec<Option<T>> {
            v.into_iter().map(Some).collect()
        }
        let this = std::mem::replace(self, Values::Str(Vec::new()));
        let (joined, refused) = match (this, other) {
            (Values::Time(mut a), Values::Time(b)) => (
                Values::Time({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::Str(mut a), Values::Str(b)) => (
                Values::Str({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::I64(mut a), Values::I64(b)) => (
                Values::I64({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::F64(mut a), Values::F64(b)) => (
                Values::F64({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptStr(mut a), Values::OptStr(b)) => (
                Values::OptStr({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptStr(mut a), Values::Str(b)) => (
                Values::OptStr({
                    a.extend(opt(b));
                    a
                }),
                None,
            ),
            (Values::Str(a), Values::OptStr(b)) => (
                Values::OptStr({
                    let mut a = opt(a);
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptI64(mut a), Values::OptI64(b)) => (
                Values::OptI64({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptI64(mut a), Values::I64(b)) => (
                Values::OptI64({
                    a.extend(opt(b));
                    a
                }),
                None,
            ),
            (Values::I64(a), Values::OptI64(b)) => (
                Values::OptI64({
                    let mut a = opt(a);
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptF64(mut a), Values::OptF64(b)) => (
                Values::OptF64({
                    a.extend(b);
                    a
                }),
                None,
            ),
            (Values::OptF64(mut a), Values::F64(b)) => (
                Values::OptF64({
                    a.extend(opt(b));
                    a
                }),
                None,
            ),
            (Values::F64(a), Values::OptF64(b)) => (
                Values::OptF64({
                    let mut a = opt(a);
                    a.extend(b);
                    a
                }),
                None,
            ),
            (a, b) => (a, Some(b)),
        };
        *self = joined;
        match refused {
            None => Ok(()),
            Some(b) => Err(b),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Values::Time(_) => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Values::Str(_) | Values::OptStr(_) => DataType::Utf8,
            Values::I64(_) | Values::OptI64(_) => DataType::Int64,
            Values::F64(_) | Values::OptF64(_) => DataType::Float64,
        }
    }

    /// Bytes this column takes in an Arrow IPC body (data, offsets, validity), to size the
    /// output buffer once instead of growing it.
    fn size_hint(&self) -> usize {
        let validity = if self.nullable() {
            self.len() / 8 + 8
        } else {
            0
        };
        let data = match self {
            Values::Str(v) => 4 * (v.len() + 1) + v.iter().map(String::len).sum::<usize>(),
            Values::OptStr(v) => {
                4 * (v.len() + 1) + v.iter().flatten().map(String::len).sum::<usize>()
            }
            _ => 8 * self.len(),
        };
        data + validity + 128
    }

    fn nullable(&self) -> bool {
        matches!(
            self,
            Values::OptStr(_) | Values::OptI64(_) | Values::OptF64(_)
        )
    }

    fn to_array(&self) -> ArrayRef {
        match self {
            Values::Time(v) => Arc::new(
                TimestampNanosecondArray::from_iter_values(
                    v.iter()
                        .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX)),
                )
                .with_timezone("UTC"),
            ),
            Values::Str(v) => {
                let mut b = StringBuilder::with_capacity(v.len(), v.iter().map(String::len).sum());
                v.iter().for_each(|s| b.append_value(s));
                Arc::new(b.finish())
            }
            Values::OptStr(v) => {
                let mut b = StringBuilder::with_capacity(
                    v.len(),
                    v.iter().flatten().map(String::len).sum(),
                );
                v.iter().for_each(|s| b.append_option(s.as_deref()));
                Arc::new(b.finish())
            }
            Values::I64(v) => {
                let mut b = Int64Builder::with_capacity(v.len());
                b.append_slice(v);
                Arc::new(b.finish())
            }
            Values::OptI64(v) => {
                let mut b = Int64Builder::with_capacity(v.len());
                v.iter().for_each(|x| b.append_option(*x));
                Arc::new(b.finish())
            }
            Values::F64(v) => {
                let mut b = Float64Builder::with_capacity(v.len());
                b.append_slice(v);
                Arc::new(b.finish())
            }
            Values::OptF64(v) => {
                // Whole buffers rather than a builder call per value: a week of 20 series is
                // 100,800 values, and the per-value calls were most of the encoding.
                let values: Vec<f64> = v.iter().map(|x| x.unwrap_or_default()).collect();
                let nulls = v.iter().any(Option::is_none).then(|| {
                    NullBuffer::new(BooleanBuffer::collect_bool(v.len(), |i| v[i].is_some()))
                });
                Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls))
            }
        }
    }
}

/// A named column with optional labels and display config (Grafana's `FieldConfig` JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub config: Option<Value>,
    pub values: Values,
}

impl Field {
    pub fn new(name: impl Into<String>, values: Values) -> Self {
        Field {
            name: name.into(),
            labels: BTreeMap::new(),
            config: None,
            values,
        }
    }

    pub fn with_labels(mut self, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        self.labels.extend(labels);
        self
    }

    pub fn with_config(mut self, config: Value) -> Self {
        self.config = Some(config);
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub name: String,
    pub fields: Vec<Field>,
    pub meta: FrameMeta,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame {frame:?}: field {field:?} has {got} values, the first field has {expected}")]
    RaggedFields {
        frame: String,
        field: String,
        expected: usize,
        got: usize,
    },
    #[error("encoding frame {frame:?} as Arrow failed: {reason}")]
    Arrow { frame: String, reason: String },
}

impl Frame {
    pub fn new(name: impl Into<String>, frame_type: FrameType) -> Self {
        Frame {
            name: name.into(),
            fields: Vec::new(),
            meta: FrameMeta::new(frame_type),
        }
    }

    pub fn with_field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    pub fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }

    /// Encodes the frame as an Arrow IPC file for `DataResponse.frames`.
    pub fn encode(&self, ref_id: &str) -> Result<Vec<u8>, FrameError> {
        let rows = self.rows();
        if let Some(bad) = self.fields.iter().find(|f| f.values.len() != rows) {
            return Err(FrameError::RaggedFields {
                frame: self.name.clone(),
                field: bad.name.clone(),
                expected: rows,
                got: bad.values.len(),
            });
        }
        let arrow_err = |e: arrow_schema::ArrowError| FrameError::Arrow {
            frame: self.name.clone(),
            reason: e.to_string(),
        };

        let fields: Vec<ArrowField> = self
            .fields
            .iter()
            .map(|f| {
                let mut md = HashMap::from([("name".to_string(), f.name.clone())]);
                if !f.labels.is_empty() {
                    md.insert(
                        "labels".into(),
                        serde_json::to_string(&f.labels).unwrap_or_default(),
                    );
                }
                if let Some(config) = &f.config {
                    md.insert("config".into(), config.to_string());
                }
                ArrowField::new(f.name.clone(), f.values.data_type(), f.values.nullable())
                    .with_metadata(md)
            })
            .collect();
        let meta = serde_json::to_string(&self.meta).unwrap_or_default();
        let schema = Arc::new(Schema::new(fields).with_metadata(HashMap::from([
            ("name".to_string(), self.name.clone()),
            ("refId".to_string(), ref_id.to_string()),
            ("meta".to_string(), meta),
        ])));

        let columns: Vec<ArrayRef> = self.fields.iter().map(|f| f.values.to_array()).collect();
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(arrow_err)?;

        let mut buf = Vec::with_capacity(
            2048 + self
                .fields
                .iter()
                .map(|f| f.values.size_hint())
                .sum::<usize>(),
        );
        {
            let mut writer =
                arrow_ipc::writer::FileWriter::try_new(&mut buf, &schema).map_err(arrow_err)?;
            if !self.fields.is_empty() {
                writer.write(&batch).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
        }
        Ok(buf)
    }
}

impl Frame {
    /// A readable JSON dump (name, meta, fields with labels, config, type and values) used by
    /// golden tests and the CLI's `--json` output.
    pub fn to_json(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let (kind, values) = match &f.values {
                    Values::Time(v) => (
                        "time",
                        serde_json::to_value(v.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>()),
                    ),
                    Values::Str(v) => ("string", serde_json::to_value(v)),
                    Values::OptStr(v) => ("string", serde_json::to_value(v)),
                    Values::I64(v) => ("int64", serde_json::to_value(v)),
                    Values::OptI64(v) => ("int64", serde_json::to_value(v)),
                    Values::F64(v) => ("float64", serde_json::to_value(v)),
                    Values::OptF64(v) => ("float64", serde_json::to_value(v)),
                };
                serde_json::json!({
                    "name": f.name,
                    "type": kind,
                    "nullable": f.values.nullable(),
                    "labels": f.labels,
                    "config": f.config,
                    "values": values.unwrap_or(Value::Null),
                })
            })
            .collect();
        serde_json::json!({ "name": self.name, "meta": self.meta, "fields": fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, Int64Array, StringArray};

    fn decode(bytes: &[u8]) -> (Arc<Schema>, Vec<RecordBatch>) {
        let reader =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
                .unwrap();
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
        (schema, batches)
    }

    #[test]
    fn encodes_metadata_grafana_reads() {
        let mut frame = Frame::new("distribution", FrameType::NumericLong)
            .with_field(Field::new("side", Values::Str(vec!["edge".into()])))
            .with_field(
                Field::new("hits", Values::I64(vec![7]))
                    .with_labels([("target".to_string(), "cp:1/ANY".to_string())]),
            )
            .with_field(
                Field::new("percentage", Values::OptF64(vec![None]))
                    .with_config(serde_json::json!({"unit": "percent"})),
            );
        frame.meta.notices.push(Notice {
            severity: Severity::Warning,
            text: "old".into(),
        });
        let (schema, batches) = decode(&frame.encode("A").unwrap());
        assert_eq!(schema.metadata()["refId"], "A");
        assert_eq!(schema.metadata()["name"], "distribution");
        let meta: Value = serde_json::from_str(&schema.metadata()["meta"]).unwrap();
        assert_eq!(meta["type"], "numeric-long");
        assert_eq!(meta["typeVersion"], serde_json::json!([0, 1]));
        assert_eq!(meta["notices"][0]["severity"], "warning");
        let hits = schema.field_with_name("hits").unwrap();
        assert_eq!(hits.metadata()["labels"], r#"{"target":"cp:1/ANY"}"#);
        let pct = schema.field_with_name("percentage").unwrap();
        assert!(pct.is_nullable());
        assert_eq!(pct.metadata()["config"], r#"{"unit":"percent"}"#);
        let batch = &batches[0];
        assert_eq!(
            batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "edge"
        );
        assert_eq!(
            batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            7
        );
        assert!(batch
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .is_null(0));
    }

    #[test]
    fn columns_append_and_widen_to_nullable() {
        let mut a = Values::I64(vec![1]);
        a.append(Values::I64(vec![2])).unwrap();
        assert_eq!(a, Values::I64(vec![1, 2]));
        a.append(Values::OptI64(vec![None])).unwrap();
        assert_eq!(a, Values::OptI64(vec![Some(1), Some(2), None]));
        let mut s = Values::Str(vec!["a".into()]);
        assert_eq!(
            s.append(Values::F64(vec![1.0])),
            Err(Values::F64(vec![1.0]))
        );
        assert_eq!(s, Values::Str(vec!["a".into()]));
    }

    #[test]
    fn ragged_fields_are_an_error_not_a_panic() {
        let frame = Frame::new("x", FrameType::Table)
            .with_field(Field::new("a", Values::I64(vec![1, 2])))
            .with_field(Field::new("b", Values::I64(vec![1])));
        assert!(matches!(
            frame.encode("A"),
            Err(FrameError::RaggedFields { .. })
        ));
    }

    #[test]
    fn empty_frame_encodes() {
        let (schema, batches) = decode(&Frame::new("empty", FrameType::Table).encode("B").unwrap());
        assert_eq!(schema.fields().len(), 0);
        assert!(batches.is_empty());
    }

    #[test]
    fn time_field_is_nanoseconds_utc() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let frame = Frame::new("ts", FrameType::TimeseriesWide)
            .with_field(Field::new("time", Values::Time(vec![t])));
        let (schema, batches) = decode(&frame.encode("A").unwrap());
        assert_eq!(
            schema.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        let col = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(col.value(0), t.timestamp_nanos_opt().unwrap());
    }
}
