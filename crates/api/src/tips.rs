//! `tip.create`, `tip.get`, `balance.get`.

use crate::auth::Caller;
use crate::common::{
    cursor_param, internal, keyset_page, limit_param, ts, withdrawal_json, ExternalId,
};
use crate::AppState;
use chrono::{DateTime, Utc};
use fiber_link_core::crypto::payment_hash;
use fiber_link_core::{
    format_decimal, input, invoice_expiry_secs, parse_decimal, Amount, ApiError, Asset, ErrorCode,
    TipClock,
};
use fiber_link_fnn::{
    check_invoice_address, hash256, script_json, Hash256, HubError, NewInvoiceParams,
};
use fiber_link_store::tips::{CreateOutcome, NewTip, TipRow};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateParams {
    post_id: ExternalId,
    from_user_id: ExternalId,
    to_user_id: ExternalId,
    asset: String,
    /// Must be a JSON string (decimal in asset units); anything else is refused with a reason.
    amount: Value,
    message: Option<String>,
    idempotency_key: Option<String>,
}

struct ValidTip<'a> {
    post_id: String,
    from: String,
    to: String,
    asset: &'a Asset,
    amount: Amount,
    message: Option<String>,
    idempotency_key: Option<String>,
}

fn validate<'a>(state: &'a AppState, p: CreateParams) -> Result<ValidTip<'a>, ApiError> {
    let post_id = p.post_id.validated("post_id")?;
    let from = p.from_user_id.validated("from_user_id")?;
    let to = p.to_user_id.validated("to_user_id")?;
    let asset = state.settings.assets.get(&p.asset).ok_or_else(|| {
        let known: Vec<&str> = state
            .settings
            .assets
            .iter()
            .map(|a| a.symbol.as_str())
            .collect();
        ApiError::invalid(
            "unknown_asset",
            format!(
                "asset {:?} is not accepted here; use one of {}",
                p.asset,
                known.join(", ")
            ),
        )
    })?;
    let Value::String(amount) = &p.amount else {
        return Err(ApiError::invalid(
            "amount_not_string",
            "amount must be a decimal string in asset units, such as \"1.5\"",
        ));
    };
    let amount = parse_decimal(amount, asset.decimals)
        .map_err(|e| ApiError::invalid(e.reason(), format!("amount: {e}")))?;
    if amount > asset.max_tip {
        return Err(ApiError::invalid(
            "amount_too_large",
            format!(
                "amount is over the maximum tip of {} {}",
                format_decimal(asset.max_tip, asset.decimals),
                asset.symbol
            ),
        ));
    }
    let message = match p.message.as_deref() {
        None | Some("") => None,
        Some(m) => Some(input::tip_message(m)?),
    };
    if from == to {
        return Err(ApiError::invalid(
            "self_tip",
            "from_user_id and to_user_id are the same user: nobody can tip themselves",
        ));
    }
    let idempotency_key = match p.idempotency_key.as_deref() {
        None => None,
        Some(k) => Some(input::external_id("idempotency_key", k)?),
    };
    Ok(ValidTip {
        post_id,
        from,
        to,
        asset,
        amount,
        message,
        idempotency_key,
    })
}

