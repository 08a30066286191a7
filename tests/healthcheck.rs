//! `pocketgate healthcheck` against the real binary: 0 while `serve` runs,
//! 1 with the reason when nothing answers, when `/healthz` is not 200, when
//! `metrics_listen` is down, or when the configuration does not load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration whose secret file does not exist: the healthcheck must
/// not need it (it reads addresses only), `serve` gets the secret from the
/// environment.
fn config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("pocketgate.toml");
    std::fs::write(
        &path,
        format!(
            r#"{extra}
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
[oidc]
issuer = "http://127.0.0.1:9"
client_id = "pocketgate"
[session]
secret_file = "{}/no-such-secret"
store = "cookie"
[policies.users]
allowed_groups = ["users"]
[[hosts]]
host = "app.example.test"
policy = "users"
"#,
            dir.display()
        ),
    )
    .unwrap();
    path
}

fn serve(path: &Path) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_pocketgate"))
            .args(["serve", "-c"])
            .arg(path)
            .env(
                "POCKETGATE_SESSION__SECRET",
                "healthcheck-test-secret-0123456789abcdef",
            )
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn healthcheck(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["healthcheck", "-c"])
        .arg(path)
        // The probe stays on loopback whatever proxy the environment names.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A one-shot HTTP server on loopback that answers every request with
/// `status` (bounded: it serves `count` connections, then its thread ends).
fn answer_with(status: &'static str, count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    port
}

#[test]
fn healthy_while_serve_runs_and_unhealthy_with_the_reason_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = config(dir.path(), port, "");
    let server = serve(&path);
    // Bounded: 100 tries, each limited to 2 s by the healthcheck itself.
    let mut out = healthcheck(&path);
    for _ in 0..100 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = healthcheck(&path);
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("healthy: http://127.0.0.1:{port}/healthz answered 200\n")
    );

    drop(server);
    let out = healthcheck(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("unhealthy: http://127.0.0.1:{port}/healthz: "))
            && stderr.contains("refused")
            && stderr.lines().count() == 1,
        "{}",
        text(&out)
    );
}

#[test]
fn a_status_other_than_200_is_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let port = answer_with("503 Service Unavailable", 1);
    let out = healthcheck(&config(dir.path(), port, ""));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("unhealthy: http://127.0.0.1:{port}/healthz: answered 503, not 200\n")
    );
}

#[test]
fn metrics_listen_must_answer_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = answer_with("200 OK", 2);
    let metrics = free_port();
    let path = config(
        dir.path(),
        port,
        &format!("metrics_listen = \"127.0.0.1:{metrics}\""),
    );
    let out = healthcheck(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with(&format!("unhealthy: http://127.0.0.1:{metrics}/metrics: ")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_configuration_that_does_not_load_is_unhealthy_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), free_port(), "listen_port = 4180");
    let out = healthcheck(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("unhealthy: cannot read the configuration: ")
            && stderr.contains("listen_port"),
        "{}",
        text(&out)
    );
}
