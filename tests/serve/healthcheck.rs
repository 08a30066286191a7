//! `pocketgate healthcheck` against the real binary: 0 while `serve` runs,
//! 1 with the reason when nothing answers, when `/healthz` is not 200, when
//! `metrics_listen` is down, or when the configuration does not load.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use super::{config, free_port, get, serve, write};

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

/// An HTTP server on loopback that answers every request with `status`
/// (bounded: it serves `count` connections, then its thread ends).
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

/// A configuration file in `dir` for `port`, with `top` before it.
fn config_file(dir: &Path, port: u16, top: &str) -> std::path::PathBuf {
    let path = dir.join("pocketgate.toml");
    write(&path, &format!("{top}\n{}", config(port, "")));
    path
}

#[tokio::test]
async fn healthcheck_is_healthy_while_serve_runs_and_says_why_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = config_file(dir.path(), port, "");
    let server = serve(&path);
    let mut up = false;
    for _ in 0..100 {
        if get(port, "/healthz").await == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "no /healthz within 10 s");
    let out = healthcheck(&path);
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
fn healthcheck_is_unhealthy_on_a_status_other_than_200() {
    let dir = tempfile::tempdir().unwrap();
    let port = answer_with("503 Service Unavailable", 1);
    let out = healthcheck(&config_file(dir.path(), port, ""));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("unhealthy: http://127.0.0.1:{port}/healthz: answered 503, not 200\n")
    );
}

#[test]
fn healthcheck_asks_metrics_listen_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = answer_with("200 OK", 2);
    let metrics = free_port();
    let top = format!("metrics_listen = \"127.0.0.1:{metrics}\"");
    let out = healthcheck(&config_file(dir.path(), port, &top));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with(&format!("unhealthy: http://127.0.0.1:{metrics}/metrics: ")),
        "{}",
        text(&out)
    );
}

#[test]
fn healthcheck_names_a_configuration_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = healthcheck(&config_file(dir.path(), free_port(), "listen_port = 4180"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("unhealthy: cannot read the configuration: ")
            && stderr.contains("listen_port"),
        "{}",
        text(&out)
    );
}
