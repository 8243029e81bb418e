//! Property tests of the parsers and rules of `fiber-link-core` that read outside input: decimal
//! amounts, community ids and tip messages, request signatures, sealed app secrets, and the
//! withdrawal policy.
//!
//! Every property states what the code promises (its doc comments and DESIGN §2, §6, §7) and
//! checks it against an oracle written independently of the code under test.

use fiber_link_core::crypto::{
    sign_request, signing_payload, verify_request, MasterKey, SecretBox,
};
use fiber_link_core::input::{external_id, tip_message, MAX_ID_LEN, MAX_MESSAGE_CHARS};
use fiber_link_core::money::MAX_DECIMALS;
use fiber_link_core::withdrawal::{bounds, check, Figures, Standing, MIN_ONCHAIN_OUTPUT};
use fiber_link_core::{format_decimal, parse_decimal, Amount, AmountError, FeeMode, Policy, Rail};
use proptest::prelude::*;

const U128_MAX_DIGITS: &str = "340282366920938463463374607431768211455";
const U128_MAX_PLUS_ONE: &str = "340282366920938463463374607431768211456";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // no regression files next to the sources: a failure prints its minimal input
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Amounts (DESIGN §2): parse_decimal / format_decimal
// ---------------------------------------------------------------------------------------------

/// Amounts spread over every order of magnitude of a u128, with the edges.
fn any_amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        3 => (0u32..=128).prop_flat_map(|bits| {
            let hi = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
            0..=hi
        }),
        1 => Just(u128::MAX),
        1 => Just(1u128),
        1 => (0u32..=38).prop_map(|e| 10u128.pow(e)),
    ]
}

fn decimals() -> impl Strategy<Value = u8> {
    0..=MAX_DECIMALS
}

/// A well-formed decimal in the grammar the parser accepts: `0|[1-9][0-9]*` with an optional
/// non-empty fraction. The value may be zero, have too many decimals, or overflow.
fn well_formed() -> impl Strategy<Value = (String, Option<String>)> {
    (
        prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,45}"],
        proptest::option::of("[0-9]{1,45}"),
    )
}

/// The digits of `int.frac` scaled by `decimals` (fraction right-padded), leading zeros
/// stripped: the exact base-unit value as a decimal string, computed on strings only.
fn scaled_digits(int: &str, frac: &str, decimals: u8) -> String {
    let mut s = format!("{int}{frac}");
    for _ in frac.len()..decimals as usize {
        s.push('0');
    }
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// Whether a decimal digit string (no leading zeros) is at most u128::MAX.
fn fits_u128(digits: &str) -> bool {
    digits.len() < U128_MAX_DIGITS.len()
        || (digits.len() == U128_MAX_DIGITS.len() && digits <= U128_MAX_DIGITS)
}

/// `digits` (an integer in base units) written with `decimals` decimals, not shortened.
fn with_point(digits: &str, decimals: u8) -> String {
    let d = decimals as usize;
    if d == 0 {
        return digits.to_string();
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (i, f) = padded.split_at(padded.len() - d);
    format!("{i}.{f}")
}

/// Characters that are digits to a person (or to `char::is_numeric`) but not ASCII digits.
fn non_ascii_digit() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        '٠', '١', '٥', '۵', '߁', '१', '৩', '๓', '０', '９', '𝟏', '𝟘', '²', '½', 'Ⅷ', '①', '〇',
    ])
}

