//! Warnings that save a first deployment: a public client nobody chose, a
//! protected host that is the provider's or pocketgate's own (a login loop);
//! and `support_contact`.

use super::*;

fn warnings(toml: &str) -> Vec<String> {
    load(toml).unwrap().warnings
}

#[test]
fn a_missing_client_secret_warns_and_names_the_switch_in_pocket_id() {
    let public = base("").replace("client_secret = \"s3cret\"\n", "");
    let w = warnings(&public);
    assert!(
        w.iter().any(|w| w.starts_with("oidc.client_secret")
            && w.contains("public client")
            && w.contains("\"Public Client\"")),
        "{w:?}"
    );
    // Chosen on purpose: no warning.
    let chosen = public.replace("client_id = ", "client_auth = \"none\"\nclient_id = ");
    assert!(
        !warnings(&chosen)
            .iter()
            .any(|w| w.contains("public client")),
        "{:?}",
        warnings(&chosen)
    );
    assert!(!warnings(&base(""))
        .iter()
        .any(|w| w.contains("public client")));
}

#[test]
fn a_host_entry_covering_the_provider_or_pocketgate_warns_of_a_login_loop() {
    let loops = |hosts: &str| -> Vec<String> {
        warnings(&base(hosts))
            .into_iter()
            .filter(|w| w.contains("loops"))
            .collect()
    };
    let wildcard = loops("[[hosts]]\nhost = \"*.example.com\"\npolicy = \"users\"\n");
    assert_eq!(wildcard.len(), 2, "{wildcard:?}");
    assert!(
        wildcard.iter().any(|w| w.contains("id.example.com")
            && w.contains("oidc.issuer")
            && w.contains("instead of the wildcard")),
        "{wildcard:?}"
    );
    assert!(
        wildcard
            .iter()
            .any(|w| w.contains("auth.example.com") && w.contains("public_url")),
        "{wildcard:?}"
    );
    let exact = loops("[[hosts]]\nhost = \"id.example.com\"\npolicy = \"users\"\n");
    assert_eq!(exact.len(), 1, "{exact:?}");
    assert!(
        exact[0].starts_with("hosts[0]: id.example.com covers"),
        "{exact:?}"
    );
    assert!(
        loops("[[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"users\"\n").is_empty(),
        "default_policy alone does not warn (check's summary says it)"
    );
}

#[test]
fn support_contact_is_trimmed_text_or_nothing() {
    let rt = |top: &str| load(&format!("{top}\n{}", base(""))).unwrap().value;
    assert_eq!(rt("").support_contact, None);
    assert_eq!(rt("support_contact = \"  \"").support_contact, None);
    assert_eq!(
        rt("support_contact = \" Ask Alice \"")
            .support_contact
            .as_deref(),
        Some("Ask Alice")
    );
}
