//! The hosted pay page: `GET /pay/<tip_id>` shows the amount, who is tipped for which post, the
//! invoice as text and as a QR code, the expiry, and the live state, pushed by Server-Sent Events
//! from `GET /pay/<tip_id>/events`. Tip ids are random UUIDs, unguessable; the page shows nothing
//! a payer should not see. It reads the database only: the worker keeps it fresh, and an open
//! page makes the worker check its tip within about a second.

use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use fiber_link_core::TipState;
use fiber_link_store::tips::TipRow;
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn label(s: TipState) -> &'static str {
    match s {
        TipState::Unpaid => "Awaiting payment",
        TipState::Pending => "Payment received",
        TipState::Settled => "Settled",
        TipState::Expired => "Expired",
        TipState::Failed => "Failed",
    }
}

/// Text (an invoice, an `otpauth://` URI) as an SVG QR code, rendered here (no external
/// service).
pub fn qr_svg(invoice: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(invoice.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

async fn load(state: &AppState, id: &str) -> Result<Option<(TipRow, String)>, Response> {
    let Ok(id) = Uuid::try_parse(id) else {
        return Ok(None);
    };
    let tip = state.store.tip_any_app(id).await.map_err(|e| {
        tracing::error!(error = %e, "pay page: reading the tip failed");
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response()
    })?;
    let Some(tip) = tip else { return Ok(None) };
    let app = state
        .store
        .app_name(&tip.app_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(Some((tip, app)))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "Tip not found",
            "<main><h1>Tip not found</h1><p>This payment link is not valid.</p></main>",
        )),
    )
        .into_response()
}

