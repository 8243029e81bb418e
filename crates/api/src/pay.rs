//! The hosted pay page: `GET /pay/<tip_id>` shows the amount, who is tipped for which post, the
//! invoice as text and as a QR code, the expiry, and the live state, pushed by Server-Sent Events
//! from `GET /pay/<tip_id>/events`. Tip ids are random UUIDs, unguessable; the page shows nothing
//! a payer should not see. It reads the database only: the worker keeps it fresh, and an open
//! page makes the worker check its tip within about a second.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use fiber_link_core::TipState;
use fiber_link_store::tips::TipRow;
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::convert::Infallible;
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

/// The invoice as an SVG QR code, rendered here (no external service).
fn qr_svg(invoice: &str) -> Option<String> {
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
    final=d.state==='SETTLED'; if(final){es.close(); tick();}
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

struct Watch {
    closing: tokio::sync::watch::Receiver<bool>,
    state: AppState,
    id: Uuid,
    rx: broadcast::Receiver<Uuid>,
    last: Option<(TipState, bool)>,
    done: bool,
}

/// The tip's state now and at every change; ends when the tip is settled.
pub(crate) async fn pay_events(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let tip = match load(&state, &id).await {
        Ok(Some((t, _))) => t,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let w = Watch {
        closing: state.closing(),
        rx: state.tip_changes.subscribe(),
        state: state.clone(),
        id: tip.id,
        last: None,
        done: false,
    };
    Sse::new(events(w))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(w: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(w, |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            if w.last.is_some() {
                // wait for a change of this tip, or re-read every few seconds (a missed
                // notification costs a few seconds, never a wrong state)
                let wait = tokio::time::sleep(Duration::from_secs(5));
                tokio::select! {
                    _ = w.closing.wait_for(|c| *c) => return None,
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
            if tip.state.is_open() {
                // someone is looking at this invoice: have the worker check it soon
                let soon = Utc::now() + w.state.settings.schedule.watched_interval;
                let _ = w.state.store.watch_tip(w.id, soon).await;
            }
            let now = (tip.state, tip.invoice.is_some());
            if w.last != Some(now) {
                w.last = Some(now);
                w.done = tip.state == TipState::Settled;
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
