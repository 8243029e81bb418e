//! The demo community page of `fiber-link dev`: a small forum with a Tip button on each post. Its
//! server side signs requests to the API with the demo app's secret (the browser never sees it),
//! and pays invoices through the hub simulator's `sim_pay_invoice`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fiber_link_client::SignedClient;
use fiber_link_core::Assets;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Clone)]
pub struct Demo {
    pub api_url: String,
    pub hub_url: String,
    pub app_id: String,
    pub secret: String,
    pub assets: Assets,
}

struct Inner {
    demo: Demo,
    client: SignedClient,
    http: reqwest::Client,
}

/// The one reader of the demo forum; the authors are the posts' authors.
const VISITOR: &str = "visitor";
pub const AUTHORS: [&str; 3] = ["alice", "bob", "carol"];

pub fn router(demo: Demo) -> Router {
    let client = SignedClient::new(&demo.api_url, &demo.app_id, &demo.secret);
    let inner = Arc::new(Inner {
        demo,
        client,
        http: reqwest::Client::new(),
    });
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/assets", get(assets))
        .route("/api/tip", post(create_tip))
        .route("/api/pay", post(pay))
        .route("/api/balances", get(balances))
        .route("/api/withdraw", post(withdraw))
        .with_state(inner)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn assets(State(s): State<Arc<Inner>>) -> Json<Value> {
    let list: Vec<Value> = s
        .demo
        .assets
        .iter()
        .map(|a| json!({"symbol": a.symbol, "decimals": a.decimals, "presets": ["1", "5", "10"]}))
        .collect();
    Json(json!({"assets": list}))
}

#[derive(Deserialize)]
struct TipForm {
    post_id: String,
    to_user_id: String,
    asset: String,
    amount: String,
    #[serde(default)]
    message: String,
}

/// Signs `tip.create` on the server; the browser chooses the post and amount, never the payer.
async fn create_tip(State(s): State<Arc<Inner>>, Json(f): Json<TipForm>) -> Response {
    if !AUTHORS.contains(&f.to_user_id.as_str()) {
        return error(StatusCode::BAD_REQUEST, "unknown author");
    }
    let params = json!({
        "post_id": f.post_id, "from_user_id": VISITOR, "to_user_id": f.to_user_id,
        "asset": f.asset, "amount": f.amount, "message": f.message,
    });
    match s.client.call("tip.create", params).await {
        Ok(a) => match a.result() {
            Some(r) => Json(r.clone()).into_response(),
            None => {
                let msg = a
                    .body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the service refused the tip");
                error(StatusCode::UNPROCESSABLE_ENTITY, msg)
            }
        },
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!("the service did not answer: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct PayForm {
    tip_id: String,
}

/// Plays the payer's wallet: the simulated hub receives the payment for the tip's invoice.
async fn pay(State(s): State<Arc<Inner>>, Json(f): Json<PayForm>) -> Response {
    let tip = match s
        .client
        .result("tip.get", json!({"tip_id": f.tip_id}))
        .await
    {
        Ok(t) => t,
        Err(e) => return error(StatusCode::NOT_FOUND, &e),
    };
    let Some(invoice) = tip["invoice"].as_str() else {
        return error(StatusCode::CONFLICT, "the tip has no invoice yet");
    };
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "sim_pay_invoice", "params": [{"invoice": invoice}]});
    match s.http.post(&s.demo.hub_url).json(&body).send().await {
        Ok(r) => match r.json::<Value>().await {
            Ok(v) if v.get("result").is_some() => Json(json!({"paid": true})).into_response(),
            Ok(v) => error(
                StatusCode::CONFLICT,
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the simulator refused"),
            ),
            Err(e) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
        },
        Err(e) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct WithdrawForm {
    user_id: String,
    asset: String,
}

/// Plays an author taking everything out to a Fiber wallet of their own (an invoice of another
/// node from the simulator): the quote says how much, the request reserves it, the worker pays.
async fn withdraw(State(s): State<Arc<Inner>>, Json(f): Json<WithdrawForm>) -> Response {
    if !AUTHORS.contains(&f.user_id.as_str()) {
        return error(StatusCode::BAD_REQUEST, "unknown author");
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "sim_external_invoice", "params": [{"asset": f.asset}]});
    let invoice = match s.http.post(&s.demo.hub_url).json(&body).send().await {
        Ok(r) => match r.json::<Value>().await {
            Ok(v) => match v.pointer("/result/invoice").and_then(Value::as_str) {
                Some(i) => i.to_string(),
                None => return error(StatusCode::BAD_GATEWAY, "the simulator made no invoice"),
            },
            Err(e) => return error(StatusCode::BAD_GATEWAY, &e.to_string()),
        },
        Err(e) => return error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let dest = json!({"kind": "fiber_invoice", "invoice": invoice});
    let q = match s
        .client
        .result(
            "withdrawal.quote",
            json!({"user_id": f.user_id, "asset": f.asset, "destination": dest}),
        )
        .await
    {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_GATEWAY, &e),
    };
    if q["allowed"] != true {
        let why = q
            .pointer("/refusal/message")
            .and_then(Value::as_str)
            .unwrap_or("nothing to withdraw");
        return error(StatusCode::CONFLICT, why);
    }
    let key = fiber_link_client::fresh_nonce();
    match s
        .client
        .result(
            "withdrawal.request",
            json!({"user_id": f.user_id, "asset": f.asset, "amount": q["amount"], "destination": dest, "idempotency_key": key}),
        )
        .await
    {
        Ok(w) => Json(w).into_response(),
        Err(e) => error(StatusCode::CONFLICT, &e),
    }
}

async fn balances(State(s): State<Arc<Inner>>) -> Response {
    let mut out = Vec::new();
    for a in AUTHORS {
        match s.client.result("balance.get", json!({"user_id": a})).await {
            Ok(b) => out.push(json!({"user_id": a, "balances": b["balances"]})),
            Err(e) => return error(StatusCode::BAD_GATEWAY, &e),
        }
    }
    Json(json!({"authors": out})).into_response()
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo forum — Fiber Link</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#eef0f3;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.75rem 1rem}header h1{margin:0;font-size:1.2rem}
.wrap{max-width:48rem;margin:0 auto;padding:1rem;display:grid;gap:1rem}
.post{background:#fff;border-radius:10px;padding:1rem;box-shadow:0 1px 3px #0002}
.post .by{color:#667;font-size:.9rem}.post button{float:right}
button{padding:.5rem .9rem;border:0;border-radius:8px;background:#2b5cd6;color:#fff;font-size:.95rem;cursor:pointer}
button.secondary{background:#dde3ef;color:#1d2330}button:disabled{opacity:.45;cursor:default}
#balances{background:#fff;border-radius:10px;padding:1rem}#balances table{width:100%;border-collapse:collapse}
#balances td,#balances th{text-align:left;padding:.25rem}
dialog{border:0;border-radius:12px;padding:1rem;width:min(30rem,95vw);box-shadow:0 4px 24px #0004}
dialog iframe{width:100%;height:42rem;border:0}
.presets button{margin-right:.25rem}.row{margin:.5rem 0}.err{color:#a00}
input,select,textarea{font-size:1rem;padding:.4rem;box-sizing:border-box}textarea{width:100%}
</style></head>
<body>
<header><h1>Demo forum</h1><small>Fiber Link, running on this machine with a simulated hub</small></header>
<div class="wrap">
<section id="posts"></section>
<section id="balances"><h2>Authors' balances</h2><p class="err" id="werr" role="alert"></p><table><thead><tr><th>author</th><th>asset</th><th>available</th><th>incoming</th><th>awaiting payment</th><th>reserved</th><th></th></tr></thead><tbody></tbody></table></section>
</div>
<dialog id="tip">
  <form id="tipform" method="dialog">
    <h2>Tip <span id="tip-author"></span></h2>
    <div class="row presets" id="presets"></div>
    <div class="row"><label>Amount <input id="amount" inputmode="decimal" autocomplete="off" required></label>
      <select id="asset" aria-label="asset"></select></div>
    <div class="row"><label>Message (optional)<textarea id="message" maxlength="280" rows="2"></textarea></label>
      <small id="count">0/280</small></div>
    <p class="err" id="err" role="alert"></p>
    <button id="create" type="button">Create invoice</button>
    <button class="secondary" type="button" id="close1">Cancel</button>
  </form>
  <div id="invoice" hidden>
    <iframe id="payframe" title="Pay this tip"></iframe>
    <button id="simpay" type="button">Pay with simulator</button>
    <button class="secondary" type="button" id="close2">Close</button>
    <p class="err" id="payerr" role="alert"></p>
  </div>
</dialog>
<script>
var POSTS=[{id:'101',author:'alice',title:'How we run a Fiber hub',body:'Channels, liquidity and a few lessons learned.'},
           {id:'102',author:'bob',title:'CKB scripts for beginners',body:'A walk through lock and type scripts.'},
           {id:'103',author:'carol',title:'Payment channels, explained',body:'Why off-chain payments are instant and cheap.'}];
var assets=[], current=null, tipId=null;
function el(t,a,c){var e=document.createElement(t);for(var k in a||{})e.setAttribute(k,a[k]);if(c!=null)e.textContent=c;return e;}
function render(){var s=document.getElementById('posts');POSTS.forEach(function(p){
  var d=el('article',{class:'post','data-post':p.id});var b=el('button',{type:'button'},'Tip');b.onclick=function(){openTip(p);};
  d.appendChild(b);d.appendChild(el('h3',{},p.title));d.appendChild(el('p',{class:'by'},'by '+p.author));d.appendChild(el('p',{},p.body));s.appendChild(d);});}
function openTip(p){current=p;tipId=null;document.getElementById('tip-author').textContent=p.author;
  document.getElementById('tipform').hidden=false;document.getElementById('invoice').hidden=true;
  document.getElementById('err').textContent='';document.getElementById('payerr').textContent='';
  document.getElementById('amount').value='1';document.getElementById('tip').showModal();}
function validAmount(v,dec){var m=/^(0|[1-9][0-9]*)(\.([0-9]+))?$/.exec(v);if(!m)return 'Enter an amount such as 1.5';
  if(m[3]&&m[3].length>dec)return 'At most '+dec+' decimals';if(/^[0.]+$/.test(v))return 'The amount must be more than zero';return null;}
function createTip(){var a=document.getElementById('amount').value.trim(),sym=document.getElementById('asset').value;
  var asset=assets.filter(function(x){return x.symbol===sym;})[0];var bad=validAmount(a,asset.decimals);
  var err=document.getElementById('err');if(bad){err.textContent=bad;return;}err.textContent='';
  fetch('/api/tip',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({post_id:current.id,to_user_id:current.author,asset:sym,amount:a,message:document.getElementById('message').value})})
  .then(function(r){return r.json();}).then(function(t){if(t.error){err.textContent=t.error;return;}
    tipId=t.tip_id;document.getElementById('tipform').hidden=true;document.getElementById('invoice').hidden=false;
    document.getElementById('payframe').src=t.pay_url;}).catch(function(e){err.textContent=String(e);});}
function simPay(){fetch('/api/pay',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({tip_id:tipId})})
  .then(function(r){return r.json();}).then(function(r){if(r.error)document.getElementById('payerr').textContent=r.error;});}
function loadBalances(){fetch('/api/balances').then(function(r){return r.json();}).then(function(d){
  var tb=document.querySelector('#balances tbody');tb.textContent='';(d.authors||[]).forEach(function(a){a.balances.forEach(function(b){
  var tr=el('tr',{'data-author':a.user_id,'data-asset':b.asset});[a.user_id,b.asset,b.available,b.incoming,b.awaiting_payment,b.reserved].forEach(function(x,i){tr.appendChild(el('td',{class:['author','asset','available','incoming','awaiting','reserved'][i]},x));});
  var td=el('td');var w=el('button',{type:'button',class:'secondary withdraw'},'Withdraw all');w.disabled=(b.available==='0');
  w.onclick=function(){withdraw(a.user_id,b.asset);};td.appendChild(w);tr.appendChild(td);tb.appendChild(tr);});});});}
function withdraw(user,asset){fetch('/api/withdraw',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user_id:user,asset:asset})})
  .then(function(r){return r.json();}).then(function(r){document.getElementById('werr').textContent=r.error||'';loadBalances();});}
fetch('/api/assets').then(function(r){return r.json();}).then(function(d){assets=d.assets;var sel=document.getElementById('asset');
  assets.forEach(function(a){sel.appendChild(el('option',{value:a.symbol},a.symbol));});
  var pr=document.getElementById('presets');assets[0].presets.forEach(function(v){var b=el('button',{type:'button',class:'secondary'},v);b.onclick=function(){document.getElementById('amount').value=v;};pr.appendChild(b);});});
document.getElementById('create').onclick=createTip;document.getElementById('simpay').onclick=simPay;
document.getElementById('close1').onclick=document.getElementById('close2').onclick=function(){document.getElementById('tip').close();};
document.getElementById('message').oninput=function(e){document.getElementById('count').textContent=e.target.value.length+'/280';};
render();loadBalances();setInterval(loadBalances,2000);
</script></body></html>
"#;
