//! Configuration changes at run time: a reload puts a new configuration in
//! force between requests, a broken one changes nothing, secrets rotate
//! without a restart, a file write reloads without a signal, and nothing
//! fails while reloading under load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pocketgate::reload::Reloader;

use crate::common::*;

const NEW_HOST: &str = "\n[[hosts]]\nhost = \"new.example.test\"\npolicy = \"users\"\n";
const BROKEN_HOST: &str = "\n[[hosts]]\nhost = \"new.example.test\"\npolicy = \"nobody\"\n";

fn write(path: &Path, text: &str) {
    // Replace the file the way editors do: write aside, rename over.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_file(app: &TestApp, dir: &Path) -> PathBuf {
    let path = dir.join("pocketgate.toml");
    write(&path, &app.toml);
    path
}

fn metric(app: &TestApp, line_start: &str) -> String {
    app.state
        .metrics
        .render(false)
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
        .to_string()
}

#[actix_web::test]
async fn a_reload_puts_a_new_host_in_force_and_a_broken_file_changes_nothing() {
    let app = spawn_plain("").await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&app, dir.path());
    let mut reloader = Reloader::new(&path, app.live.clone(), None);
    let bob = app.cookie("bob", &["users"]);
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        403
    );

    write(&path, &format!("{}{NEW_HOST}", app.toml));
    let done = reloader.reload().await.unwrap();
    assert!(done.not_applied.is_empty(), "{:?}", done.not_applied);
    assert!(!done.new_provider);
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        200
    );
    assert_eq!(
        metric(&app, "pocketgate_config_reloads_total{result=\"success\"}"),
        "pocketgate_config_reloads_total{result=\"success\"} 1"
    );

    // A broken file: the error names the key and the fix; nothing changes.
    write(&path, &format!("{}{BROKEN_HOST}", app.toml));
    let err = reloader.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("hosts[5].policy: policy \"nobody\" is not defined"),
        "{err}"
    );
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        200
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        200
    );
    assert_eq!(
        metric(&app, "pocketgate_config_reloads_total{result=\"error\"}"),
        "pocketgate_config_reloads_total{result=\"error\"} 1"
    );
    assert_eq!(
        metric(&app, "pocketgate_config_last_reload_successful "),
        "pocketgate_config_last_reload_successful 0"
    );

    // Back to the original: the new host is gone again.
    write(&path, &app.toml);
    reloader.reload().await.unwrap();
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        403
    );
    assert_eq!(
        metric(&app, "pocketgate_config_last_reload_successful "),
        "pocketgate_config_last_reload_successful 1"
    );
    let stamp: u64 = metric(
        &app,
        "pocketgate_config_last_reload_success_timestamp_seconds ",
    )
    .rsplit(' ')
    .next()
    .unwrap()
    .parse()
    .unwrap();
    assert!(stamp.abs_diff(now()) < 60, "{stamp}");
}

#[actix_web::test]
async fn keys_that_need_a_restart_keep_their_running_values() {
    let app = spawn_plain("").await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&app, dir.path());
    let mut reloader = Reloader::new(&path, app.live.clone(), None);
    let changed = app
        .toml
        .replace(
            &format!("listen = \"{}\"", app.addr),
            "listen = \"127.0.0.1:1\"",
        )
        .replace(
            "store = \"cookie\"",
            "store = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"",
        );
    assert_ne!(changed, app.toml);
    write(&path, &format!("{changed}{NEW_HOST}"));
    let done = reloader.reload().await.unwrap();
    let notes = done.not_applied.join("\n");
    assert!(
        notes.contains("listen: changed to 127.0.0.1:1, not applied"),
        "{notes}"
    );
    assert!(notes.contains("session.store: changed"), "{notes}");
    let state = app.live.load();
    assert_eq!(state.runtime.listen, app.addr);
    assert_eq!(state.runtime.session.store.as_str(), "cookie");
    // The rest of the file is in force.
    let bob = app.cookie("bob", &["users"]);
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        200
    );
}

const NEW_SECRET: &str = "new-secret-0123456789abcdef0123456789ab";

#[actix_web::test]
async fn a_new_first_line_in_the_secret_file_rotates_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let app = spawn(Options {
        session: format!("secret_file = {:?}", secret_file.display().to_string()),
        ..Options::default()
    })
    .await;
    let path = config_file(&app, dir.path());
    let mut reloader = Reloader::new(&path, app.live.clone(), None);
    let old = app.cookie_with(&keys_for(SECRET), identity("bob", &["users"]), 3600);
    let new = app.cookie_with(&keys_for(NEW_SECRET), identity("bob", &["users"]), 3600);
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &old).await,
        200
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &new).await,
        401
    );

    write(&secret_file, &format!("{NEW_SECRET}\n{SECRET}\n"));
    reloader.reload().await.unwrap();
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &old).await,
        200
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &new).await,
        200
    );
    // Sealing uses the new first line: a cookie sealed now opens with the new key alone.
    let state = app.live.load();
    let s = pocketgate::session::Session {
        identity: identity("carol", &["users"]),
        issued: now(),
        expires: now() + 60,
    };
    let sealed = s.seal(&state.keys);
    assert!(pocketgate::session::Session::open(&keys_for(NEW_SECRET), &sealed, now()).is_ok());

    write(&secret_file, &format!("{NEW_SECRET}\n"));
    reloader.reload().await.unwrap();
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &old).await,
        401
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &new).await,
        200
    );
}

