//! Grafana's plugin protocol: the go-plugin handshake on stdout, hclog JSON logs on stderr, and
//! the pluginv2 gRPC services, one file each. The services are implemented directly on the
//! SDK's generated tonic traits, because the SDK's higher-level traits fail a whole request for
//! one bad query or an unknown user role.

pub mod data;
pub mod diagnostics;
pub mod fleet;
pub mod instance;
pub mod resource;
pub mod stream;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use grafana_plugin_sdk::pluginv2::data_server::DataServer;
use grafana_plugin_sdk::pluginv2::diagnostics_server::DiagnosticsServer;
use grafana_plugin_sdk::pluginv2::resource_server::ResourceServer;
use grafana_plugin_sdk::pluginv2::stream_server::StreamServer;
use tokio_stream::wrappers::TcpListenerStream;
use tracing_subscriber::prelude::*;

use instance::Instances;

/// The go-plugin application protocol version this plugin speaks.
const PROTOCOL_VERSION: &str = "2";

/// The largest gRPC message accepted, as Grafana's Go plugin SDK accepts
/// (`defaultServerMaxReceiveMessageSize`, 16 MiB) instead of gRPC's 4 MiB default: Grafana sends
/// a dashboard's queries in one QueryData request, and a request over the limit would be refused
/// whole, good queries included. A single oversized query fails alone (see
/// [`crate::query::MAX_QUERY_JSON_BYTES`]).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Entry point when Grafana starts the executable.
pub fn run() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GF_PLUGIN_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(grafana_plugin_sdk::backend::layer())
        .with(filter)
        .init();

    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !versions.split(',').any(|v| v.trim() == PROTOCOL_VERSION) {
            tracing::error!(offered = %versions, "Grafana offers no plugin protocol version this plugin speaks (2)");
            eprintln!("this plugin speaks plugin protocol version 2; Grafana offered {versions}");
            return ExitCode::FAILURE;
        }
    }

    tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // History work is bounded by its own permits; this only caps stragglers.
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin stopped");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc keeps freed memory in up to 8 arenas per core and returns little of it to the
/// system; a plugin that reads a week of history for many targets then holds its peak for ever.
/// Two arenas and a periodic trim keep the resident size near what is in use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn trim_allocator_periodically() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        // SAFETY: malloc_trim is thread-safe and only releases free memory.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
async fn trim_allocator_periodically() {}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    {
        // The handshake line is the only thing this process ever writes to stdout.
        let mut out = std::io::stdout().lock();
        writeln!(out, "1|{PROTOCOL_VERSION}|tcp|{addr}|grpc")?;
        out.flush()?;
    }

    tokio::spawn(trim_allocator_periodically());
    let instances = Arc::new(Instances::default());
    let (mut health_reporter, health_service) = tonic_health::server::health_reporter();
    // go-plugin asks for the service "plugin"; "" is the overall status.
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;

    tracing::info!(address = %addr, version = env!("CARGO_PKG_VERSION"), "plugin serving");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(
            DataServer::new(data::DataService {
                instances: instances.clone(),
            })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            DiagnosticsServer::new(diagnostics::DiagnosticsService {
                instances: instances.clone(),
            })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            ResourceServer::new(resource::ResourceService {
                instances: instances.clone(),
            })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            StreamServer::new(stream::StreamService {
                instances: instances.clone(),
            })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(incoming(listener), shutdown_signal())
        .await?;
    tracing::info!("plugin shut down");
    Ok(())
}

/// Accepted connections with Nagle's algorithm off: a response written in several segments
/// would otherwise wait for the peer's delayed ACK, about 40 ms per call.
fn incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