proptest! {
    #![proptest_config(config(1024))]

    /// format → parse is the identity for every non-zero amount and every allowed decimals.
    #[test]
    fn amount_format_then_parse_round_trips(units in any_amount(), d in decimals()) {
        prop_assume!(units > 0);
        let s = format_decimal(Amount::from_base_units(units), d);
        prop_assert_eq!(parse_decimal(&s, d), Ok(Amount::from_base_units(units)), "{}", s);
    }

    /// format writes the shortest exact form: digits, at most one point, no leading zero in the
    /// integer part, no trailing zero in the fraction, and no more fraction digits than decimals.
    #[test]
    fn amount_format_is_canonical(units in any_amount(), d in decimals()) {
        let s = format_decimal(Amount::from_base_units(units), d);
        let (i, f) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s.as_str(), None),
        };
        prop_assert!(!i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()), "{}", s);
        prop_assert!(i == "0" || !i.starts_with('0'), "{}", s);
        if let Some(f) = f {
            prop_assert!(!f.is_empty() && f.len() <= d as usize, "{}", s);
            prop_assert!(f.bytes().all(|b| b.is_ascii_digit()) && !f.ends_with('0'), "{}", s);
        }
        // and it is exact: the unshortened form has the same value digits
        let long = with_point(&units.to_string(), d);
        let (li, lf) = long.split_once('.').unwrap_or((long.as_str(), ""));
        prop_assert_eq!(i, li);
        prop_assert_eq!(f.unwrap_or(""), lf.trim_end_matches('0'));
    }

    /// Trailing zeros within the asset's decimals do not change the value.
    #[test]
    fn amount_trailing_zeros_within_decimals_are_the_same_value(
        units in 1u128..=u64::MAX as u128, d in 1..=MAX_DECIMALS, extra in 0usize..=38,
    ) {
        let s = format_decimal(Amount::from_base_units(units), d);
        let frac_len = s.split_once('.').map_or(0, |(_, f)| f.len());
        let room = d as usize - frac_len;
        let pad = extra.min(room);
        let padded = if frac_len == 0 {
            if pad == 0 { s.clone() } else { format!("{s}.{}", "0".repeat(pad)) }
        } else {
            format!("{s}{}", "0".repeat(pad))
        };
        prop_assert_eq!(parse_decimal(&padded, d), Ok(Amount::from_base_units(units)), "{}", padded);
    }

    /// Every well-formed string gets exactly the outcome its value calls for, in this order:
    /// too many decimals, too large, zero, else the exact value.
    #[test]
    fn amount_well_formed_strings_get_the_exact_outcome(
        (int, frac) in well_formed(), d in decimals(),
    ) {
        let s = match &frac {
            Some(f) => format!("{int}.{f}"),
            None => int.clone(),
        };
        let f = frac.as_deref().unwrap_or("");
        let got = parse_decimal(&s, d);
        if f.len() > d as usize {
            prop_assert_eq!(got, Err(AmountError::TooManyDecimals { decimals: d }), "{}", s);
        } else {
            let digits = scaled_digits(&int, f, d);
            if !fits_u128(&digits) {
                prop_assert_eq!(got, Err(AmountError::Overflow), "{}", s);
            } else if digits == "0" {
                prop_assert_eq!(got, Err(AmountError::Zero), "{}", s);
            } else {
                let a = got.map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
                prop_assert_eq!(a.base_units().to_string(), digits, "{}", s);
            }
        }
    }

    /// The largest amount parses at every decimals; one base unit more is too large.
    #[test]
    fn amount_u128_edge(d in decimals()) {
        let max = with_point(U128_MAX_DIGITS, d);
        prop_assert_eq!(parse_decimal(&max, d), Ok(Amount::from_base_units(u128::MAX)));
        let over = with_point(U128_MAX_PLUS_ONE, d);
        prop_assert_eq!(parse_decimal(&over, d), Err(AmountError::Overflow), "{}", over);
    }

    /// Anything with more fraction digits than the asset has is refused for that reason, even
    /// when the extra digits are zeros or the value is zero.
    #[test]
    fn amount_too_many_decimals_is_refused(
        int in prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,20}"],
        d in decimals(),
        frac in "[0-9]{1,60}",
    ) {
        let frac = if frac.len() <= d as usize {
            format!("{frac}{}", "0".repeat(d as usize + 1 - frac.len()))
        } else {
            frac
        };
        let s = format!("{int}.{frac}");
        prop_assert_eq!(parse_decimal(&s, d), Err(AmountError::TooManyDecimals { decimals: d }), "{}", s);
    }

    /// Zero, however written within the decimals, is refused as zero.
    #[test]
    fn amount_zero_is_refused(d in decimals(), zeros in 0usize..=38) {
        prop_assert_eq!(parse_decimal("0", d), Err(AmountError::Zero));
        let z = zeros.min(d as usize);
        if z > 0 {
            let s = format!("0.{}", "0".repeat(z));
            prop_assert_eq!(parse_decimal(&s, d), Err(AmountError::Zero), "{}", s);
        }
    }

    /// Signs, exponents, surrounding or inner white space, leading zeros, bare points, grouping
    /// and hex prefixes around a valid amount are malformed.
    #[test]
    fn amount_decorated_numbers_are_malformed(
        units in 1u128..=u64::MAX as u128,
        d in decimals(),
        exp in 0u32..=40,
        ws in prop::sample::select(vec![" ", "\t", "\n", "\r", "\u{a0}", "\u{2003}", "\u{feff}"]),
        kind in 0u8..=13,
    ) {
        let s = format_decimal(Amount::from_base_units(units), d);
        let bad = match kind {
            0 => format!("-{s}"),
            1 => format!("+{s}"),
            2 => format!("{s}e{exp}"),
            3 => format!("{s}E{exp}"),
            4 => format!("{s}e-{exp}"),
            5 => format!("{ws}{s}"),
            6 => format!("{s}{ws}"),
            7 => format!("0{s}"),
            8 => format!(".{s}"),
            9 => format!("{s}."),
            10 => format!("0x{s}"),
            11 => format!("{s}.1.2"),
            12 => format!("1,{s}"),
            _ => {
                let mid = s.len() / 2;
                format!("{}{ws}{}", &s[..mid], &s[mid..])
            }
        };
        prop_assert_eq!(parse_decimal(&bad, d), Err(AmountError::Malformed), "{:?}", bad);
    }

    /// A non-ASCII digit anywhere makes the string malformed (Rust's `parse::<u128>` would not
    /// take it either, but the parser must say "malformed", not "too large").
    #[test]
    fn amount_non_ascii_digits_are_malformed(
        units in 1u128..=u64::MAX as u128, d in decimals(), c in non_ascii_digit(), at in any::<prop::sample::Index>(),
    ) {
        let s = format_decimal(Amount::from_base_units(units), d);
        let chars: Vec<char> = s.chars().collect();
        let i = at.index(chars.len() + 1);
        for bad in [
            {
                let mut v = chars.clone();
                v.insert(i, c);
                v.into_iter().collect::<String>()
            },
            {
                let mut v = chars.clone();
                let j = at.index(chars.len());
                if v[j] != '.' { v[j] = c; }
                v.into_iter().collect::<String>()
            },
        ] {
            if bad == s { continue; }
            prop_assert_eq!(parse_decimal(&bad, d), Err(AmountError::Malformed), "{:?}", bad);
        }
    }

    /// Arbitrary strings and any decimals (even above the configured maximum) never panic; an
    /// accepted string is in the documented grammar and formats back to the same value.
    #[test]
    fn amount_arbitrary_strings_never_panic(
        s in prop_oneof![any::<String>(), "[-+0-9.eE ]{0,50}", "[0-9]{30,80}(\\.[0-9]{0,60})?"],
        d in any::<u8>(),
    ) {
        let r = parse_decimal(&s, d);
        if s.is_empty() {
            prop_assert_eq!(r.clone(), Err(AmountError::Empty));
        }
        if let Ok(a) = r {
            prop_assert!(d <= MAX_DECIMALS);
            let (i, f) = s.split_once('.').unwrap_or((&s, ""));
            prop_assert!(i == "0" || (!i.is_empty() && !i.starts_with('0')), "{:?}", s);
            prop_assert!(i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()), "{:?}", s);
            prop_assert!(f.len() <= d as usize && (s.contains('.') != f.is_empty()), "{:?}", s);
            prop_assert!(!a.is_zero());
            prop_assert_eq!(parse_decimal(&format_decimal(a, d), d), Ok(a));
        }
    }
}

