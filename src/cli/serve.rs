//! `pocketgate serve`: load the configuration, connect the provider and the
//! store, and run until a signal.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config;
use crate::http::{AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::session::store::Store;

use super::fail;

pub(super) fn serve(path: &Path) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    if let Err(e) = crate::telemetry::init(&loaded.value.log) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let sources = loaded.sources;
    let runtime = Arc::new(loaded.value);
    actix_web::rt::System::new().block_on(async move {
        let provider = match Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let store = match Store::open(&runtime.session.store).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: session.store: {e}");
                return ExitCode::FAILURE;
            }
        };
        let state = match AppState::new(Arc::clone(&runtime), Arc::clone(&provider), store) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let app = match Application::build(state, ServeOptions::default()) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let discovery = provider.spawn_discovery();
        let reloads = crate::reload::Reloader::new(path, app.live(), Some(discovery)).spawn(sources);
        tracing::info!(listen = %app.addr(), metrics_listen = ?app.metrics_addr(), public_url = %runtime.public_url.origin, issuer = %runtime.oidc.issuer, "pocketgate serving");
        let result = app.run().await;
        reloads.abort();
        crate::telemetry::otel::shutdown();
        match result {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
