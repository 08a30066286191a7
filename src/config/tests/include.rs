//! `include = [...]`: include files in a temporary directory next to the main file.

use std::path::{Path, PathBuf};

use crate::policy::{HostMatch, Outcome, Rules};

use super::{assert_mentions, assert_warned, base};
use crate::config::{load, load_rules, load_rules_str, load_str, ConfigErrors, Loaded, Runtime};

/// A main file `pocketgate.toml` and its include files, in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A main file that includes `conf.d/*.toml`, with `extra` after it.
    fn conf_d(extra: &str) -> Setup {
        let s = Setup::new();
        s.main(r#"["conf.d/*.toml"]"#, extra);
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (and its directories) below the main file's directory.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The main file: the shared test configuration with `include = {include}`
    /// and `extra` (hosts, policies) after it.
    fn main(&self, include: &str, extra: &str) -> PathBuf {
        self.write(
            "pocketgate.toml",
            &format!("include = {include}\n{}", base(extra)),
        )
    }

    fn load(&self) -> Result<Loaded<Runtime>, ConfigErrors> {
        load(&self.path("pocketgate.toml"))
    }

    fn err(&self) -> String {
        match self.load() {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }
}

fn host(name: &str, policy: &str) -> String {
    format!("[[hosts]]\nhost = \"{name}\"\npolicy = \"{policy}\"\n")
}

/// The decision for a request to `host` by a user in `groups` (none: no session).
fn outcome(rules: &Rules, host: &str, groups: Option<&[&str]>) -> Outcome {
    super::decide_for(rules, host, "/", groups)
}

/// The include file a host's entry came from, and its overall index.
fn entry(rules: &Rules, host: &str) -> (Option<String>, usize) {
    match rules.lookup_host(host) {
        HostMatch::Entry(h) => (h.source.as_deref().map(String::from), h.index),
        other => panic!("{host}: no entry ({})", other.describe()),
    }
}

#[test]
fn nested_globs_pick_files_in_subdirectories_in_sorted_order() {
    let s = Setup::new();
    s.main(
        r#"["conf.d/**/*.toml"]"#,
        &host("main.example.com", "users"),
    );
    s.write("conf.d/a.toml", &host("a.example.com", "users"));
    s.write("conf.d/sub/b.toml", &host("b.example.com", "admins"));
    s.write("conf.d/sub/deeper/c.toml", &host("c.example.com", "users"));
    s.write("conf.d/z.toml", &host("z.example.com", "users"));
    // Not matched: another extension, a hidden file (its content would be an error).
    s.write("conf.d/notes.txt", "not toml at all [");
    s.write("conf.d/.draft.toml", "listen = \"0.0.0.0:1\"\n");
    let rules = s.load().unwrap().value.rules;
    assert_eq!(entry(&rules, "main.example.com"), (None, 0));
    assert_eq!(
        entry(&rules, "a.example.com"),
        (Some("conf.d/a.toml".into()), 1)
    );
    assert_eq!(
        entry(&rules, "b.example.com"),
        (Some("conf.d/sub/b.toml".into()), 2)
    );
    assert_eq!(
        entry(&rules, "c.example.com"),
        (Some("conf.d/sub/deeper/c.toml".into()), 3)
    );
    assert_eq!(
        entry(&rules, "z.example.com"),
        (Some("conf.d/z.toml".into()), 4)
    );
    assert_eq!(rules.hosts().len(), 5);
    // The included host's policy decides.
    assert_eq!(
        outcome(&rules, "b.example.com", Some(&["users"])),
        Outcome::Deny
    );
    assert_eq!(
        outcome(&rules, "b.example.com", Some(&["admins"])),
        Outcome::Allow
    );
    assert_eq!(outcome(&rules, "b.example.com", None), Outcome::Login);
}

#[test]
fn include_files_and_the_main_file_use_each_others_policies() {
    let s = Setup::new();
    s.main(r#""conf.d/*.toml""#, &host("wiki.example.com", "gitea"));
    s.write(
        "conf.d/gitea.toml",
        &format!(
            "[policies.gitea]\nallowed_groups = [\"git\"]\n\n{}{}",
            host("gitea.example.com", "gitea"),
            host("admin.example.com", "admins")
        ),
    );
    let rules = load_rules(&s.path("pocketgate.toml")).unwrap().value;
    #[rustfmt::skip]
    let rows: [(&str, &[&str], Outcome); 6] = [
        // The main file's host, on the include file's policy.
        ("wiki.example.com",  &["git"],    Outcome::Allow),
        ("wiki.example.com",  &["users"],  Outcome::Deny),
        // The include file's hosts, on its own policy and on the main file's.
        ("gitea.example.com", &["git"],    Outcome::Allow),
        ("admin.example.com", &["git"],    Outcome::Deny),
        ("admin.example.com", &["admins"], Outcome::Allow),
        // Hosts nobody listed still get the main file's default_policy.
        ("other.example.com", &["users"],  Outcome::Allow),
    ];
    for (host, groups, want) in rows {
        assert_eq!(
            outcome(&rules, host, Some(groups)),
            want,
            "{host} as {groups:?}"
        );
    }
}

#[test]
fn a_policy_defined_in_two_files_names_both() {
    let s = Setup::conf_d("");
    s.write(
        "conf.d/x.toml",
        "[policies.admins]\nallowed_groups = [\"root\"]\n",
    );
    let e = s.err();
    assert_mentions(&e, &["conf.d/x.toml:1: policies.admins: policy \"admins\" is already defined in pocketgate.toml"]);
    // Two include files.
    let s = Setup::conf_d("");
    s.write(
        "conf.d/a.toml",
        "[policies.git]\nallowed_groups = [\"git\"]\n",
    );
    s.write(
        "conf.d/b.toml",
        "[policies.git]\nallowed_groups = [\"git\"]\n",
    );
    let e = s.err();
    assert_mentions(
        &e,
        &[
            "conf.d/b.toml:1: policies.git:",
            "already defined in conf.d/a.toml",
        ],
    );
}

#[test]
fn a_host_defined_in_two_files_names_both() {
    let s = Setup::conf_d("");
    s.write("conf.d/a.toml", &host("git.example.com", "users"));
    s.write(
        "conf.d/b.toml",
        &format!(
            "{}{}",
            host("other.example.com", "users"),
            host("GIT.example.com.", "admins")
        ),
    );
    let e = s.err();
    assert_mentions(&e, &["conf.d/b.toml:5: hosts[1].host: host \"git.example.com\" is already configured at conf.d/a.toml: hosts[0].host"]);
    // The main file and an include file.
    let s = Setup::conf_d(&host("git.example.com", "users"));
    s.write("conf.d/a.toml", &host("git.example.com", "users"));
    let e = s.err();
    assert_mentions(&e, &["conf.d/a.toml:2: hosts[0].host: host \"git.example.com\" is already configured at pocketgate.toml: hosts[0].host"]);
}

#[test]
fn keys_other_than_policies_and_hosts_are_refused_in_an_include_file() {
    let s = Setup::conf_d("");
    s.write(
        "conf.d/x.toml",
        &format!(
            "listen = \"0.0.0.0:80\"\ninclude = [\"more/*.toml\"]\n[oidc]\nclient_id = \"evil\"\n{}",
            host("x.example.com", "users")
        ),
    );
    let e = s.err();
    for (line, key) in [(1, "listen"), (2, "include"), (3, "oidc")] {
        assert!(
            e.contains(&format!(
                "conf.d/x.toml:{line}: {key}: not allowed in an include file"
            )),
            "{key}: {e}"
        );
    }
}

#[test]
fn mistakes_inside_an_include_file_name_it() {
    let s = Setup::conf_d("");
    s.write(
        "conf.d/x.toml",
        "[[hosts]]\nhost = \"x.example.com\"\npolicy = \"users\"\nbypass_path = [\"/x\"]\n",
    );
    let e = s.err();
    assert_mentions(&e, &["conf.d/x.toml:4: hosts[0].bypass_path: unknown key (did you mean `hosts[0].bypass_paths`?)"]);
    // What compiling finds names the file too: hosts, their keys, policies.
    let s = Setup::conf_d(&host("main.example.com", "users"));
    s.write(
        "conf.d/x.toml",
        &format!(
            "[policies.lan]\nallowed_networks = [\"10.0.0.0/33\"]\n{}{}allowed_networks = [\"nope\"]\n",
            host("ok.example.com", "users"),
            host("x.example.com", "nobody")
        ),
    );
    let e = s.err();
    for key in [
        "conf.d/x.toml:2: policies.lan.allowed_networks[0]:",
        "conf.d/x.toml:8: hosts[1].policy: policy \"nobody\" is not defined",
        "conf.d/x.toml:9: hosts[1].allowed_networks[0]:",
    ] {
        assert!(e.contains(key), "{key}: {e}");
    }
    // A type error.
    let s = Setup::conf_d("");
    s.write("conf.d/x.toml", "hosts = 3\n");
    let e = s.err();
    assert!(e.starts_with("conf.d/x.toml:1: hosts"), "{e}");
}

#[test]
fn a_syntax_error_in_an_include_file_names_it() {
    let s = Setup::conf_d("");
    s.write("conf.d/ok.toml", &host("ok.example.com", "users"));
    s.write("conf.d/x.toml", "[[hosts]\nhost = \"x.example.com\"\n");
    let e = s.err();
    assert!(
        e.starts_with("conf.d/x.toml:1: TOML parse error at line 1"),
        "{e}"
    );
    assert!(!e.contains("source string"), "{e}");
}

#[test]
fn a_missing_directory_or_no_match_is_a_warning() {
    let s = Setup::new();
    s.main(
        r#"["conf.d/*.toml", "missing/**/*.toml"]"#,
        &host("main.example.com", "users"),
    );
    std::fs::create_dir(s.path("conf.d")).unwrap();
    let loaded = s.load().unwrap();
    assert_eq!(loaded.value.rules.hosts().len(), 1);
    assert_warned(&loaded.warnings, |w| {
        w == r#"include[0]: "conf.d/*.toml" matches no file"#
    });
    assert_warned(&loaded.warnings, |w| {
        w == r#"include[1]: "missing/**/*.toml" matches no file"#
    });
    // Only the directory that exists is watched.
    assert_eq!(loaded.sources.dirs, vec![s.path("conf.d")]);
}

#[test]
fn an_unreadable_include_file_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::conf_d("");
    let path = s.write("conf.d/x.toml", &host("x.example.com", "users"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        // Running as root: permissions do not apply.
        return;
    }
    let e = s.err();
    assert!(
        e.starts_with("conf.d/x.toml: cannot read include file:"),
        "{e}"
    );
}

#[test]
fn a_bad_pattern_names_its_index() {
    let s = Setup::new();
    s.main(r#"["conf.d/*.toml", "conf.d/[.toml"]"#, "");
    let e = s.err();
    assert!(
        e.starts_with(
            r#"pocketgate.toml:1: include[1]: "conf.d/[.toml" is not a valid glob pattern"#
        ),
        "{e}"
    );
}

#[test]
fn a_file_two_patterns_match_is_merged_once() {
    let s = Setup::new();
    s.main(r#"["conf.d/*.toml", "conf.d/git*.toml", "*.toml"]"#, "");
    s.write(
        "conf.d/gitea.toml",
        &format!(
            "[policies.git]\nallowed_groups = [\"git\"]\n{}",
            host("gitea.example.com", "git")
        ),
    );
    // `*.toml` matches the main file itself: not merged into itself.
    let loaded = s.load().unwrap();
    assert_eq!(loaded.value.rules.hosts().len(), 1);
    assert_eq!(loaded.sources.includes, vec![s.path("conf.d/gitea.toml")]);
}

#[test]
fn sources_list_the_main_include_and_secret_files() {
    let s = Setup::new();
    let session = s.write("secrets/session", &format!("{}\n", "k".repeat(40)));
    let client = s.write("secrets/client", "s3cret\n");
    let main = s.write(
        "pocketgate.toml",
        &format!(
            r#"
public_url = "https://auth.example.com"
include = ["conf.d/**/*.toml"]
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
client_secret_file = "{}"
[session]
secret_file = "{}"
cookie_domain = "example.com"
[policies.users]
"#,
            client.display(),
            session.display()
        ),
    );
    let a = s.write("conf.d/a.toml", &host("a.example.com", "users"));
    let b = s.write("conf.d/sub/b.toml", &host("b.example.com", "users"));
    let loaded = load(&main).unwrap();
    assert_eq!(
        loaded.sources.files,
        vec![main.clone(), a.clone(), b.clone(), client, session]
    );
    assert_eq!(loaded.sources.includes, vec![a, b]);
    assert_eq!(loaded.sources.dirs, vec![s.path("conf.d")]);
    // `explain`'s load reads no secret.
    let rules = load_rules(&main).unwrap();
    assert_eq!(rules.sources.files.len(), 3);
    // Text has no files.
    let loaded = load_str(&base(""), &super::no_env).unwrap();
    assert_eq!(loaded.sources, Default::default());
}

#[test]
fn include_needs_a_file_to_be_relative_to() {
    let e = load_rules_str("include = [\"conf.d/*.toml\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("include[0]:"), "{e}");
}

#[test]
fn absolute_patterns_stay_absolute() {
    let elsewhere = Setup::new();
    elsewhere.write("hosts/x.toml", &host("x.example.com", "users"));
    let pattern = format!("{}/hosts/*.toml", elsewhere.dir.path().display());
    let s = Setup::new();
    s.main(&format!("[{pattern:?}]"), "");
    let rules = s.load().unwrap().value.rules;
    let (source, _) = entry(&rules, "x.example.com");
    assert_eq!(
        source.map(PathBuf::from),
        Some(elsewhere.path("hosts/x.toml"))
    );
    assert!(Path::new(&pattern).is_absolute());
}