#[test]
fn amount_error_reasons_are_the_documented_ones() {
    // the API reports these strings as data.reason; they must not drift
    assert_eq!(
        parse_decimal("", 8).unwrap_err().reason(),
        "amount_malformed"
    );
    assert_eq!(
        parse_decimal("1e3", 8).unwrap_err().reason(),
        "amount_malformed"
    );
    assert_eq!(
        parse_decimal("0", 8).unwrap_err().reason(),
        "amount_not_positive"
    );
    assert_eq!(
        parse_decimal("0.000000001", 8).unwrap_err().reason(),
        "amount_too_many_decimals"
    );
    assert_eq!(
        parse_decimal(U128_MAX_PLUS_ONE, 0).unwrap_err().reason(),
        "amount_too_large"
    );
}

// ---------------------------------------------------------------------------------------------
// Ids and tip messages
// ---------------------------------------------------------------------------------------------

/// Strings rich in the characters the rules are about: controls, white space, multi-byte
/// characters and plain text.
fn tricky_string(max_chars: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => prop::char::range('0', '9'),
        1 => prop::sample::select(vec![' ', '\t', '\n', '\r', '\u{0}', '\u{7}', '\u{1b}', '\u{7f}',
            '\u{85}', '\u{9f}', '\u{a0}', '\u{2028}', '\u{3000}', '\u{200b}', '\u{feff}']),
        2 => prop::sample::select(vec!['é', 'ß', '中', '𝄞', '😀', 'Ω', '·', '-', '_', '/', '.']),
        1 => any::<char>(),
    ];
    prop::collection::vec(ch, 0..=max_chars).prop_map(|v| v.into_iter().collect())
}

