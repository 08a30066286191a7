//! The embedded development identity provider: a small, real OpenID Connect provider that
//! behaves like Pocket ID wherever a relying party can tell the difference.
//!
//! It exists for two callers only:
//!
//! - `pocketgate demo`, where a person picks one of a few built-in users on a page instead of
//!   presenting a passkey;
//! - pocketgate's integration tests, which run the real login flow against it and switch on a
//!   [`Fault`] to make it misbehave (provider down, forged or expired ID tokens, key rotation,
//!   group-restricted client...).
//!
//! What it does like Pocket ID: the same endpoint paths and discovery document (including the
//! `INTERNAL_APP_URL` split of back-channel endpoints, see [`DevIdpConfig::internal_host`]),
//! authorization code flow with PKCE, `client_secret_basic` / `client_secret_post` / public
//! clients, RFC 9207 `iss` on the authorization response, one signing algorithm advertised
//! (RS256 by default), JWT access tokens, and scope-dependent claims: `email`/`email_verified`
//! only with the `email` scope, the profile claims only with `profile`, and `groups` only with
//! `groups`.
//!
//! # Refresh tokens
//!
//! When the authorization request's scope includes `offline_access`, the code exchange also
//! returns a `refresh_token` (256 random bits, valid 30 days like Pocket ID's default).
//! `POST /api/oidc/token` with `grant_type=refresh_token` (client authentication as for the
//! code) returns a new access token, a new ID token — fresh `iat`/`exp`, the user's *current*
//! claims for the originally granted scopes (or the subset named by a `scope` parameter), the
//! original `auth_time` and `sid`, no `nonce` — and a new refresh token. Rotation is strict:
//! the presented refresh token, and the access tokens issued before in the same login, are
//! revoked at once. Presenting a rotated refresh token again is `invalid_grant` **and revokes
//! the whole family** — every refresh and access token descending from that login — like
//! Pocket ID; a reused authorization code does the same. An unknown, expired or revoked refresh
//! token, or one of a disabled user, is `400 {"error":"invalid_grant"}`. The ID-token faults
//! apply to the ID tokens of the refresh grant too.
//!
//! Tests change users while the provider runs ([`DevIdp::set_groups`], [`DevIdp::set_email`],
//! [`DevIdp::set_name`], [`DevIdp::disable_user`], [`DevIdp::revoke_refresh_tokens`]); every
//! claim issued afterwards (refresh, userinfo) reflects the change.
//!
//! # Sessions and back-channel logout
//!
//! Every sign-in is a new login session with a random `sid`, carried by the ID tokens of that
//! login (refreshed ones included). Discovery advertises `backchannel_logout_supported` and
//! `backchannel_logout_session_supported`. With [`DevIdpConfig::backchannel_logout_uri`] set,
//! [`DevIdp::backchannel_logout`] ends sessions and POSTs an OpenID Connect Back-Channel
//! Logout 1.0 logout token for each to that URI; [`DevIdp::logout_token`] builds one — valid or
//! broken in one chosen way ([`LogoutTokenFlaw`]) — without sending it, and
//! [`DevIdp::send_logout_token`] posts any token.
//!
//! What it is **not**: an identity provider for anything real. There is no authentication at
//! all — whoever reaches the port can sign in as any configured user — so it refuses to listen
//! on anything but a loopback address. It has exactly one client, no consent, no token
//! revocation endpoint, no single sign-on (every `/authorize` shows the user
//! picker and starts a new session; `prompt=none` always fails), keeps its state in memory and
//! generates a fresh signing key at every start.
//!
//! Tests that do not want to parse the picker page approve directly:
//! `GET /authorize/approve?user=<username>&<the authorization request's query parameters>`
//! (see [`DevIdp::approve_url`]).
//!
//! This crate depends only on third-party crates and the shared `kit` helpers, never on
//! pocketgate itself: pocketgate uses it as a dev-dependency (tests) and behind its default
//! `demo` feature, so a production build (`--no-default-features`) carries none of it.

mod access;
mod handlers;
mod keys;
mod logout;
mod pages;
mod protocol;
mod store;
#[cfg(test)]
mod tests;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{middleware, web, App, HttpServer};
use sha2::{Digest, Sha256};

