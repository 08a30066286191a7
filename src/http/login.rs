//! `/login`, `/callback`, `/logout`, `/logout/done` and the small page at `/`.
//!
//! Each handler extracts its inputs, calls the flow's checks in
//! `oidc::flow` and the provider client, and hands refusals to `respond`.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use cookie::{time, Cookie, SameSite};
use serde::Deserialize;

use super::metrics::{BadRequestEndpoint, LoginEvent};
use super::pages::escape;
use super::respond::{self, Client, Rejection};
use super::State;
use super::{cookie_values, now, AppState, FLOW_LIFETIME};
use crate::audit;
use crate::config::{LoginDomain, Runtime};
use crate::domain::ClientAddr;
use crate::oidc::flow::{self, CallbackParams};
use crate::request;
use crate::session::{
    flow_cookie_name, flow_cookie_prefix, logout_hint_cookie_name, CreateError, Current, FlowState,
    LoginContext, Tokens,
};

mod step_up;

#[derive(Deserialize)]
pub(super) struct RdQuery {
    rd: Option<String>,
    /// `/login?...&again=1`: start a fresh step-up even if one is pending.
    again: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The page for a refusal on a browser endpoint, counted when it is a bad request.
fn refuse(state: &AppState, endpoint: BadRequestEndpoint, rejection: &Rejection) -> HttpResponse {
    if let Some(reason) = rejection.bad_request_reason() {
        state.metrics.bad_request(endpoint, reason);
    }
    respond::reject_to(
        rejection,
        Client::Browser,
        state.runtime.support_contact.as_deref(),
    )
}

/// The browser's address, as `/forward-auth` reads it: the proxy's address
/// is not the browser's, so `X-Forwarded-For` counts from `trusted_proxies`.
fn client_address(req: &HttpRequest, rt: &Runtime) -> Option<String> {
    super::peer_ip(req)
        .map(|ip| request::client_of(req.headers(), ip, &rt.trusted_proxies).to_string())
}

/// Login flows kept per browser at once (each one cookie).
const MAX_PARALLEL_FLOWS: usize = 4;

/// The login domain whose public host this request was sent to (the
/// proxy's `X-Forwarded-Host` or `Host`), else the main one. It only ever
/// picks among configured domains.
fn served_domain<'r>(req: &HttpRequest, rt: &'r Runtime) -> &'r LoginDomain {
    let host = request::served_host(req.headers(), super::peer_ip(req), &rt.trusted_proxies);
    rt.login_domain_served_at(host.as_deref())
}

/// `rd` checked against the configuration, or the served domain's
/// `public_url` when absent.
fn target(rt: &Runtime, served: &LoginDomain, rd: Option<&str>) -> Result<String, Rejection> {
    match rd {
        Some(rd) => flow::validate_rd(rt, rd).map_err(|why| {
            if why == flow::NOT_COVERED {
                let host = url::Url::parse(rd)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                tracing::warn!(host = %host, "sign-in refused for {host}: it is under no cookie domain of this configuration and has no [[hosts]] entry, so no session cookie could reach it and every sign-in would start again (a \"portal loop\"); fix: serve it under cookie_domain, add a [[session.domains]] entry for its domain, or stop sending it to pocketgate");
            }
            Rejection::Redirect {
                rd: rd.to_string(),
                why,
            }
        }),
        None => Ok(format!("{}/", served.public_url.origin)),
    }
}

/// A cookie with pocketgate's attributes but no `Domain`: flow cookies
/// belong to the login host they were set on alone (`secure`: its public
/// URL is https; a `__Host-` name is always `Secure`, or browsers drop it).
fn host_cookie(
    secure: bool,
    name: String,
    value: String,
    max_age: time::Duration,
) -> Cookie<'static> {
    let secure = secure || name.starts_with("__Host-");
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(secure);
    c.set_max_age(max_age);
    c
}

fn set_cookie(resp: &mut HttpResponseBuilder, c: &Cookie<'_>) {
    resp.append_header((header::SET_COOKIE, c.to_string()));
}