/// Strings of `limit - 1` to `limit + 1` bytes (or characters: all but a few are ASCII), with
/// now and then a character the rules care about.
fn near_length(limit: usize) -> impl Strategy<Value = String> {
    (
        limit - 1..=limit + 1,
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(vec!['\t', '\n', ' ', '\u{7}', 'é', 'x']),
            ),
            0..=2,
        ),
    )
        .prop_map(|(n, edits)| {
            let mut v: Vec<char> = std::iter::repeat_n('a', n).collect();
            for (at, c) in edits {
                let i = at.index(v.len());
                v[i] = c;
            }
            v.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(config(1024))]

    /// An accepted id is the input unchanged, 1–128 bytes, without control characters or
    /// surrounding white space; and every such string is accepted. Refusals carry the reason of
    /// the first rule broken (empty, too long, malformed).
    #[test]
    fn external_id_accepts_exactly_the_documented_set(
        s in prop_oneof![tricky_string(140), any::<String>(), near_length(MAX_ID_LEN)],
    ) {
        let r = external_id("post_id", &s);
        let documented = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && !s.chars().any(char::is_control)
            && !s.starts_with(char::is_whitespace)
            && !s.ends_with(char::is_whitespace);
        match r {
            Ok(v) => {
                prop_assert!(documented, "accepted {:?}", s);
                prop_assert_eq!(v, s);
            }
            Err(e) => {
                prop_assert!(!documented, "refused {:?}: {}", s, e.reason);
                let want = if s.is_empty() {
                    "empty_id"
                } else if s.len() > MAX_ID_LEN {
                    "id_too_long"
                } else {
                    "id_malformed"
                };
                prop_assert_eq!(e.reason, want, "{:?}", s);
            }
        }
    }

    /// The byte limit is in bytes: 128 bytes of multi-byte characters pass, 129 do not.
    #[test]
    fn external_id_limit_is_in_bytes(c in prop::sample::select(vec!['a', 'é', '中', '😀'])) {
        let n = MAX_ID_LEN / c.len_utf8();
        let fits: String = std::iter::repeat_n(c, n).collect();
        prop_assert!(external_id("user_id", &fits).is_ok());
        let over = format!("{fits}{}", "x".repeat(MAX_ID_LEN + 1 - fits.len()));
        prop_assert_eq!(external_id("user_id", &over).unwrap_err().reason, "id_too_long");
    }

    /// An accepted message is the input unchanged, at most 280 characters, with no control
    /// character but newline and tab; every such string (the empty one too) is accepted.
    #[test]
    fn tip_message_accepts_exactly_the_documented_set(
        s in prop_oneof![tricky_string(300), any::<String>(), near_length(MAX_MESSAGE_CHARS)],
    ) {
        let count = s.chars().count();
        let clean = !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
        match tip_message(&s) {
            Ok(v) => {
                prop_assert!(count <= MAX_MESSAGE_CHARS && clean, "accepted {:?}", s);
                prop_assert_eq!(v, s);
            }
            Err(e) => {
                let want = if count > MAX_MESSAGE_CHARS {
                    "message_too_long"
                } else {
                    prop_assert!(!clean, "refused a clean message {:?}", s);
                    "message_malformed"
                };
                prop_assert_eq!(e.reason, want, "{:?}", s);
            }
        }
    }

    /// The message limit is in characters, not bytes.
    #[test]
    fn tip_message_limit_is_in_characters(c in prop::sample::select(vec!['a', 'é', '中', '😀', '\n'])) {
        let fits: String = std::iter::repeat_n(c, MAX_MESSAGE_CHARS).collect();
        prop_assert!(tip_message(&fits).is_ok());
        let over = format!("{fits}{c}");
        prop_assert_eq!(tip_message(&over).unwrap_err().reason, "message_too_long");
    }
}

// ---------------------------------------------------------------------------------------------
// Request signatures (DESIGN §7) and sealed secrets
// ---------------------------------------------------------------------------------------------

/// `x-ts` as the API accepts it: 1–12 ASCII digits.
fn header_ts() -> impl Strategy<Value = String> {
    "[0-9]{1,12}"
}

/// `x-nonce` as the API accepts it: 8–128 of A-Z a-z 0-9 - _.
fn header_nonce() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{8,128}"
}

fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::array::uniform32(any::<u8>()).prop_map(|k| format!("fls_{}", hex::encode(k))),
        any::<String>(),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

