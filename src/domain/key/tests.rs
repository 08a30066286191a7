#![allow(clippy::unwrap_used, reason = "test code")]
use super::*;

#[test]
fn a_generated_key_survives_pem_and_keeps_its_kid() {
    let key = SigningKey::from_random(&[7u8; 32]).unwrap();
    let pem = key.to_pem().unwrap();
    let again = SigningKey::parse_pem(&format!("{pem}{pem}")).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again.first().unwrap().kid(), key.kid());
    assert_eq!(key.kid().len(), 43);
}

#[test]
fn other_blocks_and_empty_files_are_refused() {
    assert!(SigningKey::parse_pem("").is_err());
    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(SigningKey::parse_pem(cert)
        .unwrap_err()
        .reason()
        .contains("CERTIFICATE"));
    assert!(SigningKey::parse_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
}
