//! The FNN invoice methods: `new_invoice`, `get_invoice`, `cancel_invoice`, `settle_invoice`,
//! `parse_invoice`.

use super::{now_ms, one_param, Echo, HubSim, Invoice, InvoiceFields, RpcError, RpcResult, Stored};
use fiber_json_types as j;
use fiber_types::{CkbInvoice, Currency, HashAlgorithm, InvoiceSignature};
use rand::Rng;
use secp256k1::SECP256K1;
use serde_json::{json, Value};

/// Release-build bounds of `final_expiry_delta` (ms): 160 minutes to 14 days.
const MIN_FINAL_EXPIRY_DELTA: u64 = 9_600_000;
const MAX_FINAL_EXPIRY_DELTA: u64 = 1_209_600_000;
const MAX_DESCRIPTION_BYTES: usize = 639;

/// Signs `invoice` with `key` and returns its string: what fiber-types' `update_signature` and
/// `to_string` give, with one compression of the invoice data and one signing instead of four
/// compressions, a signing, two key recoveries and a verification.
pub(crate) fn sign(invoice: &mut CkbInvoice, key: &secp256k1::SecretKey) -> Result<String, String> {
    use bech32::{u5, ToBase32};
    invoice.signature = None;
    let unsigned = invoice.to_string();
    let (hrp, mut data, _) = bech32::decode(&unsigned).map_err(|e| e.to_string())?;
    // data = the "signed" flag, then the compressed invoice data
    let preimage = fiber_types::construct_invoice_preimage(hrp.as_bytes(), &data[1..]);
    let msg = secp256k1::Message::from_digest(fiber_types::sha256(preimage));
    let signature = InvoiceSignature(SECP256K1.sign_ecdsa_recoverable(&msg, key));
    data[0] = u5::try_from_u8(1).map_err(|e| e.to_string())?;
    data.extend_from_slice(&signature.to_base32());
    invoice.signature = Some(signature);
    bech32::encode(&hrp, data, bech32::Variant::Bech32m).map_err(|e| e.to_string())
}

