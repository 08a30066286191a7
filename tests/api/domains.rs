//! `[[session.domains]]`: a second registrable domain (example.org) with its
//! own login host, beside the main one (example.test). The proxy tells
//! pocketgate which login host a browser request was sent to with
//! `X-Forwarded-Host` (or `Host`); every request still reaches the test app's
//! loopback address, and cookies are carried by hand because the names are
//! not resolvable.

use crate::common::*;
use crate::login::{enc, session_cookie};

const ORG_LOGIN: &str = "https://auth.example.org";

/// Main domain `example.test` on `http://auth.example.test:PORT`, plus
/// `example.org` on `https://auth.example.org`, both registered at the provider.
async fn spawn_two_domains() -> TestApp {
    spawn(Options {
        idp: true,
        public_host: Some("auth.example.test"),
        session: "cookie_domain = \"example.test\"\n\n[[session.domains]]\ncookie_domain = \"example.org\"\npublic_url = \"https://auth.example.org\"\n".into(),
        configure_idp: |c| {
            c.redirect_uris.push("https://auth.example.org/callback".into());
            c.post_logout_redirect_uris
                .push("https://auth.example.org/logout/done".into());
        },
        policies: Some(format!(
            "{POLICIES}\n[[hosts]]\nhost = \"app.example.org\"\npolicy = \"users\"\n"
        )),
        ..Options::default()
    })
    .await
}

/// A browser request to pocketgate's `path` on the login host `host`, as the
/// proxy forwards it, with the given `Cookie:` header.
async fn at(app: &TestApp, host: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .get(app.url(path))
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Proto", "https")
        .header(HTML.0, HTML.1);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.send().await.unwrap()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The live flow cookie a /login answer sets: the whole `Set-Cookie` line.
fn flow_set_cookie(r: &reqwest::Response) -> String {
    set_cookies(r)
        .into_iter()
        .find(|c| {
            (c.starts_with("pocketgate_flow_") || c.starts_with("__Host-pocketgate_flow_"))
                && !c.contains("Max-Age=0")
        })
        .expect("a flow cookie")
}

fn name_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The path and query of an absolute URL (where the proxy forwards it to pocketgate).
fn path_and_query(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap_or_default())
}

