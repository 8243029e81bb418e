//! `withdrawal.quote`, `withdrawal.request`, `withdrawal.get`, `withdrawal.list`,
//! `withdrawal.cancel`.

use crate::auth::Caller;
use crate::common::{
    cursor_param, internal, keyset_page, limit_param, withdrawal_json, ExternalId,
};
use crate::AppState;
use chrono::Utc;
use fiber_link_core::withdrawal::{bounds, check, Figures, Refusal, Standing};
use fiber_link_core::{
    format_decimal, input, parse_decimal, Amount, ApiError, Asset, ErrorCode, Rail,
};
use fiber_link_fnn::PayoutInvoice;
use fiber_link_store::withdrawals::{NewWithdrawal, RequestOutcome, WithdrawalRow};
use fiber_link_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuoteParams {
    user_id: ExternalId,
    asset: String,
    amount: Option<Value>,
    destination: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestParams {
    user_id: ExternalId,
    asset: String,
    amount: Value,
    destination: Value,
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdParams {
    withdrawal_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    user_id: ExternalId,
    cursor: Option<String>,
    limit: Option<Value>,
}

/// A parsed destination.
struct Destination {
    rail: Rail,
    /// On chain: the least a cell with the recipient's lock holds.
    min_receive: Amount,
    /// The destination as stored and shown: `{kind, address}` or `{kind, invoice}`.
    json: Value,
    invoice: Option<PayoutInvoice>,
}

fn refusal_error(r: Refusal) -> ApiError {
    ApiError::new(ErrorCode::Refused, r.reason, r.message)
}

async fn destination(state: &AppState, asset: &Asset, v: &Value) -> Result<Destination, ApiError> {
    let malformed = || {
        ApiError::invalid(
            "destination_malformed",
            "destination must be {\"kind\": \"ckb_address\", \"address\": …} or {\"kind\": \"fiber_invoice\", \"invoice\": …}",
        )
    };
    let obj = v.as_object().ok_or_else(malformed)?;
    let field = |name: &str| -> Result<&str, ApiError> {
        if obj.len() != 2 {
            return Err(malformed());
        }
        obj.get(name).and_then(Value::as_str).ok_or_else(malformed)
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("ckb_address") => {
            let address = field("address")?;
            let w = &state.settings.withdrawals;
            if asset.is_udt() {
                return Err(ApiError::invalid(
                    "rail_unsupported",
                    format!(
                        "{} can only be withdrawn by paying a Fiber invoice, not to a CKB address",
                        asset.symbol
                    ),
                ));
            }
            if w.onchain.is_none() {
                return Err(ApiError::invalid(
                    "rail_unsupported",
                    "on-chain withdrawals are not enabled on this service; pay a Fiber invoice instead",
                ));
            }
            let r = fiber_link_chain::parse_address(address, state.settings.mainnet())
                .map_err(|(reason, message)| ApiError::invalid(reason, message))?;
            Ok(Destination {
                rail: Rail::Onchain,
                min_receive: r.min_capacity,
                json: json!({"kind": "ckb_address", "address": r.canonical}),
                invoice: None,
            })
        }
        Some("fiber_invoice") => {
            let invoice = field("invoice")?.trim();
            let currency = fiber_link_fnn::currency_from_str(&state.settings.currency)
                .ok_or_else(ApiError::internal)?;
            let now = Utc::now().timestamp_millis().max(0) as u128;
            let inv = fiber_link_fnn::payout_invoice(invoice, currency, now)
                .map_err(|(reason, message)| ApiError::invalid(reason, message))?;
            let same_asset = match (&inv.udt_type_script, &asset.udt_type_script) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    a.code_hash.eq_ignore_ascii_case(&b.code_hash)
                        && a.hash_type == b.hash_type
                        && a.args.eq_ignore_ascii_case(&b.args)
                }
                _ => false,
            };
            if !same_asset {
                return Err(ApiError::invalid(
                    "invoice_wrong_asset",
                    format!("the invoice is not for {}", asset.symbol),
                ));
            }
            // the funds of a payment that cannot be routed go back only after the invoice
            // expired: an invoice that never expires would hold them for good
            if inv.expires_at_ms.is_none() {
                return Err(ApiError::invalid(
                    "invoice_without_expiry",
                    "the invoice has no expiry; ask the wallet for an invoice that expires (an hour is typical)",
                ));
            }
            if let (Some(payee), Some(hub)) = (&inv.payee, state.hub_node_id().await) {
                if payee.eq_ignore_ascii_case(hub) {
                    return Err(ApiError::invalid(
                        "invoice_of_hub",
                        "the invoice is the service's own (a tip invoice?); withdraw to an invoice made by your own Fiber wallet",
                    ));
                }
            }
            Ok(Destination {
                rail: Rail::Fiber,
                min_receive: Amount::from_base_units(1),
                json: json!({"kind": "fiber_invoice", "invoice": invoice}),
                invoice: Some(inv),
            })
        }
        _ => Err(malformed()),
    }
}

