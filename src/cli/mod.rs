//! The command line: `serve`, `check`, `explain`, `gen-secret`, `demo`, `sessions`,
//! `healthcheck`, `pocket-id setup`.
//!
//! Each command is a small function that loads what it needs, does one thing
//! and returns the process exit code; each lives in the file named by its job,
//! with its output formats. This file holds the arguments and the dispatch.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ConfigErrors;

mod check;
mod explain;
mod healthcheck;
mod pocket_id;
mod serve;
mod sessions;

pub use check::summary;
pub use explain::explain_text;
pub use sessions::sessions_text;

use check::check;
use explain::explain;
use healthcheck::healthcheck;
use serve::serve;
use sessions::sessions;

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
    /// Exit 0 when the running service answers `/healthz` (a container's HEALTHCHECK).
    Healthcheck,
    /// Set up pocketgate in Pocket ID through its admin API.
    PocketId {
        #[command(subcommand)]
        action: PocketIdAction,
    },
}

/// `pocket-id` actions.
#[derive(Debug, Subcommand)]
pub enum PocketIdAction {
    /// Create or update pocketgate's OIDC client and SCIM service provider in
    /// Pocket ID, write the secret files; a second run changes nothing.
    Setup(SetupArgs),
}

/// `pocket-id setup` options.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Pocket ID's address (its APP_URL), e.g. https://id.example.com
    #[arg(long)]
    pub url: String,
    /// A file holding an admin API key of Pocket ID (Settings, Admin, API Keys).
    #[arg(long)]
    pub api_key_file: PathBuf,
    /// Print the plan and change nothing (no file is written either).
    #[arg(long)]
    pub dry_run: bool,
    /// Let every Pocket ID user sign in (the policies still decide what they reach).
    #[arg(long)]
    pub no_group_restriction: bool,
    /// The client's name in Pocket ID when it is created (default: the client id).
    #[arg(long)]
    pub client_name: Option<String>,
    /// Where to write the client secret (default: oidc.client_secret_file).
    #[arg(long)]
    pub client_secret_file: Option<PathBuf>,
    /// Where the SCIM token is (written when missing; default: scim.token_file):
    /// with either, setup makes the SCIM service provider.
    #[arg(long)]
    pub scim_token_file: Option<PathBuf>,
    /// Where Pocket ID sends SCIM requests (default: <public_url>/scim/v2).
    #[arg(long)]
    pub scim_endpoint: Option<String>,
    /// Do not create or update the SCIM service provider.
    #[arg(long, conflicts_with_all = ["scim_token_file", "scim_endpoint"])]
    pub no_scim: bool,
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
    /// Simulate when the user signed in, e.g. 20m (step-up's `max_age`);
    /// without it the sign-in's time is unknown, which no `max_age` accepts.
    #[arg(long, value_name = "DURATION", conflicts_with = "bearer")]
    pub signed_in_ago: Option<humantime::Duration>,
    /// Simulate how the user signed in: the `amr` methods, comma-separated
    /// (Pocket ID: phr passkey, otp one-time code).
    #[arg(long, value_delimiter = ',', conflicts_with = "bearer")]
    pub amr: Vec<String>,
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
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config_given = matches.value_source("config") == Some(ValueSource::CommandLine);
    if config_given && matches!(cli.command, Some(Command::Demo(_))) {
        eprintln!("{DEMO_WITH_CONFIG}");
        return ExitCode::from(2);
    }
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
        Command::Healthcheck => healthcheck(&cli.config),
        Command::PocketId {
            action: PocketIdAction::Setup(args),
        } => pocket_id::setup(&cli.config, &args),
    }
}

/// `demo -c FILE`: the demo writes and runs its own configuration.
pub const DEMO_WITH_CONFIG: &str =
    "error: demo runs its own configuration (it prints where it wrote it) and does not read -c; \
to run yours, use `pocketgate serve -c FILE` (and `pocketgate check -c FILE` first)";

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