use keys::KeyRing;
use store::Store;

/// A user that can sign in at the development identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevUser {
    /// Login name, sent as `preferred_username` (with the `profile` scope).
    pub username: String,
    /// Display name, sent as `name` and split into `given_name` / `family_name`.
    pub name: String,
    /// Address sent as `email` (with the `email` scope).
    pub email: String,
    /// Sent as `email_verified` (with the `email` scope).
    pub email_verified: bool,
    /// Group names, sent as `groups` (only with the `groups` scope, like Pocket ID).
    pub groups: Vec<String>,
}

impl DevUser {
    /// The user's stable `sub`: a UUID-shaped (version 8) value derived from the username, so it
    /// is the same across restarts of the provider.
    pub fn subject(&self) -> String {
        subject_for(&self.username)
    }
}

/// Derives the stable, UUID-shaped subject of a username.
fn subject_for(username: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"pocketgate dev-idp subject\0")
        .chain_update(username.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The built-in demo users: `alice` (groups `admins`, `users`), `bob` (`users`) and `carol`
/// (no groups), all with addresses under `example.test`.
pub fn default_users() -> Vec<DevUser> {
    let user = |username: &str, name: &str, groups: &[&str]| DevUser {
        username: username.to_owned(),
        name: name.to_owned(),
        email: format!("{username}@example.test"),
        email_verified: true,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    vec![
        user("alice", "Alice Andersen", &["admins", "users"]),
        user("bob", "Bob Brennan", &["users"]),
        user("carol", "Carol Castillo", &[]),
    ]
}

/// The algorithm of the provider's signing key; discovery advertises exactly this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a fresh 2048-bit RSA key (Pocket ID's default).
    #[default]
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    Es256,
}

impl SigningAlg {
    /// The JOSE name of the algorithm (`RS256`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    fn jwt_alg(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// How to run the development identity provider: where to listen, its one client, its users.
#[derive(Debug, Clone)]
pub struct DevIdpConfig {
    /// Where to listen. Port 0 picks a free port; anything but a loopback IP is refused.
    pub bind: SocketAddr,
    /// The one registered client's `client_id`.
    pub client_id: String,
    /// The client's secret; `None` makes it a public client (PKCE only, auth method `none`).
    pub client_secret: Option<String>,
    /// Registered redirect URIs; `/authorize` and `/token` require an exact match.
    pub redirect_uris: Vec<String>,
    /// Registered `post_logout_redirect_uri`s for RP-initiated logout (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// The users offered on the sign-in page.
    pub users: Vec<DevUser>,
    /// The signing algorithm (RS256 by default, like Pocket ID).
    pub alg: SigningAlg,
    /// When set (e.g. `"localhost"`), discovery puts the token, userinfo and JWKS endpoints on
    /// `http://<internal_host>:<port>` instead of the issuer's host, like Pocket ID's
    /// `INTERNAL_APP_URL`. The provider still listens only on [`bind`](Self::bind).
    pub internal_host: Option<String>,
    /// The client's back-channel logout URI (absolute, no fragment), where
    /// [`DevIdp::backchannel_logout`] and [`DevIdp::send_logout_token`] POST logout tokens.
    /// `None` (the default) registers none.
    pub backchannel_logout_uri: Option<String>,
    /// Offer token introspection (RFC 7662) at `/api/oidc/introspect`, as Pocket ID does
    /// (the default); `false` leaves `introspection_endpoint` out of discovery.
    pub introspection: bool,
}

impl Default for DevIdpConfig {
    /// `127.0.0.1:0`, public client `pocketgate` with no redirect URIs, the
    /// [`default_users`], RS256.
    fn default() -> Self {
        DevIdpConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id: "pocketgate".to_owned(),
            client_secret: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            users: default_users(),
            alg: SigningAlg::Rs256,
            internal_host: None,
            backchannel_logout_uri: None,
            introspection: true,
        }
    }
}

/// How long [`Fault::TokenHangs`] holds a token request before answering: 30 seconds, long
/// enough for any sensible client timeout to fire first, short enough to end on its own.
pub const TOKEN_HANG: Duration = Duration::from_secs(30);

/// A misbehaviour for tests, switched on with [`DevIdp::set_fault`]. ID-token faults apply to
/// tokens issued at `/api/oidc/token` while the fault is set, by the code exchange and the
/// refresh grant alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Every endpoint answers 503, as if the provider were down. Token requests (code exchange
    /// and refresh) are not processed: the code or refresh token sent stays usable.
    Unavailable,
    /// The ID token is signed by a different key that carries the real key's `kid`.
    WrongSignature,
    /// The ID token's `iss` is `http://wrong-issuer.example.test`.
    WrongIssuer,
    /// The ID token's `aud` is `some-other-client`.
    WrongAudience,
    /// The ID token expired an hour ago (`exp` = now − 1 h, `iat` and `auth_time` = now − 2 h).
    Expired,
    /// The ID token's `nonce` is a fresh random value, not the one sent to `/authorize`.
    NonceMismatch,
    /// The ID token is unsigned: header `{"alg":"none","typ":"JWT"}`, empty signature.
    AlgNone,
    /// The ID token is HS256 with the real `kid`, its HMAC key being the provider's public key
    /// as SPKI PEM text (`-----BEGIN PUBLIC KEY-----`, LF line endings, final newline), i.e.
    /// the bytes of [`DevIdp::public_key_pem`]: the classic algorithm-confusion forgery.
    Hs256WithPublicKey,
    /// The ID token is signed by a second, new key with a new `kid`. That key is added to the
    /// JWKS right after the token is issued, so a relying party holding a cached JWKS must
    /// refetch it to verify the token. The key stays published afterwards.
    UnknownKid,
    /// The ID token omits `groups`, `email` and `email_verified`; `/userinfo` still has them.
    GroupsOnlyInUserinfo,
    /// `/authorize` (and `/authorize/approve`) redirect back with `error=access_denied`, like a
    /// Pocket ID client restricted to groups the user is not in.
    DenyAuthorize,
    /// `/api/oidc/token` answers 503 (`temporarily_unavailable`, as under
    /// [`Fault::Unavailable`]) while every other endpoint works. The request is not processed:
    /// the code or refresh token sent stays usable.
    TokenUnavailable,
    /// `/api/oidc/token` holds every request for [`TOKEN_HANG`] without answering, then answers
    /// 503 as under [`Fault::TokenUnavailable`], so a client's timeout fires first. The request
    /// is not processed: the code or refresh token sent stays usable. Other endpoints work;
    /// clearing the fault does not release requests already held.
    TokenHangs,
    /// The refresh grant refuses (unknown, expired or reused token, disabled or deleted user)
    /// as Pocket ID 2.9 was seen to: `400 {"error":"Refresh token is invalid or expired"}`, a
    /// message in place of RFC 6749's `invalid_grant` code. Later releases answer
    /// `invalid_grant`.
    RefreshRefusedWithMessage,
    /// ID tokens carry no `auth_time`, as Pocket ID 2.9.0's (which honours `prompt=login`
    /// all the same): the relying party must tell a fresh sign-in by its own flow.
    NoAuthTime,
    /// `prompt=login` is ignored: an approval asked with it keeps the user's last sign-in
    /// (its `auth_time` and `amr`) instead of being a new one, like a provider that answers
    /// from its single sign-on session.
    IgnorePromptLogin,
    /// The ID token's `auth_time` lies an hour in the future.
    FutureAuthTime,
}

