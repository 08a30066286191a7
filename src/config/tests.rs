use std::io::Write;

use std::time::Duration;

use figment::providers::{Format, Toml};

use super::*;
use crate::policy::HostMatch;

mod bearer;
mod domains;
mod include;
mod json;
mod located;
mod offline;
mod scim;
mod warnings;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

fn no_env(_: &str) -> Option<String> {
    None
}

fn base(extra: &str) -> String {
    format!(
        r#"
public_url = "https://auth.example.com"
default_policy = "users"
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
client_secret = "s3cret"
[session]
secret = "{SECRET}"
cookie_domain = "example.com"
[policies.admins]
allowed_groups = ["admins"]
[policies.users]
allowed_groups = ["admins", "users"]
[policies.bypass]
allowed_networks = ["10.0.0.0/8", "192.168.1.7"]
{extra}
"#
    )
}

/// The shared configuration with `line` in place of `session.secret`.
fn with_secret_line(line: &str) -> String {
    base("").replace(&format!("secret = \"{SECRET}\""), line)
}

/// The shared configuration with `keys` added to its `[oidc]` section.
fn with_oidc(keys: &str) -> String {
    base("").replace(
        "client_id = \"pocketgate\"",
        &format!("client_id = \"pocketgate\"\n{keys}"),
    )
}

/// The shared configuration with `session.cookie_domain` set to `domain`.
fn with_cookie_domain(domain: &str) -> String {
    base("").replace(
        "cookie_domain = \"example.com\"",
        &format!("cookie_domain = \"{domain}\""),
    )
}

fn load(toml: &str) -> Result<Loaded<Runtime>, ConfigErrors> {
    load_str(toml, &no_env)
}

