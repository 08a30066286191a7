//! The directory's operations: create, read, list, replace, patch and
//! delete users and groups in the session store, sealed with the session
//! secret and bound to their kind and id (an edited store grants nothing),
//! and what each change does to sessions.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::discovery::MAX_RESULTS;
use super::filter::Filter;
use super::overlay::Snapshot;
use super::resource::{new_id, Group, GroupInput, Meta, Resource, User, UserInput};
use super::{patch, Directory, ScimError};
use crate::session::store::{DirectoryKind, Filter as SessionFilter, Store};
use crate::session::{EndReason, Purpose, SessionKeys, Sessions};

/// Most users, and most groups, one directory keeps.
const MAX_RESOURCES: usize = 10_000;

/// What one SCIM call works with: the store and secret in force, the
/// sessions to end, the `/scim/v2` URL for `location`, the time.
pub struct Scope<'a> {
    pub sessions: &'a Sessions,
    pub base: &'a str,
    pub now: u64,
    /// Told of every user this request deprovisioned (the audit record).
    pub on_deprovision: &'a dyn Fn(&Deprovisioned<'_>),
}

/// A user SCIM made inactive or deleted, and how many sessions ended with it.
#[derive(Debug)]
pub struct Deprovisioned<'a> {
    pub user: &'a str,
    pub subject: Option<&'a str>,
    /// `inactive` or `deleted`.
    pub reason: &'static str,
    pub sessions: usize,
}

/// A successful answer: the status, the resource (or list), its ETag.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub location: Option<String>,
}

/// `startIndex`, `count` and `filter` of a list request.
#[derive(Debug, Default)]
pub struct ListQuery<'a> {
    pub filter: Option<&'a str>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
}

/// Every user and group, opened.
pub(super) struct State {
    pub(super) users: Vec<User>,
    pub(super) groups: Vec<Group>,
}

fn store<'a>(s: &Scope<'a>) -> Result<&'a Store, ScimError> {
    s.sessions.store().ok_or_else(|| {
        ScimError::InvalidValue("the cookie session store keeps no directory".into())
    })
}

fn context(kind: DirectoryKind, id: &str) -> Vec<u8> {
    [kind.as_str(), "/", id].concat().into_bytes()
}

fn open<T: DeserializeOwned>(
    keys: &SessionKeys,
    kind: DirectoryKind,
    id: &str,
    doc: &str,
) -> Option<T> {
    let json = keys
        .open_bound(Purpose::Directory, &context(kind, id), doc)
        .map_err(|why| tracing::warn!(target: "pocketgate::scim", kind = kind.as_str(), id, %why, "a stored SCIM resource does not open; it is left out"))
        .ok()?;
    serde_json::from_slice(&json).ok()
}

async fn save<T: Serialize>(
    store: &Store,
    keys: &SessionKeys,
    kind: DirectoryKind,
    id: &str,
    value: &T,
) -> Result<(), ScimError> {
    let json = serde_json::to_vec(value).map_err(|e| ScimError::InvalidValue(e.to_string()))?;
    let doc = keys.seal_bound(Purpose::Directory, &context(kind, id), &json);
    Ok(store.directory_put(kind, id, doc).await?)
}

/// Read every user and group (those that do not open are left out), oldest first.
pub(super) async fn load(store: &Store, keys: &SessionKeys) -> Result<State, ScimError> {
    let mut users: Vec<User> = store
        .directory_all(DirectoryKind::User)
        .await?
        .iter()
        .filter_map(|(id, doc)| open(keys, DirectoryKind::User, id, doc))
        .collect();
    let mut groups: Vec<Group> = store
        .directory_all(DirectoryKind::Group)
        .await?
        .iter()
        .filter_map(|(id, doc)| open(keys, DirectoryKind::Group, id, doc))
        .collect();
    users.sort_by(|a, b| (a.meta.created, &a.id).cmp(&(b.meta.created, &b.id)));
    groups.sort_by(|a, b| (a.meta.created, &a.id).cmp(&(b.meta.created, &b.id)));
    Ok(State { users, groups })
}

fn if_match(meta: &Meta, wanted: Option<&str>) -> Result<(), ScimError> {
    match wanted {
        None => Ok(()),
        Some(w)
            if w.split(',')
                .any(|t| t.trim() == "*" || t.trim() == meta.etag()) =>
        {
            Ok(())
        }
        Some(_) => Err(ScimError::PreconditionFailed(format!(
            "the resource is at version {}",
            meta.etag()
        ))),
    }
}

