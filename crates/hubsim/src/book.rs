//! The invoices the node holds: the most recent in memory, the older ones in a file.
//!
//! FNN keeps its invoices in its on-disk store; a simulator that kept every one in memory grew
//! without bound under a long benchmark (a 30-minute run issues millions). Here the newest
//! [`HOT`] invoices stay in memory as records; older ones are written once to an unlinked
//! temporary file and found again through a bucket table by payment hash. An invoice from the
//! file that is read or changed comes back to memory first (its file record is marked moved), so
//! every change happens in memory and a file record is written once and marked once.
//!
//! What paid invoices brought in, per asset, is kept as a running total (the hub's liquidity
//! for payouts), so nothing has to scan the invoices to know it.

use fiber_json_types as j;
use fiber_types::{CkbInvoice, Currency, HashAlgorithm, InvoiceSignature};
use secp256k1::PublicKey;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

/// Invoices kept in memory (the most recently issued or touched).
const HOT: usize = 20_000;
/// Buckets of the file's index (8 MB of offsets; a few records per bucket at millions).
const BUCKETS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Open,
    Received,
    Paid,
    Cancelled,
}

impl Stored {
    fn byte(self) -> u8 {
        match self {
            Stored::Open => 0,
            Stored::Received => 1,
            Stored::Paid => 2,
            Stored::Cancelled => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Stored> {
        Some(match b {
            0 => Stored::Open,
            1 => Stored::Received,
            2 => Stored::Paid,
            3 => Stored::Cancelled,
            _ => return None,
        })
    }

    /// The status FNN reports: an open invoice past its expiry reads Expired.
    pub(crate) fn status(self, expired: bool) -> j::CkbInvoiceStatus {
        match self {
            Stored::Open if expired => j::CkbInvoiceStatus::Expired,
            Stored::Open => j::CkbInvoiceStatus::Open,
            Stored::Received => j::CkbInvoiceStatus::Received,
            Stored::Paid => j::CkbInvoiceStatus::Paid,
            Stored::Cancelled => j::CkbInvoiceStatus::Cancelled,
        }
    }
}

/// An invoice the node issued. Kept compact: the string, the status, and the few fields the
/// parsed invoice is rebuilt from when a method shows it ([`Invoice::parsed`]).
pub(crate) struct Invoice {
    pub(crate) address: Box<str>,
    pub(crate) stored: Stored,
    /// Known for normal invoices; `None` for hold invoices until `settle_invoice`.
    pub(crate) preimage: Option<[u8; 32]>,
    pub(crate) fields: InvoiceFields,
    pub(crate) signature: Option<InvoiceSignature>,
}

/// What `new_invoice` was asked for, as it went into the signed invoice.
pub(crate) struct InvoiceFields {
    pub(crate) amount: Option<u128>,
    /// Issued at, in ms since the epoch.
    pub(crate) timestamp: u128,
    pub(crate) payment_hash: [u8; 32],
    pub(crate) description: Option<Box<str>>,
    /// Seconds.
    pub(crate) expiry: Option<u64>,
    pub(crate) fallback: Option<Box<str>>,
    pub(crate) final_delta: u64,
    pub(crate) udt: Option<Box<ckb_jsonrpc_types::Script>>,
    /// Set when the caller named the hash algorithm (only then is it an attribute).
    pub(crate) hash_algorithm: Option<HashAlgorithm>,
}

impl InvoiceFields {
    /// The invoice, unsigned, with its attributes in the order `new_invoice` gives them.
    pub(crate) fn invoice(&self, currency: Currency, payee: PublicKey) -> CkbInvoice {
        use fiber_types::{Attribute, CkbScript, InvoiceData};
        let mut attrs = Vec::with_capacity(7);
        if let Some(d) = &self.description {
            attrs.push(Attribute::Description(d.to_string()));
        }
        if let Some(e) = self.expiry {
            attrs.push(Attribute::ExpiryTime(Duration::from_secs(e)));
        }
        if let Some(f) = &self.fallback {
            attrs.push(Attribute::FallbackAddr(f.to_string()));
        }
        attrs.push(Attribute::FinalHtlcMinimumExpiryDelta(self.final_delta));
        if let Some(s) = &self.udt {
            let packed: ckb_types::packed::Script = (**s).clone().into();
            attrs.push(Attribute::UdtScript(CkbScript(packed)));
        }
        if let Some(h) = self.hash_algorithm {
            attrs.push(Attribute::HashAlgorithm(h));
        }
        attrs.push(Attribute::PayeePublicKey(payee));
        CkbInvoice {
            currency,
            amount: self.amount,
            signature: None,
            data: InvoiceData {
                timestamp: self.timestamp,
                payment_hash: self.payment_hash.into(),
                attrs,
            },
        }
    }

    fn expired(&self, now_ms: u128) -> bool {
        expired(self.timestamp, self.expiry, now_ms)
    }

    /// The key of the invoice's asset in the running totals: `None` for CKB, else its script.
    fn asset_key(&self) -> Option<String> {
        asset_key(self.udt.as_deref())
    }
}

fn expired(timestamp: u128, expiry: Option<u64>, now_ms: u128) -> bool {
    expiry.is_some_and(|e| timestamp + u128::from(e) * 1000 < now_ms)
}

/// The key of an asset in the running totals: `None` for CKB, else its script as JSON.
pub(crate) fn asset_key(udt: Option<&ckb_jsonrpc_types::Script>) -> Option<String> {
    udt.map(|s| serde_json::to_string(s).unwrap_or_default())
}

impl Invoice {
    pub(crate) fn status(&self, now_ms: u128) -> j::CkbInvoiceStatus {
        self.stored.status(self.fields.expired(now_ms))
    }
}

/// What a listing shows of an invoice, wherever it is kept.
pub(crate) struct Summary<'a> {
    pub(crate) payment_hash: &'a [u8; 32],
    pub(crate) address: &'a str,
    pub(crate) status: j::CkbInvoiceStatus,
    pub(crate) amount: Option<u128>,
}

pub(crate) struct Book {
    /// How many invoices stay in memory.
    hot_max: usize,
    /// In memory, each with the sequence number of its place in `order`.
    hot: HashMap<[u8; 32], (u64, Box<Invoice>)>,
    /// The in-memory invoices oldest first (an entry whose number no longer matches its
    /// invoice's is stale: the invoice went to the file and came back since).
    order: VecDeque<([u8; 32], u64)>,
    seq: u64,
    cold: Option<Cold>,
    /// What paid invoices brought in, by [`asset_key`].
    paid: BTreeMap<Option<String>, u128>,
}

impl Default for Book {
    fn default() -> Self {
        Book::with_hot(HOT)
    }
}

impl Book {
    /// A book that keeps `hot_max` invoices in memory.
    pub(crate) fn with_hot(hot_max: usize) -> Book {
        Book {
            hot_max,
            hot: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            cold: None,
            paid: BTreeMap::new(),
        }
    }