/// One way to break an access token built by [`DevIdp::access_token`]; everything else about
/// the token stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessTokenFlaw {
    /// Signed by a different key that carries the real key's `kid`.
    WrongSignature,
    /// Unsigned: header `{"alg":"none","typ":"JWT"}`, empty signature.
    AlgNone,
    /// HS256 with the real `kid`, keyed with the bytes of [`DevIdp::public_key_pem`].
    Hs256WithPublicKey,
    /// `iss` is `http://wrong-issuer.example.test`.
    WrongIssuer,
    /// `aud` is `some-other-client`.
    WrongAudience,
    /// Issued two hours ago, expired an hour ago.
    Expired,
}

/// What [`DevIdp::access_token`] issues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessTokenOptions {
    /// The user it is issued to.
    pub username: String,
    /// Add the user's claims (`groups`, `preferred_username`, `email`...) to the JWT; Pocket
    /// ID's own access tokens carry none, so a relying party must ask userinfo.
    pub with_user_claims: bool,
    /// `aud` instead of the client id.
    pub audience: Option<String>,
    /// An opaque token (32 random bytes, base64url) instead of a JWT.
    pub opaque: bool,
    /// Break the JWT in this one way.
    pub flaw: Option<AccessTokenFlaw>,
    /// The `amr` claim; `None`: `["phr"]`, a passkey (Pocket ID's access tokens carry `amr`).
    pub amr: Option<Vec<String>>,
    /// An `auth_time` claim (Pocket ID's access tokens carry none).
    pub auth_time: Option<u64>,
}

