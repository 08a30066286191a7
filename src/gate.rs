//! One request's whole answer, without actix: the identity when the decision
//! needs one (the session, else a bearer token), the decision, and what the
//! backend receives on an allow (the host's header names, the assertion).
//!
//! `/forward-auth`, `/auth-request` and the demo pages all call [`decide`]:
//! they read the request, hand over what they read, and let `http::respond`
//! turn the [`Verdict`] (or the [`GateError`]) into a response. Nothing here
//! reads headers or builds responses, and the clock comes in as an argument.
//! Refreshing a session's identity runs in the background of the server, so
//! the verdict only says when one is due ([`Verdict::refresh_due`]).

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use tracing::Instrument;

use crate::assertion::{self, AssertionError, Assertions};
use crate::config::{HeaderNames, PublicUrl, Runtime, SessionShape};
use crate::oidc::bearer::{BearerAuth, BearerError, Credential, Source};
use crate::policy::{self, Decision, Identity, Outcome, RequestFacts, Route, Rules};
use crate::request::{OriginalRequest, Scheme};
use crate::scim::{self, Directory};
use crate::session::store::StoreError;
use crate::session::{Current, Sessions};

/// The services a decision may ask, borrowed from the configuration in force.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    /// Opens session cookies (and looks them up in the store).
    pub sessions: &'a Sessions,
    /// `[bearer]`, when enabled.
    pub bearer: Option<&'a BearerAuth>,
    /// `[assertion]`, when a header is set.
    pub assertion: Option<&'a Assertions>,
    /// `[scim]`: the directory's word on users it knows.
    pub directory: Option<&'a Directory>,
}

/// What the request carries that may name a user, as read from its headers.
#[derive(Debug)]
pub struct Credentials<'a> {
    /// The session cookie's family (name, value), in the order sent.
    pub session: &'a [(&'a str, &'a str)],
    /// The `Authorization` header as RFC 6750 reads it; looked at only with
    /// `[bearer]` enabled and no session.
    pub bearer: Credential<'a>,
}

/// Who the request is, and where that came from.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per request, on the stack: boxing the session would allocate on the hot path"
)]
pub enum Identified {
    /// A live session.
    Session(Current),
    /// A bearer token, and how it was checked (the metrics' label).
    Bearer(Arc<Identity>, Source),
}

impl Identified {
    /// The identity.
    pub fn identity(&self) -> &Identity {
        match self {
            Identified::Session(c) => &c.session.identity,
            Identified::Bearer(identity, _) => identity,
        }
    }
}

/// Why a request gets no decision: an answer that is not the policy's.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The session store cannot answer: never a login loop, never an allow.
    #[error("session store unavailable: {0}")]
    Store(#[from] StoreError),
    /// The bearer token is refused, or cannot be checked now.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// The identity assertion could not be signed.
    #[error(transparent)]
    Assertion(#[from] AssertionError),
}

/// The decision with everything its answer needs.
#[derive(Debug)]
pub struct Verdict<'a> {
    /// The engine's decision (outcome, host, rule).
    pub decision: Decision<'a>,
    /// The identity, when the decision needed one and the request had one.
    pub identified: Option<Identified>,
    /// The names of the identity headers: the host's `[hosts.headers]`, else `[headers]`.
    pub names: &'a HeaderNames,
    /// Where the login for the request's host runs: the public URL of the
    /// login domain whose cookie that host sees.
    pub public_url: &'a PublicUrl,
    /// The signed assertion of an allow, with its header name.
    pub assertion: Option<(&'a HeaderName, HeaderValue)>,
    /// The request decided about.
    pub original: &'a OriginalRequest<'a>,
    /// `support_contact`: whom a refused person should ask.
    pub support_contact: Option<&'a str>,
    rules: &'a Rules,
}

impl Verdict<'_> {
    /// Allow, bypass, login, deny or step-up.
    pub fn outcome(&self) -> Outcome {
        self.decision.outcome
    }

    /// The identity the decision was made for.
    pub fn identity(&self) -> Option<&Identity> {
        self.identified.as_ref().map(Identified::identity)
    }

    /// How a bearer token was accepted, when one decided.
    pub fn bearer_source(&self) -> Option<Source> {
        match self.identified {
            Some(Identified::Bearer(_, source)) => Some(source),
            _ => None,
        }
    }

    /// The session, when its identity is due for a refresh.
    pub fn refresh_due(&self) -> Option<&Current> {
        match &self.identified {
            Some(Identified::Session(c)) if c.refresh_due => Some(c),
            _ => None,
        }
    }

    /// Why, in a sentence (for a deny page and the demo).
    pub fn reason(&self) -> String {
        self.decision
            .reason(self.rules, &self.original.facts(), self.identity())
    }
}

