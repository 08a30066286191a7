use super::*;

#[test]
fn mapped_ipv6_clients_match_ipv4_networks() {
    let nets = Networks::new(vec![Networks::parse_one("10.0.0.0/8").unwrap()]);
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    assert_eq!(nets.position(ClientAddr::new(mapped)), Some(0));
    assert!(!nets.contains(ClientAddr::new("11.0.0.1".parse().unwrap())));
    assert!(Networks::loopback().contains(ClientAddr::new("::1".parse().unwrap())));
}