impl AccessTokenOptions {
    /// A valid JWT access token for `username`, as Pocket ID issues it (no user claims).
    pub fn new(username: &str) -> Self {
        AccessTokenOptions {
            username: username.to_owned(),
            ..Self::default()
        }
    }
}

/// Who [`DevIdp::backchannel_logout`] logs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutTarget<'a> {
    /// Every live session of the user with this username, oldest first.
    User(&'a str),
    /// The session with this `sid`.
    Session(&'a str),
}

/// One way to break a logout token built by [`DevIdp::logout_token`]; everything else about
/// the token stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutTokenFlaw {
    /// Signed by a different key that carries the real key's `kid` (as
    /// [`Fault::WrongSignature`]).
    WrongSignature,
    /// Unsigned: header `{"alg":"none","typ":"logout+jwt"}`, empty signature (as
    /// [`Fault::AlgNone`]).
    AlgNone,
    /// HS256 with the real `kid`, keyed with the bytes of [`DevIdp::public_key_pem`] (as
    /// [`Fault::Hs256WithPublicKey`]).
    Hs256WithPublicKey,
    /// No `events` claim.
    MissingEvents,
    /// Carries a random `nonce`, which a logout token must not.
    WithNonce,
    /// Issued ten minutes ago and expired eight minutes ago (`iat` = now − 600,
    /// `exp` = now − 480).
    Expired,
    /// `iss` is `http://wrong-issuer.example.test` (as [`Fault::WrongIssuer`]).
    WrongIssuer,
    /// `aud` is `some-other-client` (as [`Fault::WrongAudience`]).
    WrongAudience,
}

/// What [`DevIdp::logout_token`] puts in a logout token. [`LogoutTokenOptions::new`] gives a
/// valid token for one session; change fields to test a relying party's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutTokenOptions {
    /// The user whose `sub` (see [`DevUser::subject`]) the token carries; `None` leaves `sub`
    /// out. Any name works, configured or not.
    pub username: Option<String>,
    /// The `sid`; `None` leaves it out. A valid token has `sub`, `sid` or both.
    pub sid: Option<String>,
    /// The `jti`, e.g. one already sent, to test replay detection; `None` picks a fresh random
    /// one (128 bits).
    pub jti: Option<String>,
    /// The one property to break; `None` builds a valid token.
    pub flaw: Option<LogoutTokenFlaw>,
}

impl LogoutTokenOptions {
    /// A valid logout token for `username`'s session `sid`, with a fresh `jti`.
    pub fn new(username: &str, sid: &str) -> Self {
        LogoutTokenOptions {
            username: Some(username.to_owned()),
            sid: Some(sid.to_owned()),
            jti: None,
            flaw: None,
        }
    }
}

/// A username that is not configured at the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the development identity provider has no user {0:?}")]
pub struct UnknownUser(pub String);