/// Decide `original` under `runtime` at `now` (unix seconds). The policy
/// runs once; the session (then the bearer token) is looked at only when
/// the decision reaches its identity step, so bypasses, trusted networks
/// and unknown hosts never touch the cookie, the store or the provider.
pub async fn decide<'a>(
    original: &'a OriginalRequest<'a>,
    runtime: &'a Runtime,
    services: Services<'a>,
    credentials: Credentials<'_>,
    now: u64,
) -> Result<Verdict<'a>, GateError> {
    let facts = original.facts();
    let (decision, identified) = match policy::route(&runtime.rules, &facts) {
        Route::Decided(decision) => (decision, None),
        Route::NeedsIdentity(pending) => {
            let shape = runtime.session.shape_for(&pending.host());
            let identified =
                identify(services, credentials, original.client.ip(), now, shape).await?;
            let identity = identified.as_ref().map(Identified::identity);
            (pending.judge(identity, now), identified)
        }
    };
    let identity = identified.as_ref().map(Identified::identity);
    log(&runtime.rules, original, &facts, &decision, identity);
    // Signed (or taken from the cache) only for an allow with identity: a
    // bypass or a trusted network never carries one.
    let assertion = match (services.assertion, identity, decision.outcome) {
        (Some(a), Some(user), Outcome::Allow) => {
            let audience =
                assertion::audience(original.scheme == Scheme::Https, &original.authority);
            Some((a.header(), a.assertion(user, &audience, now)?))
        }
        _ => None,
    };
    Ok(Verdict {
        names: runtime.headers_for(&decision.host),
        public_url: &runtime.login_domain_for(&original.host).public_url,
        decision,
        identified,
        assertion,
        original,
        support_contact: runtime.support_contact.as_deref(),
        rules: &runtime.rules,
    })
}

/// The request's identity: its session (with the `shape` its host asks
/// for), else (with `[bearer]`) its token. A request carrying both is
/// decided by its session.
async fn identify(
    services: Services<'_>,
    credentials: Credentials<'_>,
    client: IpAddr,
    now: u64,
    shape: SessionShape,
) -> Result<Option<Identified>, GateError> {
    if !credentials.session.is_empty() {
        // In a span only when traces are on, and made where it is awaited
        // (a wrapped or named future is moved: copies on every request).
        let span = crate::telemetry::otel::store_span();
        let sessions = services.sessions;
        let current = if span.is_disabled() {
            sessions.current_on(credentials.session, now, shape).await
        } else {
            sessions
                .current_on(credentials.session, now, shape)
                .instrument(span)
                .await
        }
        .inspect_err(|e| tracing::warn!(error = %e, "session store unavailable"))?;
        let current = scim::adjust(services.directory, services.sessions, current, now).await;
        if let Some(current) = current {
            return Ok(Some(Identified::Session(current)));
        }
    }
    let Some(bearer) = services.bearer else {
        return Ok(None);
    };
    match credentials.bearer {
        Credential::None => Ok(None),
        Credential::Malformed(e) => Err(BearerError::Invalid(e).into()),
        Credential::Bearer(token) => {
            let (identity, source) = bearer.authenticate(token, client).await?;
            Ok(Some(Identified::Bearer(identity, source)))
        }
    }
}

/// One line per decision, with its rule and the reason in words (which
/// names the fix for the common mistakes, e.g. an API bypass refused to a
/// client outside `allowed_networks`, or what a step-up's sign-in lacks):
/// every deny and step-up at info, the rest at debug.
fn log(
    rules: &Rules,
    original: &OriginalRequest<'_>,
    facts: &RequestFacts<'_>,
    decision: &Decision<'_>,
    identity: Option<&Identity>,
) {
    let at_info = matches!(decision.outcome, Outcome::Deny | Outcome::StepUp);
    if !at_info && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let rule = decision.rule_name();
    let reason = decision.reason(rules, facts, identity);
    let user = identity.map(|i| i.user.as_str()).unwrap_or("");
    let (host, path, client) = (&original.host, original.path, &original.client);
    if at_info {
        tracing::info!(%host, %path, %client, user, outcome = decision.outcome.as_str(), rule, reason, "decision");
    } else {
        tracing::debug!(%host, %path, %client, user, outcome = decision.outcome.as_str(), rule, reason, "decision");
    }
}

mod step_up;
pub use step_up::{login_need, LoginNeed};

#[cfg(test)]
mod tests;
