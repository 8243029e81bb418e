//! The operator console: server-rendered pages on their own listener (`[console] listen`), for
//! the day-to-day of running a hub — approvals, pauses, apps, tips, the audit trail, the books.
//!
//! Who gets in: operator accounts in Postgres (`fiber-link operator add`), an Argon2id password
//! and a TOTP code (enrolled at the first login), then a session: a random token in an HttpOnly,
//! SameSite=Strict cookie (Secure unless turned off for plain HTTP on loopback), of which only
//! the SHA-256 is stored, with idle and absolute expiry. Every form carries the session's CSRF
//! token. Failed logins are counted per account and per address and lock both for a while.
//! Every action goes through the same functions as the CLI and is audited as `operator:<name>`.

// A refusal here is a whole page (a `Response`) carried back as an error: these are a few page
// handlers per operator click, not a hot path worth boxing for.
#![allow(clippy::result_large_err)]

mod charts;
mod login;
mod pages;

use crate::config::Config;
use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use fiber_link_core::crypto::MasterKey;
use fiber_link_fnn::HubClient;
use fiber_link_store::console::NoSession;
use fiber_link_store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "fl_console";
const LOGIN_COOKIE: &str = "fl_login";
const FLASH_COOKIE: &str = "fl_flash";

/// The console's state: the service's configuration, the database, the hub.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

pub struct Inner {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub master: MasterKey,
    pub hub: HubClient,
}

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Console {
    pub fn new(cfg: Arc<Config>, store: Store, master: MasterKey, hub: HubClient) -> Console {
        Console(Arc::new(Inner {
            cfg,
            store,
            master,
            hub,
        }))
    }

    fn idle(&self) -> Duration {
        Duration::from_secs(self.cfg.console.idle_timeout_secs.max(1))
    }

    fn absolute(&self) -> Duration {
        Duration::from_secs(self.cfg.console.absolute_timeout_secs.max(1))
    }

    /// `name=value` with the console's cookie attributes.
    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let secure = if self.cfg.console.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let age = max_age
            .map(|a| format!("; Max-Age={a}"))
            .unwrap_or_default();
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
        ))
        .expect("cookie values are hex")
    }
}

/// The console's routes. Everything but the login pages and the static files needs a session.
pub fn router(c: Console) -> Router {
    Router::new()
        .route("/login", get(login::login_page).post(login::login))
        .route("/login/enrol", get(login::enrol_page))
        .route("/login/code", get(login::code_page).post(login::code))
        .route("/logout", post(login::logout))
        .route("/logout/all", post(login::logout_all))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/", get(pages::overview))
        .route("/reconcile", post(pages::reconcile))
        .route("/withdrawals", get(pages::withdrawals))
        .route("/withdrawals/{id}", get(pages::withdrawal))
        .route("/withdrawals/{id}/{action}", post(pages::withdrawal_action))
        .route("/apps", get(pages::apps).post(pages::create_app))
        .route("/apps/{id}", get(pages::app))
        .route("/apps/{id}/{action}", post(pages::app_action))
        .route("/tips", get(pages::tips))
        .route("/tips/{id}", get(pages::tip))
        .route("/audit", get(pages::audit))
        .layer(middleware::from_fn(security_headers))
        .with_state(c)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/console/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/console/console.js"),
    )
        .into_response()
}

/// 32 random bytes, hex.
pub(crate) fn token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn cookies(parts: &Parts) -> HashMap<String, String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The client's address (the peer of the connection).
fn address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// A form's fields; none when the body is not a form (then the CSRF check refuses it).
pub struct Fields(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = std::convert::Infallible;
    async fn from_request(req: Request, s: &S) -> Result<Fields, Self::Rejection> {
        Ok(Fields(
            axum::extract::Form::<HashMap<String, String>>::from_request(req, s)
                .await
                .map(|axum::extract::Form(f)| f)
                .unwrap_or_default(),
        ))
    }
}

/// A message for the next page (the one a form's redirect lands on).
#[derive(Clone, Debug, Default)]
pub struct Flash {
    pub ok: Option<String>,
    pub error: Option<String>,
}