/// The API's decoding of `x-signature`: exactly 64 hex digits.
fn decode_signature(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// Replaces the character at `at` of `s` with another one (a different character).
fn replace_char(s: &str, at: prop::sample::Index, with: char) -> String {
    let mut v: Vec<char> = s.chars().collect();
    let i = at.index(v.len());
    v[i] = if v[i] == with {
        if with == 'a' {
            'b'
        } else {
            'a'
        }
    } else {
        with
    };
    v.into_iter().collect()
}

proptest! {
    #![proptest_config(config(512))]

    /// A signature is 64 lowercase hex digits and verifies for exactly the inputs it was made
    /// for: the same secret, timestamp, nonce and body.
    #[test]
    fn signature_verifies_for_its_own_request(
        secret in secret(), ts in header_ts(), nonce in header_nonce(), body in body(),
    ) {
        let sig = sign_request(&secret, &ts, &nonce, &body);
        prop_assert_eq!(sig.len(), 64);
        prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{}", sig);
        let bytes = decode_signature(&sig).expect("64 hex digits");
        prop_assert!(verify_request(&secret, &ts, &nonce, &body, &bytes));
        // deterministic
        prop_assert_eq!(sign_request(&secret, &ts, &nonce, &body), sig);
    }

    /// Any one-byte change of the body, any one-character change of the timestamp or nonce,
    /// another secret, or any one-byte change of the signature fails verification.
    #[test]
    fn signature_fails_after_any_single_change(
        secret in secret(), ts in header_ts(), nonce in header_nonce(), body in body(),
        at in any::<prop::sample::Index>(), xor in 1u8..=255, c in any::<char>(),
        other_secret in secret(),
    ) {
        let sig = decode_signature(&sign_request(&secret, &ts, &nonce, &body)).unwrap();
        if !body.is_empty() {
            let mut b = body.clone();
            b[at.index(body.len())] ^= xor;
            prop_assert!(!verify_request(&secret, &ts, &nonce, &b, &sig), "body changed");
        }
        let mut longer = body.clone();
        longer.push(xor);
        prop_assert!(!verify_request(&secret, &ts, &nonce, &longer, &sig), "body extended");
        if !body.is_empty() {
            prop_assert!(!verify_request(&secret, &ts, &nonce, &body[..body.len() - 1], &sig), "body cut");
        }
        let ts2 = replace_char(&ts, at, c);
        prop_assert!(!verify_request(&secret, &ts2, &nonce, &body, &sig), "ts {:?}", ts2);
        let nonce2 = replace_char(&nonce, at, c);
        prop_assert!(!verify_request(&secret, &ts, &nonce2, &body, &sig), "nonce {:?}", nonce2);
        if other_secret != secret {
            prop_assert!(!verify_request(&other_secret, &ts, &nonce, &body, &sig), "other secret");
        }
        let mut s2 = sig;
        s2[at.index(32)] ^= xor;
        prop_assert!(!verify_request(&secret, &ts, &nonce, &body, &s2), "signature changed");
    }

    /// With the API's header alphabets (no '.' in `x-ts` or `x-nonce`) the signed bytes are
    /// unambiguous: the first two dots split them back into exactly (ts, nonce, body), so no two
    /// different requests share a signature.
    #[test]
    fn signing_payload_is_unambiguous_for_api_headers(
        ts in header_ts(), nonce in header_nonce(), body in body(),
    ) {
        let p = signing_payload(&ts, &nonce, &body);
        let d1 = p.iter().position(|&b| b == b'.').unwrap();
        let d2 = d1 + 1 + p[d1 + 1..].iter().position(|&b| b == b'.').unwrap();
        prop_assert_eq!(&p[..d1], ts.as_bytes());
        prop_assert_eq!(&p[d1 + 1..d2], nonce.as_bytes());
        prop_assert_eq!(&p[d2 + 1..], &body[..]);
    }

    /// Garbage in `x-signature` (any string: wrong length, non-hex, upper case, multi-byte)
    /// never panics, and whatever it decodes to verifies only if it is the real signature.
    #[test]
    fn garbage_signatures_never_verify(
        secret in secret(), ts in header_ts(), nonce in header_nonce(), body in body(),
        garbage in prop_oneof![
            any::<String>(),
            "[0-9a-fA-F]{0,70}",
            "[0-9A-F]{64}",
            "[0-9a-z]{64}",
            prop::array::uniform32(any::<u8>()).prop_map(hex::encode),
        ],
    ) {
        let real = sign_request(&secret, &ts, &nonce, &body);
        if let Some(bytes) = decode_signature(&garbage) {
            let ok = verify_request(&secret, &ts, &nonce, &body, &bytes);
            prop_assert_eq!(ok, garbage.eq_ignore_ascii_case(&real), "{:?}", garbage);
        }
    }

    /// A sealed secret opens with the same key and context, and with nothing else: another
    /// context, any flipped byte, any truncation or extension, or another key gives `None`.
    #[test]
    fn sealed_secrets_open_only_unchanged(
        key in prop::array::uniform32(any::<u8>()), other in prop::array::uniform32(any::<u8>()),
        aad in "[a-z0-9_/]{0,40}", other_aad in "[a-z0-9_/]{0,40}",
        plaintext in any::<String>(),
        at in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<prop::sample::Index>(),
    ) {
        prop_assume!(key != [0; 32] && other != [0; 32]);
        let b: SecretBox = MasterKey::from_hex(&hex::encode(key)).unwrap().secret_box();
        let sealed = b.seal(&aad, &plaintext);
        prop_assert_eq!(sealed.len(), 12 + plaintext.len() + 16);
        prop_assert_eq!(b.open(&aad, &sealed), Some(plaintext.clone()));
        if other_aad != aad {
            prop_assert_eq!(b.open(&other_aad, &sealed), None);
        }
        let mut t = sealed.clone();
        let i = at.index(t.len());
        t[i] ^= xor;
        prop_assert_eq!(b.open(&aad, &t), None, "flipped");
        prop_assert_eq!(b.open(&aad, &sealed[..cut.index(sealed.len())]), None, "truncated");
        let mut longer = sealed.clone();
        longer.push(xor);
        prop_assert_eq!(b.open(&aad, &longer), None, "extended");
        if other != key {
            let o = MasterKey::from_hex(&hex::encode(other)).unwrap().secret_box();
            prop_assert_eq!(o.open(&aad, &sealed), None, "other key");
        }
        // two seals of the same secret differ (random nonce) and both open
        let again = b.seal(&aad, &plaintext);
        prop_assert_ne!(&again, &sealed);
        prop_assert_eq!(b.open(&aad, &again), Some(plaintext));
    }

    /// Arbitrary bytes never panic `open` and are refused (not a valid seal under this key).
    #[test]
    fn arbitrary_sealed_bytes_are_refused(
        key in prop::array::uniform32(1u8..=255), aad in ".{0,20}", bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let b = MasterKey::from_hex(&hex::encode(key)).unwrap().secret_box();
        prop_assert_eq!(b.open(&aad, &bytes), None);
    }

    /// The master key parser never panics on any input; what it accepts is 32 non-zero bytes
    /// that print back as the same 64 lowercase hex digits.
    #[test]
    fn master_key_parser_never_panics(s in prop_oneof![any::<String>(), "[0-9a-fA-F \n]{60,70}"]) {
        if let Ok(k) = MasterKey::from_hex(&s) {
            prop_assert_eq!(k.to_hex(), s.trim().to_ascii_lowercase());
            prop_assert_ne!(k.to_hex(), "00".repeat(32));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Withdrawal policy (DESIGN §6): bounds and check
// ---------------------------------------------------------------------------------------------

const CKB: u128 = 100_000_000;

/// Amounts where the rules interact: tenths of a CKB up to 2,000 CKB, small base-unit counts,
/// and now and then anything at all.
fn money() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => (0u128..=20_000).prop_map(|x| x * (CKB / 10)),
        2 => 0u128..=2_000,
        1 => any::<u128>(),
        1 => Just(u128::MAX),
    ]
}

fn opt_money() -> impl Strategy<Value = Option<u128>> {
    prop_oneof![1 => Just(None), 3 => money().prop_map(Some)]
}

/// Fees as the service computes them: an on-chain fee of a few thousand shannons, or a Fiber
/// route budget of up to a few percent of a payout (so `receive + fee` never nears u128::MAX).
fn realistic_fee() -> impl Strategy<Value = u128> {
    prop_oneof![0u128..=10_000, (0u128..=2_000).prop_map(|x| x * (CKB / 10))]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::bool::weighted(0.9),
        money(),
        opt_money(),
        opt_money(),
        opt_money(),
        prop_oneof![Just(0u64), 0u64..=7_200, any::<u64>()],
        opt_money(),
    )
        .prop_map(
            |(allowed, min, max, author, app, cooldown_secs, approval)| Policy {
                allowed,
                min: Amount::from_base_units(min),
                max_per_request: max.map(Amount::from_base_units),
                author_daily_cap: author.map(Amount::from_base_units),
                app_daily_cap: app.map(Amount::from_base_units),
                cooldown_secs,
                approval_threshold: approval.map(Amount::from_base_units),
            },
        )
}

fn standing() -> impl Strategy<Value = Standing> {
    (
        money(),
        money(),
        money(),
        proptest::option::of(prop_oneof![0u64..=7_200, any::<u64>()]),
    )
        .prop_map(|(available, a24, app24, since)| Standing {
            available: Amount::from_base_units(available),
            author_24h: Amount::from_base_units(a24),
            app_24h: Amount::from_base_units(app24),
            secs_since_last: since,
        })
}

fn rail() -> impl Strategy<Value = Rail> {
    prop_oneof![Just(Rail::Onchain), Just(Rail::Fiber)]
}

fn mode() -> impl Strategy<Value = FeeMode> {
    prop_oneof![Just(FeeMode::Deduct), Just(FeeMode::Operator)]
}

fn figures(amount: u128, fee: u128, mode: FeeMode) -> Figures {
    let amount = Amount::from_base_units(amount);
    let fee = Amount::from_base_units(fee);
    Figures {
        amount,
        fee,
        receive: mode.receive(amount, fee).unwrap_or(Amount::ZERO),
    }
}

/// An amount at or next to one of the limits of `p` and `st` (where the rules change their
/// answer), or `random`.
fn near_a_limit(
    p: &Policy,
    st: &Standing,
    rail: Rail,
    fee: u128,
    random: u128,
    pick: prop::sample::Index,
    delta: i8,
) -> u128 {
    let least = match rail {
        Rail::Onchain => MIN_ONCHAIN_OUTPUT.base_units(),
        Rail::Fiber => 1,
    };
    let left = |used: Amount, cap: Option<Amount>| {
        cap.map(|c| c.base_units().saturating_sub(used.base_units()))
    };
    let candidates = [
        Some(random),
        Some(p.min.base_units()),
        p.max_per_request.map(Amount::base_units),
        Some(st.available.base_units()),
        p.approval_threshold.map(Amount::base_units),
        left(st.author_24h, p.author_daily_cap),
        left(st.app_24h, p.app_daily_cap),
        Some(least),
        least.checked_add(fee),
    ];
    let base = candidates[pick.index(candidates.len())].unwrap_or(random);
    match delta {
        d if d < 0 => base.saturating_sub(1),
        0 => base,
        _ => base.saturating_add(1),
    }
}

/// Seconds since the last withdrawal: none, any, or next to the cooldown.
fn near_the_cooldown(p: &Policy, random: Option<u64>, pick: u8, delta: i8) -> Option<u64> {
    match pick % 3 {
        0 => None,
        1 => random,
        _ => Some(match delta {
            d if d < 0 => p.cooldown_secs.saturating_sub(1),
            0 => p.cooldown_secs,
            _ => p.cooldown_secs.saturating_add(1),
        }),
    }
}

fn run(
    p: &Policy,
    rail: Rail,
    mode: FeeMode,
    f: &Figures,
    st: &Standing,
) -> Result<bool, &'static str> {
    check(p, rail, mode, f, st, |x| x.to_string()).map_err(|r| r.reason)
}

