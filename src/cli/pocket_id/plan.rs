//! What `pocket-id setup` changes: the desired state (from the configuration)
//! against what Pocket ID and the disk hold now, as a list of steps. Pure: no
//! network, no files, no clock; the command asks, this decides, the command
//! applies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// What the configuration asks of Pocket ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    /// `oidc.client_id`: Pocket ID takes a chosen id, so the client is made with it.
    pub client_id: String,
    /// The name shown in Pocket ID's admin pages (set when creating only).
    pub client_name: String,
    /// `<public_url>/callback` for every login domain.
    pub callback_urls: Vec<String>,
    /// `<public_url>/logout/done` for every login domain.
    pub logout_callback_urls: Vec<String>,
    /// Where the client secret goes; `None` for a public client (`client_auth = "none"`).
    pub secret_file: Option<PathBuf>,
    /// Who may sign in at Pocket ID at all.
    pub restriction: Restriction,
    /// Every group the policies in use name (restricted to or not).
    pub named_groups: Vec<String>,
    /// The SCIM service provider; `None` = not set up.
    pub scim: Option<ScimWant>,
}

/// Pocket ID's group restriction of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restriction {
    /// Every Pocket ID user may sign in; the reason is printed.
    Off(String),
    /// Only members of these groups may sign in.
    Groups(Vec<GroupWant>),
}

/// A group the restriction names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupWant {
    pub name: String,
    /// `false` for a role only a `claim_roles` entry grants: it need not be a
    /// Pocket ID group, so its absence is no error.
    pub required: bool,
}

/// The SCIM service provider pocketgate wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScimWant {
    /// Where Pocket ID sends users and groups (`<public_url>/scim/v2` by default).
    pub endpoint: String,
    /// `scim.token_file`: the bearer token Pocket ID presents.
    pub token_file: PathBuf,
}

/// What Pocket ID and the disk hold now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Current {
    /// The client with the configured id, if there is one.
    pub client: Option<ClientNow>,
    /// Name → id of the wanted groups that exist in Pocket ID.
    pub groups: BTreeMap<String, String>,
    /// Name → friendly name of the named groups that exist in Pocket ID.
    pub friendly_names: BTreeMap<String, String>,
    /// Whether the client secret file exists with a secret in it.
    pub secret_file: bool,
    /// The SCIM service provider of the client, if there is one.
    pub scim: Option<ScimNow>,
    /// The token in `scim.token_file`, if that file exists and holds one.
    pub scim_token: Option<String>,
}

/// The parts of Pocket ID's client that setup manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientNow {
    pub callback_urls: Vec<String>,
    pub logout_callback_urls: Vec<String>,
    pub public: bool,
    pub pkce: bool,
    pub pushed_authorization: bool,
    pub group_restricted: bool,
    /// Names of the allowed groups.
    pub groups: Vec<String>,
}

/// Pocket ID's SCIM service provider of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScimNow {
    pub id: String,
    pub endpoint: String,
    pub token: String,
}

/// One change, in the order it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Create the client with every desired setting.
    CreateClient,
    /// Update the client's settings; each string says what changes.
    UpdateClient(Vec<String>),
    /// Replace the allowed groups with these (name, id).
    SetGroups(Vec<(String, String)>),
    /// Have Pocket ID generate a secret and write it to the file (0600).
    /// `stale`: the file exists but the client is new, so it cannot be its secret.
    CreateSecret { path: PathBuf, stale: bool },
    /// Generate a SCIM token and write it to the file (0600).
    WriteScimToken(PathBuf),
    /// Create the SCIM service provider.
    CreateScim,
    /// Update the SCIM service provider `id`; each string says what changes.
    UpdateScim { id: String, changes: Vec<String> },
}

/// The steps, what blocks them, and what the operator should know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// Groups a policy names that Pocket ID does not have: nothing is changed
    /// until they exist (or `--no-group-restriction`).
    pub missing_groups: Vec<String>,
    pub notes: Vec<String>,
    /// Whether the client ends up restricted to groups (some wanted group exists).
    pub restricted: bool,
    /// With SCIM: (name, friendly name) of each named group whose friendly
    /// name is neither its name nor one Pocket ID derives the name from.
    /// Pocket ID's SCIM sync sends the friendly name, so SCIM cannot take
    /// such a group away from a member Pocket ID removed.
    pub friendly_mismatch: Vec<(String, String)>,
}

