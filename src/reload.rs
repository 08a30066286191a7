//! Configuration changes at run time (DESIGN.md): on `SIGHUP`, or when a
//! loaded file changes (the main file, include files and their directories,
//! secret files), the whole configuration is loaded, validated and compiled
//! again, then put in force between requests. A configuration with any error
//! is not used: the running one stays and the error is logged with its file,
//! key and fix.
//!
//! Keys that cannot change under a running server (`listen`, `metrics_listen`, `session.store`
//! with its `state_dir` / `redis_url`, the log and audit settings) keep their running
//! values, and the log says so. A changed `[oidc]` gets a new provider client,
//! which must discover the provider before it is put in force.
//!
//! This sits above `http` (whose state it replaces) and below `cli`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{self, Runtime, Sources};
use crate::http::LiveState;
use crate::oidc::Provider;

/// How long file events must be quiet before a reload (editors write in steps).
const DEBOUNCE: Duration = Duration::from_millis(250);
/// How long a changed provider may take to answer discovery.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a reload left the running configuration in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("oidc: the changed provider settings do not work: {0}")]
    Provider(String),
    #[error("{0}")]
    State(#[from] crate::http::BuildError),
}

/// What a successful reload did.
#[derive(Debug)]
pub struct Reloaded {
    /// The files the new configuration came from (for the watcher).
    pub sources: Sources,
    /// `check`'s warnings about the new configuration.
    pub warnings: Vec<String>,
    /// Changed keys that need a restart and were not applied.
    pub not_applied: Vec<String>,
    /// Whether `[oidc]` changed and a new provider client is in force.
    pub new_provider: bool,
}

/// Reloads the configuration at one path into the state in force.
pub struct Reloader {
    path: PathBuf,
    live: web::Data<LiveState>,
    /// The background discovery of the provider client in force.
    discovery: Option<JoinHandle<()>>,
}

impl Reloader {
    /// Reload `path` into `live`; `discovery` is the running provider's
    /// background discovery, replaced when the provider changes.
    pub fn new(path: &Path, live: web::Data<LiveState>, discovery: Option<JoinHandle<()>>) -> Self {
        Reloader {
            path: path.to_path_buf(),
            live,
            discovery,
        }
    }

    /// Load, validate and compile the configuration, then put it in force.
    /// On any error nothing changes. Counted in the metrics either way.
    pub async fn reload(&mut self) -> Result<Reloaded, ReloadError> {
        let result = self.try_reload().await;
        let state = self.live.load();
        state.metrics.config_reload(result.is_ok(), kit::unix_now());
        crate::audit::config_reload(result.as_ref().err().map(ToString::to_string).as_deref());
        result
    }

    async fn try_reload(&mut self) -> Result<Reloaded, ReloadError> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| {
                ReloadError::Config(
                    config::ConfigError::Syntax(format!("loading was interrupted: {e}")).into(),
                )
            })??;
        let old = self.live.load();
        let mut runtime = loaded.value;
        let not_applied = keep_restart_only(&old.runtime, &mut runtime);

        let same_provider = old.runtime.oidc == runtime.oidc
            && old.runtime.rules.role_claims() == runtime.rules.role_claims();
        let provider = if same_provider {
            old.provider.clone()
        } else {
            let p = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims())
                .map_err(|e| ReloadError::Provider(e.to_string()))?;
            match tokio::time::timeout(DISCOVERY_TIMEOUT, p.discover()).await {
                Ok(Ok(())) => p,
                Ok(Err(e)) => return Err(ReloadError::Provider(e.to_string())),
                Err(_) => {
                    return Err(ReloadError::Provider(format!(
                        "no discovery answer from {} within {} s",
                        runtime.oidc.issuer,
                        DISCOVERY_TIMEOUT.as_secs()
                    )))
                }
            }
        };
        let next = old.rebuilt(Arc::new(runtime), provider.clone())?;
        self.live.replace(next);
        if !same_provider {
            if let Some(old) = self.discovery.replace(provider.spawn_discovery()) {
                old.abort();
            }
        }
        Ok(Reloaded {
            sources: loaded.sources,
            warnings: loaded.warnings,
            not_applied,
            new_provider: !same_provider,
        })
    }

    /// Reload on `SIGHUP` and on changes of the files `sources` names, until
    /// the returned task is aborted. The signal handler and the file watch
    /// are in place when this returns (a change right after is not missed).
    /// Every attempt is logged. Call within a Tokio runtime.
    pub fn spawn(self, sources: Sources) -> JoinHandle<()> {
        let (tx, rx) = mpsc::channel::<()>(64);
        let watcher = watch(&sources, tx.clone());
        let hangup = hangup_signal();
        tokio::spawn(self.run(tx, rx, watcher, hangup))
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<()>,
        mut rx: mpsc::Receiver<()>,
        mut watcher: Option<notify::RecommendedWatcher>,
        mut hangup: Hangup,
    ) {
        loop {
            let why = tokio::select! {
                Some(()) = recv_hangup(&mut hangup) => "SIGHUP",
                Some(()) = rx.recv() => {
                    // Let a burst of writes settle into one reload.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                    "a configuration file changed"
                }
                else => return,
            };
            match self.reload().await {
                Ok(done) => {
                    for w in &done.warnings {
                        tracing::warn!("{w}");
                    }
                    for key in &done.not_applied {
                        tracing::warn!("{key}");
                    }
                    tracing::info!(
                        trigger = why,
                        config = %self.path.display(),
                        new_provider = done.new_provider,
                        "configuration reloaded"
                    );
                    watcher = watch(&done.sources, tx.clone()).or(watcher);
                }
                Err(e) => {
                    tracing::error!(
                        trigger = why,
                        config = %self.path.display(),
                        "configuration reload failed; the running configuration stays in force:\n{e}"
                    );
                }
            }
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        if let Some(d) = self.discovery.take() {
            d.abort();
        }
    }
}

