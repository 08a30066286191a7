//! Step-up (`max_age`, `amr`) through the real flow against the development
//! provider: a user signed in with a one-time code uses `/` and is stepped
//! up on `/admin` only; the fresh passkey sign-in lands on `/admin` with the
//! same session; a provider that ignores `prompt=login` ends on the step-up
//! page, not in a loop; a step-up that never came back is not asked again;
//! API clients and bearer tokens get RFC 9470's 401.

use dev_idp::{AccessTokenOptions, Fault};
use pocketgate::policy::SignIn;
use pocketgate::session::store::Filter;

use crate::common::*;
use crate::login::{enc, session_cookie};

/// `wiki.example.test`: any member of `users`; `/admin` needs a passkey
/// sign-in within the last 10 minutes.
const WIKI: &str = r#"
[[hosts]]
host = "wiki.example.test"
policy = "users"
[[hosts.rules]]
paths = ["/admin"]
policy = "users"
max_age = "10m"
amr = ["phr"]
"#;

const ADMIN: &str = "https://wiki.example.test/admin";
const HOME: &str = "https://wiki.example.test/";

async fn spawn_wiki(store: &str, extra: &str) -> TestApp {
    spawn(Options {
        idp: true,
        session: store.into(),
        policies: Some(format!("{POLICIES}\n{WIKI}\n{extra}")),
        ..Options::default()
    })
    .await
}

fn idp(app: &TestApp) -> &dev_idp::DevIdp {
    app.idp.as_ref().unwrap()
}

/// Follow `/login?rd=...` (in the browser `b`) to the provider and approve
/// as `user` signing in with `amr`; the callback's answer.
async fn sign_in_with(
    app: &TestApp,
    b: &reqwest::Client,
    login: &str,
    user: &str,
    amr: &str,
) -> (String, reqwest::Response) {
    let r = b.get(login).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let authz = location(&r);
    let approve = format!("{}&amr={amr}", idp(app).approve_url(&authz, user).unwrap());
    let r = b.get(approve).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let cb = location(&r);
    (authz, b.get(cb).send().await.unwrap())
}

fn login_url(app: &TestApp, rd: &str) -> String {
    app.url(&format!("/login?rd={}", enc(rd)))
}

/// Ask /forward-auth about `url`'s path on the wiki as a browser with `cookie`.
async fn browser_asks(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    ask(
        app,
        Ask::ForwardAuth,
        "wiki.example.test",
        path,
        &[("Cookie", cookie), HTML],
    )
    .await
}

#[actix_web::test]
async fn a_one_time_code_user_is_stepped_up_on_admin_only_and_keeps_the_same_session() {
    let app = spawn_wiki("store = \"embedded\"", "").await;
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "alice", "otp").await;
    assert_eq!(r.status(), 302);
    let cookie = session_cookie(&r).expect("a session cookie");
    let (before, _) = app.state.sessions.list(&Filter::All, now()).await.unwrap();
    assert_eq!(before.len(), 1);

    // `/` works; `/admin` asks for a fresh sign-in, through the login redirect.
    assert_eq!(browser_asks(&app, "/", &cookie).await.status(), 200);
    let r = browser_asks(&app, "/admin", &cookie).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), login_url(&app, ADMIN));

    // /login starts a step-up: prompt=login and max_age at the provider.
    let (authz, r) = sign_in_with(&app, &b, &location(&r), "alice", "phr").await;
    assert!(authz.contains("prompt=login"), "{authz}");
    assert!(authz.contains("max_age=600"), "{authz}");
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), ADMIN);
    // The same session: no new session cookie, the same store record.
    assert_eq!(session_cookie(&r), None, "the session cookie stays");
    let (after, _) = app.state.sessions.list(&Filter::All, now()).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, before[0].0, "the same session id");
    assert_eq!(after[0].1.identity.sign_in.amr, ["phr"]);

    assert_eq!(browser_asks(&app, "/admin", &cookie).await.status(), 200);
    assert_eq!(browser_asks(&app, "/", &cookie).await.status(), 200);
    // /login for a page the session now meets goes straight back.
    let r = b.get(login_url(&app, ADMIN)).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (302, ADMIN.to_string())
    );
}

#[actix_web::test]
async fn with_stateless_cookies_the_same_session_is_sealed_again() {
    let app = spawn_wiki("", "").await;
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "bob", "otp").await;
    let first = session_cookie(&r).unwrap();
    let r = browser_asks(&app, "/admin", &first).await;
    let (_, r) = sign_in_with(&app, &b, &location(&r), "bob", "phr").await;
    assert_eq!(location(&r), ADMIN);
    let second = session_cookie(&r).expect("the session, sealed again");
    assert_ne!(first, second);
    assert_eq!(browser_asks(&app, "/admin", &second).await.status(), 200);
}

