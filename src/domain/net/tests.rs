use super::*;

#[test]
fn entries_parse_as_cidrs_or_single_addresses() {
    assert_eq!(
        Networks::parse_one("10.1.2.3/8").unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        Networks::parse_one(" 192.168.1.10 ").unwrap().to_string(),
        "192.168.1.10/32"
    );
    assert!(Networks::parse_one("10.0.0.0/33")
        .unwrap_err()
        .reason()
        .contains("prefix length"));
    assert!(Networks::parse_one("ten/8")
        .unwrap_err()
        .reason()
        .contains("not an IP"));
    assert!(Networks::parse_one("").is_err());
}

#[test]
fn mapped_ipv6_clients_match_ipv4_networks() {
    let nets = Networks::new(vec![Networks::parse_one("10.0.0.0/8").unwrap()]);
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    assert_eq!(nets.position(ClientAddr::new(mapped)), Some(0));
    assert!(!nets.contains(ClientAddr::new("11.0.0.1".parse().unwrap())));
    assert!(Networks::loopback().contains(ClientAddr::new("::1".parse().unwrap())));
}
