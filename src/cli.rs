//! Command-line interface (in progress).

pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
