//! The label values of `/metrics`: closed sets, so the number of series stays
//! bounded whatever clients send, and every series can be created up front.
//!
//! Not for: counting. [`super::Metrics`] holds the counters these label.

use std::fmt::{self, Write as _};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::request::RequestError;

/// Declares a closed set of label values: the enum (its variants numbered from
/// 0, the index of their series), `ALL` in that order, `as_str` and the
/// encoding as that string.
macro_rules! label_values {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub(super) const ALL: [$name; [$($value),+].len()] = [$($name::$variant),+];

            /// The label value, as dashboards see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// Which auth endpoint answered: the `endpoint` label of
    /// `pocketgate_decisions_total`, the path without its slash.
    pub enum Endpoint {
        ForwardAuth => "forward-auth",
        AuthRequest => "auth-request",
    }
}

label_values! {
    /// Every endpoint that refuses bad input with a 400: the `endpoint` label of
    /// `pocketgate_bad_requests_total`, the path without its slash.
    pub enum BadRequestEndpoint {
        ForwardAuth => "forward-auth",
        AuthRequest => "auth-request",
        Login => "login",
        Logout => "logout",
        Callback => "callback",
    }
}

impl From<Endpoint> for BadRequestEndpoint {
    fn from(e: Endpoint) -> Self {
        match e {
            Endpoint::ForwardAuth => BadRequestEndpoint::ForwardAuth,
            Endpoint::AuthRequest => BadRequestEndpoint::AuthRequest,
        }
    }
}

/// Why a request was refused as bad input (400): the `reason` label of
/// `pocketgate_bad_requests_total`. A closed set, so the series stay bounded
/// whatever clients send.
// The derive writes each variant's name as its label value, verbatim: the
// names are spelled as the values dashboards see.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum BadRequestReason {
    /// The connection has no peer address to check against `trusted_proxies`.
    no_peer = 0,
    /// The peer is not in `trusted_proxies`, so its headers are not believed.
    untrusted_peer = 1,
    /// Neither `X-Forwarded-Host` + `X-Forwarded-Uri` nor `X-Original-URL`
    /// (or only half of the forwarded pair): the proxy does not describe the request.
    missing_header = 2,
    /// A describing header is present but unusable: repeated, empty, not
    /// ASCII, not a host, path, URL, scheme or method, or a bad `X-Forwarded-For`.
    bad_header = 3,
    /// `X-Original-URL` and `X-Forwarded-*` describe different requests: one
    /// of them came from the client.
    conflicting_description = 4,
    /// `/login` or `/logout` refused the `rd` return address.
    bad_rd = 5,
    /// `/callback` refused the answer from the provider as a bad request
    /// (no or unknown state, expired flow, `iss` missing or wrong, no code,
    /// an error or a refused code exchange).
    bad_flow = 6,
}

impl BadRequestReason {
    pub(super) const ALL: [BadRequestReason; 7] = [
        BadRequestReason::no_peer,
        BadRequestReason::untrusted_peer,
        BadRequestReason::missing_header,
        BadRequestReason::bad_header,
        BadRequestReason::conflicting_description,
        BadRequestReason::bad_rd,
        BadRequestReason::bad_flow,
    ];
}

impl From<&RequestError> for BadRequestReason {
    fn from(e: &RequestError) -> Self {
        match e {
            RequestError::UntrustedPeer { .. } => BadRequestReason::untrusted_peer,
            RequestError::Missing { .. } => BadRequestReason::missing_header,
            RequestError::Malformed { .. } => BadRequestReason::bad_header,
            RequestError::Conflicting => BadRequestReason::conflicting_description,
        }
    }
}

