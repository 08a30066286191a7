//! Step 8 of the decision: step-up. A rule (else its host) may ask that the
//! sign-in behind an allow be recent (`max_age`) or made with one of some
//! methods (`amr`); an allow whose sign-in does not meet that becomes
//! [`super::Outcome::StepUp`], never a deny. Pure: the time comes in as an
//! argument, the sign-in with the identity.
// Request-derived indices must never panic: only checked access here.
#![deny(clippy::indexing_slicing)]

use std::fmt;

use super::identity::SignIn;

/// What a host or rule asks of the sign-in, compiled from `max_age` and
/// `amr` (a rule's value wins over the host's, key by key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepUp {
    /// The sign-in must be at most this old, in seconds.
    pub max_age: Option<u64>,
    /// The sign-in must have used one of these methods; empty = any.
    pub amr: Vec<String>,
    /// Where each key was set, for explanations: `hosts[0].rules[1]`.
    pub max_age_from: Option<String>,
    /// Where `amr` was set.
    pub amr_from: Option<String>,
}

/// What a sign-in lacks for a [`StepUp`]; both false = met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Missing {
    /// The sign-in is older than `max_age`, or its time is unknown.
    pub age: bool,
    /// The sign-in used none of the methods in `amr`.
    pub amr: bool,
}

impl Missing {
    /// Nothing is missing.
    pub fn is_met(self) -> bool {
        !self.age && !self.amr
    }

    /// The names of what is missing, as `explain --json` lists them: `max_age`, `amr`.
    pub fn keys(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.age {
            out.push("max_age");
        }
        if self.amr {
            out.push("amr");
        }
        out
    }
}

impl StepUp {
    /// Whether the requirement asks anything.
    pub fn is_empty(&self) -> bool {
        self.max_age.is_none() && self.amr.is_empty()
    }

    /// What `sign_in` lacks at `now` (unix seconds). An unknown sign-in time
    /// never meets a `max_age` (fail closed); a sign-in time in the future
    /// (clock skew) counts as now.
    pub fn check(&self, sign_in: &SignIn, now: u64) -> Missing {
        let age = match (self.max_age, sign_in.auth_time) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(max), Some(at)) => now.saturating_sub(at) > max,
        };
        let amr = !self.amr.is_empty() && !sign_in.amr.iter().any(|m| self.amr.contains(m));
        Missing { age, amr }
    }

    /// What is missing, in plain words for a person: "a sign-in within the
    /// last 10m", "a sign-in with a passkey (phr)".
    pub fn describe(&self, missing: Missing) -> Vec<String> {
        let mut out = Vec::new();
        if missing.amr {
            out.push(format!("a sign-in with {}", methods(&self.amr)));
        }
        if missing.age {
            if let Some(max) = self.max_age {
                out.push(format!("a sign-in within the last {}", Seconds(max)));
            }
        }
        out
    }

    /// The explanation's clause: `hosts[0].rules[1].max_age (600 s)`.
    pub fn clause(&self, missing: Missing) -> String {
        let mut parts = Vec::new();
        if missing.age {
            parts.push(format!(
                "{}.max_age ({})",
                self.max_age_from.as_deref().unwrap_or("?"),
                self.max_age
                    .map(Seconds)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ));
        }
        if missing.amr {
            parts.push(format!(
                "{}.amr ({})",
                self.amr_from.as_deref().unwrap_or("?"),
                self.amr.join(", ")
            ));
        }
        parts.join(", ")
    }
}

/// "a passkey (phr)", "a passkey (phr) or a one-time code (otp)".
pub fn methods(amr: &[String]) -> String {
    amr.iter()
        .map(|m| match method_name(m) {
            Some(name) => format!("{name} ({m})"),
            None => format!("the method {m:?}"),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The common `amr` values (RFC 8176) in words.
pub fn method_name(amr: &str) -> Option<&'static str> {
    Some(match amr {
        "phr" | "hwk" => "a passkey",
        "swk" => "a software key",
        "otp" => "a one-time code",
        "pwd" => "a password",
        "mfa" => "several factors",
        "sms" => "a code by text message",
        "fido" => "a security key",
        _ => return None,
    })
}

/// A number of seconds as people say it: `10m`, `1h 30m`, `45s`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        let mut parts = Vec::new();
        if h > 0 {
            parts.push(format!("{h}h"));
        }
        if m > 0 {
            parts.push(format!("{m}m"));
        }
        if s > 0 || parts.is_empty() {
            parts.push(format!("{s}s"));
        }
        f.write_str(&parts.join(" "))
    }
}