/// Why a back-channel logout could not be built or delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackchannelLogoutError {
    /// [`DevIdpConfig::backchannel_logout_uri`] is not set.
    #[error("the development identity provider has no backchannel_logout_uri configured")]
    NotConfigured,
    /// No live session has this `sid` (never issued, or logged out already).
    #[error("the development identity provider has no live session {0:?}")]
    UnknownSession(String),
    /// The user has no live session (never signed in, or logged out already).
    #[error("user {0:?} has no live session at the development identity provider")]
    NoSession(String),
    /// The logout token could not be built or signed.
    #[error("cannot build the logout token: {0}")]
    Token(String),
    /// The POST failed without an HTTP answer (connection refused, timeout...).
    #[error("cannot deliver the logout token to {uri}: {reason}")]
    Delivery {
        /// The back-channel logout URI.
        uri: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why the development identity provider could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevIdpError {
    /// The bind address is not a loopback address.
    #[error(
        "the development identity provider listens only on loopback addresses, not {0}; \
         it signs anybody in without a password and must never be reachable from a network"
    )]
    NotLoopback(SocketAddr),
    /// The socket could not be bound or served.
    #[error("the development identity provider cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable; the message names it.
    #[error("invalid development identity provider configuration: {0}")]
    Config(String),
    /// The signing key could not be generated or encoded.
    #[error("the development identity provider cannot create its signing key: {0}")]
    Key(String),
}

/// The client registered at the provider, as validated at start.
#[derive(Debug)]
struct Client {
    id: String,
    secret: Option<String>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    backchannel_logout_uri: Option<String>,
}

/// A user as the provider knows it now: as configured, changed since, maybe disabled.
#[derive(Debug, Clone)]
struct UserState {
    user: DevUser,
    disabled: bool,
}

/// Everything the handlers share: immutable configuration plus the few pieces of mutable state.
struct Shared {
    issuer: String,
    client: Client,
    users: RwLock<Vec<UserState>>,
    keys: KeyRing,
    discovery: web::Bytes,
    store: Mutex<Store>,
    fault: RwLock<Option<Fault>>,
    /// Requests to `/api/oidc/userinfo` so far (answered or refused).
    userinfo_calls: std::sync::atomic::AtomicU64,
    /// Requests to `/api/oidc/introspect` so far (answered or refused).
    introspection_calls: std::sync::atomic::AtomicU64,
    /// How long userinfo and introspection wait before answering.
    lookup_delay: RwLock<Duration>,
}

impl Shared {
    fn fault(&self) -> Option<Fault> {
        *self.fault.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.write().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user's current state (a copy: no lock is held afterwards).
    fn user(&self, username: &str) -> Option<UserState> {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|u| u.user.username == username)
            .cloned()
    }

    /// Every user's current state, in configuration order.
    fn users(&self) -> Vec<UserState> {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update_user(
        &self,
        username: &str,
        change: impl FnOnce(&mut UserState),
    ) -> Result<(), UnknownUser> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let user = users
            .iter_mut()
            .find(|u| u.user.username == username)
            .ok_or_else(|| UnknownUser(username.to_owned()))?;
        change(user);
        Ok(())
    }
}