/// Put the running values of restart-only keys into `next`; one message per
/// changed key.
fn keep_restart_only(running: &Runtime, next: &mut Runtime) -> Vec<String> {
    let mut notes = Vec::new();
    if next.listen != running.listen {
        notes.push(format!(
            "listen: changed to {}, not applied: the server keeps listening on {} until restarted",
            next.listen, running.listen
        ));
        next.listen = running.listen;
    }
    if next.metrics_listen != running.metrics_listen {
        notes.push(format!(
            "metrics_listen: changed to {}, not applied: /metrics and /readyz stay on {} until restarted",
            next.metrics_listen.map_or("(none)".into(), |a| a.to_string()),
            running.metrics_listen.map_or("(none)".into(), |a| a.to_string())
        ));
        next.metrics_listen = running.metrics_listen;
    }
    if next.session.store != running.session.store {
        notes.push(format!(
            "session.store: changed (store, state_dir or redis_url), not applied: sessions stay in the {} store until restarted",
            running.session.store.as_str()
        ));
        next.session.store = running.session.store.clone();
        // What the store allows follows the store in force: no refresh
        // without one, hence no `offline_access` either.
        if matches!(running.session.store, config::StoreSettings::Cookie) {
            next.session.refresh_interval = None;
        }
        next.oidc.offline_access = next.session.refresh_interval.is_some();
    }
    if next.log != running.log {
        notes.push(
            "log_format / log_level / audit.file: changed, not applied: logging keeps its settings until restarted"
                .into(),
        );
        next.log = running.log.clone();
    }
    notes
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads follow file changes only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn recv_hangup(h: &mut Hangup) -> Option<()> {
    match h {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_hangup(_: &mut Hangup) -> Option<()> {
    std::future::pending().await
}

/// Watch the directories of every loaded file and every include directory;
/// an event about one of those files (or anything in an include directory,
/// or Kubernetes' `..data` swap next to a file) sends on `tx`. Directories,
/// not files, are watched, because editors and configuration managers
/// replace a file by renaming another over it. `None` (logged) when the
/// platform refuses.
fn watch(sources: &Sources, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let cwd = std::env::current_dir().unwrap_or_default();
    let absolute = |p: &Path| cwd.join(p);
    let files: Vec<PathBuf> = sources.files.iter().map(|p| absolute(p)).collect();
    let dirs: Vec<PathBuf> = sources.dirs.iter().map(|p| absolute(p)).collect();
    let mut parents: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    parents.sort();
    parents.dedup();

    let relevant = {
        let files = files.clone();
        let dirs = dirs.clone();
        let parents = parents.clone();
        move |path: &Path| {
            files.iter().any(|f| f == path)
                || dirs.iter().any(|d| path.starts_with(d))
                || (parents.iter().any(|p| path.parent() == Some(p.as_path()))
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("..")))
        }
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| relevant(p)) {
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the configuration files; reload with SIGHUP");
            return None;
        }
    };
    for dir in &parents {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; changes there need SIGHUP");
        }
    }
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; changes there need SIGHUP");
        }
    }
    Some(watcher)
}