    /// Whether the node holds an invoice with this hash.
    pub(crate) fn contains(&self, hash: &[u8; 32]) -> bool {
        self.hot.contains_key(hash) || self.cold.as_ref().is_some_and(|c| c.find(hash).is_some())
    }

    /// Adds a new invoice, Open (the caller made sure its hash is new).
    pub(crate) fn insert(&mut self, hash: [u8; 32], inv: Box<Invoice>) {
        debug_assert_eq!(inv.stored, Stored::Open, "a new invoice is open");
        self.remember(hash, inv);
    }

    fn remember(&mut self, hash: [u8; 32], inv: Box<Invoice>) {
        self.seq += 1;
        self.hot.insert(hash, (self.seq, inv));
        self.order.push_back((hash, self.seq));
        // the invoice just remembered stays (it is the newest)
        while self.hot.len() > self.hot_max.max(1) {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.hot.get(&old).is_some_and(|(s, _)| *s == seq) {
                if let Some((_, inv)) = self.hot.remove(&old) {
                    self.cold.get_or_insert_with(Cold::new).put(&inv);
                }
            }
        }
    }

    /// The invoice with this hash (brought back to memory if it was in the file).
    pub(crate) fn get(&mut self, hash: &[u8; 32]) -> Option<&Invoice> {
        self.fetch(hash).map(|i| &*i)
    }

