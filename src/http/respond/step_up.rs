//! The answers of step-up: a browser goes to sign in again (the login
//! redirect, which `/login` turns into a flow with `prompt=login`); an API
//! client or a bearer token gets 401 `insufficient_user_authentication` as
//! RFC 9470 section 3 shows it; and the step-up page (403) says what a
//! fresh sign-in lacked, or that the last one was not completed, without a
//! redirect back to the page (which would be the loop).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::{html, login, no_store, Answer, Client};
use crate::http::pages;
use crate::policy::{Missing, Rule, StepUp};

/// A step-up decision's answer.
pub(crate) fn step_up(answer: &Answer<'_>) -> HttpResponse {
    let verdict = answer.verdict;
    // A bearer token cannot sign in again in a browser: judged by its own claims.
    let bearer = verdict.bearer_source().is_some();
    if answer.client == Client::Browser && !bearer {
        return login(answer);
    }
    let (Some(req), Rule::StepUp { missing, .. }) =
        (verdict.decision.step_up, verdict.decision.rule)
    else {
        // The engine steps up only with a requirement; fail closed if not.
        return no_store(HttpResponse::Forbidden()).finish();
    };
    insufficient(req, missing, verdict.public_url.host.as_str())
}

/// 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`,
/// the `max_age` parameter when the rule sets one, and the methods in
/// `error_description` (RFC 9470 defines no parameter for them).
pub(crate) fn insufficient(req: &StepUp, missing: Missing, realm: &str) -> HttpResponse {
    let description = description(req, missing);
    let mut challenge = format!(
        "Bearer realm=\"{}\", error=\"insufficient_user_authentication\", error_description=\"{}\"",
        quotable(realm),
        quotable(&description)
    );
    if let Some(max_age) = req.max_age {
        challenge.push_str(&format!(", max_age=\"{max_age}\""));
    }
    no_store(HttpResponse::Unauthorized())
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(serde_json::json!({
            "error": "insufficient_user_authentication",
            "message": description,
            "max_age": req.max_age,
            "amr": req.amr,
            "missing": missing.keys(),
        }))
}

/// "A more recent authentication is required (within 600 seconds); an
/// authentication with one of these methods is required: phr".
fn description(req: &StepUp, missing: Missing) -> String {
    let mut parts = Vec::new();
    if missing.age {
        if let Some(max_age) = req.max_age {
            parts.push(format!(
                "a more recent authentication is required (within {max_age} seconds)"
            ));
        }
    }
    if missing.amr {
        parts.push(format!(
            "an authentication with one of these methods is required: {}",
            req.amr.join(" ")
        ));
    }
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        s = first.to_ascii_uppercase() + s.get(1..).unwrap_or_default();
    }
    s
}

/// Text that may stand inside a quoted-string of a header: printable ASCII
/// without `"` and `\`.
fn quotable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect()
}

/// What the step-up page says.
pub(crate) struct StepUpPage<'a> {
    /// The host of the page asked for.
    pub host: String,
    /// Who is signed in, when someone is.
    pub user: Option<&'a str>,
    /// What the sign-in lacked, in the person's words (escaped here).
    pub lack: String,
    /// `/login?rd=...&again=1`: a fresh step-up.
    pub again: String,
    /// `/logout?rd=...`: sign out, or switch user.
    pub sign_out: String,
    /// `support_contact`.
    pub support: Option<&'a str>,
}

impl StepUpPage<'_> {
    /// 403 with the page, the same template as the refusal page.
    pub(crate) fn respond(&self) -> HttpResponse {
        let mut body = super::denied::signed_in_as(self.user);
        body.push_str(&format!(
            "<p><strong>{}</strong> asks for a fresh sign-in. {}</p>",
            pages::escape(&self.host),
            pages::escape(&self.lack)
        ));
        body.push_str(&pages::support_line(self.support));
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"{}\">Try again</a></p>",
            pages::escape(&self.again)
        ));
        body.push_str(&format!(
            "<p><a href=\"{}\">Sign out or switch user</a></p>",
            pages::escape(&self.sign_out)
        ));
        html(StatusCode::FORBIDDEN, "Sign-in not enough", &body)
    }
}

/// The sentence for a fresh sign-in that lacked `missing`: "This page needs
/// a sign-in with a passkey (phr); you signed in with a one-time code (otp)."
pub(crate) fn lack_sentence(req: &StepUp, missing: Missing, had: &[String]) -> String {
    let needs = req.describe(missing).join(" and ");
    let how = if had.is_empty() {
        "the identity provider did not say how you signed in".to_string()
    } else {
        format!("you signed in with {}", crate::policy::methods(had))
    };
    if missing.amr {
        format!("This page needs {needs}; {how}.")
    } else {
        format!(
            "This page needs {needs}, and the identity provider did not confirm a fresh sign-in."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> StepUp {
        StepUp {
            max_age: Some(600),
            amr: vec!["phr".into()],
            ..StepUp::default()
        }
    }

    #[test]
    fn the_challenge_is_rfc_9470s_with_max_age_and_the_methods_in_words() {
        let resp = insufficient(
            &req(),
            Missing {
                age: true,
                amr: true,
            },
            "auth.example.com",
        );
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let h = resp.headers();
        assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let challenge = h.get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm=\"auth.example.com\", error=\"insufficient_user_authentication\", error_description=\"A more recent authentication is required (within 600 seconds); an authentication with one of these methods is required: phr\""), "{challenge}");
        assert!(challenge.ends_with(", max_age=\"600\""), "{challenge}");
        let amr_only = insufficient(
            &StepUp {
                max_age: None,
                ..req()
            },
            Missing {
                age: false,
                amr: true,
            },
            "a",
        );
        let c = amr_only
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(!c.contains("max_age"), "{c}");
    }

    #[test]
    fn the_page_says_what_is_missing_in_plain_words() {
        let s = lack_sentence(
            &req(),
            Missing {
                age: false,
                amr: true,
            },
            &["otp".into()],
        );
        assert_eq!(s, "This page needs a sign-in with a passkey (phr); you signed in with a one-time code (otp).");
        let s = lack_sentence(
            &req(),
            Missing {
                age: true,
                amr: false,
            },
            &["phr".into()],
        );
        assert!(s.contains("a sign-in within the last 10m"), "{s}");
    }
}