fn asset<'a>(state: &'a AppState, symbol: &str) -> Result<&'a Asset, ApiError> {
    state.settings.assets.get(symbol).ok_or_else(|| {
        ApiError::invalid(
            "unknown_asset",
            format!("asset {symbol:?} is not accepted here"),
        )
    })
}

fn parse_amount(a: &Asset, v: &Value) -> Result<Amount, ApiError> {
    let Value::String(s) = v else {
        return Err(ApiError::invalid(
            "amount_not_string",
            "amount must be a decimal string in asset units, such as \"100\"",
        ));
    };
    parse_decimal(s, a.decimals).map_err(|e| ApiError::invalid(e.reason(), format!("amount: {e}")))
}

/// The fee of a payout on `d`, and the `amount` an invoice with an amount requires.
fn fee_and_required(
    state: &AppState,
    d: &Destination,
    amount: Option<Amount>,
) -> (Amount, Option<Amount>) {
    let w = &state.settings.withdrawals;
    match (&d.rail, d.invoice.as_ref().and_then(|i| i.amount)) {
        (Rail::Onchain, _) => (
            w.onchain.as_ref().map(|o| o.fee()).unwrap_or_default(),
            None,
        ),
        (Rail::Fiber, Some(receive)) => {
            let receive = Amount::from_base_units(receive);
            let fee = w.fiber_fee(receive);
            (fee, w.fee_mode.amount_for(receive, fee))
        }
        (Rail::Fiber, None) => (w.fiber_fee(amount.unwrap_or_default()), None),
    }
}

/// The figures of a withdrawal of `amount` to `d`.
fn figures(
    state: &AppState,
    a: &Asset,
    d: &Destination,
    amount: Amount,
) -> Result<Figures, ApiError> {
    let mode = state.settings.withdrawals.fee_mode;
    let (fee, required) = fee_and_required(state, d, Some(amount));
    if let Some(req) = required {
        if req != amount {
            return Err(ApiError::invalid(
                "invoice_amount_mismatch",
                format!(
                    "to pay this invoice the amount must be {} {} ({} for the recipient and at most {} in fees)",
                    format_decimal(req, a.decimals),
                    a.symbol,
                    format_decimal(
                        Amount::from_base_units(d.invoice.as_ref().and_then(|i| i.amount).unwrap_or(0)),
                        a.decimals
                    ),
                    format_decimal(fee, a.decimals)
                ),
            ));
        }
    }
    let receive = mode.receive(amount, fee).ok_or_else(|| {
        refusal_error(Refusal {
            reason: "amount_below_minimum",
            message: format!(
                "the amount does not cover the network fee of {} {}",
                format_decimal(fee, a.decimals),
                a.symbol
            ),
        })
    })?;
    if receive < d.min_receive {
        return Err(refusal_error(Refusal {
            reason: "amount_below_minimum",
            message: format!(
                "the recipient must receive at least {} {} (the smallest cell for this address)",
                format_decimal(d.min_receive, a.decimals),
                a.symbol
            ),
        }));
    }
    Ok(Figures {
        amount,
        fee,
        receive,
    })
}

fn run_check(
    state: &AppState,
    a: &Asset,
    d: &Destination,
    f: &Figures,
    policy: &fiber_link_core::Policy,
    st: &Standing,
) -> Result<bool, Refusal> {
    let decimals = a.decimals;
    let symbol = a.symbol.clone();
    check(
        policy,
        d.rail,
        state.settings.withdrawals.fee_mode,
        f,
        st,
        move |x| format!("{} {}", format_decimal(x, decimals), symbol),
    )
}

