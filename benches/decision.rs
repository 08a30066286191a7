//! The cost of one decision, with 1 and with 1,000 configured hosts.
//!
//! "cookie": open the sealed session cookie (AES-256-GCM + JSON) and decide an
//! allowed request — what every signed-in request costs. "bypass": a bypass
//! path from an allowed network — no cookie work at all. The numbers must stay
//! flat as the host count grows (host lookup is a hash lookup per label).
//!
//! "metrics": what recording one decision for `/metrics` adds (counter and
//! latency histogram); it runs on every auth request, so it must stay a few
//! atomic increments.
//!
//! Run: `cargo bench --bench decision`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pocketgate::config::{load_str, Runtime};
use pocketgate::domain::ClientAddr;
use pocketgate::http::metrics::{Endpoint, Metrics};
use pocketgate::policy::{decide, Identity, Outcome, RequestFacts};
use pocketgate::session::{Session, SessionKeys};

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn runtime(hosts: usize) -> Runtime {
    let mut toml = format!(
        "public_url = \"https://auth.example.com\"\n[oidc]\nissuer = \"https://id.example.com\"\nclient_id = \"pg\"\nclient_auth = \"none\"\n[session]\nsecret = \"{SECRET}\"\ncookie_domain = \"example.com\"\n[policies.admins]\nallowed_groups = [\"admins\"]\n[policies.users]\nallowed_groups = [\"admins\", \"users\"]\n"
    );
    for i in 0..hosts {
        toml.push_str(&format!(
            "[[hosts]]\nhost = \"app{i}.example.com\"\npolicy = \"{}\"\nbypass_paths = [\"/api/health\", \"/metrics\"]\nbypass_resources = [\"^/api/v[0-9]+/status$\"]\nallowed_networks = [\"10.50.0.0/16\"]\nclaim_roles = [{{ claim = \"groups\", value = \"app-admins\", role = \"admins\" }}]\n",
            if i % 2 == 0 { "admins" } else { "users" }
        ));
    }
    load_str(&toml, &|_| None).expect("bench config").value
}

fn sealed_session(keys: &SessionKeys) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Session {
        identity: Identity {
            subject: "3ffb29e3-4b67-8262-8050-78ae568e43af".into(),
            user: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            name: Some("Alice Andersen".into()),
            groups: vec!["admins".into(), "users".into(), "media".into()],
            claims: Default::default(),
            sign_in: Default::default(),
        },
        issued: now,
        expires: now + 3600,
    }
    .seal(keys)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for hosts in [1usize, 1000] {
        let rt = runtime(hosts);
        let keys = SessionKeys::new(&rt.session.secrets);
        let cookie = sealed_session(&keys);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // The last configured host: no advantage from insertion order.
        let host = format!("app{}.example.com", (hosts - 1) & !1);
        let signed_in = RequestFacts {
            host: &host,
            path: "/d/abc/dashboard",
            client: ClientAddr::new("203.0.113.7".parse().unwrap()),
            method: Some("GET"),
        };
        let bypass = RequestFacts {
            host: &host,
            path: "/api/health",
            client: ClientAddr::new("10.50.1.2".parse().unwrap()),
            method: Some("GET"),
        };
        // Sanity: the benchmarked paths really are the intended outcomes.
        let s = Session::open(&keys, &cookie, now).unwrap();
        assert_eq!(
            decide(&rt.rules, &signed_in, Some(&s.identity)).outcome,
            Outcome::Allow
        );
        assert_eq!(decide(&rt.rules, &bypass, None).outcome, Outcome::Bypass);

        group.bench_with_input(BenchmarkId::new("cookie", hosts), &hosts, |b, _| {
            b.iter(|| {
                let s = Session::open(&keys, black_box(&cookie), now).unwrap();
                black_box(decide(&rt.rules, black_box(&signed_in), Some(&s.identity)).outcome)
            })
        });
        group.bench_with_input(BenchmarkId::new("bypass", hosts), &hosts, |b, _| {
            b.iter(|| black_box(decide(&rt.rules, black_box(&bypass), None).outcome))
        });
    }
    group.finish();
}