/// What makes two `tip.create` requests "the same" for an idempotency key.
fn fingerprint(t: &ValidTip) -> String {
    let canonical = json!([
        t.post_id,
        t.from,
        t.to,
        t.asset.symbol,
        t.amount.to_string(),
        t.message
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// `tip.create` from a signed request whose nonce is not recorded yet: the nonce is recorded
/// with the tip, in its statement. A request refused before that records it on its own, so a
/// replay of any request is refused as one whatever else is wrong with it.
pub(crate) async fn create_signed(
    state: &AppState,
    caller: &mut Caller,
    p: Value,
) -> Result<Value, ApiError> {
    let mut nonce = caller.nonce.take();
    let r = match crate::rpc::params(p) {
        Ok(p) => create(state, &caller.app_id, &mut nonce, p).await,
        Err(e) => Err(e),
    };
    match (r, nonce) {
        (Err(e), Some(n)) => {
            caller.nonce = Some(n);
            crate::auth::record_nonce(state, caller, false).await?;
            Err(e)
        }
        (r, _) => r,
    }
}

/// Creates a tip; `nonce` (when not yet recorded) is taken and recorded with it.
async fn create(
    state: &AppState,
    app_id: &str,
    nonce: &mut Option<String>,
    p: CreateParams,
) -> Result<Value, ApiError> {
    let t = validate(state, p)?;
    state.check_rate(app_id, "tip.create", Some(&t.from))?;
    // A pause stops new tips; a retry of one created before the pause gets its tip back.
    if let Err(paused) = state
        .check_paused(app_id, fiber_link_store::ops::Paused::Tips)
        .await
    {
        let retry = match &t.idempotency_key {
            Some(k) => state
                .store
                .tip_by_idempotency_key(app_id, k)
                .await
                .map_err(internal)?
                .is_some(),
            None => false,
        };
        if !retry {
            return Err(paused);
        }
    }
    let now = Utc::now();
    // Time-ordered (UUIDv7: 48 bits of milliseconds, then random bits): the tip's key and the
    // indexes that lead with it grow at their right edge instead of at random pages, which
    // spares Postgres page reads and full-page WAL images per new tip. The time is in the tip
    // anyway (created_at); its preimage comes from the master key, not from the id's randomness.
    let id = Uuid::now_v7();
    let expires_at = now + state.settings.invoice_expiry;
    // While a worker follows the hub's store changes, a payment is announced: no early polls.
    let streamed = state.pauses.get().await.streamed();
    let first_check = state.settings.schedule.first_check(
        TipClock {
            now_ms: now.timestamp_millis(),
            created_ms: now.timestamp_millis(),
            expires_ms: expires_at.timestamp_millis(),
        },
        streamed,
    );
    let preimage = state.preimages.preimage_for(id.as_bytes());
    let new = NewTip {
        id,
        app_id: app_id.to_string(),
        post_id: t.post_id.clone(),
        from_user: t.from.clone(),
        to_user: t.to.clone(),
        asset: t.asset.symbol.clone(),
        amount: t.amount,
        message: t.message.clone(),
        idempotency_key: t.idempotency_key.clone(),
        fingerprint: fingerprint(&t),
        payment_hash: format!("0x{}", hex::encode(payment_hash(&preimage))),
        expires_at,
        first_check_at: DateTime::from_timestamp_millis(first_check).unwrap_or(now),
        nonce: nonce.take(),
    };
    // The record of intent: the tip and its payment hash are stored before the hub is asked
    // (with the request's nonce, in one statement that many requests share).
    let created = state.tip_writer.submit(new.clone()).await;
    let tip = match created.and_then(|r| r) {
        Err(e) => {
            // The statement failed (nothing of this request was written), or it was written and
            // its outcome could not be read back. Either way the nonce is used now, so a replay
            // of this request stays refused; the caller hears of the failure whatever that says.
            if let Some(n) = &new.nonce {
                let _ = state.nonces.consume(app_id, n).await;
            }
            return Err(internal(e));
        }
        Ok(CreateOutcome::ReplayedNonce) => return Err(crate::auth::nonce_replayed()),
        Ok(CreateOutcome::Created(row)) => {
            fiber_link_metrics::global().tip_created(app_id, &row.asset);
            tracing::info!(tip_id = %row.id, app_id, asset = %row.asset, amount = %row.amount, "tip created");
            row
        }
        Ok(CreateOutcome::Existing(row)) if row.request_fingerprint != new.fingerprint => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "idempotency_key_reused",
                "this idempotency_key was used for a tip with other parameters",
            ))
        }
        Ok(CreateOutcome::Existing(row)) => row,
    };
    let mut tip = tip;
    if tip.invoice.is_none() {
        issue_invoice(state, &mut tip, t.asset).await?;
    }
    Ok(tip_json(state, &tip, false))
}

