//! The executable Grafana starts (as `gpx_akamai_estats_<os>_<arch>`), which is also the CLI.

fn main() -> std::process::ExitCode {
    if std::env::var_os("grafana_plugin_type").is_some()
        || std::env::var_os("GF_PLUGIN_GRPC_ADDRESS").is_some()
    {
        estats::plugin::run()
    } else {
        estats::cli::run()
    }
}
