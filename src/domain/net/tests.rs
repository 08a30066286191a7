use super::*;
use crate::domain::tests::check_parse;

#[rustfmt::skip]
#[test]
fn entries_parse_as_cidrs_or_single_addresses() {
    check_parse(Networks::parse_one, &[
        ("10.1.2.3/8",      Ok("10.0.0.0/8")),
        (" 192.168.1.10 ",  Ok("192.168.1.10/32")),
        ("10.0.0.0/33",     Err("prefix length")),
        ("ten/8",           Err("not an IP")),
        ("",                Err("")),
    ]);
}

#[test]
fn mapped_ipv6_clients_match_ipv4_networks() {
    let nets = Networks::new(vec![Networks::parse_one("10.0.0.0/8").unwrap()]);
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    assert_eq!(nets.position(ClientAddr::new(mapped)), Some(0));
    assert!(!nets.contains(ClientAddr::new("11.0.0.1".parse().unwrap())));
    assert!(Networks::loopback().contains(ClientAddr::new("::1".parse().unwrap())));
}