/// Asks the hub for the tip's invoice. The preimage is derived from the tip id, so a retry after
/// a timeout asks for the same invoice, and "invoice already exists" reads it back.
async fn issue_invoice(state: &AppState, tip: &mut TipRow, asset: &Asset) -> Result<(), ApiError> {
    let Some(expiry) = invoice_expiry_secs(
        Utc::now().timestamp_millis(),
        tip.expires_at.timestamp_millis(),
    ) else {
        return Err(ApiError::new(
            ErrorCode::HubUnavailable,
            "invoice_unavailable",
            "the tip expired before the hub issued its invoice; create a new tip",
        ));
    };
    let preimage = state.preimages.preimage_for(tip.id.as_bytes());
    let currency = fiber_link_fnn::currency_from_str(&state.settings.currency)
        .ok_or_else(ApiError::internal)?;
    let params = NewInvoiceParams {
        amount: tip.amount.base_units(),
        description: Some(
            format!("Fiber Link tip for post {}", tip.post_id)
                .chars()
                .take(200)
                .collect(),
        ),
        currency,
        payment_preimage: Some(Hash256(preimage)),
        expiry: Some(expiry),
        udt_type_script: asset
            .udt_type_script
            .as_ref()
            .map(script_json)
            .transpose()
            .map_err(internal)?,
        ..Default::default()
    };
    let hub_unavailable = |e: &HubError| {
        tracing::warn!(tip_id = %tip.id, error = %e, "the hub did not issue an invoice");
        match e {
            // the hub answered, and refused: saying it did not answer would send the caller
            // (and the operator reading its logs) looking in the wrong place
            HubError::Unauthorized(method) => ApiError::new(
                ErrorCode::HubUnavailable,
                "hub_refused",
                format!("the payment hub refused the service's {method} call (its access token lacks a permission); the operator must fix the hub token; retry later with the same idempotency_key"),
            ),
            _ => ApiError::new(
                ErrorCode::HubUnavailable,
                "hub_unavailable",
                "the payment hub did not answer; retry with the same idempotency_key",
            ),
        }
    };
    let hash = hash256(&tip.payment_hash).map_err(internal)?;
    let (address, inv_hash, inv_amount) = match state.hub.new_invoice(&params).await {
        Ok(r) => (
            r.invoice_address,
            r.invoice.data.payment_hash,
            r.invoice.amount,
        ),
        Err(e) if e.is_invoice_already_exists() => match state.hub.get_invoice(hash).await {
            Ok(r) => (
                r.invoice_address,
                r.invoice.data.payment_hash,
                r.invoice.amount,
            ),
            Err(e) => return Err(hub_unavailable(&e)),
        },
        Err(e) => return Err(hub_unavailable(&e)),
    };
    let checked = if inv_hash != hash || inv_amount != Some(tip.amount.base_units()) {
        Err("the invoice's JSON is for another hash or amount".to_string())
    } else {
        check_invoice_address(&address, &hash, tip.amount.base_units(), currency)
    };
    if let Err(why) = checked {
        tracing::error!(tip_id = %tip.id, why, "the hub's invoice does not match the tip; not shown");
        return Err(ApiError::internal());
    }
    match state
        .invoices
        .submit((tip.id, tip.app_id.clone(), address.clone()))
        .await
        .map_err(internal)?
    {
        Some(at) => {
            tip.invoice = Some(address);
            tip.invoice_at = Some(at);
        }
        // a concurrent request or the worker stored it first: it is the same invoice
        None => {
            *tip = state
                .store
                .tip(&tip.app_id, tip.id)
                .await
                .map_err(internal)?
                .ok_or_else(ApiError::internal)?;
        }
    }
    Ok(())
}