impl HubSim {
    pub(super) fn new_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::NewInvoiceParams, Echo<_>) = one_param(params)?;
        let currency = match p.currency {
            j::Currency::Fibb => Currency::Fibb,
            j::Currency::Fibt => Currency::Fibt,
            j::Currency::Fibd => Currency::Fibd,
        };
        if currency != self.0.currency {
            return Err(RpcError::app(
                format!(
                    "Currency must be {:?} with the chain network",
                    self.0.currency
                ),
                echo,
            ));
        }
        if let Some(d) = &p.description {
            if d.len() > MAX_DESCRIPTION_BYTES {
                return Err(RpcError::app(
                    format!("Description with length of {} is too long, max length is {MAX_DESCRIPTION_BYTES}", d.len()),
                    echo,
                ));
            }
        }
        if p.payment_hash.is_some() && p.payment_preimage.is_some() {
            return Err(RpcError::app(
                "Both payment_hash and payment_preimage are set",
                echo,
            ));
        }
        let final_delta = p.final_expiry_delta.unwrap_or(MIN_FINAL_EXPIRY_DELTA);
        if !(MIN_FINAL_EXPIRY_DELTA..=MAX_FINAL_EXPIRY_DELTA).contains(&final_delta) {
            return Err(RpcError::app(
                format!(
                    "final_expiry_delta must be between {MIN_FINAL_EXPIRY_DELTA} and {MAX_FINAL_EXPIRY_DELTA}, got {final_delta}"
                ),
                echo,
            ));
        }
        if p.allow_mpp == Some(true) || p.allow_trampoline_routing == Some(true) {
            return Err(RpcError::app(
                "the hub simulator does not support MPP or trampoline invoices",
                echo,
            ));
        }
        let algo = match p.hash_algorithm {
            Some(j::HashAlgorithm::Sha256) => HashAlgorithm::Sha256,
            _ => HashAlgorithm::CkbHash,
        };
        let (preimage, hash) = match (p.payment_preimage, p.payment_hash) {
            (Some(pre), None) => (Some(pre.0), algo.hash(pre.0)),
            (None, Some(h)) => (None, h.0),
            _ => {
                let pre: [u8; 32] = rand::thread_rng().gen();
                (Some(pre), algo.hash(pre))
            }
        };
        let fields = InvoiceFields {
            amount: Some(p.amount),
            timestamp: now_ms(),
            payment_hash: hash,
            description: p.description.map(String::into_boxed_str),
            expiry: p.expiry,
            fallback: p.fallback_address.map(String::into_boxed_str),
            final_delta,
            udt: p.udt_type_script.map(Box::new),
            hash_algorithm: p.hash_algorithm.map(|_| algo),
        };
        let mut invoice = fields.invoice(currency, self.0.pubkey);
        let address = sign(&mut invoice, &self.0.key).map_err(|e| RpcError::app(e, echo))?;
        let signature = invoice.signature.clone();
        let json_invoice = j::CkbInvoice::from(invoice);
        let mut st = self.state();
        if st.invoices.contains(&hash) {
            return Err(RpcError::app("invoice already exists", echo));
        }
        st.invoices.insert(
            hash,
            Box::new(Invoice {
                address: address.clone().into_boxed_str(),
                stored: Stored::Open,
                preimage,
                fields,
                signature,
            }),
        );
        self.0.stream.invoice_status(&hash, "Open");
        if let Some(pre) = &preimage {
            self.0.stream.preimage(&hash, pre);
        }
        Ok(json!({"invoice_address": address, "invoice": json_invoice}))
    }

    pub(super) fn get_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::InvoiceParams, Echo<_>) = one_param(params)?;
        let mut st = self.state();
        match st.invoices.get(&p.payment_hash.0) {
            Some(inv) => Ok(inv.result(&self.0, now_ms())),
            None => Err(RpcError::app("invoice not found", echo)),
        }
    }

    pub(super) fn cancel_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::InvoiceParams, Echo<_>) = one_param(params)?;
        let mut st = self.state();
        let hash = p.payment_hash.0;
        let inv = st
            .invoices
            .get(&hash)
            .ok_or_else(|| RpcError::app("invoice not found", echo))?;
        match inv.status(now_ms()) {
            j::CkbInvoiceStatus::Open
            | j::CkbInvoiceStatus::Expired
            | j::CkbInvoiceStatus::Received => {
                let inv = st
                    .invoices
                    .set_stored(&hash, Stored::Cancelled)
                    .ok_or_else(|| RpcError::app("invoice not found", echo))?;
                self.0.stream.invoice_status(&hash, "Cancelled");
                Ok(inv.result(&self.0, now_ms()))
            }
            s => Err(RpcError::app(
                format!("invoice can not be canceled, current status: {s:?}"),
                echo,
            )),
        }
    }

    pub(super) fn settle_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::SettleInvoiceParams, Echo<_>) = one_param(params)?;
        let mut st = self.state();
        let inv = st
            .invoices
            .get(&p.payment_hash.0)
            .ok_or_else(|| RpcError::app("Invoice not found", echo))?;
        let algo = inv.fields.hash_algorithm.unwrap_or_default();
        if algo.hash(p.payment_preimage.0) != p.payment_hash.0 {
            return Err(RpcError::app("Hash mismatch", echo));
        }
        match inv.status(now_ms()) {
            j::CkbInvoiceStatus::Open => Err(RpcError::app("Invoice is still open", echo)),
            j::CkbInvoiceStatus::Expired => Err(RpcError::app("Invoice is already expired", echo)),
            j::CkbInvoiceStatus::Cancelled => {
                Err(RpcError::app("Invoice is already cancelled", echo))
            }
            j::CkbInvoiceStatus::Paid => Err(RpcError::app("Invoice is already paid", echo)),
            j::CkbInvoiceStatus::Received => {
                // As at FNN, the invoice stays Received while the fulfill is committed.
                st.invoices
                    .set_preimage(&p.payment_hash.0, p.payment_preimage.0);
                let (sim, hash, delay) = (self.clone(), p.payment_hash.0, self.0.opts.settle_delay);
                let preimage = p.payment_preimage.0;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if sim
                        .state()
                        .invoices
                        .set_stored(&hash, Stored::Paid)
                        .is_some()
                    {
                        sim.0.stream.preimage(&hash, &preimage);
                        sim.0.stream.invoice_status(&hash, "Paid");
                    }
                });
                Ok(json!({}))
            }
        }
    }

    pub(super) fn parse_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::ParseInvoiceParams, Echo<_>) = one_param(params)?;
        let inv: CkbInvoice = p
            .invoice
            .parse()
            .map_err(|e: fiber_types::InvoiceError| RpcError::app(e.to_string(), echo))?;
        Ok(json!({"invoice": j::CkbInvoice::from(inv)}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fiber_types::{Attribute, InvoiceData};
    use std::time::Duration;

    /// The quick signing gives the very string fiber-types gives, and it parses with its
    /// signature verified.
    #[test]
    fn sign_gives_what_fiber_types_gives() {
        let key = secp256k1::SecretKey::from_byte_array(&[7u8; 32]).unwrap();
        let pubkey = secp256k1::PublicKey::from_secret_key(SECP256K1, &key);
        for (amount, description) in [
            (Some(1u128), None),
            (Some(12_345_678_900), Some("Fiber Link tip for post 42")),
            (None, Some("x")),
        ] {
            let mut attrs = vec![
                Attribute::ExpiryTime(Duration::from_secs(3600)),
                Attribute::PayeePublicKey(pubkey),
            ];
            if let Some(d) = description {
                attrs.push(Attribute::Description(d.to_string()));
            }
            let mut quick = CkbInvoice {
                currency: Currency::Fibd,
                amount,
                signature: None,
                data: InvoiceData {
                    timestamp: 1_764_000_000_000,
                    payment_hash: [9u8; 32].into(),
                    attrs,
                },
            };
            let mut slow = quick.clone();
            let address = sign(&mut quick, &key).unwrap();
            slow.update_signature(|m| SECP256K1.sign_ecdsa_recoverable(m, &key))
                .unwrap();
            assert_eq!(address, slow.to_string());
            assert_eq!(quick, slow);
            let parsed: CkbInvoice = address.parse().unwrap();
            assert_eq!(parsed, slow);
        }
    }

    /// What `get_invoice` shows of a stored invoice (rebuilt from its compact record, in memory
    /// or read back from the file of older invoices) is what parsing its string gives, whatever
    /// attributes it was issued with.
    #[test]
    fn a_stored_invoice_shows_what_its_string_says() {
        // 0: every invoice in the file but the newest; the default: all in memory
        for hot in [Some(0), None] {
            let sim = crate::HubSim::new(crate::SimOptions::default()).unwrap();
            if let Some(n) = hot {
                sim.state().invoices = crate::book::Book::with_hot(n);
            }
            let udt = json!({"code_hash": format!("0x{}", "11".repeat(32)), "hash_type": "type", "args": "0x2233"});
            let mut issued = Vec::new();
            for params in [
                json!({"amount": "0x64", "currency": "Fibd"}),
                json!({"amount": "0x2540be400", "currency": "Fibd", "description": "Fiber Link tip", "expiry": "0xe10",
                       "final_expiry_delta": "0x927c00", "hash_algorithm": "sha256", "udt_type_script": udt,
                       "fallback_address": "ckt1qyqrdsefa43s6m882pcj53m4gdnj4k440axqswmu83"}),
                json!({"amount": "0x1", "currency": "Fibd", "payment_preimage": format!("0x{}", "07".repeat(32)),
                       "hash_algorithm": "ckb_hash"}),
                json!({"amount": "0x2", "currency": "Fibd", "payment_hash": format!("0x{}", "0a".repeat(32)),
                       "description": ""}),
            ] {
                let created = sim
                    .new_invoice(&json!([params]))
                    .unwrap_or_else(|e| panic!("{}", e.message));
                issued.push(created);
            }
            // twice: the second time each comes back from memory, or from the file again
            for _ in 0..2 {
                for created in &issued {
                    let address = created["invoice_address"].as_str().unwrap();
                    let parsed: CkbInvoice = address.parse().unwrap();
                    let want = serde_json::to_value(j::CkbInvoice::from(parsed.clone())).unwrap();
                    assert_eq!(created["invoice"], want);
                    let hash = format!(
                        "0x{}",
                        hex::encode(<[u8; 32]>::from(*parsed.payment_hash()))
                    );
                    let got = sim
                        .get_invoice(&json!([{"payment_hash": hash}]))
                        .unwrap_or_else(|e| panic!("{}", e.message));
                    assert_eq!(got["invoice_address"], address, "{hot:?}");
                    assert_eq!(got["invoice"], want, "{hot:?}");
                    assert_eq!(got["status"], "Open");
                    // a hash the node holds is refused a second time, wherever it is kept
                    let again = sim.new_invoice(
                        &json!([{"amount": "0x1", "currency": "Fibd", "payment_hash": hash}]),
                    );
                    assert_eq!(
                        again.err().map(|e| e.message),
                        Some("invoice already exists".to_string())
                    );
                }
            }
        }
    }
}