/// Whether the directory may hold one more of `what`.
fn room(held: usize, what: &str) -> Result<(), ScimError> {
    if held >= MAX_RESOURCES {
        return Err(ScimError::TooMany(format!(
            "the directory holds {MAX_RESOURCES} {what}, as many as it may"
        )));
    }
    Ok(())
}

/// The resource `id` of `list` and where it is, if `If-Match` allows.
fn found<T: Resource>(
    list: &[T],
    kind: DirectoryKind,
    id: &str,
    wanted: Option<&str>,
) -> Result<(usize, T), ScimError> {
    let at = list
        .iter()
        .position(|r| r.id() == id)
        .ok_or_else(|| not_found(kind, id))?;
    let old = list.get(at).cloned().ok_or_else(|| not_found(kind, id))?;
    if_match(old.meta(), wanted)?;
    Ok((at, old))
}

fn not_found(kind: DirectoryKind, id: &str) -> ScimError {
    ScimError::NotFound(format!("no {} with id {id:?}", kind.as_str()))
}

impl State {
    fn user_groups<'s>(&'s self, id: &str) -> Vec<(&'s str, &'s str)> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m.value == id))
            .map(|g| (g.id.as_str(), g.display_name.as_str()))
            .collect()
    }

    fn render_user(&self, u: &User, base: &str) -> Value {
        u.render(base, &self.user_groups(&u.id))
    }

    fn render_group(&self, g: &Group, base: &str) -> Value {
        g.render(base, |id| self.groups.iter().any(|x| x.id == id))
    }

    /// A user with this `userName` (without case) or `externalId`, other than `except`.
    fn user_clash(&self, input: &UserInput, except: Option<&str>) -> Result<(), ScimError> {
        let name = input.user_name.to_lowercase();
        for u in self.users.iter().filter(|u| Some(u.id.as_str()) != except) {
            if u.user_name.to_lowercase() == name {
                return Err(ScimError::Uniqueness(format!(
                    "userName {:?} is taken",
                    input.user_name
                )));
            }
            if input.external_id.is_some() && u.external_id == input.external_id {
                return Err(ScimError::Uniqueness(
                    "externalId is taken by another user".into(),
                ));
            }
        }
        Ok(())
    }

    fn group_clash(&self, input: &GroupInput, except: Option<&str>) -> Result<(), ScimError> {
        if input.external_id.is_some()
            && self
                .groups
                .iter()
                .any(|g| Some(g.id.as_str()) != except && g.external_id == input.external_id)
        {
            return Err(ScimError::Uniqueness(
                "externalId is taken by another group".into(),
            ));
        }
        // Members are not checked against the directory: a client may
        // name users it provisions later, and a value no user has grants
        // nothing (sessions are matched by user id).
        Ok(())
    }
}

impl Directory {
    /// `POST /Users` or `/Groups`.
    pub async fn create(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        body: &Value,
    ) -> Result<Answer, ScimError> {
        let store = store(s)?;
        let _one_writer = self.shared.writes.lock().await;
        let mut state = load(store, &self.keys).await?;
        let id = new_id().map_err(|e| ScimError::InvalidValue(format!("no random id: {e}")))?;
        let meta = Meta::new(s.now);
        match kind {
            DirectoryKind::User => {
                let input = UserInput::parse(body)?;
                state.user_clash(&input, None)?;
                room(state.users.len(), "users")?;
                let user = input.into_user(id, meta);
                save(store, &self.keys, kind, &user.id, &user).await?;
                state.users.push(user.clone());
                self.changed(s, &state, Some((&user, "inactive"))).await;
                Ok(answer(
                    201,
                    state.render_user(&user, s.base),
                    &user.meta,
                    &user.id,
                    s.base,
                    "Users",
                ))
            }
            DirectoryKind::Group => {
                let input = GroupInput::parse(body)?;
                state.group_clash(&input, None)?;
                room(state.groups.len(), "groups")?;
                let group = input.into_group(id, meta);
                save(store, &self.keys, kind, &group.id, &group).await?;
                state.groups.push(group.clone());
                self.changed(s, &state, None).await;
                Ok(answer(
                    201,
                    state.render_group(&group, s.base),
                    &group.meta,
                    &group.id,
                    s.base,
                    "Groups",
                ))
            }
        }
    }

