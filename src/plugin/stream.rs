//! `Stream`: Grafana Live for live queries. A live query's frame names a channel
//! (`ds/<uid>/<path>`, see [`crate::live`]); Grafana subscribes to it (`SubscribeStream`), runs
//! one `RunStream` per channel however many browsers watch it, and forwards each packet to them.
//!
//! - `SubscribeStream`: a malformed path is PERMISSION_DENIED (nobody but this plugin writes
//!   channel paths); a request without data source settings, settings that do not build, or a
//!   digest path naming no known target is NOT_FOUND. A key path of any target is fine:
//!   subscribing makes the target queried, so its poller runs.
//! - `RunStream`: pushes one frame (Grafana's data frame JSON) per sample the target's poller
//!   stores, the same fields as the query's frame so the panel appends it. All channels of one
//!   target share its one poller; the stream keeps the target marked as queried, so the poller
//!   does not idle while someone watches. A failed poll stores a gap and pushes nothing.
//! - The stream ends when Grafana cancels it (no subscriber left), and ends with UNAVAILABLE when
//!   the data source instance goes (settings changed): Grafana then runs it again with the new
//!   settings.
//! - `PublishStream`: PERMISSION_DENIED; the channels are read-only.

use std::sync::{Arc, Weak};
use std::time::Instant;