/// Poll (bounded: 50 × 100 ms) until `host` gets `want`.
async fn eventually(app: &TestApp, host: &str, cookie: &str, want: u16) -> bool {
    for _ in 0..50 {
        if forward_auth_status(app, host, cookie).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn writing_a_loaded_file_reloads_without_a_signal() {
    let app = spawn_plain("").await;
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let path = dir.path().join("pocketgate.toml");
    write(
        &path,
        &format!("include = [\"conf.d/*.toml\"]\n{}", app.toml),
    );
    let loaded = pocketgate::config::load(&path).unwrap();
    let task = Reloader::new(&path, app.live.clone(), None).spawn(loaded.sources);
    let bob = app.cookie("bob", &["users"]);

    // A new include file appears.
    write(&conf_d.join("new.toml"), NEW_HOST);
    assert!(eventually(&app, "new.example.test", &bob, 200).await);
    // The main file changes.
    write(
        &path,
        &format!(
            "include = [\"conf.d/*.toml\"]\n{}\n[[hosts]]\nhost = \"main.example.test\"\npolicy = \"admins\"\n",
            app.toml
        ),
    );
    assert!(eventually(&app, "main.example.test", &bob, 403).await);
    assert!(
        eventually(
            &app,
            "main.example.test",
            &app.cookie("al", &["admins"]),
            200
        )
        .await
    );
    // A broken include file: the running configuration stays.
    write(&conf_d.join("new.toml"), BROKEN_HOST);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        200
    );
    assert!(
        metric(&app, "pocketgate_config_reloads_total{result=\"error\"}").ends_with(" 1"),
        "{}",
        metric(&app, "pocketgate_config_reloads_total{result=\"error\"}")
    );
    // Removing the include file takes its host away.
    std::fs::remove_file(conf_d.join("new.toml")).unwrap();
    assert!(eventually(&app, "new.example.test", &bob, 403).await);
    task.abort();
}

/// Reload under load: clients keep asking (signed in and bypass) while the
/// configuration is reloaded 50 times, good and broken versions alternating.
/// Not one answer may fail or be wrong.
#[actix_web::test]
async fn nothing_fails_while_reloading_under_load() {
    let app = Arc::new(spawn_plain("").await);
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&app, dir.path());
    let mut reloader = Reloader::new(&path, app.live.clone(), None);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let mut clients = Vec::new();
    for n in 0..4 {
        let (app, stop, sent) = (app.clone(), stop.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            let bob = app.cookie("bob", &["users"]);
            let c = client();
            let mut wrong = Vec::new();
            // Bounded: stops when told, or after 200 000 requests or 120 s.
            let deadline = Instant::now() + Duration::from_secs(120);
            for i in 0..200_000u32 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let bypass = (i + n) % 2 == 0;
                let (host, uri, cookie) = if bypass {
                    ("open.example.test", "/api/x", "")
                } else {
                    ("app.example.test", "/", bob.as_str())
                };
                let r = c
                    .get(app.url("/forward-auth"))
                    .header("X-Forwarded-Method", "GET")
                    .header("X-Forwarded-Proto", "https")
                    .header("X-Forwarded-Host", host)
                    .header("X-Forwarded-Uri", uri)
                    .header("Cookie", cookie)
                    .send()
                    .await;
                sent.fetch_add(1, Ordering::Relaxed);
                let ok = match r {
                    Ok(r) => {
                        let user = r
                            .headers()
                            .get("x-remote-user")
                            .map(|v| v.as_bytes().to_vec());
                        r.status() == 200
                            && if bypass {
                                user.is_none()
                            } else {
                                user.as_deref() == Some(b"bob".as_slice())
                            }
                    }
                    Err(_) => false,
                };
                if !ok {
                    wrong.push(format!("{host}{uri} at request {i}"));
                }
            }
            wrong
        }));
    }

    let good_a = app.toml.clone();
    let good_b = format!("{}{NEW_HOST}", app.toml);
    let broken = format!("{}{BROKEN_HOST}", app.toml);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..50 {
        let text = match i % 4 {
            0 => &good_b,
            1 | 3 => &broken,
            _ => &good_a,
        };
        write(&path, text);
        match reloader.reload().await {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut wrong = Vec::new();
    for c in clients {
        wrong.extend(c.await.unwrap());
    }
    let took = started.elapsed();
    let total = sent.load(Ordering::Relaxed);
    eprintln!(
        "reload under load: {total} requests in {:.1} s during 50 reloads ({ok} applied, {refused} refused), {} wrong",
        took.as_secs_f64(),
        wrong.len()
    );
    assert_eq!((ok, refused), (25, 25));
    assert!(total > 200, "the clients hardly ran: {total}");
    assert!(
        wrong.is_empty(),
        "{} wrong answers: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
