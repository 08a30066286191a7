//! The command line: `serve`, `check`, `explain`, `gen-secret`, `demo`, `sessions`.
//!
//! Each command is a small function that loads what it needs, does one thing
//! and returns the process exit code. Output formats live here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use clap::{Args, Parser, Subcommand};

use crate::config::StoreSettings;
use crate::config::{self, ConfigErrors, Runtime};
use crate::domain::ClientAddr;
use crate::http::{AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::policy::{self, HostMatch, Identity, RequestFacts, Rules};
use crate::session::store::{open_listed, Filter, Record, Store, StoreKey};
use crate::session::SessionKeys;

/// Forward-auth sidecar for Caddy, nginx and Traefik in front of Pocket ID.
#[derive(Debug, Parser)]
#[command(name = "pocketgate", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        env = "POCKETGATE_CONFIG",
        default_value = "pocketgate.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Validate the configuration and print a summary; exit 1 with a precise error.
    Check {
        /// Do not open the secret and key files or ask the provider (build
        /// sandboxes such as Nix's): everything else is checked.
        #[arg(long)]
        offline: bool,
    },
    /// Print the decision for one request and the rule that made it (no network).
    Explain(ExplainArgs),
    /// Print a fresh random session secret (32 bytes, base64).
    GenSecret,
    /// Run everything on loopback with an embedded development identity provider.
    Demo(DemoArgs),
    /// List or end the live sessions of the configured store (works while `serve` runs).
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
}

/// `sessions` actions.
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// The live sessions: user, groups, created, refreshed, expires, client, user agent, id.
    List {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// End sessions now (in force on every replica within 5 seconds).
    Revoke(RevokeArgs),
}

/// Which sessions `sessions revoke` ends: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// Every session of this user name.
    #[arg(long)]
    pub user: Option<String>,
    /// The session with this id (as `sessions list` shows it, at least 8 hex digits).
    #[arg(long)]
    pub id: Option<String>,
    /// Every session.
    #[arg(long)]
    pub all: bool,
}

/// `explain` options.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The original URL, e.g. https://grafana.example.com/api/health
    #[arg(long)]
    pub url: String,
    /// The original method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The client address (default 192.0.2.1, a documentation address in no network).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Simulate a session for this user.
    #[arg(long)]
    pub user: Option<String>,
    /// The simulated user's groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Simulate a bearer token: its claims (read, NOT verified) make the
    /// identity, as `username_claim` and `groups_claim` say. `-` reads the
    /// token from standard input (keeps it out of the shell history).
    #[arg(long, conflicts_with_all = ["user", "groups"])]
    pub bearer: Option<String>,
    /// Print JSON: {"outcome", "host", "policy", "rule", "reason"}.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "demo")]
use crate::demo::DemoArgs;

/// `demo` options (this build has no demo: they are parsed, then refused).
#[cfg(not(feature = "demo"))]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port of the sidecar on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 4180)]
    pub port: u16,
    /// Port of the development identity provider on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 4181)]
    pub idp_port: u16,
    /// Where the demo keeps sessions: embedded (a temporary directory), redis, or cookie.
    #[arg(long, default_value = "embedded")]
    pub store: String,
    /// With `--store redis`: the Redis or Valkey URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Sign an identity assertion on every allow (`[assertion] header =
    /// "X-Pocketgate-Assertion"`, key generated into the demo's state directory).
    #[arg(long)]
    pub assertion: bool,
}

/// Parse arguments and run; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::Check { offline } => check(&cli.config, offline),
        Command::Explain(args) => explain(&cli.config, &args),
        Command::GenSecret => {
            println!("{}", gen_secret());
            ExitCode::SUCCESS
        }
        Command::Demo(args) => demo(&args),
        Command::Sessions { action } => sessions(&cli.config, &action),
    }
}

/// Print every configuration error, one `error:` line each.
fn fail(errors: &ConfigErrors) -> ExitCode {
    for e in errors.located() {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

/// A fresh session secret: 32 bytes from the OS CSPRNG, base64.
pub fn gen_secret() -> String {
    let mut buf = [0u8; 32];
    #[allow(
        clippy::expect_used,
        reason = "a CLI command with no OS random source has nothing to print"
    )]
    getrandom::getrandom(&mut buf).expect("the OS random source failed");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// `pocketgate sessions ...`: open the configured store directly (the
/// embedded database is shared with a running `serve`; Redis is shared anyway).
fn sessions(path: &Path, action: &SessionsAction) -> ExitCode {
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

/// `sessions list` output: a table, or JSON with `--json`.
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
        "{:<12}  {:<16} {:<24} {:<20} {:<20} {:<20} {:<15} user agent",
        "id", "user", "groups", "created", "refreshed", "expires", "client"
    );
    for (k, r) in list {
        let _ = writeln!(
            s,
            "{:<12}  {:<16} {:<24} {:<20} {:<20} {:<20} {:<15} {}",
            k.short(),
            r.identity.user,
            r.identity.groups.join(","),
            time(r.issued),
            time(r.refreshed),
            time(r.expires),
            r.client.as_deref().unwrap_or("-"),
            r.user_agent.as_deref().unwrap_or("-"),
        );
    }
    let _ = writeln!(s, "{} session(s)", list.len());
    s
}