fn tip_json(state: &AppState, t: &TipRow, full: bool) -> Value {
    let mut v = json!({
        "tip_id": t.id.to_string(),
        "state": t.state.as_str(),
        "asset": t.asset,
        "amount": state.format_amount(&t.asset, t.amount),
        "invoice": t.invoice,
        "payment_hash": t.payment_hash,
        "expires_at": ts(Some(t.expires_at)),
        "created_at": ts(Some(t.created_at)),
    });
    if let Some(base) = &state.settings.public_url {
        v["pay_url"] = Value::String(format!("{}/pay/{}", base.trim_end_matches('/'), t.id));
    }
    if full {
        v["post_id"] = json!(t.post_id);
        v["from_user_id"] = json!(t.from_user);
        v["to_user_id"] = json!(t.to_user);
        v["message"] = json!(t.message);
        v["updated_at"] = ts(Some(t.updated_at));
        v["invoice_at"] = ts(t.invoice_at);
        v["pending_at"] = ts(t.pending_at);
        v["settled_at"] = ts(t.settled_at);
        v["ended_at"] = ts(t.ended_at);
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetParams {
    tip_id: String,
    #[serde(default)]
    include_events: bool,
}

fn parse_tip_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(s).map_err(|_| {
        ApiError::invalid(
            "tip_id_malformed",
            "tip_id must be a tip id as tip.create returned it",
        )
    })
}

/// Reads the database only; never asks the hub. A caller watching an open tip makes the
/// watcher check it sooner.
pub(crate) async fn get(
    state: &AppState,
    caller: &Caller,
    p: GetParams,
) -> Result<Value, ApiError> {
    state.check_rate(&caller.app_id, "tip.get", None)?;
    let id = parse_tip_id(&p.tip_id)?;
    let tip = state
        .store
        .tip(&caller.app_id, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "tip_not_found",
                "no tip with this id for this app",
            )
        })?;
    let soon = Utc::now() + state.settings.schedule.watched_interval;
    // Someone watches the tip: have it checked soon, unless the hub's store changes are followed
    // (then its payment is announced).
    if tip.state.is_open()
        && tip.next_check_at.is_some_and(|at| at > soon)
        && !state.pauses.get().await.streamed()
    {
        if let Err(e) = state.store.watch_tip(id, soon).await {
            tracing::warn!(tip_id = %id, error = %e, "could not bring the tip's next check forward");
        }
    }
    let mut v = tip_json(state, &tip, true);
    if p.include_events {
        let events = state
            .store
            .tip_events(&caller.app_id, id)
            .await
            .map_err(internal)?;
        v["events"] = serde_json::to_value(events).map_err(internal)?;
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BalanceParams {
    user_id: ExternalId,
}

/// Per configured asset: available (credited), incoming (received by the hub, being credited),
/// awaiting payment (unpaid invoices: not income), reserved (held for withdrawals in flight).
pub(crate) async fn balance(
    state: &AppState,
    caller: &Caller,
    p: BalanceParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "balance.get", Some(&user))?;
    Ok(json!({"user_id": user, "balances": balances_json(state, &caller.app_id, &user).await?}))
}

async fn balances_json(state: &AppState, app_id: &str, user: &str) -> Result<Vec<Value>, ApiError> {
    // one statement: available, incoming and reserved are read from one snapshot
    let rows = state
        .store
        .user_balances(app_id, user)
        .await
        .map_err(internal)?;
    let balances: Vec<Value> = state
        .settings
        .assets
        .iter()
        .map(|a| {
            let row = rows.iter().find(|r| r.asset == a.symbol);
            let f = |x: Option<Amount>| format_decimal(x.unwrap_or_default(), a.decimals);
            json!({
                "asset": a.symbol,
                "decimals": a.decimals,
                "available": f(row.map(|r| r.available)),
                "incoming": f(row.map(|r| r.incoming)),
                "awaiting_payment": f(row.map(|r| r.awaiting_payment)),
                "reserved": f(row.map(|r| r.reserved)),
            })
        })
        .collect();
    Ok(balances)
}