/// `hosts` hosts with `rules` `[[hosts.rules]]` each: paths, resources,
/// methods and networks in turn, every action.
fn rules_runtime(hosts: usize, rules: usize) -> Runtime {
    let mut toml = format!(
        "public_url = \"https://auth.example.com\"\n[oidc]\nissuer = \"https://id.example.com\"\nclient_id = \"pg\"\nclient_auth = \"none\"\n[session]\nsecret = \"{SECRET}\"\ncookie_domain = \"example.com\"\n[policies.admins]\nallowed_groups = [\"admins\"]\n[policies.users]\nallowed_groups = [\"admins\", \"users\"]\n"
    );
    for i in 0..hosts {
        toml.push_str(&format!(
            "[[hosts]]\nhost = \"app{i}.example.com\"\npolicy = \"users\"\n"
        ));
        for j in 0..rules {
            let rule = match j % 4 {
                0 => format!("paths = [\"/admin{j}\", \"/settings{j}\"]\npolicy = \"admins\""),
                1 => format!("resources = [\"^/api/v[0-9]+/admin{j}\"]\naction = \"deny\""),
                2 => format!("paths = [\"/api{j}\"]\nmethods = [\"DELETE\", \"PUT\"]\nnetworks = [\"10.0.0.0/8\"]\npolicy = \"admins\""),
                _ => format!("paths = [\"/public{j}\"]\nresources = [\"^/static{j}/.*\\\\.png$\"]\naction = \"bypass\""),
            };
            toml.push_str(&format!("[[hosts.rules]]\n{rule}\n"));
        }
    }
    load_str(&toml, &|_| None).expect("bench config").value
}

/// The decision alone (no cookie) for a signed-in user: one host without
/// rules against 1,000 hosts with 20 rules each, for a path no rule takes, a
/// path a prefix rule takes (`/admin16` → admins: denied) and one the last
/// rule's regex takes (bypass). DESIGN's budget: within 2× of no rules.
fn bench_rules(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules");
    let user = Identity {
        subject: "s".into(),
        user: "alice".into(),
        groups: vec!["users".into()],
        ..Identity::default()
    };
    for (hosts, rules) in [(1usize, 0usize), (1000, 0), (1, 20), (1000, 20)] {
        let rt = rules_runtime(hosts, rules);
        let host = format!("app{}.example.com", hosts - 1);
        for (name, path) in [
            ("no-match", "/d/abc/dashboard"),
            ("prefix-rule", "/admin16/users"),
            ("regex-rule", "/static19/a.png"),
        ] {
            let facts = RequestFacts {
                host: &host,
                path,
                client: ClientAddr::new("203.0.113.7".parse().unwrap()),
                method: Some("GET"),
            };
            let expected = match (rules, name) {
                (0, _) | (_, "no-match") => Outcome::Allow,
                (_, "prefix-rule") => Outcome::Deny,
                _ => Outcome::Bypass,
            };
            assert_eq!(decide(&rt.rules, &facts, Some(&user)).outcome, expected);
            group.bench_function(BenchmarkId::new(name, format!("{hosts}x{rules}")), |b| {
                b.iter(|| black_box(decide(&rt.rules, black_box(&facts), Some(&user)).outcome))
            });
        }
    }
    group.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let metrics = Metrics::default();
    // Counted by the [[hosts]] entry that matched: 1,000 hosts, the last one.
    let rt = rules_runtime(1000, 0);
    let decisions = metrics.decisions(&rt.rules);
    let host = rt.rules.lookup_host("app999.example.com");
    let took = Duration::from_micros(3);
    c.bench_function("metrics/decision", |b| {
        b.iter(|| {
            decisions.count(
                black_box(Endpoint::AuthRequest),
                black_box(host),
                black_box(Outcome::Allow),
                black_box(took),
            )
        })
    });
}

criterion_group!(benches, bench, bench_rules, bench_metrics);
criterion_main!(benches);
