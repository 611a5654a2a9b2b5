//! Acting as Grafana: start the built plugin executable with Grafana's environment, read the
//! go-plugin handshake, talk pluginv2 over tonic, and decode frames with arrow-rs's IPC reader.
#![allow(dead_code)]

pub mod dashboard;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use grafana_plugin_sdk::pluginv2::{
    data_client::DataClient, diagnostics_client::DiagnosticsClient,
    resource_client::ResourceClient, CallResourceRequest, CheckHealthRequest, CheckHealthResponse,
    DataQuery, DataResponse, DataSourceInstanceSettings, PluginContext, QueryDataRequest,
    TimeRange, User,
};
use serde_json::{json, Value};
use tonic::transport::Channel;

pub struct Plugin {
    child: Child,
    pub address: String,
    pub handshake_line: String,
    pub handshake_time: Duration,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout_rest: Arc<Mutex<Vec<String>>>,
    pub channel: Channel,
}

impl Plugin {
    pub async fn start() -> Plugin {
        Self::start_with_env(&[]).await
    }

    pub async fn start_with_env(extra_env: &[(&str, &str)]) -> Plugin {
        let started = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"));
        cmd.env_clear()
            .env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("GF_PLUGIN_LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("plugin executable starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut handshake_line = String::new();
        stdout
            .read_line(&mut handshake_line)
            .expect("handshake line");
        let handshake_time = started.elapsed();
        let stdout_rest = Arc::new(Mutex::new(Vec::new()));
        {
            let rest = stdout_rest.clone();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    rest.lock().unwrap().push(line);
                }
            });
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let sink = stderr.clone();
            let err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let parts: Vec<&str> = handshake_line.trim_end().split('|').collect();
        assert_eq!(parts.len(), 5, "handshake {handshake_line:?}");
        assert_eq!(
            (parts[0], parts[1], parts[2], parts[4]),
            ("1", "2", "tcp", "grpc"),
            "handshake {handshake_line:?}"
        );
        let address = parts[3].to_string();
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .expect("gRPC connects");
        Plugin {
            child,
            address,
            handshake_line,
            handshake_time,
            stderr,
            stdout_rest,
            channel,
        }
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn extra_stdout(&self) -> Vec<String> {
        self.stdout_rest.lock().unwrap().clone()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data(&self) -> DataClient<Channel> {
        DataClient::new(self.channel.clone())
    }

    pub fn diagnostics(&self) -> DiagnosticsClient<Channel> {
        DiagnosticsClient::new(self.channel.clone())
    }

    pub fn resources(&self) -> ResourceClient<Channel> {
        ResourceClient::new(self.channel.clone())
    }

    pub async fn query(
        &self,
        ctx: &PluginContext,
        queries: Vec<DataQuery>,
    ) -> HashMap<String, DataResponse> {
        let request = QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers: HashMap::new(),
            queries,
        };
        self.data()
            .query_data(request)
            .await
            .expect("QueryData answers")
            .into_inner()
            .responses
    }

    pub async fn query_one(&self, ctx: &PluginContext, json: Value) -> DataResponse {
        let mut r = self.query(ctx, vec![data_query("A", json)]).await;
        r.remove("A").expect("response for refId A")
    }