fn err(toml: &str) -> String {
    match load(toml) {
        Ok(_) => panic!("expected an error for:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

/// The decision for a `GET` of `path` on `host` by a user in `groups` (none:
/// no session).
fn decide_for(
    rules: &crate::policy::Rules,
    host: &str,
    path: &str,
    groups: Option<&[&str]>,
) -> crate::policy::Outcome {
    let identity = groups.map(|g| crate::policy::Identity {
        subject: "u1".into(),
        user: "alice".into(),
        groups: g.iter().map(|s| s.to_string()).collect(),
        ..crate::policy::Identity::default()
    });
    let facts = crate::policy::RequestFacts {
        host,
        path,
        client: crate::domain::ClientAddr::new("203.0.113.9".parse().unwrap()),
        method: Some("GET"),
    };
    crate::policy::decide(rules, &facts, identity.as_ref()).outcome
}

/// Assert that `toml` is refused with an error that names every one of `parts`.
#[track_caller]
fn assert_refused(toml: &str, parts: &[&str]) {
    assert_mentions(&err(toml), parts);
}

/// Assert that the error message `e` names every one of `parts`.
#[track_caller]
fn assert_mentions(e: &str, parts: &[&str]) {
    assert!(parts.iter().all(|part| e.contains(part)), "{e}");
}

/// Assert that one of `warnings` matches, listing them all when none does.
#[track_caller]
fn assert_warned(warnings: &[String], matches: impl FnMut(&String) -> bool) {
    assert!(warnings.iter().any(matches), "{warnings:?}");
}

#[test]
fn the_example_file_compiles_in_policy_only_mode() {
    let text = super::rule_tests::example_file();
    let rules = load_rules_str(&text).unwrap().value;
    assert_eq!(rules.hosts().len(), 3);
    assert_eq!(rules.default_policy().unwrap().name, "users");
    assert_eq!(rules.hosts()[0].bypass_paths[0].as_str(), "/api/health");
}

#[test]
fn defaults_are_filled_in() {
    let rt = load(&base("")).unwrap().value;
    assert_eq!(rt.listen.to_string(), "127.0.0.1:4180");
    assert_eq!(rt.trusted_proxies.len(), 2);
    assert_eq!(rt.oidc.scopes, vec!["openid", "profile", "email", "groups"]);
    assert_eq!(rt.oidc.username_claim, "preferred_username");
    assert_eq!(rt.oidc.client_auth, ClientAuth::Basic);
    assert_eq!(rt.session.cookie_name, "pocketgate");
    assert_eq!(rt.session.lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(rt.headers.user.as_str(), "x-remote-user");
    assert_eq!(rt.headers.groups.as_str(), "x-remote-groups");
    assert!(rt.public_url.https);
    // A bare address is a single-host network.
    assert_eq!(
        rt.rules.policies()[1]
            .allowed_networks
            .get(1)
            .unwrap()
            .to_string(),
        "192.168.1.7/32"
    );
}

#[test]
fn unknown_key_is_named_with_the_nearest_valid_one() {
    let e = err(&base(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_path = [\"/x\"]\n",
    ));
    assert_mentions(&e, &["hosts[0].bypass_path: unknown key"]);
    assert_mentions(&e, &["did you mean `hosts[0].bypass_paths`"]);
    assert_refused(&format!("listn = \"1\"\n{}", base("")), &["listen"]);
    assert_refused(
        &base("").replace("[oidc]", "[oidc]\nclientid = \"x\""),
        &["oidc.clientid", "oidc.client_id"],
    );
    // caddy-security's camelCase names translate.
    assert_refused(
        &base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypassPaths = [\"/x\"]\n"),
        &["did you mean `hosts[0].bypass_paths`"],
    );
    assert_refused(
        &base("").replace(
            "[policies.admins]",
            "[policies.admins]\nallowedGroups = [\"x\"]",
        ),
        &["policies.admins.allowedGroups", "allowed_groups"],
    );
    assert_refused(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nclaim_roles = [{ claim = \"groups\", value = \"x\", rol = \"admins\" }]\n"), &["hosts[0].claim_roles[0].rol", "role"]);
    assert_refused(
        &format!("{}\n[unrelated]\nx = 1\n", base("")),
        &["unrelated: unknown key"],
    );
}

#[test]
fn undefined_policy_names_key_and_the_defined_ones() {
    let e = err(&base(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"admin\"\n",
    ));
    assert_mentions(&e, &["hosts[0].policy", "\"admin\""]);
    assert_mentions(&e, &["admins, bypass, users"]);
    assert_refused(
        &base("").replace("default_policy = \"users\"", "default_policy = \"nobody\""),
        &["default_policy", "nobody"],
    );
}

#[test]
fn bad_cidr_names_key_and_value() {
    assert_refused(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nallowed_networks = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"), &["hosts[0].allowed_networks[1]", "10.0.0.0/33"]);
    assert_refused(
        &base("").replace("\"192.168.1.7\"", "\"lan\""),
        &["policies.bypass.allowed_networks[1]", "\"lan\""],
    );
    assert_refused(
        &format!("trusted_proxies = [\"300.1.1.1/32\"]\n{}", base("")),
        &["trusted_proxies[0]"],
    );
}

#[test]
fn bad_regex_names_key_and_position() {
    let e = err(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_resources = [\"^/ok$\", \"^/api/(status$\"]\n"));
    assert_mentions(&e, &["hosts[0].bypass_resources[1]"]);
    assert_mentions(&e, &["^/api/(status$", "unclosed group"]);
    assert!(
        e.contains('^'),
        "the regex error carries a position marker: {e}"
    );
}

#[test]
fn duplicate_host_is_refused_case_and_dot_insensitively() {
    assert_refused(&base(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\n[[hosts]]\nhost = \"A.Example.com.\"\npolicy = \"admins\"\n",
    ), &["hosts[1].host", "hosts[0].host"]);
    assert_refused(&base(
        "[[hosts]]\nhost = \"*.example.com\"\npolicy = \"users\"\n[[hosts]]\nhost = \"*.EXAMPLE.com\"\npolicy = \"users\"\n",
    ), &["already configured"]);
}

#[test]
fn missing_or_short_secret() {
    let toml = with_secret_line("");
    assert_refused(&toml, &["session.secret: missing", "gen-secret"]);
    assert_refused(
        &base("").replace(SECRET, "tooshort"),
        &["session.secret", "8 bytes", "32"],
    );
    // Rotation: every line must be long enough, and the message says which one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\nshort\n")).unwrap();
    let toml = with_secret_line(&format!("secret_file = {:?}", path.display().to_string()));
    assert_refused(&toml, &["line 2", "5 bytes"]);
}

#[test]
fn secret_file_rotation_and_env_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    let second = "fedcba9876543210fedcba9876543210-old";
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "{SECRET}\n\n{second}").unwrap();
    let toml = with_secret_line(&format!("secret_file = {:?}", path.display().to_string()));
    let loaded = load(&toml).unwrap();
    assert_eq!(
        secrets(&loaded.value),
        vec![SECRET.as_bytes().to_vec(), second.as_bytes().to_vec()]
    );
    assert!(!loaded
        .warnings
        .iter()
        .any(|w| w.contains("session.secret is written inline")));

    // The environment wins over the file.
    let from_env = "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE";
    let env = |k: &str| (k == "POCKETGATE_SESSION__SECRET").then(|| from_env.to_string());
    let loaded = load_str(&toml, &env).unwrap();
    assert_eq!(secrets(&loaded.value), vec![from_env.as_bytes().to_vec()]);
}

#[test]
fn inline_secrets_work_with_a_warning() {
    let loaded = load(&base("")).unwrap();
    assert_warned(&loaded.warnings, |w| {
        w.contains("session.secret is written inline")
    });
    assert_warned(&loaded.warnings, |w| {
        w.contains("oidc.client_secret is written inline")
    });
}

#[test]
fn unreadable_secret_file_names_key_and_path() {
    let toml = with_secret_line("secret_file = \"/nonexistent/pocketgate-secret\"");
    let e = err(&toml);
    assert_mentions(
        &e,
        &["session.secret_file", "/nonexistent/pocketgate-secret"],
    );
    let toml = base("").replace(
        "client_secret = \"s3cret\"",
        "client_secret_file = \"/nonexistent/client\"",
    );
    assert_refused(&toml, &["oidc.client_secret_file", "/nonexistent/client"]);
}

#[test]
fn relative_public_url_is_refused() {
    for bad in ["auth.example.com", "/auth", "ftp://auth.example.com"] {
        let e = err(&base("").replace("https://auth.example.com", bad));
        assert!(
            e.contains("public_url") && e.contains("absolute"),
            "{bad}: {e}"
        );
    }
    assert_refused(
        &base("").replace(
            "https://auth.example.com",
            "https://auth.example.com/sub/path",
        ),
        &["public_url", "without path"],
    );
}

#[test]
fn cookie_domain_must_cover_public_url() {
    assert_refused(
        &with_cookie_domain("example.org"),
        &["session.cookie_domain", "auth.example.com"],
    );
    // A suffix that is not on a label boundary does not cover.
    assert_refused(&with_cookie_domain("ample.com"), &["does not cover"]);
    // A leading dot is accepted and dropped.
    let rt = load(&with_cookie_domain(".Example.com")).unwrap().value;
    assert_eq!(rt.session.cookie_domain.unwrap().as_str(), "example.com");
}

#[test]
fn bypass_path_without_leading_slash_or_not_normal() {
    assert_refused(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_paths = [\"api/health\"]\n"), &["hosts[0].bypass_paths[0]", "/api/health"]);
    assert_refused(&base(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_paths = [\"/api/../x\"]\n",
    ), &["normal form"]);
}

#[test]
fn unanchored_regex_warns() {
    let loaded = load(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_resources = [\"api/status$\"]\n")).unwrap();
    assert_warned(&loaded.warnings, |w| {
        w.contains("bypass_resources[0]") && w.contains("anchored")
    });
}

#[test]
fn host_patterns_are_normalised_and_ports_refused() {
    let rt = load(&base("[[hosts]]\nhost = \"Grafana.Example.COM.\"\npolicy = \"admins\"\n[[hosts]]\nhost = \"*.apps.example.com\"\npolicy = \"users\"\n"))
        .unwrap()
        .value;
    assert_eq!(
        rt.rules.hosts()[0].pattern.to_string(),
        "grafana.example.com"
    );
    assert_eq!(
        rt.rules.hosts()[1].pattern.to_string(),
        "*.apps.example.com"
    );
    assert_refused(
        &base("[[hosts]]\nhost = \"a.example.com:8443\"\npolicy = \"users\"\n"),
        &["hosts[0].host", "port"],
    );
    assert_refused(
        &base("[[hosts]]\nhost = \"a b.example.com\"\npolicy = \"users\"\n"),
        &["hosts[0].host"],
    );
    let rt = load(&base(
        "[[hosts]]\nhost = \"Bücher.example.com\"\npolicy = \"users\"\n",
    ))
    .unwrap()
    .value;
    assert_eq!(
        rt.rules.hosts()[0].pattern.to_string(),
        "xn--bcher-kva.example.com",
        "IDN hosts compile to punycode"
    );
}

#[test]
fn host_lookup_exact_then_longest_wildcard_then_default() {
    let rt = load(&base(
        "[[hosts]]\nhost = \"*.example.com\"\npolicy = \"users\"\n[[hosts]]\nhost = \"*.int.example.com\"\npolicy = \"admins\"\n[[hosts]]\nhost = \"x.int.example.com\"\npolicy = \"bypass\"\n",
    ))
    .unwrap()
    .value;
    assert_eq!(entry(&rt, "x.int.example.com"), Some(2));
    assert_eq!(entry(&rt, "y.int.example.com"), Some(1));
    assert_eq!(entry(&rt, "a.b.int.example.com"), Some(1));
    assert_eq!(entry(&rt, "grafana.example.com"), Some(0));
    assert!(
        matches!(rt.rules.lookup_host("example.com"), HostMatch::Default(_)),
        "a wildcard does not cover its apex"
    );
    assert!(matches!(
        rt.rules.lookup_host("example.org"),
        HostMatch::Default(_)
    ));
    let rt = load(
        &base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\n")
            .replace("default_policy = \"users\"\n", ""),
    )
    .unwrap()
    .value;
    assert!(matches!(
        rt.rules.lookup_host("b.example.com"),
        HostMatch::Unknown
    ));
}

#[test]
fn type_errors_name_the_key() {
    assert_refused(
        &base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_paths = \"/api\"\n"),
        &["bypass_paths"],
    );
    assert_refused(
        &base("")
            .replace("lifetime", "x")
            .replace("[session]", "[session]\nlifetime = \"12 parsecs\""),
        &["session.lifetime", "12 parsecs"],
    );
}

#[test]
fn client_auth_rules() {
    // No secret at all: a public client (PKCE only), as DESIGN.md says.
    let rt = load(&base("").replace("client_secret = \"s3cret\"\n", ""))
        .unwrap()
        .value;
    assert_eq!(rt.oidc.client_auth, ClientAuth::None);
    assert_refused(
        &base("").replace(
            "client_secret = \"s3cret\"\n",
            "client_auth = \"client_secret_post\"\n",
        ),
        &["oidc.client_secret: missing"],
    );
    let rt = load(&base("").replace("client_secret = \"s3cret\"\n", "client_auth = \"none\"\n"))
        .unwrap()
        .value;
    assert_eq!(rt.oidc.client_auth, ClientAuth::None);
    assert!(rt.oidc.client_secret.is_none());
    assert_refused(
        &with_oidc("client_auth = \"jwt\""),
        &["oidc.client_auth", "\"jwt\""],
    );
    assert_refused(
        &with_oidc("scopes = [\"profile\"]"),
        &["oidc.scopes", "openid"],
    );
}

#[test]
fn missing_groups_scope_warns_when_groups_are_used() {
    let loaded = load(&with_oidc("scopes = [\"openid\", \"profile\"]")).unwrap();
    assert_warned(&loaded.warnings, |w| w.contains("groups"));
}

#[test]
fn header_names_are_validated() {
    assert_refused(
        &format!("{}\n[headers]\nuser = \"X Remote\"\n", base("")),
        &["headers.user"],
    );
    assert_refused(
        &format!("{}\n[headers]\nuser = \"Authorization\"\n", base("")),
        &["headers.user"],
    );
    assert_refused(
        &format!(
            "{}\n[headers]\nuser = \"X-Who\"\nname = \"x-who\"\n",
            base("")
        ),
        &["two identity fields"],
    );
}

#[test]
fn redirect_hosts_are_configured_ones_or_under_cookie_domain() {
    let rt = load(
        &base("[[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"admins\"\n")
            .replace("cookie_domain = \"example.com\"\n", ""),
    )
    .unwrap()
    .value;
    assert!(rt.is_redirect_host("grafana.example.com"));
    assert!(rt.is_redirect_host("auth.example.com"));
    assert!(
        !rt.is_redirect_host("evil.test"),
        "default_policy does not make every host a target"
    );
    let rt = load(&base("")).unwrap().value;
    assert!(rt.is_redirect_host("anything.example.com"));
    assert!(rt.is_redirect_host("example.com"));
    assert!(!rt.is_redirect_host("example.com.evil.test"));
    assert!(!rt.is_redirect_host("notexample.com"));
}

#[test]
fn figment_environment_overrides_use_double_underscore() {
    // Exercise the real figment layering without touching the process environment:
    // the same provider chain with an explicit environment map.
    let toml = base("");
    let figment = Figment::from(Toml::string(&toml)).merge(
        figment::providers::Serialized::default("oidc.client_id", "from-env"),
    );
    let loaded = load_figment(&figment, &no_env).unwrap();
    assert_eq!(loaded.value.oidc.client_id, "from-env");
}

#[test]
fn scalars_from_the_environment_are_read_as_text() {
    let figment = Figment::from(Toml::string(&base("")))
        .merge(figment::providers::Serialized::default(
            "oidc.client_id",
            12345,
        ))
        .merge(figment::providers::Serialized::default(
            "policies.admins.allowed_groups",
            vec![1000],
        ))
        .merge(figment::providers::Serialized::default(
            "session.cookie_name",
            true,
        ));
    let rt = load_figment(&figment, &no_env).unwrap().value;
    assert_eq!(rt.oidc.client_id, "12345");
    assert_eq!(rt.rules.policies()[0].allowed_groups, vec!["1000"]);
    assert_eq!(rt.session.cookie_name, "true");
    // Tables where text belongs are still errors that name the key.
    assert_refused(
        &base("").replace("client_id = \"pocketgate\"", "client_id = { a = 1 }"),
        &["oidc.client_id"],
    );
}

/// The index of the `[[hosts]]` entry a host name matches.
fn entry(rt: &Runtime, host: &str) -> Option<usize> {
    match rt.rules.lookup_host(host) {
        HostMatch::Entry(h) => Some(h.index),
        _ => None,
    }
}

fn secrets(rt: &Runtime) -> Vec<Vec<u8>> {
    rt.session
        .secrets
        .iter()
        .map(|s| s.bytes().to_vec())
        .collect()
}

#[test]
fn every_independent_mistake_is_reported_in_one_run() {
    let e = load(
        &base(
            r#"
[[hosts]]
host = "a.example.com"
policy = "nobody"
bypass_resources = ["^/(unclosed"]
allowed_networks = ["10.0.0.0/33"]

[[hosts]]
host = "b.example.com:8080"
policy = "users"
"#,
        )
        .replace("lifetime", "x")
        .replace("[session]", "[session]\nlifetime = \"soon\""),
    )
    .unwrap_err();
    let keys: Vec<String> = e
        .errors()
        .map(|e| {
            e.to_string()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for key in [
        "hosts[0].policy",
        "hosts[0].bypass_resources[0]",
        "hosts[0].allowed_networks[0]",
        "hosts[1].host",
        "session.lifetime",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

#[test]
fn every_unknown_key_is_reported_with_type_errors() {
    let e = load(&base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_path = [\"/x\"]\nbypassResources = [\"^/y\"]\n"))
        .unwrap_err()
        .to_string();
    assert_mentions(
        &e,
        &["hosts[0].bypass_path: unknown key (did you mean `hosts[0].bypass_paths`?)"],
    );
    assert!(
        e.contains(
            "hosts[0].bypassResources: unknown key (did you mean `hosts[0].bypass_resources`?)"
        ),
        "{e}"
    );
}

#[test]
fn case_insensitive_paths_is_a_host_key_that_folds_prefixes_and_regexes() {
    let host =
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_paths = [\"/API\"]\n";
    let on = load(&base(&format!("{host}case_insensitive_paths = true\n"))).unwrap();
    let h = &on.value.rules.hosts()[0];
    assert!(h.case_insensitive_paths);
    assert_eq!(h.bypass_paths[0].as_str(), "/api");
    let off = load(&base(host)).unwrap();
    assert!(!off.value.rules.hosts()[0].case_insensitive_paths);
    assert_eq!(off.value.rules.hosts()[0].bypass_paths[0].as_str(), "/API");

    assert_refused(&base(&format!("{host}case_insensitive_path = true\n")), &["hosts[0].case_insensitive_path: unknown key (did you mean `hosts[0].case_insensitive_paths`?)"]);
    // A regex that turns case sensitivity back on would stop matching the
    // spellings the switch folds: refused, with the key.
    for regex in ["(?-i)^/admin", "^/(?s-i:admin)$"] {
        assert_refused(&base(&format!(
            "{host}case_insensitive_paths = true\n[[hosts.rules]]\nresources = ['{regex}']\naction = \"deny\"\n"
        )), &["hosts[0].rules[0].resources[0]", "(?-i)"]);
    }
    let ok = format!("{host}case_insensitive_paths = true\n[[hosts.rules]]\nresources = ['^/(?i)admin(?s:.*)$']\naction = \"deny\"\n");
    assert!(load(&base(&ok)).is_ok());
}

#[test]
fn assertion_is_off_unless_a_header_is_set() {
    assert!(load(&base("")).unwrap().value.assertion.is_none());
    let a = load(&base("[assertion]\nheader = \"X-Pocketgate-Assertion\""))
        .unwrap()
        .value
        .assertion
        .unwrap();
    assert_eq!(a.header.as_str(), "x-pocketgate-assertion");
    assert_eq!(a.lifetime, Duration::from_secs(60));
    assert!(a.key_file.is_none());
}

#[rustfmt::skip]
#[test]
fn assertion_mistakes_name_the_key_and_the_fix() {
    let cases = [
        ("header = \"X-Remote-User\"", "assertion.header: \"X-Remote-User\" is already an identity header"),
        ("header = \"Cookie\"", "assertion.header"),
        ("header = \"X-A\"\nlifetime = \"1s\"", "must be between 2 seconds and 1 day"),
        ("header = \"X-A\"\nlifetime = \"soon\"", "assertion.lifetime: \"soon\" is not a duration"),
        ("header = \"X-A\"\nkey_file = \"/nonexistent/assertion.pem\"", "assertion.key_file"),
        ("header = \"X-A\"\nlifetme = \"5s\"", "lifetme"),
    ];
    for (extra, want) in cases {
        let e = err(&base(&format!("[assertion]\n{extra}")));
        assert!(e.contains(want), "{extra}: {e}");
    }
}

#[test]
fn assertion_with_redis_needs_a_shared_key_file_and_cookies_warn() {
    let redis = base("[assertion]\nheader = \"X-A\"").replace(
        "[session]\n",
        "[session]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\n",
    );
    assert!(
        err(&redis).contains("assertion.key_file"),
        "{}",
        err(&redis)
    );
    let cookie = base("[assertion]\nheader = \"X-A\"")
        .replace("[session]\n", "[session]\nstore = \"cookie\"\n");
    let loaded = load(&cookie).unwrap();
    assert_warned(&loaded.warnings, |w| w.contains("generated in memory"));
}

#[test]
fn a_key_file_that_holds_no_p256_key_is_refused() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        f,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    )
    .unwrap();
    assert_refused(
        &base(&format!(
            "[assertion]\nheader = \"X-A\"\nkey_file = {:?}",
            f.path().display().to_string()
        )),
        &["CERTIFICATE"],
    );
}

#[test]
fn metrics_listen_is_a_second_address_other_than_listen() {
    assert_eq!(load(&base("")).unwrap().value.metrics_listen, None);
    let rt = load(&format!(
        "metrics_listen = \"127.0.0.1:9180\"\n{}",
        base("")
    ))
    .unwrap()
    .value;
    assert_eq!(
        rt.metrics_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9180")
    );
    assert_refused(
        &format!("metrics_listen = \"localhost\"\n{}", base("")),
        &["metrics_listen", "is not an IP:port address"],
    );
    assert_refused(
        &format!(
            "listen = \"127.0.0.1:4180\"\nmetrics_listen = \"127.0.0.1:4180\"\n{}",
            base("")
        ),
        &["metrics_listen", "`listen`'s address"],
    );
    // Misspelt or camelCase (the NixOS option's spelling): the key is named.
    for wrong in ["metrics_listn", "metricsListen"] {
        let e = err(&format!("{wrong} = \"127.0.0.1:9180\"\n{}", base("")));
        assert!(e.contains("did you mean `metrics_listen`"), "{wrong}: {e}");
    }
}