/// The rules, written out from DESIGN §6 and the API reference, in the API's order of reasons.
fn oracle(
    p: &Policy,
    rail: Rail,
    mode: FeeMode,
    amount: u128,
    fee: u128,
    st: &Standing,
) -> Result<bool, &'static str> {
    let least_receive = match rail {
        Rail::Onchain => MIN_ONCHAIN_OUTPUT.base_units(),
        Rail::Fiber => 1,
    };
    // what the recipient gets must be at least a cell on chain / something over Fiber
    let receive_ok = match mode {
        FeeMode::Deduct => amount.checked_sub(fee).is_some_and(|r| r >= least_receive),
        FeeMode::Operator => amount >= least_receive,
    };
    if !p.allowed {
        return Err("asset_not_allowed");
    }
    if amount == 0 || amount < p.min.base_units() || !receive_ok {
        return Err("amount_below_minimum");
    }
    if p.max_per_request.is_some_and(|m| amount > m.base_units()) {
        return Err("amount_above_maximum");
    }
    if amount > st.available.base_units() {
        return Err("insufficient_balance");
    }
    let over = |used: Amount, cap: Option<Amount>| {
        cap.is_some_and(|c| {
            used.base_units()
                .checked_add(amount)
                .is_none_or(|t| t > c.base_units())
        })
    };
    if over(st.author_24h, p.author_daily_cap) {
        return Err("author_daily_cap");
    }
    if over(st.app_24h, p.app_daily_cap) {
        return Err("app_daily_cap");
    }
    if st.secs_since_last.is_some_and(|s| s < p.cooldown_secs) {
        return Err("cooldown");
    }
    Ok(p.approval_threshold
        .is_some_and(|t| amount > t.base_units()))
}