impl Flash {
    fn ok(m: impl Into<String>) -> Flash {
        Flash {
            ok: Some(m.into()),
            error: None,
        }
    }
    fn error(m: impl Into<String>) -> Flash {
        Flash {
            ok: None,
            error: Some(m.into()),
        }
    }
    fn encode(&self) -> String {
        match (&self.ok, &self.error) {
            (_, Some(e)) => format!("e{}", hex::encode(e)),
            (Some(o), None) => format!("o{}", hex::encode(o)),
            (None, None) => String::new(),
        }
    }
    fn decode(v: &str) -> Flash {
        let text = |h: &str| {
            hex::decode(h)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.chars().take(2000).collect::<String>())
        };
        match v.split_at_checked(1) {
            Some(("e", h)) => Flash {
                ok: None,
                error: text(h),
            },
            Some(("o", h)) => Flash {
                ok: text(h),
                error: None,
            },
            _ => Flash::default(),
        }
    }
}

/// A redirect that carries a flash message to the page it lands on.
fn redirect_with(c: &Console, to: &str, flash: Flash) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        c.cookie(FLASH_COOKIE, &flash.encode(), Some(60)),
    );
    r
}

/// What every page of a logged-in operator shows: who, the CSRF token for its forms, the flash.
#[derive(Clone, Debug)]
pub struct Frame {
    pub title: String,
    pub who: String,
    pub role: String,
    pub csrf: String,
    pub flash: Flash,
    pub section: &'static str,
}

/// A logged-in operator: the extractor of every page behind the login. Without a session it
/// answers a redirect to the login page.
pub struct Op {
    pub name: String,
    pub role: String,
    pub csrf: String,
    flash: Flash,
    clear_flash: bool,
}

impl Op {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    fn frame(&mut self, title: impl Into<String>, section: &'static str) -> Frame {
        Frame {
            title: title.into(),
            who: self.name.clone(),
            role: self.role.clone(),
            csrf: self.csrf.clone(),
            flash: std::mem::take(&mut self.flash),
            section,
        }
    }

    /// The form's CSRF token is this session's: else a 403 page.
    fn check(&self, c: &Console, form: &HashMap<String, String>) -> Result<(), Response> {
        match form.get("csrf") {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(refusal(
                c,
                StatusCode::FORBIDDEN,
                "The form token is missing or wrong: the form has expired or did not come from this console. Reload the page and try again.",
            )),
        }
    }

    /// Admins only: else a 403 page.
    fn admin(&self, c: &Console) -> Result<(), Response> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(refusal(
                c,
                StatusCode::FORBIDDEN,
                &format!("Your role ({}) cannot do this: ask an admin.", self.role),
            ))
        }
    }
}

impl FromRequestParts<Console> for Op {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Op, Response> {
        let jar = cookies(parts);
        let Some(t) = jar.get(SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(Redirect::to("/login").into_response());
        };
        let s = c
            .store
            .touch_session(&token_hash(t), c.idle(), c.absolute())
            .await
            .map_err(|e| unavailable(&e))?;
        match s {
            Ok(s) if s.stage == "full" => {
                let flash = jar.get(FLASH_COOKIE).map(|v| Flash::decode(v));
                Ok(Op {
                    name: s.operator,
                    role: s.role,
                    csrf: s.csrf,
                    clear_flash: flash.is_some(),
                    flash: flash.unwrap_or_default(),
                })
            }
            Ok(_) => Err(Redirect::to("/login/code").into_response()),
            Err(NoSession::Expired) => Err(redirect_with(
                c,
                "/login",
                Flash::error("Your session has expired: log in again."),
            )),
            Err(NoSession::Unknown) => Err(Redirect::to("/login").into_response()),
        }
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: the database failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is not answering; try again in a moment.",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "console/refusal.html")]
struct RefusalPage<'a> {
    message: &'a str,
}

/// A page that says no, with its status.
fn refusal(_c: &Console, status: StatusCode, message: &str) -> Response {
    render_status(status, &RefusalPage { message }, false)
}

fn render_status(status: StatusCode, t: &impl Template, clear_flash: bool) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            if clear_flash {
                r.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static("fl_flash=; Path=/; Max-Age=0"),
                );
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "console: a template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}

/// A page of a logged-in operator (clears the flash it showed).
fn page(op: &Op, t: &impl Template) -> Response {
    render_status(StatusCode::OK, t, op.clear_flash)
}

/// Serves the console until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    c: Console,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    fiber_link_api::serve(listener, router(c), shutdown).await
}
