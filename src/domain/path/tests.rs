use super::*;

#[test]
fn prefixes_match_on_segment_boundaries() {
    let api = PathPrefix::parse("/api/").unwrap();
    assert_eq!(api.as_str(), "/api");
    let m = |p: &str| api.matches(NormalPath::new(p).unwrap());
    assert!(m("/api"));
    assert!(m("/api/x"));
    assert!(!m("/apix"));
    let root = PathPrefix::parse("/").unwrap();
    assert!(root.matches(NormalPath::new("/anything").unwrap()));
    assert!(PathPrefix::parse("/api/admin").unwrap().is_covered_by(&api));
    assert!(!api.is_covered_by(&PathPrefix::parse("/api/admin").unwrap()));
}

#[test]
fn normal_form_refuses_every_spelling_trick() {
    for ok in [
        "/",
        "/a",
        "/a/",
        "/a/b.c",
        "/a;v=1/b",
        "/.well-known/x",
        "/a%20b",
        "/u/a%40b",
        "/%3A",
    ] {
        assert!(is_normal_path(ok), "{ok}");
    }
    for bad in [
        "",
        "a",
        "//a",
        "/a//b",
        "/./a",
        "/a/..",
        "/a/..;/b",
        "/...",
        "/..%20",
        "/%2e%2e/a",
        "/%2F",
        "/%5c",
        "/%25",
        "/%3b",
        "/%",
        "/%g0",
        "/a b",
        "/a\\b",
        "/a#b",
        "/\u{e9}",
        "/%00",
        "/%7f",
        "/%ff",
    ] {
        assert!(!is_normal_path(bad), "{bad:?}");
    }
}

/// Found by the spelling property (tests/properties.rs): `/share/%61bcdef`
/// matched `^/share/.{8}$`, which its plain spelling `/share/abcdef` does not.
#[test]
fn escapes_are_in_normal_form_too() {
    for bad in [
        "/%41", "/%61", "/%30", "/%7E", "/%2D", "/%5F", // unreserved characters
        "/%3a", "/%5b", "/%c3", "/%2f", // lower-case hex digits
    ] {
        assert!(!is_normal_path(bad), "{bad:?}");
    }
    for ok in ["/%3A", "/%5B", "/%40", "/%20", "/%21"] {
        assert!(is_normal_path(ok), "{ok:?}");
    }
}