pub(crate) async fn quote(
    state: &AppState,
    caller: &Caller,
    p: QuoteParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "withdrawal.quote", Some(&user))?;
    let a = asset(state, &p.asset)?;
    let amount = p.amount.as_ref().map(|v| parse_amount(a, v)).transpose()?;
    let (ov, st) = state
        .store
        .withdrawal_standing(&caller.app_id, &user, &a.symbol)
        .await
        .map_err(internal)?;
    let policy = ov.apply(&state.settings.withdrawals.default_policy(&a.symbol));
    let mode = state.settings.withdrawals.fee_mode;
    let fmt = |x: Amount| format_decimal(x, a.decimals);
    let dest = destination(state, a, &p.destination).await;
    let (rail, fee, required) = match &dest {
        Ok(d) => {
            let (fee, req) = fee_and_required(state, d, amount);
            (d.rail, fee, req)
        }
        // bounds for an on-chain payout unless it is an invoice
        Err(_) => (
            if p.destination.get("kind").and_then(Value::as_str) == Some("fiber_invoice") {
                Rail::Fiber
            } else {
                Rail::Onchain
            },
            Amount::ZERO,
            None,
        ),
    };
    let b = bounds(&policy, rail, mode, fee, &st);
    let amount = amount.or(required).or(b.max);
    let mut v = json!({
        "asset": a.symbol,
        "rail": rail.as_str(),
        "fee_mode": mode.as_str(),
        "fee": fmt(fee),
        "minimum": fmt(b.min),
        "maximum": b.max.map(fmt),
        "available": fmt(st.available),
        "destination_valid": dest.is_ok(),
        "destination_error": dest.as_ref().err().map(|e| json!({"reason": e.reason, "message": e.message})),
        "amount": amount.map(fmt),
        "receive_amount": null,
        "needs_approval": false,
        "allowed": false,
        "refusal": null,
    });
    let not_allowed = || {
        refusal_error(Refusal {
            reason: "asset_not_allowed",
            message: "withdrawals of this asset are not allowed for this community".into(),
        })
    };
    let outcome = match (&dest, amount) {
        (Ok(_), _) if !policy.allowed => Err(not_allowed()),
        (Ok(d), Some(amount)) => figures(state, a, d, amount).and_then(|f| {
            v["fee"] = json!(fmt(f.fee));
            v["receive_amount"] = json!(fmt(f.receive));
            run_check(state, a, d, &f, &policy, &st).map_err(refusal_error)
        }),
        (Ok(_), None) => Err(refusal_error(Refusal {
            reason: if policy.allowed {
                "insufficient_balance"
            } else {
                "asset_not_allowed"
            },
            message: if policy.allowed {
                format!(
                    "nothing can be withdrawn: at least {} is needed",
                    fmt(b.min)
                )
            } else {
                "withdrawals of this asset are not allowed for this community".into()
            },
        })),
        (Err(e), _) => Err(e.clone()),
    };
    match outcome {
        Ok(needs) => {
            v["allowed"] = json!(true);
            v["needs_approval"] = json!(needs);
        }
        Err(e) if dest.is_ok() => {
            v["refusal"] = json!({"reason": e.reason, "message": e.message});
        }
        Err(_) => {}
    }
    Ok(v)
}