/// `/login?rd=RD` on `host` → the provider (as `user`) → `/callback` on `host`:
/// the callback's answer and the authorization URL the flow used.
async fn sign_in_at(
    app: &TestApp,
    host: &str,
    user: &str,
    rd: &str,
) -> (reqwest::Response, String) {
    let r = at(app, host, &format!("/login?rd={}", enc(rd)), None).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let authz = location(&r);
    let flow = flow_set_cookie(&r);
    let idp = app.idp.as_ref().unwrap();
    let r = client()
        .get(idp.approve_url(&authz, user).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    let r = at(
        app,
        host,
        &path_and_query(&callback),
        Some(&name_value(&flow)),
    )
    .await;
    (r, authz)
}

#[actix_web::test]
async fn a_host_of_another_domain_is_sent_to_that_domains_login() {
    let app = spawn_two_domains().await;
    let r = ask(&app, Ask::ForwardAuth, "app.example.org", "/x?y=1", &[HTML]).await;
    assert_eq!(r.status(), 302);
    let want = format!(
        "{ORG_LOGIN}/login?rd={}",
        enc("https://app.example.org/x?y=1")
    );
    assert_eq!(location(&r), want);
    let r = ask(&app, Ask::AuthRequest, "app.example.org", "/x?y=1", &[HTML]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(location(&r), want);
    // An API client is told the same login URL.
    let r = ask(&app, Ask::ForwardAuth, "app.example.org", "/x?y=1", &[JSON]).await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["login_url"], want);
    // A host of the main domain logs in where it always did.
    let r = ask(&app, Ask::ForwardAuth, "app.example.test", "/", &[HTML]).await;
    assert_eq!(
        location(&r),
        format!(
            "{}/login?rd={}",
            app.public_url,
            enc("https://app.example.test/")
        )
    );
}

#[actix_web::test]
async fn a_login_through_the_other_domains_host_sets_its_cookie_domain() {
    let app = spawn_two_domains().await;
    let rd = "https://app.example.org/dash?tab=2";
    let (r, authz) = sign_in_at(&app, "auth.example.org", "alice", rd).await;
    assert!(
        authz.contains(&format!(
            "redirect_uri={}",
            enc("https://auth.example.org/callback")
        )),
        "{authz}"
    );
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), rd);
    let set = set_cookies(&r);
    let session = set
        .iter()
        .find(|c| c.starts_with("pocketgate="))
        .expect("a session cookie");
    for attr in ["Domain=example.org", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    // The cookie works for every host under example.org, with identity headers.
    let cookie = session_cookie(&r).unwrap();
    for how in BOTH {
        let r = ask(&app, how, "app.example.org", "/", &[("Cookie", &cookie)]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-remote-user"], "alice");
        assert_eq!(r.headers()["x-remote-groups"], "admins,users");
    }
}

#[actix_web::test]
async fn the_flow_cookie_belongs_to_the_login_host_it_was_set_on() {
    let app = spawn_two_domains().await;
    let r = at(
        &app,
        "auth.example.org",
        &format!("/login?rd={}", enc("https://app.example.org/")),
        None,
    )
    .await;
    let flow = flow_set_cookie(&r);
    assert!(!flow.contains("Domain="), "host-only: {flow}");
    assert!(flow.contains("Secure"), "auth.example.org is https: {flow}");
    // The Host header names the login host just as well (nginx without X-Forwarded-Host).
    let r = client()
        .get(app.url(&format!("/login?rd={}", enc("https://app.example.org/"))))
        .header("Host", "auth.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).contains(&enc("https://auth.example.org/callback")),
        "{}",
        location(&r)
    );
}

/// Cookie tossing: any host under a cookie domain can set cookies for the
/// whole domain. Over https the flow cookie is `__Host-` (Secure, `Path=/`,
/// no `Domain`: browsers refuse such a cookie from any other host), and the
/// callback reads that name only, so a flow cookie planted under the plain
/// name is never used. Over http nothing changes (`__Host-` needs Secure).
#[actix_web::test]
async fn over_https_the_flow_cookie_is_host_prefixed_and_only_it_is_read() {
    let app = spawn_two_domains().await;
    let rd = "https://app.example.org/";
    let r = at(
        &app,
        "auth.example.org",
        &format!("/login?rd={}", enc(rd)),
        None,
    )
    .await;
    assert_eq!(r.status(), 302);
    let authz = location(&r);
    let flow = flow_set_cookie(&r);
    assert!(flow.starts_with("__Host-pocketgate_flow_"), "{flow}");
    let attrs: Vec<&str> = flow.split(';').skip(1).map(str::trim).collect();
    assert!(
        attrs.contains(&"Secure") && attrs.contains(&"Path=/"),
        "{flow}"
    );
    assert!(!flow.contains("Domain"), "{flow}");
    let r = client()
        .get(
            app.idp
                .as_ref()
                .unwrap()
                .approve_url(&authz, "alice")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let callback = path_and_query(&location(&r));
    // The same sealed flow under the plain name, as a sibling host could set
    // it with Domain=example.org: not read, the flow is unknown.
    let tossed = name_value(&flow).trim_start_matches("__Host-").to_string();
    let r = at(&app, "auth.example.org", &callback, Some(&tossed)).await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    assert!(session_cookie(&r).is_none());
    // The __Host- cookie completes it; spending the flow clears that name.
    let r = at(
        &app,
        "auth.example.org",
        &callback,
        Some(&name_value(&flow)),
    )
    .await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), rd);
    assert!(session_cookie(&r).is_some());
    let spent = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-pocketgate_flow_"))
        .expect("the flow cookie cleared");
    assert!(
        spent.contains("Max-Age=0") && spent.contains("Secure"),
        "{spent}"
    );

    // The http login host keeps the plain name, without Secure.
    let r = client()
        .get(app.url(&format!("/login?rd={}", enc("https://app.example.test/"))))
        .send()
        .await
        .unwrap();
    let flow = flow_set_cookie(&r);
    assert!(flow.starts_with("pocketgate_flow_"), "{flow}");
    assert!(
        !flow.contains("Secure") && !flow.contains("Domain"),
        "{flow}"
    );
}

