//! `pocketgate sessions list|revoke`: the live sessions of the configured
//! store, read and ended directly (the embedded database is shared with a
//! running `serve`; Redis is shared anyway).

use std::path::Path;
use std::process::ExitCode;

use crate::audit;
use crate::config::{self, StoreSettings};
use crate::session::store::{open_listed, Filter, Record, Store, StoreKey};
use crate::session::SessionKeys;

use super::{fail, SessionsAction};

/// `pocketgate sessions ...`: open the configured store directly (the
/// embedded database is shared with a running `serve`; Redis is shared anyway).
pub(super) fn sessions(path: &Path, action: &SessionsAction) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let settings = loaded.value.session.store.clone();
    if settings == StoreSettings::Cookie {
        eprintln!(
            "error: session.store is \"cookie\": stateless cookies live only in browsers and cannot be listed or ended. \
             To end every session now, rotate session.secret (replace it, do not keep the old line); \
             to end single sessions, use store = \"embedded\" (one instance) or \"redis\" (replicas)."
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = SessionKeys::new(&loaded.value.session.secrets);
    runtime.block_on(async {
        let store = match Store::open(&settings).await {
            Ok(Some(s)) => s,
            Ok(None) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match action {
            SessionsAction::List { user, json } => {
                let filter = user.clone().map_or(Filter::All, Filter::User);
                match store.list(&filter, kit::unix_now()).await {
                    Ok(list) => {
                        let (mut list, unopened) = open_listed(&keys, list);
                        list.sort_by(|(ka, a), (kb, b)| {
                            a.issued.cmp(&b.issued).then_with(|| ka.cmp(kb))
                        });
                        print!("{}", sessions_text(&list, *json));
                        if unopened > 0 {
                            eprintln!(
                                "warning: {unopened} stored record(s) do not open with the configured session secret \
                                 (sealed under a secret no longer configured, or edited); serve removes each when its cookie comes"
                            );
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            SessionsAction::Revoke(args) => {
                let filter = match (&args.user, &args.id, args.all) {
                    (Some(u), _, _) => Filter::User(u.clone()),
                    (_, Some(id), _) => {
                        if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                            eprintln!("error: --id: {id:?} is not a session id (at least 8 hex digits, as `pocketgate sessions list` shows)");
                            return ExitCode::from(2);
                        }
                        Filter::Id(id.clone())
                    }
                    _ => Filter::All,
                };
                match store.remove_matching(&filter).await {
                    Ok(keys) => {
                        audit_revoked(&loaded.value.log, args.user.as_deref(), &keys);
                        println!(
                            "ended {} session(s); every pocketgate of this store refuses them within {} s",
                            keys.len(),
                            crate::session::CACHE_TTL.as_secs()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    })
}

/// One `revoke` audit record per session ended, where `serve` writes them.
fn audit_revoked(log: &config::LogSettings, user: Option<&str>, keys: &[StoreKey]) {
    if let Err(e) = crate::telemetry::init_audit(log) {
        eprintln!("warning: {e}");
    }
    for key in keys {
        let ctx = audit::Context {
            user,
            ..audit::Context::default()
        };
        audit::revoke(&ctx.session(Some(key)), audit::RevokedBy::Cli, 1);
    }
}

/// `sessions list` output: a table, or JSON with `--json`. The last use is
/// as the store has it: flushed every 30 s at most, so approximate.
pub fn sessions_text(list: &[(StoreKey, Record)], json: bool) -> String {
    use std::fmt::Write;
    let time = |t: u64| {
        chrono::DateTime::from_timestamp(t as i64, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|(k, r)| {
                serde_json::json!({
                    "id": k.short(),
                    "user": r.identity.user,
                    "groups": r.identity.groups,
                    "created": time(r.issued),
                    "refreshed": time(r.refreshed),
                    "last_used": r.last_used.map(time),
                    "expires": time(r.expires),
                    "client": r.client,
                    "user_agent": r.user_agent,
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::Array(rows));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12}  {:<16} {:<24} {:<20} {:<20} {:<20} {:<20} {:<15} user agent",
        "id", "user", "groups", "created", "refreshed", "last used", "expires", "client"
    );
    for (k, r) in list {
        let _ = writeln!(
            s,
            "{:<12}  {:<16} {:<24} {:<20} {:<20} {:<20} {:<20} {:<15} {}",
            k.short(),
            r.identity.user,
            r.identity.groups.join(","),
            time(r.issued),
            time(r.refreshed),
            r.last_used.map_or_else(|| "-".into(), time),
            time(r.expires),
            r.client.as_deref().unwrap_or("-"),
            r.user_agent.as_deref().unwrap_or("-"),
        );
    }
    let _ = writeln!(s, "{} session(s)", list.len());
    s
}
