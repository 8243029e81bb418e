//! Keys and signatures: request signing (HMAC-SHA256), payment preimages derived from the tip id,
//! CKB's payment hash, and sealing app secrets at rest.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The operator's master key (32 bytes from the environment or a file). Every other key of the
/// service is derived from it, each for one purpose, so that no key is used twice.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Reads 64 hex digits (surrounding white space ignored).
    pub fn from_hex(s: &str) -> Result<MasterKey, String> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| "the master key must be 64 hex digits (32 bytes)".to_string())?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the master key must be 64 hex digits (32 bytes)".to_string())?;
        if arr == [0u8; 32] {
            return Err("the master key must not be all zeros".into());
        }
        Ok(MasterKey(arr))
    }

    /// A fresh random key, for `dev` and tests.
    pub fn generate() -> MasterKey {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        MasterKey(k)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.0, purpose.as_bytes())
    }

    /// The key payment preimages are derived under.
    pub fn preimage_key(&self) -> PreimageKey {
        PreimageKey(self.derive("fiber-link/v1/payment-preimage"))
    }

    /// The key app secrets are sealed under in the database.
    pub fn secret_box(&self) -> SecretBox {
        SecretBox(self.derive("fiber-link/v1/app-secret-seal"))
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Derives a tip's payment preimage: HMAC-SHA256 of the tip id. Nothing secret is stored, and a
/// retry after a crash or timeout derives the same preimage, hence the same invoice.
#[derive(Clone)]
pub struct PreimageKey([u8; 32]);

impl PreimageKey {
    pub fn preimage_for(&self, tip_id: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, tip_id)
    }
}

/// FNN's default payment hash (`hash_algorithm: ckb_hash`): blake2b-256 with CKB's
/// `ckb-default-hash` personalization.
pub fn payment_hash(preimage: &[u8; 32]) -> [u8; 32] {
    ckb_hash::blake2b_256(preimage)
}

/// The bytes an API request signature covers: `<ts>.<nonce>.<raw body>`.
pub fn signing_payload(ts: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(ts.len() + nonce.len() + body.len() + 2);
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(nonce.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    msg
}

/// `x-signature`: lowercase hex of HMAC-SHA256(app secret, `<ts>.<nonce>.<raw body>`). The key is
/// the secret string's bytes exactly as `fiber-link app create` printed it.
pub fn sign_request(secret: &str, ts: &str, nonce: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(
        secret.as_bytes(),
        &signing_payload(ts, nonce, body),
    ))
}

/// Checks a request signature in constant time. `signature` is the decoded `x-signature`.
pub fn verify_request(
    secret: &str,
    ts: &str,
    nonce: &str,
    body: &[u8],
    signature: &[u8; 32],
) -> bool {
    let expected = hmac_sha256(secret.as_bytes(), &signing_payload(ts, nonce, body));
    expected.ct_eq(signature).into()
}

/// A new app secret: `fls_` and 64 hex digits (256 random bits).
pub fn generate_app_secret() -> String {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    format!("fls_{}", hex::encode(k))
}

/// Seals and opens app secrets (ChaCha20-Poly1305; the app and secret ids are bound as associated
/// data, so a sealed secret cannot be moved to another app or slot).
#[derive(Clone)]
pub struct SecretBox([u8; 32]);

impl SecretBox {
    /// Returns `nonce (12 bytes) ‖ ciphertext`.
    pub fn seal(&self, aad: &str, plaintext: &str) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("encryption with a valid key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`SecretBox::seal`] produced; `None` if it was tampered with, sealed under
    /// another master key, or for another app.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let (nonce, ct) = sealed.split_at(12);
        let pt = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(pt).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_example() {
        // The worked example in docs/api.md; a client in any language must produce this hex.
        let sig = sign_request(
            "fls_0000000000000000000000000000000000000000000000000000000000000001",
            "1767225600",
            "n0nce-0001",
            br#"{"jsonrpc":"2.0","id":1,"method":"health.ping","params":{}}"#,
        );
        assert_eq!(sig, DOCUMENTED_SIGNATURE);
        let bytes: [u8; 32] = hex::decode(&sig).unwrap().try_into().unwrap();
        assert!(verify_request(
            "fls_0000000000000000000000000000000000000000000000000000000000000001",
            "1767225600",
            "n0nce-0001",
            br#"{"jsonrpc":"2.0","id":1,"method":"health.ping","params":{}}"#,
            &bytes
        ));
        assert!(!verify_request(
            "fls_0000000000000000000000000000000000000000000000000000000000000001",
            "1767225601",
            "n0nce-0001",
            br#"{"jsonrpc":"2.0","id":1,"method":"health.ping","params":{}}"#,
            &bytes
        ));
    }

    /// Computed independently with `printf '%s' '1767225600.n0nce-0001.{...}' | openssl dgst -sha256 -hmac <secret>`.
    const DOCUMENTED_SIGNATURE: &str = include_str!("../testdata/worked-example.sig").trim_ascii();

    #[test]
    fn payment_hash_is_ckb_blake2b() {
        // blake2b-256("", personalization "ckb-default-hash") is CKB's well-known empty hash.
        assert_eq!(
            hex::encode(ckb_hash::blake2b_256([])),
            "44f4c69744d5f8c55d642062949dcae49bc4e7ef43d388c5a12f42b5633d163e"
        );
        let p = [1u8; 32];
        assert_eq!(payment_hash(&p), ckb_hash::blake2b_256(p));
        assert_ne!(payment_hash(&p), payment_hash(&[2u8; 32]));
    }

    #[test]
    fn preimages_are_stable_per_tip_and_key() {
        let k1 = MasterKey::from_hex(&"11".repeat(32))
            .unwrap()
            .preimage_key();
        let k2 = MasterKey::from_hex(&"22".repeat(32))
            .unwrap()
            .preimage_key();
        assert_eq!(k1.preimage_for(b"tip-a"), k1.preimage_for(b"tip-a"));
        assert_ne!(k1.preimage_for(b"tip-a"), k1.preimage_for(b"tip-b"));
        assert_ne!(k1.preimage_for(b"tip-a"), k2.preimage_for(b"tip-a"));
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let m = MasterKey::generate();
        let b = m.secret_box();
        let sealed = b.seal("app_1/1", "fls_abc");
        assert_eq!(b.open("app_1/1", &sealed).as_deref(), Some("fls_abc"));
        assert_eq!(b.open("app_2/1", &sealed), None);
        assert_eq!(
            MasterKey::generate().secret_box().open("app_1/1", &sealed),
            None
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(b.open("app_1/1", &tampered), None);
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"00".repeat(32)).is_err());
        let k = MasterKey::generate();
        assert_eq!(
            MasterKey::from_hex(&k.to_hex()).unwrap().to_hex(),
            k.to_hex()
        );
    }
}
