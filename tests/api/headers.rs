//! `[hosts.headers]`: a host's own identity header names, key by key over
//! `[headers]`, on both endpoints; every mistake in such a table.

use pocketgate::config::{load, load_str, ConfigErrors, Loaded, Runtime};

use crate::common::*;

/// `POLICIES` with three more hosts: one overriding a single name, one
/// overriding every name, one (from the same policy) overriding none.
fn policies() -> String {
    format!(
        r#"{POLICIES}
[[hosts]]
host = "grafana2.example.test"
policy = "users"
[hosts.headers]
user = "X-WEBAUTH-USER"

[[hosts]]
host = "wiki.example.test"
policy = "users"
[hosts.headers]
user = "Remote-User"
email = "Remote-Email"
name = "Remote-Name"
groups = "Remote-Groups"

[[hosts]]
host = "plain.example.test"
policy = "users"
"#
    )
}

#[rustfmt::skip]
const ROWS: &[(&str, [&str; 4])] = &[
    // host                   user               email                name                groups
    ("grafana2.example.test", ["x-webauth-user", "x-remote-email",    "x-remote-name",    "x-remote-groups"]),
    ("wiki.example.test",     ["remote-user",    "remote-email",      "remote-name",      "remote-groups"]),
    ("plain.example.test",    ["x-remote-user",  "x-remote-email",    "x-remote-name",    "x-remote-groups"]),
    // default_policy hosts get [headers]; there is no default_policy here, so: a listed host without a table
    ("app.example.test",      ["x-remote-user",  "x-remote-email",    "x-remote-name",    "x-remote-groups"]),
];

#[actix_web::test]
async fn each_host_answers_with_its_own_names_and_the_rest_from_headers() {
    let app = spawn(Options {
        policies: Some(policies()),
        discover: false,
        ..Options::default()
    })
    .await;
    let cookie = app.cookie("alice", &["admins", "users"]);
    for how in BOTH {
        for (host, [user, email, name, groups]) in ROWS {
            let r = ask(&app, how, host, "/", &[("Cookie", &cookie)]).await;
            assert_eq!(r.status(), 200, "{how:?} {host}");
            assert_eq!(header(&r, user), Some("alice"), "{how:?} {host}");
            assert_eq!(header(&r, email), Some("alice@example.test"), "{host}");
            assert_eq!(header(&r, name), Some("alice Example"), "{host}");
            assert_eq!(header(&r, groups), Some("admins,users"), "{host}");
            // Exactly four identity headers: an overridden name replaces the default one.
            let identity = r
                .headers()
                .keys()
                .filter(|k| k.as_str().contains("remote") || k.as_str().contains("webauth"))
                .count();
            assert_eq!(identity, 4, "{how:?} {host}: {:?}", r.headers());
        }
    }
}

