//! Checking shared secrets without leaking them through timing.
//!
//! Every comparison of a secret against request input goes through [`constant_time_eq`] (the
//! time taken does not depend on where the first differing byte is). HMAC checks verify over
//! the raw body bytes, before any parsing.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// Compares two secrets in time independent of their content (length still shows).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The user and password of an `Authorization: Basic <base64>` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Whether the request carries `Bearer <expected>`.
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    bearer_token(headers).is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Hex HMAC-SHA1 of `body` under `secret` (Webex's `X-Spark-Signature`).
pub fn hmac_sha1_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a hex HMAC-SHA256 signature, with or without a `sha256=` prefix (GitHub style).
pub fn verify_hmac_sha256(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let given = signature.trim();
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Verifies a hex HMAC-SHA1 signature.
pub fn verify_hmac_sha1(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(auth).unwrap(),
        );
        h
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_matches(&headers("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(&headers("bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&headers("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn basic_auth() {
        // "alertmanager:pa:ss" — a colon in the password is kept.
        let encoded = base64::engine::general_purpose::STANDARD.encode("alertmanager:pa:ss");
        assert_eq!(
            basic_credentials(&headers(&format!("Basic {encoded}"))),
            Some(("alertmanager".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials(&headers("Basic !!!")), None);
    }

    #[test]
    fn hmac_signatures() {
        // RFC 4231 test case 2.
        let sig = hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &format!("sha256={sig}")
        ));
        assert!(!verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_hmac_sha256(b"Jefe", b"x", "not-hex"));
        // RFC 2202 test case 2.
        let sig1 = hmac_sha1_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(sig1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert!(verify_hmac_sha1(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig1
        ));
        assert!(!verify_hmac_sha1(
            b"other",
            b"what do ya want for nothing?",
            &sig1
        ));
    }
}
