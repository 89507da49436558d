//! API tokens: 256 random bits shown once, stored only as a hash.

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
}