#[cfg(feature = "demo")]
fn demo(args: &DemoArgs) -> ExitCode {
    crate::demo::run(args)
}

#[cfg(not(feature = "demo"))]
fn demo(_: &DemoArgs) -> ExitCode {
    eprintln!(
        "error: this pocketgate was built without the `demo` feature (a production build). \
         Build it with the default features to get the demo: `cargo build` or `cargo run -- demo`."
    );
    ExitCode::from(2)
}

fn serve(path: &Path) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    crate::telemetry::init(&loaded.value.log);
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

/// `check`'s line about `[assertion]`: header, lifetime, where the key comes from.
fn assertion_line(rt: &config::Runtime) -> String {
    let Some(a) = &rt.assertion else {
        return "assertion: off (set [assertion] header to sign one)".into();
    };
    let keys = match (&a.key_file, &rt.session.store) {
        (Some(f), _) => {
            let kids: Vec<&str> = f.keys.iter().map(|k| k.kid()).collect();
            format!(
                "keys from {} (signs with {}; {} published)",
                f.path.display(),
                kids.first().copied().unwrap_or_default(),
                kids.len()
            )
        }
        (None, StoreSettings::Embedded { state_dir }) => format!(
            "key generated once and kept in {}",
            state_dir.join(crate::assertion::KEY_FILE).display()
        ),
        (None, _) => "key generated in memory at start (changes on restart)".into(),
    };
    format!(
        "assertion: header {}, ES256, lifetime {}, {keys}; public keys at {}/.well-known/jwks.json",
        a.header,
        humantime::format_duration(a.lifetime),
        rt.public_url.origin
    )
}

fn check(path: &Path, offline: bool) -> ExitCode {
    let loaded = if offline {
        config::load_offline(path)
    } else {
        config::load(path)
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    print!("{}", summary(path, &loaded.value, &loaded.sources.includes));
    if offline {
        println!(
            "offline: secret and key files were not opened and the provider was not asked; \
             the secret counts and key ids above stand in for theirs (run check without --offline where the service runs)"
        );
    }
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if !offline && loaded.value.session.refresh_interval.is_some() {
        provider_check(&loaded.value);
    }
    ExitCode::SUCCESS
}

/// What `check` can only learn from the provider: whether it issues refresh
/// tokens (`offline_access` in `scopes_supported`). Best effort, bounded to
/// a few seconds; an unreachable provider is a note, not an error (`check`
/// also runs where the provider cannot be reached, e.g. at build time).
fn provider_check(rt: &Runtime) {
    let Ok(provider) = Provider::new(rt.oidc.clone(), Vec::new()) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let discovered = runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(4), provider.discover()).await
    });
    match discovered {
        Ok(Ok(())) if provider.offers_offline_access() => {}
        Ok(Ok(())) => eprintln!(
            "warning: session.refresh_interval: the provider does not list offline_access in scopes_supported, \
             so it issues no refresh token: sessions keep the identity of their login until lifetime ends \
             (fix: enable refresh tokens at the provider, or set refresh_interval = \"off\" to say so)"
        ),
        Ok(Err(e)) => eprintln!("note: provider not checked ({e}); whether it issues refresh tokens is logged at start"),
        Err(_) => eprintln!("note: provider not checked (no answer within 4 s); whether it issues refresh tokens is logged at start"),
    }
}

