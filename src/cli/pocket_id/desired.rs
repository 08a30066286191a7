//! The desired state of Pocket ID, read off the compiled configuration: the
//! URLs `check` prints for every login domain, the groups the policies name,
//! the secret files.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Runtime, SecretPaths};
use crate::policy::{Policy, RuleAction};

use super::plan::{Desired, GroupWant, Restriction, ScimWant};
use super::SetupError;

/// What the command line adds to the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Choices {
    pub client_name: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub no_group_restriction: bool,
    pub scim_token_file: Option<PathBuf>,
    pub scim_endpoint: Option<String>,
    pub no_scim: bool,
}

/// Pocket ID's longest client name.
const NAME_MAX: usize = 50;

pub(crate) fn desired(
    rt: &Runtime,
    paths: &SecretPaths,
    choices: &Choices,
) -> Result<Desired, SetupError> {
    let secret_file = if paths.public_client {
        None
    } else {
        match choices
            .client_secret_file
            .clone()
            .or_else(|| paths.client_secret_file.clone())
        {
            Some(p) => Some(p),
            None => return Err(SetupError::NoSecretFile),
        }
    };
    let scim = if choices.no_scim {
        None
    } else {
        choices
            .scim_token_file
            .clone()
            .or_else(|| paths.scim_token_file.clone())
            .map(|token_file| ScimWant {
                endpoint: choices
                    .scim_endpoint
                    .clone()
                    .unwrap_or_else(|| format!("{}/scim/v2", rt.public_url.origin)),
                token_file,
            })
    };
    let named_groups = named_groups(rt);
    let restriction = if choices.no_group_restriction {
        Restriction::Off("--no-group-restriction".into())
    } else {
        restriction(rt)
    };
    Ok(Desired {
        client_id: rt.oidc.client_id.clone(),
        client_name: choices
            .client_name
            .clone()
            .unwrap_or_else(|| rt.oidc.client_id.chars().take(NAME_MAX).collect()),
        callback_urls: rt.login_domains.iter().map(|d| d.redirect_uri()).collect(),
        logout_callback_urls: rt
            .login_domains
            .iter()
            .map(|d| d.logout_done_uri())
            .collect(),
        secret_file,
        restriction,
        named_groups,
        scim,
    })
}

/// The policies in use: by a host, a host's rule, or `default_policy`.
fn policies_in_use(rt: &Runtime) -> Vec<&Arc<Policy>> {
    let rules = &rt.rules;
    let mut used: Vec<&Arc<Policy>> = rules.default_policy().into_iter().collect();
    for h in rules.hosts() {
        used.push(&h.policy);
        used.extend(h.rules.iter().filter_map(|r| match &r.action {
            RuleAction::Policy(p) => Some(p),
            RuleAction::Bypass | RuleAction::Deny => None,
        }));
    }
    used
}

/// Every group name the policies in use name, and the groups `claim_roles`
/// entries read from the groups claim, each once.
fn named_groups(rt: &Runtime) -> Vec<String> {
    let groups_claim = &rt.rules.claim_names().groups;
    let mut seen = BTreeSet::new();
    policies_in_use(rt)
        .iter()
        .flat_map(|p| p.allowed_groups.iter())
        .chain(
            rt.rules
                .hosts()
                .iter()
                .flat_map(|h| &h.claim_roles)
                .filter(|c| &c.claim == groups_claim)
                .map(|c| &c.value),
        )
        .filter(|g| seen.insert(g.as_str()))
        .cloned()
        .collect()
}

/// The groups of every policy in use (by a host, a host's rule, or
/// `default_policy`), plus the groups `claim_roles` entries read; none when a
/// policy in use admits any signed-in user, since a restriction at Pocket ID
/// would then refuse people pocketgate lets in.
fn restriction(rt: &Runtime) -> Restriction {
    let rules = &rt.rules;
    let used = policies_in_use(rt);
    if let Some(open) = used.iter().find(|p| p.allowed_groups.is_empty()) {
        return Restriction::Off(format!(
            "policy {:?} admits any signed-in user (it names no allowed_groups)",
            open.name
        ));
    }
    let groups_claim = &rules.claim_names().groups;
    if let Some(c) = rules
        .hosts()
        .iter()
        .flat_map(|h| &h.claim_roles)
        .find(|c| &c.claim != groups_claim)
    {
        return Restriction::Off(format!(
            "claim_roles grants {:?} from the claim {:?}, which no Pocket ID group decides",
            c.role, c.claim
        ));
    }
    let mapped: BTreeSet<&str> = rules
        .hosts()
        .iter()
        .flat_map(|h| &h.claim_roles)
        .map(|c| c.role.as_str())
        .collect();
    let mut names = BTreeSet::new();
    let mut wants = Vec::new();
    for p in &used {
        for g in &p.allowed_groups {
            if names.insert(g.clone()) {
                wants.push(GroupWant {
                    name: g.clone(),
                    required: !mapped.contains(g.as_str()),
                });
            }
        }
    }
    for c in rules.hosts().iter().flat_map(|h| &h.claim_roles) {
        if &c.claim == groups_claim && names.insert(c.value.clone()) {
            wants.push(GroupWant {
                name: c.value.clone(),
                required: true,
            });
        }
    }
    Restriction::Groups(wants)
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