    pub async fn health(&self, ctx: &PluginContext) -> (CheckHealthResponse, Value) {
        let r = self
            .diagnostics()
            .check_health(CheckHealthRequest {
                plugin_context: Some(ctx.clone()),
                headers: HashMap::new(),
            })
            .await
            .expect("CheckHealth answers")
            .into_inner();
        let details = if r.json_details.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.json_details).expect("jsonDetails is JSON")
        };
        (r, details)
    }

    pub async fn resource(&self, ctx: &PluginContext, path: &str) -> (i32, Value) {
        let request = CallResourceRequest {
            plugin_context: Some(ctx.clone()),
            path: path.split('?').next().unwrap().to_string(),
            method: "GET".into(),
            url: path.to_string(),
            headers: HashMap::new(),
            body: Default::default(),
        };
        let mut stream = self
            .resources()
            .call_resource(request)
            .await
            .expect("CallResource answers")
            .into_inner();
        let first = stream
            .message()
            .await
            .expect("stream ok")
            .expect("one message");
        (
            first.code,
            serde_json::from_slice(&first.body).expect("resource body is JSON"),
        )
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PluginContext as Grafana sends it for a data source.
pub fn context(uid: &str, json_data: Value, secure: &[(&str, &str)]) -> PluginContext {
    PluginContext {
        org_id: 1,
        plugin_id: "akamai-estats-datasource".into(),
        user: Some(User {
            login: "admin".into(),
            name: "Admin".into(),
            email: "admin@localhost".into(),
            role: "Admin".into(),
        }),
        app_instance_settings: None,
        data_source_instance_settings: Some(DataSourceInstanceSettings {
            id: 1,
            name: format!("eStats {uid}"),
            url: String::new(),
            user: String::new(),
            database: String::new(),
            basic_auth_enabled: false,
            basic_auth_user: String::new(),
            json_data: json_data.to_string().into_bytes(),
            decrypted_secure_json_data: secure
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            last_updated_ms: 1,
            uid: uid.into(),
        }),
    }
}

pub fn data_query(ref_id: &str, json: Value) -> DataQuery {
    let now = chrono::Utc::now().timestamp_millis();
    data_query_range(ref_id, json, now - 3_600_000, now)
}

pub fn data_query_range(ref_id: &str, json: Value, from_ms: i64, to_ms: i64) -> DataQuery {
    DataQuery {
        ref_id: ref_id.into(),
        max_data_points: 1000,
        interval_ms: 1000,
        time_range: Some(TimeRange {
            from_epoch_ms: from_ms,
            to_epoch_ms: to_ms,
        }),
        json: json.to_string().into_bytes(),
        query_type: String::new(),
    }
}

/// One decoded frame: its schema (with Grafana's metadata) and its rows.
pub struct Decoded {
    pub schema: Arc<Schema>,
    pub batches: Vec<RecordBatch>,
}

impl Decoded {
    pub fn meta(&self) -> Value {
        serde_json::from_str(
            self.schema
                .metadata()
                .get("meta")
                .map(String::as_str)
                .unwrap_or("null"),
        )
        .unwrap()
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    pub fn column(&self, name: &str) -> arrow_array::ArrayRef {
        let idx = self
            .schema
            .index_of(name)
            .unwrap_or_else(|_| panic!("field {name}"));
        self.batches[0].column(idx).clone()
    }

    pub fn strings(&self, name: &str) -> Vec<Option<String>> {
        let col = self.column(name);
        let a = col
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8 column");
        a.iter().map(|v| v.map(str::to_string)).collect()
    }

    pub fn ints(&self, name: &str) -> Vec<Option<i64>> {
        let col = self.column(name);
        let a = col
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("int64 column");
        a.iter().collect()
    }

    pub fn floats(&self, name: &str) -> Vec<Option<f64>> {
        let col = self.column(name);
        let a = col
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .expect("float64 column");
        a.iter().collect()
    }

    pub fn floats_at(&self, index: usize) -> Vec<Option<f64>> {
        let col = self.batches[0].column(index).clone();
        let a = col
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .expect("float64 column");
        a.iter().collect()
    }
}

pub fn decode(bytes: &[u8]) -> Decoded {
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .expect("Arrow IPC file");
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .expect("record batches");
    Decoded { schema, batches }
}

pub fn frames(response: &DataResponse) -> Vec<Decoded> {
    assert!(
        response.error.is_empty(),
        "unexpected error {:?} (status {})",
        response.error,
        response.status
    );
    response.frames.iter().map(|f| decode(f)).collect()
}

/// Distinct, greppable credential values: none may ever appear in anything the plugin emits.
pub const CLIENT_TOKEN: &str = "akab-clienttoken-SECRETCT-0001";
pub const CLIENT_SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtU0VDUkVUQ1M=";
pub const ACCESS_TOKEN: &str = "akab-accesstoken-SECRETAT-0001";

pub async fn simulator() -> estats::simulator::Simulator {
    let mut config = estats::simulator::SimulatorConfig::default();
    config.credentials.client_token = estats::edgegrid::Secret::new(CLIENT_TOKEN);
    config.credentials.client_secret = estats::edgegrid::Secret::new(CLIENT_SECRET);
    config.credentials.access_token = estats::edgegrid::Secret::new(ACCESS_TOKEN);
    config.rate_limit_per_minute = 1000;
    estats::simulator::Simulator::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("simulator starts")
}

pub fn ds(uid: &str, sim: &estats::simulator::Simulator, extra: Value) -> PluginContext {
    let mut json_data = json!({
        "host": sim.base_url().as_str().trim_end_matches('/'),
        "pollIntervalSeconds": 2,
        "requestTimeoutSeconds": 2,
        "rateLimitPerMinute": 600,
    });
    json_data
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    context(
        uid,
        json_data,
        &[
            ("clientToken", CLIENT_TOKEN),
            ("clientSecret", CLIENT_SECRET),
            ("accessToken", ACCESS_TOKEN),
        ],
    )
}

pub fn assert_no_secret(text: &str) {
    for secret in [
        CLIENT_TOKEN,
        CLIENT_SECRET,
        ACCESS_TOKEN,
        "signature=",
        "EG1-HMAC-SHA256",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
    }
}
