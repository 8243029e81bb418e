//! The client's decoding against real FNN v0.8.0 traffic and the generated shapes of newer
//! versions (vendored under tests/fixtures/fnn/).

use fiber_link_core::InvoiceStatus;
use fiber_link_fnn::*;
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fnn")
}

fn real(name_prefix: &str) -> Vec<(String, Value)> {
    let dir = fixtures().join("real-v0.8.0");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("vendored fixtures") {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if n.ends_with(".response.json") && n[4..].starts_with(name_prefix) {
            out.push((
                n,
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures for {name_prefix}");
    out
}

#[test]
fn decodes_every_recorded_invoice_answer() {
    let mut statuses = std::collections::BTreeSet::new();
    for method in ["get_invoice", "cancel_invoice"] {
        for (name, v) in real(method) {
            match decode_response::<GetInvoiceResult>(method, v.clone()) {
                Ok(r) => {
                    statuses.insert(invoice_status(r.status).as_str());
                    // the invoice string carries the same hash as the JSON
                    let parsed: fiber_types::CkbInvoice = r.invoice_address.parse().expect(&name);
                    assert_eq!(
                        format!("0x{}", hex(parsed.payment_hash().as_ref())),
                        r.invoice.data.payment_hash.to_string(),
                        "{name}"
                    );
                }
                Err(e) => assert!(v.get("error").is_some(), "{name}: {e}"),
            }
        }
    }
    let all: std::collections::BTreeSet<_> = ["Open", "Received", "Paid", "Expired", "Cancelled"]
        .into_iter()
        .collect();
    assert_eq!(statuses, all, "every status appears in the recording");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn decodes_new_invoice_node_info_payments_and_channels() {
    for (name, v) in real("new_invoice") {
        if v.get("error").is_some() {
            continue;
        }
        let r: InvoiceResult = decode_response("new_invoice", v).expect(&name);
        assert!(r.invoice_address.starts_with("fibd"), "{name}");
        assert_eq!(r.invoice.currency, Currency::Fibd);
    }
    for (name, v) in real("node_info") {
        let r: NodeInfoResult = decode_response("node_info", v).expect(&name);
        assert_eq!(r.version, "0.8.0");
        assert!(!r.udt_cfg_infos.0.is_empty());
    }
    for m in ["get_payment", "send_payment"] {
        for (name, v) in real(m) {
            if v.get("error").is_some() {
                continue;
            }
            // debug-build answers carry `routers`; a release hub's do not: both decode
            let r: GetPaymentCommandResult = decode_response(m, v).expect(&name);
            assert!(matches!(
                r.status,
                PaymentStatus::Created
                    | PaymentStatus::Inflight
                    | PaymentStatus::Success
                    | PaymentStatus::Failed
            ));
        }
    }
    for (name, v) in real("list_channels") {
        let r: ListChannelsResult = decode_response("list_channels", v).expect(&name);
        let _ = r.channels.len();
    }
    for (name, v) in real("parse_invoice") {
        let r: ParseInvoiceResult = decode_response("parse_invoice", v).expect(&name);
        assert!(r.invoice.amount.is_some(), "{name}");
    }
}

#[test]
fn maps_fnn_errors() {
    let one = |prefix: &str| real(prefix).into_iter().next().unwrap().1;
    let e =
        decode_response::<GetInvoiceResult>("get_invoice", one("get_invoice.nodeB.unknown_hash"))
            .err()
            .unwrap();
    assert!(e.is_invoice_not_found(), "{e}");
    assert!(!e.is_transient());
    let e =
        decode_response::<InvoiceResult>("new_invoice", one("new_invoice.nodeB.duplicate_hash"))
            .unwrap_err();
    assert!(e.is_invoice_already_exists(), "{e}");
    let e =
        decode_response::<GetInvoiceResult>("cancel_invoice", one("cancel_invoice.nodeB.again"))
            .err()
            .unwrap();
    assert_eq!(e.cancel_refused_status(), Some(InvoiceStatus::Cancelled));
    let e = decode_response::<GetPaymentCommandResult>(
        "get_payment",
        one("get_payment.nodeA.unknown_hash"),
    )
    .unwrap_err();
    assert!(e.is_payment_not_found(), "{e}");

    let gen: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("generated.json")).unwrap()).unwrap();
    let errs = &gen["generated_error_responses_from_v0_8_0_source"];
    let e = decode_response::<Value>("x", errs["unauthorized_any_method"].clone()).unwrap_err();
    assert!(matches!(e, HubError::Unauthorized(_)));
    assert!(e.is_transient());
    let e = decode_response::<Value>("x", errs["cancel_invoice_already_paid"].clone()).unwrap_err();
    assert_eq!(e.cancel_refused_status(), Some(InvoiceStatus::Paid));
}

#[test]
fn decodes_generated_shapes_of_newer_versions() {
    let gen: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("generated.json")).unwrap()).unwrap();
    let g = &gen["generated_responses_fiber_json_types_0_10_0_rc1"];
    let open: GetInvoiceResult =
        serde_json::from_value(g["ckb_invoice"]["get_invoice_result_open"].clone()).unwrap();
    assert_eq!(open.status, CkbInvoiceStatus::Open);
    let held: GetInvoiceResult =
        serde_json::from_value(g["hold_udt_invoice"]["get_invoice_result_received"].clone())
            .unwrap();
    assert_eq!(held.invoice.currency, Currency::Fibt);
    let other = &gen["generated_other_results_fiber_json_types_0_10_0_rc1"];
    let ok: GetPaymentCommandResult =
        serde_json::from_value(other["get_payment_result_success_0_9_plus"].clone()).unwrap();
    assert_eq!(ok.status, PaymentStatus::Success);
    // an unknown field a future FNN might add is tolerated
    let mut extra = g["ckb_invoice"]["get_invoice_result_open"].clone();
    extra["some_future_field"] = Value::from(1);
    let _: GetInvoiceResult = serde_json::from_value(extra).unwrap();
}

#[test]
fn checks_an_invoice_string_against_the_tip() {
    let (_, v) = real("new_invoice.nodeB").into_iter().next().unwrap();
    let r: InvoiceResult = decode_response("new_invoice", v).unwrap();
    let hash = r.invoice.data.payment_hash;
    let amount = r.invoice.amount.unwrap();
    let addr = &r.invoice_address;
    assert_eq!(
        check_invoice_address(addr, &hash, amount, Currency::Fibd),
        Ok(())
    );
    assert!(
        check_invoice_address(addr, &hash, amount + 1, Currency::Fibd)
            .unwrap_err()
            .contains("instead of")
    );
    assert!(
        check_invoice_address(addr, &Hash256([7; 32]), amount, Currency::Fibd)
            .unwrap_err()
            .contains("payment hash")
    );
    assert!(check_invoice_address(addr, &hash, amount, Currency::Fibt)
        .unwrap_err()
        .contains("network"));
    let mut tampered = addr.clone();
    tampered.replace_range(40..41, if &addr[40..41] == "q" { "p" } else { "q" });
    assert!(
        check_invoice_address(&tampered, &hash, amount, Currency::Fibd)
            .unwrap_err()
            .contains("does not parse")
    );
}

#[test]
fn reads_every_recorded_store_change() {
    let path = fixtures().join("pubsub-v0.8.0.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut statuses = Vec::new();
    let mut others = 0;
    for e in doc["exchanges"].as_array().unwrap() {
        let m = &e["message"];
        if e["via"] != "ws" || m["method"] != "store_changes" {
            continue;
        }
        match fiber_link_fnn::parse_store_change(&m["params"]["result"]).unwrap() {
            fiber_link_fnn::StoreChange::InvoiceStatus {
                payment_hash,
                status,
            } => statuses.push((payment_hash.to_string(), format!("{status:?}"))),
            fiber_link_fnn::StoreChange::Other(tag) => {
                assert_eq!(tag, "PutPreimage");
                others += 1
            }
        }
    }
    let of = |prefix: &str| -> Vec<&str> {
        statuses
            .iter()
            .filter(|(h, _)| h.starts_with(prefix))
            .map(|(_, s)| s.as_str())
            .collect()
    };
    // paid, cancelled, left to expire (nothing is emitted for Expired)
    assert_eq!(of("0x1aa484da"), ["Open", "Received", "Paid"]);
    assert_eq!(of("0x09d7cf0d"), ["Open", "Cancelled"]);
    assert_eq!(of("0x746b5f91"), ["Open"]);
    assert!(others >= 4, "PutPreimage repeats: {others}");
}