/// The `check` summary: a header, the include files loaded, and one line per host.
pub fn summary(path: &Path, rt: &Runtime, includes: &[std::path::PathBuf]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "configuration OK: {}", path.display());
    for file in includes {
        let _ = writeln!(s, "include {}", file.display());
    }
    let _ = writeln!(
        s,
        "listen {}  public_url {}  issuer {}  client {} ({})",
        rt.listen,
        rt.public_url.origin,
        rt.oidc.issuer,
        rt.oidc.client_id,
        rt.oidc.client_auth.as_str()
    );
    if let Some(m) = rt.metrics_listen {
        let _ = writeln!(s, "metrics_listen {m}: /metrics and /readyz");
    }
    let _ = writeln!(
        s,
        "session: cookie {} on {}, lifetime {}, {} secret(s)",
        rt.session.cookie_name,
        rt.session
            .cookie_domain
            .as_ref()
            .map_or(rt.public_url.host.as_str(), |d| d.as_str()),
        humantime::format_duration(rt.session.lifetime),
        rt.session.secrets.len()
    );
    if rt.login_domains.len() > 1 {
        for d in rt.login_domains.iter() {
            let _ = writeln!(
                s,
                "login domain {} -> {}  (register at the provider: callback {}, logout {})",
                d.cookie_domain
                    .as_ref()
                    .map_or(d.public_url.host.as_str(), |c| c.as_str()),
                d.public_url.origin,
                d.redirect_uri(),
                d.logout_done_uri()
            );
        }
    }
    let store = match &rt.session.store {
        StoreSettings::Embedded { state_dir } => format!("embedded in {}", state_dir.display()),
        StoreSettings::Redis { url } => format!("redis at {url}"),
        StoreSettings::Cookie => "cookie (stateless: sessions cannot be revoked)".into(),
    };
    let refresh = match rt.session.refresh_interval {
        Some(i) => format!("identity refreshed every {}", humantime::format_duration(i)),
        None => "no identity refresh".into(),
    };
    let _ = writeln!(s, "sessions: store {store}, {refresh}");
    let _ = writeln!(s, "{}", assertion_line(rt));
    match &rt.bearer {
        Some(b) => {
            let _ = writeln!(
                s,
                "bearer: on (Authorization: Bearer on /forward-auth and /auth-request), audiences {}; {}; at most {} provider lookups in flight, {} per client and minute",
                b.audiences.join(","),
                match b.opaque {
                    crate::config::OpaqueTokens::Introspection => "opaque tokens by the provider's introspection endpoint (refused when discovery lists none)",
                    crate::config::OpaqueTokens::Userinfo => "opaque tokens by userinfo (NO audience check)",
                },
                b.lookups_in_flight,
                b.lookups_per_minute,
            );
        }
        None => {
            let _ = writeln!(s, "bearer: off");
        }
    }
    for p in rt.rules.policies() {
        let mut parts = Vec::new();
        if !p.allowed_groups.is_empty() {
            parts.push(format!("groups {}", p.allowed_groups.join(",")));
        }
        if !p.allowed_users.is_empty() {
            parts.push(format!("users {}", p.allowed_users.join(",")));
        }
        if !p.allowed_networks.is_empty() {
            parts.push(format!("networks {}", p.allowed_networks));
        }
        if parts.is_empty() {
            parts.push("any signed-in user".into());
        }
        let _ = writeln!(s, "policy {}: {}", p.name, parts.join("; "));
    }
    for h in rt.rules.hosts() {
        let _ = writeln!(
            s,
            "host[{}] {:<28} policy {:<10} bypass_paths {} bypass_resources {} allowed_networks {} claim_roles {}{}",
            h.index,
            h.pattern.to_string(),
            h.policy.name,
            h.bypass_paths.len(),
            h.bypass_resource_sources().len(),
            h.allowed_networks.len(),
            h.claim_roles.len(),
            h.source.as_deref().map(|f| format!("  (from {f})")).unwrap_or_default()
        );
        if h.case_insensitive_paths {
            let _ = writeln!(
                s,
                "  case_insensitive_paths: bypass paths, resources and rules match in any letter case"
            );
        }
        if let Some(names) = rt.host_headers.get(&h.index) {
            let _ = writeln!(
                s,
                "  headers user {} email {} name {} groups {}",
                names.user, names.email, names.name, names.groups
            );
        }
        for (j, r) in h.rules.iter().enumerate() {
            let mut when = Vec::new();
            if !r.paths.is_empty() {
                let paths: Vec<&str> = r.paths.iter().map(|p| p.as_str()).collect();
                when.push(format!("paths {}", paths.join(",")));
            }
            if !r.resource_sources().is_empty() {
                when.push(format!("resources {}", r.resource_sources().join(" | ")));
            }
            if !r.methods.is_empty() {
                when.push(format!("methods {}", r.methods.join(",")));
            }
            if !r.networks.is_empty() {
                when.push(format!("networks {}", r.networks));
            }
            if when.is_empty() {
                when.push("every request".into());
            }
            let _ = writeln!(
                s,
                "  rules[{j}] {} -> {}",
                when.join("; "),
                r.action.describe()
            );
        }
    }
    let mut all: Vec<&str> = rt.all_header_names().iter().map(|n| n.as_str()).collect();
    if let Some(a) = &rt.assertion {
        all.push(a.header.as_str());
    }
    let _ = writeln!(
        s,
        "identity headers (every protected site's proxy takes these from the answer and strips the client's): {}",
        all.join(", ")
    );
    match rt.rules.default_policy() {
        Some(p) => {
            let _ = writeln!(s, "other hosts: policy {}", p.name);
        }
        None => {
            let _ = writeln!(s, "other hosts: denied (no default_policy)");
        }
    }
    s
}