pub(super) async fn login(req: HttpRequest, state: State, q: web::Query<RdQuery>) -> HttpResponse {
    let served = served_domain(&req, &state.runtime);
    if let Err(e) = state.provider.reachable().await {
        tracing::warn!(error = %e, "sign-in not started: the identity provider does not answer");
        return refuse(
            &state,
            BadRequestEndpoint::Login,
            &Rejection::ProviderUnavailable(e),
        );
    }
    // The session as the return address's host sees it (its idle_timeout
    // and lifetime), so that `/login` never sends back to a host that
    // would send here again. A store that cannot answer leaves an
    // ordinary sign-in: never an allow.
    let shape =
        q.rd.as_deref()
            .and_then(|rd| request::parse_absolute_url(rd).ok())
            .map(|url| {
                let rt = &state.runtime;
                rt.session.shape_for(&rt.rules.lookup_host(&url.host))
            })
            .unwrap_or_default();
    let current = state.session_on(req.headers(), shape).await.ok().flatten();
    let ask = Ask {
        rd: q.rd.as_deref(),
        again: q.again.is_some(),
        client: super::peer_ip(&req)
            .map(|ip| request::client_of(req.headers(), ip, &state.runtime.trusted_proxies))
            .map(ClientAddr::new),
        current: current.as_ref(),
    };
    match start_login(req.headers(), &state, served, ask) {
        Ok(resp) => resp,
        Err(rejection) => refuse(&state, BadRequestEndpoint::Login, &rejection),
    }
}

/// What `/login` was asked, and by whom.
struct Ask<'a> {
    rd: Option<&'a str>,
    /// `again=1`: drop a pending step-up for `rd` and start afresh.
    again: bool,
    /// The browser's address (as `/forward-auth` reads it).
    client: Option<ClientAddr>,
    /// The browser's session, if it has one.
    current: Option<&'a Current>,
}