proptest! {
    #![proptest_config(config(2048))]

    /// `check` agrees with the written-out rules on every input: it accepts exactly the amounts
    /// within the minimum (and a whole cell / a non-zero payout after the fee), the maximum per
    /// request, the balance, both daily caps and the cooldown; it refuses with the reason of the
    /// first rule broken; and it asks for approval exactly above the threshold.
    #[test]
    fn withdrawal_check_is_the_documented_rules(
        p in policy(), rail in rail(), mode in mode(), random in money(), fee in realistic_fee(),
        st in standing(), pick in any::<prop::sample::Index>(), delta in -1i8..=1,
        since_pick in any::<u8>(), since_delta in -1i8..=1,
    ) {
        let st = Standing {
            secs_since_last: near_the_cooldown(&p, st.secs_since_last, since_pick, since_delta),
            ..st
        };
        let amount = near_a_limit(&p, &st, rail, fee, random, pick, delta);
        let f = figures(amount, fee, mode);
        prop_assert_eq!(run(&p, rail, mode, &f, &st), oracle(&p, rail, mode, amount, fee, &st));
    }

    /// Approval is asked for exactly above the threshold, never at it.
    #[test]
    fn withdrawal_approval_is_exactly_above_the_threshold(
        t in money(), delta in -2i8..=2, rail in rail(), mode in mode(), fee in realistic_fee(),
    ) {
        let p = Policy {
            allowed: true,
            min: Amount::ZERO,
            max_per_request: None,
            author_daily_cap: None,
            app_daily_cap: None,
            cooldown_secs: 0,
            approval_threshold: Some(Amount::from_base_units(t)),
        };
        let st = Standing { available: Amount::from_base_units(u128::MAX), ..Standing::default() };
        let amount = if delta < 0 {
            t.saturating_sub(delta.unsigned_abs().into())
        } else {
            t.saturating_add(delta as u128)
        };
        let r = run(&p, rail, mode, &figures(amount, fee, mode), &st);
        let b = bounds(&p, rail, mode, Amount::from_base_units(fee), &st);
        if amount >= b.min.base_units() {
            prop_assert_eq!(r, Ok(amount > t), "amount {} threshold {}", amount, t);
        } else {
            prop_assert_eq!(r, Err("amount_below_minimum"));
        }
    }

    /// Whatever the fee, an accepted withdrawal never breaks a limit: not below the policy's
    /// minimum, not above the maximum per request or the balance, within both caps, after the
    /// cooldown.
    #[test]
    fn withdrawal_check_never_accepts_past_a_limit(
        p in policy(), rail in rail(), mode in mode(), random in money(), fee in money(),
        st in standing(), pick in any::<prop::sample::Index>(), delta in -1i8..=1,
        since_pick in any::<u8>(), since_delta in -1i8..=1,
    ) {
        let st = Standing {
            secs_since_last: near_the_cooldown(&p, st.secs_since_last, since_pick, since_delta),
            ..st
        };
        let amount = near_a_limit(&p, &st, rail, fee, random, pick, delta);
        let f = figures(amount, fee, mode);
        if run(&p, rail, mode, &f, &st).is_ok() {
            prop_assert!(p.allowed);
            prop_assert!(amount >= 1 && amount >= p.min.base_units());
            prop_assert!(p.max_per_request.is_none_or(|m| amount <= m.base_units()));
            prop_assert!(amount <= st.available.base_units());
            for (used, cap) in [(st.author_24h, p.author_daily_cap), (st.app_24h, p.app_daily_cap)] {
                prop_assert!(cap.is_none_or(|c| used.base_units().checked_add(amount).is_some_and(|t| t <= c.base_units())));
            }
            prop_assert!(st.secs_since_last.is_none_or(|s| s >= p.cooldown_secs));
        }
    }

    /// The bounds a quote shows agree with `check`: when there is a maximum, the minimum and the
    /// maximum are both accepted (policy allowing, cooldown over) and one unit past either is
    /// refused; when there is none, no amount is accepted.
    #[test]
    fn withdrawal_bounds_agree_with_check(
        p in policy(), rail in rail(), mode in mode(), fee in realistic_fee(), st in standing(),
        random in money(), pick in any::<prop::sample::Index>(), delta in -1i8..=1,
    ) {
        let p = Policy { allowed: true, ..p };
        let st = Standing { secs_since_last: None, ..st };
        let probe = near_a_limit(&p, &st, rail, fee, random, pick, delta);
        let b = bounds(&p, rail, mode, Amount::from_base_units(fee), &st);
        let ok = |a: u128| run(&p, rail, mode, &figures(a, fee, mode), &st).is_ok();
        match b.max {
            Some(max) => {
                prop_assert!(b.min <= max);
                prop_assert!(ok(b.min.base_units()), "min {:?} refused", b.min);
                prop_assert!(ok(max.base_units()), "max {:?} refused", max);
                if b.min.base_units() > 0 {
                    prop_assert!(!ok(b.min.base_units() - 1), "below min accepted");
                }
                if let Some(over) = max.base_units().checked_add(1) {
                    prop_assert!(!ok(over), "above max accepted");
                }
                prop_assert_eq!(ok(probe), probe >= b.min.base_units() && probe <= max.base_units(), "probe {}", probe);
            }
            None => {
                prop_assert!(!ok(probe), "accepted {} with no possible amount", probe);
                prop_assert!(!ok(b.min.base_units()));
            }
        }
    }
}