    fn fetch(&mut self, hash: &[u8; 32]) -> Option<&mut Invoice> {
        if !self.hot.contains_key(hash) {
            let inv = self.cold.as_mut()?.take(hash)?;
            self.remember(*hash, inv);
        }
        self.hot.get_mut(hash).map(|(_, i)| &mut **i)
    }

    /// Writes an invoice's status; `None` if there is no such invoice.
    pub(crate) fn set_stored(&mut self, hash: &[u8; 32], to: Stored) -> Option<&Invoice> {
        let inv = self.fetch(hash)?;
        let from = std::mem::replace(&mut inv.stored, to);
        let (key, amount) = (inv.fields.asset_key(), inv.fields.amount.unwrap_or(0));
        if from != to && (from == Stored::Paid || to == Stored::Paid) {
            let total = self.paid.entry(key).or_default();
            if to == Stored::Paid {
                *total = total.saturating_add(amount);
            } else {
                *total = total.saturating_sub(amount);
            }
        }
        self.hot.get(hash).map(|(_, i)| &**i)
    }

    /// Records a hold invoice's preimage.
    pub(crate) fn set_preimage(&mut self, hash: &[u8; 32], preimage: [u8; 32]) {
        if let Some(inv) = self.fetch(hash) {
            inv.preimage = Some(preimage);
        }
    }

    /// What paid invoices brought in, by [`asset_key`].
    pub(crate) fn paid(&self) -> &BTreeMap<Option<String>, u128> {
        &self.paid
    }

    /// Every invoice, in memory and in the file (for listings and counts).
    pub(crate) fn visit(&self, now_ms: u128, mut f: impl FnMut(Summary<'_>)) {
        for (hash, (_, inv)) in &self.hot {
            f(Summary {
                payment_hash: hash,
                address: &inv.address,
                status: inv.status(now_ms),
                amount: inv.fields.amount,
            });
        }
        if let Some(c) = &self.cold {
            c.visit(now_ms, &mut f);
        }
    }
}

/// The file of older invoices: records appended one after another, each linked to the previous
/// record of its bucket.
///
/// A record: `len u32` (the whole record) · `next u64` (offset + 1 of the bucket's previous
/// record; 0 ends the chain) · `hash [32]` · `stored u8` (`MOVED` once back in memory) ·
/// `timestamp u64` (ms) · `expiry u64` (`u64::MAX`: none) · `amount` (flag u8, u128) ·
/// `final_delta u64` · `hash_algorithm u8` (0: not an attribute) · `preimage` (flag u8, [32]) ·
/// `signature` (flag u8, recovery id u8, [64]) · then `address`, `description`, `fallback`,
/// `udt` (molecule-packed script), each as `u32` length (`u32::MAX`: none) and bytes.
struct Cold {
    file: File,
    end: u64,
    heads: Vec<u64>,
}

const MOVED: u8 = 0xff;
/// Offset of `stored` in a record.
const STORED_AT: u64 = 4 + 8 + 32;
const NONE: u32 = u32::MAX;

fn bucket(hash: &[u8; 32]) -> usize {
    u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]) as usize % BUCKETS
}

