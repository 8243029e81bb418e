//! Property tests of the Fiber invoice checks that read outside input: `payout_invoice` (the
//! invoice an author asks a withdrawal to pay), `invoice_expired`, and `check_invoice_address`
//! (the hub's invoice string, checked before a payer is shown it). DESIGN §6: "a Fiber invoice:
//! signature, network, asset, amount, expiry".
//!
//! Invoices are built and signed with fiber-types, as FNN and the hub simulator do, for every
//! currency; then mangled the way a bad copy or a hostile author would. The checks must never
//! panic, must refuse what is not a valid signed invoice for the service's network, and what they
//! accept must be exactly what the signer signed.

use fiber_link_core::Script;
use fiber_link_fnn::{check_invoice_address, invoice_expired, payout_invoice, Currency, Hash256};
use fiber_types::{Attribute, CkbInvoice, CkbScript, InvoiceData};
use proptest::prelude::*;
use secp256k1::{PublicKey, SecretKey, SECP256K1};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `f`, turning a panic into a test failure that names the input.
fn no_panic<T>(what: &str, s: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| TestCaseError::fail(format!("{what} panicked on {s:?}")))
}

const CURRENCIES: [Currency; 3] = [Currency::Fibb, Currency::Fibt, Currency::Fibd];

fn fiber_currency(c: Currency) -> fiber_types::Currency {
    match c {
        Currency::Fibb => fiber_types::Currency::Fibb,
        Currency::Fibt => fiber_types::Currency::Fibt,
        Currency::Fibd => fiber_types::Currency::Fibd,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What an invoice is made of.
#[derive(Clone, Debug)]
struct Spec {
    currency: Currency,
    amount: Option<u128>,
    payment_hash: [u8; 32],
    timestamp_ms: u128,
    expiry_secs: Option<u64>,
    description: Option<String>,
    /// (code hash, hash type as CKB's JSON names it, args)
    udt: Option<([u8; 32], &'static str, Vec<u8>)>,
    /// Whether the payee's key is written into the invoice (else it is recovered from the
    /// signature).
    with_payee: bool,
    key: [u8; 32],
}

impl Spec {
    fn secret_key(&self) -> SecretKey {
        SecretKey::from_byte_array(&self.key).expect("a valid key (filtered)")
    }

    fn udt_script(&self) -> Option<Script> {
        self.udt.as_ref().map(|(ch, ht, args)| Script {
            code_hash: format!("0x{}", hex(ch)),
            hash_type: ht.to_string(),
            args: format!("0x{}", hex(args)),
        })
    }

    fn expires_at_ms(&self) -> Option<u128> {
        self.expiry_secs
            .map(|e| self.timestamp_ms.saturating_add(u128::from(e) * 1000))
    }

    /// The invoice, unsigned.
    fn invoice(&self) -> CkbInvoice {
        let mut attrs = Vec::new();
        if let Some(e) = self.expiry_secs {
            attrs.push(Attribute::ExpiryTime(Duration::from_secs(e)));
        }
        if let Some(d) = &self.description {
            attrs.push(Attribute::Description(d.clone()));
        }
        attrs.push(Attribute::FinalHtlcMinimumExpiryDelta(9_600_000));
        if let Some(s) = self.udt_script() {
            let json: ckb_jsonrpc_types::Script = serde_json::from_value(serde_json::json!({
                "code_hash": s.code_hash, "hash_type": s.hash_type, "args": s.args,
            }))
            .expect("a valid script");
            attrs.push(Attribute::UdtScript(CkbScript(json.into())));
        }
        if self.with_payee {
            attrs.push(Attribute::PayeePublicKey(PublicKey::from_secret_key(
                SECP256K1,
                &self.secret_key(),
            )));
        }
        CkbInvoice {
            currency: fiber_currency(self.currency),
            amount: self.amount,
            signature: None,
            data: InvoiceData {
                timestamp: self.timestamp_ms,
                payment_hash: self.payment_hash.into(),
                attrs,
            },
        }
    }

    /// The invoice signed by `key` (the payee's unless another key is given).
    fn signed_by(&self, key: &SecretKey) -> CkbInvoice {
        let mut inv = self.invoice();
        // update_signature sets the signature, then checks it against the payee attribute:
        // signing with another key leaves a wrongly signed invoice (and an error we ignore)
        let _ = inv.update_signature(|m| SECP256K1.sign_ecdsa_recoverable(m, key));
        inv
    }

    fn signed(&self) -> String {
        self.signed_by(&self.secret_key()).to_string()
    }

    fn payee_hex(&self) -> String {
        hex(&PublicKey::from_secret_key(SECP256K1, &self.secret_key()).serialize())
    }
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(CURRENCIES.to_vec())
}

fn spec() -> impl Strategy<Value = Spec> {
    let udt = (
        prop::array::uniform32(any::<u8>()),
        prop::sample::select(vec!["data", "type", "data1", "data2"]),
        prop::collection::vec(any::<u8>(), 0..=40),
    );
    (
        currency(),
        prop_oneof![1 => Just(None), 4 => prop_oneof![1u128..=1_000_000_000_000, any::<u128>()].prop_map(Some)],
        prop::array::uniform32(any::<u8>()),
        prop_oneof![3 => 1_600_000_000_000u128..=2_000_000_000_000, 1 => any::<u64>().prop_map(u128::from)],
        prop_oneof![1 => Just(None), 3 => prop_oneof![0u64..=86_400 * 30, any::<u64>()].prop_map(Some)],
        proptest::option::of(".{0,60}"),
        proptest::option::of(udt),
        any::<bool>(),
        prop::array::uniform32(any::<u8>()).prop_filter("a secp256k1 secret key", |k| {
            SecretKey::from_byte_array(k).is_ok()
        }),
    )
        .prop_map(
            |(currency, amount, payment_hash, timestamp_ms, expiry_secs, description, udt, with_payee, key)| Spec {
                currency,
                amount,
                payment_hash,
                timestamp_ms,
                expiry_secs,
                description,
                udt,
                with_payee,
                key,
            },
        )
}

/// A time before, at, or after the invoice's expiry (or anywhere if it has none).
fn now_for(spec: &Spec, pick: u8, random: u128) -> u128 {
    match (spec.expires_at_ms(), pick % 4) {
        (Some(at), 0) => at.saturating_sub(1),
        (Some(at), 1) => at,
        (Some(at), 2) => at.saturating_add(1),
        _ => random,
    }
}

/// What `payout_invoice` reads from an invoice: payment hash, amount, UDT, payee, expiry.
type Payout = Result<(String, Option<u128>, Option<Script>, String, Option<u128>), &'static str>;

/// What `payout_invoice` must answer for the invoice of `spec`, asked for `currency` at `now`:
/// the order of the checks is signature, network, expiry.
fn expected_payout(spec: &Spec, currency: Currency, now: u128) -> Payout {
    if spec.currency != currency {
        return Err("invoice_wrong_network");
    }
    if spec.expires_at_ms().is_some_and(|at| at <= now) {
        return Err("invoice_expired");
    }
    Ok((
        format!("0x{}", hex(&spec.payment_hash)),
        spec.amount,
        spec.udt_script(),
        spec.payee_hex(),
        spec.expires_at_ms(),
    ))
}

fn payout(s: &str, currency: Currency, now: u128) -> Result<Payout, TestCaseError> {
    no_panic("payout_invoice", s, || {
        payout_invoice(s, currency, now)
            .map(|p| {
                (
                    p.payment_hash,
                    p.amount,
                    p.udt_type_script,
                    p.payee.unwrap_or_default(),
                    p.expires_at_ms,
                )
            })
            .map_err(|e| e.0)
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// A signed invoice of any currency reads back exactly what was signed (payment hash,
    /// amount, UDT script, payee, expiry) when asked for its own currency before its expiry; it
    /// is refused as the wrong network for any other currency and as expired from its expiry on.
    #[test]
    fn signed_invoices_read_back_exactly(
        spec in spec(), asked in currency(), pick in any::<u8>(), random in any::<u64>(),
    ) {
        let s = spec.signed();
        let now = now_for(&spec, pick, u128::from(random));
        prop_assert_eq!(payout(&s, asked, now)?, expected_payout(&spec, asked, now), "{}", s);
        // surrounding white space from a copy is trimmed
        prop_assert_eq!(payout(&format!(" {s}\n"), asked, now)?, expected_payout(&spec, asked, now));
    }

    /// `invoice_expired` is true exactly from the expiry on, on any network; never for an
    /// invoice without expiry.
    #[test]
    fn invoice_expired_is_exactly_past_the_expiry(spec in spec(), pick in any::<u8>(), random in any::<u64>()) {
        let s = spec.signed();
        let now = now_for(&spec, pick, u128::from(random));
        let got = no_panic("invoice_expired", &s, || invoice_expired(&s, now))?;
        prop_assert_eq!(got, spec.expires_at_ms().is_some_and(|at| at <= now));
    }

    /// `check_invoice_address` accepts the hub's invoice string exactly when it is for the
    /// payment hash, amount and currency asked for.
    #[test]
    fn check_invoice_address_matches_hash_amount_and_currency(
        spec in spec(), other_hash in prop::array::uniform32(any::<u8>()),
        other_amount in any::<u128>(), asked in currency(),
        same_hash in any::<bool>(), same_amount in any::<bool>(),
    ) {
        let s = spec.signed();
        let hash = if same_hash { spec.payment_hash } else { other_hash };
        let amount = match (same_amount, spec.amount) {
            (true, Some(a)) => a,
            _ => other_amount,
        };
        let got = no_panic("check_invoice_address", &s, || {
            check_invoice_address(&s, &Hash256(hash), amount, asked)
        })?;
        let want = hash == spec.payment_hash && spec.amount == Some(amount) && asked == spec.currency;
        prop_assert_eq!(got.is_ok(), want, "{:?}", got);
    }

    /// An unsigned invoice, or one signed by a key other than the payee it names, is refused as
    /// malformed whatever else it says, and is never "expired". `check_invoice_address` (for the
    /// hub's own invoices) refuses the unsigned one and does not look at the signature.
    #[test]
    fn unsigned_or_wrongly_signed_invoices_are_refused(
        spec in spec(), other_key in prop::array::uniform32(any::<u8>()), now in any::<u64>(),
    ) {
        let other = SecretKey::from_byte_array(&other_key);
        prop_assume!(other.is_ok() && other_key != spec.key);
        let unsigned = spec.invoice().to_string();
        let mut strings = vec![unsigned];
        if spec.with_payee {
            // with no payee in it, any signature "verifies" for the key it recovers: that is
            // another payee, checked by the honesty property below
            strings.push(spec.signed_by(&other.unwrap()).to_string());
        }
        for s in strings {
            prop_assert_eq!(payout(&s, spec.currency, u128::from(now))?, Err("invoice_malformed"), "{}", s);
            prop_assert!(!no_panic("invoice_expired", &s, || invoice_expired(&s, u128::MAX))?);
        }
        let unsigned = spec.invoice().to_string();
        let amount = spec.amount.unwrap_or(1);
        let checked = no_panic("check_invoice_address", &unsigned, || {
            check_invoice_address(&unsigned, &Hash256(spec.payment_hash), amount, spec.currency)
        })?;
        prop_assert!(checked.is_err(), "{}", unsigned);
    }
}

/// One edit of a string: what a bad copy, a typo or a hostile author does.
#[derive(Clone, Debug)]
enum Edit {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Swap(prop::sample::Index),
    /// Change the case of one character.
    Case(prop::sample::Index),
    /// Change the case of the whole string (bech32 allows all capitals).
    Upper,
}

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn edit() -> impl Strategy<Value = Edit> {
    let b32 = prop::sample::select(CHARSET.iter().map(|&b| b as char).collect::<Vec<_>>());
    let ch = prop_oneof![4 => b32, 1 => any::<char>(), 1 => prop::char::range('!', '~')];
    let ix = any::<prop::sample::Index>();
    prop_oneof![
        3 => (ix.clone(), ch.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        2 => (ix.clone(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
        2 => ix.clone().prop_map(Edit::Delete),
        2 => ix.clone().prop_map(Edit::Truncate),
        1 => ix.clone().prop_map(Edit::Swap),
        1 => ix.prop_map(Edit::Case),
        1 => Just(Edit::Upper),
    ]
}

fn apply(s: &str, e: &Edit) -> String {
    let mut v: Vec<char> = s.chars().collect();
    match e {
        Edit::Replace(i, c) => {
            let i = i.index(v.len());
            v[i] = *c;
        }
        Edit::Insert(i, c) => v.insert(i.index(v.len() + 1), *c),
        Edit::Delete(i) => {
            v.remove(i.index(v.len()));
        }
        Edit::Truncate(i) => v.truncate(i.index(v.len())),
        Edit::Swap(i) => {
            let i = i.index(v.len() - 1);
            v.swap(i, i + 1);
        }
        Edit::Case(i) => {
            let i = i.index(v.len());
            v[i] = if v[i].is_ascii_lowercase() {
                v[i].to_ascii_uppercase()
            } else {
                v[i].to_ascii_lowercase()
            };
        }
        Edit::Upper => return s.to_uppercase(),
    }
    v.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// bech32m, written out from BIP-350, to build checksummed garbage
// ---------------------------------------------------------------------------------------------

fn polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn bech32m(hrp: &str, data5: &[u8]) -> String {
    let mut values: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|b| b & 31));
    values.extend_from_slice(data5);
    values.extend_from_slice(&[0; 6]);
    let pm = polymod(&values) ^ 0x2bc8_30a3;
    let mut s = format!("{hrp}1");
    for &d in data5 {
        s.push(CHARSET[d as usize] as char);
    }
    for i in 0..6 {
        s.push(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize] as char);
    }
    s
}

#[test]
fn the_bech32m_helper_matches_fiber_types() {
    // re-encoding a real invoice's 5-bit data gives the same string, so checksummed garbage
    // differs from an invoice only in its content
    let spec = Spec {
        currency: Currency::Fibt,
        amount: Some(100),
        payment_hash: [7; 32],
        timestamp_ms: 1_700_000_000_000,
        expiry_secs: Some(3600),
        description: None,
        udt: None,
        with_payee: true,
        key: [0x42; 32],
    };
    let s = spec.signed();
    let (hrp, rest) = s.rsplit_once('1').unwrap();
    let data5: Vec<u8> = rest[..rest.len() - 6]
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).unwrap() as u8)
        .collect();
    assert_eq!(bech32m(hrp, &data5), s);
}

/// The signature of an invoice is 104 five-bit groups at the end of its data part.
const SIGNATURE_GROUPS: usize = 104;

proptest! {
    #![proptest_config(config(256))]

    /// One edit of a signed invoice never panics any check. If the edited string is still
    /// accepted, it is the same invoice: same payment hash, amount, UDT, expiry and payee, and
    /// the currency asked for (a typo can never change what a withdrawal pays, or to whom).
    #[test]
    fn edited_invoices_are_refused_or_unchanged(
        spec in spec(), e in edit(), now in any::<u64>(),
    ) {
        let s = spec.signed();
        let m = apply(&s, &e);
        let now = u128::from(now).min(spec.expires_at_ms().unwrap_or(u128::MAX).saturating_sub(1));
        let original = payout(&s, spec.currency, now)?;
        prop_assume!(original.is_ok()); // not an invoice that expired at its own timestamp
        for asked in CURRENCIES {
            if let Ok(got) = payout(&m, asked, now)? {
                prop_assert_eq!(asked, spec.currency, "{} accepted as {:?}", m, asked);
                prop_assert_eq!(Ok(got), original.clone(), "{:?} from {:?}", m, e);
            }
        }
        let expired = no_panic("invoice_expired", &m, || invoice_expired(&m, u128::MAX))?;
        if expired {
            prop_assert!(spec.expires_at_ms().is_some(), "{}", m);
        }
        for asked in CURRENCIES {
            let amount = spec.amount.unwrap_or(1);
            let checked = no_panic("check_invoice_address", &m, || {
                check_invoice_address(&m, &Hash256(spec.payment_hash), amount, asked)
            })?;
            if checked.is_ok() {
                prop_assert_eq!(spec.amount, Some(amount));
                prop_assert_eq!(asked, spec.currency);
            }
        }
    }

    /// Correctly checksummed bech32m strings with an invoice prefix (any currency, with or
    /// without an amount) and arbitrary data — around the signature's length, with the "signed"
    /// flag set or not — are refused by every check, which never panics.
    #[test]
    fn checksummed_garbage_is_refused(
        hrp in prop_oneof![
            prop::sample::select(vec!["fibb", "fibt", "fibd", "fibx", "fib"]).prop_map(str::to_string),
            ("fib[btd]", 0u128..=u128::MAX).prop_map(|(h, a)| format!("{h}{a}")),
            "fib[btd][0-9]{40,45}",
        ],
        signed in any::<bool>(),
        data5 in prop_oneof![
            0usize..=8,
            SIGNATURE_GROUPS - 2..=SIGNATURE_GROUPS + 3,
            0usize..=400,
        ].prop_flat_map(|n| prop::collection::vec(0u8..32, n)),
        now in any::<u64>(),
    ) {
        let mut data5 = data5;
        if let Some(first) = data5.first_mut() {
            *first = u8::from(signed);
        }
        // (exactly one signature long and flagged signed panics fiber-types itself: refused
        // before it parses, see `a_data_part_of_exactly_one_signature_is_refused`)
        let s = bech32m(&hrp, &data5);
        for asked in CURRENCIES {
            let r = payout(&s, asked, u128::from(now))?;
            prop_assert!(r.is_err(), "{} accepted", s);
            let checked = no_panic("check_invoice_address", &s, || {
                check_invoice_address(&s, &Hash256([0; 32]), 1, asked)
            })?;
            prop_assert!(checked.is_err());
        }
        prop_assert!(!no_panic("invoice_expired", &s, || invoice_expired(&s, u128::MAX))?);
    }

    /// Arbitrary text, and text shaped like an invoice, is refused without a panic.
    #[test]
    fn garbage_is_refused(
        s in prop_oneof![
            any::<String>(),
            "fib[btd][0-9]{0,40}1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{0,300}",
            "(fibb|fibt|fibd|FIBT)1[ -~]{0,200}",
        ],
        now in any::<u64>(),
    ) {
        for asked in CURRENCIES {
            prop_assert!(payout(&s, asked, u128::from(now))?.is_err(), "{:?}", s);
        }
        prop_assert!(!no_panic("invoice_expired", &s, || invoice_expired(&s, u128::MAX))?);
    }
}

/// A checksummed invoice string whose data part is exactly one signature long, flagged signed:
/// fiber-types slices `data[1..len - 104]`, i.e. `[1..0]`, and panics. Reachable from a
/// withdrawal request's destination. Must be refused like any malformed invoice.
#[test]
fn a_data_part_of_exactly_one_signature_is_refused() {
    let mut data5 = vec![0u8; SIGNATURE_GROUPS];
    data5[0] = 1;
    for hrp in ["fibb", "fibt", "fibd", "fibt100"] {
        let s = bech32m(hrp, &data5);
        for asked in CURRENCIES {
            let r = catch_unwind(|| payout_invoice(&s, asked, 0))
                .unwrap_or_else(|_| panic!("payout_invoice panicked on {s:?}"));
            assert_eq!(r.map_err(|e| e.0), Err("invoice_malformed"), "{s}");
        }
        let expired = catch_unwind(|| invoice_expired(&s, u128::MAX))
            .unwrap_or_else(|_| panic!("invoice_expired panicked on {s:?}"));
        assert!(!expired);
    }
}