    /// `GET /Users/{id}` or `/Groups/{id}`.
    pub async fn get(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<Answer, ScimError> {
        let state = load(store(s)?, &self.keys).await?;
        let (body, meta, endpoint) = match kind {
            DirectoryKind::User => found(&state.users, kind, id, None)
                .map(|(_, u)| (state.render_user(&u, s.base), u.meta, "Users"))?,
            DirectoryKind::Group => found(&state.groups, kind, id, None)
                .map(|(_, g)| (state.render_group(&g, s.base), g.meta, "Groups"))?,
        };
        Ok(answer(200, body, &meta, id, s.base, endpoint))
    }

    /// `GET /Users` or `/Groups`: filtered, oldest first, one page.
    pub async fn list(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        q: &ListQuery<'_>,
    ) -> Result<Answer, ScimError> {
        let filter = q.filter.map(Filter::parse).transpose()?;
        let state = load(store(s)?, &self.keys).await?;
        let all: Vec<Value> = match kind {
            DirectoryKind::User => state
                .users
                .iter()
                .filter(|u| filter.as_ref().is_none_or(|f| f.user(u)))
                .map(|u| state.render_user(u, s.base))
                .collect(),
            DirectoryKind::Group => state
                .groups
                .iter()
                .filter(|g| filter.as_ref().is_none_or(|f| f.group(g)))
                .map(|g| state.render_group(g, s.base))
                .collect(),
        };
        let total = all.len();
        // RFC 7644 §3.4.2.4: below 1 is 1; a negative count is 0.
        let start = usize::try_from(q.start_index.unwrap_or(1).max(1)).unwrap_or(1);
        let count = usize::try_from(q.count.unwrap_or(100).max(0))
            .unwrap_or(0)
            .min(MAX_RESULTS);
        let page: Vec<Value> = all.into_iter().skip(start - 1).take(count).collect();
        Ok(Answer {
            status: 200,
            body: Some(serde_json::json!({
                "schemas": [super::resource::LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": page.len(),
                "Resources": page,
            })),
            etag: None,
            location: None,
        })
    }

    /// `PUT`: the whole resource replaced by `body`.
    pub async fn replace(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        id: &str,
        body: &Value,
        wanted: Option<&str>,
    ) -> Result<Answer, ScimError> {
        self.update(s, kind, id, wanted, |_| Ok(body.clone())).await
    }

    /// `PATCH`: the operations of `body` applied.
    pub async fn patch(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        id: &str,
        body: &Value,
        wanted: Option<&str>,
    ) -> Result<Answer, ScimError> {
        let read_only: &[&str] = match kind {
            DirectoryKind::User => &["id", "meta", "groups"],
            DirectoryKind::Group => &["id", "meta"],
        };
        self.update(s, kind, id, wanted, |mut current| {
            patch::apply(&mut current, body, read_only)?;
            Ok(current)
        })
        .await
    }

    /// Replace the resource by what `edit` makes of its editable JSON.
    async fn update(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        id: &str,
        wanted: Option<&str>,
        edit: impl FnOnce(Value) -> Result<Value, ScimError>,
    ) -> Result<Answer, ScimError> {
        let store = store(s)?;
        let _one_writer = self.shared.writes.lock().await;
        let mut state = load(store, &self.keys).await?;
        match kind {
            DirectoryKind::User => {
                let (at, old) = found(&state.users, kind, id, wanted)?;
                let input = UserInput::parse(&edit(old.editable())?)?;
                state.user_clash(&input, Some(id))?;
                let user = input.into_user(old.id.clone(), old.meta.changed(s.now));
                save(store, &self.keys, kind, id, &user).await?;
                if let Some(slot) = state.users.get_mut(at) {
                    *slot = user.clone();
                }
                // A user renamed away from its sessions' subject or name still loses them.
                let gone = (old.external_id != user.external_id || old.user_name != user.user_name)
                    .then_some(&old);
                if let Some(old) = gone.filter(|_| !user.is_active()) {
                    self.deprovision(s, old, "inactive").await;
                }
                self.changed(s, &state, Some((&user, "inactive"))).await;
                Ok(answer(
                    200,
                    state.render_user(&user, s.base),
                    &user.meta,
                    id,
                    s.base,
                    "Users",
                ))
            }
            DirectoryKind::Group => {
                let (at, old) = found(&state.groups, kind, id, wanted)?;
                let input = GroupInput::parse(&edit(old.editable())?)?;
                state.group_clash(&input, Some(id))?;
                let group = input.into_group(old.id.clone(), old.meta.changed(s.now));
                save(store, &self.keys, kind, id, &group).await?;
                if let Some(slot) = state.groups.get_mut(at) {
                    *slot = group.clone();
                }
                self.changed(s, &state, None).await;
                Ok(answer(
                    200,
                    state.render_group(&group, s.base),
                    &group.meta,
                    id,
                    s.base,
                    "Groups",
                ))
            }
        }
    }

    /// `DELETE`: the resource goes, and with it its memberships; a deleted
    /// user's sessions end.
    pub async fn delete(
        &self,
        s: &Scope<'_>,
        kind: DirectoryKind,
        id: &str,
        wanted: Option<&str>,
    ) -> Result<Answer, ScimError> {
        let store = store(s)?;
        let _one_writer = self.shared.writes.lock().await;
        let mut state = load(store, &self.keys).await?;
        let meta = match kind {
            DirectoryKind::User => state.users.iter().find(|u| u.id == id).map(|u| &u.meta),
            DirectoryKind::Group => state.groups.iter().find(|g| g.id == id).map(|g| &g.meta),
        };
        if_match(meta.ok_or_else(|| not_found(kind, id))?, wanted)?;
        if !store.directory_remove(kind, id).await? {
            return Err(not_found(kind, id));
        }
        // Memberships of the deleted resource go with it.
        for g in state
            .groups
            .iter_mut()
            .filter(|g| g.members.iter().any(|m| m.value == id))
        {
            g.members.retain(|m| m.value != id);
            g.meta = g.meta.changed(s.now);
            save(store, &self.keys, DirectoryKind::Group, &g.id, &*g).await?;
        }
        let removed = match kind {
            DirectoryKind::User => state
                .users
                .iter()
                .position(|u| u.id == id)
                .map(|at| state.users.remove(at)),
            DirectoryKind::Group => {
                state.groups.retain(|g| g.id != id);
                None
            }
        };
        match &removed {
            Some(user) => self.changed(s, &state, Some((user, "deleted"))).await,
            None => self.changed(s, &state, None).await,
        }
        Ok(Answer {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }

    /// After a change: end the sessions of a user now inactive or deleted,
    /// and let this replica decide with the new directory from the next request.
    async fn changed(&self, s: &Scope<'_>, state: &State, user: Option<(&User, &'static str)>) {
        if let Some((user, why)) = user {
            if why == "deleted" || !user.is_active() {
                self.deprovision(s, user, why).await;
            }
        }
        // Read again at the next check: another replica may have written meanwhile.
        self.shared
            .overlay
            .install(Snapshot::of(&state.users, &state.groups, None));
    }

    /// End every session of `user`: by the provider's subject (its
    /// `externalId`), else by its user name.
    async fn deprovision(&self, s: &Scope<'_>, user: &User, why: &'static str) {
        let filter = match &user.external_id {
            Some(subject) => SessionFilter::Subject(subject.clone()),
            None => SessionFilter::User(user.user_name.clone()),
        };
        match s.sessions.revoke(&filter, EndReason::Revoke).await {
            Ok(sessions) => {
                scim_deprovision(user, why, sessions);
                (s.on_deprovision)(&Deprovisioned {
                    user: &user.user_name,
                    subject: user.external_id.as_deref(),
                    reason: why,
                    sessions,
                });
            }
            // The snapshot refuses the user's sessions anyway; the log says why they linger in the store.
            Err(e) => {
                tracing::warn!(target: "pocketgate::scim", user = %user.user_name, error = %e, "SCIM deprovisioning: the sessions could not be ended in the store; they are refused while SCIM keeps the user inactive")
            }
        }
    }
}

/// The operator's log line of a deprovisioning (the audit record is the caller's).
fn scim_deprovision(user: &User, why: &'static str, sessions: usize) {
    tracing::info!(
        target: "pocketgate::scim",
        event = "scim_deprovision",
        user = %user.user_name,
        subject = user.external_id.as_deref().unwrap_or(""),
        reason = why,
        sessions,
        "SCIM deprovisioned a user: every session ended"
    );
}

fn answer(status: u16, body: Value, meta: &Meta, id: &str, base: &str, endpoint: &str) -> Answer {
    Answer {
        status,
        body: Some(body),
        etag: Some(meta.etag()),
        location: Some(format!("{base}/{endpoint}/{id}")),
    }
}
