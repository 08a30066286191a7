//! `pocketgate demo`: placeholder until the development provider lands.

use actix_web::web;

/// Routes of the demo pages.
pub fn routes(_cfg: &mut web::ServiceConfig) {}

/// Run the demo (lands with the development provider).
pub fn run(_args: &crate::cli::DemoArgs) -> std::process::ExitCode {
    eprintln!("demo is not available yet");
    std::process::ExitCode::FAILURE
}
