//! `max_age` and `amr` on `[[hosts]]` and `[[hosts.rules]]` → [`StepUp`]:
//! what an allow asks of the sign-in. A rule's value wins over its host's,
//! key by key; a rule that bypasses or denies asks nothing of a sign-in,
//! so setting either key there is an error.

use crate::policy::StepUp;

use super::super::raw::{RawHost, RawRule};
use super::super::ConfigError;
use super::{invalid, Report};

/// Most methods one `amr` list may name.
const MAX_METHODS: usize = 16;

/// The host's own step-up (`prefix` names it: `hosts[0]`).
pub(super) fn host(prefix: &str, h: &RawHost, report: &mut Report) -> Option<StepUp> {
    let max_age = max_age(prefix, h.max_age.as_deref(), report)?;
    let amr = amr(prefix, h.amr.as_deref(), report)?;
    Some(StepUp {
        max_age_from: max_age.map(|_| prefix.to_string()),
        amr_from: (!amr.is_empty()).then(|| prefix.to_string()),
        max_age,
        amr,
    })
}

/// A rule's step-up over its host's (`key` names the rule: `hosts[0].rules[1]`).
pub(super) fn rule(key: &str, r: &RawRule, host: &StepUp, report: &mut Report) -> Option<StepUp> {
    let max_age = max_age(key, r.max_age.as_deref(), report)?;
    let amr = amr(key, r.amr.as_deref(), report)?;
    let sets = r.max_age.is_some() || r.amr.is_some();
    if sets && r.policy.is_none() {
        if let Some(action) = r.action.as_deref() {
            let which = if r.max_age.is_some() {
                "max_age"
            } else {
                "amr"
            };
            report.error(ConfigError::Conflict {
                key: format!("{key}.{which}"),
                reason: format!(
                    "asks for a fresh sign-in on a rule with action = {action:?}, which never looks at one (fix: drop {which} here, or use policy = \"...\" instead of the action)"
                ),
            });
            return None;
        }
    }
    let mut out = host.clone();
    if let Some(m) = max_age {
        out.max_age = Some(m);
        out.max_age_from = Some(key.to_string());
    }
    if r.amr.is_some() {
        out.amr = amr;
        out.amr_from = Some(key.to_string());
    }
    Some(out)
}

/// `max_age`: a duration above zero, in whole seconds.
fn max_age(prefix: &str, raw: Option<&str>, report: &mut Report) -> Option<Option<u64>> {
    let Some(text) = raw else {
        return Some(None);
    };
    let key = format!("{prefix}.max_age");
    let d = report.duration(
        &key,
        text,
        "a duration",
        "max_age = \"10m\", \"1h\", \"90s\"",
    )?;
    if d.as_secs() == 0 {
        report.error(invalid(
            key,
            text,
            "must be at least one second (fix: e.g. max_age = \"10m\"; to ask for no fresh sign-in, leave max_age out)",
        ));
        return None;
    }
    Some(Some(d.as_secs()))
}

/// `amr`: a non-empty list of non-empty method names (`phr`, `otp`).
fn amr(prefix: &str, raw: Option<&[String]>, report: &mut Report) -> Option<Vec<String>> {
    let Some(list) = raw else {
        return Some(Vec::new());
    };
    let key = format!("{prefix}.amr");
    if list.is_empty() {
        report.error(invalid(
            &key,
            "[]",
            "is empty, so no sign-in could meet it (fix: name the methods, e.g. amr = [\"phr\"] for a passkey, or leave amr out)",
        ));
        return None;
    }
    if list.len() > MAX_METHODS {
        report.error(invalid(
            &key,
            list.join(", "),
            format!("names more than {MAX_METHODS} methods (fix: keep the few you accept, e.g. [\"phr\"])"),
        ));
        return None;
    }
    let mut ok = true;
    for (j, m) in list.iter().enumerate() {
        let fine = !m.is_empty()
            && m.len() <= 64
            && m.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !fine {
            report.error(invalid(
                format!("{key}[{j}]"),
                m,
                "is not an authentication method name (fix: e.g. \"phr\" for a passkey, \"otp\" for a one-time code)",
            ));
            ok = false;
        }
    }
    ok.then(|| list.to_vec())
}
