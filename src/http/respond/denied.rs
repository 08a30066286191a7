//! The 403 page a person meets behind the proxy: who they are signed in as,
//! what they lack in one plain sentence, whom to ask, and a way out (sign
//! out, or sign in as someone else). The rule and the policy that decided
//! stay in the decision's log line and in `explain`.

use crate::gate::Verdict;
use crate::http::pages;
use crate::policy::{Decision, Rule};

/// What the refusal page says.
pub(crate) struct Denied<'a> {
    /// The host refused.
    pub host: &'a str,
    /// Who is signed in, when someone is.
    pub user: Option<&'a str>,
    /// What they lack, in one sentence.
    pub lack: String,
    /// `/logout` on the public URL, back to the refused address: sign out,
    /// or (signing in again) switch user.
    pub sign_out: Option<String>,
    /// `support_contact`.
    pub support: Option<&'a str>,
}

impl<'a> Denied<'a> {
    /// The page for a policy's deny.
    pub(crate) fn of(verdict: &'a Verdict<'a>) -> Denied<'a> {
        Denied::with_lack(verdict, lack(&verdict.decision))
    }

    /// The page for `verdict` refused for another reason (`lack`).
    pub(crate) fn with_lack(verdict: &'a Verdict<'a>, lack: String) -> Denied<'a> {
        let user = verdict.identity().map(|u| u.user.as_str());
        let sign_out = user.map(|_| {
            format!(
                "{}/logout?rd={}",
                verdict.public_url.origin,
                url::form_urlencoded::byte_serialize(verdict.original.url().as_bytes())
                    .collect::<String>()
            )
        });
        Denied {
            host: &verdict.original.host,
            user,
            lack,
            sign_out,
            support: verdict.support_contact,
        }
    }

    /// The page's body (HTML, escaped).
    pub(crate) fn body(&self) -> String {
        let mut body = signed_in_as(self.user);
        body.push_str(&format!(
            "<p>You may not open <strong>{}</strong>. {}</p>",
            pages::escape(self.host),
            pages::escape(&self.lack)
        ));
        body.push_str(&pages::support_line(self.support));
        if let Some(href) = &self.sign_out {
            body.push_str(&format!(
                "<p><a class=\"button\" href=\"{}\">Sign out or switch user</a></p>",
                pages::escape(href)
            ));
        }
        body
    }
}

/// "You are signed in as alice." (escaped), or nothing for nobody: the
/// first line of the refusal and step-up pages.
pub(super) fn signed_in_as(user: Option<&str>) -> String {
    user.map(|u| {
        format!(
            "<p>You are signed in as <strong>{}</strong>.</p>",
            pages::escape(u)
        )
    })
    .unwrap_or_default()
}

/// What the person lacks, in their words: no rule, policy or key names.
pub(crate) fn lack(decision: &Decision<'_>) -> String {
    let groups = decision
        .policy
        .map(|p| p.allowed_groups.join(", "))
        .unwrap_or_default();
    match decision.rule {
        Rule::NotInGroups if !groups.is_empty() => format!(
            "It is open to members of {groups}, and your account is in none of these groups."
        ),
        Rule::NotInUsers => {
            "It is open to named people only, and your account is not one of them.".into()
        }
        Rule::RuleDeny { .. } => "This address is closed to everyone.".into(),
        Rule::UnknownHost => "This site is not set up for sign-in here.".into(),
        Rule::AmbiguousPath => {
            "The address can be read in more than one way; open it in its plain form.".into()
        }
        Rule::MethodUnknown { .. } => {
            "The site's proxy did not say what kind of request this is, so it is refused.".into()
        }
        _ => "Your account is not allowed to use it.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_rules_str;
    use crate::domain::ClientAddr;
    use crate::policy::{decide, Identity, RequestFacts, Rules};

    fn rules() -> Rules {
        load_rules_str(
            "[policies.admins]\nallowed_groups = [\"admins\", \"ops\"]\n\
             [policies.named]\nallowed_users = [\"alice\"]\n\
             [[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"admins\"\n\
             [[hosts]]\nhost = \"wiki.example.com\"\npolicy = \"named\"\n",
        )
        .unwrap()
        .value
    }

    fn lack_for(host: &str) -> String {
        let rules = rules();
        let bob = Identity {
            user: "bob".into(),
            groups: vec!["users".into()],
            ..Identity::default()
        };
        let facts = RequestFacts {
            host,
            path: "/",
            client: ClientAddr::new([192, 0, 2, 1].into()),
            method: Some("GET"),
        };
        lack(&decide(&rules, &facts, Some(&bob)))
    }

    #[test]
    fn the_sentence_names_what_is_missing_not_the_configuration() {
        let groups = lack_for("grafana.example.com");
        assert_eq!(
            groups,
            "It is open to members of admins, ops, and your account is in none of these groups."
        );
        let users = lack_for("wiki.example.com");
        assert!(users.contains("named people"), "{users}");
        for s in [groups, users] {
            assert!(
                !s.contains("polic") && !s.contains("allowed_"),
                "no configuration words: {s}"
            );
        }
    }
}