#[actix_web::test]
async fn a_sign_in_older_than_max_age_is_stepped_up_on_admin_while_home_passes() {
    let app = spawn_wiki("", "").await;
    let signed = |ago: u64| {
        let mut who = identity("alice", &["users"]);
        who.sign_in = SignIn {
            auth_time: Some(now() - ago),
            amr: vec!["phr".into()],
        };
        app.cookie_with(&app.keys, who, 3600)
    };
    assert_eq!(
        browser_asks(&app, "/admin", &signed(60)).await.status(),
        200
    );
    let old = signed(601);
    assert_eq!(browser_asks(&app, "/admin", &old).await.status(), 302);
    assert_eq!(browser_asks(&app, "/", &old).await.status(), 200);
    // A session from before step-up existed: its sign-in is unknown.
    let unknown = app.cookie("alice", &["users"]);
    assert_eq!(browser_asks(&app, "/admin", &unknown).await.status(), 302);
    assert_eq!(browser_asks(&app, "/", &unknown).await.status(), 200);
}

#[actix_web::test]
async fn a_provider_ignoring_prompt_login_ends_on_the_step_up_page_not_in_a_loop() {
    let app = spawn_wiki("store = \"embedded\"", "").await;
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "alice", "otp").await;
    let cookie = session_cookie(&r).unwrap();
    idp(&app).set_fault(Some(Fault::IgnorePromptLogin));
    let r = browser_asks(&app, "/admin", &cookie).await;
    let (_, r) = sign_in_with(&app, &b, &location(&r), "alice", "phr").await;
    assert_eq!(r.status(), 403, "the step-up page, never a redirect back");
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("a sign-in with a passkey (phr)"), "{page}");
    assert!(
        page.contains("you signed in with a one-time code (otp)"),
        "{page}"
    );
    assert!(page.contains("again=1"), "{page}");
    assert!(page.contains("/logout?rd="), "{page}");
    // Nothing changed: the session still signed in with a code.
    let (list, _) = app.state.sessions.list(&Filter::All, now()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1.identity.sign_in.amr, ["otp"]);
    assert_eq!(browser_asks(&app, "/admin", &cookie).await.status(), 302);
    assert_eq!(browser_asks(&app, "/", &cookie).await.status(), 200);
}

#[actix_web::test]
async fn pocket_id_without_auth_time_still_steps_up_by_prompt_login() {
    let app = spawn_wiki("store = \"embedded\"", "").await;
    idp(&app).set_fault(Some(Fault::NoAuthTime));
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "alice", "phr").await;
    let cookie = session_cookie(&r).unwrap();
    // An ordinary sign-in without auth_time: its time is unknown.
    let r = browser_asks(&app, "/admin", &cookie).await;
    assert_eq!(r.status(), 302);
    // The step-up flow asked prompt=login: the callback's time stands in.
    let (_, r) = sign_in_with(&app, &b, &location(&r), "alice", "phr").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (302, ADMIN.to_string())
    );
    assert_eq!(browser_asks(&app, "/admin", &cookie).await.status(), 200);
}

#[actix_web::test]
async fn a_step_up_that_never_came_back_is_not_asked_again_until_try_again() {
    let app = spawn_wiki("store = \"embedded\"", "").await;
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "bob", "otp").await;
    let cookie = session_cookie(&r).unwrap();
    let login = location(&browser_asks(&app, "/admin", &cookie).await);
    // The step-up starts; bob has no passkey and comes back without finishing.
    let r = b.get(&login).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).contains("prompt=login"));
    let r = b.get(&login).send().await.unwrap();
    assert_eq!(r.status(), 403, "no second trip to the provider");
    let page = r.text().await.unwrap();
    assert!(page.contains("was not completed"), "{page}");
    assert!(page.contains("bob"), "{page}");
    // "Try again" starts a fresh step-up and drops the pending one.
    let again = format!("{login}&again=1");
    assert!(
        page.contains(&again.replace(&app.base, "").replace('&', "&amp;")),
        "{page}"
    );
    let r = b.get(&again).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).contains("prompt=login"));
    let dropped = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("pocketgate_flow_") && v.contains("Max-Age=0"))
        .count();
    assert_eq!(dropped, 1, "the pending flow's cookie is cleared");
}

