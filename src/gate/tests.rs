//! The gate without a server: a development provider for bearer tokens,
//! stateless session cookies sealed here, and the clock given per call.

use std::sync::Arc;

use dev_idp::{AccessTokenOptions, DevIdp, DevIdpConfig, SigningAlg};

use super::*;
use crate::config;
use crate::domain::ClientAddr;
use crate::oidc::Provider;
use crate::session::{NoEvents, Session, SessionKeys};

/// The injected clock: every session below is judged at this time.
const NOW: u64 = 1_900_000_000;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn toml(issuer: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
public_url = "https://auth.example.test"
hosts = [
    {{ host = "app.example.test", policy = "users", bypass_paths = ["/public"] }},
    {{ host = "grafana.example.test", policy = "users", headers = {{ user = "X-WEBAUTH-USER" }} }},
    {{ host = "office.example.test", policy = "office" }},
]
[policies]
users = {{ allowed_groups = ["users"] }}
office = {{ allowed_networks = ["10.0.0.0/8"] }}
[oidc]
issuer = "{issuer}"
client_id = "pocketgate"
[session]
secret = "{SECRET}"
store = "cookie"
[bearer]
enabled = true
[assertion]
header = "X-Pocketgate-Assertion"
"#
    )
}

/// A configuration with every service the gate asks, and the provider behind them.
struct Fixture {
    idp: DevIdp,
    runtime: Runtime,
    sessions: Sessions,
    bearer: BearerAuth,
    assertion: Assertions,
    keys: SessionKeys,
}

