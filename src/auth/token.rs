//! API tokens: how they look, how they are kept, how they are compared.
//!
//! A token is `hld_<id>_<secret>`: the id (12 hex digits) finds the row, the secret (32 random
//! bytes, base64url) is what makes it unguessable. Only SHA-256 of the whole token is stored —
//! a plain hash is enough for 256-bit random secrets (a slow password hash protects guessable
//! passwords, which these are not). Hashes are compared in constant time.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub type TokenHash = [u8; 32];

pub const PREFIX: &str = "hld_";

/// A fresh token and its id.
pub fn generate() -> (String, String) {
    let mut rng = rand::thread_rng();
    let mut id = [0u8; 6];
    rng.fill_bytes(&mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    (format!("{PREFIX}{id}_{secret}"), id)
}

/// Whether `s` has the shape of a token id (12 hex digits).
pub fn is_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The id part of a presented token, if it has the shape of one of ours.
pub fn id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (is_id(id) && !secret.is_empty()).then_some(id)
}

pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub fn hash_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Constant-time equality of two short secrets (CSRF tokens), via their hashes so that length
/// differences do not show either.
pub fn secret_eq(a: &str, b: &str) -> bool {
    hash_eq(&hash_token(a), &hash_token(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_stably() {
        let (t, id) = generate();
        let (t2, _) = generate();
        assert_ne!(t, t2);
        assert_eq!(id_of(&t), Some(id.as_str()));
        assert!(t.len() > 50, "{t}");
        assert!(hash_eq(&hash_token(&t), &hash_token(&t)));
        assert!(!hash_eq(&hash_token(&t), &hash_token(&t2)));
        assert!(secret_eq("abc", "abc") && !secret_eq("abc", "abd") && !secret_eq("abc", "abcd"));
    }

    #[test]
    fn odd_tokens_have_no_id() {
        for bad in [
            "",
            "hld_",
            "hld_123_",
            "hld_zzzzzzzzzzzz_x",
            "hld_0123456789ab",
            "xyz_0123456789ab_s",
            "hld_0123456789abc_s",
        ] {
            assert_eq!(id_of(bad), None, "{bad:?}");
        }
        assert_eq!(id_of("hld_0123456789ab_s"), Some("0123456789ab"));
    }
}