#[actix_web::test]
async fn a_bypass_on_an_overriding_host_sends_no_identity_header() {
    let policies = format!(
        "{}\n[[hosts]]\nhost = \"bypass.example.test\"\npolicy = \"users\"\nbypass_paths = [\"/health\"]\n[hosts.headers]\nuser = \"X-WEBAUTH-USER\"\n",
        policies()
    );
    let app = spawn(Options {
        policies: Some(policies),
        discover: false,
        ..Options::default()
    })
    .await;
    let cookie = app.cookie("alice", &["admins", "users"]);
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "bypass.example.test",
            "/health",
            &[("Cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status(), 200, "{how:?}");
        assert!(header(&r, "x-webauth-user").is_none(), "{how:?}");
        assert!(header(&r, "x-remote-user").is_none(), "{how:?}");
    }
}

const BASE: &str = r#"
public_url = "https://auth.example.com"
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
client_auth = "none"
[session]
secret = "0123456789abcdef0123456789abcdef0123"
[headers]
user = "X-User"
[policies.users]
allowed_groups = ["users"]
"#;

fn load_text(hosts: &str) -> Result<Loaded<Runtime>, ConfigErrors> {
    load_str(&format!("{BASE}{hosts}"), &|_| None)
}

fn error_of(hosts: &str) -> String {
    match load_text(hosts) {
        Ok(_) => panic!("expected an error for:\n{hosts}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_host_table_falls_back_key_by_key_to_headers_then_the_defaults() {
    let rt = load_text(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\n[hosts.headers]\nemail = \"X-Mail\"\n",
    )
    .unwrap()
    .value;
    let lookup = rt.rules.lookup_host("a.example.com");
    let names = rt.headers_for(&lookup);
    assert_eq!(names.user.as_str(), "x-user"); // [headers]
    assert_eq!(names.email.as_str(), "x-mail"); // [hosts.headers]
    assert_eq!(names.name.as_str(), "x-remote-name"); // the default
    assert_eq!(names.groups.as_str(), "x-remote-groups");
    let unknown = rt.rules.lookup_host("b.example.com");
    assert_eq!(rt.headers_for(&unknown).email.as_str(), "x-remote-email");
    let all: Vec<&str> = rt.all_header_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        all,
        [
            "x-user",
            "x-remote-email",
            "x-remote-name",
            "x-remote-groups",
            "x-mail"
        ]
    );
}

#[rustfmt::skip]
const BAD: &[(&str, &str, &[&str])] = &[
    // [hosts.headers] body                 what the message must say
    ("user = \"Cookie\"",                   "hosts[0].headers.user", &["Cookie", "proxies and browsers rely on"]),
    ("groups = \"X-Forwarded-User\"",       "hosts[0].headers.groups", &["X-Forwarded-User", "rely on"]),
    ("name = \"X_Name\"",                   "hosts[0].headers.name", &["X_Name", "letters, digits and '-'"]),
    ("email = \"\"",                        "hosts[0].headers.email", &["not a header name"]),
    // the fallback counts: user is X-User from [headers]
    ("email = \"x-user\"",                  "hosts[0].headers", &["two identity fields"]),
    ("usr = \"X-A\"",                       "hosts[0].headers.usr", &["unknown key", "hosts[0].headers.user"]),
];

#[test]
fn every_mistake_in_a_host_table_names_its_key() {
    for (body, key, words) in BAD {
        let err = error_of(&format!(
            "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\n[hosts.headers]\n{body}\n"
        ));
        assert!(err.contains(key), "{body}: {err}");
        for w in *words {
            assert!(err.contains(w), "{body}: {w:?} missing in {err}");
        }
    }
}

#[test]
fn a_host_table_is_not_a_string_and_the_main_headers_table_still_checks_its_keys() {
    let err =
        error_of("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nheaders = \"X-A\"\n");
    assert!(err.contains("hosts"), "{err}");
    let err = match load_str(
        &BASE.replace("user = \"X-User\"", "user = \"X-User\"\ngrups = \"X\""),
        &|_| None,
    ) {
        Ok(_) => panic!("grups accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("headers.grups") && err.contains("headers.groups"),
        "{err}"
    );
}

#[test]
fn an_include_file_may_carry_host_tables_and_its_mistakes_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("pocketgate.toml");
    std::fs::write(&main, format!("include = [\"conf.d/*.toml\"]\n{BASE}")).unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let fragment = dir.path().join("conf.d/grafana.toml");
    std::fs::write(
        &fragment,
        "[[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"users\"\n[hosts.headers]\nuser = \"X-WEBAUTH-USER\"\n",
    )
    .unwrap();
    let rt = load(&main).unwrap().value;
    let lookup = rt.rules.lookup_host("grafana.example.com");
    assert_eq!(rt.headers_for(&lookup).user.as_str(), "x-webauth-user");
    assert_eq!(rt.headers_for(&lookup).email.as_str(), "x-remote-email");
    let summary = pocketgate::cli::summary(&main, &rt, &[]);
    assert!(
        summary.contains("headers user x-webauth-user email x-remote-email"),
        "{summary}"
    );
    assert!(
        summary.contains("x-user, x-remote-email, x-remote-name, x-remote-groups, x-webauth-user"),
        "{summary}"
    );

    std::fs::write(
        &fragment,
        "[[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"users\"\n[hosts.headers]\nuser = \"Host\"\nmail = \"X-M\"\n",
    )
    .unwrap();
    let err = load(&main).unwrap_err().to_string();
    assert!(
        err.contains("conf.d/grafana.toml:6: hosts[0].headers.mail")
            && err.contains("headers.email"),
        "{err}"
    );
    // The unknown key and the value mistake are reported in one run; the value one stays once the key is fixed.
    assert!(
        err.contains("conf.d/grafana.toml:5: hosts[0].headers.user"),
        "{err}"
    );
    std::fs::write(
        &fragment,
        "[[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"users\"\n[hosts.headers]\nuser = \"Host\"\n",
    )
    .unwrap();
    let err = load(&main).unwrap_err().to_string();
    assert!(
        err.contains("conf.d/grafana.toml:5: hosts[0].headers.user"),
        "{err}"
    );
}

/// The e-mail header carries only what the provider vouches for.
#[actix_web::test]
async fn an_unverified_e_mail_never_reaches_the_backend() {
    let app = spawn(Options {
        idp: true,
        ..Options::default()
    })
    .await;
    let idp = app.idp.as_ref().unwrap();
    idp.set_email("bob", "alice@example.test", false).unwrap();
    idp.set_email("alice", "alice@example.test", true).unwrap();
    let rd = "https://app.example.test/";
    let bob =
        crate::login::session_cookie(&crate::login::sign_in(&app, &browser(), "bob", rd).await)
            .unwrap();
    let alice =
        crate::login::session_cookie(&crate::login::sign_in(&app, &browser(), "alice", rd).await)
            .unwrap();
    for how in BOTH {
        let r = ask(&app, how, "app.example.test", "/", &[("Cookie", &bob)]).await;
        assert_eq!(r.status(), 200, "{how:?}");
        assert_eq!(header(&r, "x-remote-user"), Some("bob"));
        assert_eq!(header(&r, "x-remote-email"), None, "{how:?}: unverified");
        let r = ask(&app, how, "app.example.test", "/", &[("Cookie", &alice)]).await;
        assert_eq!(header(&r, "x-remote-email"), Some("alice@example.test"));
    }
}
