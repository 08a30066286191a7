//! Health, readiness, whoami, and the command line.

use std::process::Command;

use crate::common::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pocketgate"));
    // The test process's own environment must not leak configuration in.
    for (k, _) in std::env::vars() {
        if k.starts_with("POCKETGATE_") {
            c.env_remove(k);
        }
    }
    c
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pocketgate.toml");

#[actix_web::test]
async fn healthz_readyz_and_whoami() {
    let app = spawn_plain("").await;
    let c = client();
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(app.url("/readyz")).send().await.unwrap().status(),
        503,
        "provider metadata not loaded"
    );
    let r = c.get(app.url("/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(app.url("/whoami"))
        .header("Cookie", app.cookie("alice", &["admins"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["user"], "alice");
    assert_eq!(v["groups"], serde_json::json!(["admins"]));
    let app = spawn_with_idp().await;
    assert_eq!(
        client()
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn check_summarises_the_example_with_secrets_from_the_environment() {
    let out = bin()
        .args(["check", "-c", EXAMPLE])
        .env("POCKETGATE_SESSION__SECRET", "x".repeat(40))
        .env("POCKETGATE_OIDC__CLIENT_SECRET", "client")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"));
    assert!(
        stdout.contains("grafana.example.com") && stdout.contains("policy admins"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sonarr.example.com") && stdout.contains("lan.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("other hosts: policy users"), "{stdout}");
    // With a single domain too: what to register at Pocket ID.
    assert!(
        stdout.contains(
            "callback https://auth.example.com/callback, logout https://auth.example.com/logout/done"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("keep forward_auth / auth_request off id.example.com and auth.example.com"),
        "{stdout}"
    );
}

/// `check` says which hosts fold case; `explain` decides in any letter case there.
#[test]
fn check_and_explain_know_case_insensitive_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jellyfin.toml");
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    std::fs::write(
        &path,
        format!(
            "{example}\n[[hosts]]\nhost = \"jellyfin.example.com\"\npolicy = \"users\"\ncase_insensitive_paths = true\n[[hosts.rules]]\npaths = [\"/admin\"]\npolicy = \"admins\"\n"
        ),
    )
    .unwrap();
    let out = bin()
        .args(["check", "-c"])
        .arg(&path)
        .env("POCKETGATE_SESSION__SECRET", "x".repeat(40))
        .env("POCKETGATE_OIDC__CLIENT_SECRET", "client")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let host = lines
        .iter()
        .position(|l| l.contains("jellyfin.example.com"))
        .unwrap();
    assert!(
        lines[host + 1].contains("case_insensitive_paths"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("case_insensitive_paths").count(),
        1,
        "only the host that sets it: {stdout}"
    );
    for (url, outcome) in [
        ("https://jellyfin.example.com/ADMIN/x", "deny"),
        ("https://jellyfin.example.com/Admin", "deny"),
        ("https://jellyfin.example.com/other", "allow"),
    ] {
        let out = bin()
            .args(["explain", "-c"])
            .arg(&path)
            .args(["--url", url, "--user", "bob", "--groups", "users", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["outcome"], outcome, "{url}: {v}");
    }
}

/// A production build refuses `demo` with a clear message instead of an unknown command.
#[cfg(not(feature = "demo"))]
#[test]
fn without_the_demo_feature_demo_says_how_to_get_it() {
    let out = bin().args(["demo", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without the `demo` feature") && err.contains("cargo build"),
        "{err}"
    );
}

#[test]
fn check_names_every_independent_mistake_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.toml");
    std::fs::write(
        &path,
        r#"
public_url = "https://auth.example.com"
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
client_auth = "none"
[session]
secret = "0123456789abcdef0123456789abcdef0123"
lifetime = "soon"
[policies.admins]
allowed_groups = ["admins"]
[[hosts]]
host = "grafana.example.com"
policy = "nobody"
allowed_networks = ["10.0.0.0/33"]
"#,
    )
    .unwrap();
    let out = bin().args(["check", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    // In the order of the file, each at its line.
    for (line, key) in lines.iter().zip([
        "three.toml:9: session.lifetime:",
        "three.toml:14: hosts[0].policy:",
        "three.toml:15: hosts[0].allowed_networks[0]:",
    ]) {
        assert!(line.starts_with(&format!("error: {key}")), "{key}: {err}");
    }
}

#[test]
fn check_fails_with_the_key_and_exit_1() {
    // Without secrets the example's secret files do not exist here.
    let out = bin().args(["check", "-c", EXAMPLE]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret_file") && err.contains("/run/secrets"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "public_url = \"https://auth.example.com\"\nlisten_addr = \"x\"\n",
    )
    .unwrap();
    let out = bin().args(["check", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen_addr: unknown key") && err.contains("`listen`"),
        "{err}"
    );

    let out = bin()
        .args(["check", "-c", "/nonexistent/pocketgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // An environment override is checked like the file.
    let out = bin()
        .args(["check", "-c", EXAMPLE])
        .env("POCKETGATE_SESSION__SECRET", "x".repeat(40))
        .env("POCKETGATE_OIDC__CLIENT_SECRET", "client")
        .env("POCKETGATE_OIDC__SCOPES", "[profile]")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("oidc.scopes"));
}

#[test]
fn explain_prints_the_rule_and_the_network() {
    let out = bin()
        .args([
            "explain",
            "-c",
            EXAMPLE,
            "--url",
            "https://grafana.example.com/api/health",
            "--ip",
            "10.50.1.2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("hosts[0] (grafana.example.com)"), "{s}");
    assert!(s.contains("bypass: /api/health matches bypass_paths[0] (/api/health); client 10.50.1.2 in allowed_networks[0] (10.50.0.0/16)"), "{s}");
    assert!(s.contains("outcome  bypass"), "{s}");

    let out = bin()
        .args([
            "explain",
            "-c",
            EXAMPLE,
            "--url",
            "https://Grafana.example.com/",
            "--user",
            "bob",
            "--groups",
            "users",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "deny");
    assert_eq!(v["host"], "grafana.example.com");
    assert_eq!(v["policy"], "admins");
    assert_eq!(v["rule"], "policies.admins.allowed_groups");
    assert!(v["reason"].as_str().unwrap().contains("bob"));

    for (args, outcome) in [
        (
            vec![
                "--url",
                "https://grafana.example.com/",
                "--user",
                "alice",
                "--groups",
                "admins",
            ],
            "allow",
        ),
        (vec!["--url", "https://grafana.example.com/"], "login"),
        (
            vec!["--url", "https://lan.example.com/", "--ip", "192.168.4.4"],
            "bypass",
        ),
        (
            vec![
                "--url",
                "https://sonarr.example.com/api/system/status",
                "--ip",
                "203.0.113.1",
            ],
            "login",
        ),
        (
            vec![
                "--url",
                "https://grafana.example.com/api/health/../../admin",
                "--ip",
                "10.50.1.2",
            ],
            "login",
        ),
    ] {
        let out = bin()
            .args(["explain", "-c", EXAMPLE, "--json"])
            .args(&args)
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(v["outcome"], outcome, "{args:?}: {v}");
    }

    let out = bin()
        .args(["explain", "-c", EXAMPLE, "--url", "not a url"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn gen_secret_prints_32_random_bytes() {
    use base64::Engine;
    let a = bin().arg("gen-secret").output().unwrap();
    let b = bin().arg("gen-secret").output().unwrap();
    let a = String::from_utf8(a.stdout).unwrap();
    let b = String::from_utf8(b.stdout).unwrap();
    assert_ne!(a, b);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(a.trim())
        .unwrap();
    assert_eq!(bytes.len(), 32);
}

#[cfg(feature = "demo")]
#[actix_web::test]
async fn the_demo_signs_in_and_shows_the_headers() {
    let demo = pocketgate::demo::start(0, 0, false).await.unwrap();
    let base = format!("http://{}", demo.app.addr());
    let idp_issuer = demo.idp.issuer().to_string();
    let approve = |authz: &str, user: &str| demo.idp.approve_url(authz, user).unwrap();
    actix_web::rt::spawn(demo.app.run());
    let b = browser();
    let r = b
        .get(format!("{base}/demo/admin.demo.test/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = b
        .get(format!("{base}{}", location(&r)))
        .send()
        .await
        .unwrap();
    let authz = location(&r);
    assert!(authz.starts_with(&idp_issuer));
    let r = b.get(approve(&authz, "alice")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(location(&r), format!("{base}/demo/admin.demo.test/"));
    let page = b.get(location(&r)).send().await.unwrap();
    // Demo pages come from the same response mapping as every other page.
    assert!(page.headers().contains_key("content-security-policy"));
    let body = page.text().await.unwrap();
    assert!(
        body.contains("x-remote-user") && body.contains("alice") && body.contains("admins,users"),
        "{body}"
    );
}

#[test]
fn serve_logs_json_lines_and_stops_gracefully_on_sigterm() {
    use std::io::Read;
    use std::time::{Duration, Instant};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nlog_format = \"json\"\n[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"pg\"\n[policies.users]\n[[hosts]]\nhost = \"app.example.test\"\npolicy = \"users\"\n"
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "-c"])
        .arg(&path)
        // The embedded store's default ./pocketgate-state lands in the temporary directory.
        .current_dir(dir.path())
        .env("POCKETGATE_SESSION__SECRET", "s".repeat(32))
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{port}/healthz");
    // Wait for an answer, not merely an accepted connection: the port listens
    // as soon as it is bound, before the server installs its signal handlers,
    // and a SIGTERM in that window kills the process instead of stopping it.
    let answers = || {
        use std::io::Write;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = String::new();
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_ok()
            && s.read_to_string(&mut reply).is_ok()
            && reply.split(' ').nth(1) == Some("200")
    };
    loop {
        if answers() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not come up on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "graceful stop exits 0, got {code}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "pocketgate serving"),
        "{stderr}"
    );
    assert!(lines.iter().all(|l| l.get("level").is_some()), "{stderr}");
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The book shows configuration by including the tested files, never by a
/// pasted copy that drifts: every shipped example is included whole somewhere
/// in `docs/src`, and every `{{#include}}` names a file that exists.
#[test]
fn the_book_includes_every_example_as_shipped() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut whole = std::collections::BTreeSet::new();
    for page in files_under(&root.join("docs/src")) {
        if page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&page).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("{{#include") {
            // `\{{#include ...}}` is mdBook's escape: shown, not included.
            let escaped = rest[..at].ends_with('\\');
            let after = &rest[at + "{{#include".len()..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("{}: unclosed {{{{#include", page.display()));
            let spec = after[..end].trim();
            rest = &after[end..];
            if escaped {
                continue;
            }
            let (file, selector) = spec.split_once(':').unwrap_or((spec, ""));
            let target = page.parent().unwrap().join(file);
            assert!(
                target.is_file(),
                "{} includes {spec}, which does not exist",
                page.display()
            );
            if selector.is_empty() {
                whole.insert(target.canonicalize().unwrap());
            }
        }
    }
    for example in files_under(&root.join("examples")) {
        let shipped = example.strip_prefix(root).unwrap().display();
        assert!(
            whole.contains(&example.canonicalize().unwrap()),
            "no page of docs/src includes {shipped} whole; add {{{{#include ../../{shipped}}}}} where it belongs",
        );
    }
}