pub(crate) async fn pay_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let (tip, app) = match load(&state, &id).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let amount = state.format_amount(&tip.asset, tip.amount);
    let e = escape_html;
    let invoice_block = match &tip.invoice {
        Some(inv) => format!(
            r#"<figure class="qr" aria-label="QR code of the invoice">{qr}</figure>
<label for="invoice">Fiber invoice</label>
<textarea id="invoice" readonly rows="5">{inv}</textarea>
<button type="button" id="copy" hidden>Copy invoice</button>"#,
            qr = qr_svg(inv).unwrap_or_default(),
            inv = e(inv)
        ),
        None => "<p>The invoice is being issued; reload this page in a moment.</p>".to_string(),
    };
    let message = match &tip.message {
        Some(m) => format!(r#"<blockquote class="message">{}</blockquote>"#, e(m)),
        None => String::new(),
    };
    let body = format!(
        r#"<main data-tip="{id}" data-expires="{expires_ms}">
<p class="app">{app}</p>
<h1><span class="amount">{amount}</span> {asset}</h1>
<p class="who">A tip to <strong>{to}</strong> for post <strong>{post}</strong></p>
{message}
<p class="state state-{state_class}" id="state" role="status" aria-live="polite">{label}</p>
{invoice_block}
<p class="expiry">Expires <time id="expires" datetime="{expires}">{expires_text}</time><span id="countdown"></span></p>
<p class="hint">Pay with any Fiber wallet: scan the code or paste the invoice.</p>
</main>
<script>{script}</script>"#,
        id = tip.id,
        expires_ms = tip.expires_at.timestamp_millis(),
        app = e(&app),
        amount = e(&amount),
        asset = e(&tip.asset),
        to = e(&tip.to_user),
        post = e(&tip.post_id),
        state_class = tip.state.as_str().to_lowercase(),
        label = label(tip.state),
        expires = tip.expires_at.to_rfc3339(),
        expires_text = tip.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
        script = PAY_SCRIPT,
    );
    let mut resp = Html(page(&format!("Tip {amount} {}", tip.asset), &body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"
            .parse()
            .expect("static header"),
    );
    h.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    resp
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style></head>
<body>{body}</body></html>"#,
        title = escape_html(title)
    )
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:28rem;margin:1rem auto;background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 4px #0002}
h1{margin:.25rem 0;font-size:2rem}.app{color:#667;margin:0;font-size:.9rem}.who{margin:.25rem 0 1rem}
.message{margin:0 0 1rem;padding:.5rem .75rem;border-left:3px solid #8ab;background:#f0f4f7;white-space:pre-wrap;overflow-wrap:anywhere}
.state{font-weight:600;padding:.5rem .75rem;border-radius:8px;background:#eef;display:inline-block}
.state-settled{background:#dfd;color:#060}.state-expired,.state-failed{background:#fdd;color:#800}.state-pending{background:#ffd}
.qr{margin:1rem auto;max-width:240px}.qr svg{width:100%;height:auto}
textarea{width:100%;box-sizing:border-box;font-family:ui-monospace,monospace;font-size:.75rem;word-break:break-all}
button{margin-top:.5rem;padding:.6rem 1rem;border:0;border-radius:8px;background:#2b5cd6;color:#fff;font-size:1rem}
.expiry,.hint{color:#556;font-size:.9rem}
"#;

/// Progressive enhancement: copy button, countdown, live state.
const PAY_SCRIPT: &str = r#"
(function(){
  var main=document.querySelector('main[data-tip]'); if(!main) return;
  var copy=document.getElementById('copy'), inv=document.getElementById('invoice');
  if(copy&&inv){copy.hidden=false;copy.onclick=function(){
    (navigator.clipboard?navigator.clipboard.writeText(inv.value):Promise.reject()).then(
      function(){copy.textContent='Copied';},function(){inv.select();document.execCommand('copy');copy.textContent='Copied';});};}
  var expires=+main.dataset.expires, cd=document.getElementById('countdown'), st=document.getElementById('state');
  var final=false;
  function tick(){ if(final) {cd.textContent='';return;} var s=Math.max(0,Math.round((expires-Date.now())/1000));
    cd.textContent=s>0?' (in '+Math.floor(s/60)+' min '+(s%60)+' s)':' (now)'; }
  tick(); setInterval(tick,1000);
  if(!window.EventSource) return;
  var es=new EventSource(location.pathname.replace(/\/$/,'')+'/events');
  es.addEventListener('state',function(ev){ var d=JSON.parse(ev.data);
    st.textContent=d.label; st.className='state state-'+d.state.toLowerCase();
    final=d.state==='SETTLED'||d.state==='EXPIRED'||d.state==='FAILED'; if(final){es.close(); tick();}
    if(d.invoice&&!inv){location.reload();} });
})();
"#;

fn state_event(tip: &TipRow) -> Event {
    Event::default().event("state").data(
        json!({
            "state": tip.state.as_str(),
            "label": label(tip.state),
            "invoice": tip.invoice.is_some(),
            "settled_at": tip.settled_at.map(|t| t.to_rfc3339()),
        })
        .to_string(),
    )
}

/// The open event streams, per client address and in all. A stream holds a [`Slot`] until it
/// ends (or its client goes away), so neither one client nor everyone together can keep more
/// streams open than the configuration allows.
pub(crate) struct StreamSlots {
    per_client: usize,
    total: usize,
    open: std::sync::Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl StreamSlots {
    pub(crate) fn new(per_client: usize, total: usize) -> StreamSlots {
        StreamSlots {
            per_client,
            total,
            open: std::sync::Mutex::new((0, HashMap::new())),
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.total || mine >= self.per_client {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, mine + 1);
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One open stream's place; given back when dropped.
pub(crate) struct Slot {
    slots: Arc<StreamSlots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// How long a stream waits for a notification before it reads the tip anyway (a notification
/// lost with a dropped database connection costs at most this, never a wrong state).
const REREAD: Duration = Duration::from_secs(60);

/// How long past its invoice's expiry a stream of an open tip lasts at most (the worker's
/// expiry check and a late payment are shown within it; after that the page's own reload does).
const AFTER_EXPIRY: Duration = Duration::from_secs(600);

struct Watch {
    closing: tokio::sync::watch::Receiver<bool>,
    state: AppState,
    id: Uuid,
    rx: broadcast::Receiver<Uuid>,
    last: Option<(TipState, bool)>,
    /// When the stream ends whatever happens.
    until: tokio::time::Instant,
    done: bool,
    _slot: Slot,
}

/// The tip's state now and at every change; ends at a final state (settled, expired, failed),
/// at most [`AFTER_EXPIRY`] after the invoice expired. Costs nothing while the tip does not change:
/// it waits for the database's change notifications (re-reading only every [`REREAD`]). A tip that
/// is already final is answered `204 No Content`, which tells a browser's `EventSource` not to
/// reconnect. Streams are capped per client address and in all (429 when full).
pub(crate) async fn pay_events(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let tip = match load(&state, &id).await {
        Ok(Some((t, _))) => t,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    if is_final(tip.state) {
        return StatusCode::NO_CONTENT.into_response();
    }
    let client = client_address(&state, peer, &headers);
    let Some(slot) = state.pay_streams.take(client) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30")],
            "too many open status streams; reload the page later",
        )
            .into_response();
    };
    // someone is looking at this invoice: have the worker check it soon (once per stream),
    // unless the hub's store changes are followed (then its payment is announced)
    if !state.pauses.get().await.streamed() {
        let soon = Utc::now() + state.settings.schedule.watched_interval;
        let _ = state.store.watch_tip(tip.id, soon).await;
    }
    let left = (tip.expires_at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let w = Watch {
        closing: state.closing(),
        rx: state.tip_changes.subscribe(),
        state: state.clone(),
        id: tip.id,
        last: None,
        until: tokio::time::Instant::now() + left + AFTER_EXPIRY,
        done: false,
        _slot: slot,
    };
    Sse::new(events(w))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The client's address: the peer's, or — when `trust_forwarded_for` is set and the peer is a
/// reverse proxy on this host (loopback) — the last address in `X-Forwarded-For`, the one the
/// proxy itself appended.
fn client_address(state: &AppState, peer: SocketAddr, headers: &axum::http::HeaderMap) -> IpAddr {
    if !(state.settings.trust_forwarded_for && peer.ip().is_loopback()) {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(peer.ip())
}

fn is_final(s: TipState) -> bool {
    matches!(s, TipState::Settled | TipState::Expired | TipState::Failed)
}

fn events(w: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(w, |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            if w.last.is_some() {
                // wait for a change of this tip; re-read now and then in case a notification
                // was lost
                let wait = tokio::time::sleep(REREAD);
                tokio::select! {
                    _ = w.closing.wait_for(|c| *c) => return None,
                    _ = tokio::time::sleep_until(w.until) => return None,
                    r = w.rx.recv() => match r {
                        Ok(id) if id != w.id => continue,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = wait => {}
                }
            }
            let tip = match w.state.store.tip_any_app(w.id).await {
                Ok(Some(t)) => t,
                // The database did not answer: end the stream rather than retry in a loop; the
                // browser's EventSource reconnects by itself a few seconds later.
                _ => return None,
            };
            let now = (tip.state, tip.invoice.is_some());
            if w.last != Some(now) {
                w.last = Some(now);
                w.done = is_final(tip.state);
                return Some((Ok(state_event(&tip)), w));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn renders_a_qr_code() {
        let svg = qr_svg(&"fibd1".repeat(80)).unwrap();
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("<path") || svg.contains("<rect"));
    }
}