/// What makes two requests "the same" for an idempotency key: the parameters as sent (so a
/// retry is recognised before anything is validated again: an invoice that expired since, or a
/// changed configuration, must not turn a retry into a refusal and a second request).
fn fingerprint(user: &str, asset: &str, amount: &Value, dest: &Value) -> String {
    let canonical = json!([user, asset, amount, dest]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

pub(crate) async fn request(
    state: &AppState,
    caller: &Caller,
    p: RequestParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "withdrawal.request", Some(&user))?;
    let key = match p.idempotency_key.as_deref() {
        None => return Err(ApiError::invalid(
            "idempotency_key_missing",
            "withdrawal.request needs an idempotency_key (1-128 bytes); retry with the same key",
        )),
        Some(k) => input::external_id("idempotency_key", k)?,
    };
    let fp = fingerprint(&user, &p.asset, &p.amount, &p.destination);
    // The same key again answers with the withdrawal it made, whatever the balance is now.
    if let Some(existing) = state
        .store
        .withdrawal_by_key(&caller.app_id, &key)
        .await
        .map_err(internal)?
    {
        return same_key(state, existing, &fp);
    }
    state
        .check_paused(&caller.app_id, fiber_link_store::ops::Paused::Withdrawals)
        .await?;
    let a = asset(state, &p.asset)?;
    let amount = parse_amount(a, &p.amount)?;
    let d = destination(state, a, &p.destination).await?;
    // an asset the app may not withdraw is refused as such, before its figures (checked again
    // under the locks of the request)
    let ov = state
        .store
        .policy_override(&caller.app_id, &a.symbol)
        .await
        .map_err(internal)?;
    if !ov
        .apply(&state.settings.withdrawals.default_policy(&a.symbol))
        .allowed
    {
        return Err(refusal_error(Refusal {
            reason: "asset_not_allowed",
            message: "withdrawals of this asset are not allowed for this community".into(),
        }));
    }
    let f = figures(state, a, &d, amount)?;
    let new = NewWithdrawal {
        id: Uuid::new_v4(),
        app_id: caller.app_id.clone(),
        user: user.clone(),
        asset: a.symbol.clone(),
        amount: f.amount,
        fee: f.fee,
        receive: f.receive,
        fee_mode: state.settings.withdrawals.fee_mode,
        rail: d.rail,
        destination: d.json.clone(),
        payment_hash: d.invoice.as_ref().map(|i| i.payment_hash.clone()),
        idempotency_key: key,
        fingerprint: fp.clone(),
    };
    let defaults = state.settings.withdrawals.default_policy(&a.symbol);
    let outcome = state
        .store
        .request_withdrawal(&new, &defaults, |policy, st| {
            run_check(state, a, &d, &f, policy, st)
        })
        .await
        .map_err(internal)?;
    match outcome {
        RequestOutcome::Created(w) => {
            tracing::info!(withdrawal_id = %w.id, app_id = %w.app_id, state = %w.state, "withdrawal accepted");
            Ok(withdrawal_json(state, &w))
        }
        RequestOutcome::Existing(w) => same_key(state, w, &fp),
        RequestOutcome::Refused(r) => Err(refusal_error(r)),
        RequestOutcome::InvoiceInUse => Err(ApiError::invalid(
            "invoice_in_use",
            "another withdrawal is already paying this invoice",
        )),
    }
}

fn same_key(state: &AppState, w: WithdrawalRow, fp: &str) -> Result<Value, ApiError> {
    if w.request_fingerprint != fp {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "idempotency_key_reused",
            "this idempotency_key was used for a withdrawal with other parameters",
        ));
    }
    Ok(withdrawal_json(state, &w))
}

fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(s).map_err(|_| {
        ApiError::invalid(
            "withdrawal_id_malformed",
            "withdrawal_id must be an id as withdrawal.request returned it",
        )
    })
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "withdrawal_not_found",
        "no withdrawal with this id for this app",
    )
}

pub(crate) async fn get(state: &AppState, caller: &Caller, p: IdParams) -> Result<Value, ApiError> {
    state.check_rate(&caller.app_id, "withdrawal.get", None)?;
    let id = parse_id(&p.withdrawal_id)?;
    let w = state
        .store
        .withdrawal(&caller.app_id, id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    Ok(withdrawal_json(state, &w))
}

pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    p: ListParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "withdrawal.list", Some(&user))?;
    let limit = limit_param(p.limit.as_ref(), 20, 100)?;
    let cursor = p.cursor.as_deref().map(cursor_param).transpose()?;
    let rows = state
        .store
        .list_withdrawals(&caller.app_id, &user, cursor, limit + 1)
        .await
        .map_err(internal)?;
    let (page, next) = keyset_page(&rows, limit, |w| (w.created_at, w.id));
    let items: Vec<Value> = page.iter().map(|w| withdrawal_json(state, w)).collect();
    Ok(json!({"withdrawals": items, "next_cursor": next}))
}

pub(crate) async fn cancel(
    state: &AppState,
    caller: &Caller,
    p: IdParams,
) -> Result<Value, ApiError> {
    state.check_rate(&caller.app_id, "withdrawal.cancel", None)?;
    let id = parse_id(&p.withdrawal_id)?;
    match state
        .store
        .cancel_withdrawal(
            Some(&caller.app_id),
            id,
            "api",
            "cancelled",
            "cancelled by the author",
        )
        .await
    {
        Ok(w) => Ok(withdrawal_json(state, &w)),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(StoreError::Conflict(m)) => Err(ApiError::new(
            ErrorCode::InvalidState,
            "withdrawal_not_cancellable",
            m,
        )),
        Err(e) => Err(internal(e)),
    }
}
