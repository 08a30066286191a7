//! `/login` and `/callback` under step-up: whether a sign-in for a return
//! address is a step-up (asked of the policy, never of the query), the page
//! when a step-up for it is still pending or its sign-in fell short, and
//! the same session taking the fresh sign-in over.

use cookie::Cookie;

use super::super::respond::{lack_sentence, StepUpPage};
use super::super::AppState;
use super::Ask;
use crate::domain::ClientAddr;
use crate::gate::{self, LoginNeed};
use crate::oidc::step_up::{missing, requirement};
use crate::policy::Identity;
use crate::session::{CookieSettings, CreateError, Current, FlowStepUp, Tokens};
use actix_web::HttpResponse;

pub(super) use crate::oidc::step_up::sign_in_time;

/// What `/login` does for a return address.
pub(super) enum Need {
    /// An ordinary sign-in.
    Plain,
    /// The session already meets what the address asks: back to it.
    Met,
    /// A step-up flow asking this.
    StepUp(FlowStepUp),
}

/// Route `rd` through the policy as a `GET` from the browser, with its session.
pub(super) fn need(state: &AppState, rd: &str, ask: &Ask<'_>, now: u64) -> Need {
    let client = ask
        .client
        .unwrap_or_else(|| ClientAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into()));
    let identity = ask.current.map(|c| &*c.session.identity);
    match gate::login_need(&state.runtime, rd, client, identity, now) {
        LoginNeed::Plain => Need::Plain,
        LoginNeed::Met => Need::Met,
        LoginNeed::StepUp(req, missing) => {
            let user = identity.map(|i| i.user.as_str()).unwrap_or_default();
            tracing::info!(user, rd, missing = ?missing.keys(), "step-up: a fresh sign-in is asked");
            Need::StepUp(FlowStepUp {
                max_age: req.max_age,
                amr: req.amr.clone(),
                started: now,
            })
        }
    }
}

/// The step-up page's frame for `rd`: its host, the links, the signed-in user.
fn page<'a>(state: &'a AppState, rd: &str, user: Option<&'a str>, lack: String) -> StepUpPage<'a> {
    let enc = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>();
    let host = url::Url::parse(rd)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    StepUpPage {
        host,
        user,
        lack,
        again: format!("/login?rd={enc}&again=1"),
        sign_out: format!("/logout?rd={enc}"),
        support: state.runtime.support_contact.as_deref(),
    }
}

/// A step-up for `rd` is still pending in this browser: its sign-in was
/// never completed. The page, with a fresh try (`again=1`).
pub(super) fn not_completed(state: &AppState, rd: &str, current: Option<&Current>) -> HttpResponse {
    let user = current.map(|c| c.session.identity.user.as_str());
    tracing::info!(
        user = user.unwrap_or_default(),
        rd,
        "step-up: the last sign-in for this page was not completed; not asked again"
    );
    let lack = "The sign-in for this page was not completed: the identity provider did not come back with a fresh sign-in (for example, the passkey prompt was cancelled or failed). Try again, or sign in as someone else.".to_string();
    page(state, rd, user, lack).respond()
}

/// The page when a step-up flow's fresh sign-in (`identity`) does not meet
/// what the flow asked; `None` when it does.
pub(super) fn not_met(
    state: &AppState,
    rd: &str,
    asked: &FlowStepUp,
    identity: &Identity,
    current: Option<&Current>,
) -> Option<HttpResponse> {
    let lacks = missing(asked, &identity.sign_in);
    if lacks.is_met() {
        return None;
    }
    tracing::info!(user = %identity.user, rd, missing = ?lacks.keys(), amr = ?identity.sign_in.amr, "step-up: the fresh sign-in does not meet the page's requirement; the session is unchanged");
    let lack = lack_sentence(&requirement(asked), lacks, &identity.sign_in.amr);
    let user = current
        .map(|c| c.session.identity.user.as_str())
        .or(Some(identity.user.as_str()));
    Some(page(state, rd, user, lack).respond())
}

/// Give the request's session `current` the fresh sign-in: the identity and
/// tokens back with the cookies to set, or with `None` when the session
/// ended meanwhile (then the caller starts a new one with them).
pub(super) async fn renew(
    state: &AppState,
    current: &Current,
    cookie: &CookieSettings,
    identity: Identity,
    tokens: Tokens,
    present: &[&str],
) -> Result<(Identity, Tokens, Option<Vec<Cookie<'static>>>), CreateError> {
    let kept = Tokens {
        id_token: tokens.id_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        sid: tokens.sid.clone(),
    };
    let cookies = state
        .sessions
        .renew(current, cookie, identity.clone(), tokens, present)
        .await?;
    if cookies.is_some() {
        tracing::info!(user = %identity.user, "step-up: the session carries the fresh sign-in");
    }
    Ok((identity, kept, cookies))
}