/// A running development identity provider. Stop it with [`DevIdp::stop`]; dropping it also
/// asks the server to stop, without waiting.
pub struct DevIdp {
    issuer: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.issuer)
            .field("fault", &self.shared.fault())
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Validates the configuration, refuses non-loopback addresses, generates a fresh signing
    /// key, binds and starts serving on the current tokio (or actix) runtime. Returns once the
    /// socket is listening.
    ///
    /// # Errors
    ///
    /// [`DevIdpError::NotLoopback`] for a non-loopback `bind`, [`DevIdpError::Config`] for an
    /// unusable configuration, [`DevIdpError::Bind`] and [`DevIdpError::Key`] when the socket
    /// or the key cannot be had.
    pub async fn start(config: DevIdpConfig) -> Result<DevIdp, DevIdpError> {
        if !config.bind.ip().is_loopback() {
            return Err(DevIdpError::NotLoopback(config.bind));
        }
        validate_config(&config)?;

        let alg = config.alg;
        let keys = tokio::task::spawn_blocking(move || KeyRing::generate(alg))
            .await
            .map_err(|e| DevIdpError::Key(e.to_string()))??;

        let bind_error = |source| DevIdpError::Bind {
            addr: config.bind,
            source,
        };
        let listener = TcpListener::bind(config.bind).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;

        let issuer = format!("http://{addr}");
        let backchannel = match &config.internal_host {
            None => issuer.clone(),
            Some(host) => internal_base(host, addr.port())?,
        };
        let discovery =
            protocol::discovery_document(&issuer, &backchannel, alg, config.introspection);

        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            client: Client {
                id: config.client_id,
                secret: config.client_secret,
                redirect_uris: config.redirect_uris,
                post_logout_redirect_uris: config.post_logout_redirect_uris,
                backchannel_logout_uri: config.backchannel_logout_uri,
            },
            users: RwLock::new(
                config
                    .users
                    .into_iter()
                    .map(|user| UserState {
                        user,
                        disabled: false,
                    })
                    .collect(),
            ),
            keys,
            discovery: web::Bytes::from(discovery.to_string()),
            store: Mutex::new(Store::default()),
            fault: RwLock::new(None),
            userinfo_calls: std::sync::atomic::AtomicU64::new(0),
            introspection_calls: std::sync::atomic::AtomicU64::new(0),
            lookup_delay: RwLock::new(Duration::ZERO),
        });

        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(middleware::from_fn(handlers::unavailable_gate))
                .configure(handlers::routes)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .map_err(bind_error)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);

        tracing::info!(
            issuer = %issuer,
            client_id = %shared.client.id,
            alg = alg.as_str(),
            "development identity provider listening (loopback only, never for production)"
        );
        Ok(DevIdp {
            issuer,
            addr,
            shared,
            handle,
            task: Some(task),
        })
    }

    /// The issuer URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The address the provider listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registered client's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.shared.client.id
    }

    /// Switches a misbehaviour on (or off with `None`) for subsequent requests.
    pub fn set_fault(&self, fault: Option<Fault>) {
        tracing::info!(?fault, "development identity provider fault set");
        self.shared.set_fault(fault);
    }

    /// The misbehaviour currently switched on.
    pub fn fault(&self) -> Option<Fault> {
        self.shared.fault()
    }

    /// The signing key's public half as SPKI PEM (the HMAC key of
    /// [`Fault::Hs256WithPublicKey`] tokens).
    pub fn public_key_pem(&self) -> &str {
        self.shared.keys.primary().public_pem()
    }

    /// Turns an authorization URL (as a relying party redirects a browser to it) into the URL
    /// that approves it as `username` without going through the picker page: same query,
    /// path `/authorize/approve`, plus `user=<username>`. `None` when `authorize_url` is not an
    /// absolute URL whose path is `/authorize`.
    pub fn approve_url(&self, authorize_url: &str, username: &str) -> Option<String> {
        let mut url = url::Url::parse(authorize_url).ok()?;
        if url.path() != "/authorize" {
            return None;
        }
        url.set_path("/authorize/approve");
        url.query_pairs_mut().append_pair("user", username);
        Some(url.into())
    }

    /// Replaces the user's groups (sent as `groups` from now on).
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn set_groups<I, S>(&self, username: &str, groups: I) -> Result<(), UnknownUser>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        tracing::info!(
            user = username,
            ?groups,
            "development identity provider: groups set"
        );
        self.shared
            .update_user(username, |u| u.user.groups = groups)
    }

    /// Replaces the user's `email` and `email_verified`.
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn set_email(
        &self,
        username: &str,
        email: &str,
        verified: bool,
    ) -> Result<(), UnknownUser> {
        self.shared.update_user(username, |u| {
            u.user.email = email.to_owned();
            u.user.email_verified = verified;
        })
    }

    /// Replaces the user's display name (`name`, `given_name`, `family_name`).
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn set_name(&self, username: &str, name: &str) -> Result<(), UnknownUser> {
        self.shared
            .update_user(username, |u| u.user.name = name.to_owned())
    }

    /// Disables the user, like an administrator can in Pocket ID: signing in is refused (the
    /// picker shows the user as disabled, approving answers 403 and the application is not
    /// contacted), and the user's codes, refresh tokens and access tokens are refused
    /// (`invalid_grant` at the token endpoint, 401 at userinfo). Nothing is deleted:
    /// [`DevIdp::enable_user`] makes the unexpired ones usable again.
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn disable_user(&self, username: &str) -> Result<(), UnknownUser> {
        tracing::info!(
            user = username,
            "development identity provider: user disabled"
        );
        self.shared.update_user(username, |u| u.disabled = true)
    }

    /// Undoes [`DevIdp::disable_user`].
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn enable_user(&self, username: &str) -> Result<(), UnknownUser> {
        self.shared.update_user(username, |u| u.disabled = false)
    }

    /// Revokes every refresh token of the user, as Pocket ID does when the user's
    /// authorization of the client is revoked: refreshing is `invalid_grant` from now on.
    /// Access tokens stay valid until they expire; sessions stay known to
    /// [`DevIdp::backchannel_logout`]. Returns how many refresh tokens were still usable.
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when no user has this username.
    pub fn revoke_refresh_tokens(&self, username: &str) -> Result<usize, UnknownUser> {
        if self.shared.user(username).is_none() {
            return Err(UnknownUser(username.to_owned()));
        }
        let revoked = self
            .shared
            .store()
            .revoke_refresh_tokens(username, protocol::now());
        tracing::info!(
            user = username,
            revoked,
            "development identity provider: refresh tokens revoked"
        );
        Ok(revoked)
    }

    /// The `sid`s of the user's live sessions, oldest first: one per sign-in whose code was
    /// redeemed, until [`DevIdp::backchannel_logout`] ends it (or 30 days pass).
    pub fn sessions(&self, username: &str) -> Vec<String> {
        self.shared.store().sessions_of(username, protocol::now())
    }

    /// Ends sessions and tells the client: for each session of `target`, POSTs
    /// `logout_token=<valid logout token>` (`application/x-www-form-urlencoded`, no redirects
    /// followed, 10 s timeout) to [`DevIdpConfig::backchannel_logout_uri`], and returns the
    /// HTTP statuses answered, one per session in order. The token is signed like ID tokens
    /// (same key, `kid` and algorithm; header `typ` is `logout+jwt`, as the specification
    /// recommends) and carries `iss`, `aud` (the client id), `iat`, `exp` (two minutes later),
    /// a random `jti`, `sub`, `sid` and
    /// `events: {"http://schemas.openid.net/event/backchannel-logout": {}}`, never `nonce`.
    ///
    /// The sessions end before the POSTs, whatever the answers. The refresh tokens of those
    /// sessions are **not** revoked (the specification's advice for `offline_access` tokens),
    /// so a test can tell that the relying party acted on the logout token itself; call
    /// [`DevIdp::revoke_refresh_tokens`] too for a logout that also ends refreshing.
    ///
    /// # Errors
    ///
    /// [`BackchannelLogoutError::NotConfigured`], [`BackchannelLogoutError::UnknownSession`],
    /// [`BackchannelLogoutError::NoSession`] before anything is sent;
    /// [`BackchannelLogoutError::Token`] and [`BackchannelLogoutError::Delivery`] (no HTTP
    /// answer) stop at the first session that fails.
    pub async fn backchannel_logout(
        &self,
        target: LogoutTarget<'_>,
    ) -> Result<Vec<u16>, BackchannelLogoutError> {
        logout::backchannel_logout(&self.shared, target).await
    }

    /// Builds a logout token as [`DevIdp::backchannel_logout`] sends it, or broken in the one
    /// way `options.flaw` names, without sending it.
    ///
    /// # Errors
    ///
    /// [`BackchannelLogoutError::Token`] when it cannot be signed.
    pub async fn logout_token(
        &self,
        options: &LogoutTokenOptions,
    ) -> Result<String, BackchannelLogoutError> {
        logout::build(&self.shared, options).await
    }

    /// POSTs `logout_token=<logout_token>` to [`DevIdpConfig::backchannel_logout_uri`] as
    /// [`DevIdp::backchannel_logout`] does, and returns the HTTP status answered. Changes
    /// nothing at the provider.
    ///
    /// # Errors
    ///
    /// [`BackchannelLogoutError::NotConfigured`], or [`BackchannelLogoutError::Delivery`]
    /// when no HTTP answer came.
    pub async fn send_logout_token(
        &self,
        logout_token: &str,
    ) -> Result<u16, BackchannelLogoutError> {
        logout::send(&self.shared, logout_token).await
    }

    /// Issues an access token as `options` say (see [`AccessTokenOptions`]); `/userinfo`
    /// answers for it until it expires.
    ///
    /// # Errors
    ///
    /// An unknown user, or a token that cannot be signed.
    pub async fn access_token(&self, options: &AccessTokenOptions) -> Result<String, String> {
        access::issue(&self.shared, options).await
    }

    /// Issues a refresh token for `username`, as the code grant with `offline_access` does:
    /// the token endpoint exchanges it, introspection answers it as Pocket ID does (active,
    /// with the client's `client_id`, no `token_type`), userinfo refuses it.
    ///
    /// # Errors
    ///
    /// An unknown user, or no randomness.
    pub fn refresh_token(&self, username: &str) -> Result<String, String> {
        access::issue_refresh(&self.shared, username)
    }

    /// How many requests `/api/oidc/userinfo` has received (while not [`Fault::Unavailable`]).
    pub fn userinfo_calls(&self) -> u64 {
        self.shared
            .userinfo_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many requests `/api/oidc/introspect` has received (while not [`Fault::Unavailable`]).
    pub fn introspection_calls(&self) -> u64 {
        self.shared
            .introspection_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes userinfo and introspection hold each request this long before answering (at
    /// most [`TOKEN_HANG`]), so a test can have several lookups in flight at once.
    pub fn set_lookup_delay(&self, delay: Duration) {
        *self
            .shared
            .lookup_delay
            .write()
            .unwrap_or_else(PoisonError::into_inner) = delay.min(TOKEN_HANG);
    }

    /// Stops accepting connections, finishes in-flight requests (for at most a second) and
    /// waits for the server to end.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::warn!(%error, "development identity provider task failed");
            }
        }
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        if self.task.is_some() {
            // Sending the command happens now; the returned future only waits for completion.
            drop(self.handle.stop(false));
        }
    }
}

