//! What the benches share: the session secret, the clock, and the user
//! every bench signs in.

use std::time::{SystemTime, UNIX_EPOCH};

use pocketgate::policy::Identity;

/// The session secret of every bench.
pub(crate) const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// Now, in unix seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A user as Pocket ID's claims make her: UUID subject, name, e-mail, a few groups.
pub(crate) fn alice() -> Identity {
    Identity {
        subject: "3ffb29e3-4b67-8262-8050-78ae568e43af".into(),
        user: "alice".into(),
        email: Some("alice.andersen@example.com".into()),
        email_verified: true,
        name: Some("Alice Andersen".into()),
        groups: ["admins", "users", "media", "grafana-admins", "family"]
            .map(String::from)
            .to_vec(),
        claims: Default::default(),
        sign_in: Default::default(),
    }
}
