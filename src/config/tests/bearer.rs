//! `[bearer]`: off by default, audiences defaulting to the client id, every
//! mistake named.

use super::*;

#[test]
fn off_unless_enabled() {
    assert_eq!(load(&base("")).unwrap().value.bearer, None);
    let loaded = load(&base("[bearer]\nenabled = false\naudiences = [\"api\"]\n")).unwrap();
    assert_eq!(loaded.value.bearer, None);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("bearer.audiences")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn audiences_default_to_the_client_id() {
    let rt = load(&base("[bearer]\nenabled = true\n")).unwrap().value;
    assert_eq!(
        rt.bearer,
        Some(BearerSettings {
            audiences: vec!["pocketgate".into()]
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
    let e = err(&base("[bearer]\nenabled = true\naudiences = []\n"));
    assert!(
        e.contains("bearer.audiences") && e.contains("accepts no token"),
        "{e}"
    );
    let e = err(&base("[bearer]\nenabled = true\naudiences = [\" api\"]\n"));
    assert!(e.contains("bearer.audiences"), "{e}");
    let e = err(&base("[bearer]\nenabled = true\naudience = [\"api\"]\n"));
    assert!(
        e.contains("bearer.audience: unknown key") && e.contains("bearer.audiences"),
        "{e}"
    );
    let e = err(&base("[bearer]\nenable = true\n"));
    assert!(e.contains("bearer.enabled"), "{e}");
    let e = err(&base("[bearer]\nenabled = \"yes\"\n"));
    assert!(e.contains("bearer.enabled"), "{e}");
}