/// Whether a handler can refuse a request on `endpoint` for `reason`. Those
/// series exist (at 0) from the start, so dashboards see them before the
/// first refusal, and counting them takes no lock.
pub(super) fn can_happen(endpoint: BadRequestEndpoint, reason: BadRequestReason) -> bool {
    use BadRequestEndpoint as E;
    use BadRequestReason as R;
    match reason {
        R::no_peer
        | R::untrusted_peer
        | R::missing_header
        | R::bad_header
        | R::conflicting_description => matches!(endpoint, E::ForwardAuth | E::AuthRequest),
        R::bad_rd => matches!(endpoint, E::Login | E::Logout),
        R::bad_flow => endpoint == E::Callback,
    }
}

label_values! {
    /// Which endpoints answered with a 5xx status: the `group` label of
    /// `pocketgate_server_errors_total`, from the request's path (a closed
    /// set, whatever paths clients ask for).
    pub enum ServerErrorGroup {
        /// `/forward-auth`, `/auth-request`, `/whoami`.
        Auth => "auth",
        /// `/login`, `/callback`, `/logout`, `/logout/done`, `/`.
        Login => "login",
        /// `/backchannel-logout`.
        Backchannel => "backchannel",
        /// `/scim/v2/...`.
        Scim => "scim",
        /// `/readyz`: its 503 says "not ready" (provider metadata not
        /// loaded, store unreachable), an answer rather than a failure.
        Readiness => "readiness",
        /// Every other path (`/metrics`, `/healthz`, the JWKS, the demo).
        Other => "other",
    }
}

impl ServerErrorGroup {
    /// The group of the endpoint at `path`.
    pub fn of(path: &str) -> ServerErrorGroup {
        match path {
            "/forward-auth" | "/auth-request" | "/whoami" => ServerErrorGroup::Auth,
            "/login" | "/callback" | "/logout" | "/logout/done" | "/" => ServerErrorGroup::Login,
            "/backchannel-logout" => ServerErrorGroup::Backchannel,
            "/readyz" => ServerErrorGroup::Readiness,
            p if p == "/scim/v2" || p.starts_with("/scim/v2/") => ServerErrorGroup::Scim,
            _ => ServerErrorGroup::Other,
        }
    }
}

label_values! {
    /// Login-flow events: the `event` label of `pocketgate_login_events_total`.
    pub enum LoginEvent {
        Started => "started",
        Completed => "completed",
        Failed => "failed",
        Logout => "logout",
    }
}

label_values! {
    /// How a bearer token was answered: the `result` label of
    /// `pocketgate_bearer_tokens_total`. A closed set, whatever tokens arrive.
    pub enum BearerResult {
        /// Accepted from the in-memory cache.
        Cached => "cached",
        /// Accepted: a JWT verified, identity from its claims.
        Jwt => "jwt",
        /// Accepted: the provider's userinfo endpoint answered for it.
        Userinfo => "userinfo",
        /// Refused: 401 `invalid_token`.
        Invalid => "invalid",
        /// Not checked: the provider could not answer (503).
        Unavailable => "unavailable",
        /// Accepted: the provider's introspection endpoint vouched for it.
        Introspection => "introspection",
        /// Not checked: the bounds on provider lookups were reached (503).
        Throttled => "throttled",
    }
}

/// Declares the label sets of the families: a struct each, whose fields are
/// the labels.
macro_rules! label_sets {
    ($($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)+ })+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
        pub(super) struct $name {
            $($(#[$field_meta])* pub(super) $field: $ty,)+
        }
    )+};
}

label_sets! {
    DecisionLabels {
        endpoint: Endpoint,
        /// The `[[hosts]]` pattern that matched, or `decisions::OTHER_HOST`.
        host: String,
        /// `Outcome::as_str`: the one spelling logs, `explain` and metrics share.
        outcome: &'static str,
    }
    BadRequestLabels {
        endpoint: BadRequestEndpoint,
        reason: BadRequestReason,
    }
    LoginLabels {
        event: LoginEvent,
    }
    BuildLabels {
        version: &'static str,
    }
    ReasonLabels {
        reason: &'static str,
    }
    ResultLabels {
        result: &'static str,
    }
    OutcomeLabels {
        outcome: &'static str,
    }
    GroupLabels {
        group: ServerErrorGroup,
    }
}
