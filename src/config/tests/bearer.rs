//! `[bearer]`: off by default, audiences defaulting to the client id, every
//! mistake named.

use super::*;

#[test]
fn off_unless_enabled() {
    assert_eq!(load(&base("")).unwrap().value.bearer, None);
    let loaded = load(&base("[bearer]\nenabled = false\naudiences = [\"api\"]\n")).unwrap();
    assert_eq!(loaded.value.bearer, None);
    assert_warned(&loaded.warnings, |w| w.contains("bearer.audiences"));
}

#[test]
fn audiences_default_to_the_client_id() {
    let rt = load(&base("[bearer]\nenabled = true\n")).unwrap().value;
    assert_eq!(
        rt.bearer,
        Some(BearerSettings {
            audiences: vec!["pocketgate".into()],
            opaque: OpaqueTokens::Introspection,
            lookups_in_flight: 16,
            lookups_per_minute: 60,
        })
    );
    let rt = load(&base(
        "[bearer]\nenabled = true\naudiences = [\"pocketgate\", \"https://api.example.com\"]\n",
    ))
    .unwrap()
    .value;
    assert_eq!(
        rt.bearer.map(|b| b.audiences),
        Some(vec!["pocketgate".into(), "https://api.example.com".into()])
    );
}

#[test]
fn bad_audiences_and_keys_are_named() {
    assert_refused(
        &base("[bearer]\nenabled = true\naudiences = []\n"),
        &["bearer.audiences", "accepts no token"],
    );
    assert_refused(
        &base("[bearer]\nenabled = true\naudiences = [\" api\"]\n"),
        &["bearer.audiences"],
    );
    assert_refused(
        &base("[bearer]\nenabled = true\naudience = [\"api\"]\n"),
        &["bearer.audience: unknown key", "bearer.audiences"],
    );
    assert_refused(&base("[bearer]\nenable = true\n"), &["bearer.enabled"]);
    assert_refused(&base("[bearer]\nenabled = \"yes\"\n"), &["bearer.enabled"]);
}

#[test]
fn opaque_tokens_and_lookup_bounds() {
    let loaded = load(&base(
        "[bearer]\nenabled = true\nopaque = \"userinfo\"\nlookups_in_flight = 4\nlookups_per_minute = \"10\"\n",
    ))
    .unwrap();
    let b = loaded.value.bearer.unwrap();
    assert_eq!(
        (b.opaque, b.lookups_in_flight, b.lookups_per_minute),
        (OpaqueTokens::Userinfo, 4, 10)
    );
    assert_warned(&loaded.warnings, |w| {
        w.contains("bearer.opaque") && w.contains("checks no audience")
    });
    let quiet = load(&base(
        "[bearer]\nenabled = true\nopaque = \"introspection\"\n",
    ))
    .unwrap();
    assert!(
        !quiet.warnings.iter().any(|w| w.contains("bearer.opaque")),
        "{:?}",
        quiet.warnings
    );
    assert_refused(
        &base("[bearer]\nenabled = true\nopaque = \"refuse\"\n"),
        &["bearer.opaque", "introspection"],
    );
    for bad in ["0", "-1", "many", "100001"] {
        let e = err(&base(&format!(
            "[bearer]\nenabled = true\nlookups_in_flight = \"{bad}\"\n"
        )));
        assert!(e.contains("bearer.lookups_in_flight"), "{bad}: {e}");
        let e = err(&base(&format!(
            "[bearer]\nenabled = true\nlookups_per_minute = \"{bad}\"\n"
        )));
        assert!(e.contains("bearer.lookups_per_minute"), "{bad}: {e}");
    }
}
