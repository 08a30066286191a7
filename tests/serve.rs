//! The real binary: `pocketgate serve` reloads its configuration on SIGHUP,
//! and a broken file leaves the running configuration in force;
//! `pocketgate healthcheck` asks it (serve/healthcheck.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pocketgate::config::{SessionSecret, SessionSecrets};
use pocketgate::policy::Identity;
use pocketgate::session::{Session, SessionKeys};

#[path = "serve/healthcheck.rs"]
mod healthcheck;

const SECRET: &str = "serve-test-secret-0123456789abcdef01234";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
[oidc]
issuer = "http://127.0.0.1:9"
client_id = "pocketgate"
[session]
secret = "{SECRET}"
store = "cookie"
[policies.users]
allowed_groups = ["users"]
[[hosts]]
host = "app.example.test"
policy = "users"
{extra}"#
    )
}

/// `pocketgate serve -c path`, its output discarded, stopped when dropped.
fn serve(path: &Path) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_pocketgate"))
            .args(["serve", "-c"])
            .arg(path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn cookie() -> String {
    let keys = SessionKeys::new(&SessionSecrets::new(
        SessionSecret::new(SECRET).unwrap(),
        Vec::new(),
    ));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let s = Session {
        identity: Identity {
            subject: "sub-bob".into(),
            user: "bob".into(),
            groups: vec!["users".into()],
            ..Identity::default()
        },
        issued: now,
        expires: now + 3600,
    };
    format!("pocketgate={}", s.seal(&keys))
}

async fn status(port: u16, host: &str, cookie: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", "/")
        .header("Cookie", cookie)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Poll (bounded: 100 × 100 ms) until `host` gets `want`.
async fn eventually(port: u16, host: &str, cookie: &str, want: u16) -> bool {
    for _ in 0..100 {
        if status(port, host, cookie).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn metric(port: u16, name: &str) -> String {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_string()
}

fn hangup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_file_changes_nothing() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The configuration is a symlink into another directory, which the file
    // watcher (watching the link's directory) does not see: only SIGHUP
    // can reload a change made there.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let real = dir.path().join("real").join("pocketgate.toml");
    write(&real, &config(port, ""));
    let path = dir.path().join("pocketgate.toml");
    std::os::unix::fs::symlink(&real, &path).unwrap();
    let server = serve(&path);
    let bob = cookie();
    let started = Instant::now();
    assert!(
        eventually(port, "app.example.test", &bob, 200).await,
        "pocketgate did not answer within 10 s"
    );
    assert_eq!(status(port, "new.example.test", &bob).await, 403);

    // SIGHUP puts a new host in force.
    let new_host = "[[hosts]]\nhost = \"new.example.test\"\npolicy = \"users\"\n";
    write(&real, &config(port, new_host));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(status(port, "new.example.test", &bob).await, 403);
    hangup(&server);
    assert!(eventually(port, "new.example.test", &bob, 200).await);

    // A broken file: the running configuration stays, the error is counted.
    write(
        &real,
        &config(port, &new_host.replace("users\"", "nobody\"")),
    );
    hangup(&server);
    let mut counted = false;
    for _ in 0..50 {
        if metric(port, "pocketgate_config_reloads_total{result=\"error\"}")
            .await
            .ends_with(" 1")
        {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "the failed reload was not counted");
    assert_eq!(status(port, "new.example.test", &bob).await, 200);
    assert_eq!(status(port, "app.example.test", &bob).await, 200);
    assert_eq!(
        metric(port, "pocketgate_config_last_reload_successful ").await,
        "pocketgate_config_last_reload_successful 0"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(port: u16, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `metrics_listen`: a second listener with `/metrics` and `/readyz` only;
/// `check` names it; an address that cannot be bound stops the start with
/// the key and the address in the message.
#[tokio::test]
async fn metrics_listen_serves_metrics_and_readyz_only() {
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    write(
        &path,
        &format!(
            "metrics_listen = \"127.0.0.1:{metrics}\"\n{}",
            config(port, "")
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["check", "--offline", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("metrics_listen 127.0.0.1:{metrics}")),
        "{stdout}"
    );

    let _server = serve(&path);
    let mut up = false;
    for _ in 0..100 {
        if get(metrics, "/metrics").await == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "no /metrics on metrics_listen within 10 s");
    let text = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pocketgate_"), "{text}");
    // Not ready (the provider is unreachable), but answered there.
    assert_eq!(get(metrics, "/readyz").await, 503);
    for path in [
        "/forward-auth",
        "/auth-request",
        "/login",
        "/healthz",
        "/whoami",
        "/",
    ] {
        assert_eq!(get(metrics, path).await, 404, "{path} on metrics_listen");
    }
    // The main listener is unchanged.
    assert_eq!(get(port, "/healthz").await, 200);

    // Taken: the start fails and says which key and address.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let path2 = dir.path().join("taken.toml");
    write(
        &path2,
        &format!(
            "metrics_listen = \"127.0.0.1:{taken_port}\"\n{}",
            config(free_port(), "")
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["serve", "-c"])
        .arg(&path2)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "metrics_listen: cannot listen on 127.0.0.1:{taken_port}"
        )),
        "{stderr}"
    );
    drop(taken);
}

/// `check` reports every mistake of a file in one run, unknown keys with the
/// rest, each as `file:line: key: what (fix: ...)` in the order of the file,
/// and exits 1; a value the environment overrode names its variable.
#[test]
fn check_lists_every_mistake_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    // Lines 15-19: a misspelt key, a bad network, an undefined policy.
    let text = format!(
        "{}bypass_path = [\"/health\"]\nallowed_networks = [\"10.0.0.0/33\"]\n[[hosts]]\nhost = \"b.example.test\"\npolicy = \"nobody\"\n",
        config(free_port(), "")
    );
    write(&path, &text);
    let check = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pocketgate"))
            .args(["check", "-c"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    let (code, stderr) = check(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        errors,
        [
            "error: pocketgate.toml:15: hosts[0].bypass_path: unknown key (did you mean `hosts[0].bypass_paths`?)",
            "error: pocketgate.toml:16: hosts[0].allowed_networks[0]: \"10.0.0.0/33\" is not a network in CIDR notation: prefix length \"33\" is out of range (fix: write e.g. \"10.0.0.0/8\" or \"192.168.1.10\")",
            "error: pocketgate.toml:19: hosts[1].policy: policy \"nobody\" is not defined (defined: users; fix: add [policies.nobody] or use one of those)",
        ],
        "{stderr}"
    );

    let (code, stderr) = check(&[("POCKETGATE_LOG_FORMAT", "yaml")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.lines().any(
            |l| l.starts_with("error: environment POCKETGATE_LOG_FORMAT: log_format: \"yaml\"")
        ),
        "{stderr}"
    );
}

/// Logs sent to a file (as a journal or `2> file` gets them): plain text
/// without colour codes, no actix lifecycle lines at the default level, and
/// a denial's line with the client's address and the reason.
#[tokio::test]
async fn logs_to_a_file_are_plain_and_a_denial_names_client_and_reason() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    write(&path, &config(port, ""));
    let log = dir.path().join("stderr.log");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_pocketgate"))
            .args(["serve", "-c"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let bob = cookie();
    assert!(
        eventually(port, "app.example.test", &bob, 200).await,
        "pocketgate did not answer within 10 s"
    );
    assert_eq!(status(port, "other.example.test", &bob).await, 403);
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&log).unwrap();
        if text.contains("decision") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    assert!(!text.contains('\x1b'), "colour codes in a file: {text:?}");
    assert!(
        !text.to_ascii_lowercase().contains("workers"),
        "actix lifecycle at info: {text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("decision"))
        .unwrap_or_else(|| panic!("no decision line: {text}"));
    assert!(
        line.contains("client=127.0.0.1") && line.contains("reason="),
        "{line}"
    );
}
