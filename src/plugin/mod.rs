//! Grafana's pluginv2 gRPC services (in progress).

pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