/// A tip as lists show it.
fn tip_item(state: &AppState, t: &TipRow) -> Value {
    json!({
        "tip_id": t.id.to_string(),
        "post_id": t.post_id,
        "from_user_id": t.from_user,
        "to_user_id": t.to_user,
        "asset": t.asset,
        "amount": state.format_amount(&t.asset, t.amount),
        "message": t.message,
        "state": t.state.as_str(),
        "created_at": ts(Some(t.created_at)),
        "settled_at": ts(t.settled_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    user_id: ExternalId,
    direction: String,
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<Value>,
}

pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    p: ListParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "tip.list", Some(&user))?;
    let received = match p.direction.as_str() {
        "received" => true,
        "sent" => false,
        _ => {
            return Err(ApiError::invalid(
                "direction_invalid",
                "direction must be \"received\" or \"sent\"",
            ))
        }
    };
    let tip_state = p
        .state
        .as_deref()
        .map(|s| s.parse::<fiber_link_core::TipState>())
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "state_invalid",
                "state must be one of UNPAID, PENDING, SETTLED, EXPIRED, FAILED",
            )
        })?;
    let limit = limit_param(p.limit.as_ref(), 20, 100)?;
    let cursor = p.cursor.as_deref().map(cursor_param).transpose()?;
    let rows = state
        .store
        .list_tips(
            &caller.app_id,
            &user,
            received,
            tip_state,
            cursor,
            limit + 1,
        )
        .await
        .map_err(internal)?;
    let (page, next) = keyset_page(&rows, limit, |t| (t.created_at, t.id));
    let tips: Vec<Value> = page.iter().map(|t| tip_item(state, t)).collect();
    Ok(json!({"tips": tips, "next_cursor": next}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedParams {
    after: Option<String>,
    limit: Option<Value>,
}

pub(crate) async fn settled_feed(
    state: &AppState,
    caller: &Caller,
    p: FeedParams,
) -> Result<Value, ApiError> {
    state.check_rate(&caller.app_id, "tip.settled_feed", None)?;
    let limit = limit_param(p.limit.as_ref(), 100, 500)?;
    let after = match p.after.as_deref() {
        None | Some("") => None,
        Some(s) => {
            let bad = || {
                ApiError::invalid(
                    "cursor_malformed",
                    "after must be a next_cursor returned by the service",
                )
            };
            let (x, l) = s.split_once('_').ok_or_else(bad)?;
            Some((
                x.parse::<u64>().map_err(|_| bad())?,
                l.parse::<i64>().map_err(|_| bad())?,
            ))
        }
    };
    let rows = state
        .store
        .settled_feed(&caller.app_id, after, limit)
        .await
        .map_err(internal)?;
    let next = rows
        .last()
        .map(|r| r.1)
        .or(after)
        .map(|(x, l)| format!("{x}_{l}"));
    let tips: Vec<Value> = rows.iter().map(|(t, _)| tip_item(state, t)).collect();
    Ok(json!({"tips": tips, "next_cursor": next}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardParams {
    user_id: ExternalId,
}

pub(crate) async fn dashboard(
    state: &AppState,
    caller: &Caller,
    p: DashboardParams,
) -> Result<Value, ApiError> {
    let user = p.user_id.validated("user_id")?;
    state.check_rate(&caller.app_id, "dashboard.summary", Some(&user))?;
    let app = caller.app_id.as_str();
    let s = &state.store;
    let (balances, counts, received, sent, withdrawals, n_withdrawals) = tokio::try_join!(
        balances_json(state, app, &user),
        async { s.tip_counts(app, &user).await.map_err(internal) },
        async {
            s.list_tips(app, &user, true, None, None, 5)
                .await
                .map_err(internal)
        },
        async {
            s.list_tips(app, &user, false, None, None, 5)
                .await
                .map_err(internal)
        },
        async {
            s.list_withdrawals(app, &user, None, 5)
                .await
                .map_err(internal)
        },
        async { s.count_withdrawals(app, &user).await.map_err(internal) },
    )?;
    Ok(json!({
        "user_id": user,
        "balances": balances,
        "counts": {
            "tips_received": counts.0,
            "tips_received_settled": counts.1,
            "tips_sent": counts.2,
            "withdrawals": n_withdrawals,
        },
        "latest_received": received.iter().map(|t| tip_item(state, t)).collect::<Vec<_>>(),
        "latest_sent": sent.iter().map(|t| tip_item(state, t)).collect::<Vec<_>>(),
        "latest_withdrawals": withdrawals.iter().map(|w| withdrawal_json(state, w)).collect::<Vec<_>>(),
    }))
}
