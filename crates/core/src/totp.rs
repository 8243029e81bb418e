//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 6 digits, 30-second steps,
//! as every authenticator app reads them from an `otpauth://totp/…` QR code.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

pub const STEP_SECS: u64 = 30;
pub const DIGITS: u32 = 6;

/// A new secret: 20 random bytes (160 bits, RFC 4226's recommendation), in base32 without
/// padding, as authenticator apps take it.
pub fn generate_secret() -> String {
    let mut k = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut k);
    data_encoding::BASE32_NOPAD.encode(&k)
}

/// The step a Unix time falls in.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The code of one step; `None` for a secret that is not base32.
pub fn code(secret_b32: &str, step: u64) -> Option<u32> {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.trim_end_matches('=').as_bytes())
        .ok()?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).ok()?;
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    Some(bin % 10u32.pow(DIGITS))
}

/// The step whose code `input` is, among the current step and one either side (a clock a
/// little off, a code typed at the turn of a step); `None` when it is none of them. Spaces in
/// the input are ignored; anything but 6 digits is refused.
pub fn verify(secret_b32: &str, input: &str, now_step: u64) -> Option<u64> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let mut found = None;
    // every candidate is computed, so the time taken does not tell which one matched
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        if code(secret_b32, step) == Some(n) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1: the secret is ASCII "12345678901234567890"; 8-digit codes
    // there, whose last 6 digits are ours.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        for (t, eight) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(
                code(RFC_SECRET, step_at(t)),
                Some(eight % 1_000_000),
                "t={t}"
            );
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_nothing_else() {
        let s = generate_secret();
        let now = 1_000_000;
        for (d, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let step = (now as i64 + d) as u64;
            let c = format!("{:06}", code(&s, step).unwrap());
            // a code of a neighbouring step can equal one of the window by chance (1 in 10^6)
            if ok {
                assert_eq!(verify(&s, &c, now), Some(step), "offset {d}");
            } else if code(&s, now - 1) != code(&s, step)
                && code(&s, now) != code(&s, step)
                && code(&s, now + 1) != code(&s, step)
            {
                assert_eq!(verify(&s, &c, now), None, "offset {d}");
            }
        }
        assert_eq!(verify(&s, "12345", now), None);
        assert_eq!(verify(&s, "1234567", now), None);
        assert_eq!(verify(&s, "12a456", now), None);
        let c = format!("{:06}", code(&s, now).unwrap());
        assert_eq!(
            verify(&s, &format!("{} {}", &c[..3], &c[3..]), now),
            Some(now)
        );
        assert_eq!(code("not base32!", 1), None);
    }

    #[test]
    fn uri_names_issuer_account_and_secret() {
        assert_eq!(
            uri("Fiber Link", "demo", "ABC"),
            "otpauth://totp/Fiber%20Link:demo?secret=ABC&issuer=Fiber%20Link&algorithm=SHA1&digits=6&period=30"
        );
    }
}