impl Fixture {
    async fn new() -> Fixture {
        let idp = DevIdp::start(DevIdpConfig {
            redirect_uris: vec!["https://auth.example.test/callback".into()],
            // Quicker to generate than an RSA key: one provider per test.
            alg: SigningAlg::Es256,
            ..DevIdpConfig::default()
        })
        .await
        .unwrap();
        let runtime = config::load_str(&toml(idp.issuer()), &|_| None)
            .unwrap()
            .value;
        let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()).unwrap();
        provider.discover().await.unwrap();
        let bearer = BearerAuth::new(provider, runtime.bearer.clone().unwrap());
        let settings = runtime.assertion.as_ref().unwrap();
        let assertion = Assertions::new(
            settings,
            &runtime.public_url.origin,
            &runtime.session.store,
            None,
            NOW,
        )
        .unwrap();
        let keys = SessionKeys::new(&runtime.session.secrets);
        let cookie = crate::session::CookieSettings {
            name: runtime.session.cookie_name.clone(),
            domain: None,
            secure: true,
            lifetime: runtime.session.lifetime,
        };
        let sessions = Sessions::new(keys.clone(), cookie, None, None, Arc::new(NoEvents));
        Fixture {
            idp,
            runtime,
            sessions,
            bearer,
            assertion,
            keys,
        }
    }

    /// A session cookie value for `user` in `groups`, issued at `issued`, for an hour.
    fn session(&self, user: &str, groups: &[&str], issued: u64) -> String {
        let identity = Identity {
            user: user.into(),
            subject: format!("sub-{user}"),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Identity::default()
        };
        Session {
            identity,
            issued,
            expires: issued + 3600,
        }
        .seal(&self.keys)
    }

    /// The request's credentials as `who` says, decided at `NOW`, summed up.
    async fn ask(&self, host: &str, path: &str, ip: [u8; 4], who: Who) -> String {
        let cookie_name = self.runtime.session.cookie_name.as_str();
        let (cookie, token) = match who {
            Who::Nobody => (None, None),
            Who::Session(user, groups) => (Some(self.session(user, groups, NOW - 60)), None),
            Who::ExpiredSession(user) => (Some(self.session(user, &["users"], NOW - 7200)), None),
            Who::Bearer(user) => (None, Some(self.token(user).await)),
            Who::Both(user, token_user) => (
                Some(self.session(user, &["users"], NOW - 60)),
                Some(self.token(token_user).await),
            ),
            Who::Garbage => (None, Some("not.a.jwt".to_owned())),
        };
        let cookies: Vec<(&str, &str)> = cookie.iter().map(|c| (cookie_name, c.as_str())).collect();
        let authorization = token.map(|t| format!("Bearer {t}"));
        let original = OriginalRequest {
            method: "GET",
            method_given: true,
            scheme: Scheme::Https,
            host: host.into(),
            authority: host.into(),
            path,
            query: None,
            client: ClientAddr::new(ip.into()),
        };
        let services = Services {
            sessions: &self.sessions,
            bearer: Some(&self.bearer),
            assertion: Some(&self.assertion),
            directory: None,
        };
        let credentials = Credentials {
            session: &cookies,
            bearer: crate::oidc::bearer::credential(authorization.iter().map(|a| a.as_bytes())),
        };
        match decide(&original, &self.runtime, services, credentials, NOW).await {
            Ok(v) => summary(&v),
            Err(GateError::Bearer(BearerError::Invalid(_))) => "error: invalid bearer token".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    async fn token(&self, user: &str) -> String {
        let options = AccessTokenOptions {
            with_user_claims: true,
            ..AccessTokenOptions::new(user)
        };
        self.idp.access_token(&options).await.unwrap()
    }
}

#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Session(&'static str, &'static [&'static str]),
    /// A session whose hour ended, by the injected clock.
    ExpiredSession(&'static str),
    Bearer(&'static str),
    /// A session for the first user, a bearer token for the second.
    Both(&'static str, &'static str),
    Garbage,
}

/// `outcome [user via source] [user-header-name] [+assertion]`.
fn summary(v: &Verdict<'_>) -> String {
    let mut s = v.outcome().to_string();
    match &v.identified {
        Some(Identified::Session(c)) => s += &format!(" {} via session", c.session.identity.user),
        Some(Identified::Bearer(i, _)) => s += &format!(" {} via bearer", i.user),
        None => {}
    }
    if v.outcome() == Outcome::Allow {
        s += &format!(" {}", v.names.user);
    }
    if let Some((name, value)) = &v.assertion {
        assert_eq!(
            value.to_str().unwrap().split('.').count(),
            3,
            "a compact JWS"
        );
        s += &format!(" +{name}");
    }
    s
}

const ANYWHERE: [u8; 4] = [203, 0, 113, 9];
const OFFICE: [u8; 4] = [10, 1, 2, 3];

/// A row: its name, host, path, client address, credentials, and the summary.
#[rustfmt::skip]
type Row = (&'static str, &'static str, &'static str, [u8; 4], Who, &'static str);

/// The decision table of the gate: one request a row, and what it comes to.
/// Browser or API makes no difference here: `respond` picks 302 or 401 for
/// a login.
#[tokio::test]
async fn the_gate_decides_as_the_contract_says() {
    let f = Fixture::new().await;
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("anonymous",                "app.example.test",     "/",        ANYWHERE, Who::Nobody,                   "login"),
        ("session allowed",          "app.example.test",     "/",        ANYWHERE, Who::Session("bob", &["users"]), "allow bob via session x-remote-user +x-pocketgate-assertion"),
        ("session denied",           "app.example.test",     "/",        ANYWHERE, Who::Session("carol", &[]),    "deny carol via session"),
        ("session expired at now",   "app.example.test",     "/",        ANYWHERE, Who::ExpiredSession("bob"),    "login"),
        ("bearer allowed",           "app.example.test",     "/",        ANYWHERE, Who::Bearer("bob"),            "allow bob via bearer x-remote-user +x-pocketgate-assertion"),
        ("bearer denied",            "app.example.test",     "/",        ANYWHERE, Who::Bearer("carol"),          "deny carol via bearer"),
        ("bearer refused",           "app.example.test",     "/",        ANYWHERE, Who::Garbage,                  "error: invalid bearer token"),
        ("the session wins",         "app.example.test",     "/",        ANYWHERE, Who::Both("bob", "carol"),     "allow bob via session x-remote-user +x-pocketgate-assertion"),
        ("bypass: no identity",      "app.example.test",     "/public",  ANYWHERE, Who::Session("bob", &["users"]), "bypass"),
        ("bypass: token unread",     "app.example.test",     "/public/x", ANYWHERE, Who::Garbage,                 "bypass"),
        ("trusted network",          "office.example.test",  "/",        OFFICE,   Who::Garbage,                  "bypass"),
        ("untrusted network",        "office.example.test",  "/",        ANYWHERE, Who::Nobody,                   "login"),
        ("unknown host",             "other.example.test",   "/",        ANYWHERE, Who::Session("bob", &["users"]), "deny"),
        ("the host's header names",  "grafana.example.test", "/",        ANYWHERE, Who::Session("bob", &["users"]), "allow bob via session x-webauth-user +x-pocketgate-assertion"),
        ("host names for a token",   "grafana.example.test", "/",        ANYWHERE, Who::Bearer("alice"),          "allow alice via bearer x-webauth-user +x-pocketgate-assertion"),
    ];
    for (name, host, path, ip, who, expected) in rows {
        assert_eq!(f.ask(host, path, *ip, *who).await, *expected, "{name}");
    }
}

/// A deny says why; an allow's assertion names the request's origin.
#[tokio::test]
async fn a_verdict_carries_its_reason_and_the_assertion_for_its_origin() {
    let f = Fixture::new().await;
    let cookie = f.session("carol", &[], NOW - 60);
    let cookies = [(f.runtime.session.cookie_name.as_str(), cookie.as_str())];
    let original = OriginalRequest {
        method: "GET",
        method_given: true,
        scheme: Scheme::Https,
        host: "app.example.test".into(),
        authority: "app.example.test".into(),
        path: "/",
        query: None,
        client: ClientAddr::new(ANYWHERE.into()),
    };
    let services = Services {
        sessions: &f.sessions,
        bearer: None,
        assertion: Some(&f.assertion),
        directory: None,
    };
    let credentials = |cookies| Credentials {
        session: cookies,
        bearer: Credential::None,
    };
    let v = decide(&original, &f.runtime, services, credentials(&cookies), NOW)
        .await
        .unwrap();
    assert_eq!(v.outcome(), Outcome::Deny);
    assert!(v.reason().contains("carol"), "{}", v.reason());
    assert!(v.assertion.is_none(), "a deny carries no assertion");

    let cookie = f.session("bob", &["users"], NOW - 60);
    let cookies = [(f.runtime.session.cookie_name.as_str(), cookie.as_str())];
    let v = decide(&original, &f.runtime, services, credentials(&cookies), NOW)
        .await
        .unwrap();
    let (_, value) = v.assertion.as_ref().unwrap();
    let payload = value.to_str().unwrap().split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://app.example.test");
    assert_eq!(claims["preferred_username"], "bob");
    assert_eq!(claims["iat"], NOW, "signed at the injected clock");
}
