//! API tokens: 256 random bits shown once, stored only as a hash. And the fingerprint of the
//! server's CA certificate that an enrollment token of a server with TLS carries
//! (`TOKEN.FINGERPRINT`): the server computes it for its CA, the agent for the certificate it
//! is presented, and the two must agree to the character.

use sha2::{Digest, Sha256};

/// Every token starts with this, so a leaked one is easy to recognise and search for.
pub const TOKEN_PREFIX: &str = "ferry_";

/// Formats 32 random bytes as a token: `ferry_` and 64 hex digits.
pub fn format_token(random: &[u8; 32]) -> String {
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 64);
    token.push_str(TOKEN_PREFIX);
    for byte in random {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

/// The hash under which a token is stored and looked up.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The SHA-256 of a certificate's DER bytes as 64 lowercase hex digits, no separators: the
/// `FINGERPRINT` of an enrollment token `TOKEN.FINGERPRINT`.
pub fn ca_fingerprint(certificate_der: &[u8]) -> String {
    Sha256::digest(certificate_der)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_hex_of_256_bits() {
        let token = format_token(&[0xab; 32]);
        assert_eq!(token.len(), 6 + 64);
        assert!(token.starts_with("ferry_abab"));
    }

    #[test]
    fn hashes_differ_per_token_and_hide_it() {
        let a = format_token(&[1; 32]);
        let b = format_token(&[2; 32]);
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a), hash_token(&a));
        assert!(!hash_token(&a).contains(&a[6..]));
    }

    #[test]
    fn ca_fingerprints_are_sha256_in_lowercase_hex() {
        // The SHA-256 test vectors of FIPS 180-2: "abc" and the empty message.
        assert_eq!(
            ca_fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ca_fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