impl Plan {
    /// Whether a run would change nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Compare and decide.
pub(crate) fn plan(want: &Desired, now: &Current) -> Plan {
    let mut plan = Plan::default();
    let groups = allowed_groups(want, now, &mut plan);
    plan.restricted = !groups.is_empty();
    match &now.client {
        None => {
            plan.steps.push(Step::CreateClient);
            if !groups.is_empty() {
                plan.steps.push(Step::SetGroups(groups));
            }
        }
        Some(c) => {
            let changes = client_changes(want, c, !groups.is_empty());
            if !changes.is_empty() {
                plan.steps.push(Step::UpdateClient(changes));
            }
            let have: BTreeSet<&str> = c.groups.iter().map(String::as_str).collect();
            let wanted: BTreeSet<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
            if !groups.is_empty() && (have != wanted || !c.group_restricted) {
                plan.steps.push(Step::SetGroups(groups));
            }
        }
    }
    if let Some(path) = &want.secret_file {
        let stale = now.client.is_none() && now.secret_file;
        if !now.secret_file || stale {
            plan.steps.push(Step::CreateSecret {
                path: path.clone(),
                stale,
            });
        }
    }
    if let Some(scim) = &want.scim {
        scim_steps(scim, now, &mut plan);
        plan.friendly_mismatch = want
            .named_groups
            .iter()
            .filter_map(|n| {
                let f = now.friendly_names.get(n)?;
                // SCIM knows a group by its friendly name and the name
                // Pocket ID derives from it: only a name that is neither
                // escapes it.
                (!crate::scim::group_names(f).contains(n)).then(|| (n.clone(), f.clone()))
            })
            .collect();
    }
    plan
}

/// The (name, id) of every wanted group Pocket ID has; records the missing
/// required ones and why there is no restriction.
fn allowed_groups(want: &Desired, now: &Current, plan: &mut Plan) -> Vec<(String, String)> {
    let wanted = match &want.restriction {
        Restriction::Off(why) => {
            plan.notes.push(format!("no group restriction: {why}"));
            return Vec::new();
        }
        Restriction::Groups(g) => g,
    };
    let mut found = Vec::new();
    for g in wanted {
        match now.groups.get(&g.name) {
            Some(id) => found.push((g.name.clone(), id.clone())),
            None if g.required => plan.missing_groups.push(g.name.clone()),
            None => {}
        }
    }
    if found.is_empty() && plan.missing_groups.is_empty() {
        plan.notes.push(
            "no group restriction: none of the roles the policies name is a Pocket ID group".into(),
        );
    }
    found
}

fn client_changes(want: &Desired, c: &ClientNow, restricted: bool) -> Vec<String> {
    let mut changes = Vec::new();
    let mut urls = |what: &str, now: &[String], want: &[String]| {
        let a: BTreeSet<&String> = now.iter().collect();
        let b: BTreeSet<&String> = want.iter().collect();
        if a != b {
            changes.push(format!(
                "{what} [{}] -> [{}]",
                now.join(", "),
                want.join(", ")
            ));
        }
    };
    urls("callback URLs", &c.callback_urls, &want.callback_urls);
    urls(
        "logout callback URLs",
        &c.logout_callback_urls,
        &want.logout_callback_urls,
    );
    let public = want.secret_file.is_none();
    if c.public != public {
        changes.push(format!("public client {} -> {public}", c.public));
    }
    if !c.pkce {
        changes.push("PKCE off -> on".into());
    }
    if c.pushed_authorization {
        changes.push("pushed authorization requests on -> off (pocketgate sends none)".into());
    }
    if c.group_restricted != restricted {
        changes.push(format!(
            "group restriction {} -> {}",
            on_off(c.group_restricted),
            on_off(restricted)
        ));
    }
    changes
}

fn scim_steps(scim: &ScimWant, now: &Current, plan: &mut Plan) {
    if now.scim_token.is_none() {
        plan.steps
            .push(Step::WriteScimToken(scim.token_file.clone()));
    }
    let Some(p) = &now.scim else {
        plan.steps.push(Step::CreateScim);
        return;
    };
    let mut changes = Vec::new();
    if p.endpoint != scim.endpoint {
        changes.push(format!("endpoint {} -> {}", p.endpoint, scim.endpoint));
    }
    match &now.scim_token {
        None => changes.push("token -> a new one".into()),
        Some(t) if *t != p.token => {
            changes.push(format!("token -> the one in {}", scim.token_file.display()));
        }
        Some(_) => {}
    }
    if !changes.is_empty() {
        plan.steps.push(Step::UpdateScim {
            id: p.id.clone(),
            changes,
        });
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// One line per step, in the words of Pocket ID's admin pages.
pub(crate) struct Described<'a>(pub &'a Step, pub &'a Desired);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = self.1;
        match self.0 {
            Step::CreateClient => write!(
                f,
                "create OIDC client {:?} named {:?}: callback URLs [{}], logout callback URLs [{}], PKCE on, {}",
                want.client_id,
                want.client_name,
                want.callback_urls.join(", "),
                want.logout_callback_urls.join(", "),
                if want.secret_file.is_some() { "confidential (a secret)" } else { "public (no secret)" }
            ),
            Step::UpdateClient(changes) => write!(
                f,
                "update OIDC client {:?}: {}",
                want.client_id,
                changes.join("; ")
            ),
            Step::SetGroups(groups) => {
                let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
                write!(f, "allow only the groups {} to sign in to {:?}", names.join(", "), want.client_id)
            }
            Step::CreateSecret { path, stale: false } => write!(
                f,
                "create the client secret and write it to {} (mode 0600)",
                path.display()
            ),
            Step::CreateSecret { path, stale: true } => write!(
                f,
                "create the client secret and write it over {} (mode 0600): the client is new, so the secret there is not its own",
                path.display()
            ),
            Step::WriteScimToken(path) => write!(
                f,
                "generate a SCIM token (32 random bytes) and write it to {} (mode 0600)",
                path.display()
            ),
            Step::CreateScim => write!(
                f,
                "create the SCIM service provider of {:?}: endpoint {}",
                want.client_id,
                want.scim.as_ref().map_or("", |s| s.endpoint.as_str())
            ),
            Step::UpdateScim { changes, .. } => write!(
                f,
                "update the SCIM service provider of {:?}: {}",
                want.client_id,
                changes.join("; ")
            ),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