#[actix_web::test]
async fn api_clients_get_rfc_9470s_401() {
    let app = spawn_wiki("", "").await;
    let cookie = app.cookie("alice", &["users"]);
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "wiki.example.test",
            "/admin",
            &[("Cookie", &cookie), JSON],
        )
        .await;
        assert_eq!(r.status(), 401);
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
        let challenge = header(&r, "www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"insufficient_user_authentication\""),
            "{challenge}"
        );
        assert!(challenge.contains("max_age=\"600\""), "{challenge}");
        assert!(
            challenge.contains("methods is required: phr"),
            "{challenge}"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["missing"], serde_json::json!(["max_age", "amr"]));
    }
    assert_eq!(
        ask(
            &app,
            Ask::ForwardAuth,
            "wiki.example.test",
            "/",
            &[("Cookie", &cookie), JSON]
        )
        .await
        .status(),
        200
    );
}

#[actix_web::test]
async fn a_bearer_token_is_judged_by_its_own_auth_time_and_amr() {
    let app = spawn_wiki("", "[bearer]\nenabled = true\n").await;
    let token = |amr: &str, auth_time: Option<u64>| AccessTokenOptions {
        with_user_claims: true,
        amr: Some(vec![amr.to_string()]),
        auth_time,
        ..AccessTokenOptions::new("alice")
    };
    let status = |t: String| {
        let app = &app;
        async move {
            let bearer = format!("Bearer {t}");
            // A browser's Accept too: a token cannot sign in again, so 401.
            let r = ask(
                app,
                Ask::ForwardAuth,
                "wiki.example.test",
                "/admin",
                &[("Authorization", &bearer), HTML],
            )
            .await;
            (
                r.status().as_u16(),
                header(&r, "www-authenticate").unwrap_or("").to_string(),
            )
        }
    };
    let fresh = Some(now() - 5);
    assert_eq!(
        status(idp(&app).access_token(&token("phr", fresh)).await.unwrap())
            .await
            .0,
        200
    );
    let (code, challenge) =
        status(idp(&app).access_token(&token("otp", fresh)).await.unwrap()).await;
    assert_eq!(code, 401);
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    // Pocket ID's access tokens carry amr and iat but no auth_time: iat is no sign-in time.
    let (code, challenge) =
        status(idp(&app).access_token(&token("phr", None)).await.unwrap()).await;
    assert_eq!(code, 401);
    assert!(challenge.contains("max_age=\"600\""), "{challenge}");
}

#[actix_web::test]
async fn the_step_up_is_counted_in_the_metrics() {
    let app = spawn_wiki("", "").await;
    let cookie = app.cookie("alice", &["users"]);
    browser_asks(&app, "/admin", &cookie).await;
    let text = metrics_text(&app).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("pocketgate_decisions_total{")
                && l.contains("outcome=\"step_up\"")
                && l.contains("endpoint=\"forward-auth\"")
                && l.ends_with(" 1")),
        "{text}"
    );
}

#[actix_web::test]
async fn an_auth_time_in_the_future_is_refused_at_login() {
    let app = spawn_wiki("", "").await;
    idp(&app).set_fault(Some(Fault::FutureAuthTime));
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, ADMIN), "alice", "phr").await;
    assert_eq!(
        r.status(),
        401,
        "an ID token claiming a sign-in an hour ahead"
    );
    assert_eq!(session_cookie(&r), None, "no session");
}

/// A host whose `lifetime` the session has outlived asks for a new sign-in
/// even when the session's sign-in meets its step-up: `/login` judges the
/// session as that host does, so it starts a sign-in instead of sending
/// the browser straight back to a host that would send it to `/login`
/// again (a loop).
#[actix_web::test]
async fn login_judges_the_session_with_the_return_hosts_lifetime() {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"".into(),
        policies: Some(format!(
            "{POLICIES}\n[[hosts]]\nhost = \"wiki.example.test\"\npolicy = \"users\"\nlifetime = \"1s\"\nmax_age = \"10m\"\namr = [\"phr\"]\n"
        )),
        ..Options::default()
    })
    .await;
    let b = browser();
    let (_, r) = sign_in_with(&app, &b, &login_url(&app, HOME), "alice", "phr").await;
    assert_eq!(r.status(), 302);
    let cookie = session_cookie(&r).expect("a session cookie");
    // Outlive the host's lifetime (whole seconds; bounded).
    let issued = now();
    while now() <= issued + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = browser_asks(&app, "/", &cookie).await;
    assert_eq!(r.status(), 302, "the host's lifetime is over");
    assert_eq!(location(&r), login_url(&app, HOME));
    let r = b.get(login_url(&app, HOME)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_ne!(
        location(&r),
        HOME,
        "not straight back: that host would send here again"
    );
    assert!(location(&r).contains("/authorize"), "{}", location(&r));
}