/// A new flow on the login domain `served` (the host the request came to):
/// state, nonce, PKCE verifier and the domain's redirect URI sealed into a
/// cookie named after the state, and a redirect to the provider. A return
/// address of another login domain goes to that domain's `/login` first, so
/// that the flow cookie, the callback and the session cookie all land there.
fn start_login(
    headers: &HeaderMap,
    state: &AppState,
    served: &LoginDomain,
    ask: Ask<'_>,
) -> Result<HttpResponse, Rejection> {
    let rt = &state.runtime;
    let rd = target(rt, served, ask.rd)?;
    let home = flow::rd_login_domain(rt, &rd);
    if home.public_url.origin != served.public_url.origin {
        let there = format!(
            "{}/login?rd={}",
            home.public_url.origin,
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        return Ok(respond::found(&there).finish());
    }
    let now = now();
    let step_up = match step_up::need(state, &rd, &ask, now) {
        step_up::Need::Met => return Ok(respond::found(&rd).finish()),
        step_up::Need::Plain => None,
        step_up::Need::StepUp(s) => Some(s),
    };
    let rd = flow::fit_rd(rd);
    let secure = served.public_url.https;
    // The flows this browser has under way, newest last seen first.
    let prefix = flow_cookie_prefix(&state.cookie.name, secure);
    let flows: Vec<(&str, Option<FlowState>)> = cookie_values(headers, |n| n.starts_with(&prefix))
        .into_iter()
        .map(|(name, value)| (name, FlowState::open(&state.keys, value, now).ok()))
        .collect();
    // A step-up for this address still pending: the last one never came
    // back (the provider's page failed, or the person went back). Asking
    // again would loop; the page says so and offers a fresh try.
    let pending = |f: &FlowState| f.step_up.is_some() && f.rd == rd;
    if step_up.is_some() && !ask.again && flows.iter().any(|(_, f)| f.as_ref().is_some_and(pending))
    {
        return Ok(step_up::not_completed(state, &rd, ask.current));
    }
    let token = || kit::random_token(32).map_err(Rejection::NoRandomness);
    let redirect_uri = served.redirect_uri();
    let flow = FlowState {
        state: token()?,
        nonce: token()?,
        pkce_verifier: token()?,
        rd: rd.clone(),
        redirect_uri: Some(redirect_uri.clone()),
        expires: now + FLOW_LIFETIME.as_secs(),
        step_up,
    };
    let url = state
        .provider
        .authorization_url(
            &redirect_uri,
            &flow.state,
            &flow.nonce,
            &flow.pkce_verifier,
            flow.step_up.as_ref(),
        )
        .map_err(Rejection::ProviderUnavailable)?;
    state.metrics.login(LoginEvent::Started);
    let mut resp = respond::found(&url);
    // Drop flow cookies of abandoned logins: those that no longer open, a
    // pending step-up for this address on `again=1`, and all but the newest
    // few, so that many tabs cannot grow the Cookie header past what
    // proxies accept.
    let mut live: Vec<(u64, &str)> = flows
        .into_iter()
        .map(|(name, f)| {
            let expires = f
                .filter(|f| !(ask.again && pending(f)))
                .map_or(0, |f| f.expires);
            (expires, name)
        })
        .collect();
    live.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    for (i, (expires, name)) in live.into_iter().enumerate() {
        // Keep room for the flow being started now.
        if expires == 0 || i >= MAX_PARALLEL_FLOWS - 1 {
            let gone = host_cookie(
                secure,
                name.to_string(),
                String::new(),
                time::Duration::ZERO,
            );
            set_cookie(&mut resp, &gone);
        }
    }
    let name = flow_cookie_name(&state.cookie.name, secure, &flow.state);
    let max_age = time::Duration::seconds(FLOW_LIFETIME.as_secs() as i64);
    set_cookie(
        &mut resp,
        &host_cookie(secure, name, flow.seal(&state.keys), max_age),
    );
    Ok(resp.finish())
}

pub(super) async fn callback(
    req: HttpRequest,
    state: State,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    let params = CallbackParams {
        code: q.code.as_deref(),
        state: q.state.as_deref(),
        iss: q.iss.as_deref(),
        error: q.error.as_deref(),
        error_description: q.error_description.as_deref(),
    };
    let served = served_domain(&req, &state.runtime);
    // Over https only the `__Host-` name is read: a flow cookie another
    // host under the cookie domain planted under the plain name is ignored.
    let flow_cookie = flow::callback_state(&params)
        .ok()
        .map(|s| flow_cookie_name(&state.cookie.name, served.public_url.https, s));
    let context = LoginContext {
        client: client_address(&req, &state.runtime),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let trail = audit::Context::http(&req, &state.runtime.trusted_proxies);
    match complete_sign_in(
        req.headers(),
        &state,
        served,
        &params,
        flow_cookie.as_deref(),
        context,
        &trail,
    )
    .await
    {
        Ok(resp) => resp,
        Err(rejection) => {
            audit::login_failed(&trail, &rejection.to_string());
            state.metrics.login(LoginEvent::Failed);
            let mut resp = refuse(&state, BadRequestEndpoint::Callback, &rejection);
            // A failed callback spends its flow.
            if let Some(name) = flow_cookie {
                spend(&mut resp, served.public_url.https, name);
            }
            resp
        }
    }
}

/// Clear the flow cookie `name` on a response already built.
fn spend(resp: &mut HttpResponse, secure: bool, name: String) {
    let gone = host_cookie(secure, name, String::new(), time::Duration::ZERO);
    if let Ok(v) = header::HeaderValue::from_str(&gone.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Check the provider's answer against this browser's flow, exchange the
/// code with the flow's redirect URI, and set the session (replacing any
/// earlier one: no fixation) for the login domain the flow started on.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, every argument named there"
)]
async fn complete_sign_in(
    headers: &HeaderMap,
    state: &AppState,
    served: &LoginDomain,
    params: &CallbackParams<'_>,
    flow_cookie: Option<&str>,
    context: LoginContext,
    trail: &audit::Context<'_>,
) -> Result<HttpResponse, Rejection> {
    let rt = &state.runtime;
    let flow = flow_cookie.and_then(|name| {
        let (_, value) = cookie_values(headers, |n| n == name).into_iter().next()?;
        FlowState::open(&state.keys, value, now())
            .map_err(|why| tracing::debug!(cookie = name, %why, "flow cookie refused"))
            .ok()
    });
    let retry = flow
        .as_ref()
        .filter(|f| params.state == Some(f.state.as_str()))
        .map(|f| f.rd.clone());
    let (code, flow) = flow::check_callback(
        params,
        flow,
        state.provider.issuer(),
        state.provider.iss_required(),
    )
    .map_err(|error| Rejection::Flow {
        error,
        retry: retry.clone(),
    })?;
    // The flow cookie is host-only, so it came back to the host it was set
    // on; its sealed redirect URI names that domain even if the configuration
    // changed since (then the served one decides the cookie's attributes).
    let redirect_uri = flow
        .redirect_uri
        .clone()
        .unwrap_or_else(|| rt.login_domains.main().redirect_uri());
    let domain = rt
        .login_domains
        .iter()
        .find(|d| d.redirect_uri() == redirect_uri)
        .unwrap_or(served);
    let mut sign_in = state
        .provider
        .complete(&redirect_uri, code, &flow.pkce_verifier, &flow.nonce)
        .await
        .map_err(|error| Rejection::SignIn { error, retry })?;
    state.refuse_disabled(&sign_in.identity).await?;
    let signed = &mut sign_in.identity.sign_in;
    signed.auth_time = step_up::sign_in_time(signed.auth_time, flow.step_up.is_some(), now());
    // A step-up's sign-in that does not meet what the flow asked changes
    // nothing: the page says what is missing (never a redirect back: the loop).
    let current = match &flow.step_up {
        Some(asked) => {
            let current = state.session(headers).await?;
            if let Some(mut page) =
                step_up::not_met(state, &flow.rd, asked, &sign_in.identity, current.as_ref())
            {
                state.metrics.login(LoginEvent::Failed);
                let name = flow_cookie.map_or_else(
                    || flow_cookie_name(&state.cookie.name, served.public_url.https, &flow.state),
                    str::to_string,
                );
                spend(&mut page, domain.public_url.https, name);
                return Ok(page);
            }
            current
        }
        None => None,
    };
    let present = state.session_cookie_names(headers);
    let client = context.client.clone().unwrap_or_default();
    let user = sign_in.identity.user.clone();
    let subject = sign_in.identity.subject.clone();
    let groups = sign_in.identity.groups.clone();
    let provider = &state.provider;
    if groups.is_empty()
        && provider.groups_claim() == "groups"
        && !provider.asks_for_scope("groups")
    {
        tracing::warn!(user = %user, "signed in with no \"groups\" claim: oidc.scopes lacks \"groups\", and Pocket ID sends the claim only for that scope, so every allowed_groups policy denies this user; add \"groups\" to oidc.scopes");
    }
    if sign_in.refresh_token.is_none() && rt.session.refresh_interval.is_some() {
        tracing::info!(user = %user, "the provider issued no refresh token: this session keeps the identity of its login until it ends");
    }
    let tokens = Tokens {
        id_token: Some(sign_in.id_token),
        refresh_token: sign_in.refresh_token,
        sid: sign_in.sid,
    };
    let not_stored = |e| match e {
        CreateError::TooLarge(e) => Rejection::SessionTooLarge(e),
        other => Rejection::SessionNotStored(other),
    };
    // A step-up of the same user: the same session carries the new sign-in.
    let (identity, tokens, renewed) = match current {
        Some(c) if c.session.identity.subject == sign_in.identity.subject => step_up::renew(
            state,
            &c,
            &state.cookie_for(domain),
            sign_in.identity,
            tokens,
            &present,
        )
        .await
        .map_err(not_stored)?,
        _ => (sign_in.identity, tokens, None),
    };
    let cookies = match renewed {
        Some(cookies) => cookies,
        None => state
            .sessions
            .create(
                &state.cookie_for(domain),
                identity,
                tokens,
                context,
                rt.session.lifetime,
                now(),
                &present,
            )
            .await
            .map_err(not_stored)?,
    };
    tracing::info!(user = %user, groups = ?groups, %client, "signed in");
    let key = audit::key_in(&state.keys, &state.cookie.name, &cookies);
    audit::login(
        &trail
            .clone()
            .signed_in(&user, &subject)
            .session(key.as_ref()),
    );
    state.metrics.login(LoginEvent::Completed);
    let mut resp = respond::found(&flow.rd);
    for c in &cookies {
        set_cookie(&mut resp, c);
    }
    // Spend the flow: clear the very cookie it was read from.
    let name = flow_cookie.map_or_else(
        || flow_cookie_name(&state.cookie.name, served.public_url.https, &flow.state),
        str::to_string,
    );
    set_cookie(
        &mut resp,
        &host_cookie(
            domain.public_url.https,
            name,
            String::new(),
            time::Duration::ZERO,
        ),
    );
    Ok(resp.finish())
}

pub(super) async fn logout(req: HttpRequest, state: State, q: web::Query<RdQuery>) -> HttpResponse {
    sign_out(&req, &state, q.rd.as_deref()).await
}

/// `POST /logout`, as the confirmation page sends it: `rd` from the form
/// (else the query). Asked from another site, it is confirmed again.
pub(super) async fn logout_post(
    req: HttpRequest,
    state: State,
    q: web::Query<RdQuery>,
    form: Option<web::Form<RdQuery>>,
) -> HttpResponse {
    let rd = form
        .and_then(|f| f.into_inner().rd)
        .or_else(|| q.rd.clone());
    sign_out(&req, &state, rd.as_deref()).await
}

/// End this browser's session and clear its cookies, then go to `rd` (by
/// way of the provider's RP-initiated logout when it offers one) — unless
/// another site sent the browser here: then a page asks first.
async fn sign_out(req: &HttpRequest, state: &AppState, rd: Option<&str>) -> HttpResponse {
    let rt = &state.runtime;
    let served = served_domain(req, rt);
    let rd = match target(rt, served, rd) {
        Ok(rd) => rd,
        Err(rejection) => return refuse(state, BadRequestEndpoint::Logout, &rejection),
    };
    let headers = req.headers();
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if flow::logout_is_cross_site(rt, header_str("sec-fetch-site"), header_str("origin")) {
        tracing::info!("sign-out asked by another site: confirmation page");
        return respond::confirm_logout(&rd);
    }
    let store_down = |e| {
        refuse(
            state,
            BadRequestEndpoint::Logout,
            &Rejection::StoreUnavailable(e),
        )
    };
    let current = match state.session(headers).await {
        Ok(c) => c,
        Err(e) => return store_down(e),
    };
    let hint_name = logout_hint_cookie_name(&state.cookie.name);
    let hint = cookie_values(headers, |n| n == hint_name)
        .into_iter()
        .next()
        .map(|(_, v)| v);
    let ended = match state.sessions.end(current.as_ref(), hint, now()).await {
        Ok(e) => e,
        Err(e) => return store_down(e),
    };
    let clear = state.sessions.clearing(
        &state.cookie_for(served),
        &state.session_cookie_names(headers),
    );
    state.metrics.login(LoginEvent::Logout);
    if let Some(user) = &ended.user {
        let client = client_address(req, rt).unwrap_or_default();
        tracing::info!(user = %user, %client, "signed out");
        audit::logout(&audit::Context::http(req, &rt.trusted_proxies).current(current.as_ref()));
    }
    // RP-initiated logout at the provider when it offers it; it returns to /logout/done, which goes on to rd.
    let target = ended
        .id_token
        .and_then(|id_token| {
            state
                .provider
                .end_session_url(Some(&id_token), &served.logout_done_uri(), Some(&rd))
        })
        .unwrap_or(rd);
    let mut resp = respond::found(&target);
    for c in &clear {
        set_cookie(&mut resp, c);
    }
    resp.finish()
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    state: Option<String>,
}

/// Where the provider sends the browser after RP-initiated logout; `state` carries the `rd`.
pub(super) async fn logout_done(state: State, q: web::Query<DoneQuery>) -> HttpResponse {
    match q
        .state
        .as_deref()
        .map(|rd| flow::validate_rd(&state.runtime, rd))
    {
        Some(Ok(rd)) => respond::found(&rd).finish(),
        _ => respond::html(StatusCode::OK, "Signed out", "<p>You are signed out.</p>"),
    }
}

pub(super) async fn index(req: HttpRequest, state: State) -> HttpResponse {
    let body = match state.session(req.headers()).await.ok().flatten().map(|c| c.session) {
        Some(s) => format!(
            "<p>Signed in as <strong>{}</strong>{}.</p><p>Groups: {}</p><p><a href=\"/logout\">Sign out</a></p>",
            escape(&s.identity.user),
            s.identity.email.as_deref().map(|e| format!(" ({})", escape(e))).unwrap_or_default(),
            if s.identity.groups.is_empty() { "none".into() } else { escape(&s.identity.groups.join(", ")) }
        ),
        None => "<p>Not signed in.</p><p><a href=\"/login\">Sign in</a></p>".into(),
    };
    respond::html(StatusCode::OK, "pocketgate", &body)
}