use grafana_plugin_sdk::pluginv2::stream_server::Stream;
use grafana_plugin_sdk::pluginv2::{
    publish_stream_response, subscribe_stream_response, PluginContext, PublishStreamRequest,
    PublishStreamResponse, RunStreamRequest, StreamPacket, SubscribeStreamRequest,
    SubscribeStreamResponse,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::instance::{Instance, Instances};
use crate::frame::Frame;
use crate::handlers::timeseries::{self, columns::Column};
use crate::history::Point;
use crate::live::{self, LivePath, TargetRef};
use crate::query::{Query, QueryType};
use crate::sample::Sample;
use crate::target::Target;

/// Where `plugin::data` finds it; the channel is the `live` module's business.
pub use crate::live::mark_live;

/// Packets a slow Grafana may fall behind by before the stream waits for it.
const PACKET_BUFFER: usize = 16;

pub struct StreamService {
    pub instances: Arc<Instances>,
}

/// Why a channel cannot be streamed, and the status each RPC answers with.
#[derive(Debug)]
enum Refusal {
    Malformed(String),
    NotFound(String),
}

impl Refusal {
    fn subscribe_status(&self) -> subscribe_stream_response::Status {
        match self {
            Refusal::Malformed(_) => subscribe_stream_response::Status::PermissionDenied,
            Refusal::NotFound(_) => subscribe_stream_response::Status::NotFound,
        }
    }

    fn grpc(&self) -> Status {
        match self {
            Refusal::Malformed(m) => Status::permission_denied(m.clone()),
            Refusal::NotFound(m) => Status::not_found(m.clone()),
        }
    }

    fn reason(&self) -> &str {
        match self {
            Refusal::Malformed(m) | Refusal::NotFound(m) => m,
        }
    }
}

/// The instance, decoded path and target of a channel.
async fn resolve(
    instances: &Instances,
    ctx: Option<&PluginContext>,
    path: &str,
) -> Result<(Arc<Instance>, LivePath, Target), Refusal> {
    let live = LivePath::decode(path).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let instance = instances
        .get(ctx)
        .await
        .map_err(|f| Refusal::NotFound(f.message))?;
    let target = match &live.target {
        TargetRef::Key(t) => t.clone(),
        TargetRef::Digest(d) => instance
            .monitor
            .targets()
            .into_iter()
            .filter_map(|s| Target::from_key(&s.key).ok())
            .find(|t| live.target.matches(t))
            .ok_or_else(|| {
                Refusal::NotFound(format!(
                    "no target of data source {} has digest {d}: run the live query again so that its target is known",
                    instance.uid
                ))
            })?,
    };
    Ok((instance, live, target))
}

/// The status codes held for a target; none when the history cannot say (logged).
async fn held_codes(instance: &Instance, target: &Target) -> Vec<u16> {
    match instance.monitor.status_codes(target).await {
        Ok(codes) => codes,
        Err(e) => {
            tracing::warn!(datasource = %instance.uid, target = %target, error = %e, "reading status codes for a live query failed");
            Vec::new()
        }
    }
}

/// The `timeseries` frame of a live query, on the columns of every status held for the target
/// so that the rows this stream pushes later line up with it.
pub async fn live_timeseries_frame(instance: &Instance, query: &Query, points: &[Point]) -> Frame {
    timeseries::live_frame(query, points, &held_codes(instance, &query.target).await)
}

fn packet(frame: &Frame, ref_id: &str) -> Result<StreamPacket, String> {
    let json = frame.to_grafana_json(ref_id).map_err(|e| e.to_string())?;
    serde_json::to_vec(&json)
        .map(|data| StreamPacket { data })
        .map_err(|e| e.to_string())
}

/// Why a stream task stopped.
#[derive(Debug)]
enum End {
    Cancelled,
    InstanceGone,
}

struct Run {
    path_text: String,
    channel: String,
    path: LivePath,
    target: Target,
    instance: Weak<Instance>,
    uid: String,
    interval: std::time::Duration,
    columns: Vec<Column>,
    events: broadcast::Receiver<(Target, Arc<Sample>)>,
    tx: mpsc::Sender<Result<StreamPacket, Status>>,
}

impl Run {
    async fn run(mut self) {
        let started = Instant::now();
        let mut pushed = 0u64;
        // The first tick is immediate: it starts the poller if nothing else did.
        let mut keep = tokio::time::interval(self.interval);
        keep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                _ = self.tx.closed() => break End::Cancelled,
                _ = keep.tick() => match self.instance.upgrade() {
                    Some(instance) => instance.monitor.keep_polling(&self.target),
                    None => break End::InstanceGone,
                },
                event = self.events.recv() => match event {
                    Ok((target, sample)) if target == self.target => {
                        let query = self.path.query(self.target.clone(), sample.sampled_at);
                        let mut frame = crate::handlers::pushed_frame(&query, &mut self.columns, &sample);
                        frame.meta.channel = Some(self.channel.clone());
                        match packet(&frame, &self.path.ref_id) {
                            Ok(p) => {
                                if self.tx.send(Ok(p)).await.is_err() {
                                    break End::Cancelled;
                                }
                                pushed += 1;
                                tracing::debug!(datasource = %self.uid, path = %self.path_text, sampled_at = %sample.sampled_at, "stream pushed a sample");
                            }
                            Err(e) => tracing::error!(datasource = %self.uid, path = %self.path_text, error = %e, "encoding a live frame failed; the sample is not pushed"),
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(datasource = %self.uid, path = %self.path_text, skipped = n, "stream fell behind the pollers; samples were skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => break End::InstanceGone,
                },
            }
        };
        if let End::InstanceGone = end {
            // An error (not a clean end) makes Grafana run the stream again, with the new settings.
            let _ = self
                .tx
                .send(Err(Status::unavailable(
                    "the data source was reconfigured or shut down; Grafana restarts this stream",
                )))
                .await;
        }
        tracing::debug!(datasource = %self.uid, path = %self.path_text, reason = ?end, pushed, seconds = started.elapsed().as_secs(), "stream ended");
    }
}

#[tonic::async_trait]
impl Stream for StreamService {
    async fn subscribe_stream(
        &self,
        request: Request<SubscribeStreamRequest>,
    ) -> Result<Response<SubscribeStreamResponse>, Status> {
        let request = request.into_inner();
        let status = match resolve(
            &self.instances,
            request.plugin_context.as_ref(),
            &request.path,
        )
        .await
        {
            Ok((instance, _, target)) => {
                instance.monitor.keep_polling(&target);
                tracing::debug!(datasource = %instance.uid, path = %request.path, target = %target, "live subscription accepted");
                subscribe_stream_response::Status::Ok
            }
            Err(refusal) => {
                tracing::debug!(path = %request.path, reason = %refusal.reason(), "live subscription refused");
                refusal.subscribe_status()
            }
        };
        Ok(Response::new(SubscribeStreamResponse {
            status: status as i32,
            data: Vec::new(),
        }))
    }

    type RunStreamStream = ReceiverStream<Result<StreamPacket, Status>>;

    async fn run_stream(
        &self,
        request: Request<RunStreamRequest>,
    ) -> Result<Response<Self::RunStreamStream>, Status> {
        let request = request.into_inner();
        let (instance, path, target) = resolve(
            &self.instances,
            request.plugin_context.as_ref(),
            &request.path,
        )
        .await
        .map_err(|r| {
            tracing::debug!(path = %request.path, reason = %r.reason(), "live stream refused");
            r.grpc()
        })?;
        // Subscribe before anything can poll, so that no sample slips between.
        let events = instance.monitor.subscribe();
        let columns = if path.query_type == QueryType::Timeseries {
            let q = path.query(target.clone(), chrono::Utc::now());
            timeseries::columns::columns_for(&q, &held_codes(&instance, &target).await)
        } else {
            Vec::new()
        };
        let (tx, rx) = mpsc::channel(PACKET_BUFFER);
        let run = Run {
            channel: live::channel(&instance.uid, &request.path),
            path_text: request.path.clone(),
            path,
            target,
            uid: instance.uid.clone(),
            interval: instance.monitor.settings().poll_interval,
            instance: Arc::downgrade(&instance),
            columns,
            events,
            tx,
        };
        tracing::debug!(datasource = %run.uid, path = %run.path_text, target = %run.target, "stream started");
        drop(instance);
        tokio::spawn(run.run());
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn publish_stream(
        &self,
        request: Request<PublishStreamRequest>,
    ) -> Result<Response<PublishStreamResponse>, Status> {
        tracing::debug!(path = %request.get_ref().path, "publishing to a live channel refused: channels are read-only");
        Ok(Response::new(PublishStreamResponse {
            status: publish_stream_response::Status::PermissionDenied as i32,
            data: Vec::new(),
        }))
    }
}
