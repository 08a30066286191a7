use super::*;

fn readings(p: &str) -> Vec<String> {
    PathReadings::of(p).iter().map(str::to_string).collect()
}

#[test]
fn a_plain_path_has_one_reading() {
    for p in ["/", "/a/b", "/a/b/", "/a%20b", "/a;v=1"] {
        let r = PathReadings::of(p);
        assert!(r.is_normal(), "{p}");
        if !p.contains(['%', ';']) {
            assert!(r.is_single(), "{p}: {:?}", readings(p));
        }
    }
}

#[test]
fn every_known_spelling_trick_is_read_back_to_the_plain_path() {
    for (spelled, plain) in [
        ("/public/../admin", "/admin"),
        ("/./admin", "/admin"),
        ("//admin", "/admin"),
        ("/adm%69n", "/admin"),
        ("/%61dmin/x", "/admin/x"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public%2F..%2Fadmin", "/admin"),
        ("/public/..;/admin", "/admin"),
        ("/public\\..\\admin", "/admin"),
        ("/admin;jsessionid=1/x", "/admin/x"),
        ("/u/a%40b", "/u/a@b"),
        ("/a/b/..", "/a/"),
        ("/a%3a", "/a:"),
    ] {
        let all = readings(spelled);
        assert!(
            all.iter().any(|r| r == plain),
            "{spelled}: {all:?} lacks {plain}"
        );
        assert_eq!(all.first().map(String::as_str), Some(spelled));
    }
}

#[test]
fn normalisation_keeps_what_is_data() {
    assert_eq!(rfc3986("/a%2fb"), "/a%2Fb");
    assert_eq!(rfc3986("/a%zz"), "/a%zz");
    assert_eq!(rfc3986("/a/%"), "/a/%");
    assert_eq!(rfc3986("/a/"), "/a/");
    assert_eq!(resolved("/../.."), "/");
    assert_eq!(decoded("/%E2%82%AC"), "/\u{20ac}");
    assert_eq!(decoded("/%ff"), "/\u{fffd}");
}

#[test]
fn the_cheap_check_never_passes_what_the_full_one_refuses() {
    for p in [
        "/",
        "/a",
        "/a/b/",
        "/a.b",
        "/.well-known",
        "/a//b",
        "/./a",
        "/a/..",
        "/a%41",
        "/a;b",
        "/a\\b",
        "/a#b",
        "/a b",
        "a",
        "",
        "/\u{e9}",
        "/~user/x-y_z",
    ] {
        if is_plain(p) {
            assert!(is_normal_path(p) && !p.contains(['%', ';']), "{p:?}");
        }
    }
    assert!(is_plain("/api/v1/users/alice"));
    assert!(!is_plain("/.well-known/x"));
}

#[test]
fn folding_reads_every_letter_case_as_one() {
    for (spelled, folded) in [
        ("/ADMIN", "/admin"),
        ("/Admin/X", "/admin/x"),
        ("/a%2Fb", "/a%2fb"),
        ("/\u{17f}ecret", "/secret"),
        ("/\u{212a}ey", "/key"),
        ("/CAF\u{c9}", "/caf\u{e9}"),
        // Capital sharp s and sharp s fold to one (lower case first).
        ("/STRA\u{1e9e}E", "/strasse"),
        ("/Stra\u{df}e", "/strasse"),
    ] {
        assert_eq!(fold_case(spelled), folded, "{spelled:?}");
        assert_eq!(fold_case(folded), folded, "{folded:?} folds to itself");
    }
    assert!(matches!(fold_case("/admin/x-1"), Cow::Borrowed(_)));
}

#[test]
fn readings_never_repeat() {
    let all = readings("/x/%2e/y");
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(all.len(), dedup.len());
    assert!(all.len() <= 4);
}