fn explain(path: &Path, args: &ExplainArgs) -> ExitCode {
    let loaded = match config::load_rules(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    match explain_text(&loaded.value, args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The identity a bearer token's claims would make (`-`: the token from
/// standard input). The signature and the standard claims are not checked
/// here: pocketgate does that when serving.
fn bearer_identity(rules: &Rules, token: &str) -> Result<Identity, String> {
    let token = if token == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), 64 * 1024),
            &mut t,
        )
        .map_err(|e| format!("--bearer -: {e}"))?;
        t
    } else {
        token.to_string()
    };
    let claims = crate::oidc::bearer::unverified_claims(token.trim()).map_err(|e| {
        format!("--bearer: {e} (an opaque token has no claims: only the provider (introspection, userinfo) can say who it is)")
    })?;
    let names = rules.claim_names();
    crate::oidc::identity_from_claim_names(
        &names.username,
        &names.groups,
        &rules.role_claims(),
        &claims,
    )
    .map_err(|e| format!("--bearer: {e}"))
}

/// The `explain` output for one simulated request.
pub fn explain_text(rules: &Rules, args: &ExplainArgs) -> Result<String, String> {
    let url = crate::request::parse_absolute_url(&args.url).map_err(|e| format!("--url: {e}"))?;
    let client = ClientAddr::new(args.ip.unwrap_or(IpAddr::from([192, 0, 2, 1])));
    let bearer = match args.bearer.as_deref() {
        Some(token) => Some(bearer_identity(rules, token)?),
        None => None,
    };
    let identity = bearer.or_else(|| {
        args.user.as_ref().map(|u| Identity {
            subject: u.clone(),
            user: u.clone(),
            groups: args
                .groups
                .iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
            ..Identity::default()
        })
    });
    let method = args.method.to_ascii_uppercase();
    let facts = RequestFacts {
        host: &url.host,
        path: url.path,
        client,
        method: Some(&method),
    };
    let decision = policy::decide(rules, &facts, identity.as_ref());
    let host_entry = match decision.host {
        HostMatch::Entry(h) => Some(match &h.source {
            Some(file) => format!("hosts[{}] ({}, from {file})", h.index, h.pattern),
            None => format!("hosts[{}] ({})", h.index, h.pattern),
        }),
        HostMatch::Default(_) => Some("default_policy".to_string()),
        HostMatch::Unknown => None,
    };
    let policy_name = decision.policy.map(|p| p.name.clone());
    let rule = decision.rule_name();
    let reason = decision.reason(rules, &facts, identity.as_ref());
    if args.json {
        let v = serde_json::json!({
            "outcome": decision.outcome,
            "host": url.host,
            "host_entry": host_entry,
            "policy": policy_name,
            "rule": rule,
            "policy_rule": decision.policy_clause(),
            "reason": reason,
        });
        return Ok(format!("{v}\n"));
    }
    let who = match &identity {
        Some(i) if args.bearer.is_some() => format!(
            "bearer token (claims not verified) of user {} (groups {})",
            i.user,
            if i.groups.is_empty() {
                "none".into()
            } else {
                i.groups.join(",")
            }
        ),
        Some(i) if i.groups.is_empty() => format!("user {} (no groups)", i.user),
        Some(i) => format!("user {} (groups {})", i.user, i.groups.join(",")),
        None => "no session".into(),
    };
    let ip_note = if args.ip.is_none() {
        " (default; pass --ip)"
    } else {
        ""
    };
    Ok(format!(
        "request  {} {}\nclient   {client}{ip_note}, {who}\nhost     {} -> {}\npolicy   {}\nrule     {rule}\nreason   {reason}\noutcome  {}\n",
        args.method.to_ascii_uppercase(),
        args.url,
        url.host,
        host_entry.as_deref().unwrap_or("no entry, no default_policy"),
        policy_name.as_deref().unwrap_or("-"),
        decision.outcome,
    ))
}