#[actix_web::test]
async fn login_for_another_domain_goes_to_that_domains_login_first() {
    let app = spawn_two_domains().await;
    // Asked on the main login host for an example.org page: off to auth.example.org.
    let rd = "https://app.example.org/a?b=c";
    let r = client()
        .get(app.url(&format!("/login?rd={}", enc(rd))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{ORG_LOGIN}/login?rd={}", enc(rd)));
    assert!(
        set_cookies(&r).is_empty(),
        "no flow starts on the wrong host"
    );
    // And the other way round.
    let rd = "https://app.example.test/";
    let r = at(
        &app,
        "auth.example.org",
        &format!("/login?rd={}", enc(rd)),
        None,
    )
    .await;
    assert_eq!(
        location(&r),
        format!("{}/login?rd={}", app.public_url, enc(rd))
    );
}

#[actix_web::test]
async fn rd_is_accepted_under_every_cookie_domain_and_nowhere_else() {
    let app = spawn_two_domains().await;
    for (rd, ok) in [
        ("https://app.example.org/", true),
        ("https://deep.er.example.org/x", true),
        ("https://example.org/", true),
        ("https://app.example.test/", true),
        ("https://evil.example.net/", false),
        ("https://example.org.evil.net/", false),
        // example.org's login is https: http there would be a downgrade.
        ("http://app.example.org/", false),
    ] {
        let r = at(
            &app,
            "auth.example.org",
            &format!("/login?rd={}", enc(rd)),
            None,
        )
        .await;
        assert_eq!(r.status() == 302, ok, "{rd}: {}", r.status());
        if !ok {
            assert_eq!(r.status(), 400, "{rd}");
        }
    }
}

#[actix_web::test]
async fn the_main_domain_works_as_before() {
    let app = spawn_two_domains().await;
    let rd = "https://app.example.test/";
    // No login host named: the main domain serves.
    let r = client()
        .get(app.url(&format!("/login?rd={}", enc(rd))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let authz = location(&r);
    assert!(
        authz.contains(&enc(&format!("{}/callback", app.public_url))),
        "{authz}"
    );
    let flow = flow_set_cookie(&r);
    assert!(!flow.contains("Secure"), "the main login is http: {flow}");
    let idp = app.idp.as_ref().unwrap();
    let r = client()
        .get(idp.approve_url(&authz, "alice").unwrap())
        .send()
        .await
        .unwrap();
    let callback = location(&r);
    let r = client()
        .get(app.url(&path_and_query(&callback)))
        .header("Cookie", name_value(&flow))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("pocketgate="))
        .unwrap();
    assert!(
        session.contains("Domain=example.test") && !session.contains("Secure"),
        "{session}"
    );
    let cookie = session_cookie(&r).unwrap();
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &cookie).await,
        200
    );
    // A cookie of one domain is no login for the other's hosts (the browser
    // would not send it; and if it did, the host's login stays where it is).
    let r = ask(&app, Ask::ForwardAuth, "app.example.org", "/", &[HTML]).await;
    assert!(location(&r).starts_with(ORG_LOGIN), "{}", location(&r));
}

#[actix_web::test]
async fn an_unconfigured_host_header_chooses_the_main_domain() {
    let app = spawn_two_domains().await;
    let r = at(
        &app,
        "evil.example.net",
        &format!("/login?rd={}", enc("https://app.example.test/")),
        None,
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).contains(&enc(&format!("{}/callback", app.public_url))),
        "{}",
        location(&r)
    );
}

#[actix_web::test]
async fn logout_on_the_other_domains_host_clears_its_cookie() {
    let app = spawn_two_domains().await;
    let (r, _) = sign_in_at(
        &app,
        "auth.example.org",
        "alice",
        "https://app.example.org/",
    )
    .await;
    let cookie = session_cookie(&r).unwrap();
    let r = at(
        &app,
        "auth.example.org",
        &format!("/logout?rd={}", enc("https://app.example.org/bye")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), 302);
    let cleared = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("pocketgate=;"))
        .expect("the session cookie is cleared");
    assert!(cleared.contains("Domain=example.org"), "{cleared}");
    let end = location(&r);
    assert!(
        end.contains(&format!(
            "post_logout_redirect_uri={}",
            enc("https://auth.example.org/logout/done")
        )),
        "{end}"
    );
    // Without rd, the logout lands on the domain's own login host.
    let r = at(&app, "auth.example.org", "/logout", None).await;
    assert_eq!(location(&r), format!("{ORG_LOGIN}/"));
}