impl Cold {
    fn new() -> Cold {
        let path = std::env::temp_dir().join(format!(
            "fiber-link-hubsim-{}-{}.invoices",
            std::process::id(),
            rand::random::<u64>()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("hub simulator: cannot create {}: {e}", path.display()));
        // unlinked at once: the space goes back when the simulator ends, however it ends
        let _ = std::fs::remove_file(&path);
        Cold {
            file,
            end: 0,
            heads: vec![0; BUCKETS],
        }
    }

    fn put(&mut self, inv: &Invoice) {
        let f = &inv.fields;
        let b = bucket(&f.payment_hash);
        let mut r = Vec::with_capacity(256 + inv.address.len());
        r.extend_from_slice(&0u32.to_le_bytes());
        r.extend_from_slice(&self.heads[b].to_le_bytes());
        r.extend_from_slice(&f.payment_hash);
        r.push(inv.stored.byte());
        r.extend_from_slice(&(f.timestamp as u64).to_le_bytes());
        r.extend_from_slice(&f.expiry.unwrap_or(u64::MAX).to_le_bytes());
        r.push(f.amount.is_some() as u8);
        r.extend_from_slice(&f.amount.unwrap_or(0).to_le_bytes());
        r.extend_from_slice(&f.final_delta.to_le_bytes());
        r.push(match f.hash_algorithm {
            None => 0,
            Some(HashAlgorithm::CkbHash) => 1,
            Some(HashAlgorithm::Sha256) => 2,
        });
        r.push(inv.preimage.is_some() as u8);
        r.extend_from_slice(&inv.preimage.unwrap_or_default());
        match &inv.signature {
            Some(s) => {
                let (id, bytes) = s.0.serialize_compact();
                r.push(1);
                r.push(i32::from(id) as u8);
                r.extend_from_slice(&bytes);
            }
            None => r.extend_from_slice(&[0u8; 66]),
        }
        let udt = f.udt.as_ref().map(|s| {
            use ckb_types::prelude::Entity;
            ckb_types::packed::Script::from((**s).clone()).as_bytes()
        });
        for field in [
            Some(inv.address.as_bytes()),
            f.description.as_deref().map(str::as_bytes),
            f.fallback.as_deref().map(str::as_bytes),
            udt.as_deref(),
        ] {
            match field {
                Some(b) => {
                    r.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    r.extend_from_slice(b);
                }
                None => r.extend_from_slice(&NONE.to_le_bytes()),
            }
        }
        let len = r.len() as u32;
        r[..4].copy_from_slice(&len.to_le_bytes());
        self.file
            .write_all_at(&r, self.end)
            .unwrap_or_else(|e| panic!("hub simulator: writing its invoice file: {e}"));
        self.heads[b] = self.end + 1;
        self.end += u64::from(len);
    }

    /// The offset of the live record with this hash.
    fn find(&self, hash: &[u8; 32]) -> Option<u64> {
        let mut at = self.heads[bucket(hash)];
        let mut head = [0u8; STORED_AT as usize + 1];
        while at != 0 {
            let off = at - 1;
            self.file
                .read_exact_at(&mut head, off)
                .unwrap_or_else(|e| panic!("hub simulator: reading its invoice file: {e}"));
            if &head[12..44] == hash && head[STORED_AT as usize] != MOVED {
                return Some(off);
            }
            at = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        }
        None
    }

    /// Takes the invoice out of the file (its record is marked moved).
    fn take(&mut self, hash: &[u8; 32]) -> Option<Box<Invoice>> {
        let off = self.find(hash)?;
        let read = || -> std::io::Result<Vec<u8>> {
            let mut len = [0u8; 4];
            self.file.read_exact_at(&mut len, off)?;
            let mut rec = vec![0u8; u32::from_le_bytes(len) as usize];
            self.file.read_exact_at(&mut rec, off)?;
            self.file.write_all_at(&[MOVED], off + STORED_AT)?;
            Ok(rec)
        };
        let rec = read().unwrap_or_else(|e| panic!("hub simulator: its invoice file: {e}"));
        Some(Box::new(decode(&rec)))
    }

    fn visit(&self, now_ms: u128, f: &mut impl FnMut(Summary<'_>)) {
        // read in chunks of 1 MB at explicit offsets (the records are written at offsets too)
        let mut chunk: Vec<u8> = Vec::new();
        let mut chunk_at = 0u64;
        let mut off = 0u64;
        while off < self.end {
            let have = |chunk: &Vec<u8>, at: u64, n: u64| off + n <= at + chunk.len() as u64;
            if !have(&chunk, chunk_at, 4) {
                chunk = self.read_chunk(off, 4);
                chunk_at = off;
            }
            let i = (off - chunk_at) as usize;
            let len = u32::from_le_bytes(chunk[i..i + 4].try_into().expect("4 bytes"));
            if !have(&chunk, chunk_at, u64::from(len)) {
                chunk = self.read_chunk(off, len as usize);
                chunk_at = off;
            }
            let i = (off - chunk_at) as usize;
            let rec = &chunk[i..i + len as usize];
            off += u64::from(len);
            if rec[STORED_AT as usize] == MOVED {
                continue;
            }
            let inv = decode(rec);
            f(Summary {
                payment_hash: &inv.fields.payment_hash,
                address: &inv.address,
                status: inv.status(now_ms),
                amount: inv.fields.amount,
            });
        }
    }

    /// At least `min` bytes of the file from `off` (up to 1 MB more, as far as the file goes).
    fn read_chunk(&self, off: u64, min: usize) -> Vec<u8> {
        let n = min.max(1 << 20).min((self.end - off) as usize).max(min);
        let mut buf = vec![0u8; n];
        self.file
            .read_exact_at(&mut buf, off)
            .unwrap_or_else(|e| panic!("hub simulator: reading its invoice file: {e}"));
        buf
    }
}

/// A record read back (it was written by [`Cold::put`] of this very process).
fn decode(rec: &[u8]) -> Invoice {
    let mut at = 12usize;
    let mut take = |n: usize| {
        let s = &rec[at..at + n];
        at += n;
        s
    };
    let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
    let hash: [u8; 32] = take(32).try_into().expect("32 bytes");
    let stored = Stored::from_byte(take(1)[0]).unwrap_or(Stored::Open);
    let timestamp = u128::from(u64_at(take(8)));
    let expiry = Some(u64_at(take(8))).filter(|e| *e != u64::MAX);
    let has_amount = take(1)[0] == 1;
    let amount = u128::from_le_bytes(take(16).try_into().expect("16 bytes"));
    let final_delta = u64_at(take(8));
    let hash_algorithm = match take(1)[0] {
        1 => Some(HashAlgorithm::CkbHash),
        2 => Some(HashAlgorithm::Sha256),
        _ => None,
    };
    let has_preimage = take(1)[0] == 1;
    let preimage: [u8; 32] = take(32).try_into().expect("32 bytes");
    let sig = take(66);
    let signature = (sig[0] == 1).then(|| {
        let id = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig[1])).expect("recovery id");
        InvoiceSignature(
            secp256k1::ecdsa::RecoverableSignature::from_compact(&sig[2..], id)
                .expect("a signature this simulator wrote"),
        )
    });
    let mut field = || {
        let len = u32::from_le_bytes(take(4).try_into().expect("4 bytes"));
        (len != NONE).then(|| take(len as usize).to_vec())
    };
    let text = |b: Vec<u8>| String::from_utf8(b).expect("text this simulator wrote");
    let address = field().map(text).unwrap_or_default();
    let description = field().map(text);
    let fallback = field().map(text);
    let udt = field().map(|b| {
        use ckb_types::prelude::Entity;
        let packed =
            ckb_types::packed::Script::from_slice(&b).expect("a script this simulator wrote");
        Box::new(ckb_jsonrpc_types::Script::from(packed))
    });
    Invoice {
        address: address.into_boxed_str(),
        stored,
        preimage: has_preimage.then_some(preimage),
        fields: InvoiceFields {
            amount: has_amount.then_some(amount),
            timestamp,
            payment_hash: hash,
            description: description.map(String::into_boxed_str),
            expiry,
            fallback: fallback.map(String::into_boxed_str),
            final_delta,
            udt,
            hash_algorithm,
        },
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(n: u8, amount: u128, udt: bool, preimage: bool) -> Box<Invoice> {
        let script = ckb_jsonrpc_types::Script {
            code_hash: [n; 32].into(),
            hash_type: ckb_jsonrpc_types::ScriptHashType::Type,
            args: ckb_jsonrpc_types::JsonBytes::from_vec(vec![n, 1, 2]),
        };
        Box::new(Invoice {
            address: format!("fibd{n}").into_boxed_str(),
            stored: Stored::Open,
            preimage: preimage.then_some([n ^ 0x55; 32]),
            fields: InvoiceFields {
                amount: Some(amount),
                timestamp: 1_764_000_000_000 + u128::from(n),
                payment_hash: [n; 32],
                description: n
                    .is_multiple_of(2)
                    .then(|| format!("tip {n}").into_boxed_str()),
                expiry: (!n.is_multiple_of(3)).then_some(3600),
                fallback: None,
                final_delta: 9_600_000,
                udt: udt.then(|| Box::new(script)),
                hash_algorithm: (!n.is_multiple_of(2)).then_some(HashAlgorithm::Sha256),
            },
            signature: None,
        })
    }

    /// Invoices pushed out to the file come back whole, their changes are counted once, and a
    /// listing shows each invoice once, wherever it is kept.
    #[test]
    fn invoices_in_the_file_come_back_and_are_counted_once() {
        let mut book = Book::with_hot(2);
        for n in 1..=8u8 {
            book.insert([n; 32], invoice(n, u128::from(n) * 100, n == 3, n != 5));
        }
        assert_eq!(book.hot.len(), 2);
        assert!(!book.contains(&[9; 32]));
        for n in 1..=8u8 {
            assert!(book.contains(&[n; 32]), "{n}");
            let want = invoice(n, u128::from(n) * 100, n == 3, n != 5);
            let got = book.get(&[n; 32]).expect("held");
            assert_eq!(&*got.address, &*want.address);
            assert_eq!(got.preimage, want.preimage);
            assert_eq!(got.fields.amount, want.fields.amount);
            assert_eq!(got.fields.timestamp, want.fields.timestamp);
            assert_eq!(got.fields.description, want.fields.description);
            assert_eq!(got.fields.expiry, want.fields.expiry);
            assert_eq!(got.fields.udt, want.fields.udt);
            assert_eq!(got.fields.hash_algorithm, want.fields.hash_algorithm);
            assert_eq!(got.fields.final_delta, want.fields.final_delta);
        }
        // 3 pays in a UDT, 4 and 6 in CKB (each while in the file), 4 twice
        for n in [3u8, 4, 6, 4] {
            book.set_stored(&[1; 32], Stored::Open);
            book.set_stored(&[2; 32], Stored::Open);
            book.set_stored(&[n; 32], Stored::Paid).expect("held");
        }
        book.set_stored(&[7; 32], Stored::Cancelled);
        assert_eq!(book.paid().get(&None), Some(&1000));
        let udt_key = asset_key(book.get(&[3; 32]).unwrap().fields.udt.as_deref());
        assert!(udt_key.is_some());
        assert_eq!(book.paid().get(&udt_key), Some(&300));
        let mut seen = std::collections::BTreeMap::new();
        book.visit(1_764_000_000_000, |s| {
            assert!(
                seen.insert(s.payment_hash[0], s.status).is_none(),
                "{}",
                s.payment_hash[0]
            );
            assert_eq!(s.address, format!("fibd{}", s.payment_hash[0]));
        });
        assert_eq!(seen.len(), 8);
        assert_eq!(seen[&4], j::CkbInvoiceStatus::Paid);
        assert_eq!(seen[&7], j::CkbInvoiceStatus::Cancelled);
        assert_eq!(seen[&8], j::CkbInvoiceStatus::Open);
        // long after: the ones with an expiry read Expired
        let mut expired = 0;
        book.visit(u128::MAX / 2, |s| {
            expired += (s.status == j::CkbInvoiceStatus::Expired) as u32
        });
        assert_eq!(expired, 4); // 1, 2, 5 and 8: open, with an expiry
    }
}