/// Checks what would otherwise fail later, per request, with a less helpful message.
fn validate_config(config: &DevIdpConfig) -> Result<(), DevIdpError> {
    let invalid = |msg: String| Err(DevIdpError::Config(msg));
    if config.client_id.is_empty() {
        return invalid("client_id is empty".to_owned());
    }
    if config.client_secret.as_deref() == Some("") {
        return invalid("client_secret is empty; use None for a public client".to_owned());
    }
    if config.redirect_uris.is_empty() {
        return invalid("redirect_uris is empty; register at least one callback URL".to_owned());
    }
    let backchannel: Vec<String> = config.backchannel_logout_uri.iter().cloned().collect();
    for (key, uris) in [
        ("redirect_uris", &config.redirect_uris),
        (
            "post_logout_redirect_uris",
            &config.post_logout_redirect_uris,
        ),
        ("backchannel_logout_uri", &backchannel),
    ] {
        for uri in uris {
            match url::Url::parse(uri) {
                Ok(url) if url.fragment().is_none() && url.has_host() => {}
                Ok(_) => {
                    return invalid(format!(
                        "{key}: {uri:?} must be an absolute URL with a host and no fragment"
                    ))
                }
                Err(e) => return invalid(format!("{key}: {uri:?} is not a URL: {e}")),
            }
        }
    }
    if config.users.is_empty() {
        return invalid("users is empty; use default_users()".to_owned());
    }
    for (i, user) in config.users.iter().enumerate() {
        if user.username.is_empty() {
            return invalid(format!("users[{i}] has an empty username"));
        }
        if config.users[..i]
            .iter()
            .any(|u| u.username == user.username)
        {
            return invalid(format!("users: username {:?} appears twice", user.username));
        }
    }
    Ok(())
}

/// The base URL of the back-channel endpoints when `internal_host` is set.
fn internal_base(host: &str, port: u16) -> Result<String, DevIdpError> {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let base = format!("http://{host}:{port}");
    match url::Url::parse(&base) {
        Ok(url)
            if url.path() == "/"
                && url.host_str().is_some()
                && url.port_or_known_default() == Some(port) =>
        {
            Ok(base)
        }
        _ => Err(DevIdpError::Config(format!(
            "internal_host {host:?} is not a plain host name or IP address"
        ))),
    }
}
