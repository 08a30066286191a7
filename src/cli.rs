//! The command line: `serve`, `check`, `explain`, `gen-secret`, `demo`.
//!
//! Each command is a small function that loads what it needs, does one thing
//! and returns the process exit code. Output formats live here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigErrors, Runtime};
use crate::domain::ClientAddr;
use crate::http::{AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::policy::{self, HostMatch, Identity, RequestFacts, Rules};
use crate::session::store::Store;

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
    Check,
    /// Print the decision for one request and the rule that made it (no network).
    Explain(ExplainArgs),
    /// Print a fresh random session secret (32 bytes, base64).
    GenSecret,
    /// Run everything on loopback with an embedded development identity provider.
    Demo(DemoArgs),
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
}

/// Parse arguments and run; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::Check => check(&cli.config),
        Command::Explain(args) => explain(&cli.config, &args),
        Command::GenSecret => {
            println!("{}", gen_secret());
            ExitCode::SUCCESS
        }
        Command::Demo(args) => demo(&args),
    }
}

/// Print every configuration error, one `error:` line each.
fn fail(errors: &ConfigErrors) -> ExitCode {
    for e in errors.errors() {
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
        let state = AppState::new(Arc::clone(&runtime), Arc::clone(&provider), store);
        let app = match Application::build(state, ServeOptions::default()) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let discovery = provider.spawn_discovery();
        tracing::info!(listen = %app.addr(), public_url = %runtime.public_url.origin, issuer = %runtime.oidc.issuer, "pocketgate serving");
        let result = app.run().await;
        discovery.abort();
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

fn check(path: &Path) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    print!("{}", summary(path, &loaded.value));
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    ExitCode::SUCCESS
}

/// The `check` summary: a header and one line per host.
pub fn summary(path: &Path, rt: &Runtime) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "configuration OK: {}", path.display());
    let _ = writeln!(
        s,
        "listen {}  public_url {}  issuer {}  client {} ({})",
        rt.listen,
        rt.public_url.origin,
        rt.oidc.issuer,
        rt.oidc.client_id,
        rt.oidc.client_auth.as_str()
    );
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
            "host[{}] {:<28} policy {:<10} bypass_paths {} bypass_resources {} allowed_networks {} claim_roles {}",
            h.index,
            h.pattern.to_string(),
            h.policy.name,
            h.bypass_paths.len(),
            h.bypass_resource_sources().len(),
            h.allowed_networks.len(),
            h.claim_roles.len()
        );
    }
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
            eprintln!("error: --url: {e}");
            ExitCode::from(2)
        }
    }
}

/// The `explain` output for one simulated request.
pub fn explain_text(rules: &Rules, args: &ExplainArgs) -> Result<String, String> {
    let url = crate::request::parse_absolute_url(&args.url).map_err(|e| e.to_string())?;
    let client = ClientAddr::new(args.ip.unwrap_or(IpAddr::from([192, 0, 2, 1])));
    let identity = args.user.as_ref().map(|u| Identity {
        subject: u.clone(),
        user: u.clone(),
        groups: args
            .groups
            .iter()
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect(),
        ..Identity::default()
    });
    let facts = RequestFacts {
        host: &url.host,
        path: url.path,
        client,
    };
    let decision = policy::decide(rules, &facts, identity.as_ref());
    let host_entry = match decision.host {
        HostMatch::Entry(h) => Some(format!("hosts[{}] ({})", h.index, h.pattern)),
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
            "reason": reason,
        });
        return Ok(format!("{v}\n"));
    }
    let who = match &identity {
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
